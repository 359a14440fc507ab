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

mod cost;
mod fakes;
mod in_process;
mod processes;
mod records;
mod setup;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::cost::{
    lifecycle_cost, print_costs, DYNAMODB_WRITE_UNIT, FULL_VCPU_MB, LAMBDA_ARM_GB_SECOND,
    LAMBDA_REQUEST, LOGS_INGEST_GB, PRICES_DATE, SNS_PUBLISH, SQS_REQUEST,
};
use crate::fakes::fake_dynamodb;
use crate::in_process::{
    batch_latency, per_record, post_latency, reference_workload_us, writes_cpu, PER_RECORD_ROUNDS,
    PER_RECORD_RUNS,
};
use crate::processes::{cold_starts, many_batches};
use crate::setup::{command_output, consumer_setting, release_binary, zip_size};

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
    /// stack's (AWS_XRAY_DAEMON_ADDRESS=HOST:PORT: the function traced).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    extra_env: Vec<String>,
    /// Section 4's invocations carry a sampled trace header (else an unsampled one, as most do on
    /// Lambda): with a daemon named in --env, what sending every batch's segments costs.
    #[arg(long)]
    sampled: bool,
    /// The functions' host release binaries to measure, by name (default: target/release). To
    /// compare with an earlier build, copy its binaries to a directory and run once on each, in
    /// turn; a function that build lacks is reported as not built.
    #[arg(long, value_name = "DIR")]
    bootstraps: Option<std::path::PathBuf>,
}

/// Every Lambda function of the workspace, as the function registry lists them.
fn functions() -> impl Iterator<Item = &'static str> {
    order_pipeline::registry::functions()
        .into_iter()
        .map(|f| f.name)
}

/// Never a real region: the endpoints are local and accept anything.
pub(crate) const BENCH_REGION: &str = "us-east-1";

pub(crate) fn stats(mut v: Vec<f64>) -> (f64, f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9), v[v.len() - 1])
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let delay = Duration::from_millis(args.delay_ms);
    let binary = |name: &str| match &args.bootstraps {
        Some(dir) => dir.join(name),
        None => release_binary(name),
    };
    let consumer_bin = binary("order-consumer");
    for name in functions() {
        let b = binary(name);
        if !b.exists() && (args.bootstraps.is_none() || name == "order-consumer") {
            eprintln!(
                "{} is missing: build every function with `cargo build --release` (make bench does)",
                b.display()
            );
            std::process::exit(2);
        }
    }
    let cpu = order_local::kit::proc::cpu_model().unwrap_or_default();
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
    for name in functions() {
        if !binary(name).exists() {
            println!("| {name} | not built | | | |");
            continue;
        }
        let times = cold_starts(&binary(name), name, args.cold_starts).await;
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
    let (ddb_addr, batches) = (ddb.addr, args.batches);
    let (puts_us, statement_us) =
        tokio::task::spawn_blocking(move || writes_cpu(ddb_addr, batches))
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
    let run = many_batches(&consumer_bin, args.batches, delay, &extra_env, args.sampled).await;
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
    for name in functions() {
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
