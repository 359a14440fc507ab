//! order-bench: the figures behind docs/benchmarks.md. `make bench` runs the criterion
//! per-record benchmarks first, then this, which prints:
//!
//! 1. cold start of the release bootstraps: process start until the first request to the Lambda
//!    runtime API, with their real configuration and SDK client set-up;
//! 2. the per-record cost of each payload form (parse, validate, the item and its attribute
//!    values), best and median of 20 rounds, the forms taking turns;
//! 3. batch latency against a DynamoDB endpoint that adds a fixed delay per request;
//! 4. per-invocation duration, log bytes and peak resident memory of the real order-consumer
//!    binary over many batches, and the zipped size of each arm64 bootstrap;
//! 5. a cost model per million orders from those figures.
//!
//! It measures; it asserts nothing. Figures depend on the machine; the report names it.

mod http;
mod records;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsMessage;
use clap::Parser;
use http::{serve, Request, Response};
use order_pipeline::config::WorkerConfig;
use order_pipeline::consumer::OrderConsumer;
use order_pipeline::store::DynamoStore;
use order_pipeline::telemetry::LineWriter;
use order_pipeline::worker::SqsWorker;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Benchmarks of the order pipeline's functions")]
struct Args {
    /// Cold starts measured per function.
    #[arg(long, default_value_t = 25)]
    cold_starts: usize,
    /// Batches of 10 fed to the real order-consumer binary for duration and memory.
    #[arg(long, default_value_t = 1000)]
    batches: usize,
    /// Delay the fake DynamoDB endpoint adds to every request, in milliseconds.
    #[arg(long, default_value_t = 10)]
    delay_ms: u64,
    /// An extra environment variable for the order-consumer of section 4, as KEY=VALUE (repeat
    /// for more): how a candidate setting (an allocator option, say) is measured against the
    /// stack's.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    extra_env: Vec<String>,
}

/// Every Lambda function of the workspace (the Makefile's FUNCTIONS).
const FUNCTIONS: [&str; 8] = [
    "order-consumer",
    "dlq-alarm",
    "order-api",
    "order-events",
    "inventory",
    "payment",
    "payment-dlq",
    "notification",
];

