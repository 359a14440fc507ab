//! Accounting and the readable summary: every published message must end as a stored order, a
//! dropped duplicate or a DLQ message, and no order may be written twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use order_domain::{parse_body, OrderItem};
use order_pipeline::adapters::sqs::SqsDeadLetterQueue;
use order_pipeline::ports::queue::DeadLetterQueue;
use serde::Serialize;

use crate::alarm::Transition;
use crate::generate::Planned;
use crate::mapping::MappingStats;
use crate::resources::LocalStack;
use crate::{aws_err, Clients, LocalError};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DlqEntry {
    pub message_id: String,
    pub correlation_id: String,
    pub order_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub published: usize,
    pub orders_by_status: BTreeMap<String, usize>,
    pub stored_by_message: usize,
    pub duplicates_dropped: usize,
    /// Messages whose order is stored with their content, when the consumer runs as a process
    /// (which reports no per-record outcome): stored by this message or a duplicate of it.
    pub stored_or_duplicate: usize,
    pub dead_letters: Vec<DlqEntry>,
    /// Messages the DLQ held that its look could not read (hidden by another reader past the
    /// wait for them): the report is incomplete by that many.
    pub dlq_unread: u64,
    pub transitions: Vec<Transition>,
    /// Correlation ids of published messages that are nowhere: the pipeline lost them.
    pub unaccounted: Vec<String>,
    /// Order ids written more than once by the consumer.
    pub double_written: Vec<String>,
    /// Order ids whose stored content is not the content of the message that stored it, or of a
    /// message dropped as its duplicate (a duplicate of an order that is not stored counts here).
    pub wrong_content: Vec<String>,
    pub invocations: u64,
    pub invocation_errors: u64,
}

impl Summary {
    pub fn all_accounted_for(&self) -> bool {
        self.unaccounted.is_empty()
            && self.dlq_unread == 0
            && self.double_written.is_empty()
            && self.wrong_content.is_empty()
    }
}

pub async fn scan_orders(clients: &Clients, table: &str) -> Result<Vec<OrderItem>, LocalError> {
    scan_all(&clients.dynamodb, table)
        .await?
        .into_iter()
        .map(|raw| {
            serde_dynamo::from_item(raw)
                .map_err(|e| LocalError::Input(format!("stored item does not map: {e}")))
        })
        .collect()
}

