//! The figures measured in process (sections 2, 3, 3b and 3c): the per-record cost, a batch's
//! latency against a slow DynamoDB endpoint, order-api's POST, and the CPU of a batch's writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsMessage;
use order_pipeline::adapters::dynamodb::DynamoStore;
use order_pipeline::runtime::config::WorkerConfig;
use order_pipeline::runtime::telemetry::LineWriter;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::intake::OrderConsumer;

use crate::fakes::{fake_dynamodb, fake_sns, order_body, sqs_event};
use crate::records;
use crate::{stats, BENCH_REGION};

pub(crate) const PER_RECORD_ROUNDS: usize = 20;
pub(crate) const PER_RECORD_RUNS: usize = 20_000;

/// Section 2: per form, the time per record of the best and the median round (the best is the
/// figure least disturbed by the rest of the machine). The forms take turns, round by round, so
/// that a burst of the host's other work (seconds long on this virtual machine) spoils one round
/// of each form rather than every round of one.
pub(crate) fn per_record() -> Vec<(&'static str, f64, f64)> {
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
pub(crate) fn reference_workload_us() -> f64 {
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

/// The SDK configuration for a local endpoint, with the functions' timeouts and retries.
async fn local_sdk_config(endpoint: std::net::SocketAddr) -> aws_config::SdkConfig {
    order_pipeline::adapters::aws::with_function_limits(
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
pub(crate) fn writes_cpu(ddb: std::net::SocketAddr, batches: usize) -> (f64, f64) {
    use order_domain::{parse_body, OrderItem, Provenance};
    use order_pipeline::ports::orders::OrderStore;

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
pub(crate) async fn batch_latency(delay: Duration) -> Vec<(String, f64)> {
    let ddb = fake_dynamodb(delay, Arc::default()).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&local_sdk_config(ddb.addr).await),
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
            None,
        )
        .unwrap();
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

/// order-api's POST /orders in process (parse, validate, publish) against an SNS endpoint that
/// adds `delay` per request: median and p90 over 200 requests, and the answer's status.
pub(crate) async fn post_latency(delay: Duration) -> (f64, f64, u16) {
    let sns = fake_sns(delay).await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sns.url())
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
    let env =
        order_pipeline::runtime::config::Env(move |k: &str| vars.get(k).map(|v| v.to_string()));
    use order_pipeline::registry::{Function, OrderApiFn};
    let api = <OrderApiFn as Function>::build(&env, &config, Arc::new(Drop))
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
