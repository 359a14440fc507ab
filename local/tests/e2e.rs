//! End to end on the emulator: 1,000+ generated orders with duplicates, conflicting reuses of
//! ids and invalid payloads go through SNS -> SQS -> the event source mapping -> order-consumer
//! -> DynamoDB, with the DLQ and the alarm. Every message must be accounted for: stored once,
//! dropped as a duplicate, or in the DLQ. Zero lost, zero double-written.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use order_domain::{parse_body, OrderStatus};
use order_local::generate::{generate, Intent, Mix};
use order_local::pipeline::{LocalPipeline, Options};
use order_local::report::scan_orders;
use order_local::template::Template;
use order_pipeline::telemetry::Captured;

const ORDERS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_thousand_orders_is_accounted_for_and_none_is_written_twice() {
    let template = Template::current().expect("the stack's template synthesizes");
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            endpoint: None,
            retry_after_seconds: Some(1),
            telemetry: Arc::new(Captured::default()),
            prefix: "e2e".into(),
            alarm_interval: Duration::from_secs(1),
        },
    )
    .await
    .expect("pipeline boots on moto (run `make setup` if moto_server is missing)");

    let mix = Mix {
        duplicates: 0.06,
        conflicts: 0.03,
        invalid: 0.04,
    };
    let planned = generate(ORDERS, mix, 2024, "e2e");
    let drained = pipeline
        .publish_and_drain(&planned, Duration::from_secs(600), |d| {
            eprintln!(
                "e2e: {} queued, {} in DLQ, {} records processed, {}s",
                d.queue,
                d.dlq,
                d.records,
                d.elapsed.as_secs()
            );
        })
        .await
        .expect("publish and drain");
    assert!(drained, "the order queue drained");
    let summary = pipeline.summary(&planned).await.expect("summary");
    eprintln!(
        "{}",
        order_local::report::render(&summary, &pipeline.stack, "(captured)")
    );

    assert!(
        summary.unaccounted.is_empty(),
        "lost messages: {:?}",
        summary.unaccounted
    );
    assert!(
        summary.double_written.is_empty(),
        "written twice: {:?}",
        summary.double_written
    );
    assert!(
        summary.wrong_content.is_empty(),
        "stored with the wrong content: {:?}",
        summary.wrong_content
    );
    assert_eq!(
        summary.stored_by_message + summary.duplicates_dropped + summary.dead_letters.len(),
        ORDERS,
        "each message ends in exactly one place"
    );

    // Independently of the runner's bookkeeping: what the table and the DLQ hold.
    let items = scan_orders(&pipeline.clients, &pipeline.stack.table_name)
        .await
        .unwrap();
    let valid_ids: HashSet<&str> = planned
        .iter()
        .filter(|p| p.intent != Intent::Invalid)
        .filter_map(|p| p.order_id.as_deref())
        .collect();
    assert_eq!(
        items.len(),
        valid_ids.len(),
        "one item per distinct valid order id"
    );
    assert!(items
        .iter()
        .all(|i| i.status == OrderStatus::Accepted && i.version == 1));
    let stored_hash: HashMap<&str, &str> = items
        .iter()
        .map(|i| (i.order_id.as_str(), i.content_hash.as_str()))
        .collect();
    // A message belongs in the DLQ exactly when it is invalid or its content differs from the
    // stored order's (which of two conflicting messages wins depends on arrival order).
    let expected_dlq = planned
        .iter()
        .filter(|p| match parse_body(&p.body).order {
            Err(_) => true,
            Ok((o, _)) => stored_hash.get(o.order_id.as_str()) != Some(&o.content_hash().as_str()),
        })
        .count();
    assert_eq!(summary.dead_letters.len(), expected_dlq);
    let invalid = planned
        .iter()
        .filter(|p| p.intent == Intent::Invalid)
        .count();
    assert!(
        invalid > 0 && expected_dlq > invalid,
        "the run had invalid and conflicting messages"
    );

    // The DLQ alarm fired and dlq-alarm looked at the DLQ.
    let transitions = pipeline.alarms.transitions();
    let fired = transitions
        .iter()
        .find(|t| t.to == "ALARM" && t.alarm_name == pipeline.stack.dlq_alarm_name)
        .expect("the DLQ alarm fired");
    let seen = fired.summary.as_ref().expect("dlq-alarm ran")["messagesSeen"]
        .as_u64()
        .unwrap_or(0);
    assert!(seen >= 1, "dlq-alarm saw the DLQ's messages");
    pipeline.shutdown().await;
}
