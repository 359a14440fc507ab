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
