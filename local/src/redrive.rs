//! Redriving a dead-letter queue back to its source queue, with a dry run that lists first.
//!
//! On AWS this is SQS's own message-move task. The emulator does not implement that task, so
//! against it the same move is done by hand: each message is sent to the source queue with its
//! body and message attributes, then deleted from the DLQ, ten at a time.

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
};
use order_domain::parse_body;
use order_pipeline::adapters::sqs::SqsDeadLetterQueue;
use order_pipeline::ports::queue::DeadLetterQueue;
use serde::Serialize;

use crate::{aws_err, LocalError};

/// One message in the DLQ, as the dry run lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub message_id: String,
    pub correlation_id: Option<String>,
    pub order_id: Option<String>,
    pub receive_count: u32,
    /// What redriving it will do, as far as the message alone tells.
    pub expect: String,
}

/// Lists every message of the DLQ without consuming any (each is made visible again).
pub async fn list(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> Result<Vec<Listed>, LocalError> {
    let dlq = SqsDeadLetterQueue::new(sqs.clone(), dlq_url);
    let letters = dlq
        .snapshot(100_000, crate::report::LIST_VISIBILITY_SECONDS)
        .await
        .map_err(|e| LocalError::Input(format!("read the DLQ: {e}")))?;
    dlq.release(&letters)
        .await
        .map_err(|e| LocalError::Input(format!("make the DLQ's messages visible again: {e}")))?;
    Ok(letters
        .into_iter()
        .map(|l| {
            let (order_id, expect) = match parse_body(&l.body).order {
                Ok((order, _)) => (
                    Some(order.order_id),
                    "an order: stored if new, accepted again if marked FAILED, back in the DLQ if it conflicts with the stored order".to_string(),
                ),
                Err(e) => (None, format!("invalid ({e}): it will fail again and return; fix the publisher, then delete it")),
            };
            Listed {
                message_id: l.message_id,
                correlation_id: l.correlation_attribute,
                order_id,
                receive_count: l.receive_count,
                expect,
            }
        })
        .collect())
}

/// Moves every message of `dlq_url` to `queue_url` (the emulator's stand-in for SQS's
/// message-move task). Returns how many moved.
pub async fn move_by_hand(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<usize, LocalError> {
    let mut moved = 0;
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(aws_err("receive from the DLQ"))?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        let mut done = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let mut send = sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(m.body.clone().unwrap_or_default());
            for (name, value) in m.message_attributes.clone().unwrap_or_default() {
                let attribute = MessageAttributeValue::builder()
                    .data_type(value.data_type)
                    .set_string_value(value.string_value)
                    .build()
                    .map_err(aws_err("message attribute"))?;
                send = send.message_attributes(name, attribute);
            }
            send.send()
                .await
                .map_err(aws_err("send to the source queue"))?;
            done.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .map_err(aws_err("delete entry"))?,
            );
        }
        moved += done.len();
        sqs.delete_message_batch()
            .queue_url(dlq_url)
            .set_entries(Some(done))
            .send()
            .await
            .map_err(aws_err("delete the moved messages from the DLQ"))?;
    }
}

/// Starts SQS's message-move task from the DLQ back to the queue it came from (AWS).
pub async fn start_move_task(
    sqs: &aws_sdk_sqs::Client,
    dlq_arn: &str,
) -> Result<String, LocalError> {
    Ok(sqs
        .start_message_move_task()
        .source_arn(dlq_arn)
        .send()
        .await
        .map_err(aws_err("start the DLQ redrive (message-move task)"))?
        .task_handle
        .unwrap_or_default())
}
