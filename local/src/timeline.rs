//! One order's timeline: the lifecycle steps its Orders item records (`acceptedAt`,
//! `reservedAt`, ... from the lifecycle table) and every function log line that names the order
//! or its correlation id, in time order, each with its offset from the first. Locally the lines
//! come from the runner's log file; against AWS the steps come from the table, and the command
//! prints the CloudWatch Logs Insights query that finds the same lines.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use order_domain::TRANSITIONS;

use crate::{aws_err, LocalError};

/// One thing that happened to the order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// The function (`service`) that logged it, or `table` for a recorded step.
    pub source: String,
    pub level: String,
    pub what: String,
}

/// The order's item, raw (None: no such order).
pub async fn read_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    order_id: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, LocalError> {
    Ok(dynamodb
        .get_item()
        .table_name(table)
        .key("orderId", AttributeValue::S(order_id.into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(aws_err("read the order"))?
        .item)
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// The item's correlation id (every lifecycle event and log line of the order carries it).
pub fn correlation_id(item: &HashMap<String, AttributeValue>) -> Option<String> {
    text(item, "correlationId").map(str::to_string)
}

/// The lifecycle steps the item records, each with the status it led to.
pub fn steps(item: &HashMap<String, AttributeValue>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    TRANSITIONS
        .iter()
        .filter(|t| seen.insert(t.step))
        .filter_map(|t| {
            let at = DateTime::parse_from_rfc3339(text(item, t.step)?).ok()?;
            Some(Entry {
                at: at.with_timezone(&Utc),
                source: "table".into(),
                level: "STEP".into(),
                what: format!("{} ({})", t.step, t.to.as_str()),
            })
        })
        .collect()
}

/// The lines of the JSON log file `path` that name `order_id` or `correlation` (metric lines
/// and lines of other orders left out).
pub fn log_lines(
    path: &Path,
    order_id: &str,
    correlation: Option<&str>,
) -> Result<Vec<Entry>, LocalError> {
    let file = std::fs::File::open(path)
        .map_err(|e| LocalError::Input(format!("read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { continue };
        // Cheap first: most lines are about other orders.
        if !line.contains(order_id) && !correlation.is_some_and(|c| line.contains(c)) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        // Its order, or no order named and its correlation id (a client may reuse a correlation
        // id for several orders: their lines name their own order).
        let names = match v["order_id"].as_str() {
            Some(id) => id == order_id,
            None => correlation.is_some() && v["correlation_id"].as_str() == correlation,
        };
        let Some(at) = v["timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        if !names {
            continue;
        }
        let mut what = v["message"].as_str().unwrap_or_default().to_string();
        for key in ["outcome", "reason", "error", "attempt", "receive_count"] {
            if let Some(value) = v.get(key).filter(|x| !x.is_null()) {
                let shown = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                what.push_str(&format!(" {key}={shown}"));
            }
        }
        out.push(Entry {
            at: at.with_timezone(&Utc),
            source: v["service"].as_str().unwrap_or("-").to_string(),
            level: v["level"].as_str().unwrap_or("-").to_string(),
            what,
        });
    }
    Ok(out)
}

/// The entries in time order (a recorded step before a log line of the same instant), each with
/// its offset from the first.
pub fn render(order_id: &str, status: &str, mut entries: Vec<Entry>) -> String {
    entries.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then((a.source != "table").cmp(&(b.source != "table")))
    });
    let mut out = format!("order {order_id}: {status}\n");
    let Some(first) = entries.first().map(|e| e.at) else {
        out.push_str("  nothing recorded\n");
        return out;
    };
    for e in &entries {
        out.push_str(&format!(
            "  {} {:>+8} ms  {:<16} {:<5} {}\n",
            e.at.format("%H:%M:%S%.3f"),
            (e.at - first).num_milliseconds(),
            e.source,
            e.level,
            e.what
        ));
    }
    out
}

/// The CloudWatch Logs Insights query that finds the order's lines in the stack's log groups.
pub fn insights_query(order_id: &str, correlation: Option<&str>) -> String {
    let mut filter = format!("order_id = \"{order_id}\"");
    if let Some(c) = correlation {
        filter.push_str(&format!(" or correlation_id = \"{c}\""));
    }
    format!("fields @timestamp, service, level, message, outcome, reason, error, xray_trace_id | filter {filter} | sort @timestamp asc")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: the timeline puts the table's steps and the order's log lines (matched by
    /// order id, or by correlation id when a line names no order; never another order's, even
    /// one sharing the correlation id) in time order with offsets.
    #[test]
    fn the_timeline_merges_steps_and_the_orders_log_lines_in_time_order() {
        let dir = std::env::temp_dir().join(format!("timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("functions.log");
        std::fs::write(
            &log,
            [
                r#"{"timestamp":"2026-12-07T10:00:00.120Z","service":"payment","level":"INFO","message":"payment approved","order_id":"O1","correlation_id":"c1"}"#,
                r#"{"timestamp":"2026-12-07T10:00:00.050Z","service":"inventory","level":"WARN","message":"record failed","correlation_id":"c1","reason":"throttled"}"#,
                r#"{"timestamp":"2026-12-07T10:00:00.060Z","service":"inventory","level":"INFO","message":"reserved","order_id":"O12","correlation_id":"c12"}"#,
                r#"{"timestamp":"2026-12-07T10:00:00.070Z","service":"payment","level":"INFO","message":"paid","order_id":"O13","correlation_id":"c1"}"#,
                r#"{"OrdersAccepted":1.0,"service":"order-consumer"}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let mut item = HashMap::new();
        for (k, v) in [
            ("acceptedAt", "2026-12-07T10:00:00.000Z"),
            ("reservedAt", "2026-12-07T10:00:00.080Z"),
            ("correlationId", "c1"),
        ] {
            item.insert(k.to_string(), AttributeValue::S(v.into()));
        }
        let mut entries = steps(&item);
        entries.extend(log_lines(&log, "O1", correlation_id(&item).as_deref()).unwrap());
        let text = render("O1", "PAID", entries);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[1].contains("+0 ms") && lines[1].contains("acceptedAt (ACCEPTED)"),
            "{text}"
        );
        assert!(
            lines[2].contains("+50 ms") && lines[2].contains("reason=throttled"),
            "{text}"
        );
        assert!(lines[3].contains("reservedAt (RESERVED)"), "{text}");
        assert!(
            lines[4].contains("+120 ms") && lines[4].contains("payment approved"),
            "{text}"
        );
        assert!(
            !text.contains("O12") && !text.contains("paid"),
            "another order's line (its own id, or the same correlation id): {text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
