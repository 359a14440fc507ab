//! The order API on the local pipeline: the real order-api handler behind the runner's loopback
//! server, publishing to the emulator's order topic, through the real intake into the table.

use std::time::Duration;

use order_local::http::send;
use order_local::pipeline::{LocalPipeline, Options};
use order_local::report::scan_orders;
use order_local::template::Template;

const SEEDS: [&str; 3] = [
    include_str!("../../test/events/payloads/seed-001-flat.json"),
    include_str!("../../test/events/payloads/seed-002-snake.json"),
    include_str!("../../test/events/payloads/seed-004-flat.json"),
];

/// Protects: each seed's sample order POSTed to the API is 202, reaches the table through the
/// real topic, queue and consumer, and GET then shows it with its status and steps; a POST retried with the same
/// Idempotency-Key stores one order; an invalid body is 400 naming the field; once stored, the
/// key reused for another cart is 422 and the id posted with other content 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_orders_reach_the_table_once_and_get_shows_them() {
    let template = Template::current().expect("the stack's template synthesizes");
    let pipeline = LocalPipeline::boot(&template, Options::quiet("api"))
        .await
        .expect("pipeline boots on moto (run `make setup` if moto_server is missing)");
    let url = pipeline
        .stack
        .api_url
        .clone()
        .expect("the stack's API is served");

    let mut ids = Vec::new();
    for seed in SEEDS {
        let posted = send("POST", &format!("{url}/orders"), Some(seed), &[], None)
            .await
            .unwrap();
        assert_eq!(posted.status, 202, "{}", posted.body);
        ids.push(posted.body["orderId"].as_str().unwrap().to_string());
    }
    let no_id = r#"{"customerId":"U9","items":[{"sku":"KB-2","quantity":1,"unitPrice":"49.00"}]}"#;
    let key = [("idempotency-key", "retry-me")];
    let first = send("POST", &format!("{url}/orders"), Some(no_id), &key, None)
        .await
        .unwrap();
    let retry = send("POST", &format!("{url}/orders"), Some(no_id), &key, None)
        .await
        .unwrap();
    assert_eq!((first.status, retry.status), (202, 202));
    assert_eq!(first.body["orderId"], retry.body["orderId"]);
    ids.push(first.body["orderId"].as_str().unwrap().to_string());

    let invalid = send(
        "POST",
        &format!("{url}/orders"),
        Some(r#"{"orderId":"X1","customerId":"U1","items":[{"sku":"A","quantity":0}]}"#),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["errors"][0]["field"], "items[0].quantity");

    assert!(pipeline
        .wait_until_drained(Duration::from_secs(120), |_| {})
        .await
        .unwrap());
    for id in &ids {
        let got = send("GET", &format!("{url}/orders/{id}"), None, &[], None)
            .await
            .unwrap();
        assert_eq!(got.status, 200, "{id}: {}", got.body);
        // Stored, then carried on by the lifecycle: no stock is loaded, so the inventory stage
        // rejects it, and GET says why.
        assert_eq!(got.body["status"], "REJECTED", "{id}");
        assert!(got.body["rejection"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unknown sku")));
        assert!(
            got.body["steps"]["acceptedAt"].is_string()
                && got.body["steps"]["rejectedAt"].is_string()
        );
    }
    let items = scan_orders(&pipeline.clients, &pipeline.stack.table_name)
        .await
        .unwrap();
    assert_eq!(
        items.len(),
        4,
        "three seeds and one retried order, stored once"
    );
    let missing = send("GET", &format!("{url}/orders/NOT-THERE"), None, &[], None)
        .await
        .unwrap();
    assert_eq!(missing.status, 404);

    // Conflicts at the door, read from the table: the retried key with another cart is 422
    // naming the header, and a stored order's id with other content is 409 naming it.
    let other_cart = r#"{"customerId":"U9","items":[{"sku":"MOUSE-1","quantity":2}]}"#;
    let reused = send(
        "POST",
        &format!("{url}/orders"),
        Some(other_cart),
        &key,
        None,
    )
    .await
    .unwrap();
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert_eq!(reused.body["errors"][0]["field"], "Idempotency-Key");
    let taken = format!(
        r#"{{"orderId":"{}","customerId":"U9","items":[{{"sku":"MOUSE-1","quantity":2}}]}}"#,
        ids[3]
    );
    let conflict = send("POST", &format!("{url}/orders"), Some(&taken), &[], None)
        .await
        .unwrap();
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_eq!(
        conflict.body["links"]["order"],
        format!("/orders/{}", ids[3])
    );
    pipeline.shutdown().await;
}
