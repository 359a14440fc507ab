//! Lambda's DynamoDB stream event source mapping, emulated around a real stream handler.
//!
//! It reads each shard of the stream (moto's DynamoDB Streams) from its start, in order,
//! handing the function batches of at most `batch_size` records. When the function reports a
//! failed record (partial batch response), the records before it are done and the batch is
//! retried from it; a record that has failed `maximum_retry_attempts + 1` times is described in a
//! message to the on-failure queue and skipped, as Lambda does. Local time runs faster: a retry
//! follows after half a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord, StreamViewType};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use futures::future::BoxFuture;
use lambda_runtime::LambdaEvent;

use crate::emulator::EMULATOR_REGION;
use crate::invoke::invocation_context;
use crate::resources::StreamMappingSpec;
use crate::{aws_err, LocalError};

/// A function a DynamoDB stream mapping invokes.
pub trait StreamFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<Event>,
    ) -> BoxFuture<'_, Result<DynamoDbEventResponse, String>>;
}

impl<P: order_pipeline::ports::publish::EventPublisher + 'static> StreamFunction
    for order_pipeline::functions::order_events::OrderEvents<P>
{
    fn invoke(
        &self,
        event: LambdaEvent<Event>,
    ) -> BoxFuture<'_, Result<DynamoDbEventResponse, String>> {
        Box::pin(async move { self.handle(event).await.map_err(|e| e.to_string()) })
    }
}

#[derive(Debug, Default, Clone)]
pub struct StreamStats {
    pub invocations: u64,
    pub records: u64,
    pub failed_records: u64,
    /// Records sent to the on-failure queue after their retries.
    pub sent_to_failure_queue: u64,
}

#[derive(Clone, Default)]
pub struct StreamMapping {
    pub stats: Arc<Mutex<StreamStats>>,
    busy: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// The last poll found every shard read to its end and nothing left to hand over.
    caught_up: Arc<AtomicBool>,
}

/// The record as Lambda hands it to the function.
pub fn to_event_record(record: &Record, stream_arn: &str) -> EventRecord {
    let mut change = StreamRecord::default();
    if let Some(s) = &record.dynamodb {
        let item = |m: &Option<HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            m.clone().map(serde_dynamo::Item::from).unwrap_or_default()
        };
        change.keys = item(&s.keys);
        change.new_image = item(&s.new_image);
        change.old_image = item(&s.old_image);
        change.sequence_number = s.sequence_number.clone();
        change.size_bytes = s.size_bytes.unwrap_or_default();
        change.stream_view_type = Some(StreamViewType::NewAndOldImages);
        if let Some(t) = s.approximate_creation_date_time {
            change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp(t.secs(), 0).unwrap_or_default();
        }
    }
    let mut r = EventRecord::default();
    r.aws_region = EMULATOR_REGION.to_string();
    r.change = change;
    r.event_id = record.event_id.clone().unwrap_or_default();
    r.event_name = record
        .event_name
        .as_ref()
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    r.event_source = Some("aws:dynamodb".into());
    r.event_version = record.event_version.clone();
    r.event_source_arn = Some(stream_arn.to_string());
    r
}

fn sequence_of(record: &Record) -> Option<String> {
    record
        .dynamodb
        .as_ref()
        .and_then(|d| d.sequence_number.clone())
}

struct Shard {
    id: String,
    /// The last sequence number handed over and done; reading resumes after it.
    done_through: Option<String>,
    /// Fetched, not yet done.
    buffer: Vec<Record>,
    /// Failures of the record at the buffer's head.
    attempts: u64,
}

