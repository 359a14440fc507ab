//! The order lifecycle: which status changes exist, the step timestamp each one sets, and the
//! one event each committed change becomes.
//!
//! [`TRANSITIONS`] is the only list of allowed changes. Every writer asks it for its change
//! ([`transition`]) and writes it as one conditional update (`status = from AND version = read`,
//! `version + 1`, the step's timestamp); order-events maps a committed change back to its event
//! with the same table. A change not in the table cannot be written, and a change whose
//! condition fails (the order moved on) is a duplicate event, not an error.

use serde::{Deserialize, Serialize};

use crate::item::OrderStatus;

/// The lifecycle events on the order-events topic (the `eventType` message attribute).
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    OrderAccepted,
    OrderFailed,
    InventoryReserved,
    OrderRejected,
    PaymentSucceeded,
    PaymentFailed,
    OrderCompleted,
    CancelRequested,
    OrderCancelled,
    OrderRefunded,
    RefundFailed,
}

impl EventType {
    /// Every event type, in the order of the enum (functions/registry.json lists them for the
    /// stack's subscription filters).
    pub const ALL: [EventType; 11] = [
        EventType::OrderAccepted,
        EventType::OrderFailed,
        EventType::InventoryReserved,
        EventType::OrderRejected,
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::OrderCompleted,
        EventType::CancelRequested,
        EventType::OrderCancelled,
        EventType::OrderRefunded,
        EventType::RefundFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderAccepted => "OrderAccepted",
            EventType::OrderFailed => "OrderFailed",
            EventType::InventoryReserved => "InventoryReserved",
            EventType::OrderRejected => "OrderRejected",
            EventType::PaymentSucceeded => "PaymentSucceeded",
            EventType::PaymentFailed => "PaymentFailed",
            EventType::OrderCompleted => "OrderCompleted",
            EventType::CancelRequested => "CancelRequested",
            EventType::OrderCancelled => "OrderCancelled",
            EventType::OrderRefunded => "OrderRefunded",
            EventType::RefundFailed => "RefundFailed",
        }
    }
}

/// One allowed status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// `None`: the order's item is created with `to`.
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    /// The item attribute that records when the change happened.
    pub step: &'static str,
    pub event: EventType,
    /// A change a caller asks for (a cancel), not one the pipeline makes on its own: it does
    /// not make the status it leaves unfinished (a COMPLETED order is done, though it may still
    /// be cancelled and refunded).
    pub asked: bool,
}

const fn t(
    from: Option<OrderStatus>,
    to: OrderStatus,
    step: &'static str,
    event: EventType,
) -> Transition {
    Transition {
        from,
        to,
        step,
        event,
        asked: false,
    }
}

/// A change a caller asks for: the cancel (`POST /orders/{orderId}/cancel`).
const fn asked(
    from: OrderStatus,
    to: OrderStatus,
    step: &'static str,
    event: EventType,
) -> Transition {
    Transition {
        from: Some(from),
        to,
        step,
        event,
        asked: true,
    }
}

use EventType as E;
use OrderStatus as S;

/// Every allowed change of an order's status.
pub const TRANSITIONS: [Transition; 15] = [
    t(None, S::Accepted, "acceptedAt", E::OrderAccepted),
    t(None, S::Failed, "failedAt", E::OrderFailed),
    t(Some(S::Failed), S::Accepted, "acceptedAt", E::OrderAccepted),
    t(
        Some(S::Accepted),
        S::Reserved,
        "reservedAt",
        E::InventoryReserved,
    ),
    t(
        Some(S::Accepted),
        S::Rejected,
        "rejectedAt",
        E::OrderRejected,
    ),
    t(Some(S::Reserved), S::Paid, "paidAt", E::PaymentSucceeded),
    t(
        Some(S::Reserved),
        S::PaymentFailed,
        "paymentFailedAt",
        E::PaymentFailed,
    ),
    t(
        Some(S::Paid),
        S::Completed,
        "completedAt",
        E::OrderCompleted,
    ),
    // The cancel: an order not reserved yet holds neither stock nor money, and is CANCELLED at
    // once; any later order is CANCELLING, and the refund stage settles its stock and money.
    asked(S::Accepted, S::Cancelled, "cancelledAt", E::OrderCancelled),
    asked(
        S::Reserved,
        S::Cancelling,
        "cancelRequestedAt",
        E::CancelRequested,
    ),
    asked(
        S::Paid,
        S::Cancelling,
        "cancelRequestedAt",
        E::CancelRequested,
    ),
    asked(
        S::Completed,
        S::Cancelling,
        "cancelRequestedAt",
        E::CancelRequested,
    ),
    // The refund stage: no charge stands (stock released), the charge refunded (units back to
    // available), or the provider refused the refund.
    t(
        Some(S::Cancelling),
        S::Cancelled,
        "cancelledAt",
        E::OrderCancelled,
    ),
    t(
        Some(S::Cancelling),
        S::Refunded,
        "refundedAt",
        E::OrderRefunded,
    ),
    t(
        Some(S::Cancelling),
        S::RefundFailed,
        "refundFailedAt",
        E::RefundFailed,
    ),
];

