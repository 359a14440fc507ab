//! The pipeline's Lambda functions, each registered once: its name (the binary's, the stack's
//! and the local runner's), how it is built from its environment and an SDK configuration, and
//! how Lambda invokes it. Everything else that lists the functions reads [`functions`]: the
//! binaries' `main`, the local runner, the benchmark, `functions/registry.json` (which the stack
//! reads for its stages' event filters) and the tests that hold the Makefile, the workspace and
//! the stack to it.
//!
//! Adding a function: its handler (for an event-driven stage, a
//! [`crate::runtime::stage::Stage`]), one marker type here with its [`Function`] impl, one line in
//! [`functions`], and a binary whose `main` calls [`crate::bootstrap::main`] with the
//! marker (docs/design.md, "Adding a stage").

mod invoked;

use std::sync::Arc;

use aws_config::SdkConfig;
use order_domain::{EventType, OrderStatus};

use crate::adapters::dynamodb::inventory::DynamoInventory;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::payment_http::{ApiKey, HttpGateway};
use crate::adapters::payment_simulated::{Gateway, SimulatedGateway};
use crate::adapters::sns::{
    SnsCustomerPublisher, SnsEventPublisher, SnsNotifier, SnsOrderPublisher,
};
use crate::adapters::sqs::{SqsDeadLetterQueue, SqsVisibility};
use crate::functions::api::OrderApi;
use crate::functions::dlq_alarm::DlqAlarm;
use crate::functions::order_events::OrderEvents;
use crate::ports::payment::PaymentGateway;
use crate::ports::queue::Visibility;
use crate::runtime::config::{
    ApiConfig, Backoff, ConfigError, ConsumerConfig, DlqAlarmConfig, Env, EventsConfig,
    InventoryConfig, NotificationConfig, PaymentConfig, ProviderConfig, WatchConfig, WorkerConfig,
};
use crate::runtime::stage::EventStage;
use crate::runtime::telemetry::LineWriter;
use crate::runtime::worker::{RecordHandler, SqsWorker};
use crate::stages::intake::OrderConsumer;
use crate::stages::inventory::InventoryStage;
use crate::stages::inventory_dlq::InventoryDlqStage;
use crate::stages::notification::NotificationStage;
use crate::stages::notification_dlq::NotificationDlqStage;
use crate::stages::payment::{PaymentSettings, PaymentStage};
use crate::stages::payment_dlq::PaymentDlqStage;
use crate::stages::refund::RefundStage;
use crate::stages::refund_dlq::RefundDlqStage;
use crate::stages::watch::{OrderWatch, WatchMode};

pub use invoked::{
    Built, DlqAlarmFunction, Invoked, Labels, OrderApiFunction, OrderConsumerFunction,
    OrderEventsFunction, SqsFunction, Trigger,
};

/// One Lambda function of the pipeline.
pub trait Function {
    /// Its binary's name, which is also its name in the stack (cdk.json's `functions` block) and
    /// its service name in logs and metrics.
    const NAME: &'static str;
    /// A dead-letter handler: the stage whose DLQ feeds it.
    const DEAD_LETTERS_OF: Option<&'static str> = None;
    type Handler: Invoked;
    /// The function from its environment and an SDK configuration, writing telemetry to
    /// `telemetry`; the first setting that is missing or invalid otherwise.
    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError>;
}

