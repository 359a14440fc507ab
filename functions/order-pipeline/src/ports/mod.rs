//! The ports: what the stages and the functions need from the outside (the Orders and Inventory
//! tables, the payment provider, the topics, the queues), each a trait, and [`PortError`].
//! A port depends on the domain crate and nothing else of this crate; its implementations are
//! in [`crate::adapters`].
//!
//! [`PortError`] is what a call to an outside system (DynamoDB, SQS, SNS) can fail with, as far
//! as the caller can act on it. Every port of this crate returns it; the domain crate knows
//! nothing of it.

pub mod inventory;
pub mod orders;
pub mod payment;
pub mod publish;
pub mod queue;

/// Why a port call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Throttling, a 5xx, a timeout or a dropped connection: trying again later may succeed.
    #[error("retryable error: {0}")]
    Retryable(String),
    /// A lost race on a conditional write that did not settle after re-reading.
    #[error("concurrent update: {0}")]
    Contention(String),
    /// Anything else (missing table, access denied, bad request): retrying the same call fails
    /// the same way until an operator fixes the cause.
    #[error("{0}")]
    Fatal(String),
    /// A stored item that does not map to the port's type (an item another system wrote, or
    /// one missing an attribute): every call reading it fails the same way until its data is
    /// fixed. The error names the item.
    #[error("{0}")]
    Unreadable(String),
}
