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
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use lambda_runtime::LambdaEvent;
use tokio::time::Instant;
use tracing::{field, info_span, Instrument, Span};

use crate::ports::queue::Visibility;
use crate::runtime::config::{ConfigError, WorkerConfig};
use crate::runtime::telemetry::{ColdStart, LineWriter, Metrics, Unit};

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

/// How a record of a batch ended, from the worker's point of view.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled<O> {
    Handled(O),
    /// The handler panicked on this record; only this record failed.
    Panicked(String),
    /// Not started: too little of the invocation was left.
    NotStarted,
    /// Started, but still running when the invocation had to answer.
    Abandoned,
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

/// When to stop starting work, and when to give up on work still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub start_by: Instant,
    pub cut_off: Instant,
}

/// The smallest deadline read as epoch milliseconds (2001-09-09); see [`Deadline::from_epoch_ms`].
pub const EPOCH_FLOOR_MS: u64 = 1_000_000_000_000;

/// Lambda's longest function timeout.
const LAMBDA_MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Deadline {
    /// From the time left of an invocation and the two margins.
    pub fn after(remaining: Duration, start_margin: Duration, answer_reserve: Duration) -> Self {
        let now = Instant::now();
        Deadline {
            start_by: now + remaining.saturating_sub(start_margin),
            cut_off: now + remaining.saturating_sub(answer_reserve),
        }
    }

    /// From Lambda's deadline (epoch milliseconds); `None` when the context has none (0).
    ///
    /// A value before [`EPOCH_FLOOR_MS`] is no epoch time: `cargo lambda watch` sends the
    /// constant 600000, its own timeout for an invocation. It is read as that long from now,
    /// at most Lambda's 15-minute maximum, so a local invoke has the time a deployed one has
    /// instead of a deadline in 1970.
    pub fn from_epoch_ms(
        deadline_ms: u64,
        start_margin: Duration,
        answer_reserve: Duration,
    ) -> Option<Self> {
        if deadline_ms == 0 {
            return None;
        }
        let remaining = if deadline_ms < EPOCH_FLOOR_MS {
            Duration::from_millis(deadline_ms).min(LAMBDA_MAX_TIMEOUT)
        } else {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        };
        Some(Self::after(remaining, start_margin, answer_reserve))
    }
}

/// Runs `work` at most `concurrency` at a time, each isolated from the others' panics, and
/// within `deadline`: nothing starts after `start_by`, and whatever still runs at `cut_off` is
/// dropped. The results are in the order of `work`. The futures are built by the caller but
/// only polled here, so an unstarted one has done nothing.
pub async fn run_bounded<F>(
    work: Vec<F>,
    concurrency: usize,
    deadline: Option<Deadline>,
) -> Vec<Settled<F::Output>>
where
    F: Future + Send,
{
    let count = work.len();
    let mut results: Vec<Option<Settled<F::Output>>> = (0..count).map(|_| None).collect();
    let mut started = vec![false; count];
    let mut pending = work.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut starting = true;
    loop {
        while starting && running.len() < concurrency.max(1) {
            if deadline.is_some_and(|d| Instant::now() >= d.start_by) {
                starting = false;
                break;
            }
            match pending.next() {
                Some((i, future)) => {
                    started[i] = true;
                    running.push(AssertUnwindSafe(future).catch_unwind().map(move |r| (i, r)));
                }
                None => starting = false,
            }
        }
        let next = match deadline {
            None => running.next().await,
            Some(d) => tokio::select! {
                next = running.next() => next,
                _ = tokio::time::sleep_until(d.cut_off) => break,
            },
        };
        let Some((i, result)) = next else { break };
        results[i] = Some(match result {
            Ok(output) => Settled::Handled(output),
            Err(panic) => Settled::Panicked(panic_text(panic.as_ref())),
        });
    }
    results
        .into_iter()
        .zip(started)
        .map(|(result, started)| match result {
            Some(settled) => settled,
            None if started => Settled::Abandoned,
            None => Settled::NotStarted,
        })
        .collect()
}

