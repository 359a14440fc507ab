//! The port to the Inventory table: the inventory stage's reservation ([`InventoryStore`]) and the
//! payment stage's settling writes ([`PaymentStore`]), each with the order's transition.

use std::collections::BTreeMap;
use std::future::Future;

use order_domain::{InventoryItem, ReservedLine};

use crate::ports::orders::TransitionWrite;
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

/// The Inventory table and the order transitions the inventory stage writes.
pub trait InventoryStore: Send + Sync {
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
    /// `reserved → available` (PAYMENT_FAILED).
    Release,
}

/// The Orders and Inventory writes of the payment stage.
pub trait PaymentStore: Send + Sync {
    /// Counts one more payment attempt on an order still RESERVED at `version`; returns the
    /// count, or `None` when the order moved on.
    fn count_attempt(
        &self,
        order_id: &str,
        version: u64,
    ) -> impl Future<Output = Result<Option<u32>, PortError>> + Send;

    /// `write` (RESERVED → PAID or PAYMENT_FAILED) and `stock` for `lines`, in one
    /// transaction; `false` when the order moved on (nothing written).
    fn settle(
        &self,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        stock: StockMove,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}
