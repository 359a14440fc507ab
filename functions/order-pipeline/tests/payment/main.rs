//! The lifecycle's payment step, one test per row: the payment stage (approved, declined,
//! unavailable with a growing backoff, attempts used up, duplicate event, invalid, store down)
//! and the payment DLQ handler, against
//! in-memory ports. The same handlers run on moto in local/tests/lifecycle.rs and end to end in
//! local/tests/e2e.rs; the gateways' tests are in payment_gateway.rs, the notification stage's in
//! notification.rs.

#[path = "../common/mod.rs"]
mod common;
mod scripted;

use std::sync::Arc;
use std::time::Duration;

use common::{config, deliver, reserved, sqs, BACKOFF};
use order_domain::{InventoryItem, OrderStatus, PaymentResult};
use order_pipeline::adapters::memory::inventory::MemoryInventory;
use order_pipeline::adapters::memory::queue::MemoryVisibility;
use order_pipeline::ports::payment::{Charge, Lookup};
use order_pipeline::ports::PortError;
use order_pipeline::runtime::stage::EventStage;
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::payment::{PaymentSettings, PaymentStage};
use order_pipeline::stages::payment_dlq::PaymentDlqStage;
use scripted::{unavailable, Scripted};

/// A and B with the order's 3 units reserved (initial stock 10 and 5).
fn inventory() -> MemoryInventory {
    let item = |sku: &str, available: u64, reserved: u64| InventoryItem {
        sku: sku.into(),
        available,
        reserved,
        sold: 0,
        name: None,
        unit_price: None,
        currency: Some("USD".into()),
        version: 1,
    };
    MemoryInventory::with(vec![item("A", 8, 2), item("B", 4, 1)])
}

type Payments = SqsWorker<EventStage<PaymentStage<MemoryInventory, Scripted>>>;

fn payments(answers: Vec<Charge>, max_attempts: u32) -> (Payments, Arc<MemoryVisibility>) {
    let visibility = Arc::new(MemoryVisibility::default());
    let store = inventory();
    let worker = SqsWorker::new(
        EventStage(PaymentStage::new(
            store,
            Scripted::answering(answers),
            PaymentSettings {
                max_attempts,
                backoff: BACKOFF,
                claim: Duration::from_secs(30),
            },
        )),
        config("payment"),
        Arc::new(Captured::default()),
        Some(visibility.clone()),
    )
    .unwrap();
    (worker, visibility)
}

fn units(store: &MemoryInventory, sku: &str) -> (u64, u64, u64) {
    let i = store.item(sku).unwrap();
    (i.available, i.reserved, i.sold)
}

#[tokio::test]
async fn row_approved_moves_the_order_to_paid_with_its_payment_and_its_units_to_sold() {
    let (w, _) = payments(
        vec![Charge::Approved {
            payment_id: "pay-1".into(),
        }],
        3,
    );
    let (item, event) = reserved("P1", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("paid", false));
    let store = w.handler().store();
    assert_eq!(units(store, "A"), (8, 0, 2), "A: reserved -> sold");
    assert_eq!(units(store, "B"), (4, 0, 1));
    let (status, version, write) = store.status("P1").unwrap();
    assert_eq!((status, version), (OrderStatus::Paid, 3));
    let payment = write.unwrap().payment.unwrap();
    assert_eq!(payment.result, PaymentResult::Approved);
    assert_eq!(payment.payment_id.as_deref(), Some("pay-1"));
    assert_eq!(payment.amount, "25");
    assert_eq!(payment.currency.as_deref(), Some("USD"));
    assert_eq!(payment.attempts, Some(1));
    assert_eq!(payment.provider.as_deref(), Some("scripted"));
    let calls = w.handler().gateway().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].idempotency_key, "P1:payment");
    assert_eq!((calls[0].amount.as_str(), calls[0].attempt), ("25", 1));
}

