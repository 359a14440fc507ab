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
};
use crate::consumer::{OrderConsumer, OrderConsumerFunction};
use crate::dlq_alarm::DlqAlarm;
use crate::events::{OrderEvents, SnsEventPublisher};
use crate::inventory::{DynamoInventory, InventoryFunction, InventoryWorker};
use crate::notify::{SnsNotifier, SnsOrderPublisher};
use crate::queue::SqsDeadLetterQueue;
use crate::store::DynamoStore;
use crate::telemetry::{init_logging, LineWriter, Stdout};
use crate::worker::SqsWorker;

pub type LambdaConsumer = OrderConsumerFunction<DynamoStore>;
pub type LambdaDlqAlarm = DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier>;
pub type LambdaOrderApi = OrderApi<SnsOrderPublisher, DynamoStore>;
pub type LambdaOrderEvents = OrderEvents<SnsEventPublisher>;
pub type LambdaInventory = InventoryFunction<DynamoInventory>;

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

/// Starts logging for a Lambda binary and reads its configuration, logging a bad one.
fn started<T>(service: &str, config: Result<T, ConfigError>) -> Result<T, ConfigError> {
    let writer: Arc<dyn LineWriter> = Arc::new(Stdout);
    init_logging(service, writer);
    if let Err(e) = &config {
        tracing::error!(error = %e, "configuration is invalid: the function cannot start");
    }
    config
}

/// order-consumer from `env` and `sdk`, writing telemetry to `telemetry`.
pub fn order_consumer_with<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<LambdaConsumer, ConfigError> {
    let config = ConsumerConfig::from_env(env)?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name);
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
