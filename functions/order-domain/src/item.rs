//! The Orders table item and the decisions taken against a stored item.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::order::{format_timestamp, price_text, HashLine, HashParts, LineItem, Order};

/// Lifecycle of an order: the consumer writes `ACCEPTED`, dlq-alarm `FAILED`, the inventory
/// worker `RESERVED` or `REJECTED`, the payment worker `PAID` or `PAYMENT_FAILED`, the
/// notification worker `COMPLETED`; a cancel asked of the API `CANCELLED` (an ACCEPTED order) or
/// `CANCELLING`, which the refund stage ends `CANCELLED` (no charge stands), `REFUNDED` or
/// `REFUND_FAILED` (the allowed changes are [`crate::lifecycle::TRANSITIONS`]).
/// A status this build does not know (written by a newer stage) reads as `Later`, so an old
/// consumer still treats the order as stored and past acceptance.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Accepted,
    Failed,
    Reserved,
    Rejected,
    Paid,
    PaymentFailed,
    Completed,
    Cancelling,
    Cancelled,
    Refunded,
    RefundFailed,
    #[serde(other, rename = "LATER")]
    Later,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Reserved => "RESERVED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Paid => "PAID",
            OrderStatus::PaymentFailed => "PAYMENT_FAILED",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelling => "CANCELLING",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::RefundFailed => "REFUND_FAILED",
            OrderStatus::Later => "LATER",
        }
    }

    /// Every status a build knows, for tests and reports.
    pub const ALL: [OrderStatus; 11] = [
        OrderStatus::Accepted,
        OrderStatus::Failed,
        OrderStatus::Reserved,
        OrderStatus::Rejected,
        OrderStatus::Paid,
        OrderStatus::PaymentFailed,
        OrderStatus::Completed,
        OrderStatus::Cancelling,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
        OrderStatus::RefundFailed,
    ];
}

/// One sku's share of a reservation.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub sku: String,
    pub quantity: u32,
}

/// Why the inventory worker rejected an order.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub reason: String,
    /// What kind of rejection, for programs (absent on orders rejected before codes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RejectionCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// `price_changed`: the unit price the order expected...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_price: Option<String>,
    /// ...and the catalogue's, in the order's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_price: Option<String>,
    /// `dead_lettered`: the error of the last reservation attempt, for operators: on the Orders
    /// item only, never in an event, a notification or the API's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Rejection {
    /// The rejection as events, notifications and the API show it: without `error`, which is
    /// for operators (it can name tables, roles and items).
    pub fn without_error(self) -> Self {
        Rejection {
            error: None,
            ..self
        }
    }
}

/// Why an order was rejected, as a code (docs/contract.md, "Reservation").
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// Not enough units available for a sku.
    OutOfStock,
    /// A sku the Inventory does not hold.
    UnknownSku,
    /// The catalogue has no usable price for a sku (none, or finer than the currency's minor unit).
    NoPrice,
    /// The order's unitPrice for a sku is not the catalogue's.
    PriceChanged,
    /// The order's currency is not the sku's, or its skus are priced in different currencies.
    CurrencyMismatch,
    /// More distinct skus than one reservation transaction takes.
    TooManySkus,
    /// A line with neither a sku nor a name.
    NoSku,
    /// The inventory stage could not process the order (its event reached the inventory DLQ)
    /// and the DLQ handler's last attempt failed on the order's own data (an item that does
    /// not map): `error` carries that attempt's error. No stock was reserved.
    DeadLettered,
}

/// How a payment ended.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentResult {
    /// The provider approved the charge: the order is PAID.
    Approved,
    /// The provider declined: PAYMENT_FAILED at once.
    Declined,
    /// The provider stayed unavailable for every attempt: PAYMENT_FAILED.
    AttemptsUsedUp,
    /// The stored order has no amount or no currency (reserved before the catalogue priced
    /// every order in one currency): the provider was not called, nothing was charged,
    /// PAYMENT_FAILED.
    NoPrice,
    /// The payment event could not be processed at all and reached the payment DLQ.
    DeadLettered,
}

/// The payment record on an order (`payment`), written with its PAID or PAYMENT_FAILED change.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub result: PaymentResult,
    /// `simulated` or `http`; absent when no provider was called (a dead letter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's payment id (approved charges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The amount charged or attempted, an exact decimal string.
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Calls made to the provider, this one included (absent for a dead letter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Why it failed: the provider's decline reason or the last unavailability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A cancel asked of the API (`cancellation`), written with the order's change to CANCELLED or
/// CANCELLING.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    /// When it was asked (RFC 3339).
    pub requested_at: String,
    /// Who asked: `customer` (the order's own), `admin` or `service` (an IAM caller).
    pub by: String,
    /// The status the order was cancelled from: where its units and its money are.
    pub from: OrderStatus,
}