#[tokio::test]
async fn row_declined_fails_the_payment_at_once_and_releases_the_stock() {
    let (w, visibility) = payments(
        vec![Charge::Declined {
            reason: "insufficient funds".into(),
        }],
        3,
    );
    let (item, event) = reserved("P2", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("declined", false));
    let store = w.handler().store();
    assert_eq!(units(store, "A"), (10, 0, 0), "A: reserved -> available");
    assert_eq!(units(store, "B"), (5, 0, 0));
    let (status, _, write) = store.status("P2").unwrap();
    assert_eq!(status, OrderStatus::PaymentFailed);
    let write = write.unwrap();
    assert_eq!(write.change.step, "paymentFailedAt");
    let payment = write.payment.unwrap();
    assert_eq!(payment.result, PaymentResult::Declined);
    assert_eq!(payment.reason.as_deref(), Some("insufficient funds"));
    assert!(visibility.delays.lock().unwrap().is_empty());
}

#[tokio::test]
async fn row_unavailable_retries_with_a_growing_backoff_then_fails_the_payment_when_attempts_are_used_up(
) {
    let (w, visibility) = payments(vec![unavailable(), unavailable(), unavailable()], 3);
    let (item, event) = reserved("P3", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("provider_unavailable", true));
    assert_eq!(deliver(&w, &event, 2).await, ("provider_unavailable", true));
    let delays: Vec<Duration> = visibility
        .delays
        .lock()
        .unwrap()
        .iter()
        .map(|(handle, d)| {
            assert_eq!(handle, "handle-m1");
            *d
        })
        .collect();
    assert_eq!(
        delays,
        [Duration::from_secs(10), Duration::from_secs(20)],
        "the backoff doubles with the attempt"
    );
    let store = w.handler().store();
    assert_eq!(
        store.status("P3").unwrap().0,
        OrderStatus::Reserved,
        "still reserved while attempts are left"
    );
    assert_eq!(units(store, "A"), (8, 2, 0));
    // The last allowed attempt without an answer: looked up only when it comes back.
    assert_eq!(deliver(&w, &event, 3).await, ("provider_unavailable", true));
    assert_eq!(deliver(&w, &event, 4).await, ("attempts_used_up", false));
    let (status, _, write) = store.status("P3").unwrap();
    assert_eq!(status, OrderStatus::PaymentFailed);
    let payment = write.unwrap().payment.unwrap();
    assert_eq!(payment.result, PaymentResult::AttemptsUsedUp);
    assert_eq!(payment.attempts, Some(3));
    assert_eq!(units(store, "A"), (10, 0, 0), "released");
    assert_eq!(w.handler().gateway().calls().len(), 3);
}

/// Protects (issue 30, finding 3): a charge the provider made but never answered in time (every
/// attempt unavailable) is found by the lookup before the order fails: the order ends PAID with
/// the provider's payment id and its units sold. Before, it ended PAYMENT_FAILED with its stock
/// released and the customer told so, while the provider held the money.
#[tokio::test]
async fn attempts_used_up_with_the_charge_standing_at_the_provider_end_paid() {
    let (w, _) = payments(vec![unavailable(), unavailable()], 2);
    w.handler().gateway().looking_up(vec![Lookup::Charged {
        payment_id: "pay-late".into(),
    }]);
    let (item, event) = reserved("U1", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("provider_unavailable", true));
    assert_eq!(deliver(&w, &event, 2).await, ("provider_unavailable", true));
    assert_eq!(deliver(&w, &event, 3).await, ("paid", false));
    let store = w.handler().store();
    let (status, _, write) = store.status("U1").unwrap();
    assert_eq!(status, OrderStatus::Paid);
    let payment = write.unwrap().payment.unwrap();
    assert_eq!(
        (payment.result, payment.payment_id.as_deref()),
        (PaymentResult::Approved, Some("pay-late"))
    );
    assert!(
        payment.reason.unwrap().contains("found by lookup"),
        "the record says how the charge was found"
    );
    assert_eq!(units(store, "A"), (8, 0, 2), "sold, never released");
}

