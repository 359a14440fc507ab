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
    use std::time::{Duration, Instant};

    use order_local::pipeline::{LocalPipeline, Options};
    use order_local::template::Template;

    let template = Template::current().expect("the stack's template synthesizes");
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            schedule_every: None,
            ..Options::quiet("hidden")
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

/// Protects: an order that does not end in time is seen (issue 32, stuck orders). An order PAID
/// whose confirmation never comes (stored so: no event ever reaches the notification stage) is
/// found by the order watch at the stuck-order age (2 s here), reaches the stuck-order list (the
/// order-watch DLQ) whose alarm fires, and `order-producer stuck`'s list names it with its status
/// and the stage to look at; once it ends, order-watch-dlq takes it off the list and the alarm
/// returns to OK by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_does_not_end_in_time_is_listed_stuck_with_an_alarm_until_it_ends() {
    use std::time::{Duration, Instant};

    use chrono::{TimeDelta, Utc};
    use order_domain::{format_timestamp, LifecycleEvent, OrderItem, OrderStatus, Provenance};
    use order_local::pipeline::{LocalPipeline, Options};
    use order_local::template::Template;

    let template = Template::current().expect("the stack's template synthesizes");
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            schedule_every: None,
            stuck_after: Some(Duration::from_secs(2)),
            trace_daemon: None,
            ..Options::quiet("stuck")
        },
    )
    .await
    .expect("pipeline boots on moto (run `make setup` if moto_server is missing)");
    let queue_of = |binary: &str| {
        pipeline
            .mappings
            .iter()
            .find(|m| m.binary == binary)
            .map(|m| m.queue_url.clone())
            .unwrap_or_else(|| panic!("{binary} is fed by a queue"))
    };
    let (watch_queue, stuck_list) = (queue_of("order-watch"), queue_of("order-watch-dlq"));
    let (sqs, dynamodb) = (&pipeline.clients.sqs, &pipeline.clients.dynamodb);
    let table = &pipeline.stack.table_name;

    // Accepted 10 s ago, PAID 9 s ago, and never confirmed.
    let body = r#"{"orderId":"STUCK-1","customerId":"c-stuck","items":[{"sku":"A","quantity":1}]}"#;
    let (parsed, _) = order_domain::parse_order(body).expect("a valid order");
    let accepted_at = Utc::now() - TimeDelta::seconds(10);
    let from = Provenance {
        message_id: "m-stuck".into(),
        correlation_id: "corr-stuck".into(),
        sent_at: accepted_at,
    };
    let accepted = OrderItem::accepted(parsed, from, accepted_at);
    let mut paid = accepted.clone();
    paid.status = OrderStatus::Paid;
    paid.paid_at = Some(format_timestamp(accepted_at + TimeDelta::seconds(1)));
    paid.version = 3;
    let put = |item: &OrderItem| {
        dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(serde_dynamo::to_item(item).expect("the item maps")))
            .send()
    };
    put(&paid).await.expect("store the PAID order");
    // Its OrderAccepted event, as order-events publishes it to the watch's subscription.
    let event = LifecycleEvent::from_change(None, &accepted, &format_timestamp(Utc::now()))
        .expect("an OrderAccepted event");
    sqs.send_message()
        .queue_url(&watch_queue)
        .message_body(serde_json::to_string(&event).unwrap())
        .send()
        .await
        .expect("send the event to the watch queue");

    // The list's one alarm: its depth (it has none on arrivals).
    let is_list_alarm = |name: &str| name.contains("OrderWatchDeadLetters");
    // The first change of the list's alarm to `state` after `after`.
    let changed_to = |state: &'static str, after: chrono::DateTime<Utc>| {
        let pipeline = &pipeline;
        async move {
            let started = Instant::now();
            loop {
                if let Some(t) = pipeline
                    .alarms
                    .transitions()
                    .into_iter()
                    .find(|t| t.to == state && t.at > after && is_list_alarm(&t.alarm_name))
                {
                    return t.at;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(90),
                    "the stuck-order list's alarm never went to {state}: {:?}",
                    pipeline.alarms.transitions()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let fired = changed_to("ALARM", accepted_at).await;
    // The list's letter is in flight most of the time (order-watch-dlq keeps looking at it):
    // its depth, visible and in flight, is the alarm's.
    let depth = order_local::alarm::depth(sqs, &stuck_list)
        .await
        .expect("the list's depth");
    assert_eq!(depth, 1, "one order on the stuck-order list");
    let stuck = order_local::stuck::list(dynamodb, table, Duration::from_secs(2))
        .await
        .expect("the stuck orders");
    let rows = &stuck.rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].order_id, "STUCK-1");
    assert_eq!(rows[0].status, "PAID");
    assert_eq!(rows[0].look_at, ["notification"]);
    assert!(rows[0].age_seconds >= 2, "{rows:?}");
    assert!(rows[0].last_step.starts_with("paidAt "), "{rows:?}");
    let printed = order_local::stuck::table(&stuck);
    assert!(
        printed.contains("STUCK-1") && printed.contains("the notification stage"),
        "{printed}"
    );

    // It ends: the list lets it go, and the alarm clears by itself.
    let mut completed = paid.clone();
    completed.status = OrderStatus::Completed;
    completed.completed_at = Some(format_timestamp(Utc::now()));
    completed.version = 4;
    put(&completed).await.expect("complete the order");
    changed_to("OK", fired).await;
    let depth = order_local::alarm::depth(sqs, &stuck_list)
        .await
        .expect("the list's depth");
    assert_eq!(depth, 0, "the ended order left the stuck-order list");
    let stuck = order_local::stuck::list(dynamodb, table, Duration::from_secs(2))
        .await
        .expect("the stuck orders");
    assert!(stuck.rows.is_empty(), "{stuck:?}");
    pipeline.shutdown().await;
}
