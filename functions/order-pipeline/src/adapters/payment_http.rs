//! A payment provider's HTTP API ([`HttpGateway`]), its API key read from Secrets Manager and
//! kept for [`KEY_TTL`], read again at once when the provider refuses it.

use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::adapters::aws::classify;
use crate::ports::payment::{
    Charge, ChargeRequest, Lookup, PaymentGateway, Refund, RefundLookup, RefundRequest,
};
use crate::ports::PortError;
use crate::runtime::telemetry::trace;

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Where the HTTP adapter finds its API key.
pub enum ApiKey {
    /// Read from Secrets Manager (a plain string, or JSON with `apiKey`), kept for [`KEY_TTL`].
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    /// Given (tests).
    Fixed(String),
}

/// How long a key read from Secrets Manager is used before it is read again: after a rotation
/// every warm container sends the new key within this time, and at once where the provider
/// refuses the old one (401 or 403: the key is read again and the call made once more before the
/// attempt counts). docs/operations.md, "Rotating the payment API key".
pub const KEY_TTL: Duration = Duration::from_secs(300);

/// A key as read, and when.
struct CachedKey {
    key: String,
    read_at: Instant,
}

/// A payment provider's HTTP API: `POST {url}/charges` with `Idempotency-Key` and
/// `Authorization: Bearer <api key>`, body `{orderId, amount, currency, customerId}`, and
/// `GET {url}/charges/{idempotency key}` to look a charge up ([`read_lookup`]).
/// 2xx `{"status":"approved","paymentId":..}` → approved; 2xx `{"status":"declined","reason":..}`
/// or 402 → declined; 401 and 403 → the key read again and the call repeated once with it,
/// else unavailable; 429, 5xx, 409 (the key is in use), other 4xx, timeouts and connection
/// failures → unavailable.
/// Refunds: `POST {url}/charges/{charge's idempotency key}/refunds` with `Idempotency-Key:
/// <orderId>:refund`, body `{orderId, amount, currency}` ([`read_refund`]), looked up with
/// `GET {url}/charges/{charge's key}/refunds/{refund's key}` ([`read_refund_lookup`]).
/// docs/contract.md, "The payment provider's protocol".
pub struct HttpGateway {
    url: String,
    api_key: ApiKey,
    key: tokio::sync::Mutex<Option<CachedKey>>,
    key_ttl: Duration,
    timeout: Duration,
    client: HttpClient,
}

