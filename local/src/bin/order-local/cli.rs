//! The command line: the subcommands and how each boots the pipeline.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "The order pipeline on a laptop, on an embedded AWS emulator (moto)"
)]
pub(crate) struct Cli {
    /// A synthesized template to run instead of the project's stack (by default the stack is
    /// synthesized from cdk.json and infra/ whenever they changed).
    #[arg(long, global = true)]
    pub(crate) template: Option<PathBuf>,
    /// Put the API behind a JWT authorizer whose issuer is the runner (the stack synthesized with
    /// apiJwtIssuer and apiJwtAudience of the local issuer): each caller is then a customer, and
    /// needs a token (`order-producer --http local --as CUSTOMER`). A cdk.json with its own
    /// issuer needs no flag: the runner plays that issuer.
    #[arg(long, global = true, conflicts_with = "template")]
    pub(crate) jwt: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Boot and keep the pipeline running until Ctrl-C; send it orders with `cargo orders seeds`.
    Run {
        #[command(flatten)]
        boot: Boot,
    },
    /// A flash sale (issue 33): ORDERS orders for 3 hot skus with stock for a third of them,
    /// plus background orders, published as fast as the producer can and carried through the
    /// whole lifecycle with the stack's concurrency settings and the queues' real retry delays,
    /// on an emulator that cancels transactions on a busy item (TransactionConflict). Prints
    /// the time until every order is terminal, conflicts per order, records that waited because
    /// of a conflict and dead letters; fails on oversell, units not conserved or an order not
    /// ended.
    FlashSale(FlashSale),
    /// Print what the runner does with each resource of the stack (create, emulate or skip,
    /// and why), as JSON.
    Plan,
}

#[derive(clap::Args)]
pub(crate) struct Boot {
    /// Use a moto server that is already running instead of starting one.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Failed records come back after this many seconds instead of the queue's visibility
    /// timeout (6 x the consumer's timeout + the batching window), so that retries and the
    /// trip to the DLQ take seconds, not minutes. Pass 0 to keep the real timeout.
    #[arg(long, default_value_t = 1)]
    pub(crate) retry_after: i32,
    /// The fake payment provider declines this share of new charges (0-1), besides customers
    /// whose id starts with `decline-`.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) decline_rate: f64,
    /// The fake payment provider answers 503 to this share of calls (0-1).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) unavailable_rate: f64,
    /// The fake payment provider answers after this many milliseconds.
    #[arg(long, default_value_t = 5)]
    pub(crate) provider_latency_ms: u64,
    /// The functions' AWS calls go through a proxy that holds each for this many milliseconds
    /// before passing it on (a region's round trip), instead of straight to the emulator, which
    /// answers at once: their CPU and wall figures are then the ones a deployed function's calls
    /// cost (`make bench` section 8). Both keep connections open. 0: straight to the emulator.
    #[arg(long, default_value_t = 0)]
    pub(crate) aws_latency_ms: u64,
    /// Contention as DynamoDB has it: a transaction naming an item another transaction committed
    /// within this many milliseconds is cancelled with TransactionConflict (the emulator's
    /// MOTO_TRANSACTION_CONFLICT_MS; the soak runs with 20). 0: never (moto's own behaviour).
    #[arg(long, default_value_t = 0)]
    pub(crate) transaction_conflict_ms: u64,
    /// Run the bootstraps `cdk synth` built into this cloud assembly (cdk.out), as processes
    /// behind a local Lambda runtime API, instead of the handlers in process; the arm64 ones run
    /// under qemu-aarch64 on another machine (`make setup` installs it). The assembly's template
    /// is the stack.
    #[arg(long)]
    pub(crate) assembly: Option<PathBuf>,
    /// Run the functions as processes from the binaries in this directory (a host release
    /// build: `cargo build --release` then `--bootstraps target/release`), with the project's
    /// template; the summary then gives each one's start-up, CPU and memory (`make bench`).
    #[arg(long, conflicts_with = "assembly")]
    pub(crate) bootstraps: Option<PathBuf>,
    /// The functions send no trace segments (the runner samples every invocation, where Lambda
    /// samples about 5%: `make bench` measures the functions without it; `orders trace` then
    /// shows no segments).
    #[arg(long)]
    pub(crate) no_traces: bool,
    /// NAME=VALUE set in every function's environment after the template's (repeatable), e.g.
    /// TRANSACTION_CONFLICT_TRIES=1.
    #[arg(long = "env", value_parser = parse_env)]
    pub(crate) environment: Vec<(String, String)>,
    /// The order watch's stuck-order age: `LOCAL_STUCK_AFTER` (20 s) when unset; the flash sale
    /// keeps the template's (orders of a sale may take longer than 20 s, and are not stuck).
    #[arg(skip)]
    pub(crate) template_stuck_age: bool,
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.into(), value.into())),
        _ => Err(format!("--env takes NAME=VALUE (got {raw:?})")),
    }
}

/// `flash-sale`'s settings (docs/benchmarks.md, section 10).
#[derive(clap::Args)]
pub(crate) struct FlashSale {
    /// Orders for the hot skus (one unit each, spread evenly over the three skus).
    #[arg(long, default_value_t = 5_000)]
    pub(crate) orders: usize,
    /// Orders for the other skus, published among the hot ones (stock for all of them).
    #[arg(long, default_value_t = 500)]
    pub(crate) background: usize,
    /// Units of the hot skus in stock, as a share of the hot orders (a third).
    #[arg(long, default_value_t = 1.0 / 3.0)]
    pub(crate) stock_share: f64,
    /// A transaction naming an item another transaction committed within this many
    /// milliseconds is cancelled with TransactionConflict (the emulator's
    /// MOTO_TRANSACTION_CONFLICT_MS).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) conflict_ms: u64,
    /// The functions' AWS calls take this many milliseconds each (a proxy in front of the
    /// emulator: a region's round trip; the proxy also counts the conflicts).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) aws_latency_ms: u64,
    /// How many times the stages send a stock transaction cancelled only by conflicts
    /// (TRANSACTION_CONFLICT_TRIES; the stages' default when unset). 1: no retry in process,
    /// every conflict waits the queue's retry delay (the figures before issue 33).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub(crate) conflict_tries: Option<u32>,
    /// Give up waiting for the queues to drain after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub(crate) timeout: u64,
}
