//! order-consumer: an SQS batch in, the failed records out.
//!
//! Each record is parsed, validated and written with conditional writes that give the
//! contract's outcomes (new, duplicate, conflict, re-accepted after FAILED). Records of a batch
//! run concurrently up to `record_concurrency`, each isolated: an error or a panic in one fails
//! only that one.
//!
//! When every record of a non-empty batch fails because the store failed, the invocation
//! itself fails instead of listing them all. SQS retries the same records either way, but an
//! invocation error shows in the function's Errors metric (so the consumer-errors alarm fires
//! when DynamoDB is down or access is denied) and makes Lambda back off its polling.
//! Invalid and conflicting records never fail the invocation: they are the publisher's
//! problem, not the consumer's, and go to the DLQ one by one.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, TimeZone, Utc};
use futures::{FutureExt, StreamExt};
use lambda_runtime::LambdaEvent;
use order_domain::{
    consumer_decision, correlation_id, format_timestamp, parse_body, ConsumerDecision, OrderItem,
    Provenance, RecordOutcome, StoreError,
};
use tracing::{field, info_span, Instrument};

use crate::config::ConsumerConfig;
use crate::store::{CreateResult, OrderStore, Reaccept};
use crate::telemetry::{xray_trace_id, ColdStart, LineWriter, Metrics, Unit};

/// How often a conditional write is retried after losing a race, before the record is failed.
const RACE_ATTEMPTS: usize = 3;

