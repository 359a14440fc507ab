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
}
