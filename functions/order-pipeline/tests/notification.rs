//! The lifecycle's last step, the notification stage: a paid order confirmed once and then
//! COMPLETED, a rejection and a failed payment told, other events ignored, and a publish that
//! fails leaving the order PAID, against in-memory ports. It runs end to end in local/tests/e2e.rs.

mod common;

use std::sync::Arc;

use common::{config, deliver, reserved, sqs};
use order_domain::{EventType, LifecycleEvent, OrderItem, OrderStatus, PaymentResult};
use order_pipeline::adapters::memory::inventory::MemoryInventory;
use order_pipeline::adapters::memory::publish::MemoryCustomerPublisher;
use order_pipeline::adapters::memory::queue::MemoryVisibility;
use order_pipeline::ports::PortError;
use order_pipeline::runtime::stage::EventStage;
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::notification::NotificationStage;
use order_pipeline::stages::notification_dlq::NotificationDlqStage;

type Notifications =
    SqsWorker<EventStage<NotificationStage<MemoryInventory, MemoryCustomerPublisher>>>;

fn stage() -> NotificationStage<MemoryInventory, MemoryCustomerPublisher> {
    NotificationStage::new(
        MemoryInventory::default(),
        MemoryCustomerPublisher::default(),
    )
}

fn notifications() -> Notifications {
    SqsWorker::new(
        EventStage(stage()),
        config("notification"),
        Arc::new(Captured::default()),
        Some(Arc::new(MemoryVisibility::default())),
    )
    .unwrap()
}

/// The event of `item` moving from RESERVED to `to` (version 3).
fn settled(item: &OrderItem, to: OrderStatus) -> LifecycleEvent {
    let new = settled_item(item, to);
    LifecycleEvent::from_change(Some(item), &new, "now").unwrap()
}

/// `item` as the table holds it after moving from RESERVED to `to` (version 3).
fn settled_item(item: &OrderItem, to: OrderStatus) -> OrderItem {
    let mut new = item.clone();
    new.status = to;
    new.version = 3;
    new.paid_at = Some("2026-01-01T00:00:02Z".into());
    new.payment_failed_at = new.paid_at.clone();
    new.payment = Some(order_domain::Payment {
        result: if to == OrderStatus::Paid {
            PaymentResult::Approved
        } else {
            PaymentResult::Declined
        },
        provider: Some("simulated".into()),
        payment_id: (to == OrderStatus::Paid).then(|| "pay-9".into()),
        amount: "25".into(),
        currency: Some("USD".into()),
        attempts: Some(1),
        reason: (to != OrderStatus::Paid).then(|| "card declined".into()),
    });
    new
}

