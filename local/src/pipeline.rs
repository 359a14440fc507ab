//! The whole pipeline in one process around the emulator, built from the stack's synthesized
//! template: its resources, the real handlers of its functions (configured from the
//! environment the template gives them), its event source mappings and its alarms.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use order_pipeline::runtime::telemetry::LineWriter;

use crate::alarm::{delayed, depth, AlarmEvaluator, AlarmTarget, LocalAlarm};
use crate::emulator::Emulator;
use crate::functions::{build, Handler};
use crate::http::{ApiServer, Route};
use crate::mapping::{Kills, Mapping, MappingOptions, MappingStats};
use crate::provider::{FakeProvider, ProviderRates};
use crate::resources::{create, Created, FunctionSpec, LocalStack};
use crate::schedule::{LocalSchedule, Schedules};
use crate::stream::StreamMapping;
use crate::template::Template;
use crate::{Clients, LocalError};

/// How often the runner runs the stack's EventBridge schedules (dlq-alarm's sweep, every 5
/// minutes on AWS): often enough that a local run or test sees a dead letter swept within
/// seconds.
pub const LOCAL_SCHEDULE_EVERY: Duration = Duration::from_secs(5);

/// The stuck-order age of `order-local demo` and `run` (15 minutes on AWS): an order not ended
/// 20 s after it was accepted is listed stuck, and a demo waits until the watch has looked at
/// every order.
pub const LOCAL_STUCK_AFTER: Duration = Duration::from_secs(20);

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
    /// Every EventBridge schedule of the stack (dlq-alarm's sweep) runs this often instead of
    /// its rate (`LOCAL_SCHEDULE_EVERY` in the runner and the tests); `None` runs none.
    pub schedule_every: Option<Duration>,
    /// How the fake payment provider behaves (the payment stage calls it over HTTP).
    pub provider: ProviderRates,
    /// The payment functions wait this long for the provider instead of the template's
    /// `PAYMENT_TIMEOUT_MS` (local time passing faster, as with `retry_after_seconds`).
    pub payment_timeout: Option<Duration>,
    /// Faults injected between the functions and the emulator (none when `None`).
    pub faults: Option<crate::faults::FaultRates>,
    /// Run the functions' real bootstraps as processes instead of their handlers in process.
    pub bootstraps: Option<crate::process::Bootstraps>,
    /// The order watch's stuck-order age instead of the template's (its queue's delivery delay
    /// and `STUCK_AFTER_SECONDS`): local time passing faster, as with `retry_after_seconds`.
    pub stuck_after: Option<Duration>,
    /// Where the functions send their trace segments (an X-Ray daemon's UDP address; the
    /// runner's `traces::Collector`), given to the bootstraps it runs. The functions run in
    /// process are traced by the process's own logging set-up.
    pub trace_daemon: Option<std::net::SocketAddr>,
    /// Contention as DynamoDB has it, in the emulator the run starts: a transaction naming an
    /// item another transaction committed within this window is cancelled with
    /// `TransactionConflict` ([`Emulator::start_contended`]); `None`: never.
    pub transaction_conflict: Option<Duration>,
    /// Set in every function's environment after the template's (e.g. the flash sale's
    /// TRANSACTION_CONFLICT_TRIES=1, measuring the stages without their in-process retry).
    pub environment: Vec<(String, String)>,
}

impl Options {
    /// A run with nothing injected: its own emulator, failed records back after 1 s, the
    /// alarms read every second and the schedules run every [`LOCAL_SCHEDULE_EVERY`], the fake
    /// provider's defaults, the functions' lines kept in memory, the handlers in process and the
    /// template's stuck-order age. The tests start from it and set what they look at.
    pub fn quiet(prefix: &str) -> Self {
        Options {
            endpoint: None,
            retry_after_seconds: Some(1),
            telemetry: Arc::new(order_pipeline::runtime::telemetry::Captured::default()),
            prefix: prefix.into(),
            alarm_interval: Duration::from_secs(1),
            schedule_every: Some(LOCAL_SCHEDULE_EVERY),
            provider: ProviderRates::default(),
            payment_timeout: None,
            faults: None,
            bootstraps: None,
            stuck_after: None,
            trace_daemon: None,
            transaction_conflict: None,
            environment: Vec::new(),
        }
    }
}

