//! In-memory queues: a DLQ that records what was looked at and released, and a stage's queue that
//! records the worker's visibility changes.

use crate::ports::queue::{DeadLetter, DeadLetterQueue, QueueCounts, Visibility};
use crate::ports::PortError;

/// An in-memory DLQ for handler tests: records what was looked at and what was released.
#[derive(Default)]
pub struct MemoryDeadLetterQueue {
    pub messages: std::sync::Mutex<Vec<DeadLetter>>,
    pub hidden: std::sync::Mutex<Vec<String>>,
}

impl MemoryDeadLetterQueue {
    pub fn with(messages: Vec<DeadLetter>) -> Self {
        Self {
            messages: std::sync::Mutex::new(messages),
            hidden: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Message ids currently hidden by a snapshot that was not released.
    pub fn hidden(&self) -> Vec<String> {
        self.hidden.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

impl DeadLetterQueue for MemoryDeadLetterQueue {
    async fn snapshot(
        &self,
        max: usize,
        _visibility_seconds: i32,
    ) -> Result<Vec<DeadLetter>, PortError> {
        let messages = self.messages.lock().map(|m| m.clone()).unwrap_or_default();
        let mut hidden = self
            .hidden
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        let seen: Vec<DeadLetter> = messages
            .into_iter()
            .filter(|m| !hidden.contains(&m.message_id))
            .take(max)
            .collect();
        hidden.extend(seen.iter().map(|m| m.message_id.clone()));
        Ok(seen)
    }

    async fn release(&self, letters: &[DeadLetter]) -> Result<(), PortError> {
        let mut hidden = self
            .hidden
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        hidden.retain(|id| !letters.iter().any(|l| &l.message_id == id));
        Ok(())
    }

    async fn counts(&self) -> Result<QueueCounts, PortError> {
        let all = self.messages.lock().map(|m| m.len()).unwrap_or(0) as u64;
        let held = self.hidden().len() as u64;
        Ok(QueueCounts {
            visible: all.saturating_sub(held),
            held,
        })
    }
}

/// Records the worker's visibility changes (tests).
#[derive(Default)]
pub struct MemoryVisibility {
    pub delays: std::sync::Mutex<Vec<(String, std::time::Duration)>>,
}

impl Visibility for MemoryVisibility {
    fn delay(
        &self,
        entries: Vec<(String, std::time::Duration)>,
    ) -> futures::future::BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            if let Ok(mut d) = self.delays.lock() {
                d.extend(entries);
            }
            Ok(())
        })
    }
}