#[tokio::test]
async fn notification_confirms_a_paid_order_once_and_completes_it() {
    let w = notifications();
    let (item, _) = reserved("N1", "U9");
    let event = settled(&item, OrderStatus::Paid);
    assert_eq!(event.event_type, EventType::PaymentSucceeded);
    w.handler()
        .store()
        .stored(&settled_item(&item, OrderStatus::Paid));
    assert_eq!(deliver(&w, &event, 1).await, ("completed", false));
    let (status, version, write) = w.handler().store().status("N1").unwrap();
    assert_eq!((status, version), (OrderStatus::Completed, 4));
    assert_eq!(write.unwrap().change.step, "completedAt");
    let published = w.handler().publisher().published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    let n = &published[0];
    assert_eq!(n.dedupe_id, "N1:PaymentSucceeded");
    assert_eq!(n.customer_id, "U9");
    assert!(
        n.text.contains("confirmed") && n.text.contains("25.00 USD") && n.text.contains("pay-9"),
        "{}",
        n.text
    );
    // Redelivered after COMPLETED: nothing published again.
    assert_eq!(deliver(&w, &event, 2).await, ("duplicate", false));
    assert_eq!(w.handler().publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn notification_tells_of_a_rejection_and_of_a_failed_payment_and_ignores_other_events() {
    let w = notifications();
    let (item, reserved_event) = reserved("N2", "U9");
    let failed = settled(&item, OrderStatus::PaymentFailed);
    w.handler()
        .store()
        .stored(&settled_item(&item, OrderStatus::PaymentFailed));
    assert_eq!(deliver(&w, &failed, 1).await, ("notified", false));
    assert_eq!(deliver(&w, &reserved_event, 1).await, ("ignored", false));
    let mut rejected_item = item.clone();
    rejected_item.status = OrderStatus::Rejected;
    rejected_item.rejection = Some(order_domain::Rejection {
        reason: "not enough stock of A".into(),
        sku: Some("A".into()),
        requested: Some(2),
        available: Some(0),
        ..Default::default()
    });
    let mut accepted = item.clone();
    accepted.status = OrderStatus::Accepted;
    let rejected = LifecycleEvent::from_change(Some(&accepted), &rejected_item, "now").unwrap();
    let mut other = rejected_item.clone();
    other.order_id = "N2-R".into();
    w.handler().store().stored(&other);
    let rejected = LifecycleEvent {
        order_id: other.order_id.clone(),
        ..rejected
    };
    assert_eq!(deliver(&w, &rejected, 1).await, ("notified", false));
    let published = w.handler().publisher().published.lock().unwrap().clone();
    let ids: Vec<&str> = published.iter().map(|n| n.dedupe_id.as_str()).collect();
    assert_eq!(ids, ["N2:PaymentFailed", "N2-R:OrderRejected"]);
    assert!(
        published[0].text.contains("card declined"),
        "{}",
        published[0].text
    );
    assert!(
        published[1].text.contains("not enough stock of A"),
        "{}",
        published[1].text
    );
}

#[tokio::test]
async fn notification_that_cannot_publish_fails_and_does_not_complete_the_order() {
    let w = notifications();
    let (item, _) = reserved("N3", "U9");
    let event = settled(&item, OrderStatus::Paid);
    w.handler()
        .store()
        .stored(&settled_item(&item, OrderStatus::Paid));
    *w.handler().publisher().failing.lock().unwrap() =
        Some(PortError::Retryable("KMS access denied".into()));
    let body = serde_json::to_string(&event).unwrap();
    let err = w.handle_records(&[sqs("m", &body, 1)]).await.unwrap_err();
    assert!(err.first.contains("KMS"), "{err}");
    assert_eq!(
        w.handler().store().status("N3").unwrap().0,
        OrderStatus::Paid,
        "COMPLETED only after the confirmation is published"
    );
}

/// Protects: a notification says what the Orders table holds (customer, amount, payment), not
/// what the event's body says, and an event whose status and version the stored order is not at
/// publishes nothing (issue: stages trusted the event body). Fails when the stage builds the
/// notification from `event.order` or publishes a rejection or failure notice unread.
#[tokio::test]
async fn a_forged_event_chooses_neither_the_customer_nor_the_amount_of_a_notification() {
    let w = notifications();
    let (item, _) = reserved("N4", "U9");
    let paid = settled_item(&item, OrderStatus::Paid);
    w.handler().store().stored(&paid);
    let mut forged = settled(&item, OrderStatus::Paid);
    forged.order.customer_id = "someone-else".into();
    forged.order.amount = Some("0.01".into());
    assert_eq!(deliver(&w, &forged, 1).await, ("completed", false));
    // A failure notice for an order that is not PAYMENT_FAILED: nothing published.
    let mut failed = settled(&item, OrderStatus::PaymentFailed);
    failed.version = 4;
    assert_eq!(deliver(&w, &failed, 1).await, ("duplicate", false));
    let published = w.handler().publisher().published.lock().unwrap().clone();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].customer_id, "U9");
    assert!(
        published[0].text.contains("25.00 USD"),
        "{}",
        published[0].text
    );
    assert!(!published[0].text.contains("0.01"), "{}", published[0].text);
}

