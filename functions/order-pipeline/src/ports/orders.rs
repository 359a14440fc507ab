//! The port to the Orders table: the two conditional writes the functions need
//! ([`OrderStore`]), reading one order ([`OrderReader`]), and one conditional status change
//! ([`TransitionWrite`], [`LifecycleStore`]).

use std::future::Future;

use order_domain::{Existing, OrderItem};

use crate::ports::PortError;

/// The result of a conditional create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateResult {
    Created,
    /// An item with this orderId was already there; it is left untouched.
    Exists(Existing),
}

/// Turns a FAILED item back into ACCEPTED after a redrive of the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaccept {
    pub order_id: String,
    pub content_hash: String,
    pub expected_version: u64,
    pub accepted_at: String,
    pub source_message_id: String,
    pub correlation_id: String,
}

pub trait OrderStore: Send + Sync {
    /// Writes `item` only if no item with its orderId exists.
    fn create(
        &self,
        item: &OrderItem,
    ) -> impl Future<Output = Result<CreateResult, PortError>> + Send;

    /// Applies `r` only if the stored item is still FAILED, at `expected_version`, with the same
    /// content hash. Returns whether it was applied.
    fn reaccept(&self, r: &Reaccept) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// Reading one order: the HTTP API's GET, and every stage that acts on an order, which reads
/// what it acts on from the table at the event's version, never from the event's body.
pub trait OrderReader: Send + Sync {
    /// The stored order, with a strongly consistent read; `None` when there is none.
    fn read(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<OrderItem>, PortError>> + Send;
}

/// A conditional status change of one order: `status = from AND version = expected_version`,
/// then `status = to`, `version + 1`, the step's timestamp, and the fields the change records.
/// Built only from a change of the lifecycle table, so nothing else can be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionWrite {
    pub order_id: String,
    pub change: &'static order_domain::Transition,
    pub expected_version: u64,
    /// The step timestamp (RFC 3339).
    pub at: String,
    pub reservation: Option<Vec<order_domain::ReservedLine>>,
    pub amount: Option<String>,
    /// The order's one currency (set with the reservation: the order's, its skus' or the default).
    pub currency: Option<String>,
    pub rejection: Option<order_domain::Rejection>,
    pub payment: Option<order_domain::Payment>,
    /// The customer notification that could not be sent (notification-dlq: `PAID → COMPLETED`).
    pub notification_failure: Option<order_domain::NotificationFailure>,
    /// The cancel asked of the API (`→ CANCELLED` or `→ CANCELLING`).
    pub cancellation: Option<order_domain::Cancellation>,
    /// The refund's result (`CANCELLING → REFUNDED` or `REFUND_FAILED`).
    pub refund: Option<order_domain::Refund>,
}

impl TransitionWrite {
    /// `from -> to` for `order_id` at `expected_version`, or `None` when the lifecycle has no such
    /// change.
    pub fn new(
        order_id: &str,
        from: order_domain::OrderStatus,
        to: order_domain::OrderStatus,
        expected_version: u64,
        at: String,
    ) -> Option<Self> {
        Some(TransitionWrite {
            order_id: order_id.to_string(),
            change: order_domain::transition(Some(from), to)?,
            expected_version,
            at,
            reservation: None,
            amount: None,
            currency: None,
            rejection: None,
            payment: None,
            notification_failure: None,
            cancellation: None,
            refund: None,
        })
    }
}

/// Reading an order ([`OrderReader`]) and writing one conditional transition.
pub trait LifecycleStore: OrderReader {
    /// `false` when the order moved on (nothing written).
    fn transition(
        &self,
        write: &TransitionWrite,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Records `failure` on an order still at `status` and `version`, which stay as they are
    /// (not a lifecycle change: no event follows), and holding no failure yet; `false` when the
    /// order moved on or a failure is recorded already (nothing written).
    fn record_notification_failure(
        &self,
        order_id: &str,
        status: order_domain::OrderStatus,
        version: u64,
        failure: &order_domain::NotificationFailure,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}
