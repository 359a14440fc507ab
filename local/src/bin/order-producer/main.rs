//! order-producer: publishes orders to the order topic and redrives the DLQ, on the local
//! emulator or a deployed stack.
//!
//!   order-producer --local seeds                        the seed systems' sample orders
//!   order-producer --local publish order.json           one order from a file (or - for stdin)
//!   order-producer --outputs-file cdk-outputs.json generate --count 1000 --duplicates 0.05
//!   order-producer --local redrive --dry-run            list the DLQ, then `redrive` to move it back
//!   order-producer --local delete --only MESSAGE_ID     delete chosen DLQ messages (poison ones)
//!   order-producer --local trace O1234                  one order's timeline: steps, log lines, trace segments
//!   order-producer --local ops                          the local ops inbox: alarms and summaries
//!
//! As a customer: `--http local --as U123` POSTs with a token of the local runner's issuer (`orders
//! run --jwt`); `--admin` with the admin scope; `--token` sends a token of a deployed stack's issuer.
//!
//! Targets: --local (the stack `order-local run` is running), --endpoint-url + --topic-arn (any
//! emulator), --outputs-file (the file `cdk deploy --outputs-file` wrote; --stack picks one when
//! it holds several) or --topic-arn alone (a deployed stack, with your usual AWS credentials).

mod dlq;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use aws_config::SdkConfig;
use clap::{Parser, Subcommand};
use order_local::emulator::sdk_config_for;
use order_local::generate::{generate, Intent, Mix, Planned};
use order_local::publish::publish_all;
use order_local::report::plural;
use order_local::{one_line, seeds, LocalError};

