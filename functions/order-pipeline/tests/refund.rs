//! The refund stage, one test per row (issue 31, cancel and refund): a cancelled order's money
//! and stock settled from the stored order, against in-memory ports and a provider that answers
//! from a script and keeps a ledger; and the refund DLQ handler's last attempt. The same stages
//! run on moto in local/tests/lifecycle.rs.

mod common;

use std::sync::{Arc, Mutex};

use common::{config, deliver, reserved, BACKOFF};
use order_domain::{
    Cancellation, EventType, InventoryItem, LifecycleEvent, OrderItem, OrderStatus, Payment,
    PaymentResult, RefundResult,
};
use order_pipeline::adapters::memory::inventory::MemoryInventory;
use order_pipeline::adapters::memory::queue::MemoryVisibility;
use order_pipeline::ports::payment::{
    Charge, ChargeRequest, Lookup, PaymentGateway, Refund, RefundLookup, RefundRequest,
};
use order_pipeline::runtime::stage::EventStage;
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::refund::RefundStage;
use order_pipeline::stages::refund_dlq::RefundDlqStage;

/// A provider whose charge lookups, refunds and refund lookups answer from scripts (in order;
/// then: no charge, refunded, no refund), recording every refund asked for.
#[derive(Default)]
struct Ledger {
    lookups: Mutex<Vec<Lookup>>,
    refunds: Mutex<Vec<Refund>>,
    refund_lookups: Mutex<Vec<RefundLookup>>,
    asked: Mutex<Vec<RefundRequest>>,
    charges_looked_up: Mutex<u32>,
}

impl Ledger {
    fn new(lookups: Vec<Lookup>, refunds: Vec<Refund>) -> Self {
        Self {
            lookups: Mutex::new(lookups.into_iter().rev().collect()),
            refunds: Mutex::new(refunds.into_iter().rev().collect()),
            ..Default::default()
        }
    }

    fn asked(&self) -> Vec<RefundRequest> {
        self.asked.lock().unwrap().clone()
    }
}

impl PaymentGateway for Ledger {
    fn provider(&self) -> &'static str {
        "ledger"
    }

    async fn charge(&self, _request: &ChargeRequest) -> Charge {
        panic!("the refund stage never charges")
    }

    async fn lookup(&self, _request: &ChargeRequest) -> Lookup {
        *self.charges_looked_up.lock().unwrap() += 1;
        self.lookups
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(Lookup::NoCharge {
                reason: "404".into(),
            })
    }

    async fn refund(&self, request: &RefundRequest) -> Refund {
        self.asked.lock().unwrap().push(request.clone());
        self.refunds
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(Refund::Refunded {
                refund_id: "re-default".into(),
            })
    }

    async fn lookup_refund(&self, _request: &RefundRequest) -> RefundLookup {
        self.refund_lookups
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(RefundLookup::NoRefund {
                reason: "404".into(),
            })
    }
}

type Refunds = SqsWorker<EventStage<RefundStage<MemoryInventory, Ledger>>>;

const MAX_ATTEMPTS: u32 = 3;

fn stock(reserved: bool) -> MemoryInventory {
    // The order's 2 x A and 1 x B, reserved or sold (initial stock 10 and 5).
    let item = |sku: &str, available: u64, held: u64| InventoryItem {
        sku: sku.into(),
        available,
        reserved: if reserved { held } else { 0 },
        sold: if reserved { 0 } else { held },
        name: None,
        unit_price: None,
        currency: Some("USD".into()),
        version: 1,
    };
    MemoryInventory::with(vec![item("A", 8, 2), item("B", 4, 1)])
}

fn refunds(ledger: Ledger, reserved: bool) -> Refunds {
    SqsWorker::new(
        EventStage(RefundStage::new(
            stock(reserved),
            ledger,
            BACKOFF,
            MAX_ATTEMPTS,
        )),
        config("refund"),
        Arc::new(Captured::default()),
        Some(Arc::new(MemoryVisibility::default())),
    )
    .unwrap()
}

