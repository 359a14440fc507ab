//! dlq-alarm: invoked by the DLQ-depth alarm's state changes.
//!
//! On ALARM it looks at a bounded snapshot of the DLQ without consuming it, marks the orders it
//! finds FAILED (creating FAILED items for orders the consumer never stored), reports conflicts
//! and unparseable messages, logs one summary at ERROR and publishes it to the ops topic. When
//! another look holds the messages hidden (the scheduled sweep), it waits for them, bounded.
//! On OK it logs and publishes the recovery. Writes are conditional creates, so the same alarm
//! event handled twice changes nothing more. Every sweep says how many messages it read, how
//! many another reader held, and the DLQ's depth. An instance logs a dead letter's conflict
//! once: the scheduled sweeps that find it again stay quiet.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmStateValue};
use chrono::{TimeZone, Utc};
use lambda_runtime::LambdaEvent;
use order_domain::{
    correlation_id, dead_letter_decision, format_timestamp, parse_body, DeadLetterDecision,
    Failure, OrderItem, Provenance,
};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{field, info_span, Instrument};

use crate::ports::orders::{CreateResult, OrderStore};
use crate::ports::publish::Notifier;
use crate::ports::queue::{DeadLetter, DeadLetterQueue};
use crate::runtime::bounded::{run_bounded, Deadline, Settled};
use crate::runtime::config::DlqAlarmConfig;
use crate::runtime::telemetry::{ColdStart, LineWriter, Metrics};

mod error;
mod notification;

pub use error::AlarmError;

pub use notification::{notification_body, NOTIFICATION_MAX_BYTES};

/// Time kept to release the snapshot and publish the summary after the examinations stop.
const ANSWER_RESERVE: Duration = Duration::from_secs(5);

/// How long an alarm's sweep that saw nothing waits before looking again while another look
/// holds the DLQ's messages.
const LOOK_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// How many dead letters an instance remembers having reported (then it forgets them all and
/// reports each once more): far more than a DLQ that anyone reads message by message.
const REPORTED_MAX: usize = 10_000;

pub struct DlqAlarm<S, Q, N> {
    store: S,
    dlq: Q,
    notifier: N,
    config: DlqAlarmConfig,
    telemetry: Arc<dyn LineWriter>,
    cold_start: ColdStart,
    /// Message ids whose findings this instance has reported (logged, paged).
    reported: Mutex<HashSet<String>>,
}

/// A DLQ message that is not an acceptable order, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unparseable {
    pub message_id: String,
    pub reason: String,
}

/// What one alarm invocation found and did. It is the function's response, the ERROR log
/// line's fields and the ops notification's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmSummary {
    pub alarm_name: String,
    pub state: String,
    pub messages_seen: usize,
    /// The DLQ's messages when this sweep had looked (SQS's approximate counts; the ones read
    /// are among them). None when the counts could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<u64>,
    /// Of those, how many another reader held hidden (a sweep, someone polling the DLQ): this
    /// sweep could not read them; the next sweep does.
    pub held_elsewhere: u64,
    /// Letters this sweep read that this instance had not reported before.
    pub new_letters: usize,
    /// True when the DLQ may hold more than the snapshot looked at.
    pub snapshot_full: bool,
    pub marked_failed: Vec<String>,
    pub already_failed: Vec<String>,
    pub already_stored: Vec<String>,
    pub conflicts: Vec<String>,
    pub unparseable: Vec<Unparseable>,
    pub errors: Vec<String>,
}

/// What started a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// The DLQ alarm went to ALARM.
    Alarm,
    /// The schedule: while messages wait in the DLQ, new ones are marked too.
    Scheduled,
}

/// What invokes dlq-alarm: the DLQ alarm's state change, or the schedule's `{"sweep": ...}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum DlqAlarmEvent {
    Sweep { sweep: String },
    Alarm(Box<CloudWatchAlarm>),
}

enum Finding {
    Decided(String, DeadLetterDecision),
    Unparseable(Unparseable),
    Error(String),
}