/// Protects (issue 30, finding 3): with no charge at the provider the order fails as before
/// (asked once); while the lookup has no usable answer the order stays RESERVED with its stock
/// held and comes back on the longest backoff, never PAYMENT_FAILED with a charge possibly
/// standing.
#[tokio::test]
async fn attempts_used_up_fail_only_when_the_provider_holds_no_charge_and_wait_while_unknown() {
    let (w, _) = payments(vec![unavailable()], 1);
    let (item, event) = reserved("U2", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("provider_unavailable", true));
    assert_eq!(deliver(&w, &event, 2).await, ("attempts_used_up", false));
    assert_eq!(w.handler().gateway().lookups_asked(), 1);
    let (status, _, write) = w.handler().store().status("U2").unwrap();
    assert_eq!(status, OrderStatus::PaymentFailed);
    assert!(write
        .unwrap()
        .payment
        .unwrap()
        .reason
        .unwrap()
        .contains("the provider holds no charge"));

    let (w, visibility) = payments(vec![unavailable()], 1);
    w.handler().gateway().looking_up(vec![Lookup::Unknown {
        reason: "no answer within 3000 ms".into(),
    }]);
    let (item, event) = reserved("U3", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("provider_unavailable", true));
    assert_eq!(deliver(&w, &event, 2).await, ("payment_unresolved", true));
    let store = w.handler().store();
    assert_eq!(store.status("U3").unwrap().0, OrderStatus::Reserved);
    assert_eq!(units(store, "A"), (8, 2, 0), "the stock stays held");
    assert_eq!(
        visibility.delays.lock().unwrap().last().map(|d| d.1),
        Some(BACKOFF.max),
        "asked again on the longest backoff"
    );
    // Asked again: the provider answers now.
    w.handler().gateway().looking_up(vec![Lookup::Charged {
        payment_id: "pay-found".into(),
    }]);
    assert_eq!(deliver(&w, &event, 3).await, ("paid", false));
    assert_eq!(
        w.handler().gateway().calls().len(),
        1,
        "no new charge past the attempts"
    );
}

/// Protects: the last allowed attempt without a final answer is not looked up at once. A charge
/// it sent may still be in progress at the provider (the client gave up before the provider
/// decided; a 409 "key in use"): a lookup that moment answers "no charge", the order failed and
/// its stock was released, and the charge stood a moment later. Now the record comes back after
/// the longest backoff, the stock held, and only that delivery looks the charge up. Fails when
/// the stage resolves on the last attempt's own delivery.
#[tokio::test]
async fn the_last_attempt_without_an_answer_is_looked_up_only_after_the_longest_backoff() {
    let (w, visibility) = payments(vec![unavailable()], 1);
    // What a lookup at once would answer: the provider has not decided yet.
    w.handler().gateway().looking_up(vec![Lookup::NoCharge {
        reason: "no charge under the key (404)".into(),
    }]);
    let (item, event) = reserved("U4", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("provider_unavailable", true));
    assert_eq!(
        w.handler().gateway().lookups_asked(),
        0,
        "not looked up right after the last attempt"
    );
    let store = w.handler().store();
    assert_eq!(store.status("U4").unwrap().0, OrderStatus::Reserved);
    assert_eq!(units(store, "A"), (8, 2, 0), "the stock stays held");
    assert_eq!(
        visibility.delays.lock().unwrap().last().map(|d| d.1),
        Some(BACKOFF.max),
        "back after the longest backoff"
    );
    // By then the provider has decided: the charge stands.
    w.handler().gateway().looking_up(vec![Lookup::Charged {
        payment_id: "pay-decided-late".into(),
    }]);
    assert_eq!(deliver(&w, &event, 2).await, ("paid", false));
    assert_eq!(w.handler().gateway().calls().len(), 1, "charged once");
    assert_eq!(units(store, "A"), (8, 0, 2), "sold, never released");
}