/// An order of customer U9 stored as the table holds it after RESERVED -> `to`, and the event of
/// that change.
fn stored_settled(store: &MemoryInventory, id: &str, to: OrderStatus) -> LifecycleEvent {
    let (item, _) = reserved(id, "U9");
    store.stored(&settled_item(&item, to));
    settled(&item, to)
}

type DeadNotifications =
    SqsWorker<EventStage<NotificationDlqStage<MemoryInventory, MemoryCustomerPublisher>>>;

/// notification-dlq's worker over an in-memory notification stage.
fn dead_notifications() -> DeadNotifications {
    SqsWorker::new(
        EventStage(NotificationDlqStage::new(stage())),
        config("notification-dlq"),
        Arc::new(Captured::default()),
        Some(Arc::new(MemoryVisibility::default())),
    )
    .unwrap()
}

/// Delivers `event`'s letter beside one that is not an event (so the batch answers rather than
/// failing whole) and checks that it comes back: `unavailable`, reported failed.
async fn the_letter_comes_back(w: &DeadNotifications, event: &LifecycleEvent) {
    let body = serde_json::to_string(event).unwrap();
    let (resp, reports) = w
        .handle_records(&[sqs("d1", &body, 1), sqs("d2", "not an event", 1)])
        .await
        .unwrap();
    assert_eq!(reports[0].outcome.label(), "unavailable");
    assert_eq!(resp.batch_item_failures.len(), 2, "the letter comes back");
}

/// Protects the notification DLQ's rule (docs/contract.md, "notification-dlq"): a confirmation that
/// could never be published does not leave its order PAID for ever. notification-dlq's last
/// attempt fails too, and the order goes PAID -> COMPLETED with the failure recorded
/// (`notificationFailure`, naming the event and the error); a failure notice that could never be
/// published is recorded on its PAYMENT_FAILED order, status and version unchanged. Each letter
/// is done; the same letter again writes nothing more.
#[tokio::test]
async fn notification_dlq_records_a_notification_that_could_never_be_sent_and_completes_a_paid_order(
) {
    let w = dead_notifications();
    let store = w.handler().store();
    let paid = stored_settled(store, "ND1", OrderStatus::Paid);
    let failed = stored_settled(store, "ND2", OrderStatus::PaymentFailed);
    *w.handler().publisher().failing.lock().unwrap() =
        Some(PortError::Fatal("KMS access denied".into()));

    assert_eq!(deliver(&w, &paid, 1).await, ("completed_unnotified", false));
    let (status, version, write) = store.status("ND1").unwrap();
    assert_eq!((status, version), (OrderStatus::Completed, 4));
    let failure = write.unwrap().notification_failure.unwrap();
    assert_eq!(failure.event_type, EventType::PaymentSucceeded);
    assert!(
        failure.error.contains("KMS access denied"),
        "{}",
        failure.error
    );

    assert_eq!(deliver(&w, &failed, 1).await, ("unnotified", false));
    let stored = order_pipeline::ports::orders::OrderReader::read(store, "ND2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.version),
        (OrderStatus::PaymentFailed, 3)
    );
    let failure = stored.notification_failure.unwrap();
    assert_eq!(failure.event_type, EventType::PaymentFailed);

    assert_eq!(deliver(&w, &paid, 2).await, ("already_settled", false));
    assert_eq!(store.status("ND1").unwrap().1, 4, "nothing written again");
    assert!(w.handler().publisher().published.lock().unwrap().is_empty());
}

/// Protects: a last attempt that works is a notification, not a failure: a confirmation whose
/// cause has passed is published and completes its order with nothing recorded.
#[tokio::test]
async fn notification_dlq_a_last_attempt_that_works_notifies_and_completes() {
    let w = dead_notifications();
    let paid = stored_settled(w.handler().store(), "ND3", OrderStatus::Paid);
    assert_eq!(
        deliver(&w, &paid, 1).await,
        ("notified_on_last_attempt", false)
    );
    let (status, _, write) = w.handler().store().status("ND3").unwrap();
    assert_eq!(status, OrderStatus::Completed);
    assert!(write.unwrap().notification_failure.is_none());
    assert_eq!(w.handler().publisher().published.lock().unwrap().len(), 1);
}

