//! What a dlq-alarm invocation fails with, and how the runtime reports it.

use crate::ports::PortError;

use super::AlarmSummary;

#[derive(thiserror::Error)]
pub enum AlarmError {
    #[error("could not read the DLQ: {0}; check the function's sqs:ReceiveMessage permission and DLQ_URL")]
    Snapshot(PortError),
    /// Some dead letters could not be examined (or the snapshot not released): the summary was
    /// published, and the invocation fails so that Lambda runs it again and the function's
    /// errors alarm sees it.
    #[error("{} of {} dead letters were not examined; Lambda retries the sweep. First: {}", .0.errors.len(), .0.messages_seen, .0.errors.first().map(String::as_str).unwrap_or("-"))]
    Incomplete(Box<AlarmSummary>),
}

impl AlarmError {
    /// The summary of a sweep that ran but did not finish everything.
    pub fn summary(&self) -> Option<&AlarmSummary> {
        match self {
            AlarmError::Incomplete(s) => Some(s),
            AlarmError::Snapshot(_) => None,
        }
    }
}

/// The runtime logs a failed invocation's error with `{:?}`: one sentence, not a struct dump.
impl std::fmt::Debug for AlarmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<AlarmError> for lambda_runtime::Diagnostic {
    fn from(e: AlarmError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: match e {
                AlarmError::Snapshot(_) => "DlqSnapshotFailed".into(),
                AlarmError::Incomplete(_) => "DlqSweepIncomplete".into(),
            },
            error_message: e.to_string(),
        }
    }
}