#[derive(Parser)]
#[command(
    version,
    about = "Publish orders to the order pipeline's topic, and redrive its dead-letter queue"
)]
pub(crate) struct Cli {
    /// Use the local pipeline started by `make run` (order-local run).
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
    /// The stack to use when the outputs file holds several (e.g. OrderPipeline-prod).
    #[arg(long, global = true)]
    stack: Option<String>,
    /// POST the orders to the order API at this URL instead of publishing to the topic: `local`
    /// for the API `make run` serves, `outputs` for the ApiUrl output of --outputs-file (signed
    /// with SigV4 from your AWS credentials), or a URL.
    #[arg(long, global = true)]
    http: Option<String>,
    /// With `--http local` against a runner whose API takes JWTs (`orders run --jwt`): POST as
    /// this customer, with a token of the runner's issuer (orders naming another customer are
    /// refused with 403; orders naming none are this customer's).
    #[arg(long = "as", global = true, value_name = "CUSTOMER", requires = "http")]
    as_customer: Option<String>,
    /// With --as: the token carries the admin scope (acts for any customer).
    #[arg(long, global = true, requires = "as_customer")]
    admin: bool,
    /// With --http: send `Authorization: Bearer TOKEN` (a token of a deployed stack's issuer).
    #[arg(long, global = true, conflicts_with = "as_customer", requires = "http")]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish one order from a file, or from standard input with `-`.
    Publish {
        /// The order's JSON file; `-` reads it from stdin (there is no default: a forgotten
        /// file name would wait on the terminal).
        file: String,
        /// The correlationId message attribute (default: one made up for this run).
        #[arg(long)]
        correlation_id: Option<String>,
    },
    /// Publish the seed systems' sample orders (seeds 001, 002, 004).
    Seeds,
    /// Publish generated orders: new ones, plus chosen fractions of duplicates (the same message
    /// again), conflicts (an order id reused with other content) and invalid payloads.
    Generate {
        /// How many messages to publish.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Fraction (0 to 1) of messages that repeat an earlier message: dropped as duplicates.
        #[arg(long, default_value_t = 0.05)]
        duplicates: f64,
        /// Fraction (0 to 1) that reuse an earlier order id with other content: published, they
        /// reach the DLQ; through the API (--http), 409 once the first is stored, else the DLQ.
        #[arg(long, default_value_t = 0.02)]
        conflicts: f64,
        /// Fraction (0 to 1) of invalid payloads: they reach the DLQ.
        #[arg(long, default_value_t = 0.03)]
        invalid: f64,
        /// Random seed: the same seed publishes the same traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Manage the Inventory table.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// List the stuck orders: every order not ended this long after it was accepted (the
    /// Orders table, scanned), oldest first, with its status, its last step and the stage to look
    /// at.
    Stuck {
        /// The stuck-order age, in minutes (the stack's stuckAfterMinutes).
        #[arg(long, default_value_t = 15)]
        older_than_minutes: u64,
    },
    /// Move the intake DLQ's messages back to the order queue, each judged against the Orders
    /// table first: a conflict with the stored order or an invalid body stays (it would only
    /// fail again). Run with --dry-run first to see the judgement.
    Redrive {
        /// List the messages and what redriving each will do; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these messages: message ids or order ids, comma-separated.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// List every message, not only the first 20.
        #[arg(long)]
        all: bool,
    },
    /// The target stack's outputs (queue URLs, table names, the API's URL, ...), one per line.
    Outputs,
    /// The stored orders, one per line with the reason of an unsuccessful status (a scan of the
    /// Orders table), e.g. every FAILED one.
    List {
        /// Only orders in this status (ACCEPTED, RESERVED, PAID, COMPLETED, REJECTED,
        /// PAYMENT_FAILED, FAILED).
        #[arg(long)]
        status: Option<String>,
    },
    /// One order as GET /orders/{id} shows it (JSON), read from the Orders table: its status
    /// with the reason of an unsuccessful one, amount, lines, steps.
    Get { order_id: String },
    /// Cancel one order through the API (`POST /orders/{id}/cancel`): the local one, or the
    /// deployed stack's with --outputs-file (signed), --as / --token as for --http.
    Cancel { order_id: String },
    /// One order's timeline: the lifecycle steps its item records and, locally, every function
    /// log line about it, in time order with offsets, then its X-Ray segments as a tree per
    /// trace; against AWS, the Logs Insights query that finds those lines and the X-Ray filter
    /// expression for its traces.
    Trace {
        order_id: String,
        /// The functions' JSON log file (default: the local run's).
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// The local ops inbox: what the ops topic sent (alarm notifications, dlq-alarm's
    /// summaries), oldest first, then marked read. On AWS the ops topic reaches the email
    /// address of the stack's `alarmEmail` setting instead.
    Ops {
        /// Leave the pages in the inbox.
        #[arg(long)]
        keep: bool,
    },
    /// Delete the chosen intake DLQ messages (a poison message, once its publisher is fixed):
    /// nothing is deleted without --only.
    Delete {
        /// The messages: message ids or order ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        only: Vec<String>,
        /// The DLQ: intake (the order queue's), or a stage's: inventory, payment,
        /// notification, order-watch; or subscription.
        #[arg(long, default_value = "intake")]
        dlq: String,
    },
    /// List a DLQ's messages: the intake's as a redrive would judge them, a stage's as the
    /// events they are (each stage's dead-letter handler has settled their orders).
    Dlq {
        /// intake (the order queue's), or a stage's: inventory, payment, notification,
        /// order-watch; or subscription.
        #[arg(long, default_value = "intake")]
        dlq: String,
        /// List every message, not only the first 20.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Load the catalogue from a JSON list of {sku, available | stock, name, unitPrice, currency}
    /// or a CSV file whose header names those columns: each listed sku gets its name, price,
    /// currency and units for sale (`available`, or `stock` = units on hand, of which the
    /// reserved and sold stay so); reserved and sold units are never changed.
    Load { file: PathBuf },
    /// Print every sku's stock: available, reserved, sold, on hand, price.
    Show,
}

/// Where the command goes: the SDK configuration and the stack's outputs.
struct Target {
    config: SdkConfig,
    outputs: BTreeMap<String, String>,
    /// An emulator (the local pipeline or --endpoint-url), not AWS.
    emulated: bool,
}

impl Target {
    fn output(&self, name: &str) -> Result<&str, LocalError> {
        self.outputs.get(name).map(String::as_str).ok_or_else(|| {
            LocalError::Input(format!(
                "the target has no {name} output: use --local or --outputs-file cdk-outputs.json"
            ))
        })
    }
}

fn local_stack_file() -> PathBuf {
    order_local::state_dir().join("stack.json")
}

fn as_outputs(value: &serde_json::Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}

/// The outputs of one stack of an outputs file: the one named, or the only one.
fn outputs_of(file: &PathBuf, stack: Option<&str>) -> Result<BTreeMap<String, String>, LocalError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| LocalError::Input(format!("read {}: {e}", file.display())))?;
    let all: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LocalError::Input(format!("{}: {e}", file.display())))?;
    let stacks = all.as_object().cloned().unwrap_or_default();
    let names: Vec<&String> = stacks.keys().collect();
    let chosen = match (stack, names.as_slice()) {
        (Some(name), _) => stacks.get(name).ok_or_else(|| {
            LocalError::Input(format!(
                "{} has no stack {name}; it has {names:?}",
                file.display()
            ))
        })?,
        (None, [only]) => &stacks[*only],
        (None, []) => {
            return Err(LocalError::Input(format!(
                "{} holds no stack outputs",
                file.display()
            )))
        }
        (None, _) => {
            return Err(LocalError::Input(format!(
                "{} holds several stacks ({names:?}): choose one with --stack",
                file.display()
            )))
        }
    };
    Ok(as_outputs(chosen))
}

