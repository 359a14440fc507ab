//! Redriving the intake DLQ back to the order queue, message by message: each message is judged
//! against the Orders table first, and one that would only fail again (a conflict with the
//! stored order, an invalid body) is never moved back. A dry run lists the same judgement and
//! moves nothing; `delete` removes chosen messages (a poison message, once its publisher is
//! fixed).
//!
//! Each chosen message is sent to the order queue with its body and message attributes, then
//! deleted from the DLQ, on AWS as on the emulator. SQS's own message-move task is not used: it
//! moves the whole DLQ, including messages that arrived after the listing or that another
//! reader held while it was made, which nobody judged.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
};
use order_domain::{
    dead_letter_decision, parse_body, DeadLetterDecision, Existing, OrderStatus,
    FOREIGN_CONTENT_HASH,
};
use order_pipeline::adapters::sqs::SqsDeadLetterQueue;
use order_pipeline::ports::queue::DeadLetterQueue;
use serde::Serialize;

use crate::{aws_err, LocalError};

/// What redriving one message would do, judged from its body and the stored order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No order of its id is stored: it is stored now.
    New,
    /// Its order is stored `FAILED` (dlq-alarm marked it) with the same content: accepted again.
    AcceptedAgain,
    /// The same order is stored and on its way: dropped as a duplicate (harmless).
    Duplicate,
    /// Another order is stored under its id: it would fail again and return. Stays.
    Conflict,
    /// Not an acceptable order: it would fail again and return. Stays.
    Invalid,
    /// A stage's event in that stage's DLQ: its dead-letter handler settled the order
    /// (docs/operations.md says what each stage's DLQ holds); never moved back.
    Event,
}

impl Verdict {
    /// Whether a redrive moves it back to the order queue.
    pub fn moves(self) -> bool {
        matches!(
            self,
            Verdict::New | Verdict::AcceptedAgain | Verdict::Duplicate
        )
    }

    fn says(self) -> &'static str {
        match self {
            Verdict::New => "new: stored when redriven",
            Verdict::AcceptedAgain => "FAILED with the same content: accepted again when redriven",
            Verdict::Duplicate => "already stored: dropped as a duplicate when redriven",
            Verdict::Conflict => "conflicts with the stored order of its id: stays (it would fail again); delete it, or publish it under a new orderId",
            Verdict::Invalid => "invalid: stays (it would fail again); fix the publisher, then delete it",
            Verdict::Event => "a stage's event: read it, then delete it (its dead-letter handler settled the order)",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::New => "new",
            Verdict::AcceptedAgain => "accepted again",
            Verdict::Duplicate => "duplicate",
            Verdict::Conflict => "conflict",
            Verdict::Invalid => "invalid",
            Verdict::Event => "event",
        }
    }
}

/// One message in the DLQ and what a redrive would do with it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub message_id: String,
    pub correlation_id: Option<String>,
    pub order_id: Option<String>,
    pub verdict: Verdict,
    /// Why an invalid body is invalid.
    pub detail: Option<String>,
}

impl Listed {
    /// Whether `--only` names it (its message id or its order id); everything without a filter.
    pub fn chosen(&self, only: &[String]) -> bool {
        only.is_empty()
            || only
                .iter()
                .any(|o| *o == self.message_id || self.order_id.as_deref() == Some(o.as_str()))
    }

    /// One line for a person.
    pub fn line(&self) -> String {
        format!(
            "  {}  order {}  correlation {}: {}{}",
            self.message_id,
            self.order_id.as_deref().unwrap_or("-"),
            self.correlation_id.as_deref().unwrap_or("-"),
            self.verdict.says(),
            self.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )
    }
}

/// The DLQ as listed.
pub struct Listing {
    pub listed: Vec<Listed>,
    /// Messages another reader held hidden through every look (dlq-alarm's sweep holds them
    /// for moments; a console poll for longer): not listed, and not acted on.
    pub held_elsewhere: u64,
}

/// How long a listing waits for messages another reader holds.
const WAIT_FOR_HELD: std::time::Duration = std::time::Duration::from_secs(10);

