//! A fake payment provider on loopback that speaks the payment stage's HTTP API, so the real
//! HTTP adapter is what runs locally.
//!
//! `POST /charges` with `Authorization: Bearer <key>` and `Idempotency-Key`, body
//! `{orderId, amount, currency, customerId}`, and `GET /charges/{idempotency key}` (200 with the
//! decision, 404 when there is none). Like a real provider it keeps a ledger and honours
//! idempotency keys: a key it has answered (approved or declined) gets the same answer again,
//! never a second charge; an "unavailable" answer (503) records nothing, so the key can be
//! tried again. Rates of declines, unavailable answers and latency are settable; customer ids
//! starting with `decline-` are always declined, as by the simulated provider. Its API key can
//! be rotated ([`FakeProvider::rotate_key`]): from then on the old key is answered 401. It can
//! charge and then answer late ([`ProviderRates::late_prefix`], [`ProviderRates::late`]): the
//! decision is in the ledger before the answer leaves, which comes after the client stopped
//! waiting: the "unknown outcome" a lookup resolves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use order_domain::DECLINED_CUSTOMER_PREFIX;
use rand::Rng;
use serde::Serialize;

use crate::kit::http_server::HttpServer;
use crate::LocalError;

/// How the fake provider behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRates {
    /// Share of new charges declined (0.0-1.0), besides the `decline-` customers.
    pub decline: f64,
    /// Share of calls answered 503 (nothing recorded).
    pub unavailable: f64,
    /// Customer ids with this prefix always get 503: their orders use up every attempt.
    pub unavailable_prefix: Option<String>,
    /// Each answer waits this long.
    pub latency: Duration,
    /// Customer ids with this prefix are charged, then every answer to their charges waits
    /// `late_by`: past the client's timeout, the charge stands and the client never hears.
    pub late_prefix: Option<String>,
    /// Share of new charges decided and then answered `late_by` late (0.0-1.0).
    pub late: f64,
    pub late_by: Duration,
}

impl Default for ProviderRates {
    fn default() -> Self {
        Self {
            decline: 0.0,
            unavailable: 0.0,
            unavailable_prefix: None,
            latency: Duration::from_millis(5),
            late_prefix: None,
            late: 0.0,
            late_by: Duration::from_secs(10),
        }
    }
}

/// One entry of the ledger: what the provider decided for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub idempotency_key: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub approved: bool,
    pub payment_id: Option<String>,
    pub reason: Option<String>,
    /// Calls made with this key (the first decided it; the rest were answered from the ledger).
    pub calls: u32,
    /// Every answer to this key's charges is late (`late_by`).
    #[serde(skip)]
    pub late: bool,
}

#[derive(Default)]
struct State {
    ledger: BTreeMap<String, LedgerEntry>,
    /// Calls answered 503.
    unavailable: u64,
    /// Calls refused for a wrong API key.
    unauthorized: u64,
    /// Answers sent late (after a charge was decided).
    late_answers: u64,
    /// Lookups answered.
    lookups: u64,
}

/// The running fake provider.
pub struct FakeProvider {
    pub url: String,
    api_key: Arc<Mutex<String>>,
    state: Arc<Mutex<State>>,
    server: HttpServer,
}

/// Charge counts for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderStats {
    pub approved: u64,
    pub declined: u64,
    pub unavailable_answers: u64,
    pub repeated_calls: u64,
    pub unauthorized: u64,
    pub late_answers: u64,
    pub lookups: u64,
}

impl FakeProvider {
    pub async fn start(rates: ProviderRates) -> Result<Self, LocalError> {
        let api_key = Arc::new(Mutex::new(new_key()));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = (state.clone(), Arc::new(rates), api_key.clone());
        let server = HttpServer::start(move |request| {
            let (state, rates, key) = shared.clone();
            async move {
                let key = key.lock().map(|k| k.clone()).unwrap_or_default();
                answer(&state, &rates, &key, request).await
            }
        })
        .await
        .map_err(|e| LocalError::Input(format!("could not listen on loopback: {e}")))?;
        Ok(Self {
            url: server.url(),
            api_key,
            state,
            server,
        })
    }

