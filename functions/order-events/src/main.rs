//! order-events: the Orders stream -> lifecycle events. See order_pipeline::events.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Built once per process; leaked because it lives as long as the process does.
    let events: &'static _ = Box::leak(Box::new(
        order_pipeline::bootstrap::start(order_pipeline::bootstrap::order_events()).await,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        events.handle(event)
    }))
    .await
}
