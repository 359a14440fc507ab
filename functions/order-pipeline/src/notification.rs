//! The notification stage: a terminal outcome's event in, one customer notification out.
//!
//! PaymentSucceeded → the confirmation, then `PAID → COMPLETED`; OrderRejected and
//! PaymentFailed → a notice. Each notification goes to the customer-notifications topic with the
//! attributes `eventType`, `customerId` and `dedupeId` (`orderId:eventType`): a notification
//! published twice (a crash between publishing and completing) carries the same dedupe id, so a
//! subscriber drops the copy. A PaymentSucceeded whose order is already COMPLETED is a
//! duplicate event: nothing is published.

use std::future::Future;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{
    format_timestamp, notification_for, CustomerNotification, EventType, LifecycleEvent,
    OrderStatus,
};

use crate::notify::publish;
use crate::port::PortError;
use crate::store::{DynamoStore, TransitionWrite};
use crate::worker::{Disposition, Outcome, RecordHandler};

/// Reading an order's status and writing one conditional transition.
pub trait LifecycleStore: Send + Sync {
    /// The order's status and version (consistent read); `None` when there is no such order.
    fn state(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<(OrderStatus, u64)>, PortError>> + Send;

    /// `false` when the order moved on (nothing written).
    fn transition(
        &self,
        write: &TransitionWrite,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

impl LifecycleStore for DynamoStore {
    async fn state(&self, order_id: &str) -> Result<Option<(OrderStatus, u64)>, PortError> {
        Ok(self.get(order_id).await?.map(|i| (i.status, i.version)))
    }

    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        DynamoStore::transition(self, write).await
    }
}

#[cfg(any(test, feature = "test-support"))]
impl LifecycleStore for crate::inventory::MemoryInventory {
    async fn state(&self, order_id: &str) -> Result<Option<(OrderStatus, u64)>, PortError> {
        self.check()?;
        Ok(self.status(order_id).map(|(s, v, _)| (s, v)))
    }

    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        crate::inventory::InventoryStore::transition(self, write).await
    }
}

/// The customer-notifications topic.
pub trait CustomerPublisher: Send + Sync {
    fn publish(
        &self,
        notification: &CustomerNotification,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub struct SnsCustomerPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsCustomerPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl CustomerPublisher for SnsCustomerPublisher {
    async fn publish(&self, n: &CustomerNotification) -> Result<(), PortError> {
        let body = serde_json::to_string(n).map_err(|e| PortError::Fatal(e.to_string()))?;
        publish(
            &self.client,
            &self.topic_arn,
            None,
            &body,
            &[
                ("eventType", n.event_type.as_str()),
                ("customerId", n.customer_id.as_str()),
                ("dedupeId", n.dedupe_id.as_str()),
            ],
        )
        .await?;
        Ok(())
    }
}

/// Keeps published notifications in memory (tests).
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryCustomerPublisher {
    pub published: std::sync::Mutex<Vec<CustomerNotification>>,
    pub failing: std::sync::Mutex<Option<PortError>>,
}

#[cfg(any(test, feature = "test-support"))]
impl CustomerPublisher for MemoryCustomerPublisher {
    async fn publish(&self, n: &CustomerNotification) -> Result<(), PortError> {
        if let Some(e) = self.failing.lock().ok().and_then(|f| f.clone()) {
            return Err(e);
        }
        if let Ok(mut p) = self.published.lock() {
            p.push(n.clone());
        }
        Ok(())
    }
}

/// The notification stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The confirmation published and the order COMPLETED.
    Completed,
    /// A rejection or payment-failure notice published.
    Notified(EventType),
    /// Already notified and COMPLETED (or the order moved on): nothing published.
    Duplicate,
    Ignored(EventType),
    Invalid(String),
    /// The topic or the table failed: retried.
    Unavailable(PortError),
}

impl Outcome for NotificationOutcome {
    fn label(&self) -> &'static str {
        match self {
            NotificationOutcome::Completed => "completed",
            NotificationOutcome::Notified(_) => "notified",
            NotificationOutcome::Duplicate => "duplicate",
            NotificationOutcome::Ignored(_) => "ignored",
            NotificationOutcome::Invalid(_) => "invalid",
            NotificationOutcome::Unavailable(_) => "unavailable",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            NotificationOutcome::Completed
            | NotificationOutcome::Notified(_)
            | NotificationOutcome::Duplicate
            | NotificationOutcome::Ignored(_) => Disposition::Done,
            NotificationOutcome::Invalid(e) => Disposition::Rejected {
                reason: format!("not a lifecycle event: {e}"),
                action: "find what published it to the order-events topic; the message goes to the notification DLQ",
            },
            NotificationOutcome::Unavailable(e) => Disposition::Unavailable {
                reason: format!("notification failed: {e}"),
                action: "SQS retries the event; if it persists check the customer-notifications topic, its key and the Orders table",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            NotificationOutcome::Completed => Some("OrdersCompleted"),
            NotificationOutcome::Notified(_) => Some("CustomersNotified"),
            NotificationOutcome::Duplicate => Some("EventsDuplicate"),
            NotificationOutcome::Invalid(_) => Some("EventsInvalid"),
            _ => None,
        }
    }
}

/// The notification stage's record handler.
pub struct NotificationWorker<S, P> {
    store: S,
    publisher: P,
}

impl<S: LifecycleStore, P: CustomerPublisher> NotificationWorker<S, P> {
    pub fn new(store: S, publisher: P) -> Self {
        Self { store, publisher }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    async fn notify(
        &self,
        event: &LifecycleEvent,
        notification: &CustomerNotification,
    ) -> Result<NotificationOutcome, PortError> {
        if event.event_type != EventType::PaymentSucceeded {
            self.publisher.publish(notification).await?;
            return Ok(NotificationOutcome::Notified(event.event_type));
        }
        // Confirm only an order still PAID at the event's version: a redelivery after
        // COMPLETED publishes nothing.
        match self.store.state(&event.order_id).await? {
            Some((OrderStatus::Paid, v)) if v == event.version => {}
            _ => return Ok(NotificationOutcome::Duplicate),
        }
        self.publisher.publish(notification).await?;
        let Some(write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Paid,
            OrderStatus::Completed,
            event.version,
            format_timestamp(Utc::now()),
        ) else {
            return Ok(NotificationOutcome::Duplicate);
        };
        Ok(if self.store.transition(&write).await? {
            NotificationOutcome::Completed
        } else {
            NotificationOutcome::Duplicate
        })
    }
}

impl<S: LifecycleStore, P: CustomerPublisher> RecordHandler for NotificationWorker<S, P> {
    type Outcome = NotificationOutcome;

    async fn handle(&self, record: &SqsMessage) -> NotificationOutcome {
        let event = match crate::events::read_event(record) {
            Ok(e) => e,
            Err(e) => return NotificationOutcome::Invalid(e),
        };
        let Some(notification) = notification_for(&event) else {
            return NotificationOutcome::Ignored(event.event_type);
        };
        let outcome = self
            .notify(&event, &notification)
            .await
            .unwrap_or_else(NotificationOutcome::Unavailable);
        if matches!(
            outcome,
            NotificationOutcome::Completed | NotificationOutcome::Notified(_)
        ) {
            tracing::debug!(dedupe_id = notification.dedupe_id, "customer notified");
        }
        outcome
    }
}
