//! order-api: the HTTP way in, behind API Gateway's HTTP API (payload format 2.0).
//!
//! - `POST /orders`: a body in any accepted form, parsed and validated by the same domain code
//!   as the consumer. Valid → published to the order topic with its `correlationId` attribute
//!   and answered `202` with `{orderId, status: "PENDING", correlationId, links}` and a
//!   `Location`; invalid → `400` with every error naming its field; over 256 KB → `413`; not
//!   JSON → `400`, a non-JSON Content-Type → `415` (a POST without one is read as JSON); a
//!   publish failure → `503` with `Retry-After`. An order without an id gets one: derived from
//!   the `Idempotency-Key` header and the customer when the header is given (a retried POST is
//!   the same order, so the consumer sees a duplicate), else a new one, inserted into the body
//!   as text (the rest byte-exact).
//!   An id already stored with other content: `409` naming the id's field (the client's id) or
//!   `422` naming `Idempotency-Key` (an id derived from a reused key), linking the stored order.
//! - Every route: `Idempotency-Key` and `X-Correlation-Id` are 1 to 128 visible ASCII
//!   characters, else `400` naming the header.
//! - The caller ([`Caller`]): behind a JWT authorizer, the token's customer, who places and reads
//!   its own orders only (another customer's in the body → `403` naming the field; another
//!   customer's order → `404`); an admin-scoped token and IAM callers act for any customer.
//! - `POST /orders/{orderId}/cancel`: by the order's customer, an admin or a service. ACCEPTED →
//!   `200` CANCELLED (nothing reserved or charged yet); RESERVED, PAID or COMPLETED → `202`
//!   CANCELLING (the refund stage releases or restocks its units and refunds a charge that
//!   stands); any other status → `409` with the status; another customer's order → `404`.
//! - `GET /orders/{orderId}`: `200` with the stored order, its status, amount and currency (once
//!   reserved: the catalogue's price), step timestamps and failure; `404` while it is not stored; `400` for an id
//!   that breaks the orderId rule.
//!
//! The order is published in its canonical form, so the consumer reads what the API validated.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use order_domain::{
    check_order_id, customer_id_field, order_id_field, parse_order_all, payload_form, OrderStatus,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{field, Instrument};

mod caller;
mod http;
mod view;

pub use caller::Caller;
pub use http::ApiError;
pub use view::{FailureView, LineView, NotificationFailureView, OrderView, PaymentView};

use http::{answer, bounded_header, error, errors, respond, route, Answer, Route};

use crate::ports::orders::{LifecycleStore, TransitionWrite};
use crate::ports::publish::OrderPublisher;
use crate::runtime::config::ApiConfig;
use crate::runtime::telemetry::{ColdStart, LineWriter, Metrics};

/// API Gateway's payload limit is 10 MB; an order is never near 256 KB, and SNS takes 256 KB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: u32 = 5;
/// Header values the API takes are bounded and printable: they end up in logs and attributes.
/// The Idempotency-Key's bound; the X-Correlation-Id's is the domain's (the same 128).
const IDEMPOTENCY_KEY_MAX: usize = 128;

pub struct OrderApi<P, R> {
    publisher: P,
    reader: R,
    config: ApiConfig,
    telemetry: Arc<dyn LineWriter>,
    cold_start: ColdStart,
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

/// A POST's body with its order id: the id's field in the body's form, and the customer the API
/// derived the id from when it inserted one into `text` (None: the client gave the id).
struct WithId<'t> {
    text: Cow<'t, str>,
    id_field: &'static str,
    derived_from: Option<String>,
}