/// Protects (issue 30, finding 3): the payment DLQ asks the provider too, for an order whose
/// payment was attempted: a standing charge → PAID; no usable answer → the order stays
/// RESERVED and the letter fails (it stays in the DLQ, its alarm on). Before, payment-dlq failed
/// every such order without asking.
#[tokio::test]
async fn a_dead_letter_with_attempts_is_resolved_with_the_provider_before_its_order_fails() {
    let dlq = |lookups: Vec<Lookup>| {
        let gateway = Scripted::default();
        gateway.looking_up(lookups);
        SqsWorker::new(
            EventStage(PaymentDlqStage::new(inventory(), gateway)),
            config("payment-dlq"),
            Arc::new(Captured::default()),
            Some(Arc::new(MemoryVisibility::default())),
        )
        .unwrap()
    };
    let (mut item, event) = reserved("D2", "U1");
    item.payment_attempts = Some(3);
    let w = dlq(vec![Lookup::Charged {
        payment_id: "pay-dlq".into(),
    }]);
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("paid_after_lookup", false));
    assert_eq!(
        w.handler().store().status("D2").unwrap().0,
        OrderStatus::Paid
    );
    assert_eq!(units(w.handler().store(), "A"), (8, 0, 2));

    let w = dlq(vec![Lookup::Unknown {
        reason: "503".into(),
    }]);
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("payment_unresolved", true));
    assert_eq!(
        w.handler().store().status("D2").unwrap().0,
        OrderStatus::Reserved
    );
    assert_eq!(units(w.handler().store(), "A"), (8, 2, 0), "stock held");
}

#[tokio::test]
async fn row_attempts_counted_beyond_the_limit_fail_the_payment_without_calling_the_provider() {
    let (w, _) = payments(vec![], 2);
    let (item, event) = reserved("P4", "U1");
    let store = w.handler().store();
    store.stored(&item);
    // Two attempts were counted by invocations that died before the provider answered.
    store.attempts.lock().unwrap().insert("P4".into(), 2);
    assert_eq!(deliver(&w, &event, 3).await, ("attempts_used_up", false));
    assert!(w.handler().gateway().calls().is_empty());
    assert_eq!(store.status("P4").unwrap().0, OrderStatus::PaymentFailed);
}

#[tokio::test]
async fn row_an_order_past_reserved_is_a_duplicate_event_and_the_provider_is_not_called() {
    let (w, _) = payments(vec![], 3);
    let (item, event) = reserved("P5", "U1");
    let store = w.handler().store();
    store.order("P5", OrderStatus::Paid, item.version + 1);
    assert_eq!(deliver(&w, &event, 1).await, ("duplicate", false));
    assert!(w.handler().gateway().calls().is_empty());
    assert_eq!(units(store, "A"), (8, 2, 0), "stock untouched");
    // And the same event delivered twice pays once.
    let (w, _) = payments(vec![], 3);
    let (item, event) = reserved("P6", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await.0, "paid");
    assert_eq!(deliver(&w, &event, 2).await.0, "duplicate");
    assert_eq!(w.handler().gateway().calls().len(), 1);
    assert_eq!(units(w.handler().store(), "A"), (8, 0, 2), "sold once");
}

/// Protects (issue 30, finding 7): two copies of one InventoryReserved handled at once (one
/// batch, or two instances) reach the provider once. Counting the attempt left the version as
/// it was, so both copies passed the conditional count and both called the provider. Now the
/// attempt claims the order: the second copy finds it held, calls nothing, and comes back when
/// the claim ends.
#[tokio::test]
async fn two_copies_of_one_event_handled_at_once_call_the_provider_once() {
    let (w, visibility) = payments(vec![], 3);
    *w.handler().gateway().delay.lock().unwrap() = Some(Duration::from_millis(50));
    let (item, event) = reserved("C1", "U1");
    w.handler().store().stored(&item);
    let body = serde_json::to_string(&event).unwrap();
    let (response, reports) = w
        .handle_records(&[sqs("first", &body, 1), sqs("copy", &body, 1)])
        .await
        .unwrap();
    let mut labels: Vec<&str> = reports.iter().map(|r| r.outcome.label()).collect();
    labels.sort();
    assert_eq!(labels, ["held_by_another_attempt", "paid"]);
    assert_eq!(
        w.handler().gateway().calls().len(),
        1,
        "one call to the provider"
    );
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the held copy comes back"
    );
    let delays = visibility.delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 1, "{delays:?}");
    assert!(delays[0].1 >= Duration::from_secs(1), "{delays:?}");
    assert_eq!(units(w.handler().store(), "A"), (8, 0, 2), "sold once");
    // The copy, back after the claim: a duplicate.
    assert_eq!(deliver(&w, &event, 2).await.0, "duplicate");
    assert_eq!(w.handler().gateway().calls().len(), 1);
}

