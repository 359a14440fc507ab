//! An event-driven stage: one lifecycle event of the types it acts on in, its outcome out.
//!
//! A stage implements [`Stage`] and nothing else of the record: [`EventStage`] reads the
//! record's body as a [`LifecycleEvent`] (recording its correlation and order ids on the
//! record's span), answers every stage's common cases the same way (a body that is not an event
//! is `invalid`, an event type the stage does not act on is `ignored`, a port error is
//! `unavailable`, a lost race on a busy item is `contended`), and hands the event to the stage. [`crate::runtime::worker::SqsWorker`]
//! runs it over a batch, with the backoff wired when the stage has one.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use order_domain::{EventType, LifecycleEvent};

use crate::ports::PortError;
use crate::runtime::worker::{Disposition, Outcome, RecordHandler};

/// The words a stage's common answers use in its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageTexts {
    /// What the record is when its body is not a lifecycle event ("not a lifecycle event").
    pub invalid: &'static str,
    /// What to do about such a record.
    pub invalid_action: &'static str,
    /// The EMF count an invalid record adds 1 to, if any.
    pub invalid_metric: Option<&'static str>,
    /// What failed when a port call did ("inventory store failed").
    pub unavailable: &'static str,
    /// What to do when that persists.
    pub unavailable_action: &'static str,
}

/// One event-driven stage.
pub trait Stage: Send + Sync {
    /// The lifecycle event types the stage acts on: its subscription's filter on the
    /// order-events topic (functions/registry.json), and every other type is `ignored`.
    const ACCEPTS: &'static [EventType];
    /// The words of its common answers.
    const TEXTS: StageTexts;
    /// What the stage itself says about an event it acts on.
    type Outcome: Outcome + fmt::Debug + Clone + PartialEq;

    /// Acts on `event` (of a type in [`Stage::ACCEPTS`]), read from `record`; an `Err` is a
    /// dependency that failed: the record comes back.
    fn handle(
        &self,
        event: &LifecycleEvent,
        record: &SqsMessage,
    ) -> impl Future<Output = Result<Self::Outcome, PortError>> + Send;
}

/// A stage's outcome for one record: the stage's own, or one of the answers every stage gives
/// alike.
pub enum EventOutcome<S: Stage> {
    /// The stage acted on the event.
    Handled(S::Outcome),
    /// An event type the stage does not act on (its subscription's filter keeps them away):
    /// done, nothing written.
    Ignored(EventType),
    /// The body is not a lifecycle event: the record fails and reaches the stage's DLQ.
    Invalid(String),
    /// A dependency failed: the record comes back.
    Unavailable(PortError),
    /// The stage's write lost to other writes of the same item, still after the adapter's own
    /// tries ([`PortError::Contention`]: a transaction cancelled by `TransactionConflict` on a
    /// busy sku): the record comes back after its queue's retry delay, never failing the
    /// invocation (busy stock is not an outage). Counted by RecordsContended.
    Contended(String),
}

/// The metric of a [`EventOutcome::Contended`] record: records that waited their queue's retry
/// delay because an item was busy (issue 33's goal is none during a flash sale).
pub const CONTENDED_METRIC: &str = "RecordsContended";

impl<S: Stage> fmt::Debug for EventOutcome<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventOutcome::Handled(o) => f.debug_tuple("Handled").field(o).finish(),
            EventOutcome::Ignored(t) => f.debug_tuple("Ignored").field(t).finish(),
            EventOutcome::Invalid(e) => f.debug_tuple("Invalid").field(e).finish(),
            EventOutcome::Unavailable(e) => f.debug_tuple("Unavailable").field(e).finish(),
            EventOutcome::Contended(e) => f.debug_tuple("Contended").field(e).finish(),
        }
    }
}