/// Whether the command goes to the local stack: `--local` (or `--http local`), or no target
/// named while `make run` runs.
fn local_target(cli: &Cli) -> bool {
    let none_named = cli.outputs_file.is_none()
        && cli.topic_arn.is_none()
        && cli.endpoint_url.is_none()
        && cli.stack.is_none()
        && cli.http.as_deref() != Some("outputs");
    cli.local
        || cli.http.as_deref() == Some("local")
        || (none_named
            && matches!(
                order_local::run_lock::holder(&order_local::state_dir()),
                order_local::run_lock::Holder::Running(_)
            ))
}

/// Finds the SDK configuration and the outputs for the chosen target.
async fn target(cli: &Cli) -> Result<Target, LocalError> {
    if local_target(cli) {
        eprintln!(
            "target: the local stack ({})",
            order_local::state_dir().join("stack.json").display()
        );
        let path = local_stack_file();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            match order_local::run_lock::holder(&order_local::state_dir()) {
                order_local::run_lock::Holder::Running(pid) => LocalError::Input(format!(
                    "the local pipeline is starting (pid {pid}): try again when it says \"running.\""
                )),
                order_local::run_lock::Holder::None => LocalError::Input(format!(
                    "{} not found: start the local pipeline first with `make run`",
                    path.display()
                )),
            }
        })?;
        let stack: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| LocalError::Input(e.to_string()))?;
        let endpoint = stack["endpoint"].as_str().unwrap_or_default();
        let address = endpoint.trim_start_matches("http://");
        if std::net::TcpStream::connect(address).is_err() {
            return Err(LocalError::Input(format!(
                "the local pipeline is not running (nothing answers at {endpoint}; {} is left from a run that was killed): start it with `make run`",
                path.display()
            )));
        }
        return Ok(Target {
            config: sdk_config_for(endpoint).await,
            outputs: as_outputs(&stack["outputs"]),
            emulated: true,
        });
    }
    let mut outputs = match &cli.outputs_file {
        Some(file) => outputs_of(file, cli.stack.as_deref())?,
        None => BTreeMap::new(),
    };
    if let Some(arn) = &cli.topic_arn {
        outputs.insert("OrderTopicArn".into(), arn.clone());
    }
    if outputs.is_empty() {
        return Err(LocalError::Input(
            "say where to go: start the local stack with `make run` (it is then the default), or name a deployed one with --outputs-file cdk-outputs.json (or --topic-arn ARN)".into(),
        ));
    }
    let (config, emulated) = match &cli.endpoint_url {
        Some(endpoint) => (sdk_config_for(endpoint).await, true),
        None => (
            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
            false,
        ),
    };
    Ok(Target {
        config,
        outputs,
        emulated,
    })
}