    /// The API key the provider accepts now.
    pub fn api_key(&self) -> String {
        self.api_key.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Replaces the API key, as a provider's key rotation does: calls with the old key are
    /// answered 401 from now on. Returns the new key (for the payment secret).
    pub fn rotate_key(&self) -> String {
        let key = new_key();
        if let Ok(mut k) = self.api_key.lock() {
            *k = key.clone();
        }
        key
    }

    /// Every idempotency key the provider decided, with its decision.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.state
            .lock()
            .map(|s| s.ledger.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn stats(&self) -> ProviderStats {
        let Ok(s) = self.state.lock() else {
            return ProviderStats::default();
        };
        ProviderStats {
            approved: s.ledger.values().filter(|e| e.approved).count() as u64,
            declined: s.ledger.values().filter(|e| !e.approved).count() as u64,
            unavailable_answers: s.unavailable,
            repeated_calls: s.ledger.values().map(|e| u64::from(e.calls - 1)).sum(),
            unauthorized: s.unauthorized,
            late_answers: s.late_answers,
            lookups: s.lookups,
        }
    }

    pub fn stop(&self) {
        self.server.stop();
    }
}

fn new_key() -> String {
    format!("local-{}", uuid::Uuid::new_v4().simple())
}

fn json(status: u16, body: serde_json::Value) -> hyper::Response<Full<Bytes>> {
    crate::kit::http_server::json_response(status, body.to_string())
}

fn decided(entry: &LedgerEntry) -> hyper::Response<Full<Bytes>> {
    if entry.approved {
        json(
            201,
            serde_json::json!({"status": "approved", "paymentId": entry.payment_id}),
        )
    } else {
        json(
            402,
            serde_json::json!({"status": "declined", "reason": entry.reason}),
        )
    }
}

async fn answer(
    state: &Mutex<State>,
    rates: &ProviderRates,
    api_key: &str,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    tokio::time::sleep(rates.latency).await;
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if header("authorization").as_deref() != Some(&format!("Bearer {api_key}")) {
        if let Ok(mut s) = state.lock() {
            s.unauthorized += 1;
        }
        return json(
            401,
            serde_json::json!({"message": "wrong or missing API key"}),
        );
    }
    let path = request.uri().path().to_string();
    if request.method() == hyper::Method::GET {
        if let Some(key) = path.strip_prefix("/charges/").map(percent_decoded) {
            return lookup(state, &key);
        }
    }
    if request.method() != hyper::Method::POST || path != "/charges" {
        return json(
            404,
            serde_json::json!({"message": "POST /charges and GET /charges/{idempotency key} only"}),
        );
    }
    let Some(key) = header("idempotency-key").filter(|k| !k.is_empty()) else {
        return json(
            400,
            serde_json::json!({"message": "Idempotency-Key is required"}),
        );
    };
    let body: serde_json::Value = match request.into_body().collect().await {
        Ok(b) => serde_json::from_slice(&b.to_bytes()).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let (response, late) = charge(state, rates, key, &body);
    if late {
        // Decided and in the ledger; the answer leaves after the client stopped waiting.
        if let Ok(mut s) = state.lock() {
            s.late_answers += 1;
        }
        tokio::time::sleep(rates.late_by).await;
    }
    response
}

/// `GET /charges/{key}`: the ledger's decision, or 404.
fn lookup(state: &Mutex<State>, key: &str) -> hyper::Response<Full<Bytes>> {
    let Ok(mut s) = state.lock() else {
        return json(500, serde_json::json!({"message": "ledger unavailable"}));
    };
    s.lookups += 1;
    match s.ledger.get(key) {
        Some(entry) => {
            let mut answer = decided(entry);
            *answer.status_mut() = hyper::StatusCode::OK;
            answer
        }
        None => json(
            404,
            serde_json::json!({"message": "no charge under this idempotency key"}),
        ),
    }
}

/// A path segment with its percent-escapes decoded.
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /charges` with idempotency key `key`: the answer, and whether it is sent late.
fn charge(
    state: &Mutex<State>,
    rates: &ProviderRates,
    key: String,
    body: &serde_json::Value,
) -> (hyper::Response<Full<Bytes>>, bool) {
    let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
    // Like a real provider: no charge without a currency.
    let (Some(order_id), Some(amount), Some(currency), Some(customer)) = (
        text("orderId"),
        text("amount"),
        text("currency"),
        text("customerId"),
    ) else {
        return (
            json(
                400,
                serde_json::json!({"message": "orderId, amount, currency and customerId are required"}),
            ),
            false,
        );
    };
    let Ok(mut s) = state.lock() else {
        return (
            json(500, serde_json::json!({"message": "ledger unavailable"})),
            false,
        );
    };
    if let Some(entry) = s.ledger.get_mut(&key) {
        entry.calls += 1;
        return (decided(entry), entry.late);
    }
    let mut rng = rand::rng();
    let always_unavailable = rates
        .unavailable_prefix
        .as_deref()
        .is_some_and(|p| customer.starts_with(p));
    if always_unavailable || rng.random_bool(rates.unavailable.clamp(0.0, 1.0)) {
        s.unavailable += 1;
        return (
            json(
                503,
                serde_json::json!({"message": "temporarily unavailable (fake provider)"}),
            ),
            false,
        );
    }
    let declined_reason = if customer.starts_with(DECLINED_CUSTOMER_PREFIX) {
        Some(format!(
            "card declined (fake provider: customer id starts with {DECLINED_CUSTOMER_PREFIX})"
        ))
    } else if rng.random_bool(rates.decline.clamp(0.0, 1.0)) {
        Some("insufficient funds (fake provider)".to_string())
    } else {
        None
    };
    let late = rates
        .late_prefix
        .as_deref()
        .is_some_and(|p| customer.starts_with(p))
        || rng.random_bool(rates.late.clamp(0.0, 1.0));
    let entry = LedgerEntry {
        idempotency_key: key.clone(),
        order_id,
        amount,
        currency,
        approved: declined_reason.is_none(),
        payment_id: declined_reason
            .is_none()
            .then(|| format!("ch_{}", uuid::Uuid::new_v4().simple())),
        reason: declined_reason,
        calls: 1,
        late,
    };
    let response = decided(&entry);
    s.ledger.insert(key, entry);
    (response, late)
}