impl<P: OrderPublisher, R: LifecycleStore> OrderApi<P, R> {
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
        let span = self.cold_start.invocation_span(
            &context,
            &self.config.service,
            self.telemetry.as_ref(),
        );
        self.handle_request(request).instrument(span).await
    }

    /// Answers one request (without the invocation span: tests and the local server's own).
    pub async fn handle_request(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        // The consumer takes the same rule (`is_usable_correlation_id`), so one order keeps one
        // id end to end; a header that breaks it is refused, not replaced.
        let (correlation, bad_correlation) = match bounded_header(
            request.headers(),
            "X-Correlation-Id",
            order_domain::CORRELATION_ID_MAX,
        ) {
            Ok(Some(c)) => (c, None),
            Ok(None) => (uuid::Uuid::new_v4().to_string(), None),
            Err(e) => (uuid::Uuid::new_v4().to_string(), Some(e)),
        };
        let span = tracing::info_span!(
            "request",
            otel.status_code = field::Empty,
            correlation_id = %correlation,
            order_id = field::Empty,
            caller = field::Empty,
            method = %request.method(),
            path = %request.uri().path(),
        );
        let mut metrics = Metrics::default();
        let route = route(request.method(), request.uri().path());
        let (idempotency_key, bad_key) =
            match bounded_header(request.headers(), "Idempotency-Key", IDEMPOTENCY_KEY_MAX) {
                Ok(key) => (key, None),
                Err(e) => (None, Some(e)),
            };
        let answer = async {
            let refused: Vec<ApiError> = bad_correlation.into_iter().chain(bad_key).collect();
            if !refused.is_empty() {
                return errors(StatusCode::BAD_REQUEST, refused);
            }
            let caller = match route {
                Route::Post | Route::Get(_) | Route::Cancel(_) => match Caller::of(&request, &self.config.auth) {
                    Ok(caller) => caller,
                    Err(refused) => {
                        metrics.count("ApiCallersRefused", 1);
                        return errors(refused.status, vec![refused.error]);
                    }
                },
                _ => Caller::Service,
            };
            tracing::Span::current().record("caller", caller.kind());
            match route {
                Route::Post => {
                    self.post(
                        &request,
                        &caller,
                        idempotency_key.as_deref(),
                        &correlation,
                        &mut metrics,
                    )
                    .await
                }
                Route::Get(id) => self.get(&id, &caller, &mut metrics).await,
                Route::Cancel(id) => self.cancel(&id, &caller, &mut metrics).await,
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
                        "no such route: POST /orders, GET /orders/{orderId} and POST /orders/{orderId}/cancel exist",
                    )],
                ),
            }
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        metrics.count("ApiRequests", 1);
        if answer.status.is_server_error() {
            crate::runtime::telemetry::trace::failed(&span);
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

    /// POST /orders by `caller`; `idempotency_key` is the header as `handle_request` checked it.
    async fn post(
        &self,
        request: &Request,
        caller: &Caller,
        idempotency_key: Option<&str>,
        correlation: &str,
        metrics: &mut Metrics,
    ) -> Answer {
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
        let Ok(text) = std::str::from_utf8(body) else {
            return errors(
                StatusCode::BAD_REQUEST,
                vec![error("body", "is not UTF-8 text")],
            );
        };
        let text = &*with_customer(text, caller);
        let mut body = match self.with_order_id(text, idempotency_key, None) {
            Ok(body) => body,
            Err(e) => {
                metrics.count("ApiOrdersInvalid", 1);
                return errors(StatusCode::BAD_REQUEST, vec![e]);
            }
        };
        let mut parsed = parse_order_all(&body.text);
        // The id is derived from the customer as the order holds it (trimmed, NFC), so one
        // customer's key names one order however the customer id was spelled.
        if let (Ok((order, _)), Some(used)) = (&parsed, &body.derived_from) {
            if order.customer_id != *used {
                let customer = order.customer_id.clone();
                if let Ok(again) = self.with_order_id(text, idempotency_key, Some(&customer)) {
                    body = again;
                    parsed = parse_order_all(&body.text);
                }
            }
        }
        let order = match parsed {
            Ok((order, form)) if !caller.acts_for(&order.customer_id) => {
                metrics.count("ApiOrdersForbidden", 1);
                tracing::warn!("order refused: placed for another customer than the token's");
                return errors(
                    StatusCode::FORBIDDEN,
                    vec![error(
                        customer_id_field(form),
                        format!(
                            "is {:?}, but the token is {:?}'s: a customer places its own orders \
                             (leave the field out and the token's customer is used)",
                            order.customer_id,
                            caller.own_id().unwrap_or_default()
                        ),
                    )],
                );
            }
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
        if let Some(conflict) = self.conflict(&order, &body, caller).await {
            metrics.count("ApiOrdersConflict", 1);
            return conflict;
        }
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

    /// The body with an order id put in when it has none: the id's member inserted first in the
    /// object as text, every other byte as the client sent it (its numbers exact, a duplicated
    /// key still refused by the parser). An id given as null is refused: leaving the member out
    /// is how a client asks for a derived id. The id is derived from `customer` when given (the
    /// parsed order's, trimmed and NFC), else from the body's customer field as sent.
    fn with_order_id<'t>(
        &self,
        text: &'t str,
        idempotency_key: Option<&str>,
        customer: Option<&str>,
    ) -> Result<WithId<'t>, ApiError> {
        let as_sent = |id_field| WithId {
            text: Cow::Borrowed(text),
            id_field,
            derived_from: None,
        };
        let Some(form) = payload_form(text) else {
            // Not a JSON object: the parser says what is wrong with it.
            return Ok(as_sent("orderId"));
        };
        let id_field = order_id_field(form);
        // The top-level members, their values unread (any number, any depth, as the parser
        // takes them): only whether the id is there and whose order it is are needed.
        let members: BTreeMap<String, &serde_json::value::RawValue> =
            match serde_json::from_str(text) {
                Ok(m) => m,
                Err(_) => return Ok(as_sent(id_field)),
            };
        match members.get(id_field).map(|v| v.get()) {
            Some("null") => return Err(error(
                id_field,
                "is null: give the order's id, or leave the field out to have one derived from \
                     the Idempotency-Key header",
            )),
            Some(_) => return Ok(as_sent(id_field)),
            None => {}
        }
        let customer = match customer {
            Some(c) => c.to_string(),
            None => members
                .get(customer_id_field(form))
                .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                .unwrap_or_default(),
        };
        let id = derived_order_id(idempotency_key, &customer);
        // The field name is the form's own and the id is hex or a UUID: nothing to escape.
        let Some(text) = with_member(text, id_field, &format!("\"{id}\"")) else {
            return Ok(as_sent(id_field));
        };
        Ok(WithId {
            text: Cow::Owned(text),
            id_field,
            derived_from: Some(customer),
        })
    }

    /// Conflicts at the door: the order's id already stored with other content. Its own
    /// `orderId` → `409` naming that field; an id derived from a reused `Idempotency-Key` →
    /// `422` naming the header; both link the stored order. The same content again is a retry
    /// (accepted; the intake drops the duplicate). A read that fails lets the order through:
    /// the intake still dead-letters a conflict, as it does for one that races this read and for
    /// every conflict published to the topic directly.
    /// The link is left out when the stored order is another customer's (the caller may not read
    /// it; that the id is taken is all the answer says).
    async fn conflict(
        &self,
        order: &order_domain::Order,
        body: &WithId<'_>,
        caller: &Caller,
    ) -> Option<Answer> {
        let stored = match self.reader.read(&order.order_id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the order to check it against a stored one; publishing it (the intake dead-letters a conflict)");
                return None;
            }
        };
        if stored.content_hash == order.content_hash() {
            return None;
        }
        let location = format!("/orders/{}", order.order_id);
        let (status, refused) = if body.derived_from.is_some() {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                error(
                    "Idempotency-Key",
                    format!(
                        "was used before for another order ({}): a new order needs a new key",
                        order.order_id
                    ),
                ),
            )
        } else {
            (
                StatusCode::CONFLICT,
                error(
                    body.id_field,
                    format!(
                        "{} is stored with other content: a new order needs a new id",
                        order.order_id
                    ),
                ),
            )
        };
        tracing::warn!(
            status = status.as_u16(),
            "order refused: its id is stored with other content"
        );
        Some(answer(
            status,
            if caller.acts_for(&stored.customer_id) {
                json!({ "errors": [refused], "links": { "order": location } })
            } else {
                json!({ "errors": [refused] })
            },
        ))
    }

    /// POST /orders/{orderId}/cancel: the cancel is one conditional change of the stored order
    /// (its status and version as read), tried again on a fresh read when the order moved on
    /// meanwhile (a stage's change won the race: the cancel then applies to where it went).
    async fn cancel(&self, order_id: &str, caller: &Caller, metrics: &mut Metrics) -> Answer {
        if let Err(e) = check_order_id(order_id, "orderId") {
            return errors(StatusCode::BAD_REQUEST, vec![e.into()]);
        }
        tracing::Span::current().record("order_id", order_id);
        let location = format!("/orders/{order_id}");
        for _ in 0..CANCEL_TRIES {
            let item = match self.reader.read(order_id).await {
                Ok(Some(item)) if caller.acts_for(&item.customer_id) => item,
                Ok(_) => return not_stored(order_id),
                Err(e) => return unavailable(&e, "read"),
            };
            let Some(change) = order_domain::cancel_from(item.status) else {
                metrics.count("ApiCancelsRefused", 1);
                let status = item.status.as_str();
                return answer(
                    StatusCode::CONFLICT,
                    json!({
                        "errors": [error("status", format!("the order is {status}: {}", match item.status {
                            OrderStatus::Cancelling | OrderStatus::Cancelled | OrderStatus::Refunded => "it is cancelled already",
                            OrderStatus::RefundFailed => "it was cancelled and its refund refused: ask the shop",
                            OrderStatus::Failed => "it could not be processed and holds nothing; it is charged only if the shop redrives it",
                            _ => "it ended without a sale, and nothing is charged or held",
                        }))],
                        "status": status,
                        "links": { "order": location },
                    }),
                );
            };
            let now = order_domain::format_timestamp(chrono::Utc::now());
            let Some(mut write) =
                TransitionWrite::new(order_id, item.status, change.to, item.version, now.clone())
            else {
                break;
            };
            write.cancellation = Some(order_domain::Cancellation {
                requested_at: now,
                by: caller.kind().to_string(),
                from: item.status,
            });
            match self.reader.transition(&write).await {
                Ok(true) => {
                    metrics.count("ApiCancelsAccepted", 1);
                    tracing::info!(
                        from = item.status.as_str(),
                        to = change.to.as_str(),
                        "order cancelled on request"
                    );
                    let status = if change.to == OrderStatus::Cancelled {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    };
                    let mut a = answer(
                        status,
                        json!({
                            "orderId": order_id,
                            "status": change.to.as_str(),
                            "links": { "self": location },
                        }),
                    );
                    a.headers.push((header::LOCATION, location));
                    return a;
                }
                Ok(false) => continue,
                Err(e) => return unavailable(&e, "updated"),
            }
        }
        let mut a = errors(
            StatusCode::SERVICE_UNAVAILABLE,
            vec![error(
                "-",
                "the order kept changing while it was cancelled; retry",
            )],
        );
        a.headers
            .push((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
        a
    }

    /// GET /orders/{orderId}: another customer's order answers as one not stored (its existence
    /// is not the caller's to learn).
    async fn get(&self, order_id: &str, caller: &Caller, metrics: &mut Metrics) -> Answer {
        if let Err(e) = check_order_id(order_id, "orderId") {
            return errors(StatusCode::BAD_REQUEST, vec![e.into()]);
        }
        tracing::Span::current().record("order_id", order_id);
        match self.reader.read(order_id).await {
            Ok(Some(item)) if caller.acts_for(&item.customer_id) => {
                metrics.count("ApiOrdersRead", 1);
                answer(
                    StatusCode::OK,
                    serde_json::to_value(OrderView::of(&item)).unwrap_or(Value::Null),
                )
            }
            Ok(_) => not_stored(order_id),
            Err(e) => unavailable(&e, "read"),
        }
    }
}

/// How often a cancel reads and tries its change again when the order moved on meanwhile.
const CANCEL_TRIES: usize = 3;

/// `404` for an order not stored, or another customer's (the same answer).
fn not_stored(order_id: &str) -> Answer {
    errors(
        StatusCode::NOT_FOUND,
        vec![error(
            "orderId",
            format!(
                "no order {order_id} is stored (yet): an accepted POST is stored within seconds"
            ),
        )],
    )
}

/// `503` with `Retry-After` for a table that failed: the order could not be `done` (read or
/// updated).
fn unavailable(e: &crate::ports::PortError, done: &str) -> Answer {
    tracing::error!(error = %e, "the order could not be {done}: answering 503; check the table and the function's dynamodb:GetItem and dynamodb:UpdateItem permissions");
    let mut a = errors(
        StatusCode::SERVICE_UNAVAILABLE,
        vec![error("-", format!("the order could not be {done}; retry"))],
    );
    a.headers
        .push((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
    a
}

/// `text`, a JSON object, with the member `"name": value` put first (`value` already JSON), every
/// other byte as the client sent it; `None` when it has no object to put it in.
fn with_member(text: &str, name: &str, value: &str) -> Option<String> {
    let open = text.find('{')?;
    let rest = &text[open + 1..];
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Some(format!(
        "{}{{\"{name}\":{value}{separator}{rest}",
        &text[..open]
    ))
}

/// The body with the caller's own customer id put in when it names no customer (a token's
/// caller; a service must name one). Anything else is left to the parser to judge.
fn with_customer<'t>(text: &'t str, caller: &Caller) -> Cow<'t, str> {
    let (Some(own), Some(form)) = (caller.own_id(), payload_form(text)) else {
        return Cow::Borrowed(text);
    };
    let field = customer_id_field(form);
    let named = serde_json::from_str::<BTreeMap<String, &serde_json::value::RawValue>>(text)
        .map(|members| members.contains_key(field));
    match (named, serde_json::to_string(own)) {
        (Ok(false), Ok(value)) => with_member(text, field, &value)
            .map(Cow::Owned)
            .unwrap_or(Cow::Borrowed(text)),
        _ => Cow::Borrowed(text),
    }
}
