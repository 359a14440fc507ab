//! How the fake provider answers each request: authorisation, the routes, charges, refunds and
//! lookups, and when an answer leaves (now, late, or dropped).

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use order_domain::DECLINED_CUSTOMER_PREFIX;
use rand::Rng;
use rust_decimal::Decimal;

use super::{Delivery, LedgerEntry, ProviderRates, RefundEntry, State};

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

pub(super) async fn answer(
    state: &Mutex<State>,
    rates: &ProviderRates,
    api_key: &str,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
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
        return Ok(json(
            401,
            serde_json::json!({"message": "wrong or missing API key"}),
        ));
    }
    let path: Vec<String> = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decoded)
        .collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match (request.method().clone(), path.as_slice()) {
        (hyper::Method::GET, ["charges", key]) => return Ok(lookup(state, key)),
        (hyper::Method::GET, ["charges", charge, "refunds", key]) => {
            return Ok(lookup_refund(state, charge, key))
        }
        (hyper::Method::POST, ["charges"] | ["charges", _, "refunds"]) => {}
        _ => {
            return Ok(json(
                404,
                serde_json::json!({"message": "POST /charges, GET /charges/{key}, POST /charges/{key}/refunds and GET /charges/{key}/refunds/{refund key} only"}),
            ))
        }
    }
    let charge_key = path.get(1).map(|k| k.to_string());
    let Some(key) = header("idempotency-key").filter(|k| !k.is_empty()) else {
        return Ok(json(
            400,
            serde_json::json!({"message": "Idempotency-Key is required"}),
        ));
    };
    let body: serde_json::Value = match request.into_body().collect().await {
        Ok(b) => serde_json::from_slice(&b.to_bytes()).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let (response, delivery) = match charge_key {
        None => charge(state, rates, key, &body),
        Some(charge_key) => refund(state, &charge_key, key, &body),
    };
    match delivery {
        Delivery::Now => Ok(response),
        Delivery::Late => {
            // Decided and in the ledger; the answer leaves after the client stopped waiting.
            if let Ok(mut s) = state.lock() {
                s.late_answers += 1;
            }
            tokio::time::sleep(rates.late_by).await;
            Ok(response)
        }
        Delivery::Dropped => {
            // Decided and in the ledger; the connection closes without an answer.
            if let Ok(mut s) = state.lock() {
                s.dropped_answers += 1;
            }
            Err(std::io::Error::other(
                "the answer was dropped (fake provider)",
            ))
        }
    }
}

/// `GET /charges/{charge}/refunds/{key}`: the refund's decision (200), or 404.
fn lookup_refund(state: &Mutex<State>, charge: &str, key: &str) -> hyper::Response<Full<Bytes>> {
    let Ok(mut s) = state.lock() else {
        return json(500, serde_json::json!({"message": "ledger unavailable"}));
    };
    s.lookups += 1;
    match s.refunds.get(key).filter(|r| r.charge_key == charge) {
        Some(entry) => {
            let mut answer = refund_decided(entry);
            *answer.status_mut() = hyper::StatusCode::OK;
            answer
        }
        None => json(
            404,
            serde_json::json!({"message": "no refund of this charge under this idempotency key"}),
        ),
    }
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

/// `POST /charges` with idempotency key `key`: the answer, and how it is delivered.
fn charge(
    state: &Mutex<State>,
    rates: &ProviderRates,
    key: String,
    body: &serde_json::Value,
) -> (hyper::Response<Full<Bytes>>, Delivery) {
    let text = |k: &str| field(body, k);
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
            Delivery::Now,
        );
    };
    let Ok(mut s) = state.lock() else {
        return (
            json(500, serde_json::json!({"message": "ledger unavailable"})),
            Delivery::Now,
        );
    };
    if let Some(entry) = s.ledger.get_mut(&key) {
        entry.calls += 1;
        return (decided(entry), entry.delivery());
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
            Delivery::Now,
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
    let prefixed =
        |prefix: &Option<String>| prefix.as_deref().is_some_and(|p| customer.starts_with(p));
    let dropped = prefixed(&rates.drop_prefix) || rng.random_bool(rates.drop.clamp(0.0, 1.0));
    let late =
        !dropped && (prefixed(&rates.late_prefix) || rng.random_bool(rates.late.clamp(0.0, 1.0)));
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
        dropped,
    };
    let response = decided(&entry);
    let delivery = entry.delivery();
    s.ledger.insert(key, entry);
    (response, delivery)
}