impl HttpGateway {
    pub fn new(url: &str, api_key: ApiKey, timeout: Duration) -> Result<Self, PortError> {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| PortError::Fatal(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            api_key,
            key: tokio::sync::Mutex::new(None),
            key_ttl: KEY_TTL,
            timeout,
            client,
        })
    }

    /// Keeps a key read from Secrets Manager for `ttl` instead of [`KEY_TTL`].
    pub fn with_key_ttl(mut self, ttl: Duration) -> Self {
        self.key_ttl = ttl;
        self
    }

    /// The key to send: the one kept while it is younger than the TTL and is not `refused`,
    /// else read again (once for all the calls waiting on it: a call whose refused key was
    /// already replaced takes the replacement).
    async fn api_key(&self, refused: Option<&str>) -> Result<String, String> {
        let mut kept = self.key.lock().await;
        if let Some(cached) = kept.as_ref() {
            let replaced = refused.is_some_and(|r| r != cached.key);
            let usable = refused.is_none() && cached.read_at.elapsed() < self.key_ttl;
            if replaced || usable {
                return Ok(cached.key.clone());
            }
        }
        let key = self.read_key().await?;
        *kept = Some(CachedKey {
            key: key.clone(),
            read_at: Instant::now(),
        });
        Ok(key)
    }

    async fn read_key(&self) -> Result<String, String> {
        match &self.api_key {
            ApiKey::Fixed(k) => Ok(k.clone()),
            ApiKey::Secret { client, secret_id } => {
                let out = client
                    .get_secret_value()
                    .secret_id(secret_id)
                    .send()
                    .instrument(trace::aws_call("SecretsManager", "GetSecretValue"))
                    .await
                    .map_err(|e| {
                        format!(
                            "reading the payment API key from Secrets Manager failed ({}): check the secret's ARN (paymentSecretArn) and the role's secretsmanager:GetSecretValue",
                            classify(&e)
                        )
                    })?;
                let raw = out.secret_string.unwrap_or_default();
                let key = match serde_json::from_str::<serde_json::Value>(&raw) {
                    Ok(serde_json::Value::Object(map)) => map
                        .get("apiKey")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .ok_or("the payment secret is JSON without an apiKey string")?,
                    _ => raw,
                };
                if key.trim().is_empty() {
                    return Err("the payment secret is empty".to_string());
                }
                Ok(key)
            }
        }
    }

    /// The provider's answer to the request `build` makes with an API key, sent with the
    /// current key; a key the provider refuses (401, 403) is read again and, when it changed,
    /// the call made once more with it.
    async fn exchange(
        &self,
        order_id: &str,
        build: impl Fn(&str) -> Result<hyper::Request<Body>, String>,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let key = self.api_key(None).await.map_err(Failure::NotSent)?;
        let answer = self.send(build(&key).map_err(Failure::NotSent)?).await?;
        if !matches!(answer.0, 401 | 403) {
            return Ok(answer);
        }
        let fresh = self.api_key(Some(&key)).await.map_err(Failure::NotSent)?;
        if fresh == key {
            return Err(Failure::NotSent(refused_key(answer.0, false)));
        }
        tracing::info!(
            order_id,
            status = answer.0,
            "the provider refused the API key: read it again from the secret, calling once more"
        );
        let again = self.send(build(&fresh).map_err(Failure::NotSent)?).await?;
        if matches!(again.0, 401 | 403) {
            return Err(Failure::NotSent(refused_key(again.0, true)));
        }
        Ok(again)
    }

    /// `POST /charges` for `request`, authorized with `key`.
    fn charge_request(
        request: &ChargeRequest,
        url: &str,
        key: &str,
    ) -> Result<hyper::Request<Body>, String> {
        let body = serde_json::json!({
            "orderId": request.order_id,
            "amount": request.amount,
            "currency": request.currency,
            "customerId": request.customer_id,
        });
        post(
            format!("{url}/charges"),
            &request.idempotency_key,
            key,
            &body,
        )
    }

    /// `GET /charges/{idempotency key}`, authorized with `key`.
    fn lookup_request(
        request: &ChargeRequest,
        url: &str,
        key: &str,
    ) -> Result<hyper::Request<Body>, String> {
        get(
            format!("{url}/charges/{}", path_segment(&request.idempotency_key)),
            key,
        )
    }

    /// `POST /charges/{charge's key}/refunds` for `request`, authorized with `key`.
    fn refund_request(
        request: &RefundRequest,
        url: &str,
        key: &str,
    ) -> Result<hyper::Request<Body>, String> {
        let body = serde_json::json!({
            "orderId": request.charge.order_id,
            "amount": request.amount,
            "currency": request.currency,
        });
        post(
            format!(
                "{url}/charges/{}/refunds",
                path_segment(&request.charge.idempotency_key)
            ),
            &request.idempotency_key,
            key,
            &body,
        )
    }

    /// `GET /charges/{charge's key}/refunds/{refund's key}`, authorized with `key`.
    fn refund_lookup_request(
        request: &RefundRequest,
        url: &str,
        key: &str,
    ) -> Result<hyper::Request<Body>, String> {
        get(
            format!(
                "{url}/charges/{}/refunds/{}",
                path_segment(&request.charge.idempotency_key),
                path_segment(&request.idempotency_key)
            ),
            key,
        )
    }

    /// One request and its whole answer, within the timeout. A failure says whether the request
    /// may have reached the provider: only a failed connection is known not to have.
    async fn send(&self, http_request: hyper::Request<Body>) -> Result<(u16, Vec<u8>), Failure> {
        use http_body_util::BodyExt;
        let span = trace::provider_call(http_request.method().as_str(), http_request.uri().path());
        let exchange = async {
            let response = self.client.request(http_request).await.map_err(|e| {
                let reason = format!("request failed: {e}");
                if e.is_connect() {
                    Failure::NotSent(reason)
                } else {
                    Failure::Unknown(reason)
                }
            })?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::Unknown(format!("reading the answer failed: {e}")))?
                .to_bytes();
            Ok::<_, Failure>((status, bytes.to_vec()))
        };
        tokio::time::timeout(self.timeout, exchange.instrument(span))
            .await
            .map_err(|_| {
                Failure::Unknown(format!("no answer within {} ms", self.timeout.as_millis()))
            })?
    }
}

type Body = http_body_util::Full<bytes::Bytes>;

/// Why a call has no answer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The provider did not act on it: no connection, no key, the key refused.
    NotSent(String),
    /// It may have reached the provider: no answer in time, the connection lost after sending.
    Unknown(String),
}

