//! The real bootstraps as processes (sections 1 and 4): their cold starts, and order-consumer
//! over many batches through the runtime API, with what /proc says they used.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::{serve, Request, Response};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::fakes::{fake_dynamodb, sqs_event};
use crate::setup::command_output;
use crate::BENCH_REGION;

const RUNTIME_NEXT: &str = "/2018-06-01/runtime/invocation/next";
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
    let runtime = serve(move |req: Request| {
        let tx = tx.clone();
        async move {
            if req.path == RUNTIME_NEXT {
                let _ = tx.send(Instant::now());
                // Hold the request: the process is killed before it gets work.
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Response::new(202, "")
        }
    })
    .await
    .expect("bind the runtime API");
    let ddb = fake_dynamodb(Duration::ZERO, Arc::default()).await;
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut cmd = tokio::process::Command::new(binary);
        lambda_env(&mut cmd, runtime, ddb, name);
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

/// What `/proc/<pid>/stat` says a process used: CPU in milliseconds, and page faults.
#[derive(Default)]
struct ProcessUse {
    user_ms: f64,
    system_ms: f64,
    minor_faults: u64,
}

/// utime, stime and minflt of a process from /proc/<pid>/stat.
fn process_use(pid: u32) -> ProcessUse {
    let ticks_per_second = command_output("getconf", &["CLK_TCK"])
        .parse::<f64>()
        .unwrap_or(100.0);
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces:
            // state is the first, minflt the 8th, utime the 12th, stime the 13th (proc(5)).
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let minor_faults: u64 = fields.get(7)?.parse().ok()?;
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some(ProcessUse {
                user_ms: utime * 1000.0 / ticks_per_second,
                system_ms: stime * 1000.0 / ticks_per_second,
                minor_faults,
            })
        })
        .unwrap_or_default()
}

/// Context switches of every thread of a process (voluntary + involuntary, /proc/<pid>/task/*/status).
pub(crate) fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Feeds `batches` SQS events of 10 orders to the real binary through the runtime API.
pub(crate) async fn many_batches(
    binary: &Path,
    batches: usize,
    delay: Duration,
    extra_env: &[(String, String)],
) -> Run {
    let events: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
        (0..batches)
            .rev()
            .map(|b| sqs_event(b, 10).to_string())
            .collect(),
    ));
    let handed_out: Arc<Mutex<Option<Instant>>> = Arc::default();
    let durations: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let (finished_tx, mut finished) = mpsc::unbounded_channel::<()>();
    let (ev, ho, du, dn) = (
        events.clone(),
        handed_out.clone(),
        durations.clone(),
        done.clone(),
    );
    let runtime = serve(move |req: Request| {
        let (ev, ho, du, dn, finished_tx) = (
            ev.clone(),
            ho.clone(),
            du.clone(),
            dn.clone(),
            finished_tx.clone(),
        );
        async move {
            if req.path == RUNTIME_NEXT {
                let next = ev.lock().ok().and_then(|mut e| e.pop());
                match next {
                    Some(event) => {
                        let id = format!("req-{}", dn.load(Ordering::SeqCst));
                        if let Ok(mut h) = ho.lock() {
                            *h = Some(Instant::now());
                        }
                        Response::new(200, event)
                            .header("Lambda-Runtime-Aws-Request-Id", id)
                            .header(
                                "Lambda-Runtime-Deadline-Ms",
                                (chrono::Utc::now().timestamp_millis() + 10_000).to_string(),
                            )
                            .header(
                                "Lambda-Runtime-Invoked-Function-Arn",
                                "arn:aws:lambda:local:0:function:order-consumer",
                            )
                            .header(
                                "Lambda-Runtime-Trace-Id",
                                "Root=1-00000000-000000000000000000000000;Sampled=0",
                            )
                    }
                    None => {
                        let _ = finished_tx.send(());
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Response::new(500, "")
                    }
                }
            } else {
                if req.path.ends_with("/response") || req.path.ends_with("/error") {
                    if let Some(t) = ho.lock().ok().and_then(|h| *h) {
                        if let Ok(mut d) = du.lock() {
                            d.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    if req.path.ends_with("/error") {
                        eprintln!("invocation error: {}", String::from_utf8_lossy(&req.body));
                    }
                    dn.fetch_add(1, Ordering::SeqCst);
                }
                Response::new(202, "")
            }
        }
    })
    .await
    .expect("bind the runtime API");
    let requests = Arc::new(AtomicU64::new(0));
    let ddb = fake_dynamodb(delay, requests.clone()).await;
    let mut cmd = tokio::process::Command::new(binary);
    lambda_env(&mut cmd, runtime, ddb, "order-consumer");
    cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start order-consumer");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf.len()
    });
    let _ = tokio::time::timeout(Duration::from_secs(600), finished.recv()).await;
    let pid = child.id().unwrap_or_default();
    let peak_rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let used = process_use(pid);
    let switches = context_switches(pid);
    let _ = child.kill().await;
    let log_bytes = reader.await.unwrap_or(0);
    let durations_ms = durations.lock().map(|d| d.clone()).unwrap_or_default();
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