/// Every message of the DLQ, judged against the Orders table `table`, without consuming any
/// (each is made visible again). When another reader holds some hidden, it looks again for up
/// to 10 s.
pub async fn list(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    dlq_url: &str,
) -> Result<Listing, LocalError> {
    let dlq = SqsDeadLetterQueue::new(sqs.clone(), dlq_url);
    let started = std::time::Instant::now();
    let (letters, held_elsewhere) = loop {
        let letters = dlq
            .snapshot(100_000, crate::report::LIST_VISIBILITY_SECONDS)
            .await
            .map_err(|e| LocalError::Input(format!("read the DLQ: {e}")))?;
        // Counted while this look holds what it read.
        let counts = dlq.counts().await;
        dlq.release(&letters).await.map_err(|e| {
            LocalError::Input(format!("make the DLQ's messages visible again: {e}"))
        })?;
        let others = counts
            .map_err(|e| LocalError::Input(format!("read the DLQ's counts: {e}")))?
            .held
            .saturating_sub(letters.len() as u64);
        if others == 0 || started.elapsed() >= WAIT_FOR_HELD {
            break (letters, others);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let mut listed = Vec::with_capacity(letters.len());
    // The content each order id goes back with: a second DLQ message of the same id with other
    // content would meet the first one's order and fail again.
    let mut moving: std::collections::HashMap<String, String> = Default::default();
    for l in letters {
        let (order_id, verdict, detail) = match parse_body(&l.body).order {
            Ok((order, _)) => {
                let stored = stored_head(dynamodb, table, &order.order_id).await?;
                let hash = order.content_hash();
                // dlq-alarm's decision table, read as what a redrive would do.
                let mut verdict = match dead_letter_decision(stored.as_ref(), &hash) {
                    DeadLetterDecision::CreateFailed => Verdict::New,
                    DeadLetterDecision::Conflict => Verdict::Conflict,
                    DeadLetterDecision::AlreadyFailed => Verdict::AcceptedAgain,
                    DeadLetterDecision::AlreadyStored => Verdict::Duplicate,
                };
                let mut detail = None;
                if verdict.moves() {
                    match moving.get(&order.order_id) {
                        Some(first) if *first != hash => {
                            verdict = Verdict::Conflict;
                            detail = Some("another DLQ message of this id goes back first".into());
                        }
                        Some(_) => verdict = Verdict::Duplicate,
                        None => {
                            moving.insert(order.order_id.clone(), hash);
                        }
                    }
                }
                (Some(order.order_id), verdict, detail)
            }
            Err(e) => (None, Verdict::Invalid, Some(e.to_string())),
        };
        listed.push(Listed {
            message_id: l.message_id,
            correlation_id: l.correlation_attribute,
            order_id,
            verdict,
            detail,
        });
    }
    Ok(Listing {
        listed,
        held_elsewhere,
    })
}

/// Every message of a stage's DLQ (or the subscription DLQ), unjudged: each with its event type
/// and order id as far as its body tells (a lifecycle event, or an SNS envelope around an order).
pub async fn list_events(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> Result<Listing, LocalError> {
    let dlq = SqsDeadLetterQueue::new(sqs.clone(), dlq_url);
    let letters = dlq
        .snapshot(100_000, crate::report::LIST_VISIBILITY_SECONDS)
        .await
        .map_err(|e| LocalError::Input(format!("read the DLQ: {e}")))?;
    dlq.release(&letters)
        .await
        .map_err(|e| LocalError::Input(format!("make the DLQ's messages visible again: {e}")))?;
    let listed = letters
        .into_iter()
        .map(|l| {
            let body: serde_json::Value = serde_json::from_str(&l.body).unwrap_or_default();
            // An SNS envelope (the subscription DLQ) carries the order in `Message`.
            let inner: serde_json::Value = body["Message"]
                .as_str()
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_else(|| body.clone());
            let event_type = inner["eventType"].as_str().map(str::to_string);
            Listed {
                message_id: l.message_id,
                correlation_id: l.correlation_attribute,
                order_id: inner["orderId"].as_str().map(str::to_string),
                verdict: Verdict::Event,
                detail: Some(event_type.unwrap_or_else(|| "not an event".into())),
            }
        })
        .collect();
    Ok(Listing {
        listed,
        held_elsewhere: 0,
    })
}

/// The command line's name of the DLQ a stack output holds, when it holds one: `intake` for
/// `DeadLetterQueueUrl` (the order queue's), `order-watch` for `OrderWatchDeadLetterQueueUrl`, ...
pub fn dlq_name(output: &str) -> Option<String> {
    let prefix = output.strip_suffix("DeadLetterQueueUrl")?;
    if prefix.is_empty() {
        return Some("intake".into());
    }
    let mut name = String::new();
    for (i, c) in prefix.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('-');
        }
        name.extend(c.to_lowercase());
    }
    Some(name)
}

/// What the decision table needs of the stored order, if any.
async fn stored_head(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    order_id: &str,
) -> Result<Option<Existing>, LocalError> {
    let item = dynamodb
        .get_item()
        .table_name(table)
        .key("orderId", AttributeValue::S(order_id.into()))
        .projection_expression("contentHash, #s")
        .expression_attribute_names("#s", "status")
        .consistent_read(true)
        .send()
        .await
        .map_err(aws_err("read the stored order"))?
        .item;
    let Some(item) = item else {
        return Ok(None);
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let status = text("status")
        .and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok())
        // A status this tool does not know is not FAILED: the message is a duplicate at most.
        .unwrap_or(OrderStatus::Accepted);
    Ok(Some(Existing {
        // An item without a hash (written by another system) matches no message.
        content_hash: text("contentHash").unwrap_or_else(|| FOREIGN_CONTENT_HASH.into()),
        status,
        version: 0,
    }))
}

/// The totals line: how many of each verdict, those that move first.
pub fn totals(listed: &[&Listed]) -> String {
    let mut by: BTreeMap<Verdict, usize> = BTreeMap::new();
    for l in listed {
        *by.entry(l.verdict).or_default() += 1;
    }
    let part = |moves: bool| {
        let parts: Vec<String> = by
            .iter()
            .filter(|(v, _)| v.moves() == moves)
            .map(|(v, n)| format!("{n} {}", v.label()))
            .collect();
        let n: usize = by
            .iter()
            .filter(|(v, _)| v.moves() == moves)
            .map(|(_, n)| n)
            .sum();
        if parts.is_empty() {
            format!("{n}")
        } else {
            format!("{n} ({})", parts.join(", "))
        }
    };
    format!("to redrive {}; staying {}", part(true), part(false))
}

/// What to do with the chosen messages.
pub enum Action<'a> {
    /// Send each to this queue, then delete it from the DLQ.
    MoveTo(&'a str),
    Delete,
}

/// Applies `action` to the DLQ messages whose ids are in `chosen`, each at most once, and to no
/// other: the others (arrived since the listing, or staying) are held hidden while the DLQ is
/// read and made visible again at the end, as is every chosen one not acted on when something
/// fails. A message is deleted only after its copy was sent; a sent one is deleted even when a
/// later send of its batch fails. Returns the ids acted on (deleted).
pub async fn act_on(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    chosen: &HashSet<String>,
    action: Action<'_>,
) -> Result<HashSet<String>, LocalError> {
    let mut done: HashSet<String> = HashSet::new();
    let mut held: Vec<String> = Vec::new();
    let result = async {
        loop {
            let messages = sqs
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(120)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(aws_err("receive from the DLQ"))?
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                return Ok::<(), LocalError>(());
            }
            let mut sent: Vec<(String, String)> = Vec::new();
            let mut failure = None;
            for m in &messages {
                let id = m.message_id.clone().unwrap_or_default();
                let handle = m.receipt_handle.clone().unwrap_or_default();
                if failure.is_some() || !chosen.contains(&id) || done.contains(&id) {
                    held.push(handle);
                    continue;
                }
                if let Action::MoveTo(queue_url) = action {
                    if let Err(e) = send_copy(sqs, queue_url, m).await {
                        failure = Some(e);
                        held.push(handle);
                        continue;
                    }
                }
                sent.push((id, handle));
            }
            if !sent.is_empty() {
                let entries = sent
                    .iter()
                    .enumerate()
                    .map(|(i, (_, h))| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(h)
                            .build()
                            .map_err(aws_err("delete entry"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = sqs
                    .delete_message_batch()
                    .queue_url(dlq_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(aws_err("delete from the DLQ"))?;
                let failed: HashSet<usize> = out
                    .failed
                    .iter()
                    .filter_map(|f| f.id.parse().ok())
                    .collect();
                for (i, (id, _)) in sent.into_iter().enumerate() {
                    if failed.contains(&i) {
                        // Sent but still in the DLQ: it shows again, and a redrive sends it
                        // again (the consumer drops the second copy as a duplicate).
                        tracing::warn!(message_id = %id, "a moved message could not be deleted from the DLQ");
                    } else {
                        done.insert(id);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
    .await;
    // The messages left alone are visible again at once (else after 120 s).
    let handles: Vec<&str> = held.iter().map(String::as_str).collect();
    let released =
        order_pipeline::adapters::sqs::change_visibility(sqs, dlq_url, &handles, 0).await;
    if let Err(e) = result {
        return Err(LocalError::Input(format!(
            "{} done, then: {}",
            done.len(),
            crate::one_line(&e)
        )));
    }
    released.map_err(|e| {
        LocalError::Input(format!(
            "the messages left in the DLQ are hidden for 120 s more: {e}"
        ))
    })?;
    Ok(done)
}

async fn send_copy(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    m: &Message,
) -> Result<(), LocalError> {
    let mut send = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(m.body.clone().unwrap_or_default());
    for (name, value) in m.message_attributes.clone().unwrap_or_default() {
        let attribute = MessageAttributeValue::builder()
            .data_type(value.data_type)
            .set_string_value(value.string_value)
            .set_binary_value(value.binary_value)
            .build()
            .map_err(aws_err("message attribute"))?;
        send = send.message_attributes(name, attribute);
    }
    send.send()
        .await
        .map_err(aws_err("send to the order queue"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: the command line's DLQ names are read off the stack's outputs.
    #[test]
    fn dlq_names_are_read_off_the_stacks_outputs() {
        assert_eq!(dlq_name("DeadLetterQueueUrl").as_deref(), Some("intake"));
        assert_eq!(
            dlq_name("OrderWatchDeadLetterQueueUrl").as_deref(),
            Some("order-watch")
        );
        assert_eq!(dlq_name("OrdersTableName"), None);
    }
}