/// Protects (issue 30, finding 6): the payment stage charges the stored order, not the event.
/// A forged InventoryReserved at the right version (the order-events topic takes Publish from
/// any principal of the account) carried its own amount, customer and reservation, and the
/// stage charged that amount and sold those units.
#[tokio::test]
async fn a_forged_event_chooses_neither_the_amount_nor_the_customer_nor_the_units() {
    let (w, _) = payments(vec![], 3);
    let (item, mut event) = reserved("F1", "U1");
    w.handler().store().stored(&item);
    event.order.amount = Some("0.01".into());
    event.order.customer_id = "someone-else".into();
    event.order.reservation = Some(vec![order_domain::ReservedLine {
        sku: "A".into(),
        quantity: 8,
    }]);
    assert_eq!(deliver(&w, &event, 1).await, ("paid", false));
    let calls = w.handler().gateway().calls();
    assert_eq!(
        (calls[0].amount.as_str(), calls[0].customer_id.as_str()),
        ("25", "U1"),
        "the table's amount and customer"
    );
    assert_eq!(
        units(w.handler().store(), "A"),
        (8, 0, 2),
        "the stored reservation's 2 units sold, not the event's 8"
    );
}

#[tokio::test]
async fn row_a_body_that_is_not_an_event_fails_its_record_only_and_a_store_outage_fails_the_invocation(
) {
    let (w, _) = payments(vec![], 3);
    let (response, reports) = w
        .handle_records(&[sqs("bad", "{not json", 1)])
        .await
        .unwrap();
    assert_eq!(reports[0].outcome.label(), "invalid");
    assert_eq!(response.batch_item_failures.len(), 1);

    let (item, event) = reserved("P7", "U1");
    w.handler().store().stored(&item);
    *w.handler().store().failing.lock().unwrap() = Some(PortError::Retryable("throttled".into()));
    let body = serde_json::to_string(&event).unwrap();
    let err = w.handle_records(&[sqs("m", &body, 1)]).await.unwrap_err();
    assert!(err.first.contains("throttled"), "{err}");
    assert!(
        w.handler().gateway().calls().is_empty(),
        "no call before the attempt is counted"
    );
}

#[tokio::test]
async fn dead_letter_fails_a_reserved_order_and_releases_its_stock_and_leaves_a_settled_one_alone()
{
    let w = SqsWorker::new(
        EventStage(PaymentDlqStage::new(inventory(), Scripted::default())),
        config("payment-dlq"),
        Arc::new(Captured::default()),
        Some(Arc::new(MemoryVisibility::default())),
    )
    .unwrap();
    let (item, event) = reserved("D1", "U1");
    w.handler().store().stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("payment_failed", false));
    let store = w.handler().store();
    let (status, _, write) = store.status("D1").unwrap();
    assert_eq!(status, OrderStatus::PaymentFailed);
    assert_eq!(
        write.unwrap().payment.unwrap().result,
        PaymentResult::DeadLettered
    );
    assert_eq!(units(store, "A"), (10, 0, 0));
    // Delivered again (or the order was already PAID): nothing changes.
    assert_eq!(deliver(&w, &event, 2).await, ("already_settled", false));
    assert_eq!(units(store, "A"), (10, 0, 0), "released once");
    let (response, reports) = w.handle_records(&[sqs("x", "nope", 1)]).await.unwrap();
    assert_eq!(
        (
            reports[0].outcome.label(),
            response.batch_item_failures.len()
        ),
        ("invalid", 1),
        "an unreadable dead letter stays in the DLQ"
    );
}

