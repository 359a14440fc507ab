//! The intake's contract table (docs/contract.md, "What each record does"), one test per row,
//! and what a batch as a whole answers, against in-memory ports. The same handlers run against a
//! real DynamoDB/SQS endpoint in local/tests/moto_*.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use common::{alarm_event, alarm_fn, consumer, letter, logged, order_body, record, worker_config};
use order_domain::OrderStatus;
use order_pipeline::adapters::memory::orders::{Fault, MemoryStore};
use order_pipeline::ports::PortError;
use order_pipeline::runtime::bounded::Deadline;
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::intake::OrderConsumer;

const SEED_001: &str = include_str!("../../../test/events/payloads/seed-001-flat.json");

fn failed_ids(resp: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn row_valid_new_order_is_written_accepted_and_deleted() {
    let out = Captured::default();
    let c = consumer(&out);
    let (resp, reports) = c
        .handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(reports[0].outcome.label(), "accepted");
    let item = c.handler().store().get("O1").expect("item stored");
    assert_eq!(item.status, OrderStatus::Accepted);
    assert_eq!(item.version, 1);
    assert_eq!(item.source_message_id, "m1");
    assert_eq!(item.item_count, 1);
    assert_eq!(item.items[0].unit_price.as_deref(), Some("999.99"));
    assert!(item.accepted_at.is_some());
}

#[tokio::test]
async fn row_same_order_again_is_a_duplicate_nothing_overwritten_and_deleted() {
    let out = Captured::default();
    let c = consumer(&out);
    c.handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    let first = c.handler().store().get("O1").unwrap();
    let (resp, reports) = c
        .handle_records(&[record("m2", &order_body("O1", 1))])
        .await
        .unwrap();
    assert!(
        resp.batch_item_failures.is_empty(),
        "duplicates are deleted"
    );
    assert_eq!(reports[0].outcome.label(), "duplicate");
    assert_eq!(
        c.handler().store().get("O1").unwrap(),
        first,
        "nothing overwritten"
    );
}

#[tokio::test]
async fn row_same_id_different_content_is_a_conflict_reported_failed_and_stored_order_kept() {
    let out = Captured::default();
    let c = consumer(&out);
    c.handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    let first = c.handler().store().get("O1").unwrap();
    let (resp, reports) = c
        .handle_records(&[record("m2", &order_body("O1", 5))])
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), ["m2"]);
    assert_eq!(reports[0].outcome.label(), "conflict");
    assert_eq!(c.handler().store().get("O1").unwrap(), first);
}

#[tokio::test]
async fn row_invalid_payload_is_reported_failed_with_the_reason_logged_naming_the_field() {
    let out = Captured::default();
    let c = consumer(&out);
    let bad = r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":0}]}"#;
    let (resp, _) = logged(
        &out,
        c.handle_records(&[record("m1", bad), record("m2", "not json")]),
    )
    .await
    .unwrap();
    assert_eq!(failed_ids(&resp), ["m1", "m2"]);
    assert!(c.handler().store().is_empty());
    let lines = out.json();
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("items[0].quantity")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("body")), "{reasons:?}");
}

#[tokio::test]
async fn row_store_throttling_is_reported_failed_so_sqs_retries_it() {
    let out = Captured::default();
    let c = consumer(&out);
    c.handler().store().inject(
        "O2",
        Fault::Fail(PortError::Retryable(
            "ProvisionedThroughputExceededException".into(),
        )),
    );
    let (resp, reports) = c
        .handle_records(&[
            record("m1", &order_body("O1", 1)),
            record("m2", &order_body("O2", 1)),
        ])
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), ["m2"]);
    assert!(reports.iter().any(|r| r.outcome.label() == "store_failed"));
    assert!(c.handler().store().get("O1").is_some());
}

