//! Lambda's SQS event source mapping, emulated around a real queue-fed handler.
//!
//! Like Lambda it long-polls, gathers up to `batch_size` records or waits `batching_window`,
//! invokes the handler with an `SqsEvent`, deletes only the records not in
//! `batchItemFailures`, and leaves the failed ones to come back after the visibility timeout
//! (the emulator moves them to the DLQ after maxReceiveCount). An invocation error deletes
//! nothing. `concurrency` pollers run at once, as the mapping's maximum concurrency allows.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use lambda_runtime::LambdaEvent;
use order_pipeline::adapters::sqs::change_visibility;
use order_pipeline::runtime::worker::receive_count;
use rand::Rng;

use crate::invoke::invocation_context;
use crate::{aws_err, LocalError};
use order_pipeline::registry::SqsFunction;

#[derive(Debug, Clone)]
pub struct MappingOptions {
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub batching_window: Duration,
    pub concurrency: usize,
    /// When set, failed records come back after this many seconds instead of the queue's
    /// visibility timeout: local time passes faster; nothing else changes.
    pub retry_after_seconds: Option<i32>,
    /// The function's timeout: each invocation gets Lambda's deadline from it.
    pub function_timeout: Duration,
    /// The function's name, as Lambda gives it in the invocation's context.
    pub function_name: String,
    /// Kills injected into the invocations (fault runs only).
    pub kills: Option<Kills>,
}

/// Invocations killed mid-batch: at `rate`, an invocation is stopped at a random moment within
/// `within` of its start. Its calls in flight are abandoned (the emulator may or may not have
/// applied them), nothing is deleted, and the records come back after `return_after_seconds`
/// (the queue's visibility timeout, shortened as local time is), as after a Lambda process that
/// crashed or was killed.
#[derive(Debug, Clone, Copy)]
pub struct Kills {
    pub rate: f64,
    pub within: Duration,
    /// `None`: the queue's own visibility timeout.
    pub return_after_seconds: Option<i32>,
}

/// What the mapping saw, for the summary and the accounting.
#[derive(Debug, Default, Clone)]
pub struct MappingStats {
    pub invocations: u64,
    pub invocation_errors: u64,
    pub records: u64,
    pub deleted: u64,
    pub failed_records: u64,
    /// Outcome labels per correlation id, in the order they happened.
    pub outcomes: HashMap<String, Vec<String>>,
    /// Count per outcome label.
    pub by_outcome: BTreeMap<String, u64>,
    /// When invocations failed as a whole (the function's Errors metric).
    pub error_times: Vec<Instant>,
    /// Invocations killed before they answered (see [`Kills`]).
    pub killed: u64,
    /// Each record's wait in its queue on its first receive, in seconds: from its
    /// `SentTimestamp` to the invocation that carried it (the batching window and the messages
    /// ahead of it).
    pub waits: Vec<f64>,
    /// Each answered invocation's time, in seconds: the stage's work on its batch.
    pub handling: Vec<f64>,
}

