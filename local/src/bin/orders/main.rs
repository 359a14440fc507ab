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

#[path = "../order-producer.rs"]
mod producer;

/// The subcommands of the local stack's runner; every other one is the producer's.
const STACK_COMMANDS: [&str; 3] = ["demo", "run", "plan"];
/// The producer's subcommands.
const PRODUCER_COMMANDS: [&str; 10] = [
    "seeds",
    "publish",
    "generate",
    "inventory",
    "redrive",
    "delete",
    "stuck",
    "trace",
    "ops",
    "help",
];

const HELP: &str = "\
orders: the order pipeline, locally and deployed

The local stack (on the embedded AWS emulator):
  orders demo                  everything end to end once, with a summary (exit 1 if anything is off)
  orders run [--decline-rate 0.05 ...]
                               the stack kept running until Ctrl-C, then a summary
  orders plan                  what the runner does with each resource of the stack's template

Against the running local stack (the default while `orders run` runs) or a deployed one
(--outputs-file cdk-outputs.json):
  orders seeds                 publish the seed systems' sample orders
  orders publish FILE          publish one order (`-` reads stdin); --http local|outputs posts it to the API
  orders generate --count N    generated orders, with --duplicates/--conflicts/--invalid shares
  orders inventory load FILE | show
  orders trace ORDER_ID        one order's timeline
  orders stuck                 orders not ended after the stuck-order age
  orders ops [--keep]          the local ops inbox: alarm notifications and dlq-alarm's summaries
  orders redrive [--dry-run] [--only IDS]
                               move the DLQ's redrivable messages back (conflicts and invalid ones stay)
  orders delete --only IDS     delete chosen DLQ messages

`orders COMMAND --help` gives each one's options.
";

fn main() -> std::process::ExitCode {
    // The first argument that names a subcommand decides which tool's parser takes the line.
    let command = std::env::args()
        .skip(1)
        .find(|a| STACK_COMMANDS.contains(&a.as_str()) || PRODUCER_COMMANDS.contains(&a.as_str()));
    match command.as_deref() {
        Some(c) if STACK_COMMANDS.contains(&c) => stack::main(),
        Some(c) if c != "help" => producer::main(),
        _ => {
            print!("{HELP}");
            let asked = std::env::args()
                .skip(1)
                .any(|a| matches!(a.as_str(), "help" | "--help" | "-h"));
            if asked {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