/// An environment lookup of one type for every function (the registry's builders).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A registered function, for whatever lists the functions.
#[derive(Clone, Copy)]
pub struct Registered {
    pub name: &'static str,
    /// The marker's path (`order_pipeline::registry::InventoryFn`), which the binary's
    /// `main` names.
    pub marker: &'static str,
    pub trigger: Trigger,
    pub events: &'static [EventType],
    pub dead_letters_of: Option<&'static str>,
    /// Builds the function from an environment, an SDK configuration and a telemetry writer.
    #[allow(clippy::type_complexity)]
    pub build: fn(&Env<Lookup<'_>>, &SdkConfig, Arc<dyn LineWriter>) -> Result<Built, ConfigError>,
}

impl Registered {
    pub fn of<F: Function>() -> Self {
        Registered {
            name: F::NAME,
            marker: std::any::type_name::<F>(),
            trigger: <F::Handler as Invoked>::TRIGGER,
            events: <F::Handler as Invoked>::EVENTS,
            dead_letters_of: F::DEAD_LETTERS_OF,
            build: |env, sdk, telemetry| Ok(F::build(env, sdk, telemetry)?.into_built()),
        }
    }
}

/// Every function of the pipeline: the one list.
pub fn functions() -> [Registered; 14] {
    [
        Registered::of::<OrderConsumerFn>(),
        Registered::of::<DlqAlarmFn>(),
        Registered::of::<OrderApiFn>(),
        Registered::of::<OrderEventsFn>(),
        Registered::of::<InventoryFn>(),
        Registered::of::<InventoryDlqFn>(),
        Registered::of::<PaymentFn>(),
        Registered::of::<PaymentDlqFn>(),
        Registered::of::<RefundFn>(),
        Registered::of::<RefundDlqFn>(),
        Registered::of::<NotificationFn>(),
        Registered::of::<NotificationDlqFn>(),
        Registered::of::<OrderWatchFn>(),
        Registered::of::<OrderWatchDlqFn>(),
    ]
}

/// The registered function named `name`.
pub fn find(name: &str) -> Option<Registered> {
    functions().into_iter().find(|f| f.name == name)
}

/// The registry as `functions/registry.json` holds it, for the stack.
pub fn to_json() -> serde_json::Value {
    let functions: Vec<serde_json::Value> = functions()
        .iter()
        .map(|f| {
            let mut entry = serde_json::json!({
                "name": f.name,
                "trigger": f.trigger.as_str(),
                "events": f.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            });
            if let Some(stage) = f.dead_letters_of {
                entry["deadLettersOf"] = stage.into();
            }
            entry
        })
        .collect();
    serde_json::json!({
        "functions": functions,
        "eventTypes": EventType::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
    })
}

/// A stage's batch worker, with its backoff wired to its own queue when it has one.
pub fn worker<H: RecordHandler>(
    handler: H,
    config: WorkerConfig,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<SqsWorker<H>, ConfigError> {
    let visibility = match (&config.backoff, &config.queue_url) {
        (Some(_), Some(url)) => Some(Arc::new(SqsVisibility::new(
            aws_sdk_sqs::Client::new(sdk),
            url.clone(),
        )) as Arc<dyn Visibility>),
        _ => None,
    };
    SqsWorker::new(handler, config, telemetry, visibility)
}

fn orders(sdk: &SdkConfig, table: &str) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)
}

/// order-consumer: order messages -> the Orders table, exactly once.
pub struct OrderConsumerFn;

impl Function for OrderConsumerFn {
    const NAME: &'static str = "order-consumer";
    type Handler = OrderConsumerFunction<DynamoStore>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = ConsumerConfig::from_env(env)?;
        // A batch's new orders go out as one request (adapters::dynamodb's doc; docs/benchmarks.md).
        let store = orders(sdk, &config.table_name).batching_creates();
        worker(OrderConsumer::new(store), config.worker, sdk, telemetry)
    }
}

/// dlq-alarm: the intake DLQ's alarm and sweeps -> FAILED marks and the ops summary.
pub struct DlqAlarmFn;

impl Function for DlqAlarmFn {
    const NAME: &'static str = "dlq-alarm";
    type Handler = DlqAlarmFunction;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = DlqAlarmConfig::from_env(env)?;
        let store = orders(sdk, &config.table_name);
        let dlq = SqsDeadLetterQueue::new(aws_sdk_sqs::Client::new(sdk), config.dlq_url.clone());
        let notifier =
            SnsNotifier::new(aws_sdk_sns::Client::new(sdk), config.ops_topic_arn.clone());
        Ok(DlqAlarm::new(store, dlq, notifier, config, telemetry))
    }
}