impl<S: OrderStore, Q: DeadLetterQueue, N: Notifier> DlqAlarm<S, Q, N> {
    pub fn new(
        store: S,
        dlq: Q,
        notifier: N,
        config: DlqAlarmConfig,
        telemetry: Arc<dyn LineWriter>,
    ) -> Self {
        Self {
            store,
            dlq,
            notifier,
            config,
            telemetry,
            cold_start: ColdStart::new(),
            reported: Mutex::new(HashSet::new()),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn dlq(&self) -> &Q {
        &self.dlq
    }

    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    /// The Lambda handler: the DLQ alarm's state changes, and the scheduled sweeps.
    pub async fn handle_event(
        &self,
        event: LambdaEvent<DlqAlarmEvent>,
    ) -> Result<AlarmSummary, AlarmError> {
        let (payload, context) = event.into_parts();
        match payload {
            DlqAlarmEvent::Alarm(alarm) => self.handle(LambdaEvent::new(*alarm, context)).await,
            DlqAlarmEvent::Sweep { .. } => {
                let span = self.cold_start.invocation_span(
                    &context,
                    &self.config.service,
                    self.telemetry.as_ref(),
                );
                let deadline = Deadline::from_epoch_ms(
                    context.deadline,
                    self.config.start_margin,
                    ANSWER_RESERVE,
                );
                self.scheduled_sweep_within(deadline).instrument(span).await
            }
        }
    }

    /// A scheduled sweep (no deadline in tests): dead letters that arrived while the alarm
    /// stayed in ALARM, and those beyond an earlier snapshot, are marked too. Quiet when the DLQ
    /// is empty or nothing new was found; ops hear only of new marks and of errors.
    pub async fn scheduled_sweep_within(
        &self,
        deadline: Option<Deadline>,
    ) -> Result<AlarmSummary, AlarmError> {
        self.sweep("scheduled sweep".into(), deadline, Sweep::Scheduled)
            .await
    }

    /// The Lambda handler for the DLQ alarm's state changes.
    pub async fn handle(
        &self,
        event: LambdaEvent<CloudWatchAlarm>,
    ) -> Result<AlarmSummary, AlarmError> {
        let span = self.cold_start.invocation_span(
            &event.context,
            &self.config.service,
            self.telemetry.as_ref(),
        );
        let deadline = Deadline::from_epoch_ms(
            event.context.deadline,
            self.config.start_margin,
            ANSWER_RESERVE,
        );
        self.handle_alarm_within(&event.payload, deadline)
            .instrument(span)
            .await
    }

    /// Handles an alarm event with no deadline (tests).
    pub async fn handle_alarm(&self, alarm: &CloudWatchAlarm) -> Result<AlarmSummary, AlarmError> {
        self.handle_alarm_within(alarm, None).await
    }

    pub async fn handle_alarm_within(
        &self,
        alarm: &CloudWatchAlarm,
        deadline: Option<Deadline>,
    ) -> Result<AlarmSummary, AlarmError> {
        let name = alarm.alarm_data.alarm_name.clone();
        let state = alarm
            .alarm_data
            .state
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        match state {
            CloudWatchAlarmStateValue::Alarm => self.sweep(name, deadline, Sweep::Alarm).await,
            CloudWatchAlarmStateValue::Ok => {
                let summary = AlarmSummary {
                    alarm_name: name,
                    state: "OK".into(),
                    ..Default::default()
                };
                let was_alarm = alarm
                    .alarm_data
                    .previous_state
                    .as_ref()
                    .is_some_and(|s| s.value == CloudWatchAlarmStateValue::Alarm);
                if was_alarm {
                    tracing::info!(alarm_name = %summary.alarm_name, "DLQ alarm is back to OK: no message has been visible in the DLQ for its evaluation period");
                    self.notify(
                        &format!("Order pipeline recovered: {} is OK", summary.alarm_name),
                        &summary,
                    )
                    .await;
                } else {
                    // OK after INSUFFICIENT_DATA happens when the alarm is created: nothing recovered.
                    tracing::info!(alarm_name = %summary.alarm_name, "DLQ alarm is OK; it was not in ALARM, so there is no recovery to announce");
                }
                Ok(summary)
            }
            _ => {
                tracing::info!(alarm_name = %name, "DLQ alarm has insufficient data; nothing to do");
                Ok(AlarmSummary {
                    alarm_name: name,
                    state: "INSUFFICIENT_DATA".into(),
                    ..Default::default()
                })
            }
        }
    }

    async fn sweep(
        &self,
        alarm_name: String,
        deadline: Option<Deadline>,
        kind: Sweep,
    ) -> Result<AlarmSummary, AlarmError> {
        let mut letters = self.look().await?;
        if kind == Sweep::Alarm && letters.is_empty() {
            letters = self.look_again_while_held(deadline).await?;
        }
        // Counted while this sweep still holds what it read.
        let counts = match self.dlq.counts().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the DLQ's message counts; the summary leaves out its depth (check sqs:GetQueueAttributes)");
                None
            }
        };
        let new: Vec<bool> = {
            let reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            letters
                .iter()
                .map(|l| !reported.contains(&l.message_id))
                .collect()
        };
        let now = Utc::now();
        let pending: Vec<_> = letters
            .iter()
            .zip(&new)
            .map(|(l, new)| self.examine(l, now, *new))
            .collect();
        let settled = run_bounded(pending, self.config.concurrency, deadline).await;
        let findings: Vec<Finding> = letters
            .iter()
            .zip(settled)
            .map(|(letter, s)| match s {
                Settled::Handled(finding) => finding,
                Settled::Panicked(text) => Finding::Error(format!(
                    "{}: examining it panicked: {text}",
                    letter.message_id
                )),
                Settled::NotStarted | Settled::Abandoned => Finding::Error(format!(
                    "{}: not examined before the invocation's deadline; the next sweep looks again",
                    letter.message_id
                )),
            })
            .collect();
        // A letter counts as reported from now on unless examining it failed (the next sweep
        // reports it).
        {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            if reported.len() + letters.len() > REPORTED_MAX {
                reported.clear();
            }
            for (letter, finding) in letters.iter().zip(&findings) {
                if !matches!(finding, Finding::Error(_)) {
                    reported.insert(letter.message_id.clone());
                }
            }
        }
        // Every message looked at becomes visible again, whatever happened to it.
        let released = self.dlq.release(&letters).await;

        let mut summary = AlarmSummary {
            alarm_name,
            state: match kind {
                Sweep::Alarm => "ALARM".into(),
                Sweep::Scheduled => "SCHEDULED_SWEEP".into(),
            },
            messages_seen: letters.len(),
            depth: counts.map(|c| c.depth()),
            held_elsewhere: counts.map_or(0, |c| c.held.saturating_sub(letters.len() as u64)),
            new_letters: new.iter().filter(|n| **n).count(),
            snapshot_full: letters.len() >= self.config.snapshot_max,
            ..Default::default()
        };
        for finding in findings {
            match finding {
                Finding::Decided(id, DeadLetterDecision::CreateFailed) => {
                    summary.marked_failed.push(id)
                }
                Finding::Decided(id, DeadLetterDecision::AlreadyFailed) => {
                    summary.already_failed.push(id)
                }
                Finding::Decided(id, DeadLetterDecision::AlreadyStored) => {
                    summary.already_stored.push(id)
                }
                Finding::Decided(id, DeadLetterDecision::Conflict) => summary.conflicts.push(id),
                Finding::Unparseable(u) => summary.unparseable.push(u),
                Finding::Error(e) => summary.errors.push(e),
            }
        }
        if let Err(e) = released {
            summary.errors.push(format!(
                "could not make the looked-at messages visible again (they reappear after {}s): {e}",
                self.config.snapshot_visibility_seconds
            ));
        }
        for list in [
            &mut summary.marked_failed,
            &mut summary.already_failed,
            &mut summary.already_stored,
            &mut summary.conflicts,
        ] {
            list.sort();
        }
        summary
            .unparseable
            .sort_by(|a, b| a.message_id.cmp(&b.message_id));

        let mut metrics = Metrics::default();
        metrics.count("DeadLettersSeen", summary.messages_seen as u64);
        metrics.count("OrdersMarkedFailed", summary.marked_failed.len() as u64);
        metrics.flush(&self.config.service, self.telemetry.as_ref());
        if kind == Sweep::Scheduled && summary.marked_failed.is_empty() && summary.errors.is_empty()
        {
            // Nothing marked, nothing failed: no page (conflicts and unparseable letters stay
            // in the DLQ by design; the alarm's run paged them, and a new conflict is logged at
            // WARN once), and the summary at DEBUG only, since it repeats every sweep.
            tracing::debug!(
                messages_seen = summary.messages_seen,
                depth = summary.depth,
                held_elsewhere = summary.held_elsewhere,
                already_failed = summary.already_failed.len(),
                "scheduled DLQ sweep: nothing new"
            );
            return Ok(summary);
        }
        if summary.messages_seen == 0 && summary.errors.is_empty() {
            // The alarm's datapoint is up to a minute old: the messages were redriven or
            // deleted since, or another look held them hidden for longer than this sweep could
            // wait. Nothing to mark, nothing to page (the alarm notified the ops topic itself).
            if summary.held_elsewhere > 0 {
                tracing::warn!(
                    alarm_name = %summary.alarm_name,
                    messages_seen = 0,
                    held_elsewhere = summary.held_elsewhere,
                    "the DLQ alarm is in ALARM but another look holds the DLQ's messages hidden (a sweep, or someone polling the DLQ): the scheduled sweep examines them once they are visible again"
                );
            } else {
                tracing::warn!(
                    alarm_name = %summary.alarm_name,
                    messages_seen = 0,
                    "the DLQ alarm is in ALARM but the DLQ is empty: its messages were redriven or deleted; the alarm returns to OK by itself"
                );
            }
            return Ok(summary);
        }
        // Flat fields only: the whole summary is the response and the ops notification.
        tracing::error!(
            alarm_name = %summary.alarm_name,
            messages_seen = summary.messages_seen,
            depth = summary.depth,
            held_elsewhere = summary.held_elsewhere,
            new_letters = summary.new_letters,
            marked_failed = summary.marked_failed.len(),
            already_failed = summary.already_failed.len(),
            already_stored = summary.already_stored.len(),
            conflicts = summary.conflicts.len(),
            conflicting_order_ids = %summary.conflicts.join(","),
            unparseable = summary.unparseable.len(),
            errors = summary.errors.len(),
            "messages are in the order DLQ: inspect them, fix the cause, then redrive the DLQ to the order queue"
        );
        let held = match summary.held_elsewhere {
            0 => String::new(),
            n => format!(" ({n} held by another reader)"),
        };
        let subject = format!(
            "Order DLQ alarm: read {} of {} messages{held}, {} marked FAILED, {} conflicts, {} unparseable",
            summary.messages_seen,
            summary
                .depth
                .map_or_else(|| "?".to_string(), |d| d.to_string()),
            summary.marked_failed.len(),
            summary.conflicts.len(),
            summary.unparseable.len()
        );
        self.notify(&subject, &summary).await;
        if !summary.errors.is_empty() {
            return Err(AlarmError::Incomplete(Box::new(summary)));
        }
        Ok(summary)
    }

