//! The notification DLQ's stage: an event the notification stage could not process (it failed
//! until SQS moved it to the DLQ) gets one last attempt, the stage's own
//! ([`NotificationStage`]): the notification told from the stored order, published, then a
//! confirmation's order completed. When the publish fails, the failure is recorded on the order
//! (`notificationFailure`, with the publish's error): a confirmation's order goes
//! `PAID → COMPLETED` with it (the payment stands; only the message is missing), a rejection's
//! or payment failure's order keeps its terminal status and version. A notification that was
//! published is never recorded as failed: when only the completion fails, the letter comes back
//! (and its next showing publishes the same dedupe id again). Every letter that arrives raises
//! the DLQ's `DeadLettersArrived` alarm to ops; each failure recorded is an ERROR line and the
//! `NotificationsDeadLettered` metric. Nothing for an order no longer at the event's status and
//! version, or whose failure is recorded already. When the order cannot be read or the record
//! cannot be written, the letter comes back and stays in the DLQ.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{format_timestamp, EventType, LifecycleEvent, NotificationFailure, OrderStatus};

use crate::ports::orders::{LifecycleStore, TransitionWrite};
use crate::ports::publish::CustomerPublisher;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{receive_count, Disposition, Outcome};
use crate::stages::notification::NotificationStage;

/// What the notification DLQ stage did with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationDlqOutcome {
    /// The last attempt published the notification (and completed a PAID order).
    Notified,
    /// The last attempt failed: `PAID → COMPLETED` with the failure recorded.
    CompletedUnnotified,
    /// The last attempt failed: the failure recorded on the terminal order.
    Unnotified,
    /// The order is not at the event's status and version: nothing to do.
    AlreadySettled,
}

impl Outcome for NotificationDlqOutcome {
    fn label(&self) -> &'static str {
        match self {
            NotificationDlqOutcome::Notified => "notified_on_last_attempt",
            NotificationDlqOutcome::CompletedUnnotified => "completed_unnotified",
            NotificationDlqOutcome::Unnotified => "unnotified",
            NotificationDlqOutcome::AlreadySettled => "already_settled",
        }
    }

    fn disposition(&self) -> Disposition {
        Disposition::Done
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            NotificationDlqOutcome::Notified => Some("CustomersNotified"),
            NotificationDlqOutcome::CompletedUnnotified | NotificationDlqOutcome::Unnotified => {
                Some("NotificationsDeadLettered")
            }
            NotificationDlqOutcome::AlreadySettled => None,
        }
    }
}

/// The notification DLQ's stage: no order waits PAID because its confirmation kept failing, and
/// every notification that was never sent is on its order.
pub struct NotificationDlqStage<S, P> {
    stage: NotificationStage<S, P>,
}

impl<S: LifecycleStore, P: CustomerPublisher> NotificationDlqStage<S, P> {
    /// `stage` is the notification stage the letters came from.
    pub fn new(stage: NotificationStage<S, P>) -> Self {
        Self { stage }
    }

    pub fn store(&self) -> &S {
        self.stage.store()
    }

    pub fn publisher(&self) -> &P {
        self.stage.publisher()
    }

    /// Records `failure` on the order: with `PAID → COMPLETED` for a confirmation, as it is on a
    /// terminal order. When the write's condition fails, the stored order says whether this very
    /// failure was recorded (a lost answer, the SDK's retry failing the condition) or the order
    /// moved on.
    async fn record(
        &self,
        event: &LifecycleEvent,
        failure: NotificationFailure,
    ) -> Result<NotificationDlqOutcome, PortError> {
        let confirmation = event.event_type == EventType::PaymentSucceeded;
        let written = if confirmation {
            let Some(mut write) = TransitionWrite::new(
                &event.order_id,
                OrderStatus::Paid,
                OrderStatus::Completed,
                event.version,
                failure.failed_at.clone(),
            ) else {
                return Ok(NotificationDlqOutcome::AlreadySettled);
            };
            write.notification_failure = Some(failure);
            self.store().transition(&write).await?
        } else {
            self.store()
                .record_notification_failure(&event.order_id, event.status, event.version, &failure)
                .await?
        };
        let recorded = written
            || self
                .store()
                .read(&event.order_id)
                .await?
                .and_then(|o| o.notification_failure)
                .is_some_and(|f| f.event_type == event.event_type);
        Ok(match (recorded, confirmation) {
            (false, _) => NotificationDlqOutcome::AlreadySettled,
            (true, true) => NotificationDlqOutcome::CompletedUnnotified,
            (true, false) => NotificationDlqOutcome::Unnotified,
        })
    }
}

impl<S: LifecycleStore, P: CustomerPublisher> Stage for NotificationDlqStage<S, P> {
    const ACCEPTS: &'static [EventType] = <NotificationStage<S, P> as Stage>::ACCEPTS;
    const TEXTS: StageTexts = StageTexts {
        invalid: "a dead letter that is not a lifecycle event",
        invalid_action:
            "it stays in the notification DLQ (its alarm stays on): read it, then delete it by hand",
        invalid_metric: None,
        unavailable: "the notification's failure could not be recorded",
        unavailable_action: "SQS delivers the dead letter again; check the Orders table",
    };
    type Outcome = NotificationDlqOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        record: &SqsMessage,
    ) -> Result<NotificationDlqOutcome, PortError> {
        let Some((event, notification)) = self.stage.notification(event).await? else {
            return Ok(NotificationDlqOutcome::AlreadySettled);
        };
        let event = &event;
        let error = match self.publisher().publish(&notification).await {
            // Published: the customer was told. Completing is the table's part; if it fails the
            // letter comes back (never a failure recorded for a notification that went out).
            Ok(()) => {
                return Ok(if self.stage.complete(event).await? {
                    NotificationDlqOutcome::Notified
                } else {
                    NotificationDlqOutcome::AlreadySettled
                });
            }
            Err(error) => error,
        };
        let receives = receive_count(record);
        let failure = NotificationFailure {
            event_type: event.event_type,
            error: format!(
                "the notification stage failed on the event until it was dead-lettered (seen {receives} times in the DLQ), and the last attempt failed with: {error}"
            ),
            failed_at: format_timestamp(Utc::now()),
        };
        let outcome = self.record(event, failure).await?;
        if outcome != NotificationDlqOutcome::AlreadySettled {
            tracing::error!(
                %error,
                event_type = event.event_type.as_str(),
                action = "the customer was not told of this outcome (the order records it in notificationFailure); fix the cause (the customer-notifications topic, its key or policy), then tell the customer (docs/operations.md)",
                "notification dead letter handled"
            );
        }
        Ok(outcome)
    }
}
