//! dlq-alarm and the report against a real SQS DLQ (moto's server, started by each test on a
//! free loopback port): the alarm's sweep, the non-consuming DLQ snapshot (slow, or failing part
//! way through the fault proxy's scripted faults) and the report's completeness check.

#[path = "common/moto.rs"]
mod moto;

use order_domain::OrderStatus;
use std::time::Duration;

use moto::{
    alarm, consumer, dlq_alarm, env, hold, order, record, send_messages, send_to_dlq, sqs_through,
    visible_and_hidden,
};
use order_local::alarm::depth;
use order_pipeline::adapters::sqs::SqsDeadLetterQueue;

#[tokio::test]
async fn dlq_alarm_marks_orders_failed_from_a_real_dlq_and_leaves_every_message_in_it() {
    let e = env("d1").await;
    // O-stored is accepted with other content first: its dead letter is a conflicting reuse.
    consumer(e.store.clone(), &e.stack.table_name)
        .handle_records(&[record("m0", &order("O-stored", 1))])
        .await
        .unwrap();
    let bodies: Vec<String> = (0..12)
        .map(|i| order(&format!("O{i}"), 1))
        .chain([order("O-stored", 9), "not json".to_string()])
        .collect();
    send_to_dlq(&e, &bodies).await;
    let handler = dlq_alarm(&e);

    let summary = handler.handle_alarm(&alarm("ALARM")).await.unwrap();
    assert_eq!(summary.messages_seen, 14);
    assert_eq!(summary.marked_failed.len(), 12);
    assert_eq!(summary.conflicts, ["O-stored"]);
    assert_eq!(summary.unparseable.len(), 1);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (14, 0),
        "every message is still there and visible"
    );

    let failed = e
        .store
        .get("O3")
        .await
        .unwrap()
        .expect("FAILED item created");
    assert_eq!(failed.status, OrderStatus::Failed);
    assert!(
        failed
            .failure
            .as_ref()
            .is_some_and(|f| f.reason.contains("corr-3")),
        "{failed:?}"
    );
    assert_eq!(
        e.store.get("O-stored").await.unwrap().unwrap().status,
        OrderStatus::Accepted,
        "stored order left alone"
    );

    // The same alarm event again changes nothing more.
    let again = handler.handle_alarm(&alarm("ALARM")).await.unwrap();
    assert!(again.marked_failed.is_empty());
    assert_eq!(again.already_failed.len(), 12);
    assert_eq!(e.store.get("O3").await.unwrap().unwrap(), failed);
    assert_eq!(depth(&e.clients.sqs, &e.stack.dlq_url).await.unwrap(), 14);
}

/// Protects: on a real SQS API, an alarm's sweep that fires while another look (the scheduled
/// sweep) holds the DLQ's messages counts them as held (ApproximateNumberOfMessagesNotVisible)
/// and examines them once they are released, instead of reporting an empty DLQ.
#[tokio::test]
async fn an_alarm_sweep_on_a_real_dlq_waits_for_what_another_look_holds() {
    use order_pipeline::ports::queue::DeadLetterQueue;
    let e = env("h1").await;
    let bodies: Vec<String> = (0..3).map(|i| order(&format!("H{i}"), 1)).collect();
    send_to_dlq(&e, &bodies).await;
    let other = SqsDeadLetterQueue::new(e.clients.sqs.clone(), e.stack.dlq_url.clone());
    let held = other.snapshot(100, 30).await.unwrap();
    assert_eq!(held.len(), 3);
    assert_eq!(
        other.counts().await.unwrap().held,
        3,
        "the other look holds all three"
    );
    let handler = dlq_alarm(&e);
    let event = alarm("ALARM");
    let (summary, ()) = tokio::join!(handler.handle_alarm(&event), async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        other.release(&held).await.unwrap();
    });
    let summary = summary.unwrap();
    assert_eq!(summary.messages_seen, 3, "{summary:?}");
    assert_eq!(summary.marked_failed, ["H0", "H1", "H2"]);
    assert_eq!(
        other.counts().await.unwrap().held,
        0,
        "released by both looks"
    );
}

