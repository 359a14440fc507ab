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

/// Protects (issue 31, finding 1): behind the stack's JWT authorizer (the runner playing its
/// issuer) each caller is the token's customer, through the real order-api and the emulator:
/// one customer's POST naming another is 403 naming the field, one naming none is the token's
/// customer's; GET of the other customer's order is 404; a token with the admin scope reads both;
/// no token is API Gateway's 401 and the function is not reached. The issuer's keys are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jwt_each_customer_places_and_reads_its_own_orders_and_an_admin_reads_all() {
    use order_local::http::local_token;
    let template = Template::current_with_jwt().expect("the stack's JWT template synthesizes");
    let pipeline = LocalPipeline::boot(&template, Options::quiet("api-jwt"))
        .await
        .expect("pipeline boots on moto (run `make setup` if moto_server is missing)");
    let url = pipeline.stack.api_url.clone().expect("the API is served");
    let bearer = |t: String| format!("Bearer {t}");
    let u1 = bearer(local_token(&url, "U1", false).await.unwrap());
    let u2 = bearer(local_token(&url, "U2", false).await.unwrap());
    let admin = bearer(local_token(&url, "ops-1", true).await.unwrap());
    let post = |body: &'static str, auth: Option<String>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = match &auth {
                Some(a) => vec![("authorization", a.as_str())],
                None => vec![],
            };
            send("POST", &format!("{url}/orders"), Some(body), &headers, None)
                .await
                .unwrap()
        }
    };
    let get = |id: &'static str, auth: String| {
        let url = url.clone();
        async move {
            send(
                "GET",
                &format!("{url}/orders/{id}"),
                None,
                &[("authorization", &auth)],
                None,
            )
            .await
            .unwrap()
        }
    };

    let none = post(
        r#"{"orderId":"J-0","items":[{"sku":"A","quantity":1}]}"#,
        None,
    )
    .await;
    assert_eq!(none.status, 401, "{}", none.body);
    assert_eq!(none.body["message"], "Unauthorized");
    let theirs = post(
        r#"{"orderId":"J-X","customerId":"U2","items":[{"sku":"A","quantity":1}]}"#,
        Some(u1.clone()),
    )
    .await;
    assert_eq!(theirs.status, 403, "{}", theirs.body);
    assert_eq!(theirs.body["errors"][0]["field"], "customerId");
    let mine = post(
        r#"{"orderId":"J-1","items":[{"sku":"A","quantity":1}]}"#,
        Some(u1.clone()),
    )
    .await;
    assert_eq!(mine.status, 202, "{}", mine.body);
    let other = post(
        r#"{"orderId":"J-2","customerId":"U2","items":[{"sku":"A","quantity":1}]}"#,
        Some(u2.clone()),
    )
    .await;
    assert_eq!(other.status, 202, "{}", other.body);
    assert!(pipeline
        .wait_until_drained(Duration::from_secs(120), |_| {})
        .await
        .unwrap());

    let own = get("J-1", u1.clone()).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["customerId"], "U1", "filled from the token");
    assert_eq!(get("J-2", u1.clone()).await.status, 404);
    assert_eq!(get("J-1", u2.clone()).await.status, 404);
    assert_eq!(get("J-2", u2.clone()).await.status, 200);
    for id in ["J-1", "J-2"] {
        let read = get(id, admin.clone()).await;
        assert_eq!(read.status, 200, "{id}: {}", read.body);
    }
    let items = scan_orders(&pipeline.clients, &pipeline.stack.table_name)
        .await
        .unwrap();
    let mut stored: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.order_id.clone(), i.customer_id.clone()))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [("J-1".into(), "U1".into()), ("J-2".into(), "U2".into())],
        "nothing refused is stored"
    );
    let jwks = send(
        "GET",
        &format!("{url}/.well-known/jwks.json"),
        None,
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(jwks.body["keys"][0]["kty"], "RSA", "{}", jwks.body);
    pipeline.shutdown().await;
}
