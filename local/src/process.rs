//! A function run as its real bootstrap: a process (the host build, or the arm64 one `cdk synth`
//! bundled, under `qemu-aarch64`) behind a stand-in for Lambda's runtime API on loopback. Like a
//! warm Lambda instance it takes one event at a time; it is started at its first invocation and
//! again after it exits. Its stdout and stderr lines go to the run's telemetry.
//!
//! The runner uses it instead of the in-process handler when booted with [`Bootstraps`]: the
//! same mappings, alarms and API server then drive the binaries Lambda would run.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use lambda_runtime::LambdaEvent;
use order_pipeline::telemetry::LineWriter;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::emulator::EMULATOR_REGION;
use crate::functions::{AlarmFunction, Labels, ScheduledFunction, SqsFunction};
use crate::http::HttpFunction;
use crate::resources::FunctionSpec;
use crate::stream::StreamFunction;
use crate::template::Template;
use crate::LocalError;

const RUNTIME: &str = "/2018-06-01/runtime";

/// Where each function's bootstrap is and how to start it.
#[derive(Debug, Clone)]
pub struct Bootstraps {
    /// The bootstrap of each binary.
    pub by_binary: HashMap<String, PathBuf>,
    /// The program that runs a bootstrap, with its arguments (the bootstrap's path follows);
    /// empty to run it directly.
    pub launcher: Vec<String>,
}

impl Bootstraps {
    /// The bootstraps `cdk synth` bundled into the cloud assembly `assembly` (cdk.out): each
    /// function's code asset (`aws:asset:path`) holds a `bootstrap`. `launcher` runs them
    /// (`qemu-aarch64 -L /usr/aarch64-linux-gnu` for the arm64 builds on another machine).
    pub fn from_assembly(
        assembly: &Path,
        template: &Template,
        launcher: Vec<String>,
    ) -> Result<Self, LocalError> {
        let mut by_binary = HashMap::new();
        for (id, binary, r) in functions(template)? {
            let asset = r.metadata["aws:asset:path"].as_str().ok_or_else(|| {
                LocalError::Input(format!(
                    "function {id} has no aws:asset:path: is {} a cloud assembly synthesized with bundling?",
                    assembly.display()
                ))
            })?;
            let bootstrap = assembly.join(asset).join("bootstrap");
            if !bootstrap.is_file() {
                return Err(LocalError::Input(format!(
                    "{} is missing: run `npx cdk synth` (make synth) first",
                    bootstrap.display()
                )));
            }
            by_binary.insert(binary.to_string(), bootstrap);
        }
        Ok(Self {
            by_binary,
            launcher,
        })
    }

    /// The binaries in `dir` named as the template's functions name them (a host release build:
    /// `target/release`), run directly.
    pub fn from_dir(dir: &Path, template: &Template) -> Result<Self, LocalError> {
        let mut by_binary = HashMap::new();
        for (_, binary, _) in functions(template)? {
            let path = dir.join(binary);
            if !path.is_file() {
                return Err(LocalError::Input(format!(
                    "{} is missing: build it with `cargo build --release -p {binary}`",
                    path.display()
                )));
            }
            by_binary.insert(binary.to_string(), path);
        }
        Ok(Self {
            by_binary,
            launcher: Vec::new(),
        })
    }
}

/// Each function of `template` with its id and the binary it runs.
fn functions(
    template: &Template,
) -> Result<Vec<(&str, &str, &crate::template::Resource)>, LocalError> {
    template
        .of_type("AWS::Lambda::Function")
        .map(|(id, r)| {
            let binary = r.metadata[crate::resources::BINARY_METADATA]
                .as_str()
                .ok_or_else(|| LocalError::Input(format!("function {id} names no binary")))?;
            Ok((id, binary, r))
        })
        .collect()
}

/// Whether `path` is an arm64 (aarch64) ELF executable.
pub fn is_arm64_elf(path: &Path) -> bool {
    const EM_AARCH64: u16 = 183;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && header[..4] == *b"\x7fELF"
        && u16::from_le_bytes([header[18], header[19]]) == EM_AARCH64
}

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

/// utime + stime of process `pid`, in milliseconds.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture Lambda and this runner support.
    Some((utime + stime) * 10.0)
}

