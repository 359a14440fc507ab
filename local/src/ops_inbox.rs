//! The local ops inbox: a queue subscribed to the ops topic, standing in for the email or pager
//! the ops topic reaches on AWS. It gets what operators are sent: the alarms' notifications
//! (the runner publishes each ALARM and OK as CloudWatch does) and dlq-alarm's summaries.
//! `orders ops` reads it, so the runbook's "read the page" step can be rehearsed.

use chrono::{DateTime, Utc};

use crate::{aws_err, Clients, LocalError};

/// The stack output the local stack adds for it (in stack.json's outputs).
pub const OUTPUT: &str = "OpsInboxQueueUrl";

/// A new queue subscribed to `topic_arn` (SNS's envelope kept: it carries the subject).
pub async fn subscribe(
    clients: &Clients,
    topic_arn: &str,
    name: &str,
) -> Result<String, LocalError> {
    crate::observe::subscribed_queue(clients, topic_arn, name, false).await
}

/// One notification the ops topic sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub at: Option<DateTime<Utc>>,
    pub subject: String,
    pub message: String,
}

/// Reads every page in the inbox, oldest first; `keep`: leave them there, else they are
/// deleted once read (an inbox marked read).
pub async fn read(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    keep: bool,
) -> Result<Vec<Page>, LocalError> {
    let mut pages = Vec::new();
    let mut handles = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await
            .map_err(aws_err("read the ops inbox"))?
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for m in got {
            let envelope: serde_json::Value =
                serde_json::from_str(m.body.as_deref().unwrap_or_default()).unwrap_or_default();
            pages.push(Page {
                at: envelope["Timestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)),
                subject: envelope["Subject"]
                    .as_str()
                    .unwrap_or("(no subject)")
                    .to_string(),
                message: envelope["Message"]
                    .as_str()
                    .map_or_else(|| m.body.clone().unwrap_or_default(), str::to_string),
            });
            handles.push(m.receipt_handle.unwrap_or_default());
        }
    }
    let handles: Vec<&str> = handles.iter().map(String::as_str).collect();
    if keep {
        order_pipeline::adapters::sqs::change_visibility(sqs, queue_url, &handles, 0)
            .await
            .map_err(|e| LocalError::Input(format!("leave the pages in the ops inbox: {e}")))?;
    } else {
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*h)
                        .build()
                        .map_err(aws_err("delete entry"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            sqs.delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(aws_err("mark the ops inbox read"))?;
        }
    }
    pages.sort_by_key(|p| p.at);
    Ok(pages)
}

/// The pages for a person: time, subject, then the message (an alarm's description and reason
/// picked out of CloudWatch's JSON; dlq-alarm's summary as it is).
pub fn render(pages: &[Page]) -> String {
    let mut out = String::new();
    for p in pages {
        let at =
            p.at.map_or_else(|| "-".to_string(), |t| t.format("%H:%M:%S").to_string());
        out.push_str(&format!("{at}  {}\n", p.subject));
        let json: serde_json::Value = serde_json::from_str(&p.message).unwrap_or_default();
        if let Some(description) = json["AlarmDescription"].as_str() {
            out.push_str(&format!("    {description}\n"));
            if let Some(reason) = json["NewStateReason"].as_str() {
                out.push_str(&format!("    ({reason})\n"));
            }
        } else {
            for line in p.message.lines().take(40) {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}