#[tokio::test]
async fn row_a_panic_in_one_record_fails_only_that_record() {
    let out = Captured::default();
    let c = consumer(&out);
    c.handler().store().inject("BOOM", Fault::Panic);
    let batch = [
        record("m1", &order_body("O1", 1)),
        record("m2", &order_body("BOOM", 1)),
        record("m3", &order_body("O3", 1)),
    ];
    let (resp, reports) = logged(&out, c.handle_records(&batch)).await.unwrap();
    assert_eq!(failed_ids(&resp), ["m2"]);
    assert!(reports.iter().any(|r| r.outcome.label() == "panicked"));
    assert!(c.handler().store().get("O1").is_some() && c.handler().store().get("O3").is_some());
    let panic_line = out
        .json()
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("panicked"))
        })
        .expect("panic logged");
    assert_eq!(panic_line["message_id"], "m2");
}

#[tokio::test]
async fn row_order_marked_failed_then_redriven_is_accepted_again_with_failure_cleared() {
    let out = Captured::default();
    let c = consumer(&out);
    // dlq-alarm's mark: the order was never stored, so it created a FAILED item.
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    let failed = alarm.store().get("O1").unwrap();
    assert_eq!(failed.status, OrderStatus::Failed);
    c.handler().store().put(failed);
    let (resp, reports) = c
        .handle_records(&[record("m9", &order_body("O1", 1))])
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(reports[0].outcome.label(), "reaccepted");
    let item = c.handler().store().get("O1").unwrap();
    assert_eq!(item.status, OrderStatus::Accepted);
    assert_eq!(item.failure, None);
    assert_eq!(item.version, 2);
    assert_eq!(item.source_message_id, "m9");
}

#[tokio::test]
async fn only_failed_records_are_returned_in_batch_item_failures() {
    let out = Captured::default();
    let c = consumer(&out);
    c.handle_records(&[record("m0", &order_body("DUP", 1))])
        .await
        .unwrap();
    let batch = [
        record("good", &order_body("O1", 1)),
        record("seed", SEED_001),
        record("dup", &order_body("DUP", 1)),
        record("conflict", &order_body("DUP", 2)),
        record("invalid", "{}"),
    ];
    let (resp, _) = c.handle_records(&batch).await.unwrap();
    assert_eq!(failed_ids(&resp), ["conflict", "invalid"]);
}

#[tokio::test]
async fn when_every_record_fails_in_the_store_the_invocation_fails() {
    let out = Captured::default();
    let c = consumer(&out);
    for id in ["O1", "O2"] {
        c.handler().store().inject(
            id,
            Fault::Fail(PortError::Fatal("AccessDeniedException".into())),
        );
    }
    let err = c
        .handle_records(&[
            record("m1", &order_body("O1", 1)),
            record("m2", &order_body("O2", 1)),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.count, 2);
    assert!(err.to_string().contains("AccessDeniedException"));
}

#[tokio::test]
async fn when_every_record_is_invalid_the_invocation_still_succeeds_listing_them() {
    let out = Captured::default();
    let c = consumer(&out);
    let (resp, _) = c
        .handle_records(&[record("m1", "{}"), record("m2", "[]")])
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), ["m1", "m2"]);
}

#[tokio::test]
async fn same_order_twice_in_one_batch_is_stored_once() {
    let out = Captured::default();
    let c = consumer(&out);
    let (resp, reports) = c
        .handle_records(&[
            record("m1", &order_body("O1", 1)),
            record("m2", &order_body("O1", 1)),
        ])
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    let mut labels: Vec<_> = reports.iter().map(|r| r.outcome.label()).collect();
    labels.sort();
    assert_eq!(labels, ["accepted", "duplicate"]);
}

// --- the event fixture under test/events/, as `cargo lambda invoke --data-file` sends it ---

const SQS_BATCH: &str = include_str!("../../../test/events/sqs-batch.json");

