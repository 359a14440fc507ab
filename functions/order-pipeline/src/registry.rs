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

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use order_domain::EventType;

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
    InventoryConfig, NotificationConfig, PaymentConfig, ProviderConfig, WorkerConfig,
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

/// How Lambda invokes a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An SQS event source mapping (a stage, or a DLQ's handler).
    Sqs,
    /// The Orders table's stream.
    Stream,
    /// A CloudWatch alarm's action and an EventBridge schedule.
    Alarm,
    /// API Gateway's HTTP API.
    Http,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sqs => "sqs",
            Trigger::Stream => "stream",
            Trigger::Alarm => "alarm",
            Trigger::Http => "http",
        }
    }
}

/// A function's built handler, as the local runner and the tests hold it.
#[derive(Clone)]
pub enum Built {
    Sqs(Arc<dyn SqsFunction>),
    Stream(Arc<OrderEventsFunction>),
    Alarm(Arc<DlqAlarmFunction>),
    Http(Arc<OrderApiFunction>),
}

/// A record's message id and its outcome's label.
pub type Labels = Vec<(String, &'static str)>;

/// A queue-fed function behind one object type, whatever its handler: what an SQS event
/// source mapping invokes.
pub trait SqsFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>>;
}

impl<H: RecordHandler + 'static> SqsFunction for SqsWorker<H> {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>> {
        Box::pin(async move {
            let (response, reports) = self
                .handle_reporting(event)
                .await
                .map_err(|e| e.to_string())?;
            let labels = reports
                .iter()
                .map(|r| (r.message_id.clone(), r.outcome.label()))
                .collect();
            Ok((response, labels))
        })
    }
}

/// How Lambda invokes a handler: its trigger, and the runtime loop that feeds it.
pub trait Invoked: Send + Sync + Sized + 'static {
    const TRIGGER: Trigger;
    /// The lifecycle event types it acts on (an event-driven stage's subscription filter).
    const EVENTS: &'static [EventType] = &[];
    /// Runs Lambda's runtime loop with this handler until the process ends.
    fn serve(&'static self)
        -> impl std::future::Future<Output = Result<(), lambda_runtime::Error>>;
    /// The handler as the local runner holds it.
    fn into_built(self) -> Built;
}

impl<H: RecordHandler + 'static> Invoked for SqsWorker<H> {
    const TRIGGER: Trigger = Trigger::Sqs;
    const EVENTS: &'static [EventType] = H::EVENTS;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            self.handle(event)
        }))
        .await
    }

    fn into_built(self) -> Built {
        Built::Sqs(Arc::new(self))
    }
}

impl Invoked for OrderEventsFunction {
    const TRIGGER: Trigger = Trigger::Stream;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| self.handle(event))).await
    }

    fn into_built(self) -> Built {
        Built::Stream(Arc::new(self))
    }
}

impl Invoked for DlqAlarmFunction {
    const TRIGGER: Trigger = Trigger::Alarm;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
            self.handle_event(event)
        }))
        .await
    }

    fn into_built(self) -> Built {
        Built::Alarm(Arc::new(self))
    }
}

impl Invoked for OrderApiFunction {
    const TRIGGER: Trigger = Trigger::Http;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_http::run(service_fn(
            move |request: lambda_http::Request| async move {
                Ok::<_, std::convert::Infallible>(self.handle(request).await)
            },
        ))
        .await
    }

    fn into_built(self) -> Built {
        Built::Http(Arc::new(self))
    }
}

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
pub fn functions() -> [Registered; 10] {
    [
        Registered::of::<OrderConsumerFn>(),
        Registered::of::<DlqAlarmFn>(),
        Registered::of::<OrderApiFn>(),
        Registered::of::<OrderEventsFn>(),
        Registered::of::<InventoryFn>(),
        Registered::of::<InventoryDlqFn>(),
        Registered::of::<PaymentFn>(),
        Registered::of::<PaymentDlqFn>(),
        Registered::of::<NotificationFn>(),
        Registered::of::<NotificationDlqFn>(),
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

/// The order-consumer Lambda function: the intake's record handler in the shared batch worker.
pub type OrderConsumerFunction<S> = SqsWorker<OrderConsumer<S>>;
pub type OrderEventsFunction = OrderEvents<SnsEventPublisher>;
pub type DlqAlarmFunction = DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier>;
pub type OrderApiFunction = OrderApi<SnsOrderPublisher, DynamoStore>;

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
        ),
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
        );
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
        );
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
