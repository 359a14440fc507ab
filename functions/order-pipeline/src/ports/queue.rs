//! The ports to the queues: the dead-letter queue (a bounded look at its messages that consumes
//! nothing) and a stage's own queue (when its failed records become visible again).

use std::future::Future;
use std::time::Duration;

use crate::ports::PortError;

/// One message seen in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// Receives before this look (the order queue's and the DLQ's).
    pub receive_count: u32,
    /// SentTimestamp, epoch milliseconds.
    pub sent_timestamp_ms: Option<i64>,
    /// The publisher's `correlationId` message attribute (raw delivery).
    pub correlation_attribute: Option<String>,
}

pub trait DeadLetterQueue: Send + Sync {
    /// Receives up to `max` messages, hiding each for `visibility_seconds` so that one look does
    /// not see a message twice.
    fn snapshot(
        &self,
        max: usize,
        visibility_seconds: i32,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, PortError>> + Send;

    /// Makes every message of a snapshot visible again at once.
    fn release(&self, letters: &[DeadLetter])
        -> impl Future<Output = Result<(), PortError>> + Send;

    /// The DLQ's message counts now (approximate, as SQS gives them).
    fn counts(&self) -> impl Future<Output = Result<QueueCounts, PortError>> + Send;
}

/// A queue's messages by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Receivable now.
    pub visible: u64,
    /// Received and not yet deleted or visible again: a snapshot (this one's, another sweep's),
    /// a person polling the DLQ in the console.
    pub held: u64,
}

impl QueueCounts {
    /// Every message in the queue.
    pub fn depth(&self) -> u64 {
        self.visible + self.held
    }
}

/// Changes when failed records become visible again (SQS ChangeMessageVisibilityBatch).
pub trait Visibility: Send + Sync {
    fn delay(
        &self,
        entries: Vec<(String, Duration)>,
    ) -> futures::future::BoxFuture<'_, Result<(), PortError>>;
}
