//! order-consumer, the intake stage: one order message in, the order stored exactly once.
//!
//! Each record is parsed, validated and written with conditional writes that give the
//! contract's outcomes (new, duplicate, conflict, re-accepted after FAILED). The batch around
//! it (concurrency, panics, the deadline, the partial batch response, failing the invocation
//! when the store is down) is [`crate::runtime::worker::SqsWorker`]'s.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, TimeZone, Utc};
use order_domain::{
    consumer_decision, correlation_id, format_timestamp, parse_body, ConsumerDecision,
    InvalidOrder, OrderItem, Provenance,
};

use crate::ports::orders::{CreateResult, OrderStore, Reaccept};
use crate::ports::PortError;
use crate::runtime::worker::{Disposition, Outcome, RecordHandler};

/// How often a conditional write is retried after losing a race, before the record is failed.
const RACE_ATTEMPTS: usize = 3;

/// Latencies from clocks that disagree by more than this (a fixture's old SentTimestamp, a
/// publisher's skewed clock) are not recorded: they would swamp the metric.
const MAX_PLAUSIBLE_LATENCY_MS: i64 = 24 * 3600 * 1000;

/// The intake's record handler.
pub struct OrderConsumer<S> {
    store: S,
}

/// The outcome of one order message, one variant per row of the contract's table.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerOutcome {
    /// Stored with status ACCEPTED. `reaccepted` when it replaced a FAILED mark after a redrive.
    Accepted {
        reaccepted: bool,
        latency_ms: Option<f64>,
    },
    /// The same order is already stored: nothing written, message deleted.
    Duplicate,
    /// A different order uses this id (or another system's item): nothing written, record failed
    /// (goes to the DLQ).
    Conflict {
        order_id: String,
        /// The stored item is not this pipeline's (no contentHash/status/version).
        by_another_system: bool,
    },
    /// The payload is not an acceptable order: record failed (goes to the DLQ).
    Invalid(InvalidOrder),
    /// The store failed: record failed, SQS retries it.
    StoreFailed(PortError),
}

impl Outcome for ConsumerOutcome {
    fn label(&self) -> &'static str {
        match self {
            ConsumerOutcome::Accepted {
                reaccepted: false, ..
            } => "accepted",
            ConsumerOutcome::Accepted {
                reaccepted: true, ..
            } => "reaccepted",
            ConsumerOutcome::Duplicate => "duplicate",
            ConsumerOutcome::Conflict { .. } => "conflict",
            ConsumerOutcome::Invalid(_) => "invalid",
            ConsumerOutcome::StoreFailed(_) => "store_failed",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            ConsumerOutcome::Accepted { .. } | ConsumerOutcome::Duplicate => Disposition::Done,
            ConsumerOutcome::Conflict {
                order_id,
                by_another_system: false,
            } => Disposition::Refused {
                reason: format!("conflict: orderId {order_id} is stored with different content; the stored order is kept"),
                action: "the publisher reused an order id; the message is kept in the DLQ for review",
            },
            ConsumerOutcome::Conflict {
                order_id,
                by_another_system: true,
            } => Disposition::Refused {
                reason: format!("conflict: orderId {order_id} is stored by another system (the item has no contentHash, status or version); it is never overwritten"),
                action: "find who writes to the Orders table besides this pipeline; the message is kept in the DLQ for review",
            },
            ConsumerOutcome::Invalid(invalid) => Disposition::Refused {
                reason: format!("invalid order: {invalid}"),
                action: "fix the publisher's payload; the message is kept in the DLQ",
            },
            ConsumerOutcome::StoreFailed(e) => Disposition::Unavailable {
                reason: format!("store failed: {e}"),
                action: "SQS retries the record; if it persists check DynamoDB throttling and the table's health",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            ConsumerOutcome::Accepted { .. } => Some("OrdersAccepted"),
            ConsumerOutcome::Duplicate => Some("OrdersDuplicate"),
            ConsumerOutcome::Conflict { .. } => Some("OrdersConflict"),
            ConsumerOutcome::Invalid(_) => Some("OrdersInvalid"),
            ConsumerOutcome::StoreFailed(_) => None,
        }
    }

    fn latency(&self) -> Option<(&'static str, f64)> {
        match self {
            ConsumerOutcome::Accepted {
                latency_ms: Some(ms),
                ..
            } => Some(("OrderLatency", *ms)),
            _ => None,
        }
    }
}

