//! The pipeline contract's table, one test per row, against in-memory ports. The same handlers
//! run against a real DynamoDB/SQS endpoint in local/tests/moto_*.rs.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use lambda_runtime::{Context, LambdaEvent};
use order_domain::OrderStatus;
use order_pipeline::adapters::memory::orders::{Fault, MemoryStore};
use order_pipeline::adapters::memory::publish::MemoryNotifier;
use order_pipeline::adapters::memory::queue::MemoryDeadLetterQueue;
use order_pipeline::functions::dlq_alarm::DlqAlarm;
use order_pipeline::ports::queue::DeadLetter;
use order_pipeline::ports::PortError;
use order_pipeline::registry::OrderConsumerFunction;
use order_pipeline::runtime::config::{DlqAlarmConfig, WorkerConfig};
use order_pipeline::runtime::telemetry::{capture_logs_into, Captured};
use order_pipeline::runtime::worker::{Deadline, SqsWorker};
use order_pipeline::stages::intake::OrderConsumer;

const SEED_001: &str = include_str!("../../../test/events/payloads/seed-001-flat.json");

fn worker_config() -> WorkerConfig {
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

fn consumer(captured: &Captured) -> OrderConsumerFunction<MemoryStore> {
    SqsWorker::new(
        OrderConsumer::new(MemoryStore::new()),
        worker_config(),
        Arc::new(captured.clone()),
        None,
    )
    .unwrap()
}

fn order_body(id: &str, quantity: u32) -> String {
    serde_json::json!({
        "orderId": id,
        "customerId": "U1",
        "items": [{"sku": "LAPTOP-15", "name": "Laptop", "quantity": quantity, "unitPrice": "999.99"}],
        "currency": "USD",
        "createdAt": "2025-05-03T12:00:00Z"
    })
    .to_string()
}

fn record(message_id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("SentTimestamp".into(), "1746273600000".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

fn failed_ids(resp: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

/// The EMF line among the captured telemetry.
fn emf_line(out: &Captured) -> serde_json::Value {
    out.json()
        .into_iter()
        .find(|l| l.get("_aws").is_some())
        .expect("an EMF line")
}

/// Runs `f` with this thread's log lines captured into `captured`.
async fn logged<T>(captured: &Captured, f: impl std::future::Future<Output = T>) -> T {
    capture_logs_into(captured);
    f.await
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

#[tokio::test]
async fn correlation_id_comes_from_attribute_then_sns_envelope_then_sqs_id_and_is_on_every_record_line(
) {
    let out = Captured::default();
    let c = consumer(&out);
    let mut with_attr = record("m1", &order_body("O1", 1));
    let mut attr = SqsMessageAttribute::default();
    attr.string_value = Some("corr-from-publisher".into());
    attr.data_type = Some("String".into());
    with_attr
        .message_attributes
        .insert("correlationId".into(), attr);
    let enveloped = record(
        "m2",
        &serde_json::json!({"Type": "Notification", "MessageId": "sns-42", "Message": order_body("O2", 1)}).to_string(),
    );
    let plain = record("m3", &order_body("O3", 1));
    logged(&out, c.handle_records(&[with_attr, enveloped, plain]))
        .await
        .unwrap();
    assert_eq!(
        c.handler().store().get("O1").unwrap().correlation_id,
        "corr-from-publisher"
    );
    assert_eq!(
        c.handler().store().get("O2").unwrap().correlation_id,
        "sns-42"
    );
    assert_eq!(c.handler().store().get("O3").unwrap().correlation_id, "m3");
    for line in out.json().iter().filter(|l| l.get("message_id").is_some()) {
        assert!(
            line["correlation_id"].is_string(),
            "record line without correlation_id: {line}"
        );
    }
    let accepted: Vec<_> = out
        .json()
        .into_iter()
        .filter(|l| l["message"] == "order accepted")
        .collect();
    assert_eq!(accepted.len(), 3);
    assert!(accepted.iter().all(|l| l["order_id"].is_string()));
}

#[tokio::test]
async fn cold_start_is_true_only_on_the_first_invocation_and_request_id_is_logged() {
    let out = Captured::default();
    let c = consumer(&out);
    let event = |id: &str| {
        let mut ctx = Context::default();
        ctx.request_id = id.into();
        let mut payload = SqsEvent::default();
        payload.records = vec![record(id, &order_body(id, 1))];
        LambdaEvent::new(payload, ctx)
    };
    logged(&out, async {
        c.handle(event("r1")).await.unwrap();
        c.handle(event("r2")).await.unwrap();
    })
    .await;
    let accepted: Vec<_> = out
        .json()
        .into_iter()
        .filter(|l| l["message"] == "order accepted")
        .collect();
    assert_eq!(accepted[0]["cold_start"], true);
    assert_eq!(accepted[0]["function_request_id"], "r1");
    assert_eq!(accepted[1]["cold_start"], false);
    assert_eq!(accepted[1]["function_request_id"], "r2");
}

#[tokio::test]
async fn metrics_are_written_in_embedded_metric_format() {
    let out = Captured::default();
    let c = consumer(&out);
    let mut fresh = record("m1", &order_body("O1", 1));
    fresh.attributes.insert(
        "SentTimestamp".into(),
        chrono::Utc::now().timestamp_millis().to_string(),
    );
    c.handle_records(&[
        fresh,
        record("m2", "{}"),
        record("m3", &order_body("O1", 1)),
    ])
    .await
    .unwrap();
    let emf = emf_line(&out);
    assert_eq!(emf["BatchSize"], 3.0);
    assert_eq!(emf["OrdersAccepted"], 1.0);
    assert_eq!(emf["OrdersDuplicate"], 1.0);
    assert_eq!(emf["OrdersInvalid"], 1.0);
    assert_eq!(emf["RecordsFailed"], 1.0);
    assert!(
        emf["OrderLatency"].as_f64().is_some_and(|ms| ms < 60_000.0),
        "{emf}"
    );
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "OrderPipeline"
    );
}

// --- dlq-alarm ---

fn dlq_config() -> DlqAlarmConfig {
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

fn letter(id: &str, body: &str) -> DeadLetter {
    DeadLetter {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body: body.into(),
        receive_count: 3,
        sent_timestamp_ms: Some(1_746_273_600_000),
        correlation_attribute: None,
    }
}

fn alarm_fn(
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

fn alarm_event(state: &str) -> CloudWatchAlarm {
    let previous = if state == "OK" { "ALARM" } else { "OK" };
    alarm_transition(previous, state)
}

fn alarm_transition(previous: &str, state: &str) -> CloudWatchAlarm {
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

#[tokio::test]
async fn alarm_marks_never_stored_orders_failed_and_leaves_every_message_visible() {
    let alarm = alarm_fn(vec![
        letter("d1", &order_body("O1", 1)),
        letter("d2", &order_body("O2", 1)),
    ]);
    let summary = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(summary.messages_seen, 2);
    assert_eq!(summary.marked_failed, ["O1", "O2"]);
    let item = alarm.store().get("O1").unwrap();
    assert_eq!(item.status, OrderStatus::Failed);
    let failure = item.failure.expect("failure recorded");
    assert_eq!(failure.receive_count, 3);
    assert!(failure.reason.contains("correlation_id"));
    assert!(item.accepted_at.is_none());
    assert!(
        alarm.dlq().hidden().is_empty(),
        "every looked-at message is visible again"
    );
    assert_eq!(
        alarm.notifier().published().len(),
        1,
        "one summary to the ops topic"
    );
}

#[tokio::test]
async fn alarm_twice_on_the_same_event_changes_nothing_more() {
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    let first = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    let item = alarm.store().get("O1").unwrap();
    let second = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(first.marked_failed, ["O1"]);
    assert_eq!(
        second.messages_seen, 1,
        "the message was visible again for the second run"
    );
    assert!(second.marked_failed.is_empty());
    assert_eq!(second.already_failed, ["O1"]);
    assert_eq!(
        alarm.store().get("O1").unwrap(),
        item,
        "item unchanged by the second run"
    );
}

#[tokio::test]
async fn alarm_leaves_a_different_stored_order_alone_and_reports_the_conflict() {
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 7))]);
    let consumer_side = consumer(&Captured::default());
    consumer_side
        .handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    let stored = consumer_side.handler().store().get("O1").unwrap();
    alarm.store().put(stored.clone());
    let summary = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(summary.conflicts, ["O1"]);
    assert_eq!(alarm.store().get("O1").unwrap(), stored);
}

#[tokio::test]
async fn alarm_leaves_an_accepted_copy_of_the_same_order_alone() {
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    let consumer_side = consumer(&Captured::default());
    consumer_side
        .handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    alarm
        .store()
        .put(consumer_side.handler().store().get("O1").unwrap());
    let summary = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(summary.already_stored, ["O1"]);
    assert_eq!(
        alarm.store().get("O1").unwrap().status,
        OrderStatus::Accepted
    );
}

#[tokio::test]
async fn alarm_counts_unparseable_messages_with_their_reasons_and_publishes_one_summary() {
    let alarm = alarm_fn(vec![
        letter("d1", "garbage"),
        letter("d2", &order_body("O2", 1)),
    ]);
    let summary = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(summary.unparseable.len(), 1);
    assert_eq!(summary.unparseable[0].message_id, "d1");
    assert!(summary.unparseable[0].reason.starts_with("body:"));
    let published = alarm.notifier().published();
    assert_eq!(published.len(), 1);
    assert!(
        published[0].0.contains("1 unparseable"),
        "{}",
        published[0].0
    );
    assert!(published[0].1.contains("d1"));
}

#[tokio::test]
async fn alarm_snapshot_is_bounded() {
    let letters = (0..7)
        .map(|i| letter(&format!("d{i}"), &order_body(&format!("O{i}"), 1)))
        .collect();
    let alarm = DlqAlarm::new(
        MemoryStore::new(),
        MemoryDeadLetterQueue::with(letters),
        MemoryNotifier::default(),
        DlqAlarmConfig {
            snapshot_max: 5,
            ..dlq_config()
        },
        Arc::new(Captured::default()),
    );
    let summary = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(summary.messages_seen, 5);
    assert!(summary.snapshot_full);
}

/// Protects: the alarm's sweep examines dead letters that another look (the scheduled sweep,
/// someone polling the DLQ) holds hidden when the alarm fires: it waits until they are visible
/// again instead of reporting an empty DLQ. Without the wait it sees 0 messages and marks
/// nothing (the e2e run met this: the alarm fired during a scheduled sweep).
#[tokio::test(start_paused = true)]
async fn an_alarm_sweep_waits_for_dead_letters_another_look_holds() {
    use order_pipeline::ports::queue::DeadLetterQueue;
    let alarm = alarm_fn(vec![
        letter("d1", &order_body("O1", 1)),
        letter("d2", &order_body("O2", 1)),
    ]);
    let other_look = alarm.dlq().snapshot(100, 30).await.unwrap();
    assert_eq!(other_look.len(), 2, "the other look holds both");
    let started = tokio::time::Instant::now();
    let deadline = Deadline::after(
        Duration::from_secs(60),
        Duration::from_secs(3),
        Duration::from_secs(5),
    );
    let event = alarm_event("ALARM");
    let (summary, ()) = tokio::join!(alarm.handle_alarm_within(&event, Some(deadline)), async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        alarm.dlq().release(&other_look).await.unwrap();
    });
    let summary = summary.expect("the sweep ran");
    assert_eq!(summary.messages_seen, 2, "{summary:?}");
    assert_eq!(summary.marked_failed, ["O1", "O2"]);
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert!(alarm.dlq().hidden().is_empty(), "released again");
    assert_eq!(alarm.notifier().published().len(), 1, "one summary paged");
}

/// Protects: the wait is bounded: with the messages held for good (a look that never releases
/// them) the alarm's sweep gives up within half the time left to start examining and answers
/// quietly; with an empty DLQ (nothing held) it does not wait at all.
#[tokio::test(start_paused = true)]
async fn an_alarm_sweep_waits_no_longer_than_its_bound_and_not_at_all_on_an_empty_dlq() {
    use order_pipeline::ports::queue::DeadLetterQueue;
    let deadline = || {
        Deadline::after(
            Duration::from_secs(60),
            Duration::from_secs(3),
            Duration::from_secs(5),
        )
    };
    let held = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    held.dlq().snapshot(100, 30).await.unwrap();
    let started = tokio::time::Instant::now();
    let summary = held
        .handle_alarm_within(&alarm_event("ALARM"), Some(deadline()))
        .await
        .expect("nothing seen is not an error");
    let waited = started.elapsed();
    assert_eq!(summary.messages_seen, 0);
    assert!(
        waited >= Duration::from_secs(20) && waited <= Duration::from_millis(28_500),
        "waited {waited:?}: about half of the 57 s left to start examining"
    );
    assert!(held.store().is_empty());
    assert!(held.notifier().published().is_empty(), "nothing to page");

    let empty = alarm_fn(Vec::new());
    let started = tokio::time::Instant::now();
    let summary = empty
        .handle_alarm_within(&alarm_event("ALARM"), Some(deadline()))
        .await
        .unwrap();
    assert_eq!(summary.messages_seen, 0);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "an empty DLQ is not waited for"
    );
}

#[tokio::test]
async fn alarm_ok_publishes_the_recovery_and_writes_nothing() {
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    let summary = alarm.handle_alarm(&alarm_event("OK")).await.unwrap();
    assert_eq!(summary.state, "OK");
    assert!(alarm.store().is_empty());
    let published = alarm.notifier().published();
    assert_eq!(published.len(), 1);
    assert!(published[0].0.contains("recovered"));
}

#[tokio::test]
async fn alarm_ok_right_after_creation_announces_no_recovery() {
    let alarm = alarm_fn(vec![]);
    let summary = alarm
        .handle_alarm(&alarm_transition("INSUFFICIENT_DATA", "OK"))
        .await
        .unwrap();
    assert_eq!(summary.state, "OK");
    assert!(alarm.notifier().published().is_empty());
}

// --- the event fixtures under test/events/, as `cargo lambda invoke --data-file` sends them ---

const SQS_BATCH: &str = include_str!("../../../test/events/sqs-batch.json");
const ALARM_ALARM: &str = include_str!("../../../test/events/alarm-alarm.json");
const ALARM_OK: &str = include_str!("../../../test/events/alarm-ok.json");

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

#[tokio::test]
async fn fixture_alarm_events_parse_and_drive_dlq_alarm() {
    let alarm_event: CloudWatchAlarm = serde_json::from_str(ALARM_ALARM).expect("alarm-alarm.json");
    let ok_event: CloudWatchAlarm = serde_json::from_str(ALARM_OK).expect("alarm-ok.json");
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    assert_eq!(
        alarm
            .handle_alarm(&alarm_event)
            .await
            .unwrap()
            .marked_failed,
        ["O1"]
    );
    let ok = alarm.handle_alarm(&ok_event).await.unwrap();
    assert_eq!(ok.state, "OK");
    assert_eq!(
        alarm.notifier().published().len(),
        2,
        "the ALARM summary and the recovery"
    );
}

#[tokio::test]
async fn the_batch_line_counts_outcomes_and_per_record_success_lines_are_debug() {
    let out = Captured::default();
    let c = consumer(&out);
    let batch = [
        record("m1", &order_body("O1", 1)),
        record("m2", &order_body("O1", 1)),
        record("m3", "{}"),
    ];
    logged(&out, c.handle_records(&batch)).await.unwrap();
    let lines = out.json();
    let batch_line = lines
        .iter()
        .find(|l| l["message"] == "batch processed")
        .expect("batch line");
    assert_eq!(batch_line["level"], "INFO");
    assert_eq!(
        (
            &batch_line["records"],
            &batch_line["done"],
            &batch_line["failed"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(2),
            &serde_json::json!(1)
        )
    );
    let accepted = lines
        .iter()
        .find(|l| l["message"] == "order accepted")
        .expect("accepted line");
    assert_eq!(
        accepted["level"], "DEBUG",
        "kept out of INFO: it was most of the log volume"
    );
    let failed = lines
        .iter()
        .find(|l| l["message_id"] == "m3" && l["reason"].is_string())
        .expect("failure line");
    assert_eq!(failed["level"], "WARN");
}

// --- the deadline rule (the worker's; shown here for the intake stage and for dlq-alarm) ---

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

/// Protects: dlq-alarm stops examining dead letters before its own deadline, reports the ones
/// it did not reach, still releases the snapshot and publishes the summary, and fails the
/// invocation so that Lambda runs the sweep again (and its errors alarm sees it).
#[tokio::test(start_paused = true)]
async fn deadline_dlq_alarm_reports_unexamined_letters_and_still_answers_in_time() {
    let mut config = dlq_config();
    config.concurrency = 1;
    let alarm = DlqAlarm::new(
        MemoryStore::new(),
        MemoryDeadLetterQueue::with(vec![
            letter("d1", &order_body("O1", 1)),
            letter("d2", &order_body("STUCK", 1)),
            letter("d3", &order_body("O3", 1)),
        ]),
        MemoryNotifier::default(),
        config,
        Arc::new(Captured::default()),
    );
    alarm
        .store()
        .inject("STUCK", Fault::Stall(Duration::from_secs(3600)));
    let timeout = Duration::from_secs(60);
    let started = tokio::time::Instant::now();
    let deadline = Deadline::after(timeout, Duration::from_secs(3), Duration::from_secs(5));
    let err = alarm
        .handle_alarm_within(&alarm_event("ALARM"), Some(deadline))
        .await
        .expect_err("an incomplete sweep fails the invocation");
    assert!(
        err.to_string()
            .contains("2 of 3 dead letters were not examined"),
        "{err}"
    );
    let summary = err.summary().expect("the summary rides along").clone();
    assert!(started.elapsed() < timeout);
    assert_eq!(summary.marked_failed, ["O1"]);
    assert_eq!(summary.errors.len(), 2, "{:?}", summary.errors);
    assert!(summary.errors.iter().all(|e| e.contains("deadline")));
    assert!(alarm.dlq().hidden().is_empty(), "every message released");
    assert_eq!(alarm.notifier().published().len(), 1);
}

/// Protects: a dead letter whose order could not be looked up (the table failing) is not
/// silently skipped: the others are handled, the summary names it, and the invocation fails so
/// that Lambda runs the sweep again and dlq-alarm's errors alarm pages.
#[tokio::test]
async fn dlq_alarm_fails_the_invocation_when_a_dead_letter_could_not_be_examined() {
    let alarm = DlqAlarm::new(
        MemoryStore::new(),
        MemoryDeadLetterQueue::with(vec![
            letter("d1", &order_body("O1", 1)),
            letter("d2", &order_body("BROKEN", 1)),
        ]),
        MemoryNotifier::default(),
        dlq_config(),
        Arc::new(Captured::default()),
    );
    alarm.store().inject(
        "BROKEN",
        Fault::Fail(PortError::Retryable(
            "ProvisionedThroughputExceededException".into(),
        )),
    );
    let err = alarm
        .handle_alarm(&alarm_event("ALARM"))
        .await
        .expect_err("the sweep is incomplete");
    let summary = err.summary().unwrap();
    assert_eq!(summary.marked_failed, ["O1"]);
    assert_eq!(summary.errors.len(), 1);
    assert!(summary.errors[0].contains("BROKEN"), "{:?}", summary.errors);
    assert_eq!(
        alarm.notifier().published().len(),
        1,
        "ops still get the summary"
    );
    assert!(alarm.dlq().hidden().is_empty(), "every message released");
}

/// Protects: dead letters that arrive while the DLQ alarm stays in ALARM (no new state change,
/// so no alarm action) are still marked FAILED by the scheduled sweep; a sweep that finds
/// nothing new pages nobody.
#[tokio::test]
async fn scheduled_sweeps_mark_dead_letters_that_arrived_while_the_alarm_stayed_in_alarm() {
    use order_pipeline::functions::dlq_alarm::DlqAlarmEvent;
    let alarm = DlqAlarm::new(
        MemoryStore::new(),
        MemoryDeadLetterQueue::with(vec![letter("d1", &order_body("O1", 1))]),
        MemoryNotifier::default(),
        dlq_config(),
        Arc::new(Captured::default()),
    );
    let first = alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
    assert_eq!(first.marked_failed, ["O1"]);
    assert_eq!(alarm.notifier().published().len(), 1);
    // The alarm stays in ALARM; another order reaches the DLQ.
    alarm
        .dlq()
        .messages
        .lock()
        .unwrap()
        .push(letter("d2", &order_body("O2", 1)));
    let swept = alarm.scheduled_sweep_within(None).await.unwrap();
    assert_eq!(swept.marked_failed, ["O2"]);
    assert_eq!(swept.already_failed, ["O1"]);
    assert_eq!(
        alarm.notifier().published().len(),
        2,
        "new marks are reported"
    );
    assert_eq!(
        alarm.store().get("O2").map(|i| i.status),
        Some(order_domain::OrderStatus::Failed)
    );
    let quiet = alarm.scheduled_sweep_within(None).await.unwrap();
    assert!(quiet.marked_failed.is_empty());
    assert_eq!(
        alarm.notifier().published().len(),
        2,
        "nothing new, no page"
    );
    assert!(alarm.dlq().hidden().is_empty());

    let sweep: DlqAlarmEvent = serde_json::from_str(r#"{"sweep":"scheduled"}"#).unwrap();
    assert!(matches!(sweep, DlqAlarmEvent::Sweep { .. }));
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test/events/alarm-alarm.json"
    ))
    .unwrap();
    let event: DlqAlarmEvent = serde_json::from_str(&fixture).unwrap();
    assert!(matches!(event, DlqAlarmEvent::Alarm(_)));
}

/// Protects: a SentTimestamp from a clock that disagrees by more than a day (an old fixture, a
/// skewed publisher) adds no latency: one such value would swamp the OrderLatency metric.
#[tokio::test]
async fn latency_from_a_clock_a_day_off_is_not_recorded() {
    let out = Captured::default();
    let c = consumer(&out);
    // record() sends SentTimestamp 2025-05-03, far more than a day ago.
    c.handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    let emf = emf_line(&out);
    assert_eq!(emf["OrdersAccepted"], 1.0);
    assert!(emf.get("OrderLatency").is_none(), "{emf}");
}

// --- what dlq-alarm says when the alarm and the queue disagree ---

/// Protects: an ALARM whose DLQ looks empty (redriven or deleted since the datapoint) is not
/// reported as "messages are in the order DLQ" at ERROR, and pages nobody a second time.
#[tokio::test]
async fn alarm_on_an_empty_dlq_warns_and_publishes_nothing() {
    let out = Captured::default();
    let alarm = alarm_fn(vec![]);
    let summary = logged(&out, alarm.handle_alarm(&alarm_event("ALARM")))
        .await
        .unwrap();
    assert_eq!(summary.messages_seen, 0);
    let lines = out.json();
    assert!(lines.iter().all(|l| l["level"] != "ERROR"), "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l["level"] == "WARN" && l["messages_seen"] == 0));
    assert!(alarm.notifier().published().is_empty());
}

/// Protects: the recovery line does not claim the DLQ is empty (the OK state only means no
/// message was visible for the evaluation period), and the ERROR summary line carries flat
/// fields, no JSON inside strings.
#[tokio::test]
async fn alarm_log_lines_claim_only_what_is_known_and_stay_flat() {
    let out = Captured::default();
    let alarm = alarm_fn(vec![letter("d1", &order_body("O1", 1))]);
    alarm.store().put({
        let other = alarm_fn(vec![letter("d0", &order_body("O1", 7))]);
        other.handle_alarm(&alarm_event("ALARM")).await.unwrap();
        other.store().get("O1").unwrap()
    });
    logged(&out, async {
        alarm.handle_alarm(&alarm_event("ALARM")).await.unwrap();
        alarm.handle_alarm(&alarm_event("OK")).await.unwrap();
    })
    .await;
    let lines = out.json();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("the summary line");
    assert_eq!(error["conflicts"], 1);
    assert_eq!(error["conflicting_order_ids"], "O1");
    for (key, value) in error.as_object().unwrap() {
        let text = value.as_str().unwrap_or_default();
        assert!(
            !text.starts_with('{') && !text.starts_with('['),
            "{key} holds JSON in a string: {text}"
        );
    }
    let recovery = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("back to OK"))
        })
        .expect("the recovery line");
    assert!(!recovery["message"].as_str().unwrap().contains("empty"));
}

/// Protects: every invocation's lines carry the function's own service and, when the context
/// names it, its function name (the local runner runs several functions in one process).
#[tokio::test]
async fn invocation_lines_carry_the_functions_service_and_name() {
    let out = Captured::default();
    let c = consumer(&out);
    let mut context = Context::default();
    context.request_id = "r1".into();
    context.env_config = Arc::new(lambda_runtime::Config {
        function_name: "local-IntakeFunction".into(),
        ..Default::default()
    });
    let mut event = SqsEvent::default();
    event.records = vec![record("m1", "{}")];
    // The process-wide layer names another service ("process"), as the local runner's does.
    capture_logs_into(&out);
    c.handle(LambdaEvent::new(event, context)).await.unwrap();
    let lines = out.json();
    let batch = lines
        .iter()
        .find(|l| l["message"] == "batch processed")
        .unwrap();
    assert_eq!(batch["service"], "order-consumer");
    assert_eq!(batch["function_name"], "local-IntakeFunction");
}
