//! Booting the pipeline for `demo` and `run`: the template, the bootstraps and how to run
//! them, the function log, the emulator and the stack.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use order_local::pipeline::{
    Drain, LocalPipeline, Options, LOCAL_SCHEDULE_EVERY, LOCAL_STUCK_AFTER,
};
use order_local::template::Template;
use order_local::LocalError;
use order_pipeline::runtime::telemetry::{init_logging_traced, LineWriter};

use super::cli::{Boot, Cli};

pub(crate) fn load_template(cli: &Cli) -> Result<Template, LocalError> {
    match &cli.template {
        Some(path) => Template::load(path),
        None if cli.jwt => Template::current_with_jwt(),
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
    // Lambda's arm64 hosts are Graviton2 (Neoverse N1) and later: qemu's default CPU model
    // would run instructions a Graviton2 lacks, so the smoke test emulates that CPU.
    Ok(vec![
        "qemu-aarch64".into(),
        "-cpu".into(),
        "neoverse-n1".into(),
        "-L".into(),
        prefix.into(),
    ])
}

/// The functions' log file of a `demo` or a `run`: each its own, so that a demo started beside
/// a run does not empty the run's log (which `trace` reads).
fn log_path(command: &str) -> PathBuf {
    match command {
        "run" => order_local::state_dir().join("functions.log"),
        other => order_local::state_dir().join(format!("{other}-functions.log")),
    }
}

pub(crate) async fn boot(
    cli: &Cli,
    boot: &Boot,
    command: &str,
) -> Result<(LocalPipeline, PathBuf), LocalError> {
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
    let path = log_path(command);
    let writer: Arc<dyn LineWriter> = Arc::new(order_local::FileLines::create(&path)?);
    // The functions' traces: the runner is their X-Ray daemon (`orders trace` reads the file).
    let traces = if boot.no_traces {
        None
    } else {
        Some(order_local::traces::Collector::start(&order_local::traces::path(command))?.address)
    };
    init_logging_traced("order-local", writer.clone(), traces);
    // The fake provider is on loopback: local time passes faster, as with the retry delay.
    let payment_timeout =
        Duration::from_secs(1).max(Duration::from_millis(2 * boot.provider_latency_ms + 500));
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
                late_prefix: Some(order_local::seeds::LATE_CUSTOMER_PREFIX.into()),
                late_by: payment_timeout + Duration::from_millis(500),
                ..Default::default()
            },
            payment_timeout: Some(payment_timeout),
            faults: (boot.aws_latency_ms > 0).then(|| {
                order_local::faults::FaultRates::round_trip(Duration::from_millis(
                    boot.aws_latency_ms,
                ))
            }),
            bootstraps,
            stuck_after: (!boot.template_stuck_age).then_some(LOCAL_STUCK_AFTER),
            trace_daemon: traces,
            transaction_conflict: (boot.transaction_conflict_ms > 0)
                .then(|| Duration::from_millis(boot.transaction_conflict_ms)),
            environment: boot.environment.clone(),
        },
    )
    .await?;
    eprintln!(
        "emulator at {}; order topic {}",
        pipeline.stack.endpoint, pipeline.stack.topic_arn
    );
    Ok((pipeline, path))
}

pub(crate) fn progress(d: Drain) {
    eprintln!(
        "  waiting: {} messages in the stage queues, {} in the intake DLQ, {} records processed ({}s)",
        d.queue,
        d.dlq,
        d.records,
        d.elapsed.as_secs()
    );
}

/// The demo's catalogue: the seed orders' items among others (2 laptops: the seeds take both).
pub(crate) const CATALOGUE: &str = include_str!("../../../../test/events/inventory.json");