/// Order `id` (25 USD) cancelled from `from` (CANCELLING at version 4), stored in `store`, and
/// its CancelRequested event. A paid one carries its approved payment `pay-<id>`.
fn cancelled(store: &MemoryInventory, id: &str, from: OrderStatus) -> (OrderItem, LifecycleEvent) {
    let (mut before, _) = reserved(id, "U1");
    before.version = 3;
    before.status = from;
    if from != OrderStatus::Reserved {
        before.payment_attempts = Some(1);
        before.payment = Some(Payment {
            result: PaymentResult::Approved,
            provider: Some("ledger".into()),
            payment_id: Some(format!("pay-{id}")),
            amount: "25".into(),
            currency: Some("USD".into()),
            attempts: Some(1),
            reason: None,
        });
    }
    let mut item = before.clone();
    item.status = OrderStatus::Cancelling;
    item.version = 4;
    item.cancel_requested_at = Some("2026-01-01T00:00:09Z".into());
    item.cancellation = Some(Cancellation {
        requested_at: "2026-01-01T00:00:09Z".into(),
        by: "customer".into(),
        from,
    });
    store.stored(&item);
    let event = LifecycleEvent::from_change(Some(&before), &item, "now").unwrap();
    assert_eq!(event.event_type, EventType::CancelRequested);
    (item, event)
}

/// The stored order as the stage's writes left it.
fn stored_item(store: &MemoryInventory, id: &str) -> OrderItem {
    store
        .items
        .lock()
        .unwrap()
        .get(id)
        .cloned()
        .expect("stored")
}

fn units(store: &MemoryInventory, sku: &str) -> (u64, u64, u64) {
    let i = store.item(sku).unwrap();
    (i.available, i.reserved, i.sold)
}

fn status(store: &MemoryInventory, id: &str) -> (OrderStatus, u64) {
    let (s, v, _) = store.status(id).unwrap();
    (s, v)
}

#[tokio::test]
async fn row_a_paid_order_is_refunded_in_full_under_its_refund_key_and_its_units_go_back() {
    let w = refunds(Ledger::new(vec![], vec![]), false);
    let (_, event) = cancelled(w.handler().store(), "R1", OrderStatus::Completed);
    assert_eq!(deliver(&w, &event, 1).await, ("refunded", false));
    let store = w.handler().store();
    assert_eq!(units(store, "A"), (10, 0, 0), "A: sold -> available");
    assert_eq!(units(store, "B"), (5, 0, 0));
    assert_eq!(status(store, "R1"), (OrderStatus::Refunded, 5));
    let refund = stored_item(store, "R1").refund.unwrap();
    assert_eq!(refund.result, RefundResult::Refunded);
    assert_eq!(refund.refund_id.as_deref(), Some("re-default"));
    assert_eq!(refund.payment_id.as_deref(), Some("pay-R1"));
    assert_eq!(
        (refund.amount.as_str(), refund.currency.as_str()),
        ("25", "USD")
    );
    let asked = w.handler().gateway().asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].idempotency_key, "R1:refund");
    assert_eq!(asked[0].charge.idempotency_key, "R1:payment");
    assert_eq!(
        (asked[0].amount.as_str(), asked[0].currency.as_str()),
        ("25", "USD")
    );
}

#[tokio::test]
async fn row_a_reserved_order_no_payment_attempt_reached_is_cancelled_and_its_stock_released() {
    let w = refunds(Ledger::new(vec![], vec![]), true);
    let (_, event) = cancelled(w.handler().store(), "R2", OrderStatus::Reserved);
    assert_eq!(deliver(&w, &event, 1).await, ("cancelled", false));
    let store = w.handler().store();
    assert_eq!(units(store, "A"), (10, 0, 0), "A: reserved -> available");
    assert_eq!(status(store, "R2"), (OrderStatus::Cancelled, 5));
    assert!(w.handler().gateway().asked().is_empty(), "no refund asked");
    assert_eq!(*w.handler().gateway().charges_looked_up.lock().unwrap(), 0);
}

/// Protects: a payment attempt counted before the cancel may still charge; nothing is decided
/// while it holds the order, then the charge it made is found and refunded.
#[tokio::test]
async fn row_a_payment_attempt_in_flight_is_waited_for_then_its_charge_refunded() {
    let ledger = Ledger::new(
        vec![Lookup::Charged {
            payment_id: "pay-late".into(),
        }],
        vec![],
    );
    let w = refunds(ledger, true);
    let store = w.handler().store();
    let (mut item, event) = cancelled(store, "R3", OrderStatus::Reserved);
    item.payment_attempts = Some(1);
    let held_until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 30_000;
    item.payment_claim_until = Some(held_until);
    store.stored(&item);
    assert_eq!(
        deliver(&w, &event, 1).await,
        ("held_by_a_payment_attempt", true)
    );
    assert_eq!(status(store, "R3"), (OrderStatus::Cancelling, 4));
    assert_eq!(*w.handler().gateway().charges_looked_up.lock().unwrap(), 0);

    item.payment_claim_until = Some(held_until - 60_000);
    store.stored(&item);
    assert_eq!(deliver(&w, &event, 2).await, ("refunded", false));
    assert_eq!(status(store, "R3"), (OrderStatus::Refunded, 5));
    assert_eq!(units(store, "A"), (10, 0, 0), "A: reserved -> available");
    assert_eq!(
        stored_item(store, "R3")
            .refund
            .unwrap()
            .payment_id
            .as_deref(),
        Some("pay-late")
    );
}

