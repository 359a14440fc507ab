//! End to end on the emulator: 1,000+ generated orders with duplicates, conflicting reuses of
//! ids and invalid payloads go through SNS -> SQS -> the event source mapping -> order-consumer
//! -> DynamoDB, with the DLQ and the alarm, then through the Orders stream, order-events and the
//! inventory stage against a catalogue where some skus run out (many orders compete for their
//! last units), the payment stage against the fake provider (5% declines, 20% unavailable
//! answers, 5% of charges answered too late and 2% answered then dropped, a few customers it
//! never answers, who use up every attempt) and the notification
//! stage. Every message must be accounted for: stored once, dropped as a duplicate, or in the
//! DLQ. Then the lifecycle's invariants, from the tables, the provider's ledger and the
//! customers' inbox alone: every order terminal; per sku, initial stock = available, reserved
//! and sold added up, reserved 0 when idle, sold = the units of the completed orders, nothing negative; at
//! most one approved charge per order and exactly one per COMPLETED order, approved minus
//! refunded equal to a COMPLETED order's amount and 0 for the rest; one notification
//! (by dedupe id) per terminal outcome.

mod common;

const ORDERS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_thousand_orders_is_accounted_for_and_none_is_written_twice() {
    let (pipeline, figures) = common::lifecycle_run(ORDERS, None, "e2e").await;
    eprintln!("e2e: {figures:?}");
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

/// Protects: a run's report counts the DLQ messages a sweep left hidden. A sweep whose release
/// of its snapshot failed (a fault) leaves messages in flight until their visibility timeout
/// ends; the report must wait for them, or it calls them lost ("unaccounted"). Without the wait
/// in `LocalPipeline::summary` this report reads an empty DLQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_waits_for_dlq_messages_a_sweep_left_hidden() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use order_local::pipeline::{LocalPipeline, Options};
    use order_local::template::Template;
    use order_pipeline::runtime::telemetry::Captured;

    let template = Template::current().expect("the stack's template synthesizes");
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            endpoint: None,
            retry_after_seconds: Some(1),
            telemetry: Arc::new(Captured::default()),
            prefix: "hidden".into(),
            alarm_interval: Duration::from_secs(1),
            schedule_every: None,
            provider: Default::default(),
            payment_timeout: None,
            faults: None,
            bootstraps: None,
        },
    )
    .await
    .expect("pipeline boots on moto (run `make setup` if moto_server is missing)");
    let (sqs, dlq) = (&pipeline.clients.sqs, &pipeline.stack.dlq_url);
    sqs.send_message()
        .queue_url(dlq)
        .message_body(r#"{"orderId":"HIDDEN-1"}"#)
        .send()
        .await
        .expect("send to the DLQ");
    // The DLQ alarm fires on it and dlq-alarm sweeps once; after that nothing else looks at the
    // DLQ (no schedule), so the report's wait is the only thing that can bring it back.
    let waiting = Instant::now();
    while !pipeline.alarms.transitions().iter().any(|t| {
        t.to == "ALARM" && t.alarm_name == pipeline.stack.dlq_alarm_name && t.summary.is_some()
    }) {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the DLQ alarm never fired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Hide it as a sweep that could not release its snapshot does (once the alarm's sweep has
    // released it).
    loop {
        let got = sqs
            .receive_message()
            .queue_url(dlq)
            .visibility_timeout(8)
            .send()
            .await
            .expect("receive from the DLQ");
        if !got.messages().is_empty() {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the DLQ message never became visible"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let summary = pipeline.summary(&[]).await.expect("the report");
    assert_eq!(
        summary.dead_letters.len(),
        1,
        "the report counts the DLQ message that was hidden when it started"
    );
    pipeline.shutdown().await;
}
