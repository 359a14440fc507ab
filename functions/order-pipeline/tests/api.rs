//! order-api's contract, one test per status code and error shape, against in-memory ports. The
//! same handler runs behind the local pipeline's HTTP server against moto in local/tests/api.rs.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request};
use order_domain::{Failure, OrderItem, OrderStatus, Provenance};
use order_pipeline::adapters::memory::orders::MemoryStore;
use order_pipeline::adapters::memory::publish::MemoryPublisher;
use order_pipeline::functions::api::{derived_order_id, OrderApi, MAX_BODY_BYTES};
use order_pipeline::runtime::config::{ApiAuth, ApiConfig};
use order_pipeline::runtime::telemetry::{capture_logs_into, Captured};
use serde_json::{json, Value};

const SEED_001: &str = include_str!("../../../test/events/payloads/seed-001-flat.json");
const SEED_002: &str = include_str!("../../../test/events/payloads/seed-002-snake.json");
const SEED_004: &str = include_str!("../../../test/events/payloads/seed-004-flat.json");
const CANONICAL: &str = include_str!("../../../test/events/payloads/canonical.json");
const FIXTURE: &str = include_str!("../../../test/events/api-post-order.json");

type Api = OrderApi<MemoryPublisher, MemoryStore>;

fn api(out: &Captured) -> Api {
    api_with(out, ApiAuth::Iam)
}

fn api_with(out: &Captured, auth: ApiAuth) -> Api {
    OrderApi::new(
        MemoryPublisher::default(),
        MemoryStore::new(),
        ApiConfig {
            order_topic_arn: "memory".into(),
            table_name: "Orders".into(),
            service: "order-api".into(),
            auth,
        },
        Arc::new(out.clone()),
    )
}

/// The API behind a JWT authorizer, with the stack's default claim and admin scope.
fn jwt_api(out: &Captured) -> Api {
    api_with(
        out,
        ApiAuth::Jwt {
            customer_claim: "sub".into(),
            admin_scope: "orders/admin".into(),
        },
    )
}

/// `request` as API Gateway's JWT authorizer passes it on: the verified token's claims (here
/// `sub`) and scopes in `requestContext.authorizer.jwt`.
fn with_token(request: Request, customer: &str, scopes: &[&str]) -> Request {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let context: ApiGatewayV2httpRequestContext = serde_json::from_value(json!({
        "http": {"method": request.method().as_str(), "path": request.uri().path()},
        "authorizer": {"jwt": {
            "claims": {"sub": customer, "scope": scopes.join(" ")},
            "scopes": scopes,
        }},
    }))
    .unwrap();
    request.with_request_context(RequestContext::ApiGatewayV2(context))
}

fn request(method: Method, path: &str, body: &str, headers: &[(&str, &str)]) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn post(body: &str, headers: &[(&str, &str)]) -> Request {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request(Method::POST, "/orders", body, &all)
}

async fn call(api: &Api, request: Request) -> (StatusCode, Value, lambda_http::http::HeaderMap) {
    let response = api.handle_request(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Binary(b) => serde_json::from_slice(b).unwrap(),
        Body::Empty => Value::Null,
        _ => Value::Null,
    };
    (status, body, headers)
}

fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn post_a_valid_order_is_202_with_location_and_is_published_in_canonical_form() {
    let out = Captured::default();
    let api = api(&out);
    let (status, body, headers) = call(&api, post(CANONICAL, &[])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["orderId"], "O1234");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["links"]["self"], "/orders/O1234");
    assert_eq!(headers["location"], "/orders/O1234");
    let published = api.publisher().published();
    assert_eq!(published.len(), 1);
    let (message, correlation) = &published[0];
    let sent: Value = serde_json::from_str(message).unwrap();
    assert_eq!(sent["orderId"], "O1234");
    assert_eq!(
        sent["items"][0]["unitPrice"], "999.99",
        "exact decimal string"
    );
    assert_eq!(headers["x-correlation-id"], correlation.as_str());
    assert_eq!(body["correlationId"], correlation.as_str());
}