#[derive(Clone)]
pub struct Mapping {
    pub stats: Arc<Mutex<MappingStats>>,
    busy: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Default for Mapping {
    fn default() -> Self {
        Self::new()
    }
}

impl Mapping {
    pub fn new() -> Self {
        Self {
            stats: Arc::new(Mutex::new(MappingStats::default())),
            busy: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether any poller holds records it has not finished with.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> MappingStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts the pollers. They run until [`Mapping::stop`].
    pub fn spawn(
        &self,
        sqs: aws_sdk_sqs::Client,
        function: Arc<dyn SqsFunction>,
        options: MappingOptions,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let invocation_ids = Arc::new(AtomicU64::new(0));
        (0..options.concurrency.max(1))
            .map(|_| {
                let me = self.clone();
                let sqs = sqs.clone();
                let function = function.clone();
                let options = options.clone();
                let ids = invocation_ids.clone();
                tokio::spawn(async move {
                    while !me.stop.load(Ordering::SeqCst) {
                        if let Err(e) = me.poll_once(&sqs, function.as_ref(), &options, &ids).await {
                            tracing::warn!(error = %e, "event source mapping poll failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                })
            })
            .collect()
    }

    async fn receive(
        &self,
        sqs: &aws_sdk_sqs::Client,
        options: &MappingOptions,
        max: i32,
        wait_seconds: i32,
    ) -> Result<Vec<Message>, LocalError> {
        Ok(sqs
            .receive_message()
            .queue_url(&options.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(aws_err("receive from the order queue"))?
            .messages
            .unwrap_or_default())
    }

    async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &dyn SqsFunction,
        options: &MappingOptions,
        ids: &AtomicU64,
    ) -> Result<(), LocalError> {
        let mut batch = self.receive(sqs, options, options.batch_size, 1).await?;
        if batch.is_empty() {
            return Ok(());
        }
        self.busy.fetch_add(1, Ordering::SeqCst);
        let result = self
            .gather_and_invoke(sqs, function, options, ids, &mut batch)
            .await;
        self.busy.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn gather_and_invoke(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &dyn SqsFunction,
        options: &MappingOptions,
        ids: &AtomicU64,
        batch: &mut Vec<Message>,
    ) -> Result<(), LocalError> {
        // The batching window starts with the first record, as on Lambda.
        let window_ends = Instant::now() + options.batching_window;
        while (batch.len() as i32) < options.batch_size && Instant::now() < window_ends {
            let more = self
                .receive(sqs, options, options.batch_size - batch.len() as i32, 0)
                .await?;
            if more.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            batch.extend(more);
        }

        let records: Vec<SqsMessage> = batch
            .iter()
            .map(|m| to_record(m, &options.queue_arn))
            .collect();
        let correlation: HashMap<String, String> = records
            .iter()
            .map(|r| {
                let id = r.message_id.clone().unwrap_or_default();
                let corr = r
                    .message_attributes
                    .get("correlationId")
                    .and_then(|a| a.string_value.clone())
                    .unwrap_or_else(|| id.clone());
                (id, corr)
            })
            .collect();
        let context = invocation_context(
            format!("local-{}", ids.fetch_add(1, Ordering::SeqCst)),
            &options.function_name,
            Some(options.function_timeout),
        );
        let invoked_at = chrono::Utc::now().timestamp_millis();
        let waits: Vec<f64> = records
            .iter()
            .filter(|r| receive_count(r) == 1)
            .filter_map(|r| r.attributes.get("SentTimestamp")?.parse::<i64>().ok())
            .map(|sent| (invoked_at - sent).max(0) as f64 / 1000.0)
            .collect();
        let started = Instant::now();
        let mut event = SqsEvent::default();
        event.records = records;
        let event = LambdaEvent::new(event, context);
        let kill_at = options.kills.and_then(|k| {
            let mut rng = rand::rng();
            (rng.random::<f64>() < k.rate).then(|| {
                (
                    k,
                    rng.random_range(Duration::ZERO..k.within.max(Duration::from_millis(1))),
                )
            })
        });
        let invocation = match kill_at {
            None => function.invoke(event).await,
            Some((kills, after)) => {
                match tokio::time::timeout(after, function.invoke(event)).await {
                    Ok(answered) => answered,
                    Err(_) => {
                        // Killed: the invocation's future (its calls in flight) is dropped.
                        if let Some(seconds) = kills.return_after_seconds {
                            let all: Vec<&Message> = batch.iter().collect();
                            hide_for(sqs, &options.queue_url, &all, seconds).await?;
                        }
                        let mut stats = self
                            .stats
                            .lock()
                            .map_err(|e| LocalError::Input(e.to_string()))?;
                        stats.invocations += 1;
                        stats.records += batch.len() as u64;
                        stats.failed_records += batch.len() as u64;
                        stats.killed += 1;
                        return Ok(());
                    }
                }
            }
        };

        let (failed, reports, errored) = match invocation {
            Ok((response, reports)) => {
                let failed: Vec<String> = response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect();
                (failed, reports, false)
            }
            Err(_) => (
                batch.iter().filter_map(|m| m.message_id.clone()).collect(),
                Vec::new(),
                true,
            ),
        };
        let (done, retry): (Vec<&Message>, Vec<&Message>) = batch
            .iter()
            .partition(|m| !failed.contains(m.message_id.as_ref().unwrap_or(&String::new())));
        delete(sqs, &options.queue_url, &done).await?;
        if let Some(seconds) = options.retry_after_seconds {
            hide_for(sqs, &options.queue_url, &retry, seconds).await?;
        }

        let mut stats = self
            .stats
            .lock()
            .map_err(|e| LocalError::Input(e.to_string()))?;
        stats.invocations += 1;
        stats.waits.extend(waits);
        stats.handling.push(started.elapsed().as_secs_f64());
        stats.records += batch.len() as u64;
        stats.deleted += done.len() as u64;
        stats.failed_records += retry.len() as u64;
        if errored {
            stats.invocation_errors += 1;
            stats.error_times.push(Instant::now());
        }
        for (message_id, label) in reports {
            let label = label.to_string();
            *stats.by_outcome.entry(label.clone()).or_default() += 1;
            let corr = correlation.get(&message_id).cloned().unwrap_or(message_id);
            stats.outcomes.entry(corr).or_default().push(label);
        }
        Ok(())
    }
}

/// The record as Lambda hands it to the function.
pub fn to_record(m: &Message, queue_arn: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id.clone();
    r.receipt_handle = m.receipt_handle.clone();
    r.body = m.body.clone();
    r.md5_of_body = m.md5_of_body.clone();
    r.event_source = Some("aws:sqs".into());
    r.event_source_arn = Some(queue_arn.to_string());
    if let Some(attrs) = &m.attributes {
        for (k, v) in attrs {
            r.attributes.insert(k.as_str().to_string(), v.clone());
        }
    }
    if let Some(attrs) = &m.message_attributes {
        for (k, v) in attrs {
            let mut a = SqsMessageAttribute::default();
            a.string_value = v.string_value.clone();
            a.data_type = Some(v.data_type.clone());
            r.message_attributes.insert(k.clone(), a);
        }
    }
    r
}

async fn delete(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[&Message],
) -> Result<(), LocalError> {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .map_err(aws_err("delete entry"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            continue;
        }
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(aws_err("delete processed records"))?;
    }
    Ok(())
}

async fn hide_for(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[&Message],
    seconds: i32,
) -> Result<(), LocalError> {
    let receipts: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.receipt_handle.as_deref())
        .collect();
    change_visibility(sqs, queue_url, &receipts, seconds)
        .await
        .map_err(|e| LocalError::Aws {
            what: "shorten the failed records' visibility".into(),
            detail: e.to_string(),
        })
}