/// Protects: a DLQ snapshot that takes longer than its visibility timeout (a large DLQ, a slow
/// endpoint) holds each message once and ends when its first messages are visible again:
/// they used to be read again, and again, until the snapshot's maximum (the 10,000-order soak's
/// report never ended on a DLQ of 973), each counted more than once.
#[tokio::test]
async fn a_dlq_snapshot_slower_than_its_visibility_timeout_holds_each_message_once() {
    use order_local::faults::{FaultProxy, FaultRates};
    use order_pipeline::ports::queue::DeadLetterQueue;
    let e = env("snapslow").await;
    send_messages(&e.clients, &e.stack.dlq_url, 30).await;
    let slow = FaultRates::round_trip(Duration::from_millis(700));
    let proxy = FaultProxy::start_scripted(e.clients.endpoint.as_str(), slow, Vec::new())
        .await
        .unwrap();
    let dlq = SqsDeadLetterQueue::new(sqs_through(&proxy).await, e.stack.dlq_url.clone());
    // Hidden for 1 s, each receive taking at least 0.7 s: the first ten are back by the third.
    let started = std::time::Instant::now();
    let letters = dlq.snapshot(200, 1).await.unwrap();
    let ids: std::collections::HashSet<&str> =
        letters.iter().map(|l| l.message_id.as_str()).collect();
    assert_eq!(letters.len(), ids.len(), "no message twice");
    assert!(
        (10..=30).contains(&letters.len()),
        "{} letters",
        letters.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it ends once its first messages are visible again, not at its maximum ({:?})",
        started.elapsed()
    );
    dlq.release(&letters).await.unwrap();
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (30, 0),
        "released with the receipts that still hold them"
    );
}

/// Protects: when a receive fails part-way through dlq-alarm's DLQ snapshot (after ten
/// messages were hidden), the snapshot fails and every message it hid is visible again at
/// once: none stays hidden for the snapshot's visibility timeout, out of the operator's and the
/// next sweep's sight.
#[tokio::test]
async fn a_dlq_snapshot_that_fails_part_way_shows_every_hidden_message_again() {
    use order_local::faults::{FaultProxy, FaultRates, Scripted};
    use order_pipeline::ports::queue::DeadLetterQueue;
    let e = env("snapfail").await;
    send_messages(&e.clients, &e.stack.dlq_url, 25).await;
    let proxy = FaultProxy::start_scripted(
        e.clients.endpoint.as_str(),
        FaultRates::none(),
        vec![Scripted::FailFrom {
            operation: "AmazonSQS.ReceiveMessage".into(),
            from: 2,
        }],
    )
    .await
    .unwrap();
    let dlq = SqsDeadLetterQueue::new(sqs_through(&proxy).await, e.stack.dlq_url.clone());
    let err = dlq.snapshot(100, 300).await.unwrap_err();
    assert!(
        proxy
            .stats
            .scripted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "the second receive failed ({err})"
    );
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (25, 0),
        "the ten messages the first receive hid are visible again"
    );
}

/// Protects the report's completeness check: a DLQ message another reader holds hidden when the
/// report looks is counted as unread and named as a problem. The sixth 10,000-order soak's report
/// read 704 of the DLQ's 740 messages and the 36 it missed read as lost, without a word.
#[tokio::test]
async fn a_report_that_cannot_read_the_whole_dlq_says_so() {
    let e = env("dlqunread").await;
    send_to_dlq(&e, &[order("U1", 1), order("U2", 1), order("U3", 1)]).await;
    // Another reader holds one of them.
    assert_eq!(hold(&e.clients.sqs, &e.stack.dlq_url, 1).await.len(), 1);
    let summary = order_local::report::collect(
        &e.clients,
        &e.stack,
        &[],
        &order_local::mapping::MappingStats::default(),
        Vec::new(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        summary.dead_letters.len(),
        2,
        "the two visible ones are read"
    );
    assert_eq!(summary.dlq_unread, 1, "the held one is counted as unread");
    assert!(
        !summary.all_accounted_for(),
        "an incomplete look is a problem"
    );
    let text = order_local::report::render(&summary, &e.stack, "log");
    assert!(
        text.contains("the DLQ holds 1 message(s) its look could not read"),
        "{text}"
    );
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (2, 1),
        "the report's look released what it read"
    );
}
