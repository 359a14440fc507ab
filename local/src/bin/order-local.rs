//! order-local: the order pipeline on a laptop, on the embedded AWS emulator.
//!
//!   order-local demo   boot everything, publish the seed orders and a few troublemakers,
//!                      wait until the queue drains, print the summary (exit 1 if a message
//!                      is unaccounted for)
//!   order-local run    boot everything and keep it running for order-producer --local
//!   order-local plan   print the settings the local resources take (compared with the stack)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use order_local::generate::{generate, Mix};
use order_local::pipeline::{Drain, LocalPipeline, Options};
use order_local::report::render;
use order_local::resources::Plan;
use order_local::seeds;
use order_local::settings::Settings;
use order_local::LocalError;
use order_pipeline::telemetry::{init_logging, LineWriter};

#[derive(Parser)]
#[command(
    version,
    about = "The order pipeline on a laptop, on an embedded AWS emulator (moto)"
)]
struct Cli {
    /// The cdk.json whose context holds the pipeline's settings.
    #[arg(long, global = true, default_value_os_t = Settings::default_path())]
    cdk_json: PathBuf,
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
    /// Print the settings the local resources are created with, as JSON.
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
}

/// Function logs go to a file, so the terminal shows the demo and the file the JSON lines.
struct FileLines(std::sync::Mutex<std::fs::File>);

impl LineWriter for FileLines {
    fn write_line(&self, line: &str) {
        use std::io::Write;
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn log_path() -> PathBuf {
    order_local::state_dir().join("functions.log")
}

async fn boot(cli: &Cli, boot: &Boot) -> Result<(LocalPipeline, PathBuf), LocalError> {
    let settings = Settings::load(&cli.cdk_json)?;
    let path = log_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| LocalError::Input(format!("create {}: {e}", dir.display())))?;
    }
    let file = std::fs::File::create(&path)
        .map_err(|e| LocalError::Input(format!("create {}: {e}", path.display())))?;
    let writer: Arc<dyn LineWriter> = Arc::new(FileLines(std::sync::Mutex::new(file)));
    init_logging("order-local", writer.clone());
    eprintln!("starting the AWS emulator (moto) and creating the stack's resources...");
    let pipeline = LocalPipeline::boot(
        settings,
        Options {
            endpoint: boot.endpoint.clone(),
            retry_after_seconds: (boot.retry_after > 0).then_some(boot.retry_after),
            telemetry: writer,
            prefix: format!("local{}", chrono::Utc::now().timestamp_millis() % 1_000_000),
            alarm_interval: Duration::from_secs(1),
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
        "  waiting: {} messages in the order queue, {} in the DLQ, {} records processed ({}s)",
        d.queue,
        d.dlq,
        d.records,
        d.elapsed.as_secs()
    );
}

async fn demo(cli: &Cli, b: &Boot, generated: usize, timeout: u64) -> Result<bool, LocalError> {
    let (pipeline, log) = boot(cli, b).await?;
    let timeout = Duration::from_secs(timeout);
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
    pipeline.shutdown().await;
    Ok(summary.all_accounted_for() && drained)
}

async fn run(cli: &Cli, b: &Boot) -> Result<(), LocalError> {
    let (pipeline, log) = boot(cli, b).await?;
    let state = order_local::state_dir().join("stack.json");
    let json = serde_json::to_string_pretty(&pipeline.stack)
        .map_err(|e| LocalError::Input(e.to_string()))?;
    std::fs::write(&state, json)
        .map_err(|e| LocalError::Input(format!("write {}: {e}", state.display())))?;
    eprintln!(
        "running. publish with: cargo run -p order-local --bin order-producer -- --local seeds"
    );
    eprintln!(
        "to try the real Lambda binaries against this emulator, run in two more terminals:\n  \
         cargo lambda watch --env-var AWS_ENDPOINT_URL={endpoint} --env-var AWS_REGION={region} \
         --env-var AWS_ACCESS_KEY_ID=emulator --env-var AWS_SECRET_ACCESS_KEY=emulator \
         --env-var TABLE_NAME={table} --env-var DLQ_URL={dlq} --env-var OPS_TOPIC_ARN={ops}\n  \
         cargo lambda invoke order-consumer --data-file test/events/sqs-batch.json",
        endpoint = pipeline.stack.endpoint,
        region = order_local::emulator::EMULATOR_REGION,
        table = pipeline.stack.table_name,
        dlq = pipeline.stack.dlq_url,
        ops = pipeline.stack.ops_topic_arn,
    );
    eprintln!(
        "function logs: {}; resources: {}; Ctrl-C stops everything",
        log.display(),
        state.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    let _ = std::fs::remove_file(&state);
    pipeline.shutdown().await;
    Ok(())
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
        Command::Plan => Settings::load(&cli.cdk_json)
            .map_err(LocalError::from)
            .and_then(|s| {
                let plan = Plan::from_settings(&s);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan)
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
