//! The benchmarks' inputs and fake endpoints: orders, SQS events, and DynamoDB and SNS APIs
//! answering every request after a fixed delay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use order_local::kit::http_server::{
    response, with_header, HttpServer, Request, Response, ServerOptions,
};

pub(crate) fn order_body(id: &str) -> String {
    serde_json::json!({
        "orderId": id, "customerId": "U123", "currency": "USD", "createdAt": "2025-05-03T12:00:00Z",
        "items": [{"sku": "LAPTOP-15", "name": "Laptop", "quantity": 1, "unitPrice": "999.99"}]
    })
    .to_string()
}

pub(crate) fn sqs_event(batch: usize, size: usize) -> serde_json::Value {
    let records: Vec<_> = (0..size)
        .map(|i| {
            serde_json::json!({
                "messageId": format!("m-{batch}-{i}"), "receiptHandle": "rh", "body": order_body(&format!("B{batch}-{i}")),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": chrono::Utc::now().timestamp_millis().to_string()},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:local:0:q"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// The fake endpoints' server: on loopback, each answer sent at once (no delayed segment).
async fn serve<H, F>(handler: H) -> std::io::Result<HttpServer>
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response> + Send + 'static,
{
    let options = ServerOptions {
        nodelay: true,
        on_connection: None,
    };
    HttpServer::start_with(options, move |request| {
        let answer = handler(request);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    })
    .await
}

/// A DynamoDB-compatible endpoint answering every request as a success after `delay`: `{}`
/// (a write stored), or for a `BatchExecuteStatement` one success per statement. It serves until
/// dropped.
pub(crate) async fn fake_dynamodb(delay: Duration, requests: Arc<AtomicU64>) -> HttpServer {
    serve(move |req: Request| {
        let requests = requests.clone();
        async move {
            requests.fetch_add(1, Ordering::Relaxed);
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let statements = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|body| Some(body.get("Statements")?.as_array()?.len()));
            let answer = match statements {
                Some(n) => serde_json::json!({
                    "Responses": vec![serde_json::json!({"TableName": "Orders"}); n]
                })
                .to_string(),
                None => "{}".to_string(),
            };
            tokio::time::sleep(delay).await;
            with_header(
                response(200, answer),
                "content-type",
                "application/x-amz-json-1.0",
            )
        }
    })
    .await
    .expect("bind the fake DynamoDB endpoint")
}

/// An SNS-compatible endpoint answering every Publish after `delay`. It serves until dropped.
pub(crate) async fn fake_sns(delay: Duration) -> HttpServer {
    serve(move |_req: Request| async move {
        tokio::time::sleep(delay).await;
        with_header(
            response(
                200,
                "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>",
            ),
            "content-type",
            "text/xml",
        )
    })
    .await
    .expect("bind the fake SNS endpoint")
}
