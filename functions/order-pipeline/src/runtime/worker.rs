//! The SQS batch worker: everything a queue-fed function does around its records.
//!
//! A stage implements [`RecordHandler`]: one record in, its [`Outcome`] out. [`SqsWorker`] owns
//! the rest, the same for every stage:
//! - the invocation span (`cold_start`, `function_request_id`, `xray_trace_id`) and a span per
//!   record (`message_id`; the handler adds `correlation_id` and `order_id`);
//! - the concurrency bound (`RECORD_CONCURRENCY` records of a batch at once);
//! - per-record panic isolation: a panic fails that record only;
//! - the deadline: no record starts once less than the start margin is left of the invocation,
//!   and records still running when only the answer reserve is left are abandoned; both are
//!   reported failed, so a stalled dependency never times out the whole batch (SQS delivers
//!   them again; every write of the stages is conditional, so a repeat is safe);
//! - the partial batch response (only failed records in `batchItemFailures`);
//! - the every-record-failed rule: when every record of a non-empty batch failed because a
//!   dependency did (or ran out of time), the invocation itself fails, so the function's Errors
//!   alarm sees an outage and Lambda backs off; records that fail for their own reasons
//!   (invalid, conflicting) never fail the invocation;
//! - one failure line per failed record (WARN while SQS will deliver it again, ERROR on the last
//!   receive before the DLQ), one INFO line per batch, one EMF line per invocation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use tracing::{field, info_span, Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::ports::queue::Visibility;
use crate::runtime::bounded::{run_bounded, Deadline, Settled};
use crate::runtime::config::{ConfigError, WorkerConfig, NO_DEAD_LETTER_QUEUE};
use crate::runtime::telemetry::{trace, ColdStart, LineWriter, Metrics, Unit};

/// Whether a record is done, and if not, whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done: the message is deleted.
    Done,
    /// The record itself cannot be processed (invalid, conflicting): it fails, comes back until
    /// maxReceiveCount, then waits in the DLQ. Never fails the invocation. (Refused, not
    /// "rejected": a REJECTED order is one the inventory stage handled and is `Done`.)
    Refused {
        reason: String,
        action: &'static str,
    },
    /// Not yet: the record fails and comes back later by design (a payment provider answered
    /// "try again"). Never fails the invocation: one order's retry is not an outage.
    Later {
        reason: String,
        action: &'static str,
    },
    /// A dependency failed (throttling, outage, permissions): the record fails and SQS retries
    /// it. When every record of a batch ends so, the invocation fails.
    Unavailable {
        reason: String,
        action: &'static str,
    },
}

/// What a stage's handler says about one record.
pub trait Outcome: Send {
    /// A short machine-readable label for logs, reports and the local runner's accounting.
    fn label(&self) -> &'static str;
    fn disposition(&self) -> Disposition;
    /// The EMF count this outcome adds 1 to, if any.
    fn metric(&self) -> Option<&'static str> {
        None
    }
    /// A latency to record (metric name, milliseconds), if any.
    fn latency(&self) -> Option<(&'static str, f64)> {
        None
    }
    /// For a failed record: when it should come back, when the stage knows better than its
    /// backoff by receive count (the payment stage counts attempts on the order). Used only
    /// when the worker has a backoff.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// One stage's work on one record. Called inside the record's span; the worker does the rest.
pub trait RecordHandler: Send + Sync {
    type Outcome: Outcome;
    /// The lifecycle event types it acts on, for an event-driven stage
    /// ([`crate::runtime::stage::EventStage`]); none for the intake.
    const EVENTS: &'static [order_domain::EventType] = &[];
    fn handle(&self, record: &SqsMessage) -> impl Future<Output = Self::Outcome> + Send;
}

impl<O: Outcome> Settled<O> {
    pub fn label(&self) -> &'static str {
        match self {
            Settled::Handled(o) => o.label(),
            Settled::Panicked(_) => "panicked",
            Settled::NotStarted => "not_started",
            Settled::Abandoned => "abandoned",
        }
    }

    /// Whether the record goes back to SQS in `batchItemFailures`.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Settled::Handled(o) if o.disposition() == Disposition::Done)
    }

    /// Why the record failed because of something outside it (a dependency, the clock).
    fn unavailable(&self) -> Option<String> {
        match self {
            Settled::Handled(o) => match o.disposition() {
                Disposition::Unavailable { reason, .. } => Some(reason),
                _ => None,
            },
            Settled::NotStarted => Some("not started before the invocation's deadline".into()),
            Settled::Abandoned => Some("still running at the invocation's deadline".into()),
            Settled::Panicked(_) => None,
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport<O> {
    pub message_id: String,
    pub outcome: Settled<O>,
}

/// The invocation failed as a whole: every record failed because a dependency did.
#[derive(Clone, thiserror::Error)]
#[error("all {count} records of the batch failed for lack of a dependency; first: {first}")]
pub struct BatchUnavailable {
    pub count: usize,
    pub first: String,
}

/// The runtime logs a failed invocation's error with `{:?}`: one sentence, not a struct dump.
impl std::fmt::Debug for BatchUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// At most this much of a dependency's error goes into the invocation's error (SDK errors can
/// carry kilobytes of context; the record's own failure line has it all).
const REASON_MAX: usize = 300;

fn short_reason(reason: String) -> String {
    if reason.chars().count() <= REASON_MAX {
        reason
    } else {
        let head: String = reason.chars().take(REASON_MAX).collect();
        format!("{head}…")
    }
}

impl From<BatchUnavailable> for lambda_runtime::Diagnostic {
    fn from(e: BatchUnavailable) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "BatchUnavailable".into(),
            error_message: e.to_string(),
        }
    }
}