impl Failure {
    fn reason(self) -> String {
        match self {
            Failure::NotSent(r) | Failure::Unknown(r) => r,
        }
    }
}

/// `POST url` with the JSON `body` under the idempotency key `idempotency_key`, authorized with
/// `key`.
fn post(
    url: String,
    idempotency_key: &str,
    key: &str,
    body: &serde_json::Value,
) -> Result<hyper::Request<Body>, String> {
    hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", idempotency_key)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::new(bytes::Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())
}

/// `GET url`, authorized with `key`.
fn get(url: String, key: &str) -> Result<hyper::Request<Body>, String> {
    hyper::Request::get(url)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())
}

/// `text` as one URL path segment: unreserved characters as they are, the rest percent-encoded.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Why a call failed when the provider refused the key (`status` 401 or 403), read again
/// (`reread`) or not.
fn refused_key(status: u16, reread: bool) -> String {
    let read = if reread {
        "and refused the key read again from the secret"
    } else {
        "and the secret still holds that key"
    };
    format!(
        "the provider answered {status} (API key refused) {read}: put the provider's current key in the payment secret (paymentSecretArn); the order is retried"
    )
}

/// An answer's status and JSON body (JSON null when the body is not JSON), read by every
/// `read_*` below.
struct Answer {
    status: u16,
    json: serde_json::Value,
}

impl Answer {
    fn new(status: u16, body: &[u8]) -> Self {
        Self {
            status,
            json: serde_json::from_slice(body).unwrap_or_default(),
        }
    }

    /// A string field of the body.
    fn text(&self, key: &str) -> Option<String> {
        self.json
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// A non-empty string field of the body.
    fn id(&self, key: &str) -> Option<String> {
        self.text(key).filter(|id| !id.is_empty())
    }

    /// The body's `reason`, else `fallback`.
    fn reason_or(&self, fallback: &str) -> String {
        self.text("reason").unwrap_or_else(|| fallback.to_string())
    }

    /// "the provider answered {status}: {reason or message}", for answers that settle nothing.
    fn describe(&self) -> String {
        format!(
            "the provider answered {}{}",
            self.status,
            self.text("reason")
                .or_else(|| self.text("message"))
                .map(|r| format!(": {}", r.chars().take(200).collect::<String>()))
                .unwrap_or_default()
        )
    }

    /// "the provider answered {status} with status {body's status}", for a 2xx nobody can read.
    fn unreadable(&self) -> String {
        format!(
            "the provider answered {} with status {:?}",
            self.status,
            self.text("status")
        )
    }
}

/// What an HTTP answer to a charge means (status, body).
pub fn read_answer(status: u16, body: &[u8]) -> Charge {
    let answer = Answer::new(status, body);
    match status {
        200..=299 => match answer.text("status").as_deref() {
            Some("approved") => match answer.id("paymentId") {
                Some(payment_id) => Charge::Approved { payment_id },
                None => Charge::Unknown {
                    reason: "the provider approved without a paymentId".into(),
                },
            },
            Some("declined") => Charge::Declined {
                reason: answer.reason_or("declined"),
            },
            _ => Charge::Unknown {
                reason: answer.unreadable(),
            },
        },
        402 => Charge::Declined {
            reason: answer.reason_or("declined (402)"),
        },
        400..=499 => Charge::NotSent {
            reason: answer.describe(),
        },
        _ => Charge::Unknown {
            reason: answer.describe(),
        },
    }
}

/// What an HTTP answer to a refund means (status, body):
/// 2xx `{"status":"refunded","refundId":..}` → refunded; 2xx `{"status":"refused","reason":..}`,
/// 402, 404 (no approved charge under the key) or 422 (an amount or currency that does not
/// match) → refused, final; 401/403 (already read again by the caller), 409, 429 and any other
/// 4xx → not sent (the provider did not act: safe to try again); 5xx, and a 2xx that cannot be
/// read → unknown (the refund may stand).
pub fn read_refund(status: u16, body: &[u8]) -> Refund {
    let answer = Answer::new(status, body);
    match status {
        200..=299 => match answer.text("status").as_deref() {
            Some("refunded") => match answer.id("refundId") {
                Some(refund_id) => Refund::Refunded { refund_id },
                None => Refund::Unknown {
                    reason: "the provider refunded without a refundId".into(),
                },
            },
            Some("refused") => Refund::Refused {
                reason: answer.reason_or("refused"),
            },
            _ => Refund::Unknown {
                reason: answer.unreadable(),
            },
        },
        402 | 404 | 422 => Refund::Refused {
            reason: answer.describe(),
        },
        400..=499 => Refund::NotSent {
            reason: answer.describe(),
        },
        _ => Refund::Unknown {
            reason: answer.describe(),
        },
    }
}

/// What an answer to `GET /charges/{key}/refunds/{refund key}` means (status, body): 2xx with
/// a refund that stands → refunded; 2xx with a refused one, or 404 → no refund; anything else →
/// unknown.
pub fn read_refund_lookup(status: u16, body: &[u8]) -> RefundLookup {
    match (status, read_refund(status, body)) {
        (200..=299, Refund::Refunded { refund_id }) => RefundLookup::Refunded { refund_id },
        (200..=299, Refund::Refused { reason }) => RefundLookup::NoRefund { reason },
        (404, _) => RefundLookup::NoRefund {
            reason: "the provider has no refund under the idempotency key (404)".into(),
        },
        (
            _,
            Refund::Refused { reason } | Refund::NotSent { reason } | Refund::Unknown { reason },
        ) => RefundLookup::Unknown { reason },
        (_, Refund::Refunded { .. }) => RefundLookup::Unknown {
            reason: format!("the provider answered the refund lookup with {status}"),
        },
    }
}

impl PaymentGateway for HttpGateway {
    fn provider(&self) -> &'static str {
        "http"
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        let answer = self
            .exchange(&request.order_id, |key| {
                Self::charge_request(request, &self.url, key)
            })
            .await;
        match answer {
            Ok((status, body)) => read_answer(status, &body),
            Err(Failure::NotSent(reason)) => Charge::NotSent { reason },
            Err(Failure::Unknown(reason)) => Charge::Unknown { reason },
        }
    }

