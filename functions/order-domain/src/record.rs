//! What happened to one SQS record, and how a record is identified in logs.

use crate::parse::InvalidOrder;

/// The correlation id of a record: the publisher's `correlationId` message attribute, else the
/// SNS message id, else the SQS message id.
pub fn correlation_id<'a>(
    attribute: Option<&'a str>,
    sns_message_id: Option<&'a str>,
    sqs_message_id: &'a str,
) -> &'a str {
    attribute
        .filter(|s| !s.is_empty())
        .or(sns_message_id.filter(|s| !s.is_empty()))
        .unwrap_or(sqs_message_id)
}

/// Why a store call failed, as far as the caller can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttling, a 5xx, a timeout or a dropped connection: SQS retries the record later.
    #[error("retryable store error: {0}")]
    Retryable(String),
    /// A lost race on a conditional write that did not settle after re-reading.
    #[error("concurrent update: {0}")]
    Contention(String),
    /// Anything else (missing table, access denied, bad request): retrying the same call will
    /// fail the same way until an operator fixes the cause.
    #[error("store error: {0}")]
    Fatal(String),
}

/// The outcome of one record, one variant per row of the contract's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored with status ACCEPTED. `reaccepted` when it replaced a FAILED mark after a redrive.
    Accepted { reaccepted: bool },
    /// The same order is already stored: nothing written, message deleted.
    Duplicate,
    /// A different order uses this id: nothing written, record failed (goes to the DLQ).
    Conflict,
    /// The payload is not an acceptable order: record failed (goes to the DLQ).
    Invalid(InvalidOrder),
    /// The store failed: record failed, SQS retries it.
    StoreFailed(StoreError),
    /// Processing this record panicked: only this record failed.
    Panicked(String),
}

impl RecordOutcome {
    /// Whether the record goes back to SQS in `batchItemFailures`.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            RecordOutcome::Accepted { .. } | RecordOutcome::Duplicate
        )
    }

    /// A short machine-readable label for logs and summaries.
    pub fn label(&self) -> &'static str {
        match self {
            RecordOutcome::Accepted { reaccepted: false } => "accepted",
            RecordOutcome::Accepted { reaccepted: true } => "reaccepted",
            RecordOutcome::Duplicate => "duplicate",
            RecordOutcome::Conflict => "conflict",
            RecordOutcome::Invalid(_) => "invalid",
            RecordOutcome::StoreFailed(_) => "store_failed",
            RecordOutcome::Panicked(_) => "panicked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_prefers_attribute_then_sns_then_sqs_id() {
        assert_eq!(correlation_id(Some("c"), Some("s"), "q"), "c");
        assert_eq!(correlation_id(None, Some("s"), "q"), "s");
        assert_eq!(correlation_id(Some(""), None, "q"), "q");
    }

    #[test]
    fn only_accepted_and_duplicate_records_are_done() {
        let invalid = InvalidOrder {
            field: "f".into(),
            problem: "p".into(),
        };
        let failing = [
            RecordOutcome::Conflict,
            RecordOutcome::Invalid(invalid),
            RecordOutcome::StoreFailed(StoreError::Retryable("x".into())),
            RecordOutcome::Panicked("boom".into()),
        ];
        assert!(failing.iter().all(RecordOutcome::is_failure));
        assert!(!RecordOutcome::Duplicate.is_failure());
        assert!(!RecordOutcome::Accepted { reaccepted: true }.is_failure());
    }
}