/// The API `http` names (`local`, `outputs` or a URL), how calls to it are signed (SigV4 for a
/// deployed stack's), and the bearer token of --as or --token.
struct Api {
    url: String,
    sdk: Option<SdkConfig>,
    bearer: Option<String>,
}

impl Api {
    async fn of(cli: &Cli, http: &str) -> Result<Api, LocalError> {
        let (url, sdk) = match http {
            "local" | "outputs" => {
                let target = target(cli).await?;
                let url = target.output("ApiUrl")?.trim_end_matches('/').to_string();
                let signed = (!target.emulated).then_some(target.config);
                (url, signed)
            }
            url if url.starts_with("http://") => (url.trim_end_matches('/').to_string(), None),
            url => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                (url.trim_end_matches('/').to_string(), Some(config))
            }
        };
        let bearer = match (&cli.as_customer, &cli.token) {
            (Some(customer), _) => Some(format!(
                "Bearer {}",
                order_local::http::local_token(&url, customer, cli.admin).await?
            )),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        };
        // A token stands for the caller: no SigV4 besides it.
        let sdk = if bearer.is_some() { None } else { sdk };
        Ok(Api { url, sdk, bearer })
    }

    /// Sends `method path` with `headers` (and the bearer token).
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<order_local::http::Posted, LocalError> {
        let mut all = headers.to_vec();
        if let Some(b) = &self.bearer {
            all.push(("authorization", b.as_str()));
        }
        order_local::http::send(
            method,
            &format!("{}{path}", self.url),
            body,
            &all,
            self.sdk.as_ref(),
        )
        .await
    }
}

/// POSTs every planned order to the API, each with its correlation id (and as its
/// Idempotency-Key, so a rerun of the same command is a duplicate, not new orders).
async fn post_all(cli: &Cli, planned: &[Planned], http: &str) -> Result<(), LocalError> {
    let api = Api::of(cli, http).await?;
    let url = &api.url;
    let bearer = &api.bearer;
    let (mut accepted, mut refused) = (0, 0);
    for p in planned {
        let headers = [
            ("x-correlation-id", p.correlation_id.as_str()),
            ("idempotency-key", p.correlation_id.as_str()),
        ];
        let answer = api.send("POST", "/orders", Some(&p.body), &headers).await?;
        if answer.status == 202 {
            accepted += 1;
        } else {
            refused += 1;
            eprintln!("{} {}: {}", answer.status, p.correlation_id, answer.body);
        }
        if answer.status == 401 && bearer.is_none() {
            return Err(LocalError::Input(
                "the API takes JWTs (401): POST as a customer with `--as CUSTOMER` (the local runner's issuer) or `--token TOKEN` (a deployed stack's issuer)".into(),
            ));
        }
    }
    eprintln!(
        "POST {url}/orders: {} accepted (202), {} refused",
        plural(accepted, "order", "orders"),
        refused
    );
    Ok(())
}