    /// One bounded look at the DLQ.
    async fn look(&self) -> Result<Vec<DeadLetter>, AlarmError> {
        self.dlq
            .snapshot(
                self.config.snapshot_max,
                self.config.snapshot_visibility_seconds,
            )
            .await
            .map_err(AlarmError::Snapshot)
    }

    /// After an alarm's look saw nothing: when another look holds the DLQ's messages (the
    /// scheduled sweep's snapshot, which the alarm's datapoint counts; someone polling the DLQ),
    /// they are visible again when it is done. Looks again until then, for at most the
    /// snapshot's visibility timeout and half of the time left to start examining, so that the
    /// examinations keep the other half. Returns what the last look saw (nothing when it gave
    /// up: the DLQ is empty, or the messages are still held).
    async fn look_again_while_held(
        &self,
        deadline: Option<Deadline>,
    ) -> Result<Vec<DeadLetter>, AlarmError> {
        let started = Instant::now();
        let mut until =
            started + Duration::from_secs(self.config.snapshot_visibility_seconds.max(0) as u64);
        if let Some(d) = deadline {
            until = until.min(started + d.start_by.saturating_duration_since(started) / 2);
        }
        loop {
            let held = match self.dlq.counts().await {
                Ok(counts) => counts.held,
                Err(e) => {
                    // Only the wait depends on it: go on as if nothing were held.
                    tracing::warn!(error = %e, "could not read how many DLQ messages are held by another look; not waiting for them (check sqs:GetQueueAttributes)");
                    0
                }
            };
            if held == 0 || Instant::now() + LOOK_AGAIN_AFTER >= until {
                return Ok(Vec::new());
            }
            tokio::time::sleep(LOOK_AGAIN_AFTER).await;
            let letters = self.look().await?;
            if !letters.is_empty() {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "the DLQ's messages were held by another look; this alarm's sweep waited for them"
                );
                return Ok(letters);
            }
        }
    }

    /// Decides one dead letter; `new`: this instance has not reported it yet (its conflict is
    /// logged then only).
    async fn examine(&self, letter: &DeadLetter, now: chrono::DateTime<Utc>, new: bool) -> Finding {
        let parsed = parse_body(&letter.body);
        let sns_id = parsed
            .envelope
            .as_ref()
            .and_then(|e| e.sns_message_id.as_deref());
        let attribute = letter.correlation_attribute.as_deref().or(parsed
            .envelope
            .as_ref()
            .and_then(|e| e.correlation_id.as_deref()));
        let correlation = correlation_id(attribute, sns_id, &letter.message_id).to_string();
        let span = info_span!(
            "dead_letter",
            message_id = %letter.message_id,
            correlation_id = %correlation,
            order_id = field::Empty,
        );
        let (order, _) = match parsed.order {
            Ok(ok) => ok,
            Err(invalid) => {
                return Finding::Unparseable(Unparseable {
                    message_id: letter.message_id.clone(),
                    reason: invalid.to_string(),
                })
            }
        };
        span.record("order_id", order.order_id.as_str());
        let sent_at = letter
            .sent_timestamp_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or(now);
        let provenance = Provenance {
            message_id: letter.message_id.clone(),
            correlation_id: correlation.clone(),
            sent_at,
        };
        let failure = Failure {
            reason: format!(
                "not stored after {} receives; find correlation_id {correlation} in the order-consumer logs for the cause",
                letter.receive_count
            ),
            dead_lettered_at: format_timestamp(now),
            receive_count: letter.receive_count,
        };
        let item = OrderItem::failed(&order, provenance, failure);
        let decision = match self.store.create(&item).instrument(span.clone()).await {
            Ok(CreateResult::Created) => DeadLetterDecision::CreateFailed,
            Ok(CreateResult::Exists(existing)) => {
                dead_letter_decision(Some(&existing), &item.content_hash)
            }
            Err(e) => {
                let _e = span.enter();
                tracing::warn!(error = %e, "could not record the dead-lettered order");
                return Finding::Error(format!("{}: {e}", order.order_id));
            }
        };
        if decision == DeadLetterDecision::Conflict && new {
            let _e = span.enter();
            tracing::warn!("dead letter reuses the id of a different stored order; the stored order is left alone");
        }
        Finding::Decided(order.order_id, decision)
    }

    async fn notify(&self, subject: &str, summary: &AlarmSummary) {
        let body = notification_body(summary);
        if let Err(e) = self.notifier.publish(subject, &body).await {
            // The summary is in the log line either way; a failed page is worth its own line.
            tracing::error!(error = %e, "could not publish to the ops topic; check OPS_TOPIC_ARN and sns:Publish");
        }
    }
}