/// How a refund ended.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundResult {
    /// The provider refunded the charge: REFUNDED.
    Refunded,
    /// The provider refused the refund, or answered no refund call and holds none: REFUND_FAILED.
    Refused,
}

/// The refund record on an order (`refund`), written with REFUNDED or REFUND_FAILED.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub result: RefundResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's refund id (refunded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The charge refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The amount refunded or asked for, an exact decimal string.
    pub amount: String,
    pub currency: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A customer notification that could not be sent (`notificationFailure`), recorded by
/// notification-dlq after the notification stage's last attempt failed: with `PAID → COMPLETED`
/// for a confirmation, on the terminal order for a rejection or payment-failure notice.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFailure {
    /// The event whose notification failed: `PaymentSucceeded`, `OrderRejected` or
    /// `PaymentFailed`.
    pub event_type: crate::EventType,
    /// The last attempt's error, for operators.
    pub error: String,
    /// When it was recorded (RFC 3339).
    pub failed_at: String,
}

/// Why and when an order was dead-lettered (set by dlq-alarm, cleared by a successful redrive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub reason: String,
    pub dead_lettered_at: String,
    pub receive_count: u32,
}

/// A line as stored: the price is a decimal string so DynamoDB keeps it exact.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
}

/// One item of the `Orders` table (partition key `orderId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub order_id: String,
    pub customer_id: String,
    pub items: Vec<StoredLine>,
    pub item_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub created_at: String,
    /// Whether `created_at` came from the publisher (true) or from the message's SentTimestamp.
    pub created_at_given: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    pub status: OrderStatus,
    pub content_hash: String,
    pub source_message_id: String,
    pub correlation_id: String,
    /// Starts at 1 and grows by one with every change, for optimistic concurrency.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// When each later step happened (`reservedAt`, `rejectedAt`, ...), set by its transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_failed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_failed_at: Option<String>,
    /// What the inventory worker reserved, per sku (lines of one sku merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Vec<ReservedLine>>,
    /// The order's total, an exact decimal string, once the inventory worker priced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// Calls to the payment provider so far, counted before each call (survives crashes; not a
    /// lifecycle change, so `version` does not move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_attempts: Option<u32>,
    /// The payment's result, written with PAID or PAYMENT_FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    /// Until when the last payment attempt holds (held) the order, epoch milliseconds: its lease
    /// while it runs, the moment it ended once it ended. The refund stage trusts "no charge" only
    /// well after it (a charge sent by that attempt may still be in progress at the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_claim_until: Option<u64>,
    /// Calls to the provider's refund so far, counted before each call (as `paymentAttempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_attempts: Option<u32>,
    /// The customer notification that could not be sent (notification-dlq).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_failure: Option<NotificationFailure>,
    /// The cancel asked of the API, written with CANCELLED or CANCELLING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    /// The refund's result, written with REFUNDED or REFUND_FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<Refund>,
}

/// Where a message came from, as far as the item records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub message_id: String,
    pub correlation_id: String,
    /// The message's SentTimestamp: the order's `createdAt` when the payload had none.
    pub sent_at: DateTime<Utc>,
}

impl OrderItem {
    /// When the order reached its current status: that step's timestamp (a FAILED order's: when
    /// it was dead-lettered); `None` for an item another writer left without it.
    pub fn status_reached_at(&self) -> Option<&str> {
        match self.status {
            OrderStatus::Accepted => self.accepted_at.as_deref(),
            OrderStatus::Failed => self.failure.as_ref().map(|f| f.dead_lettered_at.as_str()),
            OrderStatus::Reserved => self.reserved_at.as_deref(),
            OrderStatus::Rejected => self.rejected_at.as_deref(),
            OrderStatus::Paid => self.paid_at.as_deref(),
            OrderStatus::PaymentFailed => self.payment_failed_at.as_deref(),
            OrderStatus::Completed => self.completed_at.as_deref(),
            OrderStatus::Cancelling => self.cancel_requested_at.as_deref(),
            OrderStatus::Cancelled => self.cancelled_at.as_deref(),
            OrderStatus::Refunded => self.refunded_at.as_deref(),
            OrderStatus::RefundFailed => self.refund_failed_at.as_deref(),
            OrderStatus::Later => None,
        }
    }

    /// The item the consumer writes for a new order (the order's and the provenance's texts move
    /// into it).
    pub fn accepted(order: Order, from: Provenance, now: DateTime<Utc>) -> Self {
        Self::build(order, from, OrderStatus::Accepted, Some(now), None)
    }