/// The change from `from` (None: a new item) to `to`, if the lifecycle allows it.
pub fn transition(from: Option<OrderStatus>, to: OrderStatus) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.from == from && t.to == to)
}

/// Whether the pipeline is done with `status`: no change of its own leaves it (a cancel a
/// caller asks for may still leave COMPLETED).
pub fn is_terminal(status: OrderStatus) -> bool {
    !TRANSITIONS
        .iter()
        .any(|t| t.from == Some(status) && !t.asked)
}

/// The change a cancel asked of an order at `status` makes, if it may be cancelled: `None` for
/// an order that ended otherwise (REJECTED, PAYMENT_FAILED, FAILED) or is cancelled already.
pub fn cancel_from(status: OrderStatus) -> Option<&'static Transition> {
    TRANSITIONS
        .iter()
        .find(|t| t.asked && t.from == Some(status))
}

/// The event a committed change from `old` (None: created) to `new` becomes; `None` when the
/// status did not change (an update of other fields) or the change is not a lifecycle one.
pub fn event_for(old: Option<OrderStatus>, new: OrderStatus) -> Option<EventType> {
    if old == Some(new) {
        return None;
    }
    transition(old, new).map(|t| t.event)
}

/// The status and version of a stored order, as a conditional update sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub status: OrderStatus,
    pub version: u64,
}

/// A conditional transition request: "move from `from` at `expected_version` to `to`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub from: OrderStatus,
    pub expected_version: u64,
    pub to: OrderStatus,
}

/// What a conditional update does to `stored`: the new state, or `None` when its condition
/// fails or the lifecycle has no such change (nothing is written). The stores' conditions say
/// exactly this: `status = :from AND version = :v` on a change [`transition`] allows.
pub fn apply(stored: Stored, request: Request) -> Option<Stored> {
    transition(Some(request.from), request.to)?;
    (stored.status == request.from && stored.version == request.expected_version).then_some(
        Stored {
            status: request.to,
            version: stored.version + 1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: the description of a conditional update that the in-memory stores use and the
    /// DynamoDB conditions are checked against (local/tests/lifecycle.rs): it applies exactly
    /// when the status and the version both match, and bumps the version by one.
    #[test]
    fn a_conditional_update_applies_only_at_its_status_and_version() {
        use OrderStatus as S;
        let at = |status, version| Stored { status, version };
        let request = |from, expected_version, to| Request {
            from,
            expected_version,
            to,
        };
        let cases = [
            (
                at(S::Accepted, 1),
                request(S::Accepted, 1, S::Reserved),
                Some(at(S::Reserved, 2)),
            ),
            (
                at(S::Accepted, 1),
                request(S::Accepted, 2, S::Reserved),
                None,
            ),
            (
                at(S::Accepted, 2),
                request(S::Accepted, 1, S::Reserved),
                None,
            ),
            (
                at(S::Reserved, 2),
                request(S::Accepted, 2, S::Reserved),
                None,
            ),
            (
                at(S::Reserved, 2),
                request(S::Reserved, 2, S::Paid),
                Some(at(S::Paid, 3)),
            ),
            (
                at(S::Paid, 3),
                request(S::Paid, 3, S::Completed),
                Some(at(S::Completed, 4)),
            ),
            (at(S::Completed, 4), request(S::Paid, 3, S::Completed), None),
            // No such change in the lifecycle, even at the right status and version.
            (
                at(S::Accepted, 1),
                request(S::Accepted, 1, S::Completed),
                None,
            ),
        ];
        for (stored, req, expected) in cases {
            assert_eq!(apply(stored, req), expected, "{stored:?} {req:?}");
        }
    }

    /// Protects: EventType::ALL names every event type once (the stack's filters and
    /// functions/registry.json are checked against it); a new variant fails the match below
    /// until it is listed.
    #[test]
    fn every_event_type_is_in_all_once() {
        for (i, t) in EventType::ALL.iter().enumerate() {
            let index = match t {
                EventType::OrderAccepted => 0,
                EventType::OrderFailed => 1,
                EventType::InventoryReserved => 2,
                EventType::OrderRejected => 3,
                EventType::PaymentSucceeded => 4,
                EventType::PaymentFailed => 5,
                EventType::OrderCompleted => 6,
                EventType::CancelRequested => 7,
                EventType::OrderCancelled => 8,
                EventType::OrderRefunded => 9,
                EventType::RefundFailed => 10,
            };
            assert_eq!(index, i, "{t:?}");
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::from(t.as_str())
            );
        }
    }

    #[test]
    fn the_terminal_statuses_are_rejected_payment_failed_completed_and_the_cancels_ends() {
        let terminal: Vec<_> = OrderStatus::ALL
            .into_iter()
            .filter(|s| is_terminal(*s))
            .collect();
        assert_eq!(
            terminal,
            [
                S::Rejected,
                S::PaymentFailed,
                S::Completed,
                S::Cancelled,
                S::Refunded,
                S::RefundFailed
            ],
            "FAILED leaves by redrive, ACCEPTED/RESERVED/PAID/CANCELLING move on; a cancel may \
             still leave COMPLETED"
        );
    }

    /// Protects (issue 31): which orders a cancel may leave, and to what: an order not reserved
    /// yet is CANCELLED at once; a reserved, paid or completed one is CANCELLING (the refund
    /// stage settles its stock and money); an order that ended otherwise, or is cancelled
    /// already, cannot be cancelled.
    #[test]
    fn a_cancel_leaves_accepted_reserved_paid_and_completed_only() {
        let to = |s| cancel_from(s).map(|t| t.to);
        assert_eq!(to(S::Accepted), Some(S::Cancelled));
        for s in [S::Reserved, S::Paid, S::Completed] {
            assert_eq!(to(s), Some(S::Cancelling), "{s:?}");
        }
        for s in [
            S::Failed,
            S::Rejected,
            S::PaymentFailed,
            S::Cancelling,
            S::Cancelled,
            S::Refunded,
            S::RefundFailed,
        ] {
            assert_eq!(to(s), None, "{s:?}");
        }
    }

    #[test]
    fn each_change_has_one_event_and_no_change_has_none() {
        assert_eq!(event_for(None, S::Accepted), Some(E::OrderAccepted));
        assert_eq!(
            event_for(Some(S::Failed), S::Accepted),
            Some(E::OrderAccepted)
        );
        assert_eq!(
            event_for(Some(S::Accepted), S::Reserved),
            Some(E::InventoryReserved)
        );
        assert_eq!(event_for(Some(S::Reserved), S::Reserved), None);
        assert_eq!(
            event_for(Some(S::Accepted), S::Paid),
            None,
            "not a lifecycle change"
        );
    }
}

/// One lifecycle event: the body of an order-events message.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEvent {
    pub event_type: EventType,
    /// `orderId:version`: a consumer tells a redelivery from a new event by it.
    pub event_id: String,
    pub order_id: String,
    /// The order's version after the change.
    pub version: u64,
    pub status: OrderStatus,
    /// Absent when the change created the order's item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<OrderStatus>,
    /// When the change happened (its step timestamp).
    pub occurred_at: String,
    pub correlation_id: String,
    pub order: EventOrder,
}