/// The record's ApproximateReceiveCount (1 when absent).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(1)
}

/// A queue-fed Lambda function: a stage's [`RecordHandler`] inside the shared batch handling.
pub struct SqsWorker<H> {
    handler: H,
    config: WorkerConfig,
    telemetry: Arc<dyn LineWriter>,
    cold_start: ColdStart,
    visibility: Option<Arc<dyn Visibility>>,
    mode: Option<&'static str>,
}

impl<H: RecordHandler> SqsWorker<H> {
    /// The worker around `handler`. A backoff in `config` (RETRY_BASE_SECONDS) needs
    /// `visibility`, through which failed records are delayed: without it the worker is
    /// refused, rather than silently retrying on the queue's visibility timeout.
    pub fn new(
        handler: H,
        config: WorkerConfig,
        telemetry: Arc<dyn LineWriter>,
        visibility: Option<Arc<dyn Visibility>>,
    ) -> Result<Self, ConfigError> {
        if config.backoff.is_some() && visibility.is_none() {
            return Err(ConfigError::Missing {
                name: "QUEUE_URL",
                hint: "a stage with a backoff (RETRY_BASE_SECONDS) delays its failed records on its own queue",
            });
        }
        Ok(Self {
            handler,
            config,
            telemetry,
            cold_start: ColdStart::new(),
            visibility,
            mode: None,
        })
    }

    /// Every line of every invocation carries `mode` (e.g. `simulated payments`).
    pub fn with_mode(mut self, mode: &'static str) -> Self {
        self.mode = Some(mode);
        self
    }