    /// The item dlq-alarm writes for an order the consumer never stored.
    pub fn failed(order: &Order, from: Provenance, failure: Failure) -> Self {
        Self::build(
            order.clone(),
            from,
            OrderStatus::Failed,
            None,
            Some(failure),
        )
    }

    fn build(
        order: Order,
        from: Provenance,
        status: OrderStatus,
        accepted_at: Option<DateTime<Utc>>,
        failure: Option<Failure>,
    ) -> Self {
        let item_count = order.item_count();
        let Order {
            order_id,
            customer_id,
            items: lines,
            currency,
            created_at: given,
        } = order;
        let items: Vec<StoredLine> = lines
            .into_iter()
            .map(|l| StoredLine {
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
                unit_price: l.unit_price.map(price_text),
            })
            .collect();
        let created_at = format_timestamp(given.unwrap_or(from.sent_at));
        // The hash reads the texts just written for the item: each written once.
        let content_hash = HashParts {
            order_id: &order_id,
            customer_id: &customer_id,
            line_count: items.len(),
            line: |i: usize| {
                let l = &items[i];
                HashLine {
                    sku: l.sku.as_deref(),
                    name: l.name.as_deref(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.as_deref(),
                }
            },
            currency: currency.as_deref(),
            created_at: given.is_some().then_some(created_at.as_str()),
        }
        .content_hash();
        OrderItem {
            order_id,
            customer_id,
            items,
            item_count,
            currency,
            created_at,
            created_at_given: given.is_some(),
            accepted_at: accepted_at.map(format_timestamp),
            status,
            content_hash,
            source_message_id: from.message_id,
            correlation_id: from.correlation_id,
            version: 1,
            failure,
            reserved_at: None,
            rejected_at: None,
            paid_at: None,
            payment_failed_at: None,
            completed_at: None,
            cancel_requested_at: None,
            cancelled_at: None,
            refunded_at: None,
            refund_failed_at: None,
            reservation: None,
            amount: None,
            rejection: None,
            payment_attempts: None,
            payment: None,
            payment_claim_until: None,
            refund_attempts: None,
            notification_failure: None,
            cancellation: None,
            refund: None,
        }
    }

    /// The canonical order this item stores. `None` only if the stored item was altered by hand
    /// into something that is not an order (a price or timestamp that does not parse).
    pub fn to_order(&self) -> Option<Order> {
        let items = self
            .items
            .iter()
            .map(|l| {
                Some(LineItem {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: match &l.unit_price {
                        Some(p) => Some(p.parse::<Decimal>().ok()?),
                        None => None,
                    },
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let created_at = if self.created_at_given {
            Some(
                DateTime::parse_from_rfc3339(&self.created_at)
                    .ok()?
                    .with_timezone(&Utc),
            )
        } else {
            None
        };
        Some(Order {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            items,
            currency: self.currency.clone(),
            created_at,
        })
    }
}

/// What the stores tell about an item that already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub content_hash: String,
    pub status: OrderStatus,
    pub version: u64,
}

/// The content hash an item without one is read with: it matches no order's hash, so the item
/// is a conflict for every message that names its id, and is never overwritten.
pub const FOREIGN_CONTENT_HASH: &str = "(stored by another system)";

impl Existing {
    /// An item under an order's id that this pipeline did not write (no `contentHash`, `status`
    /// or `version`): another system's, or one edited by hand.
    pub fn foreign() -> Self {
        Existing {
            content_hash: FOREIGN_CONTENT_HASH.to_string(),
            status: OrderStatus::Later,
            version: 0,
        }
    }

    pub fn is_foreign(&self) -> bool {
        self.content_hash == FOREIGN_CONTENT_HASH
    }
}

/// What order-consumer does with a valid order, given what is stored under its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerDecision {
    /// Nothing stored: write the item (conditionally on it still not existing).
    Create,
    /// The same order is stored and past FAILED: nothing to write.
    Duplicate,
    /// The same order is stored as FAILED (dlq-alarm marked it) and was redriven: accept it again,
    /// conditionally on the stored version.
    Reaccept { expected_version: u64 },
    /// A different order uses this id: never overwrite it; the record fails.
    Conflict { stored_hash: String },
}

pub fn consumer_decision(existing: Option<&Existing>, incoming_hash: &str) -> ConsumerDecision {
    match existing {
        None => ConsumerDecision::Create,
        Some(e) if e.content_hash != incoming_hash => ConsumerDecision::Conflict {
            stored_hash: e.content_hash.clone(),
        },
        Some(e) if e.status == OrderStatus::Failed => ConsumerDecision::Reaccept {
            expected_version: e.version,
        },
        Some(_) => ConsumerDecision::Duplicate,
    }
}

/// What dlq-alarm does with a parseable order it found in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterDecision {
    /// The consumer never stored it: create a FAILED item.
    CreateFailed,
    /// Already marked FAILED (an earlier alarm run): nothing more.
    AlreadyFailed,
    /// The same order is stored and accepted: the dead letter is a redundant copy.
    AlreadyStored,
    /// The message reused the id of a different stored order: leave the stored order alone.
    Conflict,
}

pub fn dead_letter_decision(
    existing: Option<&Existing>,
    incoming_hash: &str,
) -> DeadLetterDecision {
    match existing {
        None => DeadLetterDecision::CreateFailed,
        Some(e) if e.content_hash != incoming_hash => DeadLetterDecision::Conflict,
        Some(e) if e.status == OrderStatus::Failed => DeadLetterDecision::AlreadyFailed,
        Some(_) => DeadLetterDecision::AlreadyStored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(hash: &str, status: OrderStatus) -> Existing {
        Existing {
            content_hash: hash.into(),
            status,
            version: 4,
        }
    }

    #[test]
    fn consumer_creates_when_nothing_is_stored() {
        assert_eq!(consumer_decision(None, "h"), ConsumerDecision::Create);
    }

    #[test]
    fn consumer_calls_same_content_a_duplicate_whatever_later_status() {
        for status in [OrderStatus::Accepted, OrderStatus::Later] {
            let e = existing("h", status);
            assert_eq!(
                consumer_decision(Some(&e), "h"),
                ConsumerDecision::Duplicate
            );
        }
    }

    #[test]
    fn consumer_reaccepts_a_failed_order_redriven_with_the_same_content() {
        let e = existing("h", OrderStatus::Failed);
        assert_eq!(
            consumer_decision(Some(&e), "h"),
            ConsumerDecision::Reaccept {
                expected_version: 4
            }
        );
    }

    #[test]
    fn consumer_reports_a_conflict_for_different_content_whatever_status() {
        for status in [OrderStatus::Accepted, OrderStatus::Failed] {
            let e = existing("other", status);
            assert!(matches!(
                consumer_decision(Some(&e), "h"),
                ConsumerDecision::Conflict { .. }
            ));
        }
    }

    /// Protects: an item another system wrote under an order's id is a conflict for the consumer
    /// and for dlq-alarm, never a duplicate, a re-accept or an overwrite.
    #[test]
    fn an_item_stored_by_another_system_is_a_conflict_for_everyone() {
        let foreign = Existing::foreign();
        assert!(foreign.is_foreign());
        assert!(
            !existing("h", OrderStatus::Accepted).is_foreign(),
            "an item this pipeline wrote is not foreign"
        );
        assert!(matches!(
            consumer_decision(Some(&foreign), "h"),
            ConsumerDecision::Conflict { .. }
        ));
        assert_eq!(
            dead_letter_decision(Some(&foreign), "h"),
            DeadLetterDecision::Conflict
        );
    }

    #[test]
    fn dead_letter_decisions_follow_the_contract() {
        assert_eq!(
            dead_letter_decision(None, "h"),
            DeadLetterDecision::CreateFailed
        );
        let failed = existing("h", OrderStatus::Failed);
        assert_eq!(
            dead_letter_decision(Some(&failed), "h"),
            DeadLetterDecision::AlreadyFailed
        );
        let accepted = existing("h", OrderStatus::Accepted);
        assert_eq!(
            dead_letter_decision(Some(&accepted), "h"),
            DeadLetterDecision::AlreadyStored
        );
        assert_eq!(
            dead_letter_decision(Some(&accepted), "x"),
            DeadLetterDecision::Conflict
        );
        // A FAILED item with other content: a conflict, not "already failed" (the content is
        // compared before the status).
        assert_eq!(
            dead_letter_decision(Some(&failed), "x"),
            DeadLetterDecision::Conflict
        );
    }

    #[test]
    fn unknown_statuses_of_later_stages_read_as_later() {
        let s: OrderStatus = serde_json::from_str("\"SHIPPED\"").unwrap();
        assert_eq!(s, OrderStatus::Later);
        let s: OrderStatus = serde_json::from_str("\"PAYMENT_FAILED\"").unwrap();
        assert_eq!(s, OrderStatus::PaymentFailed);
        let s: OrderStatus = serde_json::from_str("\"FAILED\"").unwrap();
        assert_eq!(s, OrderStatus::Failed);
    }
}