#[tokio::test]
async fn row_no_charge_after_an_attempt_is_cancelled_and_an_unknown_lookup_decides_nothing() {
    let ledger = Ledger::new(
        vec![
            Lookup::Unknown {
                reason: "timeout".into(),
            },
            Lookup::NoCharge {
                reason: "404".into(),
            },
        ],
        vec![],
    );
    let w = refunds(ledger, true);
    let store = w.handler().store();
    let (mut item, event) = cancelled(store, "R4", OrderStatus::Reserved);
    item.payment_attempts = Some(2);
    store.stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("provider_unanswered", true));
    assert_eq!(status(store, "R4"), (OrderStatus::Cancelling, 4));
    assert_eq!(
        units(store, "A"),
        (8, 2, 0),
        "nothing released while a charge may stand"
    );
    assert_eq!(deliver(&w, &event, 2).await, ("cancelled", false));
    assert_eq!(status(store, "R4"), (OrderStatus::Cancelled, 5));
    assert_eq!(units(store, "A"), (10, 0, 0));
    assert!(w.handler().gateway().asked().is_empty());
}

#[tokio::test]
async fn row_a_refused_refund_is_refund_failed_with_the_reason_and_the_units_stay_sold() {
    let ledger = Ledger::new(
        vec![],
        vec![Refund::Refused {
            reason: "charge disputed".into(),
        }],
    );
    let w = refunds(ledger, false);
    let (_, event) = cancelled(w.handler().store(), "R5", OrderStatus::Paid);
    assert_eq!(deliver(&w, &event, 1).await, ("refund_refused", false));
    let store = w.handler().store();
    assert_eq!(status(store, "R5"), (OrderStatus::RefundFailed, 5));
    assert_eq!(units(store, "A"), (8, 0, 2), "still sold");
    let refund = stored_item(store, "R5").refund.unwrap();
    assert_eq!(refund.result, RefundResult::Refused);
    assert_eq!(refund.reason.as_deref(), Some("charge disputed"));
}

/// Protects: an unanswered refund is asked again under the same key after a growing backoff;
/// past the allowed attempts no new call goes out, and the provider's ledger decides.
#[tokio::test]
async fn row_unanswered_refunds_retry_with_the_same_key_then_the_ledger_decides() {
    let ledger = Ledger::new(
        vec![],
        vec![
            Refund::Unknown {
                reason: "503".into(),
            },
            Refund::NotSent {
                reason: "429".into(),
            },
            Refund::Unknown {
                reason: "timeout".into(),
            },
        ],
    );
    ledger
        .refund_lookups
        .lock()
        .unwrap()
        .push(RefundLookup::Refunded {
            refund_id: "re-found".into(),
        });
    let w = refunds(ledger, false);
    let (_, event) = cancelled(w.handler().store(), "R6", OrderStatus::Completed);
    for receive in 1..=MAX_ATTEMPTS {
        assert_eq!(
            deliver(&w, &event, receive).await,
            ("provider_unanswered", true)
        );
    }
    let keys: Vec<_> = w
        .handler()
        .gateway()
        .asked()
        .into_iter()
        .map(|r| (r.idempotency_key, r.attempt))
        .collect();
    assert_eq!(
        keys,
        [
            ("R6:refund".into(), 1),
            ("R6:refund".into(), 2),
            ("R6:refund".into(), 3)
        ]
    );
    assert_eq!(
        deliver(&w, &event, MAX_ATTEMPTS + 1).await,
        ("refunded", false)
    );
    assert_eq!(w.handler().gateway().asked().len(), 3, "no new call");
    let store = w.handler().store();
    assert_eq!(status(store, "R6"), (OrderStatus::Refunded, 5));
    assert_eq!(units(store, "A"), (10, 0, 0));
}