/// The order as an event carries it.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventOrder {
    pub customer_id: String,
    pub items: Vec<crate::item::StoredLine>,
    pub item_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Vec<crate::item::ReservedLine>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<crate::item::Rejection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<crate::item::Payment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<crate::item::Cancellation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<crate::item::Refund>,
}

impl LifecycleEvent {
    /// The event a committed change of an order's item becomes: `old` is the item before (None
    /// when the change created it). `None` when the status did not change.
    pub fn from_change(
        old: Option<&crate::item::OrderItem>,
        new: &crate::item::OrderItem,
        now: &str,
    ) -> Option<Self> {
        let previous = old.map(|o| o.status);
        let event_type = event_for(previous, new.status)?;
        let occurred_at = new.status_reached_at().unwrap_or(now).to_string();
        Some(LifecycleEvent {
            event_type,
            event_id: format!("{}:{}", new.order_id, new.version),
            order_id: new.order_id.clone(),
            version: new.version,
            status: new.status,
            previous_status: previous,
            occurred_at,
            correlation_id: new.correlation_id.clone(),
            order: EventOrder::of(new),
        })
    }
}

impl EventOrder {
    /// The order as an event carries it, from its stored item: what order-events publishes, and
    /// what a stage that must not trust an event's body reads in its place.
    pub fn of(item: &crate::item::OrderItem) -> Self {
        EventOrder {
            customer_id: item.customer_id.clone(),
            items: item.items.clone(),
            item_count: item.item_count,
            currency: item.currency.clone(),
            created_at: item.created_at.clone(),
            amount: item.amount.clone(),
            reservation: item.reservation.clone(),
            // `rejection.error` is for operators: never in an event (nor so in a customer's
            // notification, which carries its event).
            rejection: item
                .rejection
                .clone()
                .map(crate::item::Rejection::without_error),
            payment: item.payment.clone(),
            cancellation: item.cancellation.clone(),
            refund: item.refund.clone(),
        }
    }
}
