//! What the tests on moto's server share: the emulator with the stack's resources created, the
//! functions' handlers on them, orders and records, and reading and filling the queues.
#![allow(dead_code)] // each test binary uses its part

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;
use std::time::Duration;

use order_local::alarm::alarm_event;
use order_local::emulator::Emulator;
use order_local::resources::{create, AlarmSpec, Created, LocalStack};
use order_local::template::Template;
use order_local::Clients;
use order_pipeline::adapters::dynamodb::DynamoStore;
use order_pipeline::adapters::sns::SnsNotifier;
use order_pipeline::adapters::sqs::SqsDeadLetterQueue;
use order_pipeline::functions::dlq_alarm::DlqAlarm;
use order_pipeline::registry::OrderConsumerFunction;
use order_pipeline::runtime::config::{DlqAlarmConfig, WorkerConfig};
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::intake::OrderConsumer;

pub struct Env {
    pub _emulator: Emulator,
    pub clients: Clients,
    pub template: Template,
    pub created: Created,
    pub stack: LocalStack,
    pub store: DynamoStore,
}

pub async fn env(prefix: &str) -> Env {
    let emulator =
        Emulator::start().expect("moto_server starts (run `make setup` if it is missing)");
    let clients = Clients::new(&emulator.sdk_config().await, emulator.endpoint());
    let template = Template::current().expect("the stack's template synthesizes");
    let created = create(&clients, &template, prefix)
        .await
        .expect("resources created");
    let stack = created.stack.clone();
    let store = DynamoStore::new(clients.dynamodb.clone(), stack.table_name.clone());
    Env {
        _emulator: emulator,
        clients,
        template,
        created,
        stack,
        store,
    }
}

pub fn consumer(store: DynamoStore, _table: &str) -> OrderConsumerFunction<DynamoStore> {
    let config = WorkerConfig {
        max_receive_count: 3,
        record_concurrency: 4,
        start_margin: Duration::from_secs(3),
        answer_reserve: Duration::from_millis(500),
        backoff: None,
        queue_url: None,
        service: "order-consumer".into(),
    };
    SqsWorker::new(
        OrderConsumer::new(store),
        config,
        Arc::new(Captured::default()),
        None,
    )
    .unwrap()
}

pub fn dlq_alarm(e: &Env) -> DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier> {
    let config = DlqAlarmConfig {
        table_name: e.stack.table_name.clone(),
        dlq_url: e.stack.dlq_url.clone(),
        ops_topic_arn: e.stack.ops_topic_arn.clone(),
        snapshot_max: 100,
        snapshot_visibility_seconds: 30,
        concurrency: 4,
        start_margin: Duration::from_secs(3),
        service: "dlq-alarm".into(),
    };
    DlqAlarm::new(
        e.store.clone(),
        SqsDeadLetterQueue::new(e.clients.sqs.clone(), e.stack.dlq_url.clone()),
        SnsNotifier::new(e.clients.sns.clone(), e.stack.ops_topic_arn.clone()),
        config,
        Arc::new(Captured::default()),
    )
}

pub fn order(id: &str, quantity: u32) -> String {
    serde_json::json!({
        "orderId": id, "customerId": "U1", "currency": "USD", "createdAt": "2025-05-03T12:00:00Z",
        "items": [{"sku": "LAPTOP-15", "quantity": quantity, "unitPrice": "999.99"}]
    })
    .to_string()
}

pub fn record(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("SentTimestamp".into(), "1746273600000".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

pub fn alarm(state: &str) -> CloudWatchAlarm {
    let spec = AlarmSpec {
        id: "DlqDepth".into(),
        name: "dlq-depth".into(),
        namespace: "AWS/SQS".into(),
        metric_name: "ApproximateNumberOfMessagesVisible".into(),
        dimensions: vec![("QueueName".into(), "dlq".into())],
        expression: Some("visible + inflight".into()),
        statistic: "Maximum".into(),
        period_seconds: 60,
        evaluation_periods: 1,
        threshold: 1.0,
        comparison_operator: "GreaterThanOrEqualToThreshold".into(),
        treat_missing_data: "notBreaching".into(),
        alarm_actions: vec![],
        ok_actions: vec![],
        description: None,
    };
    serde_json::from_value(alarm_event(&spec, "OK", state, 1.0, chrono::Utc::now()))
        .expect("alarm event")
}

pub async fn send_to_dlq(e: &Env, bodies: &[String]) {
    for (i, body) in bodies.iter().enumerate() {
        e.clients
            .sqs
            .send_message()
            .queue_url(&e.stack.dlq_url)
            .message_body(body)
            .message_attributes(
                "correlationId",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(format!("corr-{i}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("send to DLQ");
    }
}

pub async fn send_messages(clients: &Clients, queue_url: &str, n: usize) {
    for i in 0..n {
        clients
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(format!("{{\"orderId\":\"P{i}\"}}"))
            .send()
            .await
            .unwrap();
    }
}

/// (visible, in flight) messages of `queue_url` (u64::MAX when the emulator leaves one out).
pub async fn visible_and_hidden(clients: &Clients, queue_url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |k: A| {
        attrs
            .get(&k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
    )
}

pub async fn sqs_through(proxy: &order_local::faults::FaultProxy) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&order_local::emulator::function_sdk_config_for(&proxy.url).await)
}

pub async fn dynamodb_through(proxy: &order_local::faults::FaultProxy) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&order_local::emulator::function_sdk_config_for(&proxy.url).await)
}

/// Receives up to `max` visible messages of `queue_url` and hides them for ten minutes.
pub async fn hold(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(0)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}
