//! The whole pipeline in one process around the emulator: resources, the real handlers
//! (configured through the same environment variables Lambda gives them), the event source
//! mapping and the alarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use order_pipeline::bootstrap::{LambdaConsumer, LambdaDlqAlarm};
use order_pipeline::config::{ConsumerConfig, DlqAlarmConfig, Env};
use order_pipeline::consumer::OrderConsumer;
use order_pipeline::dlq_alarm::DlqAlarm;
use order_pipeline::notify::SnsNotifier;
use order_pipeline::queue::SqsDeadLetterQueue;
use order_pipeline::store::DynamoStore;
use order_pipeline::telemetry::LineWriter;

use crate::alarm::{depth, AlarmEvaluator};
use crate::emulator::Emulator;
use crate::mapping::{Mapping, MappingOptions};
use crate::resources::{create, LocalStack, Plan};
use crate::settings::Settings;
use crate::{Clients, LocalError};

pub struct Options {
    /// Use an emulator that is already running instead of starting one.
    pub endpoint: Option<String>,
    /// Failed records come back after this many seconds instead of the visibility timeout.
    pub retry_after_seconds: Option<i32>,
    /// Where the functions' own log lines and metrics go.
    pub telemetry: Arc<dyn LineWriter>,
    /// Names the resources, so that runs against one emulator never collide.
    pub prefix: String,
    pub alarm_interval: Duration,
}

pub struct LocalPipeline {
    pub emulator: Emulator,
    pub clients: Clients,
    pub settings: Settings,
    pub plan: Plan,
    pub stack: LocalStack,
    pub consumer: Arc<LambdaConsumer>,
    pub dlq_alarm: Arc<LambdaDlqAlarm>,
    pub mapping: Mapping,
    pub alarm: AlarmEvaluator,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Progress while waiting for the queue to drain.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub queue: u64,
    pub dlq: u64,
    pub records: u64,
    pub elapsed: Duration,
}

fn lookup(vars: HashMap<String, String>) -> Env<impl Fn(&str) -> Option<String>> {
    Env(move |name: &str| vars.get(name).cloned())
}

impl LocalPipeline {
    pub async fn boot(settings: Settings, options: Options) -> Result<Self, LocalError> {
        let emulator = match &options.endpoint {
            Some(url) => Emulator::external(url.clone()),
            None => Emulator::start()?,
        };
        let sdk = emulator.sdk_config().await;
        let clients = Clients::new(&sdk, emulator.endpoint());
        let plan = Plan::from_settings(&settings);
        let stack = create(&clients, emulator.endpoint(), &plan, &options.prefix).await?;

        // The handlers read the environment Lambda would give them (infra/ sets the same).
        let mut consumer_env: HashMap<String, String> =
            plan.consumer.environment.clone().into_iter().collect();
        consumer_env.insert("TABLE_NAME".into(), stack.table_name.clone());
        let consumer_config = ConsumerConfig::from_env(&lookup(consumer_env))
            .map_err(|e| LocalError::Input(e.to_string()))?;
        let mut alarm_env: HashMap<String, String> = plan
            .dlq_alarm_function
            .environment
            .clone()
            .into_iter()
            .collect();
        alarm_env.insert("TABLE_NAME".into(), stack.table_name.clone());
        alarm_env.insert("DLQ_URL".into(), stack.dlq_url.clone());
        alarm_env.insert("OPS_TOPIC_ARN".into(), stack.ops_topic_arn.clone());
        let alarm_config = DlqAlarmConfig::from_env(&lookup(alarm_env))
            .map_err(|e| LocalError::Input(e.to_string()))?;

        let store = DynamoStore::new(clients.dynamodb.clone(), stack.table_name.clone());
        let consumer = Arc::new(OrderConsumer::new(
            store.clone(),
            consumer_config,
            options.telemetry.clone(),
        ));
        let dlq_alarm = Arc::new(DlqAlarm::new(
            store,
            SqsDeadLetterQueue::new(clients.sqs.clone(), stack.dlq_url.clone()),
            SnsNotifier::new(clients.sns.clone(), stack.ops_topic_arn.clone()),
            alarm_config,
            options.telemetry.clone(),
        ));

        let mapping = Mapping::new();
        let mut tasks = mapping.spawn(
            clients.sqs.clone(),
            consumer.clone(),
            MappingOptions {
                queue_url: stack.queue_url.clone(),
                queue_arn: stack.queue_arn.clone(),
                batch_size: plan.event_source_mapping.batch_size as i32,
                batching_window: Duration::from_secs(u64::from(
                    plan.event_source_mapping.maximum_batching_window_seconds,
                )),
                concurrency: plan.event_source_mapping.maximum_concurrency as usize,
                retry_after_seconds: options.retry_after_seconds,
            },
        );
        let alarm = AlarmEvaluator::new();
        tasks.push(alarm.spawn(
            clients.clone(),
            stack.dlq_url.clone(),
            stack.dlq_alarm_name.clone(),
            dlq_alarm.clone(),
            options.alarm_interval,
        ));
        Ok(LocalPipeline {
            emulator,
            clients,
            settings,
            plan,
            stack,
            consumer,
            dlq_alarm,
            mapping,
            alarm,
            tasks,
        })
    }

    /// Waits until the order queue is empty and idle, and the alarm has caught up with the
    /// DLQ (so dlq-alarm has run on what is there). Returns false on timeout.
    pub async fn wait_until_drained(
        &self,
        timeout: Duration,
        mut progress: impl FnMut(Drain),
    ) -> Result<bool, LocalError> {
        let started = Instant::now();
        let mut quiet = 0;
        let mut last_report = Instant::now();
        while started.elapsed() < timeout {
            let queue = depth(&self.clients.sqs, &self.stack.queue_url).await?;
            let dlq = depth(&self.clients.sqs, &self.stack.dlq_url).await?;
            let alarm_caught_up = (dlq > 0) == (self.alarm.state() == "ALARM");
            if queue == 0 && !self.mapping.is_busy() && alarm_caught_up {
                quiet += 1;
                if quiet >= 4 {
                    return Ok(true);
                }
            } else {
                quiet = 0;
            }
            if last_report.elapsed() >= Duration::from_secs(2) {
                last_report = Instant::now();
                progress(Drain {
                    queue,
                    dlq,
                    records: self.mapping.snapshot().records,
                    elapsed: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(false)
    }

    pub async fn shutdown(self) {
        self.mapping.stop();
        self.alarm.stop();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl LocalPipeline {
    /// Publishes `planned` to the order topic and waits until everything has settled.
    pub async fn publish_and_drain(
        &self,
        planned: &[crate::generate::Planned],
        timeout: Duration,
        progress: impl FnMut(Drain),
    ) -> Result<bool, LocalError> {
        crate::publish::publish_all(&self.clients.sns, &self.stack.topic_arn, planned, true)
            .await?;
        self.wait_until_drained(timeout, progress).await
    }

    /// Accounts for every message of `planned` (see [`crate::report`]).
    pub async fn summary(
        &self,
        planned: &[crate::generate::Planned],
    ) -> Result<crate::report::Summary, LocalError> {
        crate::report::collect(
            &self.clients,
            &self.stack,
            planned,
            &self.mapping.snapshot(),
            self.alarm.transitions(),
        )
        .await
    }
}
