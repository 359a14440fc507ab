//! dlq-alarm's contract (docs/contract.md, "dlq-alarm"): never-stored orders' dead letters marked
//! FAILED, every message left in the DLQ, one summary paged, the OK recovery, scheduled sweeps,
//! the wait for letters another look holds, its deadline, its log lines and the test/events alarm
//! fixtures, against in-memory ports. It runs on moto in local/tests/moto_dlq.rs and
//! local/tests/moto_orders.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use common::{
    alarm_event, alarm_fn, alarm_transition, consumer, dlq_config, letter, logged, order_body,
    record,
};
use order_domain::OrderStatus;
use order_pipeline::adapters::memory::orders::{Fault, MemoryStore};
use order_pipeline::adapters::memory::publish::MemoryNotifier;
use order_pipeline::adapters::memory::queue::MemoryDeadLetterQueue;
use order_pipeline::functions::dlq_alarm::DlqAlarm;
use order_pipeline::ports::PortError;
use order_pipeline::runtime::bounded::Deadline;
use order_pipeline::runtime::config::DlqAlarmConfig;
use order_pipeline::runtime::telemetry::Captured;

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

/// Protects: a conflict that reaches the DLQ while its alarm stays in ALARM is logged at WARN by
/// the scheduled sweep that finds it, once per instance, not at every sweep (before, each sweep
/// logged it again: every 5 s locally); conflicts stay in the DLQ by design, so the sweeps do not
/// page them (a per-instance memory would page them again at every cold start); the summary
/// still lists them.
#[tokio::test]
async fn a_conflict_found_by_the_sweeps_is_logged_once_and_not_paged() {
    let out = Captured::default();
    let alarm = alarm_fn(vec![]);
    alarm.store().put({
        let other = alarm_fn(vec![letter("d0", &order_body("O1", 7))]);
        other.handle_alarm(&alarm_event("ALARM")).await.unwrap();
        other.store().get("O1").unwrap()
    });
    alarm.dlq().messages.lock().unwrap().extend([
        letter("d1", &order_body("O1", 1)),
        letter("d2", "{not json"),
    ]);
    let sweeps = logged(&out, async {
        let mut sweeps = Vec::new();
        for _ in 0..3 {
            sweeps.push(alarm.scheduled_sweep_within(None).await.unwrap());
        }
        sweeps
    })
    .await;
    assert_eq!(sweeps[0].conflicts, ["O1"]);
    assert_eq!(sweeps[0].unparseable.len(), 1);
    assert_eq!(sweeps[0].new_letters, 2);
    assert_eq!(sweeps[2].conflicts, ["O1"], "still in the summary");
    assert_eq!(sweeps[2].new_letters, 0);
    assert!(alarm.notifier().published().is_empty(), "no page");
    let warned: Vec<_> = out
        .json()
        .into_iter()
        .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "one conflict WARN for three sweeps: {warned:?}"
    );
}

/// Protects: the alarm's summary says how many messages it read, how many another reader held
/// hidden and the DLQ's depth, in the response, the ERROR line and the page's subject (before,
/// a sweep that read part of the DLQ could not tell the rest existed).
#[tokio::test]
async fn the_alarm_summary_says_what_it_read_what_another_reader_held_and_the_depth() {
    let out = Captured::default();
    let alarm = alarm_fn(
        (0..5)
            .map(|i| letter(&format!("d{i}"), &order_body(&format!("O{i}"), 1)))
            .collect(),
    );
    // Someone else holds two of them (a sweep, a person polling the DLQ).
    alarm
        .dlq()
        .hidden
        .lock()
        .unwrap()
        .extend(["d0".into(), "d1".into()]);
    let summary = logged(&out, alarm.handle_alarm(&alarm_event("ALARM")))
        .await
        .unwrap();
    assert_eq!(summary.messages_seen, 3);
    assert_eq!(summary.held_elsewhere, 2);
    assert_eq!(summary.depth, Some(5));
    let lines = out.json();
    let error = lines.iter().find(|l| l["level"] == "ERROR").unwrap();
    assert_eq!(error["depth"], 5);
    assert_eq!(error["held_elsewhere"], 2);
    let published = alarm.notifier().published();
    assert!(
        published[0]
            .0
            .contains("read 3 of 5 messages (2 held by another reader)"),
        "{:?}",
        published[0].0
    );
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

// --- the deadline rule (the worker's): dlq-alarm here, the intake stage in contract.rs ---

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

// --- the event fixtures under test/events/, as `cargo lambda invoke --data-file` sends them ---

const ALARM_ALARM: &str = include_str!("../../../test/events/alarm-alarm.json");
const ALARM_OK: &str = include_str!("../../../test/events/alarm-ok.json");

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
