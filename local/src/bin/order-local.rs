//! order-local: the order pipeline on a laptop, on the embedded AWS emulator.
//!
//!   order-local demo   boot everything, publish the seed orders and a few troublemakers,
//!                      wait until the queue drains, print the summary (exit 1 if a message
//!                      is unaccounted for)
//!   order-local run    boot everything and keep it running for order-producer --local
//!   order-local plan   print what the runner does with each resource of the stack's template

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use order_local::generate::{generate, Intent, Mix, Planned};
use order_local::pipeline::{Drain, LocalPipeline, Options, LOCAL_SCHEDULE_EVERY};
use order_local::report::render;
use order_local::resources::plan;
use order_local::seeds;
use order_local::template::Template;
use order_local::LocalError;
use order_pipeline::telemetry::{init_logging, LineWriter};

#[derive(Parser)]
#[command(
    version,
    about = "The order pipeline on a laptop, on an embedded AWS emulator (moto)"
)]
struct Cli {
    /// A synthesized template to run instead of the project's stack (by default the stack is
    /// synthesized from cdk.json and infra/ whenever they changed).
    #[arg(long, global = true)]
    template: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot, publish the seed orders plus a duplicate, a conflict and an invalid payload, wait
    /// until the queue drains and print a summary.
    Demo {
        #[command(flatten)]
        boot: Boot,
        /// Also publish this many generated orders (with duplicates, conflicts and invalid ones).
        #[arg(long, default_value_t = 0)]
        generate: usize,
        /// Give up waiting for the queue to drain after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Boot and keep the pipeline running until Ctrl-C; publish with `order-producer --local`.
    Run {
        #[command(flatten)]
        boot: Boot,
    },
    /// Print what the runner does with each resource of the stack (create, emulate or skip,
    /// and why), as JSON.
    Plan,
}

#[derive(clap::Args)]
struct Boot {
    /// Use a moto server that is already running instead of starting one.
    #[arg(long)]
    endpoint: Option<String>,
    /// Failed records come back after this many seconds instead of the queue's visibility
    /// timeout (6 x the consumer's timeout + the batching window), so that retries and the
    /// trip to the DLQ take seconds, not minutes. Pass 0 to keep the real timeout.
    #[arg(long, default_value_t = 1)]
    retry_after: i32,
    /// The fake payment provider declines this share of new charges (0-1), besides customers
    /// whose id starts with `decline-`.
    #[arg(long, default_value_t = 0.0)]
    decline_rate: f64,
    /// The fake payment provider answers 503 to this share of calls (0-1).
    #[arg(long, default_value_t = 0.0)]
    unavailable_rate: f64,
    /// The fake payment provider answers after this many milliseconds.
    #[arg(long, default_value_t = 5)]
    provider_latency_ms: u64,
    /// The functions' AWS calls go through a proxy that holds each for this many milliseconds
    /// before passing it on (a region's round trip) and keeps their connections open, instead of
    /// straight to the emulator, which closes every connection: their CPU figures are then the
    /// ones a deployed function's calls cost (`make bench` section 8). 0: straight to the
    /// emulator.
    #[arg(long, default_value_t = 0)]
    aws_latency_ms: u64,
    /// Run the bootstraps `cdk synth` built into this cloud assembly (cdk.out), as processes
    /// behind a local Lambda runtime API, instead of the handlers in process; the arm64 ones run
    /// under qemu-aarch64 on another machine (`make setup` installs it). The assembly's template
    /// is the stack.
    #[arg(long)]
    assembly: Option<PathBuf>,
    /// Run the functions as processes from the binaries in this directory (a host release
    /// build: `cargo build --release` then `--bootstraps target/release`), with the project's
    /// template; the summary then gives each one's start-up, CPU and memory (`make bench`).
    #[arg(long, conflicts_with = "assembly")]
    bootstraps: Option<PathBuf>,
}

fn load_template(cli: &Cli) -> Result<Template, LocalError> {
    match &cli.template {
        Some(path) => Template::load(path),
        None => Template::current(),
    }
}

/// The template of the cloud assembly `dir`: its one `*.template.json`.
fn assembly_template(dir: &std::path::Path) -> Result<Template, LocalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LocalError::Input(format!(
            "read {}: {e}; run `make synth` first",
            dir.display()
        ))
    })?;
    let templates: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".template.json"))
        .collect();
    match templates.as_slice() {
        [one] => Template::load(one),
        _ => Err(LocalError::Input(format!(
            "{} holds {} templates; one stack's assembly is expected",
            dir.display(),
            templates.len()
        ))),
    }
}

