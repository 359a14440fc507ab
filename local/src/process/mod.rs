//! A function run as its real bootstrap: a process (the host build, or the arm64 one `cdk synth`
//! bundled, under `qemu-aarch64`) behind a stand-in for Lambda's runtime API on loopback. Like a
//! warm Lambda instance it takes one event at a time; it is started at its first invocation and
//! again after it exits. Its stdout and stderr lines go to the run's telemetry.
//!
//! The runner uses it instead of the in-process handler when booted with [`Bootstraps`]: the
//! same mappings, alarms and API server then drive the binaries Lambda would run.

mod api_gateway;
mod bootstraps;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use futures::future::BoxFuture;
use lambda_http::Body;
use lambda_runtime::LambdaEvent;
use order_pipeline::runtime::telemetry::LineWriter;
use tokio::io::AsyncBufReadExt;

use crate::emulator::EMULATOR_REGION;
use crate::http::HttpFunction;
use crate::invoke::{AlarmFunction, ScheduledFunction};
use crate::kit::proc::{cpu_ms, peak_rss_kb};
use crate::kit::runtime_api::{Deadline, Invocation, RuntimeApi, RuntimeOptions};
use crate::resources::FunctionSpec;
use crate::stream::StreamFunction;
use crate::LocalError;
use api_gateway::{api_gateway_event, http_response};
pub use bootstraps::{is_arm64_elf, Bootstraps};
use order_pipeline::registry::{Labels, SqsFunction};

/// What one process function has done, for the run's report.
#[derive(Debug, Default)]
pub struct ProcessStats {
    pub started: AtomicU64,
    pub answered: AtomicU64,
    pub errors: AtomicU64,
    /// Wall time from handing out events to their answers, summed, in microseconds.
    pub busy_us: AtomicU64,
    /// The first start's process spawn to its first request for an event, in microseconds.
    pub cold_start_us: AtomicU64,
    /// CPU the first start used before asking for its first event (its initialisation), in
    /// microseconds.
    pub init_cpu_us: AtomicU64,
}

/// The running process's resource use, from /proc (Linux).
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system CPU time since the process started, in milliseconds.
    pub cpu_ms: f64,
    /// Peak resident memory (VmHWM), in kB.
    pub peak_rss_kb: u64,
}

/// A function run as a process behind a local runtime API.
pub struct ProcessFunction {
    pub binary: String,
    pub function_name: String,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    timeout: Duration,
    /// Every invocation's `lambda-runtime-deadline-ms`, when fixed (cargo-lambda's constant);
    /// else now + the function's timeout, as Lambda sends.
    fixed_deadline_ms: Option<i64>,
    telemetry: Arc<dyn LineWriter>,
    instance: tokio::sync::Mutex<Option<Instance>>,
    pub stats: Arc<ProcessStats>,
}

struct Instance {
    child: tokio::process::Child,
    api: RuntimeApi,
}

impl Instance {
    fn usage(&self) -> Option<Usage> {
        let pid = self.child.id()?;
        Some(Usage {
            cpu_ms: cpu_ms(pid)?,
            peak_rss_kb: peak_rss_kb(pid)?,
        })
    }
}

