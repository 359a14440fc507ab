//! Every accepted payload form, raw and inside an SNS envelope, and every validation rule of the
//! pipeline contract (each error names the field).

use chrono::{TimeZone, Utc};
use order_domain::{parse_body, InvalidOrder, LineItem, Order, OrderItem, PayloadForm, Provenance};
use rust_decimal::Decimal;
use std::str::FromStr;

mod accepted;
mod boundaries;
mod hardening;
mod rules;

const SEED_001: &str = include_str!("../../../../test/events/payloads/seed-001-flat.json");
const SEED_004: &str = include_str!("../../../../test/events/payloads/seed-004-flat.json");
const SEED_002: &str = include_str!("../../../../test/events/payloads/seed-002-snake.json");
const CANONICAL: &str = include_str!("../../../../test/events/payloads/canonical.json");

fn order(body: &str) -> (Order, PayloadForm) {
    parse_body(body)
        .order
        .unwrap_or_else(|e| panic!("expected a valid order, got {e}"))
}

fn invalid(body: &str) -> InvalidOrder {
    match parse_body(body).order {
        Ok((o, _)) => panic!("expected an invalid order, got {o:?}"),
        Err(e) => e,
    }
}

fn envelope(message: &str) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "sns-msg-1",
        "TopicArn": "arn:aws:sns:xx-east-1:000000000000:OrderTopic",
        "Message": message,
        "Timestamp": "2025-05-03T12:00:01.000Z",
        "MessageAttributes": { "correlationId": { "Type": "String", "Value": "corr-9" } }
    })
    .to_string()
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn canonical_with(patch: serde_json::Value) -> String {
    let mut base: serde_json::Value = serde_json::from_str(CANONICAL).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base.to_string()
}

fn price_error(price: serde_json::Value) -> InvalidOrder {
    invalid(&canonical_with(
        serde_json::json!({"items": [{"sku": "A", "quantity": 1, "unitPrice": price}]}),
    ))
}

fn price_of(price: serde_json::Value) -> Decimal {
    let (o, _) = order(&canonical_with(
        serde_json::json!({"items": [{"sku": "A", "quantity": 1, "unitPrice": price}]}),
    ));
    o.items[0].unit_price.unwrap()
}