/// How to run the bootstraps of `dir` here: directly, or under qemu-aarch64 when they are
/// arm64 and this machine is not.
fn launcher(bootstraps: &order_local::process::Bootstraps) -> Result<Vec<String>, LocalError> {
    let arm64 = bootstraps
        .by_binary
        .values()
        .next()
        .is_some_and(|b| order_local::process::is_arm64_elf(b));
    if !arm64 || std::env::consts::ARCH == "aarch64" {
        return Ok(Vec::new());
    }
    let prefix = "/usr/aarch64-linux-gnu";
    let qemu_found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("qemu-aarch64").is_file())
    });
    if !qemu_found || !std::path::Path::new(prefix).join("lib").is_dir() {
        return Err(LocalError::Input(format!(
            "the bootstraps are arm64: running them here needs qemu-aarch64 and an arm64 C library in {prefix} (apt-get install qemu-user libc6-arm64-cross; make setup does)"
        )));
    }
    Ok(vec!["qemu-aarch64".into(), "-L".into(), prefix.into()])
}

fn log_path() -> PathBuf {
    order_local::state_dir().join("functions.log")
}

async fn boot(cli: &Cli, boot: &Boot) -> Result<(LocalPipeline, PathBuf), LocalError> {
    let (template, bootstraps) = match (&boot.assembly, &cli.template) {
        (Some(dir), None) => {
            let template = assembly_template(dir)?;
            let mut b =
                order_local::process::Bootstraps::from_assembly(dir, &template, Vec::new())?;
            b.launcher = launcher(&b)?;
            eprintln!(
                "running the {} bootstraps of {}{}",
                b.by_binary.len(),
                dir.display(),
                if b.launcher.is_empty() {
                    String::new()
                } else {
                    format!(" under {}", b.launcher.join(" "))
                }
            );
            (template, Some(b))
        }
        (Some(_), Some(_)) => {
            return Err(LocalError::Input(
                "--assembly brings its own template: leave out --template".into(),
            ))
        }
        (None, _) => {
            let template = load_template(cli)?;
            match &boot.bootstraps {
                Some(dir) => {
                    let b = order_local::process::Bootstraps::from_dir(dir, &template)?;
                    eprintln!(
                        "running the {} binaries of {}",
                        b.by_binary.len(),
                        dir.display()
                    );
                    (template, Some(b))
                }
                None => (template, None),
            }
        }
    };
    let path = log_path();
    let writer: Arc<dyn LineWriter> = Arc::new(order_local::FileLines::create(&path)?);
    init_logging("order-local", writer.clone());
    eprintln!("starting the AWS emulator (moto) and creating the stack's resources...");
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            endpoint: boot.endpoint.clone(),
            retry_after_seconds: (boot.retry_after > 0).then_some(boot.retry_after),
            telemetry: writer,
            prefix: format!("local{}", chrono::Utc::now().timestamp_millis() % 1_000_000),
            alarm_interval: Duration::from_secs(1),
            schedule_every: Some(LOCAL_SCHEDULE_EVERY),
            provider: order_local::provider::ProviderRates {
                decline: boot.decline_rate,
                unavailable: boot.unavailable_rate,
                latency: Duration::from_millis(boot.provider_latency_ms),
                ..Default::default()
            },
            faults: (boot.aws_latency_ms > 0).then(|| {
                order_local::faults::FaultRates::round_trip(Duration::from_millis(
                    boot.aws_latency_ms,
                ))
            }),
            bootstraps,
        },
    )
    .await?;
    eprintln!(
        "emulator at {}; order topic {}",
        pipeline.stack.endpoint, pipeline.stack.topic_arn
    );
    Ok((pipeline, path))
}