/// Protects: with no provider configured the stage simulates, and says so on every line of its
/// invocations (`mode`) and on the payment record (`provider: "simulated"`); with a provider URL it
/// needs the secret's ARN and names it in the error when missing.
#[tokio::test]
async fn simulated_payments_say_so_on_every_line_and_on_the_record() {
    use aws_lambda_events::event::sqs::SqsEvent;
    use order_pipeline::ports::payment::PaymentGateway;
    use order_pipeline::registry::{Function, PaymentFn};
    use order_pipeline::runtime::config::Env;

    let captured = Captured::default();
    order_pipeline::runtime::telemetry::capture_logs_into(&captured);
    let vars = std::collections::HashMap::from([
        ("TABLE_NAME", "Orders"),
        ("INVENTORY_TABLE_NAME", "Inventory"),
        ("SIMULATED_UNAVAILABLE_PERCENT", "0"),
    ]);
    let env = Env(move |k: &str| vars.get(k).map(|v| v.to_string()));
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let lambda = <PaymentFn as Function>::build(&env, &sdk, Arc::new(Captured::default()))
        .expect("builds without a provider");
    assert_eq!(lambda.mode(), Some("simulated payments"));
    assert_eq!(lambda.handler().gateway().provider(), "simulated");

    // The same mode on a worker with the in-memory store: every line of the invocation has it.
    let (w, _) = payments(vec![], 3);
    let w = w.with_mode("simulated payments");
    let (item, event) = reserved("S1", "U1");
    w.handler().store().stored(&item);
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-1".into();
    let mut batch = SqsEvent::default();
    batch.records = vec![sqs("m1", &serde_json::to_string(&event).unwrap(), 1)];
    w.handle(lambda_runtime::LambdaEvent::new(batch, context))
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = captured
        .json()
        .into_iter()
        .filter(|l| l["function_request_id"] == "req-1")
        .collect();
    assert!(!lines.is_empty(), "the invocation logged");
    for line in &lines {
        assert_eq!(line["mode"], "simulated payments", "{line}");
    }

    let vars = std::collections::HashMap::from([
        ("TABLE_NAME", "Orders"),
        ("INVENTORY_TABLE_NAME", "Inventory"),
        ("PAYMENT_PROVIDER_URL", "https://pay.example.com"),
    ]);
    let env = Env(move |k: &str| vars.get(k).map(|v| v.to_string()));
    let err = <PaymentFn as Function>::build(&env, &sdk, Arc::new(Captured::default()))
        .err()
        .expect("a provider without its secret is refused");
    assert!(err.to_string().contains("PAYMENT_SECRET_ARN"), "{err}");
}

/// Protects (review of issue 31): a charge approved for an order that moved on meanwhile is
/// accounted for when a cancel made the order CANCELLING (the refund stage finds and refunds it);
/// an order that moved on anywhere else without it is reported as an orphaned charge (an ERROR
/// and `PaymentsOrphaned`), never a silent duplicate.
#[tokio::test]
async fn row_an_approved_charge_for_an_order_that_moved_on_is_never_silent() {
    for (moved_to, label) in [
        (OrderStatus::Cancelling, "duplicate"),
        (OrderStatus::Cancelled, "charge_for_an_order_moved_on"),
    ] {
        let (w, _) = payments(
            vec![Charge::Approved {
                payment_id: "pay-9".into(),
            }],
            3,
        );
        let (item, event) = reserved("P9", "U1");
        let store = w.handler().store();
        store.stored(&item);
        *w.handler().gateway().delay.lock().unwrap() = Some(Duration::from_millis(50));
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            store.order("P9", moved_to, 3);
        };
        let (outcome, ()) = tokio::join!(deliver(&w, &event, 1), cancel);
        assert_eq!(outcome, (label, false), "{moved_to:?}");
        assert_eq!(
            units(store, "A"),
            (8, 2, 0),
            "{moved_to:?}: nothing settled"
        );
    }
}
