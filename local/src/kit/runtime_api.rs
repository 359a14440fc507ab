//! A stand-in for Lambda's runtime API on a loopback port, for running a function's real
//! bootstrap: it hands the process the invocations it is given, one per `invocation/next`, and
//! passes each answer (`response` or `error`) back to whoever invoked. It keeps what an
//! `init/error` reported, can report every request the process makes as it comes (for a test's
//! eyes), and can note each `invocation/next` (a cold start's end, for the figures).
//!
//! One per process: dropping it closes the connections the process has open with it (a waiting
//! `invocation/next` ends without an answer), as a killed Lambda instance's would be.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use super::http_server::{response, with_header, HttpServer, Request, Response, ServerOptions};

/// The runtime API's path prefix.
pub const RUNTIME: &str = "/2018-06-01/runtime";
/// Where the process asks for its next event.
pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// When an invocation's time is up (`lambda-runtime-deadline-ms`).
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    /// At this time, in milliseconds since the epoch.
    At(i64),
    /// This long after the process is handed the event.
    AfterDelivery(Duration),
}

/// One event for the process.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// The event, as JSON.
    pub body: String,
    pub deadline: Deadline,
    /// `lambda-runtime-trace-id`; a fresh sampled one when `None`.
    pub trace_id: Option<String>,
}

impl Invocation {
    pub fn new(request_id: impl Into<String>, body: impl Into<String>, deadline: Deadline) -> Self {
        Self {
            request_id: request_id.into(),
            body: body.into(),
            deadline,
            trace_id: None,
        }
    }

    /// The invocation with the trace header `trace_id`.
    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }
}

/// The process's answer to an invocation.
#[derive(Debug)]
pub struct Answer {
    /// Its response (JSON), or the `errorMessage` of its error (the body when there is none).
    pub result: Result<serde_json::Value, String>,
    /// When the process was handed the event.
    pub delivered_at: Instant,
    /// When its answer came.
    pub answered_at: Instant,
}

/// What the stand-in heard from the process, or did (with [`RuntimeOptions::hear`]).
#[derive(Debug)]
pub enum Heard {
    /// A request the process made.
    Request {
        method: String,
        path: String,
        body: String,
    },
    /// The invocation `request_id` was handed to the process (its answer to `invocation/next`).
    Delivered { request_id: String, at: Instant },
}

/// How the stand-in is set up.
#[derive(Clone, Default)]
pub struct RuntimeOptions {
    /// `lambda-runtime-invoked-function-arn`.
    pub function_arn: String,
    /// TCP_NODELAY on the process's connections (the benchmarks).
    pub nodelay: bool,
    /// Report every request and delivery, for [`RuntimeApi::next_heard`].
    pub hear: bool,
    /// Called as each `invocation/next` arrives, before it waits for an event.
    pub on_next: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl RuntimeOptions {
    pub fn new(function_arn: impl Into<String>) -> Self {
        Self {
            function_arn: function_arn.into(),
            ..Self::default()
        }
    }
}

struct Pending {
    answer: oneshot::Sender<Answer>,
    delivered_at: Option<Instant>,
}

struct Shared {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, Pending>>,
    init_error: Mutex<Option<String>>,
    heard: Option<std::sync::mpsc::Sender<Heard>>,
    on_next: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Shared {
    fn hear(&self, heard: Heard) {
        if let Some(tx) = &self.heard {
            let _ = tx.send(heard);
        }
    }
}

/// Lambda's runtime API for one process, on a loopback port.
pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
    invocations: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    heard: Option<Mutex<std::sync::mpsc::Receiver<Heard>>>,
    _server: HttpServer,
    /// The stand-in's own runtime, when it was started from synchronous code.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The stand-in stopped (dropped): a waiting `invocation/next` ends without an answer.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the runtime API stand-in stopped")
    }
}

impl std::error::Error for Stopped {}

impl RuntimeApi {
    /// Listens on a loopback port, on the current tokio runtime.
    pub async fn start(options: RuntimeOptions) -> std::io::Result<Self> {
        let (invocations, queue) = mpsc::unbounded_channel();
        let (heard_tx, heard) = match options.hear {
            true => {
                let (tx, rx) = std::sync::mpsc::channel();
                (Some(tx), Some(Mutex::new(rx)))
            }
            false => (None, None),
        };
        let shared = Arc::new(Shared {
            function_arn: options.function_arn,
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            heard: heard_tx,
            on_next: options.on_next,
        });
        let state = shared.clone();
        let server = HttpServer::start_with(
            ServerOptions {
                nodelay: options.nodelay,
                on_connection: None,
            },
            move |request| {
                let state = state.clone();
                async move { runtime_api(&state, request).await }
            },
        )
        .await?;
        Ok(Self {
            addr: server.addr,
            invocations,
            shared,
            heard,
            _server: server,
            runtime: None,
        })
    }

