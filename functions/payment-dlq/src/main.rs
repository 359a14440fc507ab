//! payment-dlq: the payment DLQ's dead letters -> PAYMENT_FAILED with the stock released. See
//! order_pipeline::payment::PaymentDeadLetters.

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Built once per process; leaked because it lives as long as the process does.
    let handler: &'static _ = Box::leak(Box::new(
        order_pipeline::bootstrap::start(order_pipeline::bootstrap::payment_dlq()).await,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        handler.handle(event)
    }))
    .await
}