/// order-api: POST /orders and GET /orders/{orderId}.
pub struct OrderApiFn;

impl Function for OrderApiFn {
    const NAME: &'static str = "order-api";
    type Handler = OrderApiFunction;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = ApiConfig::from_env(env)?;
        let publisher = SnsOrderPublisher::new(
            aws_sdk_sns::Client::new(sdk),
            config.order_topic_arn.clone(),
        );
        let reader = orders(sdk, &config.table_name);
        Ok(OrderApi::new(publisher, reader, config, telemetry))
    }
}

/// order-events: the Orders stream -> one lifecycle event per committed status change.
pub struct OrderEventsFn;

impl Function for OrderEventsFn {
    const NAME: &'static str = "order-events";
    type Handler = OrderEventsFunction;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = EventsConfig::from_env(env)?;
        let publisher = SnsEventPublisher::new(
            aws_sdk_sns::Client::new(sdk),
            config.order_events_topic_arn.clone(),
        );
        Ok(OrderEvents::new(publisher, config.service, telemetry))
    }
}

/// inventory: OrderAccepted -> RESERVED or REJECTED.
pub struct InventoryFn;

impl Function for InventoryFn {
    const NAME: &'static str = "inventory";
    type Handler = SqsWorker<EventStage<InventoryStage<DynamoInventory>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = InventoryConfig::from_env(env)?;
        worker(
            EventStage(inventory_stage(&config, sdk)),
            config.worker,
            sdk,
            telemetry,
        )
    }
}

/// inventory-dlq: the inventory DLQ -> a last reservation attempt, else REJECTED
/// (`dead_lettered`) with no stock reserved.
pub struct InventoryDlqFn;

impl Function for InventoryDlqFn {
    const NAME: &'static str = "inventory-dlq";
    const DEAD_LETTERS_OF: Option<&'static str> = Some("inventory");
    type Handler = SqsWorker<EventStage<InventoryDlqStage<DynamoInventory>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = InventoryConfig::for_service(env, Self::NAME)?;
        worker(
            EventStage(InventoryDlqStage::new(inventory_stage(&config, sdk))),
            config.worker,
            sdk,
            telemetry,
        )
    }
}

/// The inventory stage of `config` (inventory's, and inventory-dlq's last attempt).
fn inventory_stage(config: &InventoryConfig, sdk: &SdkConfig) -> InventoryStage<DynamoInventory> {
    InventoryStage::new(
        DynamoInventory::new(
            orders(sdk, &config.table_name),
            config.inventory_table_name.clone(),
        )
        .with_conflict_tries(config.conflict_tries),
        config.default_currency,
    )
}

/// payment: InventoryReserved -> PAID or PAYMENT_FAILED.
pub struct PaymentFn;

impl Function for PaymentFn {
    const NAME: &'static str = "payment";
    type Handler = SqsWorker<EventStage<PaymentStage<DynamoInventory, Gateway>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = PaymentConfig::from_env(env)?;
        let store = DynamoInventory::new(
            orders(sdk, &config.table_name),
            config.inventory_table_name.clone(),
        )
        .with_conflict_tries(config.conflict_tries);
        let gateway = gateway(&config.provider, sdk)?;
        let claim = match &config.provider {
            ProviderConfig::Http { timeout, .. } => {
                2 * *timeout + std::time::Duration::from_secs(5)
            }
            ProviderConfig::Simulated { .. } => std::time::Duration::from_secs(5),
        };
        let settings = PaymentSettings {
            claim,
            max_attempts: config.max_attempts,
            backoff: config.worker.backoff.unwrap_or(Backoff {
                base: std::time::Duration::from_secs(10),
                max: std::time::Duration::from_secs(300),
            }),
        };
        let mode = if gateway.provider() == "simulated" {
            tracing::warn!(mode = "simulated payments", "no payment provider is configured (paymentProviderUrl): charges are simulated, nothing is charged");
            "simulated payments"
        } else {
            "payments"
        };
        Ok(worker(
            EventStage(PaymentStage::new(store, gateway, settings)),
            config.worker,
            sdk,
            telemetry,
        )?
        .with_mode(mode))
    }
}

