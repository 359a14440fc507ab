//! End to end on the emulator: 1,000+ generated orders with duplicates, conflicting reuses of
//! ids and invalid payloads go through SNS -> SQS -> the event source mapping -> order-consumer
//! -> DynamoDB, with the DLQ and the alarm, then through the Orders stream, order-events and the
//! inventory stage against a catalogue where some skus run out (many orders compete for their
//! last units), the payment stage against the fake provider (5% declines, 20% unavailable
//! answers, a few customers it never answers, who use up every attempt) and the notification
//! stage. Every message must be accounted for: stored once, dropped as a duplicate, or in the
//! DLQ. Then the lifecycle's invariants, from the tables, the provider's ledger and the
//! customers' inbox alone: every order terminal; per sku, initial stock = available, reserved
//! and sold added up, reserved 0 when idle, sold = the units of the completed orders, nothing negative; at
//! most one approved charge per order and exactly one per COMPLETED order; one notification
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