    /// Like [`RuntimeApi::start`], from synchronous code: the stand-in runs on a runtime of its
    /// own, which it shuts down when dropped.
    pub fn start_blocking(options: RuntimeOptions) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut api = runtime.block_on(Self::start(options))?;
        api.runtime = Some(runtime);
        Ok(api)
    }

    /// Queues `invocation`; the process's answer arrives on the returned channel.
    pub fn invoke(&self, invocation: Invocation) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.shared.pending.lock() {
            p.insert(
                invocation.request_id.clone(),
                Pending {
                    answer: tx,
                    delivered_at: None,
                },
            );
        }
        let _ = self.invocations.send(invocation);
        rx
    }

    /// What the process reported to `init/error`, if it did.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().ok()?.clone()
    }

    /// The next thing heard within `timeout`, if any (always `None` without
    /// [`RuntimeOptions::hear`]). Blocks the calling thread.
    pub fn next_heard(&self, timeout: Duration) -> Option<Heard> {
        self.heard.as_ref()?.lock().ok()?.recv_timeout(timeout).ok()
    }
}

/// A trace header for a sampled trace of its own, as Lambda gives a traced function: the
/// function's segments go to the local collector when the runner traces (AWS_XRAY_DAEMON_ADDRESS
/// set), and nowhere otherwise. `Parent` stands for the function segment Lambda would make.
pub fn fresh_trace_id() -> String {
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=1",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple().to_string().split_at(24).0,
        uuid::Uuid::new_v4().simple().to_string().split_at(16).0
    )
}

async fn runtime_api(state: &Shared, request: Request) -> Result<Response, Stopped> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let body: Bytes = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(response(400, "")),
    };
    state.hear(Heard::Request {
        method,
        path: path.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if path == NEXT {
        if let Some(noted) = &state.on_next {
            noted();
        }
        let next = state.queue.lock().await.recv().await;
        let Some(invocation) = next else {
            return Err(Stopped);
        };
        let now = Instant::now();
        if let Some(p) = state
            .pending
            .lock()
            .ok()
            .as_mut()
            .and_then(|p| p.get_mut(&invocation.request_id))
        {
            p.delivered_at = Some(now);
        }
        let deadline_ms = match invocation.deadline {
            Deadline::At(ms) => ms,
            Deadline::AfterDelivery(d) => {
                chrono::Utc::now().timestamp_millis() + d.as_millis() as i64
            }
        };
        let trace_id = invocation.trace_id.unwrap_or_else(fresh_trace_id);
        let mut r = response(200, invocation.body);
        for (k, v) in [
            (
                "lambda-runtime-aws-request-id",
                invocation.request_id.as_str(),
            ),
            ("lambda-runtime-deadline-ms", &deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", &state.function_arn),
            ("lambda-runtime-trace-id", &trace_id),
            ("content-type", "application/json"),
        ] {
            r = with_header(r, k, v);
        }
        state.hear(Heard::Delivered {
            request_id: invocation.request_id,
            at: now,
        });
        return Ok(r);
    }
    if path == format!("{RUNTIME}/init/error") {
        if let Ok(mut e) = state.init_error.lock() {
            *e = Some(error_message(&body));
        }
        return Ok(response(202, ""));
    }
    let answer = path
        .strip_prefix(&format!("{RUNTIME}/invocation/"))
        .and_then(|rest| rest.split_once('/'));
    let Some((id, kind)) = answer else {
        return Ok(response(404, ""));
    };
    let result = match kind {
        "response" => {
            serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
        }
        "error" => Err(error_message(&body)),
        _ => return Ok(response(404, "")),
    };
    let answered_at = Instant::now();
    if let Some(p) = state.pending.lock().ok().and_then(|mut p| p.remove(id)) {
        let _ = p.answer.send(Answer {
            result,
            delivered_at: p.delivered_at.unwrap_or(answered_at),
            answered_at,
        });
    }
    Ok(response(202, ""))
}

/// `errorMessage` of a runtime error document, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
