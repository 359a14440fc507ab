//! Lambda's runtime API for one process, on a loopback port: it hands the process its
//! invocations and passes their answers back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::{cpu_ms, ProcessStats};
use crate::emulator::EMULATOR_REGION;

const RUNTIME: &str = "/2018-06-01/runtime";

pub(super) type Answer = Result<serde_json::Value, String>;

struct Invocation {
    id: String,
    body: String,
    deadline_ms: i64,
}

pub(super) struct Shared {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
    /// When the process was spawned, and its pid.
    pub(super) started: Mutex<Option<(Instant, u32)>>,
    /// The function's figures: its first start's start-up is written at its first request.
    stats: Arc<ProcessStats>,
}

/// Lambda's runtime API for one process, on a loopback port.
pub(super) struct RuntimeApi {
    pub(super) addr: SocketAddr,
    invocations: mpsc::UnboundedSender<Invocation>,
    pub(super) shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    pub(super) async fn start(
        function_name: &str,
        stats: Arc<ProcessStats>,
    ) -> std::io::Result<Self> {
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
    pub(super) fn invoke(&self, body: String, timeout: Duration) -> oneshot::Receiver<Answer> {
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

    pub(super) fn init_error(&self) -> Option<String> {
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