async fn publish(cli: &Cli, planned: Vec<Planned>) -> Result<(), LocalError> {
    if let Some(http) = &cli.http {
        return post_all(cli, &planned, http).await;
    }
    let target = target(cli).await?;
    let sns = aws_sdk_sns::Client::new(&target.config);
    let n = publish_all(&sns, target.output("OrderTopicArn")?, &planned, true).await?;
    eprintln!("published {}", plural(n, "message", "messages"));
    if let [one] = planned.as_slice() {
        eprintln!(
            "its correlation id is {}; every log line about it carries it{}",
            one.correlation_id,
            if cli.local {
                format!(
                    " (grep {} {})",
                    one.correlation_id,
                    order_local::state_dir().join("functions.log").display()
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

async fn trace(cli: &Cli, order_id: &str, log: Option<&std::path::Path>) -> Result<(), LocalError> {
    use order_local::timeline;
    let target = target(cli).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&target.config);
    let item = timeline::read_item(&dynamodb, target.output("OrdersTableName")?, order_id).await?;
    let Some(item) = item else {
        return Err(LocalError::Input(format!(
            "no order {order_id} in the Orders table (a message that was never stored is in the DLQ: `redrive --dry-run` lists it)"
        )));
    };
    let correlation = timeline::correlation_id(&item);
    let status = item
        .get("status")
        .and_then(|s| s.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let mut entries = timeline::steps(&item);
    let local_log = order_local::state_dir().join("functions.log");
    let log = log
        .map(std::path::Path::to_path_buf)
        .or_else(|| local_target(cli).then_some(local_log));
    if let Some(path) = &log {
        entries.extend(timeline::log_lines(path, order_id, correlation.as_deref())?);
    }
    print!("{}", timeline::render(order_id, &status, entries));
    if local_target(cli) {
        let path = order_local::traces::path("run");
        let segments = order_local::traces::of_order(&order_local::traces::read(&path)?, order_id);
        if segments.is_empty() {
            eprintln!("no trace segments of it in {}", path.display());
        } else {
            println!("\nIts traces (the functions' X-Ray segments):");
            print!("{}", order_local::traces::render(&segments));
            eprintln!("segments from {}", path.display());
        }
    } else {
        eprintln!(
            "its traces: X-Ray's trace map or CloudWatch Transaction Search, filter expression: annotation.order_id = \"{order_id}\""
        );
    }
    match &log {
        Some(path) => eprintln!("steps from the Orders table, lines from {}", path.display()),
        None => eprintln!(
            "steps from the Orders table. The functions' lines: CloudWatch Logs Insights over the stack's log groups (the *LogGroup outputs):\n  {}\nEach line's xray_trace_id opens its trace in X-Ray.",
            timeline::insights_query(order_id, correlation.as_deref())
        ),
    }
    Ok(())
}

async fn run(cli: &Cli) -> Result<(), LocalError> {
    let run_id = format!("p{}", chrono::Utc::now().timestamp_millis());
    let planned: Vec<Planned> = match &cli.command {
        Command::Redrive { dry_run, only, all } => {
            return dlq::redrive_dlq(cli, *dry_run, only, *all).await
        }
        Command::Delete { only, dlq } => return dlq::delete_from_dlq(cli, dlq, only).await,
        Command::Dlq { dlq, all } => return dlq::list_dlq(cli, dlq, *all).await,
        Command::Ops { keep } => {
            let target = target(cli).await?;
            let url = target.output(order_local::ops_inbox::OUTPUT).map_err(|_| {
                LocalError::Input(
                    "the ops inbox is the local stack's (make run); a deployed stack's ops topic reaches the alarmEmail address".into(),
                )
            })?;
            let sqs = aws_sdk_sqs::Client::new(&target.config);
            let pages = order_local::ops_inbox::read(&sqs, url, *keep).await?;
            print!("{}", order_local::ops_inbox::render(&pages));
            eprintln!(
                "{}{}",
                plural(pages.len(), "page", "pages"),
                if *keep { "" } else { ", marked read" }
            );
            return Ok(());
        }
        Command::List { status } => {
            let target = target(cli).await?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&target.config);
            let wanted = status.as_deref().map(str::to_uppercase);
            let mut rows = Vec::new();
            for raw in
                order_local::report::scan_all(&dynamodb, target.output("OrdersTableName")?).await?
            {
                let Ok(item) = serde_dynamo::from_item::<_, order_domain::OrderItem>(raw) else {
                    continue;
                };
                if wanted.as_deref().is_some_and(|w| w != item.status.as_str()) {
                    continue;
                }
                let reason = item
                    .failure
                    .as_ref()
                    .map(|f| f.reason.clone())
                    .or_else(|| item.rejection.as_ref().map(|r| r.reason.clone()))
                    .or_else(|| item.payment.as_ref().and_then(|p| p.reason.clone()))
                    .or_else(|| {
                        item.notification_failure
                            .as_ref()
                            .map(|n| format!("notification not sent: {}", n.error))
                    })
                    .unwrap_or_default();
                rows.push((item.order_id, item.status.as_str().to_string(), reason));
            }
            rows.sort();
            for (id, status, reason) in &rows {
                println!("{id:<40} {status:<15} {reason}");
            }
            eprintln!("{}", plural(rows.len(), "order", "orders"));
            return Ok(());
        }
        Command::Outputs => {
            let target = target(cli).await?;
            for (name, value) in &target.outputs {
                println!("{name:<36} {value}");
            }
            return Ok(());
        }
        Command::Get { order_id } => {
            let target = target(cli).await?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&target.config);
            let raw = order_local::timeline::read_item(
                &dynamodb,
                target.output("OrdersTableName")?,
                order_id,
            )
            .await?
            .ok_or_else(|| {
                LocalError::Input(format!(
                    "no order {order_id} in the Orders table (a message that was never stored is in the DLQ: `redrive --dry-run` lists it)"
                ))
            })?;
            let item: order_domain::OrderItem = serde_dynamo::from_item(raw).map_err(|e| {
                LocalError::Input(format!("the stored order {order_id} does not map: {e}"))
            })?;
            let view = order_pipeline::functions::api::OrderView::of(&item);
            println!(
                "{}",
                serde_json::to_string_pretty(&view)
                    .map_err(|e| LocalError::Input(e.to_string()))?
            );
            return Ok(());
        }
        Command::Trace { order_id, log } => return trace(cli, order_id, log.as_deref()).await,
        Command::Cancel { order_id } => {
            let http = match cli.http.as_deref() {
                Some(h) => h,
                None if local_target(cli) => "local",
                None => "outputs",
            };
            let api = Api::of(cli, http).await?;
            let answer = api
                .send("POST", &format!("/orders/{order_id}/cancel"), None, &[])
                .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&answer.body).unwrap_or_default()
            );
            return match answer.status {
                200 | 202 => Ok(()),
                status => Err(LocalError::Input(format!(
                    "POST {}/orders/{order_id}/cancel answered {status}",
                    api.url
                ))),
            };
        }
        Command::Stuck { older_than_minutes } => {
            let target = target(cli).await?;
            let stuck = order_local::stuck::list(
                &aws_sdk_dynamodb::Client::new(&target.config),
                target.output("OrdersTableName")?,
                std::time::Duration::from_secs(older_than_minutes * 60),
            )
            .await?;
            print!("{}", order_local::stuck::table(&stuck));
            eprintln!(
                "{} not ended {older_than_minutes} minutes after it was accepted",
                plural(stuck.rows.len(), "order", "orders")
            );
            return Ok(());
        }
        Command::Inventory {
            command: InventoryCommand::Load { file },
        } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| LocalError::Input(format!("read {}: {e}", file.display())))?;
            let products = order_local::inventory::parse(&text)?;
            let target = target(cli).await?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&target.config);
            let n = order_local::inventory::load(
                &dynamodb,
                target.output("InventoryTableName")?,
                &products,
            )
            .await?;
            eprintln!(
                "loaded {} ({} new, {} updated; reserved and sold units untouched)",
                plural(n.total(), "sku", "skus"),
                n.created,
                n.updated
            );
            return Ok(());
        }
        Command::Inventory {
            command: InventoryCommand::Show,
        } => {
            let target = target(cli).await?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&target.config);
            let items =
                order_local::inventory::scan(&dynamodb, target.output("InventoryTableName")?)
                    .await?;
            print!("{}", order_local::inventory::stock_table(&items));
            return Ok(());
        }
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
    publish(cli, planned).await
}

// pub(crate): the `orders` command runs this main for the subcommands it shares.
#[tokio::main]
pub(crate) async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
