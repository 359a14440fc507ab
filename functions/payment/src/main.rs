//! payment: InventoryReserved -> PAID or PAYMENT_FAILED. See order_pipeline::payment.

// Each main's future nests the whole handler's: dlq-alarm's and order-events' needed 125 and 128
// of rustc's default query depth (128). Over it, a fresh build fails with "queries overflow the
// depth limit" while an incremental one passes: the headroom keeps the two alike.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Built once per process; leaked because it lives as long as the process does.
    let payment: &'static _ = Box::leak(Box::new(
        order_pipeline::bootstrap::start(order_pipeline::bootstrap::payment()).await,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        payment.handle(event)
    }))
    .await
}
