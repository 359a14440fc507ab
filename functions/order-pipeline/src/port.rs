//! What a call to an outside system (DynamoDB, SQS, SNS) can fail with, as far as the caller
//! can act on it. Every port of this crate returns it; the domain crate knows nothing of it.

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
}