const RUNTIME_NEXT: &str = "/2018-06-01/runtime/invocation/next";
/// Never a real region: the endpoints are local and accept anything.
const BENCH_REGION: &str = "us-east-1";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (as cargo puts it), else `target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The host release build of `name`.
fn release_binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

const PER_RECORD_ROUNDS: usize = 20;
const PER_RECORD_RUNS: usize = 20_000;

/// Section 2: per form, the time per record of the best and the median round (the best is the
/// figure least disturbed by the rest of the machine). The forms take turns, round by round, so
/// that a burst of the host's other work (seconds long on this virtual machine) spoils one round
/// of each form rather than every round of one.
fn per_record() -> Vec<(&'static str, f64, f64)> {
    let forms = records::forms();
    let mut rounds: Vec<Vec<f64>> = vec![Vec::with_capacity(PER_RECORD_ROUNDS); forms.len()];
    for _ in 0..PER_RECORD_ROUNDS {
        for ((_, body), times) in forms.iter().zip(rounds.iter_mut()) {
            let start = Instant::now();
            for _ in 0..PER_RECORD_RUNS {
                std::hint::black_box(records::to_item(std::hint::black_box(body)));
            }
            times.push(start.elapsed().as_secs_f64() * 1e6 / PER_RECORD_RUNS as f64);
        }
    }
    forms
        .into_iter()
        .zip(rounds)
        .map(|((form, _), times)| {
            let (median, _, _, _) = stats(times.clone());
            let best = times.into_iter().fold(f64::MAX, f64::min);
            (form, best, median)
        })
        .collect()
}

/// A fixed workload timed beside section 2, which no change of the project's code moves: SHA-256
/// over 64 KiB, in µs, best of 20.
fn reference_workload_us() -> f64 {
    use sha2::{Digest, Sha256};
    let data = vec![0x5a_u8; 64 * 1024];
    (0..20)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(Sha256::digest(std::hint::black_box(&data)));
            start.elapsed().as_secs_f64() * 1e6
        })
        .fold(f64::MAX, f64::min)
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9), v[v.len() - 1])
}

fn order_body(id: &str) -> String {
    serde_json::json!({
        "orderId": id, "customerId": "U123", "currency": "USD", "createdAt": "2025-05-03T12:00:00Z",
        "items": [{"sku": "LAPTOP-15", "name": "Laptop", "quantity": 1, "unitPrice": "999.99"}]
    })
    .to_string()
}

fn sqs_event(batch: usize, size: usize) -> serde_json::Value {
    let records: Vec<_> = (0..size)
        .map(|i| {
            serde_json::json!({
                "messageId": format!("m-{batch}-{i}"), "receiptHandle": "rh", "body": order_body(&format!("B{batch}-{i}")),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": chrono::Utc::now().timestamp_millis().to_string()},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:local:0:q"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// A DynamoDB-compatible endpoint answering every request as a success after `delay`: `{}`
/// (a write stored), or for a `BatchExecuteStatement` one success per statement.
async fn fake_dynamodb(delay: Duration, requests: Arc<AtomicU64>) -> std::net::SocketAddr {
    serve(move |req: Request| {
        let requests = requests.clone();
        async move {
            requests.fetch_add(1, Ordering::Relaxed);
            let statements = serde_json::from_slice::<serde_json::Value>(&req.body)
                .ok()
                .and_then(|body| Some(body.get("Statements")?.as_array()?.len()));
            let answer = match statements {
                Some(n) => serde_json::json!({
                    "Responses": vec![serde_json::json!({"TableName": "Orders"}); n]
                })
                .to_string(),
                None => "{}".to_string(),
            };
            tokio::time::sleep(delay).await;
            Response::new(200, answer).header("Content-Type", "application/x-amz-json-1.0")
        }
    })
    .await
    .expect("bind the fake DynamoDB endpoint")
}

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
async fn cold_starts(binary: &Path, name: &str, runs: usize) -> Vec<f64> {
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

struct Run {
    durations_ms: Vec<f64>,
    log_bytes: usize,
    peak_rss_kb: u64,
    /// User + system CPU time of the process, in milliseconds.
    cpu_ms: f64,
    /// The kernel's part of `cpu_ms`.
    system_ms: f64,
    /// Minor page faults (pages the kernel mapped on first touch) over the whole run.
    minor_faults: u64,
    /// Voluntary + involuntary context switches of all the process's threads.
    context_switches: u64,
    ddb_requests: u64,
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
fn context_switches(pid: u32) -> u64 {
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
async fn many_batches(
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

/// The SDK configuration for a local endpoint, with the functions' timeouts and retries.
async fn local_sdk_config(endpoint: std::net::SocketAddr) -> aws_config::SdkConfig {
    order_pipeline::aws::with_function_limits(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://{endpoint}"))
            .region(aws_config::Region::new(BENCH_REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "b", "b", None, None, "bench",
            )),
    )
    .load()
    .await
}

/// CPU time the calling thread has used, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is, and keeps no reference to it.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The CPU of a batch's writes alone, two ways, on one thread as in a function: the ten conditional `PutItem`s
/// order-consumer sends today, concurrently, and one `BatchExecuteStatement` of ten PartiQL
/// `INSERT`s carrying the same attribute maps (an insert fails when the key exists, so it keeps
/// the exactly-once write at one write unit per item). Both include building the maps.
/// `ddb` answers at once, served by another runtime's threads: its CPU is not counted.
/// Microseconds of CPU per batch of 10: (ten PutItem, one BatchExecuteStatement).
fn writes_cpu(ddb: std::net::SocketAddr, batches: usize) -> (f64, f64) {
    use order_domain::{parse_body, OrderItem, Provenance};
    use order_pipeline::store::OrderStore;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&local_sdk_config(ddb).await);
        let store = DynamoStore::new(client.clone(), "Orders");
        let from = Provenance {
            message_id: "m".into(),
            correlation_id: "c".into(),
            sent_at: chrono::Utc::now(),
        };
        let items: Vec<OrderItem> = (0..10)
            .map(|i| {
                let (order, _) = parse_body(&order_body(&format!("W{i}")))
                    .order
                    .expect("a valid order");
                OrderItem::accepted(order, from.clone(), chrono::Utc::now())
            })
            .collect();
        let puts = || async {
            futures::future::join_all(items.iter().map(|item| store.create(item))).await;
        };
        // The same records through order-consumer's store, which sends them as one request.
        let batching = DynamoStore::new(client.clone(), "Orders").batching_creates();
        let statement = || async {
            futures::future::join_all(items.iter().map(|item| batching.create(item))).await;
        };
        // Warm both paths (connections, credentials), then alternate blocks of 50 so that the
        // machine's other work falls on both alike.
        for _ in 0..20 {
            puts().await;
            statement().await;
        }
        let (mut put_ns, mut statement_ns) = (0u64, 0u64);
        let mut done = 0;
        while done < batches {
            let block = 50.min(batches - done);
            let t = thread_cpu_ns();
            for _ in 0..block {
                puts().await;
            }
            put_ns += thread_cpu_ns() - t;
            let t = thread_cpu_ns();
            for _ in 0..block {
                statement().await;
            }
            statement_ns += thread_cpu_ns() - t;
            done += block;
        }
        let per_batch = |ns: u64| ns as f64 / batches.max(1) as f64 / 1000.0;
        (per_batch(put_ns), per_batch(statement_ns))
    })
}

struct Drop;
impl LineWriter for Drop {
    fn write_line(&self, _line: &str) {}
}

/// The handler in process against the slow endpoint: a batch of 10 next to a single write.
async fn batch_latency(delay: Duration) -> Vec<(String, f64)> {
    let ddb = fake_dynamodb(delay, Arc::default()).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&local_sdk_config(ddb).await),
        "Orders",
    );
    let mut results = Vec::new();
    for (label, size, concurrency) in [
        ("one write (batch of 1)", 1, 10),
        ("batch of 10, recordConcurrency 10", 10, 10),
        ("batch of 10, recordConcurrency 1 (sequential)", 10, 1),
    ] {
        let consumer = SqsWorker::new(
            OrderConsumer::new(store.clone()),
            WorkerConfig {
                max_receive_count: 3,
                record_concurrency: concurrency,
                start_margin: std::time::Duration::from_secs(3),
                answer_reserve: std::time::Duration::from_millis(500),
                backoff: None,
                queue_url: None,
                service: "bench".into(),
            },
            Arc::new(Drop),
        );
        let mut times = Vec::new();
        for b in 0..60 {
            let records: Vec<SqsMessage> =
                serde_json::from_value(sqs_event(b, size)["Records"].clone()).expect("records");
            let t = Instant::now();
            let _ = consumer.handle_records(&records).await;
            if b >= 10 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        results.push((label.to_string(), stats(times).0));
    }
    results
}

/// The zipped size of an arm64 bootstrap and, from the zip's own central directory, its
/// uncompressed size (a `bootstrap` file beside the zip may be from an older build).
fn zip_size(name: &str) -> Option<(u64, u64)> {
    let path = target_dir().join("lambda").join(name).join("bootstrap.zip");
    let bytes = std::fs::read(path).ok()?;
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // End of central directory record: signature 0x06054b50, central directory offset at +16.
    let eocd = (0..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(i) == Some(0x0605_4b50))?;
    let central = u32_at(eocd + 16)? as usize;
    // First central directory entry: signature 0x02014b50, uncompressed size at +24.
    if u32_at(central) != Some(0x0201_4b50) {
        return None;
    }
    Some((bytes.len() as u64, u64::from(u32_at(central + 24)?)))
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// order-consumer's setting `key` in cdk.json (its block under `functions`).
fn consumer_setting(key: &str) -> f64 {
    function_setting("order-consumer", key).unwrap_or(0.0)
}

/// Function `function`'s setting `key` in cdk.json (its block under `functions`).
fn function_setting(function: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(root().join("cdk.json")).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    json["context"]["functions"][function][key].as_f64()
}

/// A function's share of the lifecycle: how many of its events one order makes, and how many
/// AWS (or provider) round trips one record waits for in sequence.
struct Stage {
    function: &'static str,
    /// Records per order on the completed path.
    records_per_order: f64,
    /// Round trips a record waits for one after the other (a batch's records overlap).
    calls_in_sequence: f64,
    what: &'static str,
}

/// Per order on the completed path (one sku, items under 1 KB), from the code: see
/// docs/benchmarks.md, section 6.
const STAGES: &[Stage] = &[
    Stage {
        function: "order-api",
        records_per_order: 1.0,
        calls_in_sequence: 1.0,
        what: "POST /orders: one SNS publish",
    },
    Stage {
        function: "order-consumer",
        records_per_order: 1.0,
        calls_in_sequence: 1.0,
        what: "a batch's new orders as one BatchExecuteStatement of INSERTs (a conditional PutItem each for duplicates and conflicts)",
    },
    Stage {
        function: "order-events",
        records_per_order: 5.0,
        calls_in_sequence: 1.0,
        what: "5 stream records (created, reserved, attempt counted, paid, completed), 4 publishes",
    },
    Stage {
        function: "inventory",
        records_per_order: 1.0,
        calls_in_sequence: 2.0,
        what: "BatchGetItem of the skus, one TransactWriteItems",
    },
    Stage {
        function: "payment",
        records_per_order: 1.0,
        calls_in_sequence: 3.0,
        what: "attempt counted (UpdateItem), the provider, one TransactWriteItems",
    },
    Stage {
        function: "notification",
        records_per_order: 1.0,
        calls_in_sequence: 3.0,
        what: "GetItem, a publish, UpdateItem to COMPLETED",
    },
];

/// Section 6: what one order costs across the whole lifecycle, from the counts of the
/// completed path, the measured order-consumer and order-api figures, and cdk.json.
fn lifecycle_cost(
    delay_ms: f64,
    consumer_cpu_per_batch: f64,
    consumer_median_ms: f64,
    api_median_ms: f64,
    log_per_order: f64,
) {
    println!("\n## 6. The whole lifecycle per million completed orders (one sku each, posted to the API)\n");
    println!("Lambda duration per batch: order-consumer and order-api as measured above; the other stages estimated as their round trips in sequence x {delay_ms} ms + order-consumer's CPU per batch, stretched by 1769 MB / memory.\n");
    println!("| function | memory MB | batch | invocations | est. ms per batch | compute USD | requests USD | per order |\n| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut lambda_usd = 0.0;
    let mut invocations_total = 0.0;
    for stage in STAGES {
        let memory = function_setting(stage.function, "memoryMb").unwrap_or(128.0);
        let batch = function_setting(stage.function, "batchSize")
            .unwrap_or(1.0)
            .max(1.0);
        let invocations = 1e6 * stage.records_per_order / batch;
        let stretch = (FULL_VCPU_MB / memory - 1.0).max(0.0);
        let ms = match stage.function {
            "order-consumer" => consumer_median_ms + consumer_cpu_per_batch * stretch,
            // Measured in process: its CPU is the wall time beyond the endpoint's delay.
            "order-api" => api_median_ms + (api_median_ms - delay_ms).max(0.0) * stretch,
            _ => stage.calls_in_sequence * delay_ms + consumer_cpu_per_batch * (1.0 + stretch),
        };
        let compute = invocations * (ms.ceil() / 1000.0) * (memory / 1024.0) * LAMBDA_ARM_GB_SECOND;
        let requests = invocations * LAMBDA_REQUEST;
        lambda_usd += compute + requests;
        invocations_total += invocations;
        println!(
            "| {} | {memory:.0} | {batch:.0} | {invocations:.0} | {ms:.1} | {compute:.3} | {requests:.3} | {} |",
            stage.function, stage.what
        );
    }
    let sns_publishes = 1.0 + 4.0 + 1.0;
    let sqs_messages = 4.0;
    let write_units = 1.0 + 4.0 + 1.0 + 4.0 + 1.0;
    let read_units = 1.0 + 1.0;
    let logging_functions = STAGES.len() as f64;
    let lines = [
        ("API Gateway HTTP API", 1e6 * API_GATEWAY_HTTP_REQUEST, "one POST per order".to_string()),
        ("Lambda (every function)", lambda_usd, format!("{invocations_total:.0} invocations, compute and requests, table above")),
        ("SNS publishes", 1e6 * sns_publishes * SNS_PUBLISH, "6 per order: the order topic, 4 lifecycle events (accepted, reserved, paid, completed), the customer's confirmation; delivery to SQS free".into()),
        ("SQS requests", 1e6 * sqs_messages * (1.0 + 2.0 / 10.0) * SQS_REQUEST, "4 messages per order (intake, inventory, payment, notification queues): SNS's send + a receive and a batch delete per 10".into()),
        ("DynamoDB writes", 1e6 * write_units * DYNAMODB_WRITE_UNIT, "11 write units: the intake's INSERT 1, the reservation transaction 4 (2 items x 2), attempt count 1, the payment transaction 4, COMPLETED 1".into()),
        ("DynamoDB reads", 1e6 * read_units * DYNAMODB_READ_UNIT, "2 strongly consistent read units: the sku's stock, the order's state before confirming".into()),
        ("DynamoDB Streams", 0.0, "reads by a Lambda trigger are free".into()),
        (
            "CloudWatch Logs ingestion",
            1e6 * log_per_order * logging_functions / 1e9 * LOGS_INGEST_GB,
            format!("{log_per_order:.0} bytes per order per function (measured for order-consumer) x {logging_functions:.0} functions"),
        ),
    ];
    println!();
    print_costs(&lines, "not per order: KMS keys and requests (data keys reused for minutes), idle SQS long polls, alarms, X-Ray (sampled), storage");
}

/// A cost table: each item's USD and basis, then their total with what it leaves out.
fn print_costs(lines: &[(&str, f64, String)], not_included: &str) {
    println!("| item | USD | basis |\n| --- | --- | --- |");
    let mut total = 0.0;
    for (item, usd, basis) in lines {
        total += usd;
        println!("| {item} | {usd:.3} | {basis} |");
    }
    println!("| **total** | **{total:.2}** | {not_included} |");
}

/// An SNS-compatible endpoint answering every Publish after `delay`.
async fn fake_sns(delay: Duration) -> std::net::SocketAddr {
    serve(move |_req: Request| async move {
        tokio::time::sleep(delay).await;
        Response::new(
            200,
            "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>",
        )
        .header("Content-Type", "text/xml")
    })
    .await
    .expect("bind the fake SNS endpoint")
}

/// order-api's POST /orders in process (parse, validate, publish) against an SNS endpoint that
/// adds `delay` per request: median and p90 over 200 requests, and the answer's status.
async fn post_latency(delay: Duration) -> (f64, f64, u16) {
    let sns = fake_sns(delay).await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{sns}"))
        .region(aws_config::Region::new(BENCH_REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "b", "b", None, None, "bench",
        ))
        .load()
        .await;
    let vars: std::collections::HashMap<&str, &str> = [
        ("ORDER_TOPIC_ARN", "arn:aws:sns:us-east-1:0:orders"),
        ("TABLE_NAME", "Orders"),
    ]
    .into();
    let env = order_pipeline::config::Env(move |k: &str| vars.get(k).map(|v| v.to_string()));
    let api = order_pipeline::bootstrap::order_api_with(&env, &config, Arc::new(Drop))
        .expect("order-api configuration");
    let mut times = Vec::new();
    let mut status = 0;
    for i in 0..220 {
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/orders")
            .header("content-type", "application/json")
            .body(lambda_http::Body::from(order_body(&format!("P{i}"))))
            .expect("request");
        let t = Instant::now();
        let response = api.handle_request(request).await;
        if i >= 20 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        status = response.status().as_u16();
    }
    let (median, _, p90, _) = stats(times);
    (median, p90, status)
}

/// AWS list prices (us-east-1, USD) as published by AWS and known to this project on the date
/// below; this machine has no internet access, so they were not re-read from the pricing pages
/// when the benchmark ran. Change them here if they move.
const PRICES_DATE: &str = "2025-05 (AWS public pricing pages, us-east-1)";
const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const SQS_REQUEST: f64 = 0.40 / 1e6;
const SNS_PUBLISH: f64 = 0.50 / 1e6;
const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
const LOGS_INGEST_GB: f64 = 0.50;
const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
const API_GATEWAY_HTTP_REQUEST: f64 = 1.00 / 1e6;
/// Lambda's memory size at which a function gets one full vCPU.
const FULL_VCPU_MB: f64 = 1769.0;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let delay = Duration::from_millis(args.delay_ms);
    let consumer_bin = release_binary("order-consumer");
    for name in FUNCTIONS {
        let b = release_binary(name);
        if !b.exists() {
            eprintln!(
                "{} is missing: build every function with `cargo build --release` (make bench does)",
                b.display()
            );
            std::process::exit(2);
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("# order-bench report\n");
    println!(
        "machine: {} cores, {cpu}; {}; {}",
        command_output("nproc", &[]),
        command_output("uname", &["-sm"]),
        command_output("rustc", &["--version"])
    );
    println!(
        "date: {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );

    println!("## 1. Cold start (process start -> first runtime API request, x86_64 release build, {} runs)\n", args.cold_starts);
    println!(
        "| function | median ms | p10 ms | p90 ms | max ms |\n| --- | --- | --- | --- | --- |"
    );
    for name in FUNCTIONS {
        let times = cold_starts(&release_binary(name), name, args.cold_starts).await;
        if times.is_empty() {
            println!("| {name} | - | - | - | - |");
            continue;
        }
        let (median, p10, p90, max) = stats(times);
        println!("| {name} | {median:.2} | {p10:.2} | {p90:.2} | {max:.2} |");
    }

    println!("\n## 2. Per-record cost: parse, validate, the item and its attribute values (in process, one thread, best of {PER_RECORD_ROUNDS} rounds of {PER_RECORD_RUNS} records, the forms taking turns round by round)\n");
    println!(
        "| form | µs per record, best round | median round | target |\n| --- | --- | --- | --- |"
    );
    for (form, best, median) in tokio::task::spawn_blocking(per_record)
        .await
        .expect("the per-record measurement")
    {
        println!("| {form} | {best:.2} | {median:.2} | ≤ 2 |");
    }
    println!(
        "\nThe machine's speed at the time: SHA-256 over 64 KiB in {:.1} µs (best of 20). This virtual machine's speed drifts by up to 2x within an hour; figures from runs at different times compare only through this one, changes only through interleaved runs.",
        tokio::task::spawn_blocking(reference_workload_us)
            .await
            .expect("the reference workload")
    );
    println!("\nThe criterion output above (`cargo bench -p order-bench`) times the same unit, and the order-consumer handler over a batch of 10 with a no-op store.\n");

    println!("## 3. Batch latency against a DynamoDB endpoint adding {} ms per request (in process, median of 50)\n", args.delay_ms);
    println!("| case | median ms |\n| --- | --- |");
    for (label, ms) in batch_latency(delay).await {
        println!("| {label} | {ms:.1} |");
    }
    let (post_median, post_p90, post_status) = post_latency(delay).await;
    println!("\n## 3b. order-api POST /orders (parse, validate, publish) against an SNS endpoint adding {} ms per request (in process, 200 requests)\n", args.delay_ms);
    println!("| answer | median ms | p90 ms |\n| --- | --- | --- |\n| {post_status} | {post_median:.2} | {post_p90:.2} |");

    println!("\n## 3c. The CPU of a batch's ten writes alone, as ten requests and as one (in process, one thread, an endpoint answering at once, {} batches)\n", args.batches);
    let ddb = fake_dynamodb(Duration::ZERO, Arc::default()).await;
    let batches = args.batches;
    let (puts_us, statement_us) = tokio::task::spawn_blocking(move || writes_cpu(ddb, batches))
        .await
        .expect("the writes' measurement");
    println!("| writes of a batch of 10 | CPU per batch |\n| --- | --- |");
    println!(
        "| ten conditional PutItem, concurrent (what order-consumer sent before 2026-12-02, and still sends for a duplicate or a conflict) | {puts_us:.0} µs |"
    );
    println!("| one BatchExecuteStatement of ten PartiQL INSERTs (what order-consumer sends since 2026-12-02) | {statement_us:.0} µs |");
    println!("\n## 4. The real order-consumer binary over {} batches of 10 ({} ms per DynamoDB request)\n", args.batches, args.delay_ms);
    let extra_env: Vec<(String, String)> = args
        .extra_env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                eprintln!("--env {kv}: expected KEY=VALUE");
                std::process::exit(2);
            }
        })
        .collect();
    if !extra_env.is_empty() {
        println!(
            "order-consumer's extra environment: {}\n",
            args.extra_env.join(" ")
        );
    }
    let run = many_batches(&consumer_bin, args.batches, delay, &extra_env).await;
    let invocations = run.durations_ms.len();
    let (median, p10, p90, max) = if invocations > 0 {
        stats(run.durations_ms.clone())
    } else {
        (0.0, 0.0, 0.0, 0.0)
    };
    println!("| figure | value |\n| --- | --- |");
    println!("| invocations answered | {invocations} |");
    println!("| DynamoDB requests | {} |", run.ddb_requests);
    println!("| duration per batch, median / p10 / p90 / max | {median:.1} / {p10:.1} / {p90:.1} / {max:.1} ms |");
    println!(
        "| peak resident memory (VmHWM) | {:.1} MB |",
        run.peak_rss_kb as f64 / 1024.0
    );
    println!(
        "| CPU time per batch (user + system, whole process) | {:.2} ms |",
        run.cpu_ms / invocations.max(1) as f64
    );
    let per_batch = |n: f64| n / invocations.max(1) as f64;
    println!(
        "| of which in the kernel (system time) | {:.2} ms |",
        per_batch(run.system_ms)
    );
    println!(
        "| minor page faults / context switches per batch | {:.1} / {:.1} |",
        per_batch(run.minor_faults as f64),
        per_batch(run.context_switches as f64)
    );
    let log_per_order = run.log_bytes as f64 / (invocations.max(1) * 10) as f64;
    println!("| log output per order (JSON lines + EMF) | {log_per_order:.0} bytes |");
    for name in FUNCTIONS {
        match zip_size(name) {
            Some((zip, raw)) => println!("| {name} arm64 bootstrap, zipped / unzipped | {:.2} MB / {:.2} MB |", zip as f64 / 1e6, raw as f64 / 1e6),
            None => println!("| {name} arm64 bootstrap zip | not built: `cargo lambda build --release --arm64 --output-format zip` |"),
        }
    }

    println!("\n## 5. Cost per million orders (AWS list prices, us-east-1, as of {PRICES_DATE})\n");
    let memory_mb = consumer_setting("memoryMb");
    let batch = consumer_setting("batchSize").max(1.0);
    let invocations_per_m = 1e6 / batch;
    let cpu_per_batch = run.cpu_ms / invocations.max(1) as f64;
    // Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB; this
    // machine gave the process a full core. So the CPU part of a batch stretches by
    // 1769 / memory on Lambda, the waiting part does not.
    let lambda_ms = |mb: f64| median + cpu_per_batch * (FULL_VCPU_MB / mb - 1.0).max(0.0);
    let compute_usd = |mb: f64| {
        invocations_per_m * (lambda_ms(mb).ceil() / 1000.0) * (mb / 1024.0) * LAMBDA_ARM_GB_SECOND
    };
    println!("Estimated order-consumer duration per batch on Lambda by memory size (measured wall time + CPU time x (1769 MB / memory - 1)):\n");
    println!("| memory | est. ms per batch | Lambda compute USD per million orders |\n| --- | --- | --- |");
    for mb in [128.0, 256.0, 512.0, 1024.0] {
        let marker = if (mb - memory_mb).abs() < 0.5 {
            " (configured)"
        } else {
            ""
        };
        println!(
            "| {mb:.0} MB{marker} | {:.1} | {:.4} |",
            lambda_ms(mb),
            compute_usd(mb)
        );
    }
    println!();
    let memory_gb = memory_mb / 1024.0;
    // Lambda bills each invocation's duration rounded up to the millisecond.
    let billed_s = lambda_ms(memory_mb).ceil() / 1000.0;
    let lines = [
        ("Lambda requests", invocations_per_m * LAMBDA_REQUEST, format!("{invocations_per_m:.0} invocations of {batch} orders")),
        (
            "Lambda compute (arm64)",
            invocations_per_m * billed_s * memory_gb * LAMBDA_ARM_GB_SECOND,
            format!("{:.0} ms estimated per batch x {:.3} GB (functions.order-consumer.memoryMb)", billed_s * 1000.0, memory_gb),
        ),
        ("SNS publishes", 1e6 * SNS_PUBLISH, "one publish per order; delivery to SQS is free".into()),
        (
            "SQS requests",
            (1e6 + 2.0 * invocations_per_m) * SQS_REQUEST,
            "SNS's SendMessage per order + a receive and a batch delete per batch (idle long polls not counted)".into(),
        ),
        ("DynamoDB on-demand writes", 1e6 * DYNAMODB_WRITE_UNIT, "one write unit per order (items < 1 KB)".into()),
        (
            "CloudWatch Logs ingestion",
            1e6 * log_per_order / 1e9 * LOGS_INGEST_GB,
            format!("{log_per_order:.0} bytes of logs per order"),
        ),
    ];
    print_costs(
        &lines,
        "KMS (data keys are reused for minutes), X-Ray (sampled) and storage not included",
    );
    lifecycle_cost(
        args.delay_ms as f64,
        cpu_per_batch,
        median,
        post_median,
        log_per_order,
    );
}