impl ProcessFunction {
    /// The function `spec` run from `bootstrap`, talking to the AWS endpoint `endpoint`.
    pub fn new(
        spec: &FunctionSpec,
        environment: &BTreeMap<String, String>,
        bootstraps: &Bootstraps,
        endpoint: &str,
        telemetry: Arc<dyn LineWriter>,
    ) -> Result<Self, LocalError> {
        let bootstrap = bootstraps.by_binary.get(&spec.binary).ok_or_else(|| {
            LocalError::Input(format!("no bootstrap was built for {}", spec.binary))
        })?;
        let mut command = bootstraps.launcher.clone();
        command.push(bootstrap.display().to_string());
        // The emulator's endpoint, region and credentials, as the printed `cargo lambda watch`
        // gives them; then what Lambda itself sets.
        let mut env = crate::emulator::watch_environment(environment, endpoint);
        for (k, v) in [
            ("AWS_LAMBDA_FUNCTION_NAME", spec.name.as_str()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "local"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            ("AWS_DEFAULT_REGION", EMULATOR_REGION),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        Ok(Self {
            binary: spec.binary.clone(),
            function_name: spec.name.clone(),
            command,
            environment: env,
            timeout: Duration::from_secs(spec.timeout_seconds.max(1)),
            fixed_deadline_ms: None,
            telemetry,
            instance: tokio::sync::Mutex::new(None),
            stats: Arc::default(),
        })
    }

    /// Hands every invocation the deadline `deadline_ms` as it is, as cargo-lambda's runtime
    /// API does (`kit::watch`).
    pub fn with_fixed_deadline(mut self, deadline_ms: i64) -> Self {
        self.fixed_deadline_ms = Some(deadline_ms);
        self
    }

    async fn start(&self) -> Result<Instance, String> {
        // When the process was spawned, and its pid: its first request for an event ends its
        // start-up.
        let started: Arc<Mutex<Option<(Instant, u32)>>> = Arc::default();
        let (noted, stats) = (started.clone(), self.stats.clone());
        let options = RuntimeOptions {
            on_next: Some(Arc::new(move || note_first_next(&noted, &stats))),
            ..RuntimeOptions::new(format!(
                "arn:aws:lambda:{EMULATOR_REGION}:{}:function:{}",
                crate::emulator::EMULATOR_ACCOUNT,
                self.function_name
            ))
        };
        let api = RuntimeApi::start(options)
            .await
            .map_err(|e| format!("runtime API for {}: {e}", self.binary))?;
        let spawned = Instant::now();
        let mut child = tokio::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .env_clear()
            .envs(&self.environment)
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Not in the terminal's process group: Ctrl-C stops the runner, which stops these.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {} ({}): {e}", self.binary, self.command.join(" ")))?;
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let telemetry = self.telemetry.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    telemetry.write_line(&line);
                }
            });
        }
        if let (Ok(mut s), Some(pid)) = (started.lock(), child.id()) {
            *s = Some((spawned, pid));
        }
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        Ok(Instance { child, api })
    }

    /// Invokes the function with `event` and returns its answer; an invocation error, a
    /// process that exits and a timeout are errors.
    pub async fn call<E: serde::Serialize>(&self, event: &E) -> Result<serde_json::Value, String> {
        let body = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let mut slot = self.instance.lock().await;
        if slot.is_none() {
            *slot = Some(self.start().await?);
        }
        let Some(instance) = slot.as_mut() else {
            return Err(format!("{} did not start", self.binary));
        };
        let deadline_ms = self.fixed_deadline_ms.unwrap_or_else(|| {
            chrono::Utc::now().timestamp_millis() + self.timeout.as_millis() as i64
        });
        let answer = instance.api.invoke(Invocation::new(
            uuid::Uuid::new_v4().to_string(),
            body,
            Deadline::At(deadline_ms),
        ));
        let handed_out = Instant::now();
        let result = tokio::select! {
            answer = answer => match answer {
                Ok(answer) => answer.result,
                Err(_) => Err(format!("{}'s runtime API stopped", self.binary)),
            },
            status = instance.child.wait() => {
                let init = instance.api.init_error();
                *slot = None;
                Err(format!(
                    "{} exited during the invocation ({}){}",
                    self.binary,
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    init.map(|e| format!(": {e}")).unwrap_or_default()
                ))
            }
            _ = tokio::time::sleep(self.timeout) => {
                *slot = None;
                Err(format!("{} timed out after {:?}", self.binary, self.timeout))
            }
        };
        match &result {
            Ok(_) => {
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .busy_us
                    .fetch_add(handed_out.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        };
        result
    }

    /// The running process's CPU time and peak memory; `None` when it is not running or is
    /// answering an event.
    pub fn usage(&self) -> Option<Usage> {
        self.instance.try_lock().ok()?.as_ref()?.usage()
    }
}

impl SqsFunction for ProcessFunction {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>> {
        Box::pin(async move {
            let answer = self.call(&event.payload).await?;
            let response: SqsBatchResponse = serde_json::from_value(answer)
                .map_err(|e| format!("{} answered no batch response: {e}", self.binary))?;
            // A process reports no per-record outcomes: the tables tell what happened.
            Ok((response, Vec::new()))
        })
    }
}

impl AlarmFunction for ProcessFunction {
    fn invoke(
        &self,
        event: LambdaEvent<CloudWatchAlarm>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>> {
        Box::pin(async move { self.call(&event.payload).await })
    }
}

impl ScheduledFunction for ProcessFunction {
    fn invoke(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>> {
        Box::pin(async move { self.call(&event.payload).await })
    }
}

impl StreamFunction for ProcessFunction {
    fn invoke(
        &self,
        event: LambdaEvent<Event>,
    ) -> BoxFuture<'_, Result<DynamoDbEventResponse, String>> {
        Box::pin(async move {
            let answer = self.call(&event.payload).await?;
            serde_json::from_value(answer)
                .map_err(|e| format!("{} answered no batch response: {e}", self.binary))
        })
    }
}

impl HttpFunction for ProcessFunction {
    fn invoke(&self, request: lambda_http::Request) -> BoxFuture<'_, lambda_http::Response<Body>> {
        Box::pin(async move {
            let event = api_gateway_event(&request);
            match self.call(&event).await {
                Ok(answer) => http_response(&answer),
                Err(e) => {
                    // What API Gateway answers when the integration fails.
                    tracing::warn!(error = %e, function = %self.binary, "integration failed");
                    let mut r = lambda_http::Response::new(Body::Text(
                        r#"{"message":"Internal Server Error"}"#.into(),
                    ));
                    *r.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
                    r
                }
            }
        })
    }
}

/// The function's first start-up (spawn to its first request for an event) and the CPU it used.
fn note_first_next(started: &Mutex<Option<(Instant, u32)>>, stats: &ProcessStats) {
    let Some((spawned, pid)) = started.lock().ok().and_then(|s| *s) else {
        return;
    };
    let took = spawned.elapsed().as_micros().max(1) as u64;
    let first = stats
        .cold_start_us
        .compare_exchange(0, took, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok();
    if first {
        let cpu = cpu_ms(pid).unwrap_or(0.0);
        stats
            .init_cpu_us
            .store((cpu * 1000.0) as u64, Ordering::Relaxed);
    }
}
