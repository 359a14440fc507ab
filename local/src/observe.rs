//! An observer queue on a topic: what was published to it, counted by `eventType`, read from
//! the queue itself (not from the publisher's own bookkeeping).

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::{aws_err, Clients, LocalError};

pub struct Observer {
    queue_url: String,
    seen: std::sync::Mutex<Vec<Received>>,
}

/// The customers' inbox is an observer of the customer-notifications topic.
pub type Inbox = Observer;

/// One message an observer received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub event_type: String,
    /// The `dedupeId` attribute, when the message has one.
    pub dedupe_id: Option<String>,
    pub body: String,
}

/// A new queue named `name` subscribed to `topic_arn`, with raw delivery or SNS's envelope
/// (which keeps the subject). Returns its URL.
pub async fn subscribed_queue(
    clients: &Clients,
    topic_arn: &str,
    name: &str,
    raw: bool,
) -> Result<String, LocalError> {
    let queue_url = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(aws_err("create the observer queue"))?
        .queue_url
        .unwrap_or_default();
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_err("read the observer queue"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    clients
        .sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", raw.to_string())
        .send()
        .await
        .map_err(aws_err("subscribe the observer queue"))?;
    Ok(queue_url)
}

impl Observer {
    /// A new queue subscribed to `topic_arn` with raw delivery.
    pub async fn subscribe(
        clients: &Clients,
        topic_arn: &str,
        name: &str,
    ) -> Result<Self, LocalError> {
        let queue_url = subscribed_queue(clients, topic_arn, name, true).await?;
        Ok(Observer {
            queue_url,
            seen: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Every message received since the observer subscribed, in arrival order (the queue is
    /// drained of what arrived since the last call).
    pub async fn received(&self, clients: &Clients) -> Result<Vec<Received>, LocalError> {
        let new = self.drain(clients).await?;
        let mut seen = self
            .seen
            .lock()
            .map_err(|e| LocalError::Input(e.to_string()))?;
        seen.extend(new);
        Ok(seen.clone())
    }

    /// Every message received so far (consumed), counted by its `eventType` attribute.
    pub async fn drain_counts(
        &self,
        clients: &Clients,
    ) -> Result<BTreeMap<String, u64>, LocalError> {
        let mut counts = BTreeMap::new();
        for m in self.received(clients).await? {
            *counts.entry(m.event_type).or_default() += 1;
        }
        Ok(counts)
    }

    async fn drain(&self, clients: &Clients) -> Result<Vec<Received>, LocalError> {
        let mut received = Vec::new();
        loop {
            let messages = clients
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(aws_err("read the observer queue"))?
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                return Ok(received);
            }
            for m in messages {
                let attribute = |name: &str| {
                    m.message_attributes
                        .as_ref()
                        .and_then(|a| a.get(name))
                        .and_then(|v| v.string_value.clone())
                };
                received.push(Received {
                    event_type: attribute("eventType").unwrap_or_else(|| "(no eventType)".into()),
                    dedupe_id: attribute("dedupeId"),
                    body: m.body.clone().unwrap_or_default(),
                });
                clients
                    .sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .map_err(aws_err("delete from the observer queue"))?;
            }
        }
    }
}