/// Every item of a table, read as a parallel scan whose segments each fit in one page.
///
/// The emulator pages a plain scan by key order over items it keeps unordered, so a table of
/// more than one page (1 MB) loses items between pages. A segment that needs a second page makes
/// the scan start again with twice the segments. On AWS this reads the same items.
pub async fn scan_all(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<
    Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    LocalError,
> {
    let mut segments = 4;
    let mut segment = 0;
    let mut items = Vec::new();
    while segment < segments {
        let out = dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .segment(segment)
            .total_segments(segments)
            .send()
            .await
            .map_err(aws_err(format!("scan the {table} table")))?;
        if out.last_evaluated_key.is_some() && segments < 1_000_000 {
            // A segment needs a second page: start again with smaller segments.
            segments *= 2;
            segment = 0;
            items.clear();
            continue;
        }
        items.extend(out.items.unwrap_or_default());
        segment += 1;
    }
    Ok(items)
}

/// How long a full look at a DLQ hides its messages: long enough to read a large one in one
/// pass (a snapshot stops when its first messages are visible again).
pub const LIST_VISIBILITY_SECONDS: i32 = 900;

pub async fn collect(
    clients: &Clients,
    stack: &LocalStack,
    planned: &[Planned],
    mapping: &MappingStats,
    transitions: Vec<Transition>,
    outcomes_reported: bool,
) -> Result<Summary, LocalError> {
    let items = scan_orders(clients, &stack.table_name).await?;
    let by_id: HashMap<&str, &OrderItem> = items.iter().map(|i| (i.order_id.as_str(), i)).collect();
    let mut orders_by_status = BTreeMap::new();
    for i in &items {
        *orders_by_status
            .entry(i.status.as_str().to_string())
            .or_insert(0) += 1;
    }

    // A look at the DLQ that leaves every message in it.
    let dlq = SqsDeadLetterQueue::new(clients.sqs.clone(), stack.dlq_url.clone());
    let letters = dlq
        .snapshot(100_000, LIST_VISIBILITY_SECONDS)
        .await
        .map_err(|e| LocalError::Input(e.to_string()))?;
    // Every message read is hidden now: whatever else the DLQ holds was not read.
    let dlq_unread = crate::alarm::depth(&clients.sqs, &stack.dlq_url)
        .await?
        .saturating_sub(letters.len() as u64);
    dlq.release(&letters)
        .await
        .map_err(|e| LocalError::Input(e.to_string()))?;
    let dead_letters: Vec<DlqEntry> = letters
        .iter()
        .map(|l| {
            let parsed = parse_body(&l.body);
            let (order_id, reason) = match parsed.order {
                Err(e) => (None, format!("invalid: {e}")),
                Ok((order, _)) => {
                    let reason = match by_id.get(order.order_id.as_str()) {
                        Some(stored) if stored.content_hash != order.content_hash() => {
                            format!(
                                "conflict: orderId {} is stored with different content",
                                order.order_id
                            )
                        }
                        Some(stored) => {
                            format!("same order is stored ({})", stored.status.as_str())
                        }
                        None => "not stored".to_string(),
                    };
                    (Some(order.order_id), reason)
                }
            };
            DlqEntry {
                message_id: l.message_id.clone(),
                correlation_id: l.correlation_attribute.clone().unwrap_or_default(),
                order_id,
                reason,
            }
        })
        .collect();

    let in_dlq: HashSet<&str> = dead_letters
        .iter()
        .map(|d| d.correlation_id.as_str())
        .collect();
    let mut unaccounted = Vec::new();
    let mut stored_by_message = 0;
    let mut duplicates_dropped = 0;
    let mut stored_or_duplicate = 0;
    let mut accepted_per_order: HashMap<String, usize> = HashMap::new();
    let mut wrong_content = Vec::new();
    for p in planned {
        let last = mapping
            .outcomes
            .get(&p.correlation_id)
            .and_then(|o| o.last())
            .map(String::as_str);
        match last {
            Some("accepted") | Some("reaccepted") => {
                stored_by_message += 1;
                if let Some(id) = &p.order_id {
                    *accepted_per_order.entry(id.clone()).or_default() +=
                        usize::from(last == Some("accepted"));
                    let hash = parse_body(&p.body)
                        .order
                        .ok()
                        .map(|(o, _)| o.content_hash());
                    if by_id.get(id.as_str()).map(|i| Some(i.content_hash.clone())) != Some(hash) {
                        wrong_content.push(id.clone());
                    }
                }
            }
            Some("duplicate") => {
                duplicates_dropped += 1;
                // Dropped as a duplicate: the same order must be stored.
                let hash = parse_body(&p.body)
                    .order
                    .ok()
                    .map(|(o, _)| (o.order_id.clone(), o.content_hash()));
                if let Some((id, hash)) = hash {
                    if by_id.get(id.as_str()).map(|i| &i.content_hash) != Some(&hash) {
                        wrong_content.push(id);
                    }
                }
            }
            _ if in_dlq.contains(p.correlation_id.as_str()) => {}
            // A process reports no outcome per record: the table says whether it is stored.
            None if !outcomes_reported
                && parse_body(&p.body).order.ok().is_some_and(|(o, _)| {
                    by_id
                        .get(o.order_id.as_str())
                        .is_some_and(|i| i.content_hash == o.content_hash())
                }) =>
            {
                stored_or_duplicate += 1
            }
            _ => unaccounted.push(p.correlation_id.clone()),
        }
    }
    let mut double_written: Vec<String> = accepted_per_order
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect();
    double_written.sort();
    Ok(Summary {
        published: planned.len(),
        orders_by_status,
        stored_by_message,
        duplicates_dropped,
        stored_or_duplicate,
        dead_letters,
        dlq_unread,
        transitions,
        unaccounted,
        double_written,
        wrong_content,
        invocations: mapping.invocations,
        invocation_errors: mapping.invocation_errors,
    })
}

/// "1 message", "2 messages".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary as a person reads it.
pub fn render(s: &Summary, stack: &LocalStack, log_path: &str) -> String {
    render_with(s, stack, log_path, true)
}

/// The summary of a `run`: what the pipeline holds, without accounting for published messages
/// (the runner does not know what others published).
pub fn render_run(s: &Summary, stack: &LocalStack, log_path: &str) -> String {
    render_with(s, stack, log_path, false)
}

fn render_with(s: &Summary, stack: &LocalStack, log_path: &str, accounting: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nOrder pipeline: summary");
    if accounting {
        let _ = writeln!(out, "  published            {} messages", s.published);
    }
    let statuses: Vec<String> = s
        .orders_by_status
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let total: usize = s.orders_by_status.values().sum();
    let _ = writeln!(
        out,
        "  orders in the table  {total} ({})",
        statuses.join(", ")
    );
    let _ = writeln!(out, "  duplicates dropped   {}", s.duplicates_dropped);
    let _ = writeln!(
        out,
        "  consumer invocations {} ({} failed as a whole)",
        s.invocations, s.invocation_errors
    );
    let _ = writeln!(
        out,
        "  dead-letter queue    {}",
        plural(s.dead_letters.len(), "message", "messages")
    );
    for d in s.dead_letters.iter().take(20) {
        let _ = writeln!(
            out,
            "    - {:<22} {:<14} {}",
            d.correlation_id,
            d.order_id.as_deref().unwrap_or("-"),
            d.reason
        );
    }
    if s.dead_letters.len() > 20 {
        let _ = writeln!(out, "    ... and {} more", s.dead_letters.len() - 20);
    }
    let _ = writeln!(out, "  alarm transitions");
    for t in s.transitions.iter().filter(|t| t.invoked) {
        let count = |key: &str| {
            t.summary
                .as_ref()
                .and_then(|v| v[key].as_array())
                .map_or(0, Vec::len)
        };
        let what = match (&t.summary, &t.error) {
            (_, Some(e)) => format!("dlq-alarm failed: {e}"),
            (Some(sum), None) if t.to == "ALARM" => format!(
                "dlq-alarm read {} of the DLQ's {}{}: {} marked FAILED, {} already stored, {} conflicts, {} unparseable",
                sum["messagesSeen"].as_u64().unwrap_or(0),
                sum["depth"].as_u64().map_or("?".to_string(), |d| d.to_string()),
                match sum["heldElsewhere"].as_u64().unwrap_or(0) {
                    0 => String::new(),
                    n => format!(" ({n} held by another reader)"),
                },
                count("markedFailed"),
                count("alreadyStored"),
                count("conflicts"),
                count("unparseable")
            ),
            (Some(_), None) if t.from == "ALARM" => "dlq-alarm published the recovery".to_string(),
            _ => "dlq-alarm logged the state".to_string(),
        };
        let _ = writeln!(
            out,
            "    {:>17} -> {:<5} at {}  {what}",
            t.from,
            t.to,
            t.at.format("%H:%M:%S")
        );
    }
    let accounted = s.published - s.unaccounted.len();
    if accounting {
        let _ = writeln!(
            out,
            "  accounting           {accounted} of {} messages accounted for: {} stored, {} duplicates,{} {} in the DLQ",
            s.published,
            s.stored_by_message,
            s.duplicates_dropped,
            if s.stored_or_duplicate > 0 {
                format!(" {} stored or duplicates (the bootstraps report no per-record outcome),", s.stored_or_duplicate)
            } else {
                String::new()
            },
            s.dead_letters.len()
        );
    }
    if s.dlq_unread > 0 {
        let _ = writeln!(
            out,
            "  PROBLEM: the DLQ holds {} message(s) its look could not read (hidden by another reader): the accounting above is short by them",
            s.dlq_unread
        );
    }
    if !s.all_accounted_for() {
        let _ = writeln!(
            out,
            "  PROBLEM: {} unaccounted {:?}, {} written twice {:?}, {} with wrong content {:?}",
            s.unaccounted.len(),
            s.unaccounted.iter().take(5).collect::<Vec<_>>(),
            s.double_written.len(),
            s.double_written.iter().take(5).collect::<Vec<_>>(),
            s.wrong_content.len(),
            s.wrong_content.iter().take(5).collect::<Vec<_>>()
        );
    }
    let _ = writeln!(out, "\nWhere to look next");
    let _ = writeln!(out, "  function logs (JSON lines): {log_path}");
    let _ = writeln!(out, "    e.g. grep '\"level\":\"WARN\"' {log_path} | head   (each line names correlation_id and order_id)");
    let lifetime = if accounting {
        "stopped when the demo ends; `make run` keeps one up"
    } else {
        "stopped now"
    };
    let _ = writeln!(
        out,
        "  emulator:                   {} ({lifetime})",
        stack.endpoint
    );
    let _ = writeln!(
        out,
        "  the contract:               docs/contract.md; operating it: docs/operations.md"
    );
    out
}

/// The lifecycle's end state for a person: orders by status, the provider's charges and the
/// customers' notifications.
pub fn render_lifecycle(
    items: &[OrderItem],
    ledger: &[crate::provider::LedgerEntry],
    notifications: &[crate::observe::Received],
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
    for i in items {
        *by_status.entry(i.status.as_str()).or_default() += 1;
    }
    let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let _ = writeln!(out, "\nOrders by final status: {}", statuses.join(", "));
    for i in items
        .iter()
        .filter(|i| i.status == order_domain::OrderStatus::PaymentFailed)
    {
        let why = i
            .payment
            .as_ref()
            .and_then(|p| p.reason.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  PAYMENT_FAILED {:<20} {} (its reservation went back to available)",
            i.order_id, why
        );
    }
    for i in items.iter().filter(|i| {
        i.payment
            .as_ref()
            .and_then(|p| p.reason.as_deref())
            .is_some_and(|r| r.starts_with("found by lookup"))
    }) {
        let _ = writeln!(
            out,
            "  {} {:<20} its payment's answer was lost; the charge was found by lookup ({})",
            i.status.as_str(),
            i.order_id,
            i.payment
                .as_ref()
                .and_then(|p| p.payment_id.as_deref())
                .unwrap_or("")
        );
    }
    let approved = ledger.iter().filter(|e| e.approved).count();
    let _ = writeln!(
        out,
        "Charges (the payment provider's ledger): {approved} approved, {} declined, {} calls answered from the ledger (retries by idempotency key), {} decided and answered too late, {} decided and their answers dropped (unknown outcomes for the payment stage)",
        ledger.len() - approved,
        ledger.iter().map(|e| u64::from(e.calls.saturating_sub(1))).sum::<u64>(),
        ledger.iter().filter(|e| e.late).count(),
        ledger.iter().filter(|e| e.dropped).count()
    );
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for n in notifications {
        *kinds.entry(n.event_type.as_str()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "Customer notifications: {} ({})",
        notifications.len(),
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        }
    );
    for n in notifications.iter().take(5) {
        let text = serde_json::from_str::<serde_json::Value>(&n.body)
            .ok()
            .and_then(|v| v["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<36} {text}",
            n.dedupe_id.as_deref().unwrap_or("-")
        );
    }
    out
}
