//! The port to the ops topic.

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

impl Notifier for SnsNotifier {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            // SNS subjects are at most 100 characters.
            .subject(subject.chars().take(100).collect::<String>())
            .message(message)
            .send()
            .await
            .map_err(|e| classify(&e))?;
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