/// Peak resident memory of process `pid`, in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A function run as a process behind a local runtime API.
pub struct ProcessFunction {
    pub binary: String,
    pub function_name: String,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    timeout: Duration,
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
        let mut env = environment.clone();
        for (k, v) in [
            ("AWS_LAMBDA_FUNCTION_NAME", spec.name.as_str()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "local"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            ("AWS_REGION", EMULATOR_REGION),
            ("AWS_DEFAULT_REGION", EMULATOR_REGION),
            ("AWS_ACCESS_KEY_ID", "emulator"),
            ("AWS_SECRET_ACCESS_KEY", "emulator"),
            ("AWS_ENDPOINT_URL", endpoint),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        Ok(Self {
            binary: spec.binary.clone(),
            function_name: spec.name.clone(),
            command,
            environment: env,
            timeout: Duration::from_secs(spec.timeout_seconds.max(1)),
            telemetry,
            instance: tokio::sync::Mutex::new(None),
            stats: Arc::default(),
        })
    }

    async fn start(&self) -> Result<Instance, String> {
        let api = RuntimeApi::start(&self.function_name, self.stats.clone())
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
        if let (Ok(mut s), Some(pid)) = (api.shared.started.lock(), child.id()) {
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
        let answer = instance.api.invoke(body, self.timeout);
        let handed_out = Instant::now();
        let result = tokio::select! {
            answer = answer => match answer {
                Ok(result) => result,
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

/// The API Gateway HTTP API (payload format 2.0) event for `request`.
fn api_gateway_event(request: &lambda_http::Request) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.into())))
        .collect();
    let body = match request.body() {
        Body::Text(t) => Some(t.clone()),
        Body::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let method = request.method().as_str();
    let path = request.uri().path();
    let now = chrono::Utc::now();
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": request.uri().query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": crate::emulator::EMULATOR_ACCOUNT,
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "order-local"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The HTTP response in an API Gateway (2.0) answer.
fn http_response(answer: &serde_json::Value) -> lambda_http::Response<Body> {
    let status = answer["statusCode"].as_u64().unwrap_or(200) as u16;
    let body = answer["body"].as_str().map(str::to_string);
    let mut r = lambda_http::Response::new(match body {
        Some(b) => Body::Text(b),
        None => Body::Empty,
    });
    *r.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::BAD_GATEWAY);
    if let Some(headers) = answer["headers"].as_object() {
        for (k, v) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                lambda_http::http::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(lambda_http::http::HeaderValue::from_str),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
    }
    r
}

type Answer = Result<serde_json::Value, String>;

struct Invocation {
    id: String,
    body: String,
    deadline_ms: i64,
}

struct Shared {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
    /// When the process was spawned, and its pid.
    started: Mutex<Option<(Instant, u32)>>,
    /// The function's figures: its first start's start-up is written at its first request.
    stats: Arc<ProcessStats>,
}

/// Lambda's runtime API for one process, on a loopback port.
struct RuntimeApi {
    addr: SocketAddr,
    invocations: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    async fn start(function_name: &str, stats: Arc<ProcessStats>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (invocations, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: format!(
                "arn:aws:lambda:{EMULATOR_REGION}:{}:function:{function_name}",
                crate::emulator::EMULATOR_ACCOUNT
            ),
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            started: Mutex::new(None),
            stats,
        });
        let state = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(runtime_api(&state, request).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            invocations,
            shared,
            task,
        })
    }

    /// Queues an invocation; its answer arrives on the returned channel.
    fn invoke(&self, body: String, timeout: Duration) -> oneshot::Receiver<Answer> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.shared.pending.lock() {
            p.insert(id.clone(), tx);
        }
        let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
        let _ = self.invocations.send(Invocation {
            id,
            body,
            deadline_ms,
        });
        rx
    }

    fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().ok()?.clone()
    }
}

fn reply(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r
}

