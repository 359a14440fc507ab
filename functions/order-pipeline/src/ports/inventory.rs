//! The port to the Inventory table: the inventory stage's reservation ([`InventoryStore`]) and the
//! payment stage's settling writes ([`PaymentStore`]), each with the order's transition.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use order_domain::{InventoryItem, OrderItem, ReservedLine};

use crate::ports::orders::{OrderReader, TransitionWrite};
use crate::ports::PortError;

/// What the reservation's transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    Reserved,
    /// The order's condition failed: it is no longer ACCEPTED at that version.
    OrderMovedOn,
    /// A stock condition failed.
    Short {
        sku: String,
        requested: u32,
        available: Option<u64>,
    },
}

/// The Inventory table, the order the inventory stage reserves for ([`OrderReader`]), and the
/// order transitions it writes.
pub trait InventoryStore: OrderReader {
    /// The inventory items of `skus` (missing skus are absent), read consistently.
    fn items(
        &self,
        skus: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, InventoryItem>, PortError>> + Send;

    /// The reservation's transaction: `write` is the order's ACCEPTED -> RESERVED change,
    /// carrying the reservation.
    fn reserve(
        &self,
        write: &TransitionWrite,
    ) -> impl Future<Output = Result<Reserve, PortError>> + Send;

    /// A single conditional transition (ACCEPTED -> REJECTED); `false` when the order moved on.
    fn transition(
        &self,
        write: &TransitionWrite,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// What the settling transaction does to the order's reserved units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockMove {
    /// `reserved → sold` (PAID).
    Sell,
    /// `reserved → available` (PAYMENT_FAILED; a cancelled or refunded order that was reserved).
    Release,
    /// `sold → available` (a refunded order that was paid: its units back on sale).
    Restock,
}

/// A payment attempt claimed on an order, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Attempt number `attempt` holds the order for the claim's lease. `order` is the stored
    /// order: the attempt charges its amount, currency and customer and settles its
    /// reservation, never the event's copies.
    Claimed { attempt: u32, order: Box<OrderItem> },
    /// Another delivery's attempt holds the order for `left` more (a duplicate event in the
    /// same batch, or in another instance): this one waits and looks again.
    Held { left: Duration },
    /// The order is no longer RESERVED at that version.
    MovedOn,
}

/// The Orders and Inventory writes of the payment stage, and the stored order
/// ([`OrderReader`]) that the payment DLQ releases, never the event's copy.
pub trait PaymentStore: OrderReader {
    /// Claims the next payment attempt on an order still RESERVED at `version` and not held by
    /// another attempt: counts it (`paymentAttempts`) and holds the order for `lease`
    /// (`paymentClaimUntil`), in one conditional write that returns the stored order.
    fn claim_attempt(
        &self,
        order_id: &str,
        version: u64,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, PortError>> + Send;

    /// Ends the claim of attempt `attempt` before its lease (the attempt ended without
    /// settling: its event comes back after its backoff), keeping when it ended
    /// (`paymentClaimUntil` = now); nothing when another attempt holds it.
    fn release_claim(
        &self,
        order_id: &str,
        attempt: u32,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Counts the next refund call (`refundAttempts`) on an order still CANCELLING at `version`,
    /// before the call is made; its number, or `None` when the order moved on.
    fn count_refund_attempt(
        &self,
        order_id: &str,
        version: u64,
    ) -> impl Future<Output = Result<Option<u32>, PortError>> + Send;

    /// `write` (RESERVED → PAID or PAYMENT_FAILED; CANCELLING → CANCELLED, REFUNDED or
    /// REFUND_FAILED) and `stock` for `lines`, in one transaction; `false` when the order moved
    /// on (nothing written).
    fn settle(
        &self,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        stock: StockMove,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}
