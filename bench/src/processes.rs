//! The real bootstraps as processes (sections 1 and 4): their cold starts, and order-consumer
//! over many batches through the runtime API, with what /proc says they used.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use order_local::kit::proc;
use order_local::kit::runtime_api::{Deadline, Invocation, RuntimeApi, RuntimeOptions};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::fakes::{fake_dynamodb, sqs_event};
use crate::BENCH_REGION;

fn lambda_env(
    cmd: &mut tokio::process::Command,
    runtime: std::net::SocketAddr,
    ddb: std::net::SocketAddr,
    name: &str,
) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        // As the stack sets it for every function (infra/constructs/rust-lambda.ts).
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", BENCH_REGION)
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_ENDPOINT_URL", format!("http://{ddb}"))
        .env("TABLE_NAME", "Orders")
        .env("DLQ_URL", format!("http://{ddb}/0/dlq"))
        .env("OPS_TOPIC_ARN", "arn:aws:sns:local:0:ops")
        .env("ORDER_TOPIC_ARN", "arn:aws:sns:local:0:orders")
        // The later stages' settings (each function reads its own; payment without a provider
        // URL simulates its charges).
        .env("INVENTORY_TABLE_NAME", "Inventory")
        .env("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sns:local:0:order-events")
        .env(
            "NOTIFICATION_TOPIC_ARN",
            "arn:aws:sns:local:0:notifications",
        )
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if name == "payment" {
        // The one stage the stack gives a backoff (infra/pipeline-stack.ts), with its own queue
        // for the visibility changes: its SQS client is part of its start-up.
        cmd.env("RETRY_BASE_SECONDS", "10")
            .env("RETRY_MAX_SECONDS", "300")
            .env("QUEUE_URL", format!("http://{ddb}/0/payment"));
    }
}

/// Process start until the first `GET .../invocation/next`, `runs` times.
pub(crate) async fn cold_starts(binary: &Path, name: &str, runs: usize) -> Vec<f64> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let options = RuntimeOptions {
        nodelay: true,
        // No event is queued: the request is held, and the process is killed before it gets
        // work.
        on_next: Some(Arc::new(move || {
            let _ = tx.send(Instant::now());
        })),
        ..RuntimeOptions::new(format!("arn:aws:lambda:local:0:function:{name}"))
    };
    let runtime = RuntimeApi::start(options)
        .await
        .expect("bind the runtime API");
    let ddb = fake_dynamodb(Duration::ZERO, Arc::default()).await;
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut cmd = tokio::process::Command::new(binary);
        lambda_env(&mut cmd, runtime.addr, ddb.addr, name);
        cmd.stdout(Stdio::null());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("start the bootstrap");
        tokio::select! {
            at = tokio::time::timeout(Duration::from_secs(10), rx.recv()) => match at {
                Ok(Some(at)) => times.push((at - started).as_secs_f64() * 1000.0),
                _ => eprintln!("{name}: no request to the runtime API within 10 s"),
            },
            status = child.wait() => {
                eprintln!("{name} exited before asking for an event ({status:?}): run it with this environment to see why");
                return times;
            }
        }
        let _ = child.kill().await;
    }
    times
}

pub(crate) struct Run {
    pub(crate) durations_ms: Vec<f64>,
    pub(crate) log_bytes: usize,
    pub(crate) peak_rss_kb: u64,
    /// User + system CPU time of the process, in milliseconds.
    pub(crate) cpu_ms: f64,
    /// The kernel's part of `cpu_ms`.
    pub(crate) system_ms: f64,
    /// Minor page faults (pages the kernel mapped on first touch) over the whole run.
    pub(crate) minor_faults: u64,
    /// Voluntary + involuntary context switches of all the process's threads.
    pub(crate) context_switches: u64,
    pub(crate) ddb_requests: u64,
}

/// Feeds `batches` SQS events of 10 orders to the real binary through the runtime API.
pub(crate) async fn many_batches(
    binary: &Path,
    batches: usize,
    delay: Duration,
    extra_env: &[(String, String)],
    sampled: bool,
) -> Run {
    // Every request for an event: the one after the last batch's answer says the process is done.
    let (next_tx, mut nexts) = mpsc::unbounded_channel::<()>();
    let options = RuntimeOptions {
        nodelay: true,
        on_next: Some(Arc::new(move || {
            let _ = next_tx.send(());
        })),
        ..RuntimeOptions::new("arn:aws:lambda:local:0:function:order-consumer")
    };
    let runtime = RuntimeApi::start(options)
        .await
        .expect("bind the runtime API");
    // Unsampled, as most invocations are on Lambda; `sampled`: every invocation is (with an
    // X-Ray daemon named, `--env AWS_XRAY_DAEMON_ADDRESS=...`, what sending segments costs).
    let answers: Vec<_> = (0..batches)
        .map(|b| {
            let trace = if sampled {
                order_local::kit::runtime_api::fresh_trace_id()
            } else {
                "Root=1-00000000-000000000000000000000000;Sampled=0".to_string()
            };
            runtime.invoke(
                Invocation::new(
                    format!("req-{b}"),
                    sqs_event(b, 10).to_string(),
                    Deadline::AfterDelivery(Duration::from_secs(10)),
                )
                .with_trace_id(trace),
            )
        })
        .collect();
    let requests = Arc::new(AtomicU64::new(0));
    let ddb = fake_dynamodb(delay, requests.clone()).await;
    let mut cmd = tokio::process::Command::new(binary);
    lambda_env(&mut cmd, runtime.addr, ddb.addr, "order-consumer");
    cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start order-consumer");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf.len()
    });
    let mut durations_ms = Vec::new();
    let finished = async {
        for answer in answers {
            let Ok(answer) = answer.await else {
                break;
            };
            durations_ms.push((answer.answered_at - answer.delivered_at).as_secs_f64() * 1000.0);
            if let Err(e) = &answer.result {
                eprintln!("invocation error: {e}");
            }
        }
        // Done: it asks for the event after the last (batches + 1 requests in all).
        for _ in 0..=batches {
            if nexts.recv().await.is_none() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(600), finished).await;
    let pid = child.id().unwrap_or_default();
    let peak_rss_kb = proc::peak_rss_kb(pid).unwrap_or(0);
    let used = proc::stat(pid).unwrap_or_default();
    let switches = proc::context_switches(pid).unwrap_or(0);
    let _ = child.kill().await;
    let log_bytes = reader.await.unwrap_or(0);
    Run {
        durations_ms,
        log_bytes,
        peak_rss_kb,
        cpu_ms: used.user_ms + used.system_ms,
        system_ms: used.system_ms,
        minor_faults: used.minor_faults,
        context_switches: switches,
        ddb_requests: requests.load(Ordering::Relaxed),
    }
}
