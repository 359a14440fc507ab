//! Helpers shared by order-pipeline's test files, each of which includes this module with
//! `mod common;`: the intake's worker and its SQS records, log capture, dlq-alarm and its alarm
//! events (contract.rs, telemetry.rs, dlq_alarm.rs), and a RESERVED order's lifecycle event and
//! its delivery to an event stage (payment.rs, notification.rs). A helper one file alone uses
//! stays in that file.
// Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{EventType, LifecycleEvent, OrderItem, OrderStatus, Provenance, ReservedLine};
use order_pipeline::adapters::memory::orders::MemoryStore;
use order_pipeline::adapters::memory::publish::MemoryNotifier;
use order_pipeline::adapters::memory::queue::MemoryDeadLetterQueue;
use order_pipeline::functions::dlq_alarm::DlqAlarm;
use order_pipeline::ports::queue::DeadLetter;
use order_pipeline::registry::OrderConsumerFunction;
use order_pipeline::runtime::config::{Backoff, DlqAlarmConfig, WorkerConfig};
use order_pipeline::runtime::telemetry::{capture_logs_into, Captured};
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::intake::OrderConsumer;
use serde_json::json;

// --- the intake (order-consumer) ---

pub fn worker_config() -> WorkerConfig {
    WorkerConfig {
        max_receive_count: 3,
        record_concurrency: 4,
        start_margin: Duration::from_secs(3),
        answer_reserve: Duration::from_millis(500),
        backoff: None,
        queue_url: None,
        service: "order-consumer".into(),
    }
}

pub fn consumer(captured: &Captured) -> OrderConsumerFunction<MemoryStore> {
    SqsWorker::new(
        OrderConsumer::new(MemoryStore::new()),
        worker_config(),
        Arc::new(captured.clone()),
        None,
    )
    .unwrap()
}

pub fn order_body(id: &str, quantity: u32) -> String {
    serde_json::json!({
        "orderId": id,
        "customerId": "U1",
        "items": [{"sku": "LAPTOP-15", "name": "Laptop", "quantity": quantity, "unitPrice": "999.99"}],
        "currency": "USD",
        "createdAt": "2025-05-03T12:00:00Z"
    })
    .to_string()
}

pub fn record(message_id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("SentTimestamp".into(), "1746273600000".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

/// Runs `f` with this thread's log lines captured into `captured`.
pub async fn logged<T>(captured: &Captured, f: impl std::future::Future<Output = T>) -> T {
    capture_logs_into(captured);
    f.await
}

// --- dlq-alarm ---

pub fn dlq_config() -> DlqAlarmConfig {
    DlqAlarmConfig {
        table_name: "Orders".into(),
        dlq_url: "memory".into(),
        ops_topic_arn: "memory".into(),
        snapshot_max: 100,
        snapshot_visibility_seconds: 30,
        concurrency: 4,
        start_margin: Duration::from_secs(3),
        service: "dlq-alarm".into(),
    }
}

pub fn letter(id: &str, body: &str) -> DeadLetter {
    DeadLetter {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body: body.into(),
        receive_count: 3,
        sent_timestamp_ms: Some(1_746_273_600_000),
        correlation_attribute: None,
    }
}

pub fn alarm_fn(
    letters: Vec<DeadLetter>,
) -> DlqAlarm<MemoryStore, MemoryDeadLetterQueue, MemoryNotifier> {
    DlqAlarm::new(
        MemoryStore::new(),
        MemoryDeadLetterQueue::with(letters),
        MemoryNotifier::default(),
        dlq_config(),
        Arc::new(Captured::default()),
    )
}

pub fn alarm_event(state: &str) -> CloudWatchAlarm {
    let previous = if state == "OK" { "ALARM" } else { "OK" };
    alarm_transition(previous, state)
}

pub fn alarm_transition(previous: &str, state: &str) -> CloudWatchAlarm {
    serde_json::from_value(serde_json::json!({
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:xx-east-1:000000000000:alarm:OrderDlqDepth",
        "time": "2025-05-03T12:05:00.000+0000",
        "alarmData": {
            "alarmName": "OrderDlqDepth",
            "state": {"value": state, "reason": "test", "timestamp": "2025-05-03T12:05:00.000+0000"},
            "previousState": {"value": previous, "reason": "test", "timestamp": "2025-05-03T12:00:00.000+0000"},
            "configuration": {"metrics": []}
        }
    }))
    .expect("alarm event parses")
}

// --- the lifecycle's event stages ---

pub const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(10),
    max: Duration::from_secs(60),
};

pub fn config(service: &str) -> WorkerConfig {
    WorkerConfig {
        max_receive_count: 6,
        record_concurrency: 4,
        start_margin: Duration::from_secs(3),
        answer_reserve: Duration::from_millis(500),
        backoff: Some(BACKOFF),
        queue_url: None,
        service: service.into(),
    }
}

/// An order RESERVED at version 2 with 2 x A and 1 x B (amount 25 USD), and its event.
pub fn reserved(order_id: &str, customer: &str) -> (OrderItem, LifecycleEvent) {
    let body = json!({"orderId": order_id, "customerId": customer, "currency": "USD",
        "items": [{"sku": "A", "quantity": 2, "unitPrice": "10"}, {"sku": "B", "quantity": 1, "unitPrice": "5"}]});
    let (order, _) = order_domain::parse_order(&body.to_string()).unwrap();
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: format!("corr-{order_id}"),
        sent_at: Utc::now(),
    };
    let accepted = OrderItem::accepted(order, from, Utc::now());
    let mut item = accepted.clone();
    item.status = OrderStatus::Reserved;
    item.version = 2;
    item.reserved_at = Some("2026-01-01T00:00:01Z".into());
    item.amount = Some("25".into());
    item.reservation = Some(vec![
        ReservedLine {
            sku: "A".into(),
            quantity: 2,
        },
        ReservedLine {
            sku: "B".into(),
            quantity: 1,
        },
    ]);
    let event = LifecycleEvent::from_change(Some(&accepted), &item, "now").unwrap();
    assert_eq!(event.event_type, EventType::InventoryReserved);
    (item, event)
}

pub fn sqs(id: &str, body: &str, receives: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.receipt_handle = Some(format!("handle-{id}"));
    m.body = Some(body.into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    m
}

pub async fn deliver<H: order_pipeline::runtime::worker::RecordHandler>(
    w: &SqsWorker<H>,
    event: &LifecycleEvent,
    receives: u32,
) -> (&'static str, bool) {
    let body = serde_json::to_string(event).unwrap();
    let (response, reports) = w
        .handle_records(&[sqs("m1", &body, receives)])
        .await
        .unwrap_or_else(|e| panic!("the invocation failed: {e}"));
    (
        reports[0].outcome.label(),
        !response.batch_item_failures.is_empty(),
    )
}