/// A non-empty string field of a request's body (an empty one is a missing one).
fn field(body: &serde_json::Value, key: &str) -> Option<String> {
    body.get(key)
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn refund_decided(entry: &RefundEntry) -> hyper::Response<Full<Bytes>> {
    if entry.refunded {
        json(
            201,
            serde_json::json!({"status": "refunded", "refundId": entry.refund_id,
                "amount": entry.amount, "currency": entry.currency}),
        )
    } else {
        json(
            entry.status,
            serde_json::json!({"status": "refused", "reason": entry.reason}),
        )
    }
}

/// `POST /charges/{charge_key}/refunds` with idempotency key `key`: the answer, and how it is
/// delivered (as the charge's answers are).
fn refund(
    state: &Mutex<State>,
    charge_key: &str,
    key: String,
    body: &serde_json::Value,
) -> (hyper::Response<Full<Bytes>>, Delivery) {
    let text = |k: &str| field(body, k);
    // Like a charge: no refund without an amount and a currency.
    let (Some(order_id), Some(amount), Some(currency)) =
        (text("orderId"), text("amount"), text("currency"))
    else {
        return (
            json(
                400,
                serde_json::json!({"message": "orderId, amount and currency are required"}),
            ),
            Delivery::Now,
        );
    };
    let Ok(asked) = amount.parse::<Decimal>() else {
        return (
            json(
                400,
                serde_json::json!({"message": format!("amount {amount:?} is not a decimal")}),
            ),
            Delivery::Now,
        );
    };
    let Ok(mut s) = state.lock() else {
        return (
            json(500, serde_json::json!({"message": "ledger unavailable"})),
            Delivery::Now,
        );
    };
    let charge = s.ledger.get(charge_key).cloned();
    let delivery = charge.as_ref().map_or(Delivery::Now, LedgerEntry::delivery);
    if let Some(entry) = s.refunds.get_mut(&key) {
        let same = entry.amount.parse::<Decimal>().ok() == Some(asked)
            && entry.currency == currency
            && entry.charge_key == charge_key;
        if !same {
            let reason = format!(
                "the idempotency key {key} was used for a refund of {} {} of {}",
                entry.amount, entry.currency, entry.charge_key
            );
            return (
                json(
                    422,
                    serde_json::json!({"status": "refused", "reason": reason}),
                ),
                Delivery::Now,
            );
        }
        entry.calls += 1;
        return (refund_decided(entry), delivery);
    }
    let refunded_before: Decimal = s
        .refunds
        .values()
        .filter(|r| r.refunded && r.charge_key == charge_key)
        .filter_map(|r| r.amount.parse::<Decimal>().ok())
        .sum();
    let refused = match &charge {
        Some(c) if c.approved => {
            let charged = c.amount.parse::<Decimal>().unwrap_or_default();
            if c.currency != currency {
                Some((
                    422,
                    format!("the charge is in {}, not {currency}", c.currency),
                ))
            } else if asked <= Decimal::ZERO || asked + refunded_before > charged {
                Some((
                    422,
                    format!(
                        "{asked} {currency} is not refundable: {charged} charged, {refunded_before} refunded"
                    ),
                ))
            } else {
                None
            }
        }
        _ => Some((
            404,
            format!("nothing to refund: no approved charge under {charge_key}"),
        )),
    };
    let entry = RefundEntry {
        idempotency_key: key.clone(),
        charge_key: charge_key.to_string(),
        order_id,
        amount,
        currency,
        refunded: refused.is_none(),
        refund_id: refused
            .is_none()
            .then(|| format!("re_{}", uuid::Uuid::new_v4().simple())),
        status: refused.as_ref().map_or(201, |(status, _)| *status),
        reason: refused.map(|(_, reason)| reason),
        calls: 1,
    };
    let response = refund_decided(&entry);
    s.refunds.insert(key, entry);
    (response, delivery)
}
