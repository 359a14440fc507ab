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
//! waiting: the "unknown outcome" a lookup resolves. It can also charge and then drop the
//! connection without an answer ([`ProviderRates::drop_prefix`], [`ProviderRates::drop`]): the
//! same unknown outcome, reached by a lost connection instead of a timeout.
//!
//! Refunds: `POST /charges/{charge's idempotency key}/refunds` with its own `Idempotency-Key`
//! (`<orderId>:refund`), body `{orderId, amount, currency}`, and
//! `GET /charges/{charge's key}/refunds/{refund's key}`. A refund is decided once per key and
//! recorded ([`FakeProvider::refunds`]): 201 refunded; 404 refused when the charge key has no
//! approved charge; 422 refused for another currency than the charge's, or more than is left to
//! refund of it; a repeat with the same amount gets the first answer again, with another amount
//! (or currency, or charge) 422, recording nothing. An order's refunds are answered as its
//! charge is: late, or dropped. docs/contract.md, "The payment provider's protocol".

mod answers;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::kit::http_server::{HttpServer, ServerOptions};
use crate::LocalError;

use answers::answer;

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
    /// Customer ids with this prefix are charged, then every answer to their charges (and
    /// refunds) is dropped: the connection closed without an answer, the charge standing.
    pub drop_prefix: Option<String>,
    /// Share of new charges decided and then every answer to them dropped (0.0-1.0).
    pub drop: f64,
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
            drop_prefix: None,
            drop: 0.0,
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
    /// Every answer to this key's charges is dropped (the connection closed, no answer).
    #[serde(skip)]
    pub dropped: bool,
}

impl LedgerEntry {
    /// How this charge's answers (and its refunds') are delivered.
    fn delivery(&self) -> Delivery {
        if self.dropped {
            Delivery::Dropped
        } else if self.late {
            Delivery::Late
        } else {
            Delivery::Now
        }
    }
}

/// One refund in the ledger: what the provider decided for a refund's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundEntry {
    pub idempotency_key: String,
    /// The idempotency key of the charge refunded.
    pub charge_key: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub refunded: bool,
    pub refund_id: Option<String>,
    pub reason: Option<String>,
    /// The answer: 201 refunded, 404 no approved charge, 422 not what the charge allows.
    pub status: u16,
    /// Calls made with this key (the first decided it; the rest were answered from the ledger).
    pub calls: u32,
}

/// How an answer leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Now,
    /// After `late_by`: past the client's timeout.
    Late,
    /// Never: the connection is closed without an answer.
    Dropped,
}

#[derive(Default)]
struct State {
    ledger: BTreeMap<String, LedgerEntry>,
    /// Refunds by their idempotency key.
    refunds: BTreeMap<String, RefundEntry>,
    /// Calls answered 503.
    unavailable: u64,
    /// Calls refused for a wrong API key.
    unauthorized: u64,
    /// Answers sent late (after a charge was decided).
    late_answers: u64,
    /// Answers dropped: the call was decided and its connection closed without an answer.
    dropped_answers: u64,
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
    pub dropped_answers: u64,
    pub lookups: u64,
    pub refunded: u64,
    pub refunds_refused: u64,
}

impl FakeProvider {
    pub async fn start(rates: ProviderRates) -> Result<Self, LocalError> {
        let api_key = Arc::new(Mutex::new(new_key()));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = (state.clone(), Arc::new(rates), api_key.clone());
        // A handler's error closes the connection without an answer: the dropped answers.
        let server = HttpServer::start_with(ServerOptions::default(), move |request| {
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

    /// Every charge's idempotency key the provider decided, with its decision.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.state
            .lock()
            .map(|s| s.ledger.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every refund's idempotency key the provider decided, with its decision.
    pub fn refunds(&self) -> Vec<RefundEntry> {
        self.state
            .lock()
            .map(|s| s.refunds.values().cloned().collect())
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
            dropped_answers: s.dropped_answers,
            lookups: s.lookups,
            refunded: s.refunds.values().filter(|r| r.refunded).count() as u64,
            refunds_refused: s.refunds.values().filter(|r| !r.refunded).count() as u64,
        }
    }

    pub fn stop(&self) {
        self.server.stop();
    }
}

fn new_key() -> String {
    format!("local-{}", uuid::Uuid::new_v4().simple())
}
