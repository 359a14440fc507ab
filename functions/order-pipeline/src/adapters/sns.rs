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

/// Sends an SNS request (a fluent builder) in a call span named after `operation`, carrying the
/// span's trace onward: SNS (active tracing) passes `X-Amzn-Trace-Id` to the SQS subscriptions
/// as `AWSTraceHeader`, and the next stage's record continues it. A macro: `Publish` and
/// `PublishBatch` builders share no trait to be generic over.
macro_rules! send_traced {
    ($request:expr, $operation:literal) => {{
        let span = trace::aws_call("SNS", $operation);
        match trace::header_of(&span) {
            Some(header) => {
                $request
                    .customize()
                    .mutate_request(move |r| {
                        r.headers_mut().insert("X-Amzn-Trace-Id", header.clone());
                    })
                    .send()
                    .instrument(span)
                    .await
            }
            None => $request.send().instrument(span).await,
        }
    }};
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
    let out = send_traced!(request, "Publish").map_err(|e| classify(&e))?;
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

/// An event's message attributes: the subscriptions filter on `eventType`.
fn event_attributes(event: &LifecycleEvent) -> [(&str, &str); 3] {
    [
        ("eventType", event.event_type.as_str()),
        ("eventId", event.event_id.as_str()),
        ("correlationId", event.correlation_id.as_str()),
    ]
}

/// SNS's limits of one PublishBatch: 10 entries, 256 KiB of messages and attributes together
/// (kept under with a margin for the attributes' names and types).
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 240 * 1024;

impl EventPublisher for SnsEventPublisher {
    async fn publish_event(&self, event: &LifecycleEvent) -> Result<(), PortError> {
        let body = serde_json::to_string(event).map_err(|e| PortError::Fatal(e.to_string()))?;
        publish(
            &self.client,
            &self.topic_arn,
            None,
            &body,
            &event_attributes(event),
        )
        .await?;
        Ok(())
    }

    /// The events in PublishBatch requests of up to 10 (and 240 KiB), sent at once: one
    /// request where there were ten (a tenth of the calls, the CPU and the waits of publishing
    /// one by one). Each request carries the caller's trace, so the subscriptions' records
    /// continue it as they continue a Publish's.
    async fn publish_events(&self, events: &[&LifecycleEvent]) -> Vec<Result<(), PortError>> {
        let mut results: Vec<Result<(), PortError>> = Vec::with_capacity(events.len());
        let mut entries: Vec<(usize, String)> = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match serde_json::to_string(event) {
                Ok(body) => {
                    // Published only once an answer says so.
                    results.push(Err(PortError::Retryable("not sent".into())));
                    entries.push((i, body));
                }
                Err(e) => results.push(Err(PortError::Fatal(e.to_string()))),
            }
        }
        // Consecutive entries, at most BATCH_ENTRIES and BATCH_BYTES a request.
        let mut chunks: Vec<&[(usize, String)]> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (n, (i, body)) in entries.iter().enumerate() {
            let size = body.len()
                + event_attributes(events[*i])
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            if n > start && (n - start == BATCH_ENTRIES || bytes + size > BATCH_BYTES) {
                chunks.push(&entries[start..n]);
                (start, bytes) = (n, 0);
            }
            bytes += size;
        }
        if start < entries.len() {
            chunks.push(&entries[start..]);
        }
        let answers =
            futures::future::join_all(chunks.iter().map(|chunk| self.publish_chunk(events, chunk)))
                .await;
        for (chunk, answer) in chunks.iter().zip(answers) {
            for ((i, _), result) in chunk.iter().zip(answer) {
                results[*i] = result;
            }
        }
        results
    }
}

impl SnsEventPublisher {
    /// One PublishBatch of `chunk` (indexes into `events` with their bodies): one result per
    /// entry. A refused request fails every entry with its error; an entry SNS lists failed
    /// fails with its code (fatal when SNS says it is the sender's fault, else retryable).
    async fn publish_chunk(
        &self,
        events: &[&LifecycleEvent],
        chunk: &[(usize, String)],
    ) -> Vec<Result<(), PortError>> {
        let mut request_entries = Vec::with_capacity(chunk.len());
        for (n, (i, body)) in chunk.iter().enumerate() {
            let mut entry = aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                .id(n.to_string())
                .message(body);
            for (name, value) in event_attributes(events[*i]) {
                match aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                {
                    Ok(attribute) => entry = entry.message_attributes(name, attribute),
                    Err(e) => return vec![Err(PortError::Fatal(e.to_string())); chunk.len()],
                }
            }
            match entry.build() {
                Ok(entry) => request_entries.push(entry),
                Err(e) => return vec![Err(PortError::Fatal(e.to_string())); chunk.len()],
            }
        }
        let request = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(request_entries));
        let out = match send_traced!(request, "PublishBatch") {
            Ok(out) => out,
            Err(e) => return vec![Err(classify(&e)); chunk.len()],
        };
        let mut results: Vec<Result<(), PortError>> = vec![
            Err(PortError::Retryable(
                "SNS's PublishBatch answer named neither success nor failure for this entry".into()
            ));
            chunk.len()
        ];
        for ok in out.successful.unwrap_or_default() {
            if let Some(n) = ok.id.as_deref().and_then(|id| id.parse::<usize>().ok()) {
                if n < results.len() {
                    results[n] = Ok(());
                }
            }
        }
        for failed in out.failed.unwrap_or_default() {
            if let Ok(n) = failed.id.parse::<usize>() {
                if n < results.len() {
                    let text = format!(
                        "SNS refused the event: {} {}",
                        failed.code,
                        failed.message.unwrap_or_default()
                    );
                    results[n] = Err(if failed.sender_fault {
                        PortError::Fatal(text)
                    } else {
                        PortError::Retryable(text)
                    });
                }
            }
        }
        results
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
