//! The notification stage: a terminal outcome's event in, one customer notification out.
//!
//! PaymentSucceeded → the confirmation, then `PAID → COMPLETED`; OrderRejected and
//! PaymentFailed → a notice. Each notification goes to the customer-notifications topic with the
//! attributes `eventType`, `customerId` and `dedupeId` (`orderId:eventType`). What it says (the
//! customer, the amount and currency, the reason) is read from the Orders table, whose order must
//! be at the event's status and version; the event's body is never trusted. A notification
//! published twice (a crash between publishing and completing) carries the same dedupe id, so a
//! subscriber drops the copy. A PaymentSucceeded whose order is already COMPLETED is a
//! duplicate event: nothing is published.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{
    format_timestamp, notification_for, CustomerNotification, EventOrder, EventType,
    LifecycleEvent, OrderStatus,
};

use crate::ports::orders::{LifecycleStore, TransitionWrite};
use crate::ports::publish::CustomerPublisher;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{Disposition, Outcome};

/// The notification stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The confirmation published and the order COMPLETED.
    Completed,
    /// A rejection or payment-failure notice published.
    Notified(EventType),
    /// The stored order is not at the event's status and version (already COMPLETED, or the
    /// event is not the table's): nothing published.
    Duplicate,
}

impl Outcome for NotificationOutcome {
    fn label(&self) -> &'static str {
        match self {
            NotificationOutcome::Completed => "completed",
            NotificationOutcome::Notified(_) => "notified",
            NotificationOutcome::Duplicate => "duplicate",
        }
    }

    fn disposition(&self) -> Disposition {
        Disposition::Done
    }

    fn metric(&self) -> Option<&'static str> {
        Some(match self {
            NotificationOutcome::Completed => "OrdersCompleted",
            NotificationOutcome::Notified(_) => "CustomersNotified",
            NotificationOutcome::Duplicate => "EventsDuplicate",
        })
    }
}

/// The notification stage.
pub struct NotificationStage<S, P> {
    store: S,
    publisher: P,
}

impl<S: LifecycleStore, P: CustomerPublisher> NotificationStage<S, P> {
    pub fn new(store: S, publisher: P) -> Self {
        Self { store, publisher }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// The notification `event` calls for, told from the stored order (which must be at the
    /// event's status and version), with the event as that order makes it; `None` when the
    /// order is not there (a duplicate or forged event).
    pub(crate) async fn notification(
        &self,
        event: &LifecycleEvent,
    ) -> Result<Option<(LifecycleEvent, CustomerNotification)>, PortError> {
        // The notification tells what the Orders table holds, never the event's body: the
        // stored order must be at the event's status and version (a confirmation redelivered
        // after COMPLETED, or a forged event, publishes nothing).
        let stored = match self.store.read(&event.order_id).await? {
            Some(order) if order.status == event.status && order.version == event.version => order,
            _ => return Ok(None),
        };
        let event = LifecycleEvent {
            order: EventOrder::of(&stored),
            ..event.clone()
        };
        // Every accepted event type has a notification (a test holds ACCEPTS to the domain's
        // notification_for); one without would be a defect, reported as the topic's failure.
        let notification = notification_for(&event).ok_or_else(|| {
            PortError::Fatal(format!(
                "no customer notification is defined for {}",
                event.event_type.as_str()
            ))
        })?;
        Ok(Some((event, notification)))
    }

    /// After a published notification: a confirmation's order `PAID → COMPLETED` (`false` when
    /// it moved on); nothing for the other notices.
    pub(crate) async fn complete(&self, event: &LifecycleEvent) -> Result<bool, PortError> {
        if event.event_type != EventType::PaymentSucceeded {
            return Ok(true);
        }
        let Some(write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Paid,
            OrderStatus::Completed,
            event.version,
            format_timestamp(Utc::now()),
        ) else {
            return Ok(false);
        };
        self.store.transition(&write).await
    }
}

impl<S: LifecycleStore, P: CustomerPublisher> Stage for NotificationStage<S, P> {
    const ACCEPTS: &'static [EventType] = &[
        EventType::PaymentSucceeded,
        EventType::OrderRejected,
        EventType::PaymentFailed,
        EventType::OrderCancelled,
        EventType::OrderRefunded,
    ];
    const TEXTS: StageTexts = StageTexts {
        invalid: "not a lifecycle event",
        invalid_action: "find what published it to the order-events topic; the message goes to the notification DLQ",
        invalid_metric: Some("EventsInvalid"),
        unavailable: "notification failed",
        unavailable_action: "SQS retries the event; if it persists check the customer-notifications topic, its key and the Orders table",
    };
    type Outcome = NotificationOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        _record: &SqsMessage,
    ) -> Result<NotificationOutcome, PortError> {
        let Some((event, notification)) = self.notification(event).await? else {
            return Ok(NotificationOutcome::Duplicate);
        };
        self.publisher.publish(&notification).await?;
        tracing::debug!(dedupe_id = notification.dedupe_id, "customer notified");
        if !self.complete(&event).await? {
            return Ok(NotificationOutcome::Duplicate);
        }
        Ok(match event.event_type {
            EventType::PaymentSucceeded => NotificationOutcome::Completed,
            other => NotificationOutcome::Notified(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: every event type the notification stage subscribes to has a customer
    /// notification, so no accepted event ends as a "no notification" failure.
    #[test]
    fn every_accepted_event_type_has_a_notification() {
        type Notifications = NotificationStage<
            crate::adapters::dynamodb::DynamoStore,
            crate::adapters::sns::SnsCustomerPublisher,
        >;
        for event_type in <Notifications as Stage>::ACCEPTS {
            let mut event: LifecycleEvent = serde_json::from_str(
                &std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../test/events/lifecycle-order-accepted.json"
                ))
                .unwrap(),
            )
            .unwrap();
            event.event_type = *event_type;
            assert!(
                notification_for(&event).is_some(),
                "{event_type:?} has no notification"
            );
        }
    }
}
