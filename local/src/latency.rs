//! How long orders took, from the timestamps each stage writes on the order: the whole way
//! (stored to terminal) and each step, as p50, p99 and the largest. A step's time is the hop to
//! the stage's queue (the stream, order-events, SNS), its queue's wait (the batching window, the
//! messages ahead) and the stage's work; the intake's starts at the publish (an order that did
//! not give its own `createdAt` is created when the API or the intake first saw it). The queue's
//! wait and the stage's work are measured apart by the event source mappings
//! ([`render_queues`]).

use chrono::{DateTime, Utc};
use order_domain::{OrderItem, OrderStatus};

/// One step of an order's way, between two of its timestamps.
type Stamp = fn(&OrderItem) -> Option<&str>;

/// The steps, in lifecycle order: (name, from, to).
pub const STEPS: &[(&str, Stamp, Stamp)] = &[
    // An order that gave its own createdAt was created before it was published.
    (
        "intake (published -> stored)",
        |i| (!i.created_at_given).then_some(i.created_at.as_str()),
        |i| i.accepted_at.as_deref(),
    ),
    (
        "inventory (-> reserved)",
        |i| i.accepted_at.as_deref(),
        |i| i.reserved_at.as_deref(),
    ),
    (
        "inventory (-> rejected)",
        |i| i.accepted_at.as_deref(),
        |i| i.rejected_at.as_deref(),
    ),
    (
        "payment (-> paid)",
        |i| i.reserved_at.as_deref(),
        |i| i.paid_at.as_deref(),
    ),
    (
        "notification (-> completed)",
        |i| i.paid_at.as_deref(),
        |i| i.completed_at.as_deref(),
    ),
];

/// p50, p99 and the largest, in seconds.
pub type Quantiles = (f64, f64, f64);

pub fn at(stamp: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// p50, p99 and the largest of `values`; `None` when there are none.
pub fn quantiles(mut values: Vec<f64>) -> Option<Quantiles> {
    values.sort_by(f64::total_cmp);
    let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (!values.is_empty()).then(|| (pick(0.5), pick(0.99), pick(1.0)))
}

/// `quantiles` as text ("p50 1.00 s, p99 2.00 s, max 3.00 s"), "-" for none.
fn describe(quantiles: Option<Quantiles>) -> String {
    match quantiles {
        Some((p50, p99, max)) => format!("p50 {p50:.2} s, p99 {p99:.2} s, max {max:.2} s"),
        None => "-".into(),
    }
}

/// When an order reached its terminal status ([`OrderItem::status_reached_at`]); `None` while
/// it is not terminal.
pub fn ended_at(i: &OrderItem) -> Option<DateTime<Utc>> {
    if !order_domain::is_terminal(i.status) {
        return None;
    }
    at(i.status_reached_at()?)
}

/// The orders' latencies.
pub struct Latency {
    /// Stored to COMPLETED.
    pub completed: Option<Quantiles>,
    /// Stored to terminal, whatever the end.
    pub terminal: Option<Quantiles>,
    pub steps: Vec<(&'static str, Option<Quantiles>)>,
}

impl Latency {
    pub fn of(items: &[OrderItem]) -> Self {
        let lifetime = |i: &OrderItem| Some(seconds(ended_at(i)? - at(i.accepted_at.as_deref()?)?));
        Latency {
            completed: quantiles(
                items
                    .iter()
                    .filter(|i| i.status == OrderStatus::Completed)
                    .filter_map(lifetime)
                    .collect(),
            ),
            terminal: quantiles(items.iter().filter_map(lifetime).collect()),
            steps: STEPS
                .iter()
                .map(|(name, from, to)| {
                    let spans = items
                        .iter()
                        .filter_map(|i| Some(seconds(at(to(i)?)? - at(from(i)?)?)))
                        .collect();
                    (*name, quantiles(spans))
                })
                .collect(),
        }
    }

    /// The figures as lines: the whole way, then each step with its share of the completed
    /// path's p50s (intake, reservation, payment, notification).
    pub fn render(&self) -> String {
        let q = |q: &Option<Quantiles>| describe(*q);
        let completed_path: f64 = self
            .steps
            .iter()
            .filter(|(name, _)| !name.contains("rejected"))
            .filter_map(|(_, q)| q.map(|(p50, _, _)| p50))
            .sum();
        let mut out = format!(
            "  stored -> COMPLETED          {}\n  stored -> terminal (any end)  {}\n",
            q(&self.completed),
            q(&self.terminal)
        );
        for (name, quantiles) in &self.steps {
            let share = match quantiles {
                Some((p50, _, _)) if completed_path > 0.0 && !name.contains("rejected") => {
                    format!(
                        " ({:.0}% of the completed path's p50s)",
                        100.0 * p50 / completed_path
                    )
                }
                _ => String::new(),
            };
            out.push_str(&format!("    {name:<28}  {}{share}\n", q(quantiles)));
        }
        out
    }
}

/// Each queue-fed function's queue wait (a record's first receive: from its `SentTimestamp` to
/// the invocation that carried it) and invocation time (the stage's work on a batch), as lines;
/// `rows` are (function, waits, invocations) in seconds, those without records left out.
pub fn render_queues(rows: &[(&str, Vec<f64>, Vec<f64>)]) -> String {
    let q = |values: &[f64]| describe(quantiles(values.to_vec()));
    let mut out = String::new();
    for (name, waits, handling) in rows
        .iter()
        .filter(|(_, w, h)| !w.is_empty() || !h.is_empty())
    {
        out.push_str(&format!(
            "    {name:<18} queue wait {}; invocation {}\n",
            q(waits),
            q(handling)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects (issue 33, make bench's queue wait and stage work): each function's line gives
    /// the p50, p99 and largest of its waits and of its invocations, and a function without
    /// records has no line.
    #[test]
    fn each_fed_function_gets_its_queue_wait_and_invocation_quantiles() {
        let waits: Vec<f64> = (1..=100).map(f64::from).collect();
        let text = render_queues(&[
            ("inventory", waits, vec![0.25, 0.5]),
            ("refund", Vec::new(), Vec::new()),
        ]);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("inventory")
                && text.contains("queue wait p50 51.00 s, p99 99.00 s, max 100.00 s")
                && text.contains("invocation p50 0.50 s, p99 0.50 s, max 0.50 s"),
            "{text}"
        );
    }
}
