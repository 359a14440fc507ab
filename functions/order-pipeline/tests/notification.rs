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

type Notifications =
    SqsWorker<EventStage<NotificationStage<MemoryInventory, MemoryCustomerPublisher>>>;

fn notifications() -> Notifications {
    SqsWorker::new(
        EventStage(NotificationStage::new(
            MemoryInventory::default(),
            MemoryCustomerPublisher::default(),
        )),
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
