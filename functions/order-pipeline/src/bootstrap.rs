//! Process start-up for the Lambda binaries: logging, configuration, SDK clients, built once
//! and reused by every warm invocation.
//!
//! Each function is built from an environment lookup and an SDK configuration, so the local
//! runner builds the very same objects from the environment the synthesized template gives the
//! function, and the Lambda binary from the process environment.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::api::OrderApi;
use crate::config::{
    ApiConfig, ConfigError, ConsumerConfig, DlqAlarmConfig, Env, EventsConfig, InventoryConfig,
    NotificationConfig, PaymentConfig, ProviderConfig,
};
use crate::consumer::{OrderConsumer, OrderConsumerFunction};
use crate::dlq_alarm::DlqAlarm;
use crate::events::{OrderEvents, SnsEventPublisher};
use crate::inventory::{DynamoInventory, InventoryFunction, InventoryWorker};
use crate::notification::{NotificationWorker, SnsCustomerPublisher};
use crate::notify::{SnsNotifier, SnsOrderPublisher};
use crate::payment::{
    ApiKey, Gateway, HttpGateway, PaymentDeadLetters, PaymentSettings, PaymentWorker,
    SimulatedGateway,
};
use crate::queue::SqsDeadLetterQueue;
use crate::queue::SqsVisibility;
use crate::store::DynamoStore;
use crate::telemetry::{init_logging, LineWriter, Stdout};
use crate::worker::SqsWorker;

pub type LambdaConsumer = OrderConsumerFunction<DynamoStore>;
pub type LambdaDlqAlarm = DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier>;
pub type LambdaOrderApi = OrderApi<SnsOrderPublisher, DynamoStore>;
pub type LambdaOrderEvents = OrderEvents<SnsEventPublisher>;
pub type LambdaInventory = InventoryFunction<DynamoInventory>;
pub type LambdaPayment = SqsWorker<PaymentWorker<DynamoInventory, Gateway>>;
pub type LambdaPaymentDlq = SqsWorker<PaymentDeadLetters<DynamoInventory>>;
pub type LambdaNotification = SqsWorker<NotificationWorker<DynamoStore, SnsCustomerPublisher>>;

/// The stage's worker, with its backoff wired to its own queue when it has one.
fn worker<H: crate::worker::RecordHandler>(
    handler: H,
    config: crate::config::WorkerConfig,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> SqsWorker<H> {
    let visibility = match (&config.backoff, &config.queue_url) {
        (Some(_), Some(url)) => Some(SqsVisibility::new(
            aws_sdk_sqs::Client::new(sdk),
            url.clone(),
        )),
        _ => None,
    };
    let worker = SqsWorker::new(handler, config, telemetry);
    match visibility {
        Some(v) => worker.with_visibility(Arc::new(v)),
        None => worker,
    }
}

/// The payment stage from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn payment_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaPayment, ConfigError> {
    let config = PaymentConfig::from_env(env)?;
    let orders = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table_name.clone(),
    );
    let store = DynamoInventory::new(orders, config.inventory_table_name.clone());
    let gateway = match &config.provider {
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
    };
    let settings = PaymentSettings {
        max_attempts: config.max_attempts,
        backoff: config.worker.backoff.unwrap_or(crate::worker::Backoff {
            base: std::time::Duration::from_secs(10),
            max: std::time::Duration::from_secs(300),
        }),
    };
    let mode = crate::payment::PaymentGateway::provider(&gateway);
    Ok(worker(
        PaymentWorker::new(store, gateway, settings),
        config.worker,
        sdk,
        telemetry,
    )
    .with_mode(if mode == "simulated" {
        "simulated payments"
    } else {
        "payments"
    }))
}

/// The payment DLQ handler from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn payment_dlq_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaPaymentDlq, ConfigError> {
    let config = PaymentConfig::dead_letters_from_env(env)?;
    let orders = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table_name.clone(),
    );
    let store = DynamoInventory::new(orders, config.inventory_table_name.clone());
    Ok(worker(
        PaymentDeadLetters::new(store),
        config.worker,
        sdk,
        telemetry,
    ))
}

/// The notification stage from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn notification_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaNotification, ConfigError> {
    let config = NotificationConfig::from_env(env)?;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table_name.clone(),
    );
    let publisher =
        SnsCustomerPublisher::new(aws_sdk_sns::Client::new(sdk), config.topic_arn.clone());
    Ok(worker(
        NotificationWorker::new(store, publisher),
        config.worker,
        sdk,
        telemetry,
    ))
}