impl StreamMapping {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether records are being handled or wait to be.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0 || !self.caught_up.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> StreamStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn spawn(
        &self,
        streams: aws_sdk_dynamodbstreams::Client,
        sqs: aws_sdk_sqs::Client,
        function: Arc<dyn StreamFunction>,
        spec: StreamMappingSpec,
        function_name: String,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut shards: Vec<Shard> = Vec::new();
            while !me.stop.load(Ordering::SeqCst) {
                let result = me
                    .poll(
                        &streams,
                        &sqs,
                        function.as_ref(),
                        &spec,
                        &function_name,
                        &mut shards,
                    )
                    .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "stream mapping poll failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    }

    async fn poll(
        &self,
        streams: &aws_sdk_dynamodbstreams::Client,
        sqs: &aws_sdk_sqs::Client,
        function: &dyn StreamFunction,
        spec: &StreamMappingSpec,
        function_name: &str,
        shards: &mut Vec<Shard>,
    ) -> Result<(), LocalError> {
        // New shards appear as the stream grows; each is read from its start.
        let described = streams
            .describe_stream()
            .stream_arn(&spec.stream_arn)
            .send()
            .await
            .map_err(aws_err("describe the Orders stream"))?;
        for shard in described
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default()
        {
            let id = shard.shard_id.unwrap_or_default();
            if !shards.iter().any(|s| s.id == id) {
                shards.push(Shard {
                    id,
                    done_through: None,
                    buffer: Vec::new(),
                    attempts: 0,
                });
            }
        }
        let mut idle = true;
        for shard in shards.iter_mut() {
            if shard.buffer.is_empty() {
                // A fresh iterator each time, after what is done (the emulator's long-lived
                // iterators stop seeing new records in some sequences; a new one never does).
                let request = streams
                    .get_shard_iterator()
                    .stream_arn(&spec.stream_arn)
                    .shard_id(&shard.id);
                let request = match &shard.done_through {
                    Some(seq) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(seq),
                    None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                let iterator = request
                    .send()
                    .await
                    .map_err(aws_err("read the Orders stream"))?
                    .shard_iterator;
                let Some(iterator) = iterator else {
                    continue;
                };
                let out = streams
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(1000)
                    .send()
                    .await
                    .map_err(aws_err("get records from the Orders stream"))?;
                shard.buffer = out.records.unwrap_or_default();
            }
            if shard.buffer.is_empty() {
                continue;
            }
            idle = false;
            self.caught_up.store(false, Ordering::SeqCst);
            self.busy.fetch_add(1, Ordering::SeqCst);
            let result = self.invoke(sqs, function, spec, function_name, shard).await;
            self.busy.fetch_sub(1, Ordering::SeqCst);
            result?;
        }
        self.caught_up.store(idle, Ordering::SeqCst);
        Ok(())
    }

    async fn invoke(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &dyn StreamFunction,
        spec: &StreamMappingSpec,
        function_name: &str,
        shard: &mut Shard,
    ) -> Result<(), LocalError> {
        let take = shard.buffer.len().min(spec.batch_size.max(1) as usize);
        let mut event = Event::default();
        event.records = shard.buffer[..take]
            .iter()
            .map(|r| to_event_record(r, &spec.stream_arn))
            .collect();
        let context = invocation_context(uuid::Uuid::new_v4().to_string(), function_name, None);
        let answer = function.invoke(LambdaEvent::new(event, context)).await;
        // The index of the first failed record; a whole-invocation error fails from the start.
        let failed_at = match &answer {
            Ok(response) => response
                .batch_item_failures
                .iter()
                .filter_map(|f| f.item_identifier.as_deref())
                .filter_map(|seq| {
                    shard.buffer[..take].iter().position(|r| {
                        r.dynamodb
                            .as_ref()
                            .and_then(|d| d.sequence_number.as_deref())
                            == Some(seq)
                    })
                })
                .min(),
            Err(_) => Some(0),
        };
        // Decide under the lock, act (sleep, send) after it.
        let give_up = {
            let mut stats = self
                .stats
                .lock()
                .map_err(|e| LocalError::Input(e.to_string()))?;
            stats.invocations += 1;
            match failed_at {
                None => {
                    stats.records += take as u64;
                    shard.done_through = sequence_of(&shard.buffer[take - 1]);
                    shard.buffer.drain(..take);
                    shard.attempts = 0;
                    None
                }
                Some(i) => {
                    stats.records += i as u64;
                    stats.failed_records += 1;
                    if i > 0 {
                        shard.done_through = sequence_of(&shard.buffer[i - 1]);
                    }
                    shard.buffer.drain(..i);
                    shard.attempts = if i == 0 { shard.attempts + 1 } else { 1 };
                    if shard.attempts > spec.maximum_retry_attempts {
                        shard.attempts = 0;
                        stats.sent_to_failure_queue += 1;
                        let record = shard.buffer.remove(0);
                        shard.done_through = sequence_of(&record);
                        Some(Some(record))
                    } else {
                        Some(None)
                    }
                }
            }
        };
        match give_up {
            Some(Some(record)) => {
                self.send_to_failure_queue(sqs, spec, &shard.id, &record)
                    .await?
            }
            Some(None) => tokio::time::sleep(Duration::from_millis(500)).await,
            None => {}
        }
        Ok(())
    }

    /// What Lambda sends to a stream mapping's on-failure destination: where the record is.
    async fn send_to_failure_queue(
        &self,
        sqs: &aws_sdk_sqs::Client,
        spec: &StreamMappingSpec,
        shard_id: &str,
        record: &Record,
    ) -> Result<(), LocalError> {
        let Some(url) = &spec.on_failure_queue_url else {
            tracing::error!("a stream record failed its retries and the mapping has no on-failure destination: it is dropped");
            return Ok(());
        };
        let sequence = record
            .dynamodb
            .as_ref()
            .and_then(|d| d.sequence_number.clone())
            .unwrap_or_default();
        let body = serde_json::json!({
            "requestContext": { "condition": "RetryAttemptsExhausted", "approximateInvokeCount": spec.maximum_retry_attempts + 1 },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence,
                "endSequenceNumber": sequence,
                "batchSize": 1,
                "streamArn": spec.stream_arn,
            }
        });
        sqs.send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(aws_err("send to the stream's on-failure queue"))?;
        Ok(())
    }
}