/// An event source mapping and the function it feeds.
pub struct RunningMapping {
    pub binary: String,
    pub queue_url: String,
    pub mapping: Mapping,
    /// The order watch's queue: its messages are held for the stuck-order age, and a drain does
    /// not wait for them ([`LocalPipeline::wait_for_the_watch`] does).
    pub watch: bool,
}

pub struct LocalPipeline {
    pub emulator: Emulator,
    pub clients: Clients,
    pub created: Created,
    pub stack: LocalStack,
    pub mappings: Vec<RunningMapping>,
    /// The stream mappings, with the binary each feeds.
    pub stream_mappings: Vec<(String, StreamMapping)>,
    pub alarms: AlarmEvaluator,
    /// The stack's EventBridge schedules (dlq-alarm's sweep).
    pub schedules: Schedules,
    /// The stack's HTTP APIs, served on loopback.
    pub api_servers: Vec<ApiServer>,
    /// The fake payment provider the payment stage's HTTP adapter calls.
    pub provider: FakeProvider,
    /// The customers' inbox: a queue subscribed to the customer-notifications topic.
    pub inbox: Option<crate::observe::Inbox>,
    /// The proxy injecting faults into the functions' calls, when the run has faults.
    pub faults: Option<crate::faults::FaultProxy>,
    /// The functions run as processes, when booted with bootstraps.
    pub processes: Vec<Arc<crate::process::ProcessFunction>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The function `id` names and its handler of the kind `kind` picks, when it has one.
fn function_and<'a, T>(
    created: &'a Created,
    handlers: &HashMap<String, Handler>,
    id: &str,
    kind: impl Fn(&Handler) -> Option<T>,
) -> Option<(&'a FunctionSpec, T)> {
    Some((created.function(id)?, handlers.get(id).and_then(kind)?))
}

/// How long a run's report waits for DLQ messages a sweep left hidden: dlq-alarm's snapshot
/// visibility (60 s by default) and a margin.
const DLQ_HIDDEN_WAIT: Duration = Duration::from_secs(90);

/// Progress while waiting for the queues to drain.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub queue: u64,
    pub dlq: u64,
    pub records: u64,
    pub elapsed: Duration,
}