#[tokio::test]
async fn row_an_order_no_longer_cancelling_at_the_events_version_is_a_duplicate() {
    let w = refunds(Ledger::new(vec![], vec![]), false);
    let store = w.handler().store();
    let (_, event) = cancelled(store, "R7", OrderStatus::Paid);
    assert_eq!(deliver(&w, &event, 1).await, ("refunded", false));
    assert_eq!(deliver(&w, &event, 2).await, ("duplicate", false));
    assert_eq!(w.handler().gateway().asked().len(), 1, "refunded once");
    assert_eq!(units(store, "A"), (10, 0, 0), "restocked once");
}

/// Protects: the refund DLQ's last attempt settles what it can; what it cannot decide stays in
/// the DLQ (the order CANCELLING, nothing released), and a settled order is left alone.
#[tokio::test]
async fn refund_dlq_makes_the_last_attempt_and_leaves_an_undecided_letter() {
    let ledger = Ledger::new(
        vec![Lookup::Unknown {
            reason: "timeout".into(),
        }],
        vec![],
    );
    let w = SqsWorker::new(
        EventStage(RefundDlqStage::new(RefundStage::new(
            stock(true),
            ledger,
            BACKOFF,
            MAX_ATTEMPTS,
        ))),
        config("refund-dlq"),
        Arc::new(Captured::default()),
        Some(Arc::new(MemoryVisibility::default())),
    )
    .unwrap();
    let store = w.handler().stage().store();
    let (mut item, event) = cancelled(store, "D1", OrderStatus::Reserved);
    item.payment_attempts = Some(1);
    store.stored(&item);
    assert_eq!(deliver(&w, &event, 1).await, ("refund_unresolved", true));
    assert_eq!(status(store, "D1"), (OrderStatus::Cancelling, 4));
    assert_eq!(units(store, "A"), (8, 2, 0));
    assert_eq!(deliver(&w, &event, 2).await, ("cancelled", false));
    assert_eq!(status(store, "D1"), (OrderStatus::Cancelled, 5));
    assert_eq!(deliver(&w, &event, 3).await, ("already_settled", false));
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Protects (review of issue 31): "no charge" is final only the longest payment backoff after
/// the last payment attempt ended (a charge it sent may still land at the provider); before that
/// nothing is released, then the order is CANCELLED.
#[tokio::test]
async fn row_no_charge_right_after_the_last_payment_attempt_is_not_final_yet() {
    let ledger = Ledger::new(
        vec![
            Lookup::NoCharge {
                reason: "404".into(),
            },
            Lookup::NoCharge {
                reason: "404".into(),
            },
        ],
        vec![],
    );
    let w = refunds(ledger, true);
    let store = w.handler().store();
    let (mut item, event) = cancelled(store, "Q1", OrderStatus::Reserved);
    item.payment_attempts = Some(1);
    // The attempt ended (its claim released) a second ago.
    item.payment_claim_until = Some(now_ms() - 1_000);
    store.stored(&item);
    assert_eq!(
        deliver(&w, &event, 1).await,
        ("held_by_a_payment_attempt", true)
    );
    assert_eq!(status(store, "Q1"), (OrderStatus::Cancelling, 4));
    assert_eq!(units(store, "A"), (8, 2, 0), "nothing released yet");
    item.payment_claim_until = Some(now_ms() - BACKOFF.max.as_millis() as u64 - 1_000);
    store.stored(&item);
    assert_eq!(deliver(&w, &event, 2).await, ("cancelled", false));
    assert_eq!(units(store, "A"), (10, 0, 0));
}

/// Protects (review of issue 31): refund calls are counted on the order, not by receives, so
/// receives spent waiting for a payment attempt or on unanswered lookups never use up calls: the
/// first refund goes out even on a late receive.
#[tokio::test]
async fn row_receives_spent_waiting_do_not_use_up_refund_calls() {
    let ledger = Ledger::new(
        vec![Lookup::Charged {
            payment_id: "pay-late".into(),
        }],
        vec![],
    );
    let w = refunds(ledger, true);
    let store = w.handler().store();
    let (mut item, event) = cancelled(store, "Q2", OrderStatus::Reserved);
    item.payment_attempts = Some(1);
    item.payment_claim_until = Some(now_ms() - 1_000);
    store.stored(&item);
    assert_eq!(
        deliver(&w, &event, MAX_ATTEMPTS + 3).await,
        ("refunded", false)
    );
    let asked = w.handler().gateway().asked();
    assert_eq!(asked.len(), 1, "a refund call, not a lookup of one");
    assert_eq!(asked[0].attempt, 1);
}
