//! The queues on SQS: a bounded look at the dead-letter queue that consumes nothing
//! ([`SqsDeadLetterQueue`]), and a stage's own queue, for the worker's backoff of failed records
//! ([`SqsVisibility`]).

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

use tracing::Instrument;

use crate::adapters::aws::classify;
use crate::ports::queue::{DeadLetter, DeadLetterQueue, QueueCounts, Visibility};
use crate::ports::PortError;
use crate::runtime::telemetry::trace;

pub struct SqsDeadLetterQueue {
    client: Client,
    url: String,
}

impl SqsDeadLetterQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn snapshot(
        &self,
        max: usize,
        visibility_seconds: i32,
    ) -> Result<Vec<DeadLetter>, PortError> {
        let mut letters: Vec<DeadLetter> = Vec::new();
        // Where each message is in `letters`: a message hidden early comes back when reading
        // the rest takes longer than its visibility timeout (a large DLQ, a slow endpoint).
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let started = std::time::Instant::now();
        let hidden_for = std::time::Duration::from_secs(visibility_seconds.max(0) as u64);
        while letters.len() < max {
            let batch = (max - letters.len()).min(10) as i32;
            let out = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(batch)
                .visibility_timeout(visibility_seconds)
                // A short wait lets SQS answer from all its hosts, so an empty answer means empty.
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .instrument(trace::aws_call("SQS", "ReceiveMessage"))
                .await
                .map_err(|e| classify(&e));
            let messages = match out {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    // Whatever was already hidden is shown again before reporting the failure.
                    let _ = self.release(&letters).await;
                    return Err(e);
                }
            };
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let message_id = m.message_id.unwrap_or_default();
                let receipt_handle = m.receipt_handle.unwrap_or_default();
                if let Some(&at) = seen.get(&message_id) {
                    // Seen already: keep it once, with the receipt that can still release it.
                    letters[at].receipt_handle = receipt_handle;
                    continue;
                }
                seen.insert(message_id.clone(), letters.len());
                let attrs = m.attributes.unwrap_or_default();
                let number = |name: MessageSystemAttributeName| {
                    attrs.get(&name).and_then(|v| v.parse::<i64>().ok())
                };
                letters.push(DeadLetter {
                    message_id,
                    receipt_handle,
                    body: m.body.unwrap_or_default(),
                    receive_count: number(MessageSystemAttributeName::ApproximateReceiveCount)
                        .map(|n| n.saturating_sub(1).max(0) as u32)
                        .unwrap_or(0),
                    sent_timestamp_ms: number(MessageSystemAttributeName::SentTimestamp),
                    correlation_attribute: m
                        .message_attributes
                        .and_then(|mut a| a.remove("correlationId"))
                        .and_then(|a| a.string_value),
                });
            }
            if started.elapsed() >= hidden_for {
                // The first messages hidden are visible again: reading on would only meet them
                // again (or show them to someone else mid-snapshot). The rest waits for the next
                // sweep; a caller that needs the whole queue hides it for longer.
                break;
            }
        }
        Ok(letters)
    }

    async fn release(&self, letters: &[DeadLetter]) -> Result<(), PortError> {
        let receipts: Vec<&str> = letters.iter().map(|l| l.receipt_handle.as_str()).collect();
        change_visibility(&self.client, &self.url, &receipts, 0).await
    }

    async fn counts(&self) -> Result<QueueCounts, PortError> {
        let visible = QueueAttributeName::ApproximateNumberOfMessages;
        let held = QueueAttributeName::ApproximateNumberOfMessagesNotVisible;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(visible.clone())
            .attribute_names(held.clone())
            .send()
            .instrument(trace::aws_call("SQS", "GetQueueAttributes"))
            .await
            .map_err(|e| classify(&e))?;
        let count = |name: &QueueAttributeName| {
            out.attributes
                .as_ref()
                .and_then(|a| a.get(name))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    PortError::Fatal(format!("the DLQ's attributes have no {name} count"))
                })
        };
        Ok(QueueCounts {
            visible: count(&visible)?,
            held: count(&held)?,
        })
    }
}

/// Sets the visibility timeout of received messages, ten per request.
pub async fn change_visibility(
    client: &Client,
    queue_url: &str,
    receipt_handles: &[&str],
    seconds: i32,
) -> Result<(), PortError> {
    let entries: Vec<(&str, i32)> = receipt_handles.iter().map(|h| (*h, seconds)).collect();
    change_visibilities(client, queue_url, &entries).await
}

/// Sets each received message's visibility timeout (receipt handle, seconds), ten per
/// `ChangeMessageVisibilityBatch` request; an entry the batch refused fails the call.
async fn change_visibilities(
    client: &Client,
    queue_url: &str,
    entries: &[(&str, i32)],
) -> Result<(), PortError> {
    for chunk in entries.chunks(10) {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(i, (handle, seconds))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*handle)
                    .visibility_timeout(*seconds)
                    .build()
                    .map_err(|e| PortError::Fatal(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(batch))
            .send()
            .instrument(trace::aws_call("SQS", "ChangeMessageVisibilityBatch"))
            .await
            .map_err(|e| classify(&e))?;
        // A batch call succeeds even when some of its entries failed: those say so here.
        if let Some(first) = out.failed.first() {
            return Err(PortError::Retryable(format!(
                "{} of {} visibility changes failed; first: {} {}",
                out.failed.len(),
                chunk.len(),
                first.code,
                first.message.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// A stage's own queue, for the worker's backoff of failed records.
pub struct SqsVisibility {
    client: Client,
    url: String,
}

impl SqsVisibility {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

impl Visibility for SqsVisibility {
    fn delay(
        &self,
        entries: Vec<(String, std::time::Duration)>,
    ) -> futures::future::BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            let entries: Vec<(&str, i32)> = entries
                .iter()
                .map(|(handle, after)| (handle.as_str(), after.as_secs().min(43_200) as i32))
                .collect();
            change_visibilities(&self.client, &self.url, &entries).await
        })
    }
}
