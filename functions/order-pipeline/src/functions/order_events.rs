//! order-events: the Orders table's stream (new and old images) in, one lifecycle event per
//! committed status change out, on the order-events topic with the `eventType` attribute.
//!
//! A change and its event cannot diverge: no worker publishes, each only writes its conditional
//! transition, and this function turns what was committed into the event. Records are handled in
//! stream order; the first that fails (a publish error, an image that does not map) is reported
//! in `batchItemFailures` and the rest of the batch is left for the retry, which starts from it
//! (so events of one order keep their order). A record that keeps failing is bisected out and,
//! after the retries, sent to the on-failure destination: nothing is dropped silently. A retried
//! record may publish its event twice; `eventId` (`orderId:version`) tells consumers so.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use order_domain::{format_timestamp, LifecycleEvent, OrderItem};
use tracing::{field, Instrument};

use crate::ports::publish::EventPublisher;
use crate::ports::PortError;
use crate::runtime::telemetry::{ColdStart, LineWriter, Metrics};

/// Why a stream record could not become its event.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("the {0} image does not map to an order: {1}")]
    Image(&'static str, String),
    #[error("publishing failed: {0}")]
    Publish(PortError),
}

pub struct OrderEvents<P> {
    publisher: P,
    service: String,
    telemetry: Arc<dyn LineWriter>,
    cold_start: ColdStart,
}

fn image(record: &EventRecord, which: &'static str) -> Result<Option<OrderItem>, RecordError> {
    let item = if which == "new" {
        &record.change.new_image
    } else {
        &record.change.old_image
    };
    if item.is_empty() {
        return Ok(None);
    }
    serde_dynamo::from_item(item.clone())
        .map(Some)
        .map_err(|e| RecordError::Image(which, e.to_string()))
}

impl<P: EventPublisher> OrderEvents<P> {
    pub fn new(publisher: P, service: String, telemetry: Arc<dyn LineWriter>) -> Self {
        Self {
            publisher,
            service,
            telemetry,
            cold_start: ColdStart::new(),
        }
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// The Lambda handler.
    pub async fn handle(
        &self,
        event: LambdaEvent<Event>,
    ) -> Result<DynamoDbEventResponse, std::convert::Infallible> {
        let span =
            self.cold_start
                .invocation_span(&event.context, &self.service, self.telemetry.as_ref());
        Ok(self
            .handle_records(&event.payload.records)
            .instrument(span)
            .await)
    }

    /// Handles stream records in order, stopping at the first failure.
    ///
    /// Each record's event is read first (in order, up to the first image that does not map);
    /// the events are then published in waves ([`waves`]), each wave in as few requests as the
    /// publisher takes (SNS: PublishBatch, 10 a request): no event of an order is published
    /// before its order's earlier event of the batch was. The first record (in stream order)
    /// that failed is reported; the records after it are retried from it, and an event of
    /// theirs already published is published again (its `eventId` tells consumers so).
    pub async fn handle_records(&self, records: &[EventRecord]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        let mut metrics = Metrics::default();
        // (record index, its event, its span), up to the first record whose image fails.
        let mut pending: Vec<(usize, LifecycleEvent, tracing::Span)> = Vec::new();
        let mut failure: Option<(usize, RecordError, tracing::Span)> = None;
        for (i, record) in records.iter().enumerate() {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let span = tracing::info_span!(
                "record",
                otel.name = self.service.as_str(),
                otel.status_code = field::Empty,
                sequence_number = %sequence,
                order_id = field::Empty,
                correlation_id = field::Empty,
            );
            match span.in_scope(|| event_of(record)) {
                Ok(Some(event)) => pending.push((i, event, span)),
                Ok(None) => {}
                Err(e) => {
                    failure = Some((i, e, span));
                    break;
                }
            }
        }
        let mut published = vec![false; records.len()];
        for wave in waves(&pending) {
            // A wave after a failure would only publish what the retry publishes again.
            let before_failure: Vec<usize> = wave
                .into_iter()
                .filter(|n| failure.as_ref().is_none_or(|(f, _, _)| pending[*n].0 < *f))
                .collect();
            if before_failure.is_empty() {
                break;
            }
            let events: Vec<&LifecycleEvent> =
                before_failure.iter().map(|n| &pending[*n].1).collect();
            let mut results = self.publisher.publish_events(&events).await.into_iter();
            for n in before_failure {
                let (i, event, span) = &pending[n];
                // An event the publisher gave no answer for is not published: it fails.
                let result = results.next().unwrap_or_else(|| {
                    Err(PortError::Retryable(
                        "the publisher answered fewer events than it was given".into(),
                    ))
                });
                match result {
                    Ok(()) => {
                        published[*i] = true;
                        span.in_scope(|| tracing::debug!(event_type = event.event_type.as_str(), event_id = %event.event_id, "event published"));
                    }
                    Err(e) if failure.as_ref().is_none_or(|(f, _, _)| i < f) => {
                        failure = Some((*i, RecordError::Publish(e), span.clone()));
                    }
                    Err(_) => {}
                }
            }
        }
        let published = match &failure {
            Some((f, _, _)) => published[..*f].iter().filter(|p| **p).count(),
            None => published.iter().filter(|p| **p).count(),
        };
        if let Some((i, e, span)) = failure {
            crate::runtime::telemetry::trace::failed(&span);
            let _entered = span.enter();
            tracing::error!(
                error = %e,
                remaining = records.len() - i,
                "stream record failed: it and the records after it are retried; a record that keeps failing goes to the on-failure queue"
            );
            metrics.count("RecordsFailed", 1);
            let mut item = DynamoDbBatchItemFailure::default();
            item.item_identifier = Some(
                records[i]
                    .change
                    .sequence_number
                    .clone()
                    .unwrap_or_default(),
            );
            response.batch_item_failures.push(item);
        }
        metrics.count("EventsPublished", published as u64);
        metrics.count("StreamRecords", records.len() as u64);
        metrics.flush(&self.service, self.telemetry.as_ref());
        tracing::info!(
            records = records.len(),
            published,
            failed = response.batch_item_failures.len(),
            "stream batch processed"
        );
        response
    }
}

/// The events of `pending` in waves: wave k holds each order's k-th event of the batch (as
/// indexes into `pending`, in stream order), so a wave never holds two events of one order and
/// an order's event goes out only after its earlier ones. A batch of distinct orders is one
/// wave.
fn waves(pending: &[(usize, LifecycleEvent, tracing::Span)]) -> Vec<Vec<usize>> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (n, (_, event, _)) in pending.iter().enumerate() {
        let k = seen.entry(event.order_id.as_str()).or_insert(0);
        if waves.len() <= *k {
            waves.push(Vec::new());
        }
        waves[*k].push(n);
        *k += 1;
    }
    waves
}

/// The record's event, its order and correlation ids on the current span; `None` when the
/// change is not a status change.
fn event_of(record: &EventRecord) -> Result<Option<LifecycleEvent>, RecordError> {
    let Some(new) = image(record, "new")? else {
        return Ok(None); // a REMOVE: orders are never deleted by the pipeline
    };
    let old = image(record, "old")?;
    let span = tracing::Span::current();
    span.record("order_id", new.order_id.as_str());
    span.record("correlation_id", new.correlation_id.as_str());
    let now = format_timestamp(Utc::now());
    Ok(LifecycleEvent::from_change(old.as_ref(), &new, &now))
}
