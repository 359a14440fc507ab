//! The ports to the topics: the ops topic (notifications) and the order topic (the HTTP API
//! publishes orders to it).

use std::future::Future;

use crate::port::PortError;
use aws_sdk_sns::Client;

use crate::aws::classify;

pub trait Notifier: Send + Sync {
    fn publish(
        &self,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

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
pub(crate) async fn publish(
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
    let out = request.send().await.map_err(|e| classify(&e))?;
    Ok(out.message_id.unwrap_or_default())
}

impl Notifier for SnsNotifier {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        publish(&self.client, &self.topic_arn, Some(subject), message, &[]).await?;
        Ok(())
    }
}

/// Keeps published notifications in memory (tests).
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryNotifier {
    pub published: std::sync::Mutex<Vec<(String, String)>>,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryNotifier {
    pub fn published(&self) -> Vec<(String, String)> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Notifier for MemoryNotifier {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        if let Ok(mut p) = self.published.lock() {
            p.push((subject.to_string(), message.to_string()));
        }
        Ok(())
    }
}

/// Publishes an order to the order topic with its `correlationId` attribute; returns SNS's
/// message id.
pub trait OrderPublisher: Send + Sync {
    fn publish_order(
        &self,
        body: &str,
        correlation_id: &str,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
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

/// Keeps published orders in memory, or fails every publish (tests).
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryPublisher {
    pub published: std::sync::Mutex<Vec<(String, String)>>,
    pub failing: std::sync::atomic::AtomicBool,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryPublisher {
    /// (body, correlation id) of every published order.
    pub fn published(&self) -> Vec<(String, String)> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-support"))]
impl OrderPublisher for MemoryPublisher {
    async fn publish_order(&self, body: &str, correlation_id: &str) -> Result<String, PortError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Retryable("SNS throttled the publish".into()));
        }
        let mut published = self
            .published
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        published.push((body.to_string(), correlation_id.to_string()));
        Ok(format!("memory-{}", published.len()))
    }
}
