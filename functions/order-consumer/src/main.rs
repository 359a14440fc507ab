//! order-consumer: SQS order queue -> Orders table. See order_pipeline::consumer.

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};

// One thread: a function gets a fraction of a core, and a multi-thread runtime spent it on
// waking and switching threads (docs/benchmarks.md, "Cutting the CPU per batch").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Built once per process; leaked because it lives as long as the process does.
    let consumer: &'static _ = Box::leak(Box::new(
        order_pipeline::bootstrap::start(order_pipeline::bootstrap::order_consumer()).await,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        consumer.handle(event)
    }))
    .await
}