    async fn lookup(&self, request: &ChargeRequest) -> Lookup {
        let answer = self
            .exchange(&request.order_id, |key| {
                Self::lookup_request(request, &self.url, key)
            })
            .await;
        match answer {
            Ok((status, body)) => read_lookup(status, &body),
            Err(failure) => Lookup::Unknown {
                reason: failure.reason(),
            },
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Refund {
        let order_id = request.charge.order_id.as_str();
        let answer = self
            .exchange(order_id, |key| {
                Self::refund_request(request, &self.url, key)
            })
            .await;
        let refund = match answer {
            Ok((status, body)) => read_refund(status, &body),
            Err(Failure::NotSent(reason)) => Refund::NotSent { reason },
            Err(Failure::Unknown(reason)) => Refund::Unknown { reason },
        };
        match &refund {
            Refund::Refunded { refund_id } => tracing::info!(
                order_id,
                refund_id,
                amount = request.amount,
                currency = request.currency,
                attempt = request.attempt,
                "refunded"
            ),
            Refund::Refused { reason } => {
                tracing::warn!(
                    order_id,
                    reason,
                    attempt = request.attempt,
                    "refund refused"
                )
            }
            Refund::NotSent { reason } => tracing::warn!(
                order_id,
                reason,
                attempt = request.attempt,
                "refund not sent: safe to try again"
            ),
            Refund::Unknown { reason } => tracing::warn!(
                order_id,
                reason,
                attempt = request.attempt,
                "refund outcome unknown: look it up before anything else"
            ),
        }
        refund
    }

    async fn lookup_refund(&self, request: &RefundRequest) -> RefundLookup {
        let answer = self
            .exchange(&request.charge.order_id, |key| {
                Self::refund_lookup_request(request, &self.url, key)
            })
            .await;
        match answer {
            Ok((status, body)) => read_refund_lookup(status, &body),
            Err(failure) => RefundLookup::Unknown {
                reason: failure.reason(),
            },
        }
    }
}

/// What an answer to `GET /charges/{key}` means (status, body): 200 with an approved charge →
/// charged; 200 with a declined one, or 404 → no charge; anything else → unknown.
pub fn read_lookup(status: u16, body: &[u8]) -> Lookup {
    match (status, read_answer(status, body)) {
        (200..=299, Charge::Approved { payment_id }) => Lookup::Charged { payment_id },
        (200..=299, Charge::Declined { reason }) => Lookup::NoCharge { reason },
        (404, _) => Lookup::NoCharge {
            reason: "the provider has no charge under the idempotency key (404)".into(),
        },
        (
            _,
            Charge::NotSent { reason } | Charge::Unknown { reason } | Charge::Declined { reason },
        ) => Lookup::Unknown { reason },
        (_, Charge::Approved { .. }) => Lookup::Unknown {
            reason: format!("the provider answered the lookup with {status}"),
        },
    }
}
