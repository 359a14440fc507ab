//! The topics on SNS: the ops topic ([`SnsNotifier`]), the order topic ([`SnsOrderPublisher`]),
//! the order-events topic ([`SnsEventPublisher`]) and the customer-notifications topic
//! ([`SnsCustomerPublisher`]), each publishing through one helper.

use aws_sdk_sns::Client;
use order_domain::{CustomerNotification, LifecycleEvent};

use tracing::Instrument;

use crate::adapters::aws::classify;
use crate::ports::publish::{CustomerPublisher, EventPublisher, Notifier, OrderPublisher};
use crate::ports::PortError;
use crate::runtime::telemetry::trace;

pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// Publishes `message` to `topic_arn` with an optional subject and string message attributes;
/// returns SNS's message id. Every SNS adapter of the crate publishes through it.
async fn publish(
    client: &Client,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
    attributes: &[(&str, &str)],
) -> Result<String, PortError> {
    let mut request = client
        .publish()
        .topic_arn(topic_arn)
        .message(message)
        // SNS subjects are at most 100 characters.
        .set_subject(subject.map(|s| s.chars().take(100).collect::<String>()));
    for (name, value) in attributes {
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(*value)
            .build()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        request = request.message_attributes(*name, attribute);
    }
    // The publish carries its trace onward: SNS (active tracing) passes it to the SQS
    // subscriptions as `AWSTraceHeader`, and the next stage's record continues it.
    let span = trace::aws_call("SNS", "Publish");
    let sent = match trace::header_of(&span) {
        Some(header) => {
            request
                .customize()
                .mutate_request(move |r| {
                    r.headers_mut().insert("X-Amzn-Trace-Id", header.clone());
                })
                .send()
                .instrument(span)
                .await
        }
        None => request.send().instrument(span).await,
    };
    let out = sent.map_err(|e| classify(&e))?;
    Ok(out.message_id.unwrap_or_default())
}

impl Notifier for SnsNotifier {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        publish(&self.client, &self.topic_arn, Some(subject), message, &[]).await?;
        Ok(())
    }
}

pub struct SnsOrderPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsOrderPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl OrderPublisher for SnsOrderPublisher {
    async fn publish_order(&self, body: &str, correlation_id: &str) -> Result<String, PortError> {
        let attributes = [("correlationId", correlation_id)];
        publish(&self.client, &self.topic_arn, None, body, &attributes).await
    }
}

pub struct SnsEventPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsEventPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl EventPublisher for SnsEventPublisher {
    async fn publish_event(&self, event: &LifecycleEvent) -> Result<(), PortError> {
        let body = serde_json::to_string(event).map_err(|e| PortError::Fatal(e.to_string()))?;
        let attributes = [
            ("eventType", event.event_type.as_str()),
            ("eventId", event.event_id.as_str()),
            ("correlationId", event.correlation_id.as_str()),
        ];
        publish(&self.client, &self.topic_arn, None, &body, &attributes).await?;
        Ok(())
    }
}

pub struct SnsCustomerPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsCustomerPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
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
