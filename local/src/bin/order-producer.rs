//! order-producer: publishes orders to the order topic, on the local emulator or a deployed
//! stack.
//!
//!   order-producer --local seeds                        the seed systems' sample orders
//!   order-producer --local publish order.json           one order from a file (or - for stdin)
//!   order-producer --outputs-file cdk-outputs.json generate --count 1000 --duplicates 0.05
//!
//! Targets: --local (the stack `order-local run` is running), --endpoint-url + --topic-arn (any
//! emulator), --outputs-file (the file `cdk deploy --outputs-file` wrote) or --topic-arn alone
//! (a deployed stack, with your usual AWS credentials and region).

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use order_local::emulator::sdk_config_for;
use order_local::generate::{generate, Intent, Mix, Planned};
use order_local::publish::publish_all;
use order_local::{seeds, LocalError};

#[derive(Parser)]
#[command(version, about = "Publish orders to the order pipeline's topic")]
struct Cli {
    /// Publish to the local pipeline started by `order-local run`.
    #[arg(long, global = true)]
    local: bool,
    /// An emulator's endpoint (with --topic-arn).
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// The order topic's ARN.
    #[arg(long, global = true)]
    topic_arn: Option<String>,
    /// The outputs file of `npx cdk deploy --outputs-file cdk-outputs.json`.
    #[arg(long, global = true)]
    outputs_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish one order from a file, or from standard input with `-`.
    Publish {
        #[arg(default_value = "-")]
        file: String,
        /// The correlationId message attribute (default: SNS's message id).
        #[arg(long)]
        correlation_id: Option<String>,
    },
    /// Publish the seed systems' sample orders (seeds 001, 002, 004).
    Seeds,
    /// Publish N generated orders with chosen fractions of duplicates, conflicts and invalid ones.
    Generate {
        #[arg(long, default_value_t = 100)]
        count: usize,
        #[arg(long, default_value_t = 0.05)]
        duplicates: f64,
        #[arg(long, default_value_t = 0.02)]
        conflicts: f64,
        #[arg(long, default_value_t = 0.03)]
        invalid: f64,
        /// Random seed: the same seed publishes the same traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn local_stack_file() -> PathBuf {
    order_local::state_dir().join("stack.json")
}

/// Finds the topic and the SNS client for the chosen target.
async fn target(cli: &Cli) -> Result<(aws_sdk_sns::Client, String), LocalError> {
    if cli.local {
        let path = local_stack_file();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            LocalError::Input(format!(
                "{} not found: start the local pipeline first with `make run` (order-local run)",
                path.display()
            ))
        })?;
        let stack: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| LocalError::Input(e.to_string()))?;
        let endpoint = stack["endpoint"].as_str().unwrap_or_default();
        let topic = stack["topicArn"].as_str().unwrap_or_default().to_string();
        return Ok((
            aws_sdk_sns::Client::new(&sdk_config_for(endpoint).await),
            topic,
        ));
    }
    let topic = match (&cli.topic_arn, &cli.outputs_file) {
        (Some(arn), _) => arn.clone(),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| LocalError::Input(format!("read {}: {e}", file.display())))?;
            let outputs: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| LocalError::Input(e.to_string()))?;
            outputs
                .as_object()
                .into_iter()
                .flat_map(|stacks| stacks.values())
                .find_map(|o| o.get("OrderTopicArn").and_then(|v| v.as_str()))
                .map(str::to_string)
                .ok_or_else(|| {
                    LocalError::Input(format!("{} has no OrderTopicArn output", file.display()))
                })?
        }
        (None, None) => return Err(LocalError::Input(
            "say where to publish: --local, --topic-arn ARN, or --outputs-file cdk-outputs.json"
                .into(),
        )),
    };
    let config = match &cli.endpoint_url {
        Some(endpoint) => sdk_config_for(endpoint).await,
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    };
    Ok((aws_sdk_sns::Client::new(&config), topic))
}

async fn run(cli: &Cli) -> Result<usize, LocalError> {
    let run_id = format!("p{}", chrono::Utc::now().timestamp_millis());
    let planned: Vec<Planned> = match &cli.command {
        Command::Publish {
            file,
            correlation_id,
        } => {
            let mut body = String::new();
            if file == "-" {
                std::io::stdin()
                    .read_to_string(&mut body)
                    .map_err(|e| LocalError::Input(format!("read stdin: {e}")))?;
            } else {
                body = std::fs::read_to_string(file)
                    .map_err(|e| LocalError::Input(format!("read {file}: {e}")))?;
            }
            if let Err(e) = order_domain::parse_body(&body).order {
                eprintln!("warning: this payload is not a valid order ({e}); publishing it anyway, it will reach the DLQ");
            }
            vec![Planned {
                correlation_id: correlation_id
                    .clone()
                    .unwrap_or_else(|| format!("{run_id}-0")),
                body,
                order_id: None,
                intent: Intent::New,
            }]
        }
        Command::Seeds => seeds::seed_orders(&run_id),
        Command::Generate {
            count,
            duplicates,
            conflicts,
            invalid,
            seed,
        } => {
            let mix = Mix {
                duplicates: *duplicates,
                conflicts: *conflicts,
                invalid: *invalid,
            };
            mix.validate().map_err(LocalError::Input)?;
            generate(*count, mix, *seed, &run_id)
        }
    };
    let (sns, topic) = target(cli).await?;
    publish_all(&sns, &topic, &planned, true).await
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(n) => {
            eprintln!("published {n} messages");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