    pub fn mode(&self) -> Option<&'static str> {
        self.mode
    }

    /// Whether failed records come back after the stage's backoff (through `visibility`)
    /// rather than the queue's visibility timeout.
    pub fn has_backoff(&self) -> bool {
        self.config.backoff.is_some() && self.visibility.is_some()
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// The Lambda handler.
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, BatchUnavailable> {
        self.handle_reporting(event).await.map(|(r, _)| r)
    }

    /// The Lambda handler, also returning what happened to each record (the local runner's
    /// accounting uses it).
    pub async fn handle_reporting(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<(SqsBatchResponse, Vec<RecordReport<H::Outcome>>), BatchUnavailable> {
        let span = self.cold_start.invocation_span(
            &event.context,
            &self.config.service,
            self.telemetry.as_ref(),
        );
        if let Some(mode) = self.mode {
            span.record("mode", mode);
        }
        let deadline = Deadline::from_epoch_ms(
            event.context.deadline,
            self.config.start_margin,
            self.config.answer_reserve,
        );
        self.handle_records_within(&event.payload.records, deadline)
            .instrument(span)
            .await
    }

    /// Processes a batch with no deadline (tests, benchmarks).
    pub async fn handle_records(
        &self,
        records: &[SqsMessage],
    ) -> Result<(SqsBatchResponse, Vec<RecordReport<H::Outcome>>), BatchUnavailable> {
        self.handle_records_within(records, None).await
    }

    /// A record's span. A message that carries a trace (SQS's `AWSTraceHeader`: the publish
    /// that sent it was traced) is handled in that trace, as a segment of this function; any
    /// other is a subsegment of the invocation.
    fn record_span(&self, record: &SqsMessage) -> Span {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let header = if trace::enabled() {
            record.attributes.get("AWSTraceHeader")
        } else {
            None
        };
        match header {
            Some(header) => {
                let span = info_span!(
                    "record",
                    otel.name = self.config.service.as_str(),
                    otel.kind = "server",
                    otel.status_code = field::Empty,
                    message_id,
                    correlation_id = field::Empty,
                    order_id = field::Empty,
                );
                // The segment's name (a server span's is its service's).
                span.set_attribute("service.name", self.config.service.clone());
                trace::continue_trace(&span, Some(header));
                span
            }
            None => info_span!(
                "record",
                otel.name = self.config.service.as_str(),
                otel.status_code = field::Empty,
                message_id,
                correlation_id = field::Empty,
                order_id = field::Empty,
            ),
        }
    }

    /// Processes a batch within `deadline` and returns the response plus each record's report.
    pub async fn handle_records_within(
        &self,
        records: &[SqsMessage],
        deadline: Option<Deadline>,
    ) -> Result<(SqsBatchResponse, Vec<RecordReport<H::Outcome>>), BatchUnavailable> {
        let spans: Vec<Span> = records.iter().map(|r| self.record_span(r)).collect();
        // Built first, polled by run_bounded: a lazy closure there makes the future's Send-ness
        // unprovable to rustc (higher-ranked lifetimes), and the local runner spawns it.
        let work: Vec<_> = records
            .iter()
            .zip(&spans)
            .map(|(r, span)| self.handler.handle(r).instrument(span.clone()))
            .collect();
        let settled = run_bounded(work, self.config.record_concurrency, deadline).await;

        let mut metrics = Metrics::default();
        metrics.count("BatchSize", records.len() as u64);
        let mut response = SqsBatchResponse::default();
        let mut unavailable = Vec::new();
        let mut reports = Vec::with_capacity(records.len());
        let mut delays = Vec::new();
        for ((record, span), outcome) in records.iter().zip(&spans).zip(settled) {
            let message_id = record.message_id.clone().unwrap_or_default();
            if let Settled::Handled(o) = &outcome {
                if let Some(name) = o.metric() {
                    metrics.count(name, 1);
                }
                if let Some((name, ms)) = o.latency() {
                    metrics.add(name, Unit::Milliseconds, ms);
                }
            }
            if outcome.is_failure() {
                trace::failed(span);
                metrics.count("RecordsFailed", 1);
                response.add_failure(message_id.clone());
                self.log_failure(record, span, &outcome);
                if let (Some(backoff), Some(handle)) =
                    (self.config.backoff, record.receipt_handle.as_ref())
                {
                    let after = match &outcome {
                        Settled::Handled(o) => o.retry_after(),
                        _ => None,
                    }
                    .unwrap_or_else(|| backoff.after(receive_count(record)));
                    delays.push((handle.clone(), after));
                }
            }
            if let Some(reason) = outcome.unavailable() {
                unavailable.push(reason);
            }
            reports.push(RecordReport {
                message_id,
                outcome,
            });
        }
        if let (Some(visibility), false) = (&self.visibility, delays.is_empty()) {
            if let Err(e) = visibility.delay(delays).await {
                tracing::warn!(error = %e, "could not delay the failed records: they come back after the queue's visibility timeout");
            }
        }
        metrics.flush(&self.config.service, self.telemetry.as_ref());
        let failed = response.batch_item_failures.len();
        tracing::info!(
            records = records.len(),
            done = records.len() - failed,
            failed,
            unavailable = unavailable.len(),
            "batch processed"
        );
        if !records.is_empty() && unavailable.len() == records.len() {
            let first = unavailable.swap_remove(0);
            tracing::error!(
                error = %first,
                "every record failed for lack of a dependency: failing the invocation so SQS retries the batch and the errors alarm sees it; check the function's dependencies (table, queue, topic), its role's permissions and their health"
            );
            return Err(BatchUnavailable {
                count: records.len(),
                first: short_reason(first),
            });
        }
        Ok((response, reports))
    }

    fn log_failure(&self, record: &SqsMessage, span: &Span, outcome: &Settled<H::Outcome>) {
        let _entered = span.enter();
        let receive_count = receive_count(record);
        let (reason, action) = match outcome {
            Settled::Handled(o) => match o.disposition() {
                Disposition::Done => return,
                Disposition::Refused { reason, action }
                | Disposition::Later { reason, action }
                | Disposition::Unavailable { reason, action } => (reason, action),
            },
            Settled::Panicked(text) => {
                tracing::error!(error = %text, "record panicked; only this record is reported failed");
                return;
            }
            Settled::NotStarted | Settled::Abandoned => (
                outcome.unavailable().unwrap_or_default(),
                "a dependency is slow: check its latency and throttling metrics",
            ),
        };
        if self.config.max_receive_count == NO_DEAD_LETTER_QUEUE {
            tracing::warn!(
                reason,
                receive_count,
                action,
                outcome = outcome.label(),
                "record failed: SQS delivers it again after the visibility timeout (this queue has no DLQ: it stays until it is settled or expires)"
            );
        } else if receive_count >= self.config.max_receive_count {
            tracing::error!(
                reason,
                receive_count,
                action,
                outcome = outcome.label(),
                "record failed on its last receive: it moves to the DLQ"
            );
        } else {
            tracing::warn!(
                reason,
                receive_count,
                max_receive_count = self.config.max_receive_count,
                outcome = outcome.label(),
                "record failed: SQS delivers it again after the visibility timeout"
            );
        }
    }
}
