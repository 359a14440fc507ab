//! Stuck orders, as the Orders table has them: every order not ended (not `COMPLETED`,
//! `REJECTED`, `PAYMENT_FAILED` or `FAILED`) longer than the stuck-order age after it was
//! accepted, each with its status, its age, its last step and the stage to look at. It reads the
//! table, not the stuck-order list (the order-watch DLQ): the list's letters are in flight most of
//! the time (its handler looks at each again every minute), and an order whose watch message was
//! lost is stuck too. It is a scan: every item is read once (a read unit per 4 KB, strongly
//! consistent), which is for an operator's look, not for a schedule.

use std::time::Duration;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use order_domain::{OrderItem, TRANSITIONS};
use order_pipeline::registry::waiting_on;
use order_pipeline::stages::watch::{age, has_ended};
use serde::Serialize;

use crate::report::scan_all;
use crate::LocalError;

/// One stuck order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckRow {
    pub order_id: String,
    pub status: String,
    /// Since it was accepted.
    pub age_seconds: u64,
    /// Its last lifecycle step and when it happened (`paidAt 2026-...`).
    pub last_step: String,
    /// The stages that act on an order in its status: where to look.
    pub look_at: Vec<&'static str>,
}

/// The stuck orders of the Orders table `table`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stuck {
    /// Every order not ended `older_than` after it was accepted, oldest first.
    pub rows: Vec<StuckRow>,
    /// Items that do not map to an order (written by another system, say), with why: listed,
    /// never counted as stuck or not.
    pub unreadable: Vec<String>,
}

/// Every order of the Orders table `table` not ended `older_than` after it was accepted (its
/// age as the watch counts it: since `acceptedAt`, else `createdAt`; unreadable counts as old).
pub async fn list(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    older_than: Duration,
) -> Result<Stuck, LocalError> {
    let now = Utc::now();
    let mut stuck = Stuck::default();
    for raw in scan_all(dynamodb, table).await? {
        let key = raw
            .get("orderId")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "(no orderId)".into());
        let last_step = last_step(&raw);
        let order: OrderItem = match serde_dynamo::from_item(raw) {
            Ok(order) => order,
            Err(e) => {
                stuck.unreadable.push(format!("{key}: {e}"));
                continue;
            }
        };
        if has_ended(order.status) {
            continue;
        }
        if age(&order, now).is_none_or(|a| a >= older_than) {
            stuck.rows.push(StuckRow {
                order_id: order.order_id.clone(),
                status: order.status.as_str().into(),
                age_seconds: age(&order, now).map_or(0, |a| a.as_secs()),
                last_step,
                look_at: waiting_on(order.status),
            });
        }
    }
    stuck.rows.sort_by(|a, b| {
        b.age_seconds
            .cmp(&a.age_seconds)
            .then(a.order_id.cmp(&b.order_id))
    });
    Ok(stuck)
}

/// The item's latest lifecycle step and its time (`paidAt 2026-...`), read from the step
/// attributes the lifecycle table names; `-` when it has none.
fn last_step(item: &HashMap<String, AttributeValue>) -> String {
    TRANSITIONS
        .iter()
        .filter_map(|t| Some((item.get(t.step)?.as_s().ok()?, t.step)))
        .max()
        .map_or_else(|| "-".to_string(), |(at, step)| format!("{step} {at}"))
}

/// The stuck orders as a table, one order a line, then the unreadable items.
/// The runner's closing lines: how many orders had not ended `after` their acceptance, and the
/// table of them when there are any.
pub fn report(stuck: &Stuck, after: std::time::Duration) -> String {
    let mut out = format!(
        "\nStuck orders (not ended {} s after they were accepted): {}\n",
        after.as_secs(),
        stuck.rows.len()
    );
    if !stuck.rows.is_empty() || !stuck.unreadable.is_empty() {
        out.push_str(&table(stuck));
    }
    out
}

pub fn table(stuck: &Stuck) -> String {
    let rows = &stuck.rows;
    let mut out = format!(
        "{:<28} {:<15} {:>8}  {:<38} {}\n",
        "order", "status", "age (s)", "last step", "look at"
    );
    for r in rows {
        let look_at = if r.look_at.is_empty() {
            "its log lines (correlation id)".to_string()
        } else {
            format!("the {} stage", r.look_at.join(" or "))
        };
        out.push_str(&format!(
            "{:<28} {:<15} {:>8}  {:<38} {}\n",
            r.order_id, r.status, r.age_seconds, r.last_step, look_at
        ));
    }
    for item in &stuck.unreadable {
        out.push_str(&format!("unreadable item {item}\n"));
    }
    out
}
