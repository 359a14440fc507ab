//! Per-record cost: parse + validate + map to the DynamoDB item for each accepted form, and the
//! order-consumer handler over a batch of 10 with the store behind a no-op fake (the JSON log
//! layer is installed and writes to nowhere, so logging's cost is included).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use order_domain::{parse_body, OrderItem, Provenance};
use order_pipeline::config::WorkerConfig;
use order_pipeline::consumer::OrderConsumer;
use order_pipeline::port::PortError;
use order_pipeline::store::{item_attributes, CreateResult, OrderStore, Reaccept};
use order_pipeline::telemetry::{init_logging, LineWriter};
use order_pipeline::worker::SqsWorker;

const SEED_001: &str = include_str!("../../test/events/payloads/seed-001-flat.json");
const SEED_002: &str = include_str!("../../test/events/payloads/seed-002-snake.json");
const CANONICAL: &str = include_str!("../../test/events/payloads/canonical.json");

struct Nowhere;
impl LineWriter for Nowhere {
    fn write_line(&self, line: &str) {
        black_box(line);
    }
}

/// Every write succeeds at once.
struct NoopStore;
impl OrderStore for NoopStore {
    async fn create(&self, _item: &OrderItem) -> Result<CreateResult, PortError> {
        Ok(CreateResult::Created)
    }
    async fn reaccept(&self, _r: &Reaccept) -> Result<bool, PortError> {
        Ok(true)
    }
}

/// What order-consumer does with a body before its write: parse, validate, build the item and
/// its DynamoDB attributes (as `PutItem` takes them).
fn to_item(body: &str) -> HashMap<String, AttributeValue> {
    let (order, _) = parse_body(body).order.expect("valid order");
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: "c".into(),
        sent_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    };
    let item = OrderItem::accepted(&order, &from, Utc.timestamp_opt(1_700_000_001, 0).unwrap());
    item_attributes(&item).expect("maps to attributes")
}

fn forms(c: &mut Criterion) {
    let enveloped =
        serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": CANONICAL})
            .to_string();
    let mut group = c.benchmark_group("parse+validate+item");
    for (name, body) in [
        ("canonical", CANONICAL.to_string()),
        ("flat (seed 001)", SEED_001.to_string()),
        ("snake_case (seed 002)", SEED_002.to_string()),
        ("canonical in SNS envelope", enveloped),
    ] {
        group.bench_function(name, |b| b.iter(|| to_item(black_box(&body))));
    }
    group.finish();
}

fn handler(c: &mut Criterion) {
    init_logging("bench", Arc::new(Nowhere));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let consumer = SqsWorker::new(
        OrderConsumer::new(NoopStore),
        WorkerConfig {
            max_receive_count: 3,
            record_concurrency: 10,
            start_margin: std::time::Duration::from_secs(3),
            answer_reserve: std::time::Duration::from_millis(500),
            backoff: None,
            queue_url: None,
            service: "bench".into(),
        },
        Arc::new(Nowhere),
    );
    let records: Vec<SqsMessage> = (0..10)
        .map(|i| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(CANONICAL.replace("O1234", &format!("O{i}")));
            m.attributes
                .insert("SentTimestamp".into(), "1746273600000".into());
            m
        })
        .collect();
    c.bench_function("handler, batch of 10, no-op store", |b| {
        b.iter(|| {
            runtime
                .block_on(consumer.handle_records(black_box(&records)))
                .expect("batch")
        })
    });
}

criterion_group!(benches, forms, handler);
criterion_main!(benches);
