//! An observer queue on a topic: what was published to it, counted by `eventType`, read from
//! the queue itself (not from the publisher's own bookkeeping).

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::{aws_err, Clients, LocalError};

pub struct Observer {
    queue_url: String,
}

impl Observer {
    /// A new queue subscribed to `topic_arn` with raw delivery.
    pub async fn subscribe(
        clients: &Clients,
        topic_arn: &str,
        name: &str,
    ) -> Result<Self, LocalError> {
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
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .map_err(aws_err("subscribe the observer queue"))?;
        Ok(Observer { queue_url })
    }

    /// Every message received so far (consumed), counted by its `eventType` attribute.
    pub async fn drain_counts(
        &self,
        clients: &Clients,
    ) -> Result<BTreeMap<String, u64>, LocalError> {
        let mut counts = BTreeMap::new();
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
                return Ok(counts);
            }
            for m in messages {
                let kind = m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get("eventType"))
                    .and_then(|v| v.string_value.clone())
                    .unwrap_or_else(|| "(no eventType)".into());
                *counts.entry(kind).or_default() += 1;
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
