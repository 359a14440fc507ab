//! order-api: the HTTP way in, behind API Gateway's HTTP API (payload format 2.0).
//!
//! - `POST /orders`: a body in any accepted form, parsed and validated by the same domain code
//!   as the consumer. Valid → published to the order topic with its `correlationId` attribute
//!   and answered `202` with `{orderId, status: "PENDING", correlationId, links}` and a
//!   `Location`; invalid → `400` with every error naming its field; over 256 KB → `413`; not
//!   JSON → `400`, a non-JSON Content-Type → `415`; a publish failure → `503` with `Retry-After`.
//!   An order without an id gets one: derived from the `Idempotency-Key` header and the customer
//!   when the header is given (a retried POST is the same order, so the consumer sees a
//!   duplicate), else a new one.
//! - `GET /orders/{orderId}`: `200` with the stored order, its status, amount and currency (once
//!   reserved: the catalogue's price), step timestamps and failure; `404` while it is not stored; `400` for an id
//!   that breaks the orderId rule.
//!
//! The order is published in its canonical form, so the consumer reads what the API validated.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use order_domain::{
    check_order_id, customer_id_field, order_id_field, parse_order_all, payload_form, InvalidOrder,
    OrderItem, OrderStatus,
};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{field, Instrument};

use crate::ports::orders::OrderReader;
use crate::ports::publish::OrderPublisher;
use crate::runtime::config::ApiConfig;
use crate::runtime::telemetry::{ColdStart, LineWriter, Metrics};

/// API Gateway's payload limit is 10 MB; an order is never near 256 KB, and SNS takes 256 KB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: u32 = 5;
/// Header values the API takes are bounded and printable: they end up in logs and attributes.
const HEADER_MAX: usize = 128;

pub struct OrderApi<P, R> {
    publisher: P,
    reader: R,
    config: ApiConfig,
    telemetry: Arc<dyn LineWriter>,
    cold_start: ColdStart,
}

/// One error of a 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub field: String,
    pub message: String,
}

impl From<InvalidOrder> for ApiError {
    fn from(e: InvalidOrder) -> Self {
        ApiError {
            field: e.field,
            message: e.problem,
        }
    }
}

fn error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The order as GET answers it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub status: &'static str,
    pub customer_id: String,
    pub lines: Vec<LineView>,
    pub item_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The amount the catalogue priced at the reservation, exact in the currency's minor unit;
    /// absent before (a line's own unitPrice is never summed into it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub created_at: String,
    /// When each step happened (`acceptedAt`, ...).
    pub steps: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureView>,
    /// Why the inventory rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<order_domain::Rejection>,
    /// How its payment ended (PAID, COMPLETED, PAYMENT_FAILED): the result and, for a failed
    /// payment, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
    pub correlation_id: String,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub result: order_domain::PaymentResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    pub reason: String,
    pub dead_lettered_at: String,
}

impl OrderView {
    pub fn of(item: &OrderItem) -> Self {
        // The amount the catalogue priced, once reserved: never a sum of the client's prices.
        let amount = item.amount.clone();
        let mut steps = BTreeMap::new();
        if let Some(at) = &item.accepted_at {
            steps.insert("acceptedAt", at.clone());
        }
        if let Some(f) = &item.failure {
            steps.insert("failedAt", f.dead_lettered_at.clone());
        }
        for (step, at) in [
            ("reservedAt", &item.reserved_at),
            ("rejectedAt", &item.rejected_at),
            ("paidAt", &item.paid_at),
            ("paymentFailedAt", &item.payment_failed_at),
            ("completedAt", &item.completed_at),
        ] {
            if let Some(at) = at {
                steps.insert(step, at.clone());
            }
        }
        OrderView {
            order_id: item.order_id.clone(),
            status: match item.status {
                OrderStatus::Later => "PROCESSING",
                known => known.as_str(),
            },
            customer_id: item.customer_id.clone(),
            lines: item
                .items
                .iter()
                .map(|l| LineView {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.clone(),
                })
                .collect(),
            item_count: item.item_count,
            currency: item.currency.clone(),
            amount,
            created_at: item.created_at.clone(),
            steps,
            failure: item.failure.as_ref().map(|f| FailureView {
                reason: f.reason.clone(),
                dead_lettered_at: f.dead_lettered_at.clone(),
            }),
            rejection: item.rejection.clone(),
            payment: item.payment.as_ref().map(|p| PaymentView {
                result: p.result,
                reason: p.reason.clone(),
                payment_id: p.payment_id.clone(),
            }),
            correlation_id: item.correlation_id.clone(),
            version: item.version,
        }
    }
}

