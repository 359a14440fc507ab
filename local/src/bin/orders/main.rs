//! orders: the order pipeline's one command, for the local stack and a deployed one alike
//! (`cargo orders ...` from the workspace: .cargo/config.toml's alias builds and runs it).
//!
//!   orders demo | run | plan            the local stack on the embedded emulator (order-local)
//!   orders seeds | publish | generate   send orders; inventory load | show
//!   orders redrive | delete | stuck | trace | ops
//!
//! It runs the same code as `order-local` and `order-producer`: each subcommand goes to the
//! tool that has it. With no target named, the subcommands that reach a stack use the local one
//! while `orders run` runs; `--outputs-file cdk-outputs.json` names a deployed one.

#[path = "../order-local/main.rs"]
mod stack;

#[path = "../order-producer/main.rs"]
mod producer;

const HELP: &str = "\
orders: the order pipeline, locally and deployed

The local stack (on the embedded AWS emulator):
  orders demo                  everything end to end once, with a summary (exit 1 if anything is off)
  orders run [--decline-rate 0.05 ...]
                               the stack kept running until Ctrl-C, then a summary
  orders flash-sale [--orders 5000]
                               a flash sale on 3 skus through the whole lifecycle, with DynamoDB's
                               transaction conflicts: time to terminal, conflicts, stock checks
  orders plan                  what the runner does with each resource of the stack's template

Against the running local stack (the default while `orders run` runs) or a deployed one
(--outputs-file cdk-outputs.json):
  orders seeds                 publish the seed systems' sample orders
  orders publish FILE          publish one order (`-` reads stdin); --http local|outputs posts it to the API
  orders generate --count N    generated orders, with --duplicates/--conflicts/--invalid shares
  orders inventory load FILE | show
  orders get ORDER_ID          one order as GET /orders/{id} shows it
  orders cancel ORDER_ID       cancel it through the API (CANCELLED, or CANCELLING until refunded)
  orders list [--status FAILED]
                               the stored orders, with the reason of an unsuccessful status
  orders outputs               the target stack's outputs (queue URLs, table names, API URL)
  orders trace ORDER_ID        one order's timeline and its trace segments
  orders stuck                 orders not ended after the stuck-order age
  orders ops [--keep]          the local ops inbox: alarm notifications and dlq-alarm's summaries
  orders redrive [--dry-run] [--only IDS]
                               move the DLQ's redrivable messages back (conflicts and invalid ones stay)
  orders dlq [--dlq inventory]  a DLQ's messages (the intake's by default, judged as redrive would)
  orders delete --only IDS [--dlq inventory]
                               delete chosen DLQ messages

`orders COMMAND --help` gives each one's options.
";

/// Which tool's parser takes a command line.
#[derive(Debug, PartialEq, Eq)]
enum Tool {
    Stack,
    Producer,
    Help,
    Version,
}

/// The subcommand names of a clap parser.
fn names<C: clap::CommandFactory>() -> Vec<String> {
    C::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The first argument that names a subcommand of either tool decides (the names come from the
/// tools' own parsers); none: the help (or the version).
fn dispatch(args: &[String]) -> Tool {
    let stack = names::<stack::cli::Cli>();
    let producer = names::<producer::Cli>();
    for a in args {
        if stack.contains(a) {
            return Tool::Stack;
        }
        if producer.contains(a) && a != "help" {
            return Tool::Producer;
        }
        if a == "--version" || a == "-V" {
            return Tool::Version;
        }
    }
    Tool::Help
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Tool::Stack => stack::main(),
        Tool::Producer => producer::main(),
        Tool::Version => {
            println!("orders {}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        Tool::Help => {
            print!("{HELP}");
            let asked = args
                .iter()
                .any(|a| matches!(a.as_str(), "help" | "--help" | "-h"));
            if asked {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    /// Protects: every subcommand of both tools reaches its tool, no name belongs to both, and
    /// the help lists each one (a subcommand added to a tool is dispatched without a hand list).
    #[test]
    fn every_subcommand_reaches_its_tool_and_the_help_names_it() {
        let stack = names::<stack::cli::Cli>();
        let producer = names::<producer::Cli>();
        assert!(
            stack.iter().all(|n| !producer.contains(n)),
            "{stack:?} {producer:?}"
        );
        for n in &stack {
            assert_eq!(dispatch(&args(&format!("{n} --flag"))), Tool::Stack, "{n}");
            assert!(HELP.contains(&format!("orders {n}")), "the help names {n}");
        }
        for n in producer.iter().filter(|n| *n != "help") {
            assert_eq!(
                dispatch(&args(&format!("--outputs-file x.json {n}"))),
                Tool::Producer,
                "{n}"
            );
            assert!(HELP.contains(&format!("orders {n}")), "the help names {n}");
        }
        assert_eq!(dispatch(&args("")), Tool::Help);
        assert_eq!(dispatch(&args("--version")), Tool::Version);
    }
}
