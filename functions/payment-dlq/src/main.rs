//! payment-dlq: the payment DLQ's dead letters -> PAYMENT_FAILED with the stock released. See
//! order_pipeline::payment::PaymentDeadLetters.

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