impl<S: Stage> Clone for EventOutcome<S> {
    fn clone(&self) -> Self {
        match self {
            EventOutcome::Handled(o) => EventOutcome::Handled(o.clone()),
            EventOutcome::Ignored(t) => EventOutcome::Ignored(*t),
            EventOutcome::Invalid(e) => EventOutcome::Invalid(e.clone()),
            EventOutcome::Unavailable(e) => EventOutcome::Unavailable(e.clone()),
            EventOutcome::Contended(e) => EventOutcome::Contended(e.clone()),
        }
    }
}

impl<S: Stage> PartialEq for EventOutcome<S> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EventOutcome::Handled(a), EventOutcome::Handled(b)) => a == b,
            (EventOutcome::Ignored(a), EventOutcome::Ignored(b)) => a == b,
            (EventOutcome::Invalid(a), EventOutcome::Invalid(b)) => a == b,
            (EventOutcome::Unavailable(a), EventOutcome::Unavailable(b)) => a == b,
            (EventOutcome::Contended(a), EventOutcome::Contended(b)) => a == b,
            _ => false,
        }
    }
}

impl<S: Stage> Outcome for EventOutcome<S> {
    fn label(&self) -> &'static str {
        match self {
            EventOutcome::Handled(o) => o.label(),
            EventOutcome::Ignored(_) => "ignored",
            EventOutcome::Invalid(_) => "invalid",
            EventOutcome::Unavailable(_) => "unavailable",
            EventOutcome::Contended(_) => "contended",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            EventOutcome::Handled(o) => o.disposition(),
            EventOutcome::Ignored(_) => Disposition::Done,
            EventOutcome::Invalid(e) => Disposition::Refused {
                reason: format!("{}: {e}", S::TEXTS.invalid),
                action: S::TEXTS.invalid_action,
            },
            EventOutcome::Unavailable(e) => Disposition::Unavailable {
                reason: format!("{}: {e}", S::TEXTS.unavailable),
                action: S::TEXTS.unavailable_action,
            },
            EventOutcome::Contended(e) => Disposition::Later {
                reason: format!("busy item: {e}"),
                action: "other writes of the same item won: SQS delivers the record again after its retry delay; if RecordsContended keeps rising, one sku takes most orders (docs/operations.md, a flash sale)",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            EventOutcome::Handled(o) => o.metric(),
            EventOutcome::Invalid(_) => S::TEXTS.invalid_metric,
            EventOutcome::Contended(_) => Some(CONTENDED_METRIC),
            _ => None,
        }
    }

    fn latency(&self) -> Option<(&'static str, f64)> {
        match self {
            EventOutcome::Handled(o) => o.latency(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            EventOutcome::Handled(o) => o.retry_after(),
            _ => None,
        }
    }
}

/// A [`Stage`] as the batch worker's record handler.
pub struct EventStage<S>(pub S);

/// The stage inside (`worker.handler().store()` reads the stage's store).
impl<S> std::ops::Deref for EventStage<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S: Stage> RecordHandler for EventStage<S> {
    type Outcome = EventOutcome<S>;
    const EVENTS: &'static [EventType] = S::ACCEPTS;

    async fn handle(&self, record: &SqsMessage) -> EventOutcome<S> {
        let event = match read_event(record) {
            Ok(e) => e,
            Err(e) => return EventOutcome::Invalid(e),
        };
        if !S::ACCEPTS.contains(&event.event_type) {
            return EventOutcome::Ignored(event.event_type);
        }
        match self.0.handle(&event, record).await {
            Ok(outcome) => EventOutcome::Handled(outcome),
            Err(PortError::Contention(e)) => EventOutcome::Contended(e),
            Err(e) => EventOutcome::Unavailable(e),
        }
    }
}

/// A record's body as a lifecycle event, its correlation and order ids recorded on the record's
/// span; the parse error when the body is not one.
pub fn read_event(record: &SqsMessage) -> Result<LifecycleEvent, String> {
    let event: LifecycleEvent = serde_json::from_str(record.body.as_deref().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let span = tracing::Span::current();
    span.record("correlation_id", event.correlation_id.as_str());
    span.record("order_id", event.order_id.as_str());
    Ok(event)
}