#[tokio::test]
async fn post_accepts_every_seed_form() {
    let out = Captured::default();
    let api = api(&out);
    for (seed, id) in [
        (SEED_001, "O1234"),
        (SEED_002, "ord-1001"),
        (SEED_004, "O9001"),
    ] {
        let (status, body, _) = call(&api, post(seed, &[])).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let expected: Value = serde_json::from_str(seed).unwrap();
        let given = expected["orderId"]
            .as_str()
            .or(expected["order_id"].as_str())
            .unwrap();
        assert_eq!(body["orderId"], given, "{id}");
    }
    assert_eq!(api.publisher().published().len(), 3);
}

#[tokio::test]
async fn post_an_invalid_order_is_400_with_every_error_naming_its_field() {
    let out = Captured::default();
    let api = api(&out);
    let bad = json!({
        "orderId": "bad id!", "customerId": "",
        "items": [{"sku": "A", "quantity": 0}, {"quantity": 2, "unitPrice": "-1"}],
        "currency": "dollars"
    });
    let (status, body, _) = call(&api, post(&bad.to_string(), &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields = error_fields(&body);
    for field in [
        "orderId",
        "customerId",
        "items[0].quantity",
        "items[1].unitPrice",
        "items[1]",
        "currency",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    assert!(body["errors"][0]["message"].as_str().unwrap().len() > 5);
    assert!(api.publisher().published().is_empty(), "nothing published");
}

#[tokio::test]
async fn post_a_body_over_256_kb_is_413() {
    let out = Captured::default();
    let api = api(&out);
    let big = format!(
        r#"{{"orderId":"O1","customerId":"U1","items":[{{"sku":"{}","quantity":1}}]}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let (status, body, _) = call(&api, post(&big, &[])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_fields(&body), ["body"]);
}

#[tokio::test]
async fn post_a_body_that_is_not_json_is_400_naming_the_body_and_other_media_types_are_415() {
    let out = Captured::default();
    let api = api(&out);
    let (status, body, _) = call(&api, post("orderId=O1", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), ["body"]);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("JSON"));
    let (status, body, _) = call(
        &api,
        request(
            Method::POST,
            "/orders",
            CANONICAL,
            &[("content-type", "text/plain")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_fields(&body), ["Content-Type"]);
}

#[tokio::test]
async fn post_without_an_order_id_derives_it_from_the_idempotency_key_and_the_customer() {
    let out = Captured::default();
    let api = api(&out);
    let body = json!({"customerId": "U1", "items": [{"sku": "A", "quantity": 1}]}).to_string();
    let key = [("idempotency-key", "checkout-7")];
    let (s1, first, _) = call(&api, post(&body, &key)).await;
    let (s2, second, _) = call(&api, post(&body, &key)).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(
        first["orderId"], second["orderId"],
        "a retried POST is the same order"
    );
    assert_eq!(first["orderId"], derived_order_id(Some("checkout-7"), "U1"));
    // The same key from another customer is another order; no key, a new order each time.
    let other = json!({"customerId": "U2", "items": [{"sku": "A", "quantity": 1}]}).to_string();
    let (_, third, _) = call(&api, post(&other, &key)).await;
    assert_ne!(third["orderId"], first["orderId"]);
    let (_, a, _) = call(&api, post(&body, &[])).await;
    let (_, b, _) = call(&api, post(&body, &[])).await;
    assert_ne!(a["orderId"], b["orderId"]);
    // The published bodies carry the derived id, so the consumer stores that id.
    let published = api.publisher().published();
    let sent: Value = serde_json::from_str(&published[0].0).unwrap();
    assert_eq!(sent["orderId"], first["orderId"]);
}

#[tokio::test]
async fn the_correlation_id_comes_from_the_header_else_is_generated_and_is_echoed() {
    let out = Captured::default();
    let api = api(&out);
    let (_, body, headers) = call(&api, post(CANONICAL, &[("x-correlation-id", "corr-77")])).await;
    assert_eq!(headers["x-correlation-id"], "corr-77");
    assert_eq!(body["correlationId"], "corr-77");
    assert_eq!(api.publisher().published()[0].1, "corr-77");
    let (_, _, headers) = call(&api, post(CANONICAL, &[])).await;
    let generated = headers["x-correlation-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "{generated}");
}

#[tokio::test]
async fn a_publish_failure_is_503_with_retry_after_never_202() {
    let out = Captured::default();
    let api = api(&out);
    api.publisher().fail(true);
    let (status, body, headers) = call(&api, post(CANONICAL, &[])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "5");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("retry"));
}

fn stored(api: &Api, id: &str, status: OrderStatus) {
    let (order, _) = order_domain::parse_order(
        &json!({
            "orderId": id, "customerId": "U1", "currency": "USD",
            "items": [{"sku": "A", "quantity": 2, "unitPrice": "9.95"}, {"sku": "B", "quantity": 1, "unitPrice": "0.10"}]
        })
        .to_string(),
    )
    .unwrap();
    let from = Provenance {
        message_id: "m1".into(),
        correlation_id: "c1".into(),
        sent_at: chrono::Utc::now(),
    };
    let mut item = OrderItem::accepted(order, from, chrono::Utc::now());
    if status == OrderStatus::Failed {
        item.status = OrderStatus::Failed;
        item.failure = Some(Failure {
            reason: "not stored after 3 receives".into(),
            dead_lettered_at: "2025-05-03T12:05:00Z".into(),
            receive_count: 3,
        });
    }
    api.reader().put(item);
}

#[tokio::test]
async fn get_a_stored_order_is_200_with_status_lines_and_steps_and_no_amount_before_pricing() {
    let out = Captured::default();
    let api = api(&out);
    stored(&api, "O1", OrderStatus::Accepted);
    let (status, body, _) = call(&api, request(Method::GET, "/orders/O1", "", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ACCEPTED");
    assert_eq!(body["lines"].as_array().unwrap().len(), 2);
    // The lines' own unitPrice is not the price (issue 30): the catalogue sets it at the
    // reservation, so an ACCEPTED order has no amount yet.
    assert!(body["amount"].is_null(), "{body}");
    assert!(body["steps"]["acceptedAt"].is_string());
    assert!(body.get("failure").is_none());
}

/// Protects (issue 31, finding 4): GET of a PAYMENT_FAILED order says why the payment failed,
/// as a REJECTED order says why it was rejected (the item had `payment.reason`; the view
/// dropped it).
#[tokio::test]
async fn get_a_payment_failed_order_shows_the_payment_result_and_reason() {
    let out = Captured::default();
    let api = api(&out);
    stored(&api, "O3", OrderStatus::Accepted);
    let mut item = api.reader().get("O3").expect("stored");
    item.status = OrderStatus::PaymentFailed;
    item.payment = Some(order_domain::Payment {
        result: order_domain::PaymentResult::Declined,
        provider: Some("http".into()),
        payment_id: None,
        amount: "20.00".into(),
        currency: Some("USD".into()),
        attempts: Some(1),
        reason: Some("insufficient funds".into()),
    });
    api.reader().put(item);
    let (status, body, _) = call(&api, request(Method::GET, "/orders/O3", "", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "PAYMENT_FAILED");
    assert_eq!(body["payment"]["result"], "declined", "{body}");
    assert_eq!(body["payment"]["reason"], "insufficient funds", "{body}");
}

#[tokio::test]
async fn get_a_failed_order_shows_the_reason() {
    let out = Captured::default();
    let api = api(&out);
    stored(&api, "O2", OrderStatus::Failed);
    let (status, body, _) = call(&api, request(Method::GET, "/orders/O2", "", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "FAILED");
    assert_eq!(body["failure"]["reason"], "not stored after 3 receives");
}

#[tokio::test]
async fn get_an_order_not_stored_is_404_and_a_bad_id_is_400() {
    let out = Captured::default();
    let api = api(&out);
    let (status, body, _) = call(&api, request(Method::GET, "/orders/NOPE", "", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_fields(&body), ["orderId"]);
    let (status, body, _) = call(&api, request(Method::GET, "/orders/bad%20id", "", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), ["orderId"]);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let out = Captured::default();
    let api = api(&out);
    let (status, _, _) = call(&api, request(Method::GET, "/customers", "", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, headers) = call(&api, request(Method::DELETE, "/orders/O1", "", &[])).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET");
}

#[tokio::test]
async fn every_line_is_json_with_the_correlation_id_and_metrics_are_emf() {
    let out = Captured::default();
    let api = api(&out);
    capture_logs_into(&out);
    call(&api, post(CANONICAL, &[("x-correlation-id", "corr-9")])).await;
    call(&api, post("{}", &[("x-correlation-id", "corr-9")])).await;
    let lines = out.json();
    let logs: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_none()).collect();
    assert!(
        logs.iter()
            .filter(|l| l["message"] == "request answered")
            .count()
            == 2,
        "{lines:?}"
    );
    assert!(logs.iter().all(|l| l["correlation_id"] == "corr-9"));
    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf[0]["ApiOrdersAccepted"], 1.0);
    assert_eq!(emf[1]["ApiOrdersInvalid"], 1.0);
}

/// Protects: test/events/api-post-order.json (for `cargo lambda invoke order-api`) is an API
/// Gateway HTTP API event that the handler answers 202, with an id derived from its key.
#[tokio::test]
async fn fixture_api_post_order_parses_and_is_accepted() {
    let out = Captured::default();
    let api = api(&out);
    let request = lambda_http::request::from_str(FIXTURE).expect("an API Gateway v2 event");
    let response = api.handle(request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let published = api.publisher().published();
    let sent: Value = serde_json::from_str(&published[0].0).unwrap();
    assert_eq!(
        sent["orderId"],
        derived_order_id(Some("fixture-checkout-42"), "U123")
    );
    assert_eq!(published[0].1, "fixture-api-1");
}

/// Protects (issue 31): the headers the API takes are visible ASCII within their bound, else 400
/// naming the header, on every route: an Idempotency-Key with a tab was accepted, and a 16 KB
/// or tab-carrying X-Correlation-Id was silently replaced by a new id.
#[tokio::test]
async fn idempotency_key_and_correlation_id_out_of_bounds_are_400_naming_the_header() {
    let out = Captured::default();
    let api = api(&out);
    let long = "k".repeat(129);
    let huge = "c".repeat(16 * 1024);
    for (header, value) in [
        ("idempotency-key", "check\tout-7"),
        ("idempotency-key", long.as_str()),
        ("idempotency-key", "two words"),
        ("x-correlation-id", huge.as_str()),
        ("x-correlation-id", "corr\t9"),
    ] {
        let (status, body, headers) = call(&api, post(CANONICAL, &[(header, value)])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header}: {body}");
        let named = if header == "idempotency-key" {
            "Idempotency-Key"
        } else {
            "X-Correlation-Id"
        };
        assert_eq!(error_fields(&body), vec![named.to_string()], "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 128 visible ASCII"),
            "{body}"
        );
        // The answer still carries a correlation id: a new one, not the refused value.
        let echoed = headers["x-correlation-id"].to_str().unwrap();
        assert_ne!(echoed, value);
        assert_eq!(echoed.len(), 36, "{echoed}");
    }
    assert!(
        api.publisher().published().is_empty(),
        "nothing refused is published"
    );
    let (status, body, _) = call(
        &api,
        request(
            Method::GET,
            "/orders/O1",
            "",
            &[("x-correlation-id", "a b")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_fields(&body), vec!["X-Correlation-Id".to_string()]);
    let (status, body, _) = call(
        &api,
        request(Method::GET, "/orders/O1", "", &[("idempotency-key", "a b")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_fields(&body), vec!["Idempotency-Key".to_string()]);
    // At the bound, accepted.
    let at_bound = "k".repeat(128);
    let (status, _, headers) = call(
        &api,
        post(
            CANONICAL,
            &[
                ("idempotency-key", &at_bound),
                ("x-correlation-id", &at_bound),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers["x-correlation-id"], at_bound.as_str());
}

/// Protects the contract's decision (docs/contract.md): a POST without a Content-Type is read as
/// JSON (only another media type is 415).
#[tokio::test]
async fn a_post_without_a_content_type_is_read_as_json() {
    let out = Captured::default();
    let api = api(&out);
    let (status, body, _) = call(&api, request(Method::POST, "/orders", CANONICAL, &[])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Protects (issue 31): the derived orderId goes into the body as text, the rest as the client
/// sent it. The API used to round-trip such a body through `serde_json::Value`, which collapsed
/// a duplicated key (the parser refuses it when the id is given) and rounded numbers past 17
/// digits; so a body without an id answers as the same body with one does.
#[tokio::test]
async fn a_derived_order_id_is_inserted_without_rewriting_the_body() {
    let out = Captured::default();
    let api = api(&out);
    let without_id = [
        r#"{"customerId": "U1", "customerId": "U2", "items": [{"sku": "A", "quantity": 1}]}"#,
        r#"{"customerId": "U1", "items": [{"sku": "A", "quantity": 1.00000000000000000001}]}"#,
    ];
    // A number no f64 holds: the parser takes it (an unknown field), so the id is derived too.
    let huge = r#"{"customerId": "U1", "items": [{"sku": "A", "quantity": 1}], "note": 1e400}"#;
    let (status, answer, _) = call(&api, post(huge, &[("idempotency-key", "k-0")])).await;
    let huge_with_id = huge.replacen('{', r#"{"orderId": "O-HUGE","#, 1);
    let (given_status, given_answer, _) = call(&api, post(&huge_with_id, &[])).await;
    assert_eq!(status, given_status, "{answer} / {given_answer}");
    // The key names one order per customer however the customer id is spaced.
    let spaced = r#"{"customerId": " U1 ", "items": [{"sku": "A", "quantity": 1}]}"#;
    let plain = r#"{"customerId": "U1", "items": [{"sku": "A", "quantity": 1}]}"#;
    let (_, a, _) = call(&api, post(spaced, &[("idempotency-key", "k-9")])).await;
    let (_, b, _) = call(&api, post(plain, &[("idempotency-key", "k-9")])).await;
    assert_eq!(a["orderId"], b["orderId"], "{a} / {b}");
    assert_eq!(a["orderId"], derived_order_id(Some("k-9"), "U1"));
    for body in without_id {
        let with_id = body.replacen('{', r#"{"orderId": "O-GIVEN","#, 1);
        let (status, answer, _) = call(&api, post(body, &[("idempotency-key", "k-1")])).await;
        let (given_status, given_answer, _) = call(&api, post(&with_id, &[])).await;
        assert_eq!(
            given_status,
            StatusCode::BAD_REQUEST,
            "{with_id}: {given_answer}"
        );
        assert_eq!(status, given_status, "{body}: {answer}");
        assert_eq!(answer["errors"], given_answer["errors"], "{body}");
    }
    // An empty object gets its id too (and then the parser names what is missing).
    let (status, answer, _) = call(&api, post("  {  }", &[("idempotency-key", "k-2")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        !error_fields(&answer).contains(&"orderId".to_string()),
        "{answer}"
    );
    // An id given as null is refused, naming it: leaving it out asks for a derived one.
    let (status, answer, _) = call(
        &api,
        post(
            r#"{"orderId": null, "customerId": "U1", "items": [{"sku": "A", "quantity": 1}]}"#,
            &[],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&answer), vec!["orderId".to_string()]);
}

/// Protects (issue 31): conflicts are answered at the door instead of 202 and a dead letter
/// later. An orderId stored with other content → 409 naming it, linking the stored order; the
/// same Idempotency-Key with another body (its derived id stored with other content) → 422
/// naming the header; the same content again is a retry → 202. Nothing refused is published.
#[tokio::test]
async fn a_post_whose_id_is_stored_with_other_content_is_409_and_a_reused_key_is_422() {
    let out = Captured::default();
    let api = api(&out);
    stored(&api, "O-STORED", OrderStatus::Accepted);
    let other = json!({"orderId": "O-STORED", "customerId": "U1", "currency": "USD",
        "items": [{"sku": "C", "quantity": 5}]})
    .to_string();
    let (status, body, _) = call(&api, post(&other, &[])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_fields(&body), vec!["orderId".to_string()]);
    assert_eq!(body["links"]["order"], "/orders/O-STORED");
    // The stored content again: a retry, accepted.
    let same = json!({"orderId": "O-STORED", "customerId": "U1", "currency": "USD",
        "items": [{"sku": "A", "quantity": 2, "unitPrice": "9.95"}, {"sku": "B", "quantity": 1, "unitPrice": "0.10"}]})
    .to_string();
    let (status, body, _) = call(&api, post(&same, &[])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        api.publisher().published().len(),
        1,
        "only the retry is published"
    );

    // A key's first order is stored (as the intake would store it); the key again with another
    // cart is refused, naming the header; with the same cart it is the same order.
    let first = json!({"customerId": "U1", "items": [{"sku": "A", "quantity": 1}]}).to_string();
    let key = [("idempotency-key", "checkout-9")];
    let (status, accepted, _) = call(&api, post(&first, &key)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = accepted["orderId"].as_str().unwrap().to_string();
    let published = api.publisher().published().last().unwrap().0.clone();
    let (order, _) = order_domain::parse_order(&published).unwrap();
    let from = Provenance {
        message_id: "m2".into(),
        correlation_id: "c2".into(),
        sent_at: chrono::Utc::now(),
    };
    api.reader()
        .put(OrderItem::accepted(order, from, chrono::Utc::now()));
    let second = json!({"customerId": "U1", "items": [{"sku": "B", "quantity": 3}]}).to_string();
    let (status, body, _) = call(&api, post(&second, &key)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_fields(&body), vec!["Idempotency-Key".to_string()]);
    assert_eq!(body["links"]["order"], format!("/orders/{id}"));
    let (status, again, _) = call(&api, post(&first, &key)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["orderId"], id.as_str());
    assert_eq!(
        api.publisher().published().len(),
        3,
        "nothing refused is published"
    );
}

/// Protects (issue 31, finding 1): behind the JWT authorizer the caller is the token's customer.
/// An order for another customer is refused naming the field; an order naming none is placed for
/// the token's customer (and its derived id is that customer's); nothing refused is published.
#[tokio::test]
async fn jwt_a_customer_places_its_own_orders_only() {
    let out = Captured::default();
    let api = jwt_api(&out);
    // CANONICAL is U123's order.
    let (status, body, _) = call(&api, with_token(post(CANONICAL, &[]), "U999", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_fields(&body), ["customerId"]);
    let (status, body, _) = call(&api, with_token(post(SEED_001, &[]), "U999", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_fields(&body), ["userId"], "the flat form's own field");
    assert!(api.publisher().published().is_empty());

    let (status, body, _) = call(&api, with_token(post(CANONICAL, &[]), "U123", &[])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let no_customer = json!({"items": [{"sku": "A", "quantity": 1}]}).to_string();
    let key = [("idempotency-key", "cart-1")];
    let (status, body, _) = call(&api, with_token(post(&no_customer, &key), "U777", &[])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["orderId"], derived_order_id(Some("cart-1"), "U777"));
    let published: Value =
        serde_json::from_str(&api.publisher().published().last().unwrap().0).unwrap();
    assert_eq!(published["customerId"], "U777", "filled from the token");
}

/// Protects (issue 31, finding 1): a customer reads its own orders; another customer's answers
/// 404 exactly as an order not stored does; a token with the admin scope reads both.
#[tokio::test]
async fn jwt_get_of_another_customers_order_is_404_and_an_admin_reads_any() {
    let out = Captured::default();
    let api = jwt_api(&out);
    stored(&api, "O1", OrderStatus::Accepted); // U1's
    let get = |id: &str| request(Method::GET, &format!("/orders/{id}"), "", &[]);
    let (status, body, _) = call(&api, with_token(get("O1"), "U1", &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, theirs, _) = call(&api, with_token(get("O1"), "U2", &["orders/customer"])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{theirs}");
    let (_, missing, _) = call(&api, with_token(get("O404"), "U2", &[])).await;
    assert_eq!(
        theirs["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace("O1", "O404"),
        missing["errors"][0]["message"].as_str().unwrap(),
        "the same answer as for an order not stored"
    );
    let (status, body, _) = call(&api, with_token(get("O1"), "ops-7", &["orders/admin"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customerId"], "U1");
}

/// Protects (issue 31): an admin token places an order for the customer it names; a customer's
/// order id already taken by another customer is 409 without a link to that order.
#[tokio::test]
async fn jwt_an_admin_acts_for_any_customer_and_a_taken_id_does_not_link_anothers_order() {
    let out = Captured::default();
    let api = jwt_api(&out);
    let (status, body, _) = call(
        &api,
        with_token(post(CANONICAL, &[]), "ops-7", &["orders/admin"]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    stored(&api, "O-TAKEN", OrderStatus::Accepted); // U1's
    let mine = json!({"orderId": "O-TAKEN", "items": [{"sku": "A", "quantity": 1}]}).to_string();
    let (status, body, _) = call(&api, with_token(post(&mine, &[]), "U2", &[])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.get("links").is_none(), "{body}");
    let (status, body, _) = call(&api, with_token(post(&mine, &[]), "U1", &[])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["links"]["order"], "/orders/O-TAKEN");
}

/// Protects (issue 31): in JWT mode nothing is done for a request that carries no verified token
/// (401) or a token without the customer claim (403); both name the Authorization header.
#[tokio::test]
async fn jwt_a_request_without_a_verified_token_is_401_and_one_without_the_claim_403() {
    let out = Captured::default();
    let api = jwt_api(&out);
    let (status, body, _) = call(&api, post(CANONICAL, &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_fields(&body), ["Authorization"]);
    let (status, _, _) = call(&api, request(Method::GET, "/orders/O1", "", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let api = api_with(
        &out,
        ApiAuth::Jwt {
            customer_claim: "custom:customer".into(),
            admin_scope: "orders/admin".into(),
        },
    );
    let (status, body, _) = call(&api, with_token(post(CANONICAL, &[]), "U123", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_fields(&body), ["Authorization"]);
    assert!(api.publisher().published().is_empty());
}

/// An order stored at `status` (U1's).
fn stored_at(api: &Api, id: &str, status: OrderStatus) {
    stored(api, id, OrderStatus::Accepted);
    let mut item = api.reader().get(id).expect("stored");
    item.status = status;
    api.reader().put(item);
}

fn cancel(id: &str) -> Request {
    request(Method::POST, &format!("/orders/{id}/cancel"), "", &[])
}

/// Protects (issue 31, cancel): an order not reserved yet is CANCELLED at once (200); a reserved,
/// paid or completed one CANCELLING (202: the refund stage settles its stock and money), with who
/// asked and from where on the order, which GET shows; the change is the lifecycle's conditional
/// one (the version moves on).
#[tokio::test]
async fn cancel_is_cancelled_before_the_reservation_and_cancelling_after() {
    let out = Captured::default();
    let api = api(&out);
    stored_at(&api, "C-ACC", OrderStatus::Accepted);
    let (status, body, headers) = call(&api, cancel("C-ACC")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANCELLED");
    assert_eq!(headers["location"], "/orders/C-ACC");
    let (_, got, _) = call(&api, request(Method::GET, "/orders/C-ACC", "", &[])).await;
    assert_eq!(got["status"], "CANCELLED", "{got}");
    assert_eq!(got["cancellation"]["by"], "service");
    assert_eq!(got["cancellation"]["from"], "ACCEPTED");
    assert!(got["steps"]["cancelledAt"].is_string(), "{got}");
    assert_eq!(got["version"], 2);
    for (id, at) in [
        ("C-RES", OrderStatus::Reserved),
        ("C-PAID", OrderStatus::Paid),
        ("C-DONE", OrderStatus::Completed),
    ] {
        stored_at(&api, id, at);
        let (status, body, _) = call(&api, cancel(id)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{id}: {body}");
        assert_eq!(body["status"], "CANCELLING", "{id}");
        let stored = api.reader().get(id).unwrap();
        assert_eq!(stored.status, OrderStatus::Cancelling);
        assert_eq!(stored.cancellation.unwrap().from, at);
        assert!(stored.cancel_requested_at.is_some());
    }
}

/// Protects (issue 31, cancel): an order that ended without a sale, or is cancelled already,
/// answers 409 with its status (nothing written); an unknown id 404, a bad one 400, and the
/// cancel route takes POST only.
#[tokio::test]
async fn cancel_of_an_ended_or_cancelled_order_is_409_with_its_status() {
    let out = Captured::default();
    let api = api(&out);
    for (id, at) in [
        ("E-REJ", OrderStatus::Rejected),
        ("E-PF", OrderStatus::PaymentFailed),
        ("E-FAIL", OrderStatus::Failed),
        ("E-ING", OrderStatus::Cancelling),
        ("E-CAN", OrderStatus::Cancelled),
        ("E-REF", OrderStatus::Refunded),
        ("E-RF", OrderStatus::RefundFailed),
    ] {
        stored_at(&api, id, at);
        let (status, body, _) = call(&api, cancel(id)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{id}: {body}");
        assert_eq!(body["status"], at.as_str(), "{id}");
        assert_eq!(error_fields(&body), ["status"]);
        assert_eq!(
            api.reader().get(id).unwrap().version,
            1,
            "{id}: nothing written"
        );
    }
    let (status, body, _) = call(&api, cancel("NOPE")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = call(&api, cancel("bad%20id")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, headers) =
        call(&api, request(Method::GET, "/orders/E-REJ/cancel", "", &[])).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
}

/// Protects (issue 31, identity and cancel): a customer cancels its own orders only (another's is
/// 404, as for GET, and stays as it was); an admin cancels any, recorded as the admin's.
#[tokio::test]
async fn jwt_a_customer_cancels_its_own_orders_and_an_admin_any() {
    let out = Captured::default();
    let api = jwt_api(&out);
    stored_at(&api, "J-1", OrderStatus::Accepted); // U1's
    stored_at(&api, "J-2", OrderStatus::Reserved); // U1's
    let (status, _, _) = call(&api, with_token(cancel("J-1"), "U2", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.reader().get("J-1").unwrap().status,
        OrderStatus::Accepted
    );
    let (status, body, _) = call(&api, with_token(cancel("J-1"), "U1", &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        api.reader().get("J-1").unwrap().cancellation.unwrap().by,
        "customer"
    );
    let (status, body, _) = call(&api, with_token(cancel("J-2"), "ops-7", &["orders/admin"])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        api.reader().get("J-2").unwrap().cancellation.unwrap().by,
        "admin"
    );
}