/// The payment provider `provider` names.
fn gateway(provider: &ProviderConfig, sdk: &SdkConfig) -> Result<Gateway, ConfigError> {
    Ok(match provider {
        ProviderConfig::Simulated {
            decline_over,
            unavailable_percent,
        } => Gateway::Simulated(SimulatedGateway {
            decline_over: *decline_over,
            unavailable_percent: *unavailable_percent,
        }),
        ProviderConfig::Http {
            url,
            secret_arn,
            timeout,
        } => Gateway::Http(Box::new(
            HttpGateway::new(
                url,
                ApiKey::Secret {
                    client: aws_sdk_secretsmanager::Client::new(sdk),
                    secret_id: secret_arn.clone(),
                },
                *timeout,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "the payment provider's HTTP client cannot start");
                ConfigError::Invalid {
                    name: "PAYMENT_PROVIDER_URL",
                    value: url.clone(),
                    expected: "a URL the function can reach over TLS (the system's TLS roots did not load)",
                }
            })?,
        )),
    })
}

/// payment-dlq: the payment DLQ -> PAYMENT_FAILED with the stock released.
pub struct PaymentDlqFn;

impl Function for PaymentDlqFn {
    const NAME: &'static str = "payment-dlq";
    const DEAD_LETTERS_OF: Option<&'static str> = Some("payment");
    type Handler = SqsWorker<EventStage<PaymentDlqStage<DynamoInventory, Gateway>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = PaymentConfig::for_service(env, Self::NAME)?;
        let store = DynamoInventory::new(
            orders(sdk, &config.table_name),
            config.inventory_table_name.clone(),
        )
        .with_conflict_tries(config.conflict_tries);
        // The stage's provider: a dead letter is resolved with it before its order fails.
        let gateway = gateway(&config.provider, sdk)?;
        worker(
            EventStage(PaymentDlqStage::new(store, gateway)),
            config.worker,
            sdk,
            telemetry,
        )
    }
}

/// refund: CancelRequested -> CANCELLED (no charge stands), REFUNDED or REFUND_FAILED.
pub struct RefundFn;

impl Function for RefundFn {
    const NAME: &'static str = "refund";
    type Handler = SqsWorker<EventStage<RefundStage<DynamoInventory, Gateway>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let (stage, worker_config) = refund_stage(env, sdk, Self::NAME)?;
        worker(EventStage(stage), worker_config, sdk, telemetry)
    }
}

/// The refund stage of the function `service` (refund, or refund-dlq's last attempt): the
/// payment stage's tables and provider.
fn refund_stage<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    service: &str,
) -> Result<(RefundStage<DynamoInventory, Gateway>, WorkerConfig), ConfigError> {
    let config = PaymentConfig::for_service(env, service)?;
    let store = DynamoInventory::new(
        orders(sdk, &config.table_name),
        config.inventory_table_name.clone(),
    )
    .with_conflict_tries(config.conflict_tries);
    let gateway = gateway(&config.provider, sdk)?;
    let backoff = config.worker.backoff.unwrap_or(Backoff {
        base: std::time::Duration::from_secs(10),
        max: std::time::Duration::from_secs(300),
    });
    Ok((
        RefundStage::new(store, gateway, backoff, config.max_attempts),
        config.worker,
    ))
}

/// refund-dlq: the refund DLQ -> the refund stage's last attempt, else the letter stays.
pub struct RefundDlqFn;

impl Function for RefundDlqFn {
    const NAME: &'static str = "refund-dlq";
    const DEAD_LETTERS_OF: Option<&'static str> = Some("refund");
    type Handler = SqsWorker<EventStage<RefundDlqStage<DynamoInventory, Gateway>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let (stage, worker_config) = refund_stage(env, sdk, Self::NAME)?;
        worker(
            EventStage(RefundDlqStage::new(stage)),
            worker_config,
            sdk,
            telemetry,
        )
    }
}

