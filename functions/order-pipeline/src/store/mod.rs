//! The port to the Orders table: the two conditional writes the functions need.

mod dynamodb;
#[cfg(any(test, feature = "test-support"))]
mod memory;

use std::future::Future;

use order_domain::{Existing, OrderItem};

use crate::port::PortError;

pub use dynamodb::DynamoStore;
#[cfg(any(test, feature = "test-support"))]
pub use memory::{Fault, MemoryStore};

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

/// Reading one order (the HTTP API's GET).
pub trait OrderReader: Send + Sync {
    /// The stored order, with a strongly consistent read; `None` when there is none.
    fn read(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<OrderItem>, PortError>> + Send;
}

impl OrderReader for DynamoStore {
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.get(order_id).await
    }
}

#[cfg(any(test, feature = "test-support"))]
impl OrderReader for MemoryStore {
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.fault_for(order_id).await?;
        Ok(self.get(order_id))
    }
}