impl<S: OrderStore> OrderConsumer<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The conditional writes. A lost race (the item changed between reading and writing) is
    /// decided again on the fresh state, a few times.
    async fn write(&self, item: &OrderItem) -> Result<ConsumerOutcome, PortError> {
        for _ in 0..RACE_ATTEMPTS {
            let existing = match self.store.create(item).await? {
                CreateResult::Created => return Ok(accepted(false)),
                CreateResult::Exists(existing) => existing,
            };
            match consumer_decision(Some(&existing), &item.content_hash) {
                ConsumerDecision::Duplicate => return Ok(ConsumerOutcome::Duplicate),
                ConsumerDecision::Conflict { .. } => {
                    return Ok(ConsumerOutcome::Conflict {
                        order_id: item.order_id.clone(),
                        by_another_system: existing.is_foreign(),
                    })
                }
                ConsumerDecision::Create => continue,
                ConsumerDecision::Reaccept { expected_version } => {
                    let reaccept = Reaccept {
                        order_id: item.order_id.clone(),
                        content_hash: item.content_hash.clone(),
                        expected_version,
                        accepted_at: item
                            .accepted_at
                            .clone()
                            .unwrap_or_else(|| format_timestamp(Utc::now())),
                        source_message_id: item.source_message_id.clone(),
                        correlation_id: item.correlation_id.clone(),
                    };
                    if self.store.reaccept(&reaccept).await? {
                        return Ok(accepted(true));
                    }
                }
            }
        }
        Err(PortError::Contention(format!(
            "order {} kept changing during {RACE_ATTEMPTS} conditional writes",
            item.order_id
        )))
    }
}

fn accepted(reaccepted: bool) -> ConsumerOutcome {
    ConsumerOutcome::Accepted {
        reaccepted,
        latency_ms: None,
    }
}

impl<S: OrderStore> RecordHandler for OrderConsumer<S> {
    type Outcome = ConsumerOutcome;

    async fn handle(&self, record: &SqsMessage) -> ConsumerOutcome {
        let span = tracing::Span::current();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let parsed = parse_body(record.body.as_deref().unwrap_or_default());
        let attribute = record
            .message_attributes
            .get("correlationId")
            .and_then(|a| a.string_value.as_deref());
        let envelope = parsed.envelope.as_ref();
        let sns_id = envelope.and_then(|e| e.sns_message_id.as_deref());
        let envelope_attr = envelope.and_then(|e| e.correlation_id.as_deref());
        let correlation = correlation_id(attribute.or(envelope_attr), sns_id, message_id);
        span.record("correlation_id", correlation);

        let (order, form) = match parsed.order {
            Ok(ok) => ok,
            Err(invalid) => return ConsumerOutcome::Invalid(invalid),
        };
        span.record("order_id", order.order_id.as_str());
        let now = Utc::now();
        let sent_at = sent_timestamp(record).unwrap_or(now);
        let provenance = Provenance {
            message_id: message_id.to_string(),
            correlation_id: correlation.to_string(),
            sent_at,
        };
        let item = OrderItem::accepted(order, provenance, now);
        let outcome = match self.write(&item).await {
            Ok(outcome) => outcome,
            Err(e) => return ConsumerOutcome::StoreFailed(e),
        };
        // Success lines are DEBUG: at INFO they were most of the log volume (and of the
        // CloudWatch Logs bill, see docs/benchmarks.md) while metrics count them and the item
        // records its message and correlation ids. Set the function's application log level to
        // DEBUG to see them.
        match outcome {
            ConsumerOutcome::Accepted { reaccepted, .. } => {
                tracing::debug!(form = form.as_str(), reaccepted, "order accepted");
                let latency = (Utc::now() - sent_at).num_milliseconds();
                ConsumerOutcome::Accepted {
                    reaccepted,
                    latency_ms: (0..=MAX_PLAUSIBLE_LATENCY_MS)
                        .contains(&latency)
                        .then_some(latency as f64),
                }
            }
            ConsumerOutcome::Duplicate => {
                tracing::debug!(
                    form = form.as_str(),
                    "duplicate order: already stored, nothing written"
                );
                outcome
            }
            other => other,
        }
    }
}

fn sent_timestamp(record: &SqsMessage) -> Option<DateTime<Utc>> {
    let ms = record
        .attributes
        .get("SentTimestamp")?
        .parse::<i64>()
        .ok()?;
    Utc.timestamp_millis_opt(ms).single()
}
