//! Per-record cost: parse + validate + map to the DynamoDB item for each accepted form (the unit
//! of `src/records.rs`, which order-bench's section 2 times too), and the
//! order-consumer handler over a batch of 10 with the store behind a no-op fake (the JSON log
//! layer is installed and writes to nowhere, so logging's cost is included).

use std::hint::black_box;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use criterion::{criterion_group, criterion_main, Criterion};
use order_domain::OrderItem;
use order_pipeline::ports::orders::{CreateResult, OrderStore, Reaccept};
use order_pipeline::ports::PortError;
use order_pipeline::runtime::config::WorkerConfig;
use order_pipeline::runtime::telemetry::{init_logging, LineWriter};
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::intake::OrderConsumer;

#[path = "../src/records.rs"]
mod records;

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

fn forms(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse+validate+item");
    for (name, body) in records::forms() {
        group.bench_function(name, |b| b.iter(|| records::to_item(black_box(&body))));
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
        None,
    )
    .unwrap();
    let records: Vec<SqsMessage> = (0..10)
        .map(|i| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(records::CANONICAL.replace("O1234", &format!("O{i}")));
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
