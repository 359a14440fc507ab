//! Process start-up for the Lambda binaries: logging, configuration, SDK clients, built once
//! and reused by every warm invocation.

use std::sync::Arc;

use crate::config::{ConfigError, ConsumerConfig, DlqAlarmConfig, Env};
use crate::consumer::OrderConsumer;
use crate::dlq_alarm::DlqAlarm;
use crate::notify::SnsNotifier;
use crate::queue::SqsDeadLetterQueue;
use crate::store::DynamoStore;
use crate::telemetry::{init_logging, LineWriter, Stdout};

pub type LambdaConsumer = OrderConsumer<DynamoStore>;
pub type LambdaDlqAlarm = DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier>;

fn started<T>(service: &str, config: Result<T, ConfigError>) -> Result<T, ConfigError> {
    let writer: Arc<dyn LineWriter> = Arc::new(Stdout);
    init_logging(service, writer);
    if let Err(e) = &config {
        tracing::error!(error = %e, "configuration is invalid: the function cannot start");
    }
    config
}

pub async fn order_consumer() -> Result<LambdaConsumer, ConfigError> {
    let env = Env::process();
    let config = started("order-consumer", ConsumerConfig::from_env(&env))?;
    let sdk = crate::aws::sdk_config().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    Ok(OrderConsumer::new(store, config, Arc::new(Stdout)))
}

pub async fn dlq_alarm() -> Result<LambdaDlqAlarm, ConfigError> {
    let env = Env::process();
    let config = started("dlq-alarm", DlqAlarmConfig::from_env(&env))?;
    let sdk = crate::aws::sdk_config().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let dlq = SqsDeadLetterQueue::new(aws_sdk_sqs::Client::new(&sdk), config.dlq_url.clone());
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), config.ops_topic_arn.clone());
    Ok(DlqAlarm::new(
        store,
        dlq,
        notifier,
        config,
        Arc::new(Stdout),
    ))
}
