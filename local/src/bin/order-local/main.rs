//! order-local: the order pipeline on a laptop, on the embedded AWS emulator.
//!
//!   order-local demo   boot everything, publish the seed orders and a few troublemakers,
//!                      wait until the queue drains, print the summary (exit 1 if a message
//!                      is unaccounted for)
//!   order-local run    boot everything and keep it running for order-producer --local
//!   order-local flash-sale  thousands of orders for 3 hot skus through the whole lifecycle,
//!                      with DynamoDB's transaction conflicts: figures and the stock checks
//!   order-local plan   print what the runner does with each resource of the stack's template

mod boot;
pub(crate) mod cli;
mod demo;
mod flash_sale;
mod run;

use clap::Parser;
use order_local::resources::plan;
use order_local::LocalError;

use boot::load_template;
use cli::{Cli, Command};
use demo::demo;
use run::run;

// pub(crate): the `orders` command runs this main for the subcommands it shares.
#[tokio::main]
pub(crate) async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo {
            boot,
            generate,
            timeout,
        } => demo(&cli, boot, *generate, *timeout).await,
        Command::Run { boot } => run(&cli, boot).await.map(|_| true),
        Command::FlashSale(sale) => flash_sale::flash_sale(&cli, sale).await,
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