/// The record's ApproximateReceiveCount (1 when absent).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(1)
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
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
        let span = self
            .cold_start
            .invocation_span(&event.context, &self.config.service);
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

    /// Processes a batch within `deadline` and returns the response plus each record's report.
    pub async fn handle_records_within(
        &self,
        records: &[SqsMessage],
        deadline: Option<Deadline>,
    ) -> Result<(SqsBatchResponse, Vec<RecordReport<H::Outcome>>), BatchUnavailable> {
        let spans: Vec<Span> = records
            .iter()
            .map(|r| {
                info_span!(
                    "record",
                    message_id = r.message_id.as_deref().unwrap_or_default(),
                    correlation_id = field::Empty,
                    order_id = field::Empty,
                )
            })
            .collect();
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
        if receive_count >= self.config.max_receive_count {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn run_bounded_starts_nothing_after_start_by_and_abandons_what_runs_at_cut_off() {
        let d = Deadline::after(
            Duration::from_secs(10),
            Duration::from_secs(3),
            Duration::from_millis(500),
        );
        let started = Instant::now();
        // One at a time: 4 s, 4 s (starts at 4 s), then 4 s would start at 8 s > start_by 7 s.
        let work: Vec<_> = [4, 4, 4]
            .into_iter()
            .map(|s| async move { tokio::time::sleep(Duration::from_secs(s)).await })
            .collect();
        let results = run_bounded(work, 1, Some(d)).await;
        assert_eq!(
            results,
            [
                Settled::Handled(()),
                Settled::Handled(()),
                Settled::NotStarted
            ]
        );
        // A stall: started at once, still running at the cut-off.
        let work = vec![async { tokio::time::sleep(Duration::from_secs(60)).await }];
        let d = Deadline::after(
            Duration::from_secs(10),
            Duration::from_secs(3),
            Duration::from_millis(500),
        );
        let t = Instant::now();
        assert_eq!(run_bounded(work, 1, Some(d)).await, [Settled::Abandoned]);
        assert_eq!(t.elapsed(), Duration::from_millis(9_500));
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn run_bounded_isolates_a_panic_and_keeps_the_order_of_the_work() {
        let work: Vec<std::pin::Pin<Box<dyn Future<Output = u32> + Send>>> = vec![
            Box::pin(async { 1 }),
            Box::pin(async { panic!("boom") }),
            Box::pin(async { 3 }),
        ];
        let results = run_bounded(work, 2, None).await;
        assert_eq!(
            results,
            [
                Settled::Handled(1),
                Settled::Panicked("boom".into()),
                Settled::Handled(3)
            ]
        );
    }

    /// Issue 32: `cargo lambda watch` sends `Lambda-Runtime-Deadline-Ms: 600000`; read as epoch
    /// time that is a deadline in 1970 and every queue-fed invoke answered "not started before
    /// the invocation's deadline".
    #[test]
    fn cargo_lambda_watchs_constant_deadline_gives_that_long_from_now() {
        let before = Instant::now();
        let d = Deadline::from_epoch_ms(600_000, Duration::from_secs(1), Duration::ZERO)
            .expect("a deadline");
        assert!(d.start_by >= before + Duration::from_secs(598));
        assert!(d.cut_off >= before + Duration::from_secs(599));
        assert!(d.cut_off <= Instant::now() + Duration::from_secs(600));
    }

    #[test]
    fn a_non_epoch_deadline_is_capped_at_lambdas_longest_timeout() {
        let d = Deadline::from_epoch_ms(EPOCH_FLOOR_MS - 1, Duration::ZERO, Duration::ZERO)
            .expect("a deadline");
        assert!(d.cut_off <= Instant::now() + LAMBDA_MAX_TIMEOUT);
        assert!(d.cut_off + Duration::from_secs(1) >= Instant::now() + LAMBDA_MAX_TIMEOUT);
    }

    #[test]
    fn an_epoch_deadline_counts_from_the_clock() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = Deadline::from_epoch_ms(now_ms + 5_000, Duration::ZERO, Duration::ZERO)
            .expect("a deadline");
        assert!(d.cut_off <= Instant::now() + Duration::from_secs(5));
        assert!(d.cut_off + Duration::from_secs(1) >= Instant::now() + Duration::from_secs(5));
        let past = Deadline::from_epoch_ms(now_ms - 5_000, Duration::ZERO, Duration::ZERO)
            .expect("a deadline");
        assert!(past.start_by <= Instant::now());
    }

    #[test]
    fn a_context_without_a_deadline_sets_none() {
        assert_eq!(
            Deadline::from_epoch_ms(0, Duration::ZERO, Duration::ZERO),
            None
        );
    }
}
