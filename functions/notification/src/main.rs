//! notification: terminal outcomes -> customer notifications; PAID -> COMPLETED. See
//! order_pipeline::notification.

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Built once per process; leaked because it lives as long as the process does.
    let notification: &'static _ = Box::leak(Box::new(
        order_pipeline::bootstrap::start(order_pipeline::bootstrap::notification()).await,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        notification.handle(event)
    }))
    .await
}