/// Protects: when not even the failure can be recorded (the Orders table is down too), the
/// letter comes back and stays in the DLQ; the order stays PAID.
#[tokio::test]
async fn notification_dlq_a_failure_that_cannot_be_recorded_leaves_the_letter_in_the_dlq() {
    let w = dead_notifications();
    let paid = stored_settled(w.handler().store(), "ND4", OrderStatus::Paid);
    *w.handler().store().failing.lock().unwrap() =
        Some(PortError::Retryable("ServiceUnavailable".into()));
    the_letter_comes_back(&w, &paid).await;
    *w.handler().store().failing.lock().unwrap() = None;
    assert_eq!(
        w.handler().store().status("ND4").unwrap().0,
        OrderStatus::Paid
    );
}

/// Protects (found in review): the operator's error of a `dead_lettered` rejection (it can name
/// tables, roles and items) never reaches the customer: the notice's event and text carry the
/// reason only.
#[tokio::test]
async fn a_dead_lettered_rejection_tells_the_customer_its_reason_and_never_its_error() {
    let w = notifications();
    let (item, _) = reserved("ND5", "U9");
    let mut accepted = item.clone();
    accepted.status = OrderStatus::Accepted;
    accepted.version = 1;
    let mut rejected_item = accepted.clone();
    rejected_item.status = OrderStatus::Rejected;
    rejected_item.version = 2;
    rejected_item.rejection = Some(order_domain::Rejection {
        reason: "the stock could not be reserved: the order could not be processed".into(),
        code: Some(order_domain::RejectionCode::DeadLettered),
        error: Some("the Inventory item of sku SECRET-TABLE-NAME does not map".into()),
        ..Default::default()
    });
    w.handler().store().stored(&rejected_item);
    let event = LifecycleEvent::from_change(Some(&accepted), &rejected_item, "now").unwrap();
    assert!(
        event.order.rejection.as_ref().unwrap().error.is_none(),
        "the event carries no error"
    );
    assert_eq!(deliver(&w, &event, 1).await, ("notified", false));
    let published = w.handler().publisher().published.lock().unwrap().clone();
    let body = serde_json::to_string(&published[0]).unwrap();
    assert!(!body.contains("SECRET-TABLE-NAME"), "{body}");
    assert!(body.contains("could not be processed"), "{body}");
}

/// Protects (found in review): a notification that went out is never recorded as failed. The
/// confirmation is published but completing the order is throttled once: the letter comes back,
/// nothing is recorded (before, the failure was recorded with the order's completion, and ops
/// were told the customer had not heard), and its next showing completes the order without a
/// `notificationFailure`.
#[tokio::test]
async fn notification_dlq_never_records_a_published_notification_as_failed() {
    let w = dead_notifications();
    let store = w.handler().store();
    let paid = stored_settled(store, "ND6", OrderStatus::Paid);
    store
        .failing_writes
        .lock()
        .unwrap()
        .push(PortError::Retryable("throttled".into()));
    the_letter_comes_back(&w, &paid).await;
    assert_eq!(store.status("ND6").unwrap().0, OrderStatus::Paid);
    assert_eq!(
        deliver(&w, &paid, 2).await,
        ("notified_on_last_attempt", false)
    );
    let (status, _, write) = store.status("ND6").unwrap();
    assert_eq!(status, OrderStatus::Completed);
    assert!(write.unwrap().notification_failure.is_none());
    let published = w.handler().publisher().published.lock().unwrap().clone();
    assert_eq!(
        published.len(),
        2,
        "published on each showing, with one dedupe id"
    );
    assert!(published
        .iter()
        .all(|n| n.dedupe_id == "ND6:PaymentSucceeded"));
}