fn progress(d: Drain) {
    eprintln!(
        "  waiting: {} messages in the stage queues, {} in the intake DLQ, {} records processed ({}s)",
        d.queue,
        d.dlq,
        d.records,
        d.elapsed.as_secs()
    );
}

async fn demo(cli: &Cli, b: &Boot, generated: usize, timeout: u64) -> Result<bool, LocalError> {
    let (pipeline, log) = boot(cli, b).await?;
    let timeout = Duration::from_secs(timeout);
    let catalogue = order_local::inventory::parse(CATALOGUE)?;
    if let Some(table) = &pipeline.stack.inventory_table_name {
        eprintln!(
            "loading the sample catalogue ({} skus) into the Inventory table...",
            catalogue.len()
        );
        order_local::inventory::load(&pipeline.clients.dynamodb, table, &catalogue).await?;
    }
    let observer = match &pipeline.stack.order_events_topic_arn {
        Some(topic) => Some(
            order_local::observe::Observer::subscribe(&pipeline.clients, topic, "demo-observer")
                .await?,
        ),
        None => None,
    };
    let mut planned = seeds::seed_orders("seed");
    eprintln!("publishing the seed orders (seeds 001, 002, 004)...");
    let mut drained = pipeline
        .publish_and_drain(&planned, timeout, progress)
        .await?;
    let more = seeds::troublemakers("demo");
    eprintln!(
        "publishing a duplicate of seed 001, a conflicting order O1234 and an invalid payload..."
    );
    drained &= pipeline.publish_and_drain(&more, timeout, progress).await?;
    planned.extend(more);
    let declined = seeds::unhappy_endings("demo");
    eprintln!("publishing O-DECLINED (customer decline-demo: the provider declines its payment) and O-SOLD-OUT (3 laptops, 0 left)...");
    drained &= pipeline
        .publish_and_drain(&declined, timeout, progress)
        .await?;
    planned.extend(declined);
    let api = match &pipeline.stack.api_url {
        Some(url) => {
            eprintln!("posting an order to the order API ({url}), then the same POST again (a client retry)...");
            let (posted, api_planned) = post_twice(url).await?;
            drained &= pipeline.wait_until_drained(timeout, progress).await?;
            planned.extend(api_planned);
            Some((url.clone(), posted))
        }
        None => None,
    };
    if !pipeline.processes.is_empty() {
        drained &= dead_letter_a_settled_payment(&pipeline, timeout).await?;
    }
    if generated > 0 {
        let mix = Mix {
            duplicates: 0.05,
            conflicts: 0.02,
            invalid: 0.03,
        };
        let traffic = generate(generated, mix, 42, "gen");
        eprintln!(
            "publishing {generated} generated orders (5% duplicates, 2% conflicts, 3% invalid)..."
        );
        drained &= pipeline
            .publish_and_drain(&traffic, timeout, progress)
            .await?;
        planned.extend(traffic);
    }
    if !drained {
        eprintln!(
            "the queue did not drain within {}s; the summary shows where things are",
            timeout.as_secs()
        );
    }
    let summary = pipeline.summary(&planned).await?;
    print!(
        "{}",
        render(&summary, &pipeline.stack, &log.display().to_string())
    );
    if let Some(table) = &pipeline.stack.inventory_table_name {
        let after = order_local::inventory::scan(&pipeline.clients.dynamodb, table).await?;
        println!("\nInventory (stock before -> after; units are conserved: before = available + reserved + sold)");
        println!(
            "  {:<12} {:>7} {:>10} {:>9} {:>5}",
            "sku", "before", "available", "reserved", "sold"
        );
        for p in &catalogue {
            if let Some(a) = after.get(&p.sku) {
                println!(
                    "  {:<12} {:>7} {:>10} {:>9} {:>5}",
                    p.sku, p.available, a.available, a.reserved, a.sold
                );
            }
        }
        let items =
            order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
        for i in items.iter().filter(|i| i.rejection.is_some()) {
            if let Some(r) = &i.rejection {
                println!("  rejected {:<22} {}", i.order_id, r.reason);
            }
        }
    }
    let items =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
    let notifications = match &pipeline.inbox {
        Some(inbox) => inbox.received(&pipeline.clients).await?,
        None => Vec::new(),
    };
    print!(
        "{}",
        order_local::report::render_lifecycle(&items, &pipeline.provider.ledger(), &notifications)
    );
    let seeds_completed = ["O1234", "9f1c2a4e-5b6d-4c3e-8f7a-1b2c3d4e5f60", "01234"]
        .iter()
        .all(|id| {
            items
                .iter()
                .any(|i| i.order_id == *id && i.status == order_domain::OrderStatus::Completed)
        });
    let status_of = |id: &str| items.iter().find(|i| i.order_id == id).map(|i| i.status);
    let declined_failed = status_of("O-DECLINED") == Some(order_domain::OrderStatus::PaymentFailed)
        && status_of("O-SOLD-OUT") == Some(order_domain::OrderStatus::Rejected);
    if let Some(observer) = &observer {
        let counts = observer.drain_counts(&pipeline.clients).await?;
        let text: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("\nLifecycle events published: {}", text.join(", "));
    }
    let mut api_ok = true;
    if let Some((url, (first, retry))) = api {
        let id = first.body["orderId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let got =
            order_local::http::send("GET", &format!("{url}/orders/{id}"), None, &[], None).await?;
        println!("\nOrder API ({url})");
        println!(
            "  POST /orders                 {} {}",
            first.status, first.body
        );
        println!(
            "  POST /orders (same key)      {} orderId {}",
            retry.status, retry.body["orderId"]
        );
        println!(
            "  GET  /orders/{id}  {} status {}",
            got.status, got.body["status"]
        );
        println!("  try it: curl -s -X POST {url}/orders -H 'content-type: application/json' -d @test/events/payloads/another-order.json");
        api_ok = first.status == 202
            && retry.body["orderId"] == first.body["orderId"]
            && got.status == 200;
    }
    let processes_ok = report_processes(&pipeline);
    pipeline.shutdown().await;
    if !seeds_completed || !declined_failed {
        eprintln!("the lifecycle did not end as expected: the seed orders COMPLETED ({seeds_completed}), O-DECLINED PAYMENT_FAILED and O-SOLD-OUT REJECTED ({declined_failed}); see {}", log.display());
    }
    Ok(summary.all_accounted_for()
        && drained
        && api_ok
        && seeds_completed
        && declined_failed
        && processes_ok)
}

/// With the bootstraps as processes: a payment event for O1234 (settled by now) put in the
/// payment DLQ, so that payment-dlq answers a real event too (it leaves the order alone).
async fn dead_letter_a_settled_payment(
    pipeline: &LocalPipeline,
    timeout: Duration,
) -> Result<bool, LocalError> {
    let Some(dlq) = pipeline.stack.outputs.get("PaymentDeadLetterQueueUrl") else {
        return Ok(true);
    };
    let items =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
    let Some(mut reserved) = items.into_iter().find(|i| i.order_id == "O1234") else {
        return Ok(false);
    };
    let mut accepted = reserved.clone();
    accepted.status = order_domain::OrderStatus::Accepted;
    accepted.version = 1;
    reserved.status = order_domain::OrderStatus::Reserved;
    reserved.version = 2;
    let event = order_domain::LifecycleEvent::from_change(
        Some(&accepted),
        &reserved,
        "2026-01-01T00:00:00Z",
    )
    .ok_or_else(|| LocalError::Input("no event for a RESERVED order".into()))?;
    eprintln!("putting O1234's payment event in the payment DLQ (payment-dlq finds it settled)...");
    pipeline
        .clients
        .sqs
        .send_message()
        .queue_url(dlq)
        .message_body(serde_json::to_string(&event).map_err(|e| LocalError::Input(e.to_string()))?)
        .send()
        .await
        .map_err(order_local::aws_err("send to the payment DLQ"))?;
    pipeline.wait_until_drained(timeout, progress).await
}

/// Each bootstrap run as a process: how often it started, answered and failed, and what it
/// cost: spawn to its first request for an event and the CPU used by then, then CPU and wall
/// time per event answered (the wall time includes the emulator's), and peak memory. True when
/// every one answered at least one event and none failed.
fn report_processes(pipeline: &LocalPipeline) -> bool {
    if pipeline.processes.is_empty() {
        return true;
    }
    use std::sync::atomic::Ordering::Relaxed;
    println!("\nBootstraps run as processes (one event at a time, like a warm Lambda instance)");
    println!(
        "  {:<14} {:>7} {:>8} {:>6} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "function",
        "started",
        "answered",
        "failed",
        "start ms",
        "init CPU",
        "CPU/event",
        "wall/event",
        "peak RSS"
    );
    let mut ok = true;
    for p in &pipeline.processes {
        let (started, answered, errors) = (
            p.stats.started.load(Relaxed),
            p.stats.answered.load(Relaxed),
            p.stats.errors.load(Relaxed),
        );
        let ms = |us: u64| us as f64 / 1000.0;
        let init_cpu = ms(p.stats.init_cpu_us.load(Relaxed));
        let per_event = |total: f64| total / answered.max(1) as f64;
        let (cpu, rss) = match p.usage() {
            // One start: its CPU after initialisation is the events'.
            Some(u) if started == 1 => (
                format!("{:.2} ms", per_event(u.cpu_ms - init_cpu)),
                format!("{:.1} MB", u.peak_rss_kb as f64 / 1024.0),
            ),
            Some(u) => (
                "-".into(),
                format!("{:.1} MB", u.peak_rss_kb as f64 / 1024.0),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "  {:<14} {started:>7} {answered:>8} {errors:>6} {:>9.1} {:>9} {cpu:>11} {:>11} {rss:>8}",
            p.binary,
            ms(p.stats.cold_start_us.load(Relaxed)),
            format!("{init_cpu:.0} ms"),
            format!("{:.1} ms", per_event(ms(p.stats.busy_us.load(Relaxed)))),
        );
        ok &= answered > 0 && errors == 0;
    }
    println!("  (CPU from /proc at 10 ms resolution: CPU/event is meaningful over many events)");
    if let Some(proxy) = &pipeline.faults {
        println!(
            "  their AWS calls: {} requests on {} connections to the proxy, {} of them held {} ms",
            proxy.stats.requests.load(Relaxed),
            proxy.stats.connections.load(Relaxed),
            proxy.stats.slowed.load(Relaxed),
            proxy.rates.latency.as_millis()
        );
    }
    if !ok {
        eprintln!("a bootstrap answered no event or failed one: its lines are in the function log");
    }
    ok
}

/// The demo's catalogue: the seed orders' items among others (2 laptops: the seeds take both).
const CATALOGUE: &str = include_str!("../../../test/events/inventory.json");

/// POSTs an order without an id, with an Idempotency-Key, twice (a client retrying): both
/// answers name the same order, and the pipeline stores it once.
async fn post_twice(
    url: &str,
) -> Result<
    (
        (order_local::http::Posted, order_local::http::Posted),
        Vec<Planned>,
    ),
    LocalError,
> {
    let body = serde_json::json!({
        "customerId": "U-API",
        "items": [{"sku": "MON-27", "name": "Monitor", "quantity": 1, "unitPrice": "279.50"}],
        "currency": "USD"
    })
    .to_string();
    let (first, first_planned) = post_once(url, &body, "demo-api-1", Intent::New).await?;
    let (retry, retry_planned) = post_once(url, &body, "demo-api-2", Intent::Duplicate).await?;
    Ok(((first, retry), vec![first_planned, retry_planned]))
}

async fn post_once(
    url: &str,
    body: &str,
    correlation: &str,
    intent: Intent,
) -> Result<(order_local::http::Posted, Planned), LocalError> {
    let posted = order_local::http::send(
        "POST",
        &format!("{url}/orders"),
        Some(body),
        &[
            ("idempotency-key", "demo-checkout-1"),
            ("x-correlation-id", correlation),
        ],
        None,
    )
    .await?;
    // The accounting compares the stored order with the order as published: with its id.
    let order_id = posted.body["orderId"].as_str().map(str::to_string);
    let mut published: serde_json::Value =
        serde_json::from_str(body).map_err(|e| LocalError::Input(e.to_string()))?;
    published["orderId"] = serde_json::Value::from(order_id.clone().unwrap_or_default());
    let planned = Planned {
        correlation_id: correlation.to_string(),
        body: published.to_string(),
        order_id,
        intent,
    };
    Ok((posted, planned))
}

async fn run(cli: &Cli, b: &Boot) -> Result<(), LocalError> {
    let (pipeline, log) = boot(cli, b).await?;
    if let Some(table) = &pipeline.stack.inventory_table_name {
        let catalogue = order_local::inventory::parse(CATALOGUE)?;
        order_local::inventory::load(&pipeline.clients.dynamodb, table, &catalogue).await?;
        eprintln!(
            "loaded the sample catalogue (test/events/inventory.json, {} skus); load your own with: cargo run -p order-local --bin order-producer -- --local inventory load FILE",
            catalogue.len()
        );
    }
    let state = order_local::state_dir().join("stack.json");
    let json = serde_json::to_string_pretty(&pipeline.stack)
        .map_err(|e| LocalError::Input(e.to_string()))?;
    std::fs::write(&state, json)
        .map_err(|e| LocalError::Input(format!("write {}: {e}", state.display())))?;
    eprintln!(
        "running. publish with: cargo run -p order-local --bin order-producer -- --local seeds"
    );
    if let Some(url) = &pipeline.stack.api_url {
        eprintln!(
            "order API at {url} (loopback, no signing):\n  curl -si -X POST {url}/orders -H 'content-type: application/json' -d @test/events/payloads/another-order.json\n  curl -s {url}/orders/O5678"
        );
    }
    eprintln!("{}", cargo_lambda_hint(&pipeline));
    eprintln!(
        "function logs: {} (LOG_LEVEL=debug make run also logs every stored order); resources: {}",
        log.display(),
        state.display()
    );
    eprintln!("Ctrl-C (or SIGTERM) stops everything and prints a summary; a status line follows whenever something changes");
    let status = async {
        let mut last = String::new();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            match status_line(&pipeline).await {
                Ok(line) if line != last => {
                    eprintln!("{line}");
                    last = line;
                }
                Ok(_) => {}
                Err(e) => eprintln!("status: {}", order_local::one_line(&e)),
            }
        }
    };
    tokio::select! {
        _ = stopped() => {}
        _ = status => {}
    }
    let _ = std::fs::remove_file(&state);
    eprintln!("stopping...");
    let mut summary = pipeline.summary(&[]).await;
    if let Ok(s) = &mut summary {
        s.duplicates_dropped = pipeline
            .stats("order-consumer")
            .by_outcome
            .get("duplicate")
            .copied()
            .unwrap_or(0) as usize;
    }
    match summary {
        Ok(s) => print!(
            "{}",
            order_local::report::render_run(&s, &pipeline.stack, &log.display().to_string())
        ),
        Err(e) => eprintln!("could not read the summary: {}", order_local::one_line(&e)),
    }
    if let Ok(items) =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await
    {
        let notifications = match &pipeline.inbox {
            Some(inbox) => inbox.received(&pipeline.clients).await.unwrap_or_default(),
            None => Vec::new(),
        };
        print!(
            "{}",
            order_local::report::render_lifecycle(
                &items,
                &pipeline.provider.ledger(),
                &notifications
            )
        );
    }
    pipeline.shutdown().await;
    Ok(())
}

/// One line of what the running pipeline has done so far.
async fn status_line(pipeline: &LocalPipeline) -> Result<String, LocalError> {
    let stats = pipeline.stats("order-consumer");
    let count = |label: &str| stats.by_outcome.get(label).copied().unwrap_or(0);
    let dlq = order_local::alarm::depth(&pipeline.clients.sqs, &pipeline.stack.dlq_url).await?;
    let queued =
        order_local::alarm::depth(&pipeline.clients.sqs, &pipeline.stack.queue_url).await?;
    // The lifecycle's statuses as the stages decided them (no table scan per line).
    let outcome = |binary: &str, label: &str| {
        pipeline
            .stats(binary)
            .by_outcome
            .get(label)
            .copied()
            .unwrap_or(0)
    };
    let payment_failed = outcome("payment", "declined")
        + outcome("payment", "attempts_used_up")
        + outcome("payment-dlq", "payment_failed");
    Ok(format!(
        "[{}] received {} records: stored {}, duplicates {}, failed {} (retried until the DLQ); queued {}, in the DLQ {}; DLQ alarm {}; reserved {}, rejected {}, paid {}, payment failed {}, completed {}",
        chrono::Local::now().format("%H:%M:%S"),
        stats.records,
        count("accepted") + count("reaccepted"),
        count("duplicate"),
        stats.failed_records,
        queued,
        dlq,
        pipeline.alarms.state(&pipeline.stack.dlq_alarm_name),
        outcome("inventory", "reserved"),
        outcome("inventory", "rejected"),
        outcome("payment", "paid"),
        payment_failed,
        outcome("notification", "completed"),
    ))
}

/// Ctrl-C or SIGTERM: either stops the run and cleans up (the emulator, stack.json).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// How to run the real Lambda binaries against this emulator, with the environment the
/// template gives each function.
fn cargo_lambda_hint(pipeline: &LocalPipeline) -> String {
    let mut env = std::collections::BTreeMap::new();
    for f in &pipeline.created.functions {
        env.extend(f.environment.clone());
    }
    let mut vars = format!(
        "--env-var AWS_ENDPOINT_URL={} --env-var AWS_REGION={} --env-var AWS_ACCESS_KEY_ID=emulator --env-var AWS_SECRET_ACCESS_KEY=emulator",
        pipeline.stack.endpoint,
        order_local::emulator::EMULATOR_REGION
    );
    for (k, v) in env {
        vars.push_str(&format!(" --env-var {k}={v}"));
    }
    let mut out = format!(
        "to try the real Lambda binaries against this emulator, in two more terminals (the first build takes minutes; invoke waits for it):\n  cargo lambda watch {vars}"
    );
    for f in &pipeline.created.functions {
        for fixture in order_local::functions::fixtures(&f.binary) {
            out.push_str(&format!(
                "\n  cargo lambda invoke {} --data-file {fixture}",
                f.binary
            ));
        }
    }
    out
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo {
            boot,
            generate,
            timeout,
        } => demo(&cli, boot, *generate, *timeout).await,
        Command::Run { boot } => run(&cli, boot).await.map(|_| true),
        Command::Plan => load_template(&cli).and_then(|t| {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan(&t)?)
                    .map_err(|e| LocalError::Input(e.to_string()))?
            );
            Ok(true)
        }),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
