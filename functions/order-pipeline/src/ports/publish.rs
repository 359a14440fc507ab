//! The ports to the topics: the order topic (the HTTP API publishes orders to it), the
//! order-events topic (lifecycle events), the customer-notifications topic and the ops topic
//! (notifications).

use std::future::Future;

use order_domain::{CustomerNotification, LifecycleEvent};

use crate::ports::PortError;

/// Publishes an order to the order topic with its `correlationId` attribute; returns SNS's
/// message id.
pub trait OrderPublisher: Send + Sync {
    fn publish_order(
        &self,
        body: &str,
        correlation_id: &str,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// Publishes lifecycle events.
pub trait EventPublisher: Send + Sync {
    fn publish_event(
        &self,
        event: &LifecycleEvent,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Publishes `events`, in as few requests as the adapter can (SNS: PublishBatch, 10 a
    /// request), with no order among them: one result per event, in their order. By default
    /// one [`EventPublisher::publish_event`] each.
    fn publish_events(
        &self,
        events: &[&LifecycleEvent],
    ) -> impl Future<Output = Vec<Result<(), PortError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                results.push(self.publish_event(event).await);
            }
            results
        }
    }
}

/// The customer-notifications topic.
pub trait CustomerPublisher: Send + Sync {
    fn publish(
        &self,
        notification: &CustomerNotification,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The ops topic.
pub trait Notifier: Send + Sync {
    fn publish(
        &self,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
