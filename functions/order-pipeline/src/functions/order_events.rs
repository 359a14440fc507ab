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
    pub async fn handle_records(&self, records: &[EventRecord]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        let mut metrics = Metrics::default();
        let mut published = 0;
        for record in records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let span = tracing::info_span!(
                "record",
                otel.name = self.service.as_str(),
                otel.status_code = field::Empty,
                sequence_number = %sequence,
                order_id = field::Empty,
                correlation_id = field::Empty,
            );
            match self.one(record).instrument(span.clone()).await {
                Ok(true) => published += 1,
                Ok(false) => {}
                Err(e) => {
                    crate::runtime::telemetry::trace::failed(&span);
                    let _entered = span.enter();
                    tracing::error!(
                        error = %e,
                        remaining = records.len() - published,
                        "stream record failed: it and the records after it are retried; a record that keeps failing goes to the on-failure queue"
                    );
                    metrics.count("RecordsFailed", 1);
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some(sequence);
                    response.batch_item_failures.push(failure);
                    break;
                }
            }
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

    /// Publishes the record's event; `false` when the change is not a status change.
    async fn one(&self, record: &EventRecord) -> Result<bool, RecordError> {
        let Some(new) = image(record, "new")? else {
            return Ok(false); // a REMOVE: orders are never deleted by the pipeline
        };
        let old = image(record, "old")?;
        let span = tracing::Span::current();
        span.record("order_id", new.order_id.as_str());
        span.record("correlation_id", new.correlation_id.as_str());
        let now = format_timestamp(Utc::now());
        let Some(event) = LifecycleEvent::from_change(old.as_ref(), &new, &now) else {
            return Ok(false);
        };
        self.publisher
            .publish_event(&event)
            .await
            .map_err(RecordError::Publish)?;
        tracing::debug!(event_type = event.event_type.as_str(), event_id = %event.event_id, "event published");
        Ok(true)
    }
}