#[tokio::test]
async fn fixture_sqs_batch_mixes_good_seed_enveloped_duplicate_and_invalid_records() {
    let event: SqsEvent =
        serde_json::from_str(SQS_BATCH).expect("test/events/sqs-batch.json is an SqsEvent");
    let out = Captured::default();
    let c = consumer(&out);
    let (resp, reports) = c.handle_records(&event.records).await.unwrap();
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [event.records[4].message_id.as_deref().unwrap()],
        "only the invalid record fails"
    );
    let mut labels: Vec<_> = reports.iter().map(|r| r.outcome.label()).collect();
    labels.sort();
    assert_eq!(
        labels,
        ["accepted", "accepted", "accepted", "duplicate", "invalid"]
    );
    assert_eq!(
        c.handler()
            .store()
            .get("O-FIXTURE-2")
            .unwrap()
            .correlation_id,
        "fixture-corr-3",
        "from the SNS envelope"
    );
}

// --- the deadline rule (the worker's): the intake stage here, dlq-alarm in dlq_alarm.rs ---

/// Protects: a store that stalls never times out the whole invocation. Records that cannot
/// start before the margin are reported failed unstarted, the stalled one is abandoned at the
/// cut-off, and the invocation answers before its deadline (the clock is tokio's paused clock,
/// so the test is exact and instant).
#[tokio::test(start_paused = true)]
async fn deadline_a_stalled_store_gets_unstarted_records_failed_and_the_invocation_answers_in_time()
{
    let out = Captured::default();
    let mut config = worker_config();
    config.record_concurrency = 1;
    let c = SqsWorker::new(
        OrderConsumer::new(MemoryStore::new()),
        config,
        Arc::new(out.clone()),
        None,
    )
    .unwrap();
    c.handler()
        .store()
        .inject("SLOW", Fault::Stall(Duration::from_secs(4)));
    c.handler()
        .store()
        .inject("STUCK", Fault::Stall(Duration::from_secs(3600)));
    let batch = [
        record("m1", &order_body("O1", 1)),
        record("m2", &order_body("SLOW", 1)),
        record("m3", &order_body("STUCK", 1)),
        record("m4", &order_body("O4", 1)),
    ];
    let timeout = Duration::from_secs(10);
    let started = tokio::time::Instant::now();
    let deadline = Deadline::after(timeout, Duration::from_secs(3), Duration::from_millis(500));
    let (resp, reports) = logged(&out, c.handle_records_within(&batch, Some(deadline)))
        .await
        .unwrap();
    assert!(
        started.elapsed() < timeout,
        "answered after {:?}",
        started.elapsed()
    );
    let labels: Vec<_> = reports
        .iter()
        .map(|r| (r.message_id.as_str(), r.outcome.label()))
        .collect();
    assert_eq!(
        labels,
        [
            ("m1", "accepted"),
            ("m2", "accepted"),
            ("m3", "abandoned"),
            ("m4", "not_started")
        ]
    );
    assert_eq!(failed_ids(&resp), ["m3", "m4"]);
    assert!(c.handler().store().get("O4").is_none(), "m4 never ran");
    let lines = out.json();
    assert!(
        lines
            .iter()
            .any(|l| l["message_id"] == "m4" && l["level"] == "WARN"),
        "the unstarted record is logged"
    );
}

/// Protects: when the deadline leaves every record unprocessed, the invocation fails as a
/// whole (the errors alarm sees a stalled dependency), as it does for a store outage.
#[tokio::test(start_paused = true)]
async fn deadline_when_no_record_finishes_in_time_the_invocation_fails() {
    let out = Captured::default();
    let c = consumer(&out);
    c.handler()
        .store()
        .inject("STUCK", Fault::Stall(Duration::from_secs(3600)));
    let deadline = Deadline::after(
        Duration::from_secs(10),
        Duration::from_secs(3),
        Duration::from_millis(500),
    );
    let err = c
        .handle_records_within(&[record("m1", &order_body("STUCK", 1))], Some(deadline))
        .await
        .unwrap_err();
    assert_eq!(err.count, 1);
    assert!(err.first.contains("deadline"), "{}", err.first);
}