/// A header's value when it is present, printable ASCII and at most [`HEADER_MAX`] long.
fn bounded_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(v) if !v.trim().is_empty() && v.len() <= HEADER_MAX => Ok(Some(v.trim().to_string())),
        _ => Err(error(
            name,
            format!("must be 1 to {HEADER_MAX} printable ASCII characters"),
        )),
    }
}

/// The order id a POST without one gets: from the Idempotency-Key and the customer, so the same
/// retried request names the same order; else a new one.
pub fn derived_order_id(idempotency_key: Option<&str>, customer_id: &str) -> String {
    match idempotency_key {
        Some(key) => {
            let digest = Sha256::digest(format!("{customer_id}\n{key}").as_bytes());
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("K-{hex}")
        }
        None => format!("A-{}", uuid::Uuid::new_v4().simple()),
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
    headers: Vec<(header::HeaderName, String)>,
}

fn answer(status: StatusCode, body: Value) -> Answer {
    Answer {
        status,
        body,
        headers: Vec::new(),
    }
}

fn errors(status: StatusCode, errors: Vec<ApiError>) -> Answer {
    answer(status, json!({ "errors": errors }))
}

impl<P: OrderPublisher, R: OrderReader> OrderApi<P, R> {
    pub fn new(publisher: P, reader: R, config: ApiConfig, telemetry: Arc<dyn LineWriter>) -> Self {
        Self {
            publisher,
            reader,
            config,
            telemetry,
            cold_start: ColdStart::new(),
        }
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// The Lambda handler: every request gets an answer (errors are answers too).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let context = lambda_http::RequestExt::lambda_context_ref(&request)
            .cloned()
            .unwrap_or_default();
        let span = self
            .cold_start
            .invocation_span(&context, &self.config.service);
        self.handle_request(request).instrument(span).await
    }

    /// Answers one request (without the invocation span: tests and the local server's own).
    pub async fn handle_request(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        // The consumer takes the same rule, so one order keeps one id end to end.
        let correlation = match bounded_header(request.headers(), "x-correlation-id") {
            Ok(Some(c)) if order_domain::is_usable_correlation_id(&c) => c,
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let span = tracing::info_span!(
            "request",
            correlation_id = %correlation,
            order_id = field::Empty,
            method = %request.method(),
            path = %request.uri().path(),
        );
        let mut metrics = Metrics::default();
        let route = route(request.method(), request.uri().path());
        let answer = async {
            match route {
                Route::Post => self.post(&request, &correlation, &mut metrics).await,
                Route::Get(id) => self.get(&id, &mut metrics).await,
                Route::WrongMethod(allowed) => {
                    let mut a = errors(
                        StatusCode::METHOD_NOT_ALLOWED,
                        vec![error("method", format!("this path takes {allowed}"))],
                    );
                    a.headers.push((header::ALLOW, allowed.to_string()));
                    a
                }
                Route::Unknown => errors(
                    StatusCode::NOT_FOUND,
                    vec![error(
                        "path",
                        "no such route: POST /orders and GET /orders/{orderId} exist",
                    )],
                ),
            }
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        metrics.count("ApiRequests", 1);
        if answer.status.is_server_error() {
            metrics.count("ApiErrors", 1);
        }
        metrics.flush(&self.config.service, self.telemetry.as_ref());
        tracing::info!(
            status = answer.status.as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request answered"
        );
        respond(answer, &correlation)
    }

    async fn post(&self, request: &Request, correlation: &str, metrics: &mut Metrics) -> Answer {
        let headers = request.headers();
        if let Some(kind) = headers.get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
            if !(kind.starts_with("application/json") || kind.contains("+json")) {
                return errors(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    vec![error(
                        "Content-Type",
                        format!("must be application/json (found {kind:?})"),
                    )],
                );
            }
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return errors(
                StatusCode::PAYLOAD_TOO_LARGE,
                vec![error(
                    "body",
                    format!(
                        "is {} bytes; an order may be at most {MAX_BODY_BYTES}",
                        body.len()
                    ),
                )],
            );
        }
        let idempotency_key = match bounded_header(headers, "idempotency-key") {
            Ok(key) => key,
            Err(e) => return errors(StatusCode::BAD_REQUEST, vec![e]),
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return errors(
                StatusCode::BAD_REQUEST,
                vec![error("body", "is not UTF-8 text")],
            );
        };
        let text = match self.with_order_id(text, idempotency_key.as_deref()) {
            Ok(text) => text,
            Err(e) => {
                metrics.count("ApiOrdersInvalid", 1);
                return errors(StatusCode::BAD_REQUEST, vec![e]);
            }
        };
        let order = match parse_order_all(&text) {
            Ok((order, _)) => order,
            Err(invalid) => {
                metrics.count("ApiOrdersInvalid", 1);
                tracing::warn!(
                    errors = invalid.len(),
                    first = %invalid.first().map(ToString::to_string).unwrap_or_default(),
                    "order refused: invalid"
                );
                return errors(
                    StatusCode::BAD_REQUEST,
                    invalid.into_iter().take(50).map(ApiError::from).collect(),
                );
            }
        };
        tracing::Span::current().record("order_id", order.order_id.as_str());
        let canonical = match serde_json::to_string(&order) {
            Ok(c) => c,
            Err(e) => {
                return errors(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![error("body", format!("could not be serialised: {e}"))],
                )
            }
        };
        match self.publisher.publish_order(&canonical, correlation).await {
            Ok(message_id) => {
                metrics.count("ApiOrdersAccepted", 1);
                tracing::debug!(sns_message_id = %message_id, "order published");
                let location = format!("/orders/{}", order.order_id);
                let mut a = answer(
                    StatusCode::ACCEPTED,
                    json!({
                        "orderId": order.order_id,
                        "status": "PENDING",
                        "correlationId": correlation,
                        "links": { "self": location },
                    }),
                );
                a.headers.push((header::LOCATION, location));
                a
            }
            Err(e) => {
                metrics.count("ApiPublishFailed", 1);
                tracing::error!(error = %e, "could not publish the order: answering 503; check the order topic, the function's sns:Publish permission and SNS's health");
                let mut a = errors(
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![error(
                        "-",
                        "the order could not be queued; nothing was stored: retry with the same Idempotency-Key",
                    )],
                );
                a.headers
                    .push((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
                a
            }
        }
    }

    /// The body with an order id put in when it has none.
    fn with_order_id(&self, text: &str, idempotency_key: Option<&str>) -> Result<String, ApiError> {
        let Some(form) = payload_form(text) else {
            // Not a JSON object: the parser says what is wrong with it.
            return Ok(text.to_string());
        };
        let mut value: serde_json::Map<String, Value> = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return Ok(text.to_string()),
        };
        let id_field = order_id_field(form);
        if value.get(id_field).is_some_and(|v| !v.is_null()) {
            return Ok(text.to_string());
        }
        let customer = value
            .get(customer_id_field(form))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        value.insert(
            id_field.to_string(),
            Value::from(derived_order_id(idempotency_key, &customer)),
        );
        serde_json::to_string(&value).map_err(|e| error("body", e.to_string()))
    }

    async fn get(&self, order_id: &str, metrics: &mut Metrics) -> Answer {
        if let Err(e) = check_order_id(order_id, "orderId") {
            return errors(StatusCode::BAD_REQUEST, vec![e.into()]);
        }
        tracing::Span::current().record("order_id", order_id);
        match self.reader.read(order_id).await {
            Ok(Some(item)) => {
                metrics.count("ApiOrdersRead", 1);
                answer(
                    StatusCode::OK,
                    serde_json::to_value(OrderView::of(&item)).unwrap_or(Value::Null),
                )
            }
            Ok(None) => errors(
                StatusCode::NOT_FOUND,
                vec![error(
                    "orderId",
                    format!("no order {order_id} is stored (yet): an accepted POST is stored within seconds"),
                )],
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not read the order: answering 503; check the table and the function's dynamodb:GetItem permission");
                let mut a = errors(
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![error("-", "the order could not be read; retry")],
                );
                a.headers
                    .push((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
                a
            }
        }
    }
}

enum Route {
    Post,
    Get(String),
    WrongMethod(&'static str),
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let path = path.trim_end_matches('/');
    match (path, path.strip_prefix("/orders/")) {
        ("/orders", _) if method == Method::POST => Route::Post,
        ("/orders", _) => Route::WrongMethod("POST"),
        (_, Some(id)) if !id.contains('/') && method == Method::GET => {
            Route::Get(percent_decode(id))
        }
        (_, Some(id)) if !id.contains('/') => Route::WrongMethod("GET"),
        _ => Route::Unknown,
    }
}

/// Path segments arrive percent-encoded; an invalid escape stays as it is (and fails the rule).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(answer: Answer, correlation: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(answer.body.to_string()));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(correlation) {
        headers.insert("x-correlation-id", v);
    }
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}
