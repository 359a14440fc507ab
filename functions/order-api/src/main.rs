//! order-api: POST /orders and GET /orders/{orderId} behind API Gateway. See order_pipeline::api.

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

use lambda_http::{service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Built once per process; leaked because it lives as long as the process does.
    let api: &'static _ = Box::leak(Box::new(
        order_pipeline::bootstrap::start(order_pipeline::bootstrap::order_api()).await,
    ));
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(api.handle(request).await)
    }))
    .await
}