/// The payment Lambda binary's start-up.
pub async fn payment() -> Result<LambdaPayment, ConfigError> {
    let env = Env::process();
    let config = started("payment", PaymentConfig::from_env(&env))?;
    if let ProviderConfig::Simulated { .. } = config.provider {
        tracing::warn!(mode = "simulated payments", "no payment provider is configured (paymentProviderUrl): charges are simulated, nothing is charged");
    }
    payment_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// The payment-dlq Lambda binary's start-up.
pub async fn payment_dlq() -> Result<LambdaPaymentDlq, ConfigError> {
    let env = Env::process();
    started("payment-dlq", PaymentConfig::dead_letters_from_env(&env))?;
    payment_dlq_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// The notification Lambda binary's start-up.
pub async fn notification() -> Result<LambdaNotification, ConfigError> {
    let env = Env::process();
    started("notification", NotificationConfig::from_env(&env))?;
    notification_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// order-events from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn order_events_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaOrderEvents, ConfigError> {
    let config = EventsConfig::from_env(env)?;
    let publisher = SnsEventPublisher::new(
        aws_sdk_sns::Client::new(sdk),
        config.order_events_topic_arn.clone(),
    );
    Ok(OrderEvents::new(publisher, config.service, telemetry))
}

/// The inventory stage from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn inventory_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaInventory, ConfigError> {
    let config = InventoryConfig::from_env(env)?;
    let orders = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name);
    let store = DynamoInventory::new(orders, config.inventory_table_name);
    Ok(SqsWorker::new(
        InventoryWorker::new(store),
        config.worker,
        telemetry,
    ))
}

/// The order-events Lambda binary's start-up.
pub async fn order_events() -> Result<LambdaOrderEvents, ConfigError> {
    let env = Env::process();
    started("order-events", EventsConfig::from_env(&env))?;
    order_events_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// The inventory Lambda binary's start-up.
pub async fn inventory() -> Result<LambdaInventory, ConfigError> {
    let env = Env::process();
    started("inventory", InventoryConfig::from_env(&env))?;
    inventory_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// Starts logging for a Lambda binary and reads its configuration (a bad one is reported by
/// [`start`]).
fn started<T>(service: &str, config: Result<T, ConfigError>) -> Result<T, ConfigError> {
    let writer: Arc<dyn LineWriter> = Arc::new(Stdout);
    init_logging(service, writer);
    config
}

/// A Lambda binary's start-up, awaited: the function, or, when it cannot start, one JSON ERROR
/// line saying why and what to do, the error reported to the runtime API's init-error endpoint
/// (so Lambda shows it as the init error), and exit status 1, without Rust's Debug dump on
/// stderr.
pub async fn start<T>(init: impl std::future::Future<Output = Result<T, ConfigError>>) -> T {
    match init.await {
        Ok(function) => function,
        Err(e) => {
            tracing::error!(
                error = %e,
                action = "fix the function's environment (its settings in cdk.json), then deploy again",
                "configuration is invalid: the function cannot start"
            );
            if let Err(report) = report_init_error(&e.to_string()).await {
                tracing::error!(error = %report, "could not report the init error to the Lambda runtime API");
            }
            std::process::exit(1);
        }
    }
}

/// POSTs `message` to the runtime API's `/runtime/init/error` (AWS_LAMBDA_RUNTIME_API); nothing
/// outside Lambda (the variable unset).
pub async fn report_init_error(message: &str) -> Result<(), String> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Ok(());
    }
    let client = lambda_runtime_api_client::Client::builder()
        .build()
        .map_err(|e| e.to_string())?;
    let body = serde_json::json!({
        "errorType": "Runtime.InitError",
        "errorMessage": message,
    })
    .to_string();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = client.call(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the runtime API answered {}", response.status()))
    }
}

/// order-consumer from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn order_consumer_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaConsumer, ConfigError> {
    let config = ConsumerConfig::from_env(env)?;
    // A batch's new orders go out as one request (store::dynamodb's doc; docs/benchmarks.md).
    let store =
        DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name).batching_creates();
    Ok(SqsWorker::new(
        OrderConsumer::new(store),
        config.worker,
        telemetry,
    ))
}

/// dlq-alarm from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn dlq_alarm_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaDlqAlarm, ConfigError> {
    let config = DlqAlarmConfig::from_env(env)?;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table_name.clone(),
    );
    let dlq = SqsDeadLetterQueue::new(aws_sdk_sqs::Client::new(sdk), config.dlq_url.clone());
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(sdk), config.ops_topic_arn.clone());
    Ok(DlqAlarm::new(store, dlq, notifier, config, telemetry))
}

/// order-api from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn order_api_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaOrderApi, ConfigError> {
    let config = ApiConfig::from_env(env)?;
    let publisher = SnsOrderPublisher::new(
        aws_sdk_sns::Client::new(sdk),
        config.order_topic_arn.clone(),
    );
    let reader = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table_name.clone(),
    );
    Ok(OrderApi::new(publisher, reader, config, telemetry))
}

/// The order-api Lambda binary's start-up.
pub async fn order_api() -> Result<LambdaOrderApi, ConfigError> {
    let env = Env::process();
    started("order-api", ApiConfig::from_env(&env))?;
    order_api_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// The order-consumer Lambda binary's start-up.
pub async fn order_consumer() -> Result<LambdaConsumer, ConfigError> {
    let env = Env::process();
    started("order-consumer", ConsumerConfig::from_env(&env))?;
    order_consumer_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}

/// The dlq-alarm Lambda binary's start-up.
pub async fn dlq_alarm() -> Result<LambdaDlqAlarm, ConfigError> {
    let env = Env::process();
    started("dlq-alarm", DlqAlarmConfig::from_env(&env))?;
    dlq_alarm_with(&env, &crate::aws::sdk_config().await, Arc::new(Stdout))
}