pub struct OrderConsumer<S> {
    store: S,
    config: ConsumerConfig,
    telemetry: Arc<dyn LineWriter>,
    cold_start: ColdStart,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReport {
    pub message_id: String,
    pub order_id: Option<String>,
    pub outcome: RecordOutcome,
}

/// The invocation failed as a whole: every record failed in the store.
#[derive(Debug, thiserror::Error)]
#[error("all {count} records of the batch failed in the store; first error: {first}")]
pub struct StoreUnavailable {
    pub count: usize,
    pub first: StoreError,
}

impl<S: OrderStore> OrderConsumer<S> {
    pub fn new(store: S, config: ConsumerConfig, telemetry: Arc<dyn LineWriter>) -> Self {
        Self {
            store,
            config,
            telemetry,
            cold_start: ColdStart::new(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The Lambda handler.
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, StoreUnavailable> {
        self.handle_reporting(event)
            .await
            .map(|(response, _)| response)
    }

    /// The Lambda handler, also returning what happened to each record (the local runner's
    /// accounting uses it).
    pub async fn handle_reporting(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<(SqsBatchResponse, Vec<RecordReport>), StoreUnavailable> {
        let span = info_span!(
            "invocation",
            cold_start = self.cold_start.take(),
            function_request_id = %event.context.request_id,
            xray_trace_id = field::Empty,
        );
        if let Some(trace) = xray_trace_id(event.context.xray_trace_id.as_deref()) {
            span.record("xray_trace_id", trace.as_str());
        }
        self.handle_records(&event.payload.records)
            .instrument(span)
            .await
    }

    /// Processes a batch and returns the response plus each record's report.
    pub async fn handle_records(
        &self,
        records: &[SqsMessage],
    ) -> Result<(SqsBatchResponse, Vec<RecordReport>), StoreUnavailable> {
        let mut metrics = Metrics::default();
        metrics.count("BatchSize", records.len() as u64);
        // Collected first: a lazy `map` closure in the stream makes the future's Send-ness
        // unprovable to rustc (higher-ranked lifetimes), and the runner spawns it.
        let pending: Vec<_> = records.iter().map(|r| self.isolated(r)).collect();
        let reports: Vec<(RecordReport, Option<f64>)> = futures::stream::iter(pending)
            .buffer_unordered(self.config.record_concurrency)
            .collect()
            .await;

        let mut response = SqsBatchResponse::default();
        let mut first_store_error = None;
        let (mut store_failures, mut accepted, mut duplicates) = (0, 0, 0);
        for (report, latency) in &reports {
            match &report.outcome {
                RecordOutcome::Accepted { .. } => {
                    accepted += 1;
                    metrics.count("OrdersAccepted", 1);
                }
                RecordOutcome::Duplicate => {
                    duplicates += 1;
                    metrics.count("OrdersDuplicate", 1);
                }
                RecordOutcome::Conflict => metrics.count("OrdersConflict", 1),
                RecordOutcome::Invalid(_) => metrics.count("OrdersInvalid", 1),
                RecordOutcome::StoreFailed(e) => {
                    store_failures += 1;
                    first_store_error.get_or_insert_with(|| e.clone());
                }
                RecordOutcome::Panicked(_) => {}
            }
            if let Some(ms) = latency {
                metrics.add("OrderLatency", Unit::Milliseconds, *ms);
            }
            if report.outcome.is_failure() {
                metrics.count("RecordsFailed", 1);
                response.add_failure(report.message_id.clone());
            }
        }
        metrics.flush(&self.config.service, self.telemetry.as_ref());
        tracing::info!(
            records = records.len(),
            accepted,
            duplicates,
            failed = response.batch_item_failures.len(),
            "batch processed"
        );
        let reports: Vec<RecordReport> = reports.into_iter().map(|(r, _)| r).collect();
        match first_store_error {
            Some(first) if store_failures == records.len() => {
                tracing::error!(
                    error = %first,
                    "every record failed in the store: failing the invocation so SQS retries the batch and the errors alarm sees it; check the table, the role's permissions and DynamoDB's health"
                );
                Err(StoreUnavailable {
                    count: records.len(),
                    first,
                })
            }
            _ => Ok((response, reports)),
        }
    }

    /// Runs one record in its own span, turning a panic into that record's failure.
    async fn isolated(&self, record: &SqsMessage) -> (RecordReport, Option<f64>) {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = info_span!(
            "record",
            message_id = %message_id,
            correlation_id = field::Empty,
            order_id = field::Empty,
        );
        let outcome = AssertUnwindSafe(self.process(record).instrument(span.clone()))
            .catch_unwind()
            .await;
        match outcome {
            Ok(done) => done,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".to_string());
                let _entered = span.enter();
                tracing::error!(error = %text, "record panicked; only this record is reported failed");
                (
                    RecordReport {
                        message_id,
                        order_id: None,
                        outcome: RecordOutcome::Panicked(text),
                    },
                    None,
                )
            }
        }
    }

    async fn process(&self, record: &SqsMessage) -> (RecordReport, Option<f64>) {
        let span = tracing::Span::current();
        let message_id = record.message_id.clone().unwrap_or_default();
        let parsed = parse_body(record.body.as_deref().unwrap_or_default());
        let attribute = record
            .message_attributes
            .get("correlationId")
            .and_then(|a| a.string_value.as_deref());
        let sns_id = parsed
            .envelope
            .as_ref()
            .and_then(|e| e.sns_message_id.as_deref());
        let envelope_attr = parsed
            .envelope
            .as_ref()
            .and_then(|e| e.correlation_id.as_deref());
        let correlation =
            correlation_id(attribute.or(envelope_attr), sns_id, &message_id).to_string();
        span.record("correlation_id", correlation.as_str());
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1);
        let report = |order_id: Option<String>, outcome| RecordReport {
            message_id: message_id.clone(),
            order_id,
            outcome,
        };

        let (order, form) = match parsed.order {
            Ok(ok) => ok,
            Err(invalid) => {
                self.log_failure(
                    receive_count,
                    &format!("invalid order: {invalid}"),
                    "fix the publisher's payload; the message is kept in the DLQ",
                );
                return (report(None, RecordOutcome::Invalid(invalid)), None);
            }
        };
        span.record("order_id", order.order_id.as_str());
        let now = Utc::now();
        let sent_at = sent_timestamp(record).unwrap_or(now);
        let provenance = Provenance {
            message_id: message_id.clone(),
            correlation_id: correlation.clone(),
            sent_at,
        };
        let item = OrderItem::accepted(&order, &provenance, now);
        let outcome = self.write(&item).await;
        let order_id = Some(order.order_id.clone());
        match &outcome {
            // Success lines are DEBUG: at INFO they were most of the log volume (and of the
            // CloudWatch Logs bill, see docs/benchmarks.md) while metrics count them and the item
            // records its message and correlation ids. Set the function's application log level
            // to DEBUG to see them.
            RecordOutcome::Accepted { reaccepted } => {
                tracing::debug!(form = form.as_str(), reaccepted = *reaccepted, "order accepted");
                let latency = (Utc::now() - sent_at).num_milliseconds().max(0) as f64;
                return (report(order_id, outcome), Some(latency));
            }
            RecordOutcome::Duplicate => {
                tracing::debug!(form = form.as_str(), "duplicate order: already stored, nothing written");
            }
            RecordOutcome::Conflict => self.log_failure(
                receive_count,
                "conflict: this orderId is stored with different content; the stored order is kept",
                "the publisher reused an order id; the message is kept in the DLQ for review",
            ),
            RecordOutcome::StoreFailed(e) => self.log_failure(
                receive_count,
                &format!("store failed: {e}"),
                "SQS retries the record; if it persists check DynamoDB throttling and the table's health",
            ),
            RecordOutcome::Invalid(_) | RecordOutcome::Panicked(_) => {}
        }
        (report(order_id, outcome), None)
    }

    /// The conditional writes. A lost race (the item changed between reading and writing) is
    /// decided again on the fresh state, a few times.
    async fn write(&self, item: &OrderItem) -> RecordOutcome {
        for _ in 0..RACE_ATTEMPTS {
            let existing = match self.store.create(item).await {
                Ok(CreateResult::Created) => return RecordOutcome::Accepted { reaccepted: false },
                Ok(CreateResult::Exists(existing)) => existing,
                Err(e) => return RecordOutcome::StoreFailed(e),
            };
            match consumer_decision(Some(&existing), &item.content_hash) {
                ConsumerDecision::Duplicate => return RecordOutcome::Duplicate,
                ConsumerDecision::Conflict { .. } => return RecordOutcome::Conflict,
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
                    match self.store.reaccept(&reaccept).await {
                        Ok(true) => return RecordOutcome::Accepted { reaccepted: true },
                        Ok(false) => continue,
                        Err(e) => return RecordOutcome::StoreFailed(e),
                    }
                }
            }
        }
        RecordOutcome::StoreFailed(StoreError::Contention(format!(
            "order {} kept changing during {RACE_ATTEMPTS} conditional writes",
            item.order_id
        )))
    }

    fn log_failure(&self, receive_count: u32, reason: &str, what_to_do: &str) {
        if receive_count >= self.config.max_receive_count {
            tracing::error!(
                reason,
                receive_count,
                action = what_to_do,
                "record failed on its last receive: it moves to the DLQ"
            );
        } else {
            tracing::warn!(
                reason,
                receive_count,
                max_receive_count = self.config.max_receive_count,
                "record failed: SQS delivers it again after the visibility timeout"
            );
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

impl From<StoreUnavailable> for lambda_runtime::Diagnostic {
    fn from(e: StoreUnavailable) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "StoreUnavailable".into(),
            error_message: e.to_string(),
        }
    }
}