/// notification: terminal outcomes -> customer notifications; PAID -> COMPLETED.
pub struct NotificationFn;

impl Function for NotificationFn {
    const NAME: &'static str = "notification";
    type Handler = SqsWorker<EventStage<NotificationStage<DynamoStore, SnsCustomerPublisher>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = NotificationConfig::from_env(env)?;
        worker(
            EventStage(notification_stage(&config, sdk)),
            config.worker,
            sdk,
            telemetry,
        )
    }
}

/// notification-dlq: the notification DLQ -> a last attempt, else the failure recorded on the
/// order (PAID -> COMPLETED for a confirmation).
pub struct NotificationDlqFn;

impl Function for NotificationDlqFn {
    const NAME: &'static str = "notification-dlq";
    const DEAD_LETTERS_OF: Option<&'static str> = Some("notification");
    type Handler = SqsWorker<EventStage<NotificationDlqStage<DynamoStore, SnsCustomerPublisher>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        let config = NotificationConfig::for_service(env, Self::NAME)?;
        worker(
            EventStage(NotificationDlqStage::new(notification_stage(&config, sdk))),
            config.worker,
            sdk,
            telemetry,
        )
    }
}

/// The notification stage of `config` (notification's, and notification-dlq's last attempt).
fn notification_stage(
    config: &NotificationConfig,
    sdk: &SdkConfig,
) -> NotificationStage<DynamoStore, SnsCustomerPublisher> {
    NotificationStage::new(
        orders(sdk, &config.table_name),
        SnsCustomerPublisher::new(aws_sdk_sns::Client::new(sdk), config.topic_arn.clone()),
    )
}

/// order-watch: OrderAccepted, delayed by the stuck-order age -> an order not ended by then goes
/// to the stuck-order list (its DLQ).
pub struct OrderWatchFn;

impl Function for OrderWatchFn {
    const NAME: &'static str = "order-watch";
    type Handler = SqsWorker<EventStage<OrderWatch<DynamoStore>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        order_watch(
            WatchConfig::for_service(env, Self::NAME)?,
            WatchMode::Watch,
            sdk,
            telemetry,
        )
    }
}

/// order-watch-dlq: the stuck-order list -> an order that has ended since leaves it, one still
/// stuck stays (and keeps the list's alarm on).
pub struct OrderWatchDlqFn;

impl Function for OrderWatchDlqFn {
    const NAME: &'static str = "order-watch-dlq";
    const DEAD_LETTERS_OF: Option<&'static str> = Some("order-watch");
    type Handler = SqsWorker<EventStage<OrderWatch<DynamoStore>>>;

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &SdkConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self::Handler, ConfigError> {
        order_watch(
            WatchConfig::for_service(env, Self::NAME)?,
            WatchMode::StuckList,
            sdk,
            telemetry,
        )
    }
}

fn order_watch(
    config: WatchConfig,
    mode: WatchMode,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<SqsWorker<EventStage<OrderWatch<DynamoStore>>>, ConfigError> {
    let watch = OrderWatch::new(
        orders(sdk, &config.table_name),
        config.stuck_after,
        mode,
        waiting_on,
    );
    worker(EventStage(watch), config.worker, sdk, telemetry)
}

/// The stages that act on an order in `status`: those subscribed to an event that enters it
/// (not its dead-letter handlers, nor the watch), for a stuck order's "look at".
pub fn waiting_on(status: OrderStatus) -> Vec<&'static str> {
    let entered_by: Vec<EventType> = order_domain::TRANSITIONS
        .iter()
        .filter(|t| t.to == status)
        .map(|t| t.event)
        .collect();
    functions()
        .into_iter()
        .filter(|f| {
            f.trigger == Trigger::Sqs
                && f.dead_letters_of.is_none()
                && f.name != OrderWatchFn::NAME
                && f.events.iter().any(|e| entered_by.contains(e))
        })
        .map(|f| f.name)
        .collect()
}