async fn runtime_api(
    state: &Shared,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, String::new()),
    };
    if path == format!("{RUNTIME}/invocation/next") {
        note_first_next(state);
        let next = state.queue.lock().await.recv().await;
        let Some(invocation) = next else {
            return reply(500, String::new());
        };
        let mut r = reply(200, invocation.body);
        for (k, v) in [
            ("lambda-runtime-aws-request-id", invocation.id),
            (
                "lambda-runtime-deadline-ms",
                invocation.deadline_ms.to_string(),
            ),
            (
                "lambda-runtime-invoked-function-arn",
                state.function_arn.clone(),
            ),
            (
                "lambda-runtime-trace-id",
                format!(
                    "Root=1-{:08x}-{};Sampled=0",
                    chrono::Utc::now().timestamp(),
                    uuid::Uuid::new_v4().simple().to_string().split_at(24).0
                ),
            ),
            ("content-type", "application/json".to_string()),
        ] {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                r.headers_mut().insert(k, v);
            }
        }
        return r;
    }
    if path == format!("{RUNTIME}/init/error") {
        if let Ok(mut e) = state.init_error.lock() {
            *e = Some(error_message(&body));
        }
        return reply(202, String::new());
    }
    let answer = path
        .strip_prefix(&format!("{RUNTIME}/invocation/"))
        .and_then(|rest| rest.split_once('/'));
    let Some((id, kind)) = answer else {
        return reply(404, String::new());
    };
    let result = match kind {
        "response" => {
            serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
        }
        "error" => Err(error_message(&body)),
        _ => return reply(404, String::new()),
    };
    if let Some(tx) = state.pending.lock().ok().and_then(|mut p| p.remove(id)) {
        let _ = tx.send(result);
    }
    reply(202, String::new())
}

/// The function's first start-up (spawn to its first request for an event) and the CPU it used.
fn note_first_next(state: &Shared) {
    let Some((spawned, pid)) = state.started.lock().ok().and_then(|s| *s) else {
        return;
    };
    let took = spawned.elapsed().as_micros().max(1) as u64;
    let first = state
        .stats
        .cold_start_us
        .compare_exchange(0, took, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok();
    if first {
        let cpu = cpu_ms(pid).unwrap_or(0.0);
        state
            .stats
            .init_cpu_us
            .store((cpu * 1000.0) as u64, Ordering::Relaxed);
    }
}

/// `errorMessage` of a runtime error document, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects the figures `order-local demo --bootstraps` prints: CPU and peak memory are read
    /// from /proc for a live process, and a process that is gone reads as nothing, not as zero.
    #[test]
    fn usage_is_read_from_proc_for_a_live_process_and_none_for_a_gone_one() {
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let me = std::process::id();
        let cpu = cpu_ms(me).expect("this process's CPU time");
        assert!(cpu >= 10.0, "60 ms of spinning shows as CPU time: {cpu} ms");
        let rss = peak_rss_kb(me).expect("this process's peak memory");
        assert!(rss > 1024, "a test process holds more than 1 MB: {rss} kB");
        let gone = u32::MAX - 1;
        assert_eq!(cpu_ms(gone), None);
        assert_eq!(peak_rss_kb(gone), None);
    }

    /// Protects `--bootstraps DIR`: each of the template's functions is found by its binary's
    /// name in the directory, and a missing one is named with the command that builds it.
    #[test]
    fn bootstraps_from_a_directory_are_found_by_binary_name_and_a_missing_one_is_named() {
        let template: Template = serde_json::from_value(serde_json::json!({
            "Resources": {
                "ConsumerFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Metadata": { crate::resources::BINARY_METADATA: "order-consumer" },
                    "Properties": {}
                },
                "ApiFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Metadata": { crate::resources::BINARY_METADATA: "order-api" },
                    "Properties": {}
                }
            }
        }))
        .expect("a template");
        let dir = std::env::temp_dir().join(format!("bootstraps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("order-consumer"), b"").unwrap();
        let missing = Bootstraps::from_dir(&dir, &template).expect_err("order-api is missing");
        assert!(
            missing.to_string().contains("order-api")
                && missing
                    .to_string()
                    .contains("cargo build --release -p order-api"),
            "{missing}"
        );
        std::fs::write(dir.join("order-api"), b"").unwrap();
        let found = Bootstraps::from_dir(&dir, &template).expect("both binaries are there");
        assert_eq!(found.by_binary["order-api"], dir.join("order-api"));
        assert_eq!(
            found.by_binary["order-consumer"],
            dir.join("order-consumer")
        );
        assert!(found.launcher.is_empty(), "host binaries run directly");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