impl LocalPipeline {
    /// Boots the stack `template` describes (see [`Template::current`]).
    pub async fn boot(template: &Template, options: Options) -> Result<Self, LocalError> {
        let emulator = match &options.endpoint {
            Some(url) => Emulator::external(url.clone()),
            None => match options.transaction_conflict {
                Some(window) => Emulator::start_contended(window)?,
                None => Emulator::start()?,
            },
        };
        let sdk = emulator.sdk_config().await;
        let clients = Clients::new(&sdk, emulator.endpoint());
        let mut created = create(&clients, template, &options.prefix).await?;

        // The payment stage calls the fake provider through its real HTTP adapter, with an API
        // key stored in the emulator's Secrets Manager, as a deployed stack with a provider does.
        let provider = FakeProvider::start(options.provider.clone()).await?;
        let secret_arn = clients
            .secrets
            .create_secret()
            .name(format!("{}-payment-api-key", options.prefix))
            .secret_string(serde_json::json!({ "apiKey": provider.api_key() }).to_string())
            .send()
            .await
            .map_err(crate::aws_err("store the fake provider's API key"))?
            .arn
            .unwrap_or_default();
        for f in &mut created.functions {
            let (provider_feature, backoff, watch) =
                (f.has("payment-provider"), f.has("backoff"), f.has("watch"));
            let env = &mut f.environment;
            env.extend(options.environment.iter().cloned());
            if provider_feature {
                env.insert("PAYMENT_PROVIDER_URL".into(), provider.url.clone());
                env.insert("PAYMENT_SECRET_ARN".into(), secret_arn.clone());
                if let Some(timeout) = options.payment_timeout {
                    env.insert(
                        "PAYMENT_TIMEOUT_MS".into(),
                        timeout.as_millis().max(100).to_string(),
                    );
                }
            }
            if let (true, Some(after)) = (watch, options.stuck_after) {
                env.insert(
                    "STUCK_AFTER_SECONDS".into(),
                    after.as_secs().max(1).to_string(),
                );
            }
            // Local time passes faster: the stage's own backoff starts at the runner's retry delay.
            if let (true, Some(seconds)) = (backoff, options.retry_after_seconds) {
                env.insert("RETRY_BASE_SECONDS".into(), seconds.max(1).to_string());
                env.insert("RETRY_MAX_SECONDS".into(), (4 * seconds.max(1)).to_string());
            }
        }
        let inbox = match created.stack.outputs.get("CustomerNotificationsTopicArn") {
            Some(topic) => Some(
                crate::observe::Inbox::subscribe(
                    &clients,
                    topic,
                    &format!("{}-inbox", options.prefix),
                )
                .await?,
            ),
            None => None,
        };

        // The functions' own calls go through the fault proxy when the run injects faults.
        let (faults, function_sdk) = match options.faults {
            Some(rates) => {
                let proxy = crate::faults::FaultProxy::start(emulator.endpoint(), rates).await?;
                let sdk = crate::emulator::function_sdk_config_for(&proxy.url).await;
                (Some(proxy), sdk)
            }
            None => (None, sdk.clone()),
        };
        let mut handlers = HashMap::new();
        let mut processes = Vec::new();
        for f in &created.functions {
            let handler = match &options.bootstraps {
                None => build(
                    &f.binary,
                    &f.environment,
                    &function_sdk,
                    options.telemetry.clone(),
                )?,
                Some(bootstraps) => {
                    let endpoint = faults
                        .as_ref()
                        .map_or(emulator.endpoint(), |p| p.url.as_str());
                    let mut environment = f.environment.clone();
                    if let Some(daemon) = options.trace_daemon {
                        environment.insert(
                            order_pipeline::runtime::telemetry::trace::DAEMON_ADDRESS.into(),
                            daemon.to_string(),
                        );
                    }
                    let process = Arc::new(crate::process::ProcessFunction::new(
                        f,
                        &environment,
                        bootstraps,
                        endpoint,
                        options.telemetry.clone(),
                    )?);
                    processes.push(process.clone());
                    Handler::Process(process)
                }
            };
            handlers.insert(f.id.clone(), handler);
        }

        let mut tasks = Vec::new();
        let mut mappings = Vec::new();
        let mut errors_by_function = HashMap::new();
        for m in &created.mappings {
            let function = created.function(&m.function_id).ok_or_else(|| {
                LocalError::Input(format!(
                    "event source mapping {} feeds {}, which is not a function of the stack",
                    m.id, m.function_id
                ))
            })?;
            let Some(handler) = handlers.get(&function.id).and_then(Handler::sqs) else {
                return Err(LocalError::Input(format!(
                    "{} is fed by a queue but its handler does not take SQS batches",
                    function.binary
                )));
            };
            if let (true, Some(after)) = (function.has("watch"), options.stuck_after) {
                clients
                    .sqs
                    .set_queue_attributes()
                    .queue_url(&m.queue.url)
                    .attributes(
                        aws_sdk_sqs::types::QueueAttributeName::DelaySeconds,
                        after.as_secs().max(1).to_string(),
                    )
                    .send()
                    .await
                    .map_err(crate::aws_err("set the watch queue's delivery delay"))?;
            }
            let mapping = Mapping::new();
            tasks.extend(
                mapping.spawn(
                    clients.sqs.clone(),
                    handler,
                    MappingOptions {
                        queue_url: m.queue.url.clone(),
                        queue_arn: m.queue.arn.clone(),
                        batch_size: m.batch_size,
                        batching_window: Duration::from_secs(m.batching_window_seconds),
                        concurrency: m.maximum_concurrency,
                        // A stage with its own backoff delays its failed records itself.
                        retry_after_seconds: options
                            .retry_after_seconds
                            .filter(|_| !function.has("backoff")),
                        function_timeout: Duration::from_secs(function.timeout_seconds),
                        function_name: function.name.clone(),
                        kills: options.faults.filter(|f| f.kill > 0.0).map(|f| Kills {
                            rate: f.kill,
                            within: f.kill_within,
                            return_after_seconds: options.retry_after_seconds,
                        }),
                    },
                ),
            );
            errors_by_function.insert(function.name.clone(), mapping.clone());
            mappings.push(RunningMapping {
                binary: function.binary.clone(),
                queue_url: m.queue.url.clone(),
                mapping,
                watch: function.has("watch"),
            });
        }

        let mut stream_mappings = Vec::new();
        for m in &created.stream_mappings {
            let function = created.function(&m.function_id).ok_or_else(|| {
                LocalError::Input(format!(
                    "stream mapping {} feeds {}, which is not a function of the stack",
                    m.id, m.function_id
                ))
            })?;
            let Some(handler) = handlers.get(&function.id).and_then(Handler::stream) else {
                return Err(LocalError::Input(format!(
                    "{} is fed by a stream but its handler does not take stream batches",
                    function.binary
                )));
            };
            let mapping = StreamMapping::new();
            tasks.push(mapping.spawn(
                clients.streams.clone(),
                clients.sqs.clone(),
                handler,
                m.clone(),
                function.name.clone(),
            ));
            stream_mappings.push((function.binary.clone(), mapping));
        }

        let queues: HashMap<String, String> = created
            .queues
            .iter()
            .map(|q| (q.name.clone(), q.url.clone()))
            .collect();
        let alarm_functions: HashMap<String, AlarmTarget> = created
            .functions
            .iter()
            .filter_map(|f| match handlers.get(&f.id) {
                Some(h) => h.alarm().map(|function| {
                    let target = AlarmTarget {
                        name: f.name.clone(),
                        timeout: Duration::from_secs(f.timeout_seconds),
                        function,
                    };
                    (f.arn.clone(), target)
                }),
                _ => None,
            })
            .collect();
        let alarms = AlarmEvaluator::new(
            created
                .alarms
                .iter()
                .map(|a| LocalAlarm::new(a.clone(), &queues, &errors_by_function, &alarm_functions))
                .collect(),
        );
        tasks.push(alarms.spawn(clients.clone(), options.alarm_interval));

        let schedules = Schedules::default();
        if let Some(every) = options.schedule_every {
            let local = created
                .schedules
                .iter()
                .map(|spec| {
                    match function_and(&created, &handlers, &spec.function_id, Handler::scheduled) {
                        Some((f, h)) => Ok(LocalSchedule {
                            spec: spec.clone(),
                            function_name: f.name.clone(),
                            function_timeout: Duration::from_secs(f.timeout_seconds),
                            function: h,
                        }),
                        None => Err(LocalError::Input(format!(
                            "schedule {} invokes {}, which has no handler for a scheduled event",
                            spec.id, spec.function_id
                        ))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            tasks.extend(schedules.spawn(local, every));
        }

        let mut api_servers = Vec::new();
        let mut stack = created.stack.clone();
        // The ops inbox: what operators are sent (alarms, dlq-alarm's summaries), for `orders ops`.
        let ops_inbox = crate::ops_inbox::subscribe(
            &clients,
            &stack.ops_topic_arn,
            &format!("{}-ops-inbox", options.prefix),
        )
        .await?;
        stack
            .outputs
            .insert(crate::ops_inbox::OUTPUT.to_string(), ops_inbox);
        for api in &created.apis {
            let issuer = crate::issuer::for_api(api, &created)?.map(Arc::new);
            let routes = api
                .routes
                .iter()
                .map(
                    |r| match function_and(&created, &handlers, &r.function_id, Handler::http) {
                        Some((f, h)) => Ok(Route {
                            method: r.method.clone(),
                            path: r.path.clone(),
                            function_name: f.name.clone(),
                            handler: h,
                            jwt: r.jwt.as_ref().map(|j| j.scopes.clone()),
                        }),
                        None => Err(LocalError::Input(format!(
                            "route {} {} of API {} integrates {}, which has no HTTP handler",
                            r.method, r.path, api.id, r.function_id
                        ))),
                    },
                )
                .collect::<Result<Vec<_>, _>>()?;
            let server = ApiServer::start(routes, issuer).await?;
            // The template's URL names API Gateway; locally the API is this server.
            stack
                .outputs
                .insert("ApiUrl".into(), format!("{}/", server.url));
            stack.api_url = Some(server.url.clone());
            api_servers.push(server);
        }
        Ok(LocalPipeline {
            emulator,
            clients,
            created,
            stack,
            mappings,
            stream_mappings,
            alarms,
            schedules,
            api_servers,
            provider,
            inbox,
            faults,
            processes,
            tasks,
        })
    }

    /// The statistics of the mappings that feed `binary`, added up.
    pub fn stats(&self, binary: &str) -> MappingStats {
        let mut total = MappingStats::default();
        for m in self.mappings.iter().filter(|m| m.binary == binary) {
            let s = m.mapping.snapshot();
            total.invocations += s.invocations;
            total.invocation_errors += s.invocation_errors;
            total.records += s.records;
            total.deleted += s.deleted;
            total.failed_records += s.failed_records;
            for (k, v) in s.outcomes {
                total.outcomes.entry(k).or_default().extend(v);
            }
            for (k, v) in s.by_outcome {
                *total.by_outcome.entry(k).or_default() += v;
            }
            total.error_times.extend(s.error_times);
            total.killed += s.killed;
            total.waits.extend(s.waits);
            total.handling.extend(s.handling);
        }
        total
    }

    /// Each queue-fed function's queue waits and invocation times so far (in seconds), in the
    /// registry's order ([`crate::latency::render_queues`]).
    pub fn queue_times(&self) -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
        order_pipeline::registry::functions()
            .iter()
            .map(|f| {
                let s = self.stats(f.name);
                (f.name, s.waits, s.handling)
            })
            .collect()
    }

    /// Waits until every fed queue is empty and idle and every evaluated alarm has caught up
    /// (so the functions it invokes have run on what is there). Returns false on timeout.
    pub async fn wait_until_drained(
        &self,
        timeout: Duration,
        mut progress: impl FnMut(Drain),
    ) -> Result<bool, LocalError> {
        let started = Instant::now();
        let mut quiet = 0;
        let mut last_report = Instant::now();
        while started.elapsed() < timeout {
            let mut queued = 0;
            for m in &self.mappings {
                queued += depth(&self.clients.sqs, &m.queue_url).await?;
            }
            let busy = self.mappings.iter().any(|m| m.mapping.is_busy())
                || self.stream_mappings.iter().any(|(_, m)| m.is_busy())
                || self.schedules.is_busy();
            if queued == 0 && !busy && self.alarms.settled(&self.clients).await? {
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
                    queue: queued,
                    dlq: depth(&self.clients.sqs, &self.stack.dlq_url).await?,
                    records: self
                        .mappings
                        .iter()
                        .map(|m| m.mapping.snapshot().records)
                        .sum(),
                    elapsed: started.elapsed(),
                });
            }
            // Each look reads every fed queue's depth: a request per queue that the emulator
            // answers by walking the queue's messages. Looked at four times a second, this loop
            // was most of the emulator's GetQueueAttributes work, a third of its busy time in
            // the soak's drain (py-spy): once a second is enough to see a drain end.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(false)
    }

    /// Waits until the order watch has looked at every order (no message is held in its queue
    /// any more: at most the stuck-order age after the last order), then until everything has
    /// settled. Returns false on timeout.
    pub async fn wait_for_the_watch(
        &self,
        timeout: Duration,
        progress: impl FnMut(Drain),
    ) -> Result<bool, LocalError> {
        let started = Instant::now();
        for m in self.mappings.iter().filter(|m| m.watch) {
            while delayed(&self.clients.sqs, &m.queue_url).await? > 0 {
                if started.elapsed() >= timeout {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        self.wait_until_drained(timeout.saturating_sub(started.elapsed()), progress)
            .await
    }

    pub async fn shutdown(self) {
        for server in &self.api_servers {
            server.stop();
        }
        self.provider.stop();
        if let Some(f) = &self.faults {
            f.stop();
        }
        for m in &self.mappings {
            m.mapping.stop();
        }
        for (_, m) in &self.stream_mappings {
            m.stop();
        }
        self.alarms.stop();
        self.schedules.stop().await;
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

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
        // A sweep hides the DLQ's messages while it reads them: none may run during the report.
        self.schedules.stop().await;
        // A sweep whose release of its snapshot failed (a fault) leaves messages hidden until
        // their visibility timeout ends: wait for them, or the report would miss them.
        let waiting = Instant::now();
        while crate::alarm::hidden(&self.clients.sqs, &self.stack.dlq_url).await? > 0
            && waiting.elapsed() < DLQ_HIDDEN_WAIT
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        crate::report::collect(
            &self.clients,
            &self.stack,
            planned,
            &self.stats("order-consumer"),
            self.alarms.transitions(),
            self.processes.is_empty(),
        )
        .await
    }
}
