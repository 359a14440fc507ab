//! Every accepted payload form, raw and inside an SNS envelope, and every validation rule of the
//! pipeline contract (each error names the field).

use chrono::{TimeZone, Utc};
use order_domain::{parse_body, InvalidOrder, LineItem, Order, OrderItem, PayloadForm, Provenance};
use rust_decimal::Decimal;
use std::str::FromStr;

const SEED_001: &str = include_str!("../../../test/events/payloads/seed-001-flat.json");
const SEED_004: &str = include_str!("../../../test/events/payloads/seed-004-flat.json");
const SEED_002: &str = include_str!("../../../test/events/payloads/seed-002-snake.json");
const CANONICAL: &str = include_str!("../../../test/events/payloads/canonical.json");

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

#[test]
fn seed_001_sample_byte_for_byte_maps_to_one_line_and_ignores_status() {
    let (o, form) = order(SEED_001);
    assert_eq!(form, PayloadForm::Flat);
    assert_eq!(o.order_id, "O1234");
    assert_eq!(o.customer_id, "U123");
    assert_eq!(
        o.items,
        vec![LineItem {
            sku: None,
            name: Some("Laptop".into()),
            quantity: 1,
            unit_price: None
        }]
    );
    assert_eq!(o.created_at, Some(at(2025, 5, 3, 12, 0, 0)));
    assert_eq!(o.currency, None);
}

#[test]
fn seed_004_sample_keeps_its_leading_zero_order_id() {
    let (o, form) = order(SEED_004);
    assert_eq!(form, PayloadForm::Flat);
    assert_eq!(o.order_id, "01234");
}

#[test]
fn seed_002_snake_case_maps_product_id_to_sku() {
    let (o, form) = order(SEED_002);
    assert_eq!(form, PayloadForm::SnakeCase);
    assert_eq!(o.customer_id, "cust-101");
    assert_eq!(o.items[0].sku.as_deref(), Some("prod-1"));
    assert_eq!(o.items[0].quantity, 2);
    assert_eq!(o.created_at, Some(at(2026, 2, 9, 10, 0, 0)));
}

#[test]
fn canonical_form_keeps_the_price_exact() {
    let (o, form) = order(CANONICAL);
    assert_eq!(form, PayloadForm::Canonical);
    assert_eq!(
        o.items[0].unit_price,
        Some(Decimal::from_str("999.99").unwrap())
    );
    assert_eq!(o.currency.as_deref(), Some("USD"));
}

#[test]
fn a_price_given_as_a_json_number_is_read_exactly_from_its_text() {
    // Never through a binary float: a number with more places than a price takes is refused,
    // not rounded (it was once stored rounded to 28 places).
    let body = r#"{"orderId":"O1","customerId":"U","items":[{"sku":"S","quantity":1,"unitPrice":0.1000000000000000055511151231257827}]}"#;
    assert_eq!(invalid(body).field, "items[0].unitPrice");
    let (o, _) = order(
        r#"{"orderId":"O1","customerId":"U","items":[{"sku":"S","quantity":1,"unitPrice":19.99}]}"#,
    );
    assert_eq!(o.items[0].unit_price.unwrap().to_string(), "19.99");
}

#[test]
fn every_form_is_accepted_inside_an_sns_envelope_with_its_ids() {
    for (raw, form) in [
        (SEED_001, PayloadForm::Flat),
        (SEED_002, PayloadForm::SnakeCase),
        (CANONICAL, PayloadForm::Canonical),
    ] {
        let parsed = parse_body(&envelope(raw));
        let env = parsed.envelope.expect("envelope detected");
        assert_eq!(env.sns_message_id.as_deref(), Some("sns-msg-1"));
        assert_eq!(env.correlation_id.as_deref(), Some("corr-9"));
        let (o, got) = parsed.order.expect("valid order inside the envelope");
        assert_eq!(got, form);
        assert_eq!(o, order(raw).0, "enveloped and raw give the same order");
    }
}

#[test]
fn raw_and_enveloped_copies_of_one_order_have_one_content_hash() {
    let raw = order(SEED_001).0.content_hash();
    let (wrapped, _) = parse_body(&envelope(SEED_001)).order.unwrap();
    assert_eq!(raw, wrapped.content_hash());
}

#[test]
fn a_timestamp_written_with_an_offset_is_the_same_instant() {
    let a = order(r#"{"orderId":"O1","customerId":"U","items":[{"sku":"S","quantity":1}],"createdAt":"2025-05-03T14:00:00+02:00"}"#).0;
    let b = order(r#"{"orderId":"O1","customerId":"U","items":[{"sku":"S","quantity":1}],"createdAt":"2025-05-03T12:00:00Z"}"#).0;
    assert_eq!(a.content_hash(), b.content_hash());
}

#[test]
fn unknown_fields_are_ignored() {
    let (o, _) = order(
        r#"{"orderId":"O1","customerId":"U","items":[{"sku":"S","quantity":1,"colour":"red"}],"channel":"web","status":"PAID"}"#,
    );
    assert_eq!(o.items.len(), 1);
}

// --- validation rules: one test per rule, each asserting the field named ---

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

#[test]
fn body_that_is_not_json_is_invalid_naming_body() {
    let e = invalid("not json {");
    assert_eq!(e.field, "body");
    assert!(e.problem.contains("not valid JSON"));
    assert_eq!(invalid("[1,2]").field, "body");
    assert_eq!(invalid("").field, "body");
}

#[test]
fn envelope_whose_message_is_not_an_order_names_message() {
    assert_eq!(invalid(&envelope("nope")).field, "Message");
    let e = invalid(r#"{"Type":"Notification","Message":42}"#);
    assert_eq!(e.field, "Message");
}

#[test]
fn order_id_is_required() {
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"orderId": null}))).field,
        "orderId"
    );
}

#[test]
fn order_id_must_be_a_string() {
    let e = invalid(&canonical_with(serde_json::json!({"orderId": 1234})));
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        ("orderId", "must be a string")
    );
}

#[test]
fn order_id_length_is_1_to_128() {
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"orderId": ""}))).field,
        "orderId"
    );
    let long = "A".repeat(129);
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"orderId": long}))).field,
        "orderId"
    );
    let max = "A".repeat(128);
    assert_eq!(
        order(&canonical_with(serde_json::json!({"orderId": max})))
            .0
            .order_id
            .len(),
        128
    );
}

#[test]
fn order_id_characters_are_limited() {
    let e = invalid(&canonical_with(serde_json::json!({"orderId": "O 1"})));
    assert_eq!(e.field, "orderId");
    assert!(e.problem.contains("' '"), "{e}");
    order(&canonical_with(serde_json::json!({"orderId": "a.B_c:D-9"})));
}

#[test]
fn customer_id_is_non_empty_and_at_most_128() {
    for bad in [
        serde_json::json!(""),
        serde_json::json!("   "),
        serde_json::json!("x".repeat(129)),
    ] {
        assert_eq!(
            invalid(&canonical_with(serde_json::json!({"customerId": bad}))).field,
            "customerId"
        );
    }
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"customerId": null}))).field,
        "customerId"
    );
}

#[test]
fn items_must_have_1_to_100_entries() {
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"items": []}))).field,
        "items"
    );
    let exactly: Vec<_> = (0..100)
        .map(|i| serde_json::json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    assert_eq!(
        order(&canonical_with(serde_json::json!({"items": exactly})))
            .0
            .items
            .len(),
        100,
        "exactly 100 lines are accepted"
    );
    let many: Vec<_> = (0..101)
        .map(|i| serde_json::json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"items": many}))).field,
        "items"
    );
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"items": "laptop"}))).field,
        "items"
    );
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"items": null}))).field,
        "items"
    );
}

/// Protects: an entry of `items` that is not an object is named by its index.
#[test]
fn an_item_that_is_not_an_object_is_named_by_its_index() {
    for (items, field) in [
        (
            serde_json::json!([{"sku": "A", "quantity": 1}, 5]),
            "items[1]",
        ),
        (
            serde_json::json!(["A", {"sku": "A", "quantity": 1}]),
            "items[0]",
        ),
        (serde_json::json!([null]), "items[0]"),
    ] {
        let e = invalid(&canonical_with(serde_json::json!({ "items": items })));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            (field, "must be an object")
        );
    }
}

#[test]
fn each_item_needs_a_sku_or_a_name() {
    let e = invalid(&canonical_with(
        serde_json::json!({"items": [{"sku":"A","quantity":1},{"quantity": 1}]}),
    ));
    assert_eq!(e.field, "items[1]");
    let e = invalid(r#"{"order_id":"o","customer_id":"c","items":[{"quantity":1}]}"#);
    assert_eq!(e.field, "items[0]");
    assert!(
        e.problem.contains("product_id"),
        "snake form names its own field: {e}"
    );
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"items": [7]}))).field,
        "items[0]"
    );
}

#[test]
fn quantity_is_a_whole_number_from_1_to_10000() {
    for bad in [
        serde_json::json!(0),
        serde_json::json!(10_001),
        serde_json::json!(1.5),
        serde_json::json!("1"),
        serde_json::json!(-1),
    ] {
        let e = invalid(&canonical_with(
            serde_json::json!({"items": [{"sku":"A","quantity": bad}]}),
        ));
        assert_eq!(e.field, "items[0].quantity", "for {bad}");
    }
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"items": [{"sku":"A"}]}))).field,
        "items[0].quantity"
    );
    order(&canonical_with(
        serde_json::json!({"items": [{"sku":"A","quantity": 10_000}]}),
    ));
    let e = invalid(r#"{"orderId":"O1","userId":"U","itemName":"Laptop","quantity":0}"#);
    assert_eq!(e.field, "quantity", "flat form names its own field");
}

#[test]
fn unit_price_is_a_non_negative_decimal_when_present() {
    for bad in [
        serde_json::json!("-1.00"),
        serde_json::json!(-0.5),
        serde_json::json!("abc"),
        serde_json::json!(true),
    ] {
        let e = invalid(&canonical_with(
            serde_json::json!({"items": [{"sku":"A","quantity":1,"unitPrice": bad}]}),
        ));
        assert_eq!(e.field, "items[0].unitPrice", "for {bad}");
    }
    let (o, _) = order(&canonical_with(
        serde_json::json!({"items": [{"sku":"A","quantity":1,"unitPrice": "0"}]}),
    ));
    assert_eq!(o.items[0].unit_price, Some(Decimal::ZERO));
}

#[test]
fn created_at_must_be_rfc3339() {
    let e = invalid(&canonical_with(
        serde_json::json!({"createdAt": "03/05/2025"}),
    ));
    assert_eq!(e.field, "createdAt");
    let e = invalid(
        r#"{"orderId":"O1","userId":"U","itemName":"Laptop","quantity":1,"timestamp":"yesterday"}"#,
    );
    assert_eq!(e.field, "timestamp");
}

#[test]
fn created_at_may_be_absent_and_the_item_then_takes_the_sent_timestamp() {
    let (o, _) = order(&canonical_with(serde_json::json!({"createdAt": null})));
    assert_eq!(o.created_at, None);
    let sent = at(2025, 6, 1, 8, 30, 0);
    let item = OrderItem::accepted(
        o,
        Provenance {
            message_id: "m".into(),
            correlation_id: "c".into(),
            sent_at: sent,
        },
        at(2025, 6, 1, 8, 30, 1),
    );
    assert_eq!(item.created_at, "2025-06-01T08:30:00Z");
    assert!(!item.created_at_given);
}

#[test]
fn currency_is_a_three_letter_code() {
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"currency": "dollars"}))).field,
        "currency"
    );
    assert_eq!(
        order(&canonical_with(serde_json::json!({"currency": "eur"})))
            .0
            .currency
            .as_deref(),
        Some("EUR")
    );
}

#[test]
fn flat_form_needs_user_id_and_item_name() {
    assert_eq!(
        invalid(r#"{"orderId":"O1","itemName":"Laptop","quantity":1}"#).field,
        "userId"
    );
    assert_eq!(
        invalid(r#"{"orderId":"O1","userId":"U","quantity":1}"#).field,
        "itemName"
    );
}

// Hardening: what a parser must not let through silently.

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

/// Protects: a price is stored and hashed exactly as written, or rejected naming the field;
/// never rounded (40 decimals used to be stored rounded to 28, and two different prices then hashed
/// as one order), and `_` or `+` never read as digits.
#[test]
fn a_price_that_cannot_be_stored_exactly_is_rejected_naming_the_field() {
    let forty = format!("0.{}1", "0".repeat(39));
    for bad in [
        serde_json::json!(forty),
        serde_json::json!("1_000"),
        serde_json::json!("+1"),
        serde_json::json!("1e-40"),
        serde_json::json!("1e12"),
        serde_json::json!("0x10"),
        serde_json::json!("1.2.3"),
        serde_json::json!(".5"),
        serde_json::json!("-1"),
        serde_json::json!("0.000000001"),
    ] {
        let e = price_error(bad.clone());
        assert_eq!(e.field, "items[0].unitPrice", "{bad}: {e}");
    }
    assert!(price_error(serde_json::json!(forty))
        .problem
        .contains("decimal places"));
    assert_eq!(
        price_of(serde_json::json!("10.50000000000000")),
        Decimal::from_str("10.5").unwrap()
    );
    assert_eq!(price_of(serde_json::json!("1.5e2")), Decimal::from(150));
    assert_eq!(
        price_of(serde_json::json!(" 9.99 ")),
        Decimal::from_str("9.99").unwrap()
    );
    assert_eq!(price_of(serde_json::json!("-0")), Decimal::ZERO);
    assert_eq!(
        price_of(serde_json::json!("999999999999.99999999")),
        Decimal::from_str("999999999999.99999999").unwrap(),
        "the largest price, exactly"
    );
    let raw = r#"{"orderId":"P1","customerId":"U1","items":[{"sku":"A","quantity":1,"unitPrice":12.00000001}]}"#;
    assert_eq!(
        order(raw).0.items[0].unit_price,
        Some(Decimal::from_str("12.00000001").unwrap())
    );
}

/// Protects: `{"orderId":"A","orderId":"B"}` is not read as B (or A) silently: JSON parsers
/// disagree on duplicate keys, so the pipeline rejects them, naming the key, at any level.
#[test]
fn a_key_written_twice_is_rejected_naming_it() {
    let e = invalid(
        r#"{"orderId":"A","orderId":"B","customerId":"U1","items":[{"sku":"X","quantity":1}]}"#,
    );
    assert_eq!(e.field, "orderId");
    assert!(e.problem.contains("more than once"), "{e}");
    let e = invalid(
        r#"{"orderId":"A","customerId":"U1","items":[{"sku":"X","sku":"Y","quantity":1}]}"#,
    );
    assert_eq!(e.field, "items[0].sku");
    let message = r#"{"orderId":"A","customerId":"U1","items":[{"sku":"X","quantity":1}]}"#;
    let twice = format!(
        r#"{{"Type":"Notification","MessageId":"m","Message":{},"Message":{}}}"#,
        serde_json::to_string(message).unwrap(),
        serde_json::to_string(message).unwrap()
    );
    assert_eq!(invalid(&twice).field, "Message");
    let e = invalid(&envelope(
        r#"{"orderId":"A","customerId":"U1","customerId":"U2","items":[{"sku":"X","quantity":1}]}"#,
    ));
    assert_eq!(e.field, "customerId");
}

/// Protects: the same order written with another Unicode spelling, or with spaces around the
/// customer id, is the same order (one content hash), and what is stored is what was checked.
#[test]
fn equivalent_spellings_are_one_order_and_the_customer_id_is_stored_trimmed() {
    let composed = canonical_with(
        serde_json::json!({"customerId": "Zo\u{e9}", "items": [{"sku": "caf\u{e9}", "quantity": 1}]}),
    );
    let decomposed = canonical_with(
        serde_json::json!({"customerId": "  Zoe\u{301} ", "items": [{"sku": "cafe\u{301}", "quantity": 1}]}),
    );
    let (a, _) = order(&composed);
    let (b, _) = order(&decomposed);
    assert_eq!(b.customer_id, "Zo\u{e9}", "trimmed and NFC");
    assert_eq!(b.items[0].sku.as_deref(), Some("caf\u{e9}"));
    assert_eq!(a.content_hash(), b.content_hash());
    // Line order is part of the order (documented in docs/design.md).
    let ab = canonical_with(
        serde_json::json!({"items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}]}),
    );
    let ba = canonical_with(
        serde_json::json!({"items": [{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 1}]}),
    );
    assert_ne!(order(&ab).0.content_hash(), order(&ba).0.content_hash());
}

/// Protects: sku, name and customerId are bounded and free of control and bidirectional-formatting
/// characters (which can disguise a log line); the error names the field and never echoes a huge
/// value back into logs and the ops summary.
#[test]
fn text_fields_are_bounded_and_free_of_control_and_bidi_characters() {
    for (line, field) in [
        (
            serde_json::json!({"sku": "AB\u{202e}C", "quantity": 1}),
            "items[0].sku",
        ),
        (
            serde_json::json!({"sku": "A", "name": "lamp\nDELETE", "quantity": 1}),
            "items[0].name",
        ),
        (
            serde_json::json!({"sku": "A".repeat(129), "quantity": 1}),
            "items[0].sku",
        ),
        (
            serde_json::json!({"sku": "A", "name": "n".repeat(257), "quantity": 1}),
            "items[0].name",
        ),
    ] {
        let e = invalid(&canonical_with(serde_json::json!({"items": [line]})));
        assert_eq!(e.field, field, "{e}");
    }
    assert_eq!(
        invalid(&canonical_with(
            serde_json::json!({"customerId": "U\u{0007}1"})
        ))
        .field,
        "customerId"
    );
    let flat = r#"{"orderId":"F1","userId":"U1","itemName":"Lap\u2066top","quantity":1}"#;
    assert_eq!(invalid(flat).field, "itemName");
    assert!(order(&canonical_with(serde_json::json!({"items": [{"sku": "A".repeat(128), "name": "n".repeat(256), "quantity": 1}]}))).0.items[0].sku.is_some());
    let huge = "X".repeat(10_000);
    for e in [
        invalid(&canonical_with(serde_json::json!({"currency": huge}))),
        invalid(&canonical_with(serde_json::json!({"createdAt": huge}))),
        price_error(serde_json::json!(huge)),
        invalid(&canonical_with(
            serde_json::json!({"items": [{"sku": huge, "quantity": 1}]}),
        )),
    ] {
        assert!(
            e.to_string().len() < 200,
            "{} chars: {}",
            e.to_string().len(),
            &e.to_string()[..200]
        );
    }
}

/// Protects: every field that makes an order is in its content hash, so a message that differs
/// in any of them is a conflict, never a "duplicate" that silently drops it.
#[test]
fn changing_any_field_of_the_order_changes_its_content_hash() {
    let base = serde_json::json!({"orderId": "H1", "customerId": "U1", "currency": "USD",
        "createdAt": "2025-05-03T12:00:00Z",
        "items": [{"sku": "A", "name": "Lamp", "quantity": 2, "unitPrice": "9.99"}]});
    let hash = |v: &serde_json::Value| order(&v.to_string()).0.content_hash();
    let original = hash(&base);
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("orderId", serde_json::json!({"orderId": "H2"})),
        ("customerId", serde_json::json!({"customerId": "U2"})),
        ("currency", serde_json::json!({"currency": "EUR"})),
        (
            "createdAt",
            serde_json::json!({"createdAt": "2025-05-03T12:00:01Z"}),
        ),
        (
            "sku",
            serde_json::json!({"items": [{"sku": "B", "name": "Lamp", "quantity": 2, "unitPrice": "9.99"}]}),
        ),
        (
            "name",
            serde_json::json!({"items": [{"sku": "A", "name": "Desk", "quantity": 2, "unitPrice": "9.99"}]}),
        ),
        (
            "quantity",
            serde_json::json!({"items": [{"sku": "A", "name": "Lamp", "quantity": 3, "unitPrice": "9.99"}]}),
        ),
        (
            "unitPrice",
            serde_json::json!({"items": [{"sku": "A", "name": "Lamp", "quantity": 2, "unitPrice": "9.98"}]}),
        ),
        (
            "a line",
            serde_json::json!({"items": [{"sku": "A", "name": "Lamp", "quantity": 2, "unitPrice": "9.99"}, {"sku": "C", "quantity": 1}]}),
        ),
    ];
    for (field, patch) in variants {
        let mut changed = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            changed[k] = v.clone();
        }
        assert_ne!(hash(&changed), original, "{field} is part of the hash");
    }
    // The same price written differently is the same order.
    let mut same = base.clone();
    same["items"][0]["unitPrice"] = serde_json::json!("9.990");
    assert_eq!(hash(&same), original);
}

// Boundaries the mutation run (docs/reliability.md) found unchecked.

/// Protects: the exact limits of a price: 8 decimal places and 12 integer digits are stored,
/// one more of either is rejected; an exponent of 4 digits is read, 5 is a syntax error.
#[test]
fn a_price_at_each_limit_is_stored_and_one_past_it_is_rejected() {
    assert_eq!(
        price_of(serde_json::json!("0.12345678")),
        Decimal::from_str("0.12345678").unwrap(),
        "exactly 8 places"
    );
    assert!(price_error(serde_json::json!("0.123456789"))
        .problem
        .contains("decimal places"));
    assert_eq!(
        price_of(serde_json::json!("999999999999")),
        Decimal::from(999_999_999_999u64),
        "exactly 12 integer digits"
    );
    assert!(price_error(serde_json::json!("1000000000000"))
        .problem
        .contains("below 10^12"));
    assert_eq!(
        price_of(serde_json::json!("1e0002")),
        Decimal::from(100),
        "a 4-digit exponent"
    );
    assert_eq!(
        price_of(serde_json::json!("1500e-0003")),
        Decimal::from_str("1.5").unwrap()
    );
    for bad in ["1e00002", "1e", "1e+", "1ex"] {
        let e = price_error(serde_json::json!(bad));
        assert_eq!(e.field, "items[0].unitPrice", "{bad}: {e}");
        assert!(
            !e.problem.contains("decimal places") && !e.problem.contains("below"),
            "{bad} is a syntax error: {e}"
        );
    }
}

/// Protects: `null` in an optional text field reads as the field left out (the seeds' systems
/// write `"currency": null`), not as a wrong type.
#[test]
fn null_in_an_optional_field_is_the_field_left_out() {
    let (with_null, _) = order(&canonical_with(
        serde_json::json!({"currency": serde_json::Value::Null}),
    ));
    assert_eq!(with_null.currency, None);
    let mut body: serde_json::Value = serde_json::from_str(CANONICAL).unwrap();
    body["currency"] = serde_json::Value::Null;
    body["items"][0]["name"] = serde_json::Value::Null;
    let (o, _) = order(&body.to_string());
    assert_eq!(o.currency, None);
    assert_eq!(o.items[0].name, None);
    assert_eq!(
        invalid(&canonical_with(serde_json::json!({"currency": 5}))).field,
        "currency"
    );
}

/// Protects: only an SNS notification (`Type` "Notification" and a `Message`) is unwrapped; an
/// order that happens to carry a `Message` field is read as the order it is.
#[test]
fn an_order_with_a_message_field_is_not_taken_for_an_envelope() {
    let (o, form) = order(&canonical_with(
        serde_json::json!({"Message": "gift wrap, please"}),
    ));
    assert_eq!(o.order_id, "O1234");
    assert_eq!(form, order(CANONICAL).1);
    let (typed, _) = order(&canonical_with(serde_json::json!({"Type": "Notification"})));
    assert_eq!(typed.order_id, "O1234");
}

/// Protects the parser's reading of fields as written (keys borrowed from the text, the
/// envelope's Message and the order's items decoded as they are read): a key or value written
/// with escapes is the same field and value, an object with many fields still finds every key
/// written twice (in the order written), and `items` that is not a list is named.
#[test]
fn escaped_keys_and_values_many_fields_and_odd_items_read_as_written() {
    let escaped = r#"{"order\u0049d":"O\u00311","customerId":"U\"1","items":[{"s\u006bu":"A\\B","quantity":1}]}"#;
    let (o, form) = order(escaped);
    assert_eq!(
        (o.order_id.as_str(), o.customer_id.as_str(), form),
        ("O11", "U\"1", PayloadForm::Canonical)
    );
    assert_eq!(o.items[0].sku.as_deref(), Some("A\\B"));
    assert_eq!(order(&envelope(escaped)).0, o);

    // More fields than a scan looks through: duplicates found by the set, reported in order.
    let mut fields: Vec<String> = (0..30).map(|i| format!(r#""x{i}":{i}"#)).collect();
    fields.push(r#""x25":"again""#.into());
    fields.push(r#""x3":"again""#.into());
    fields.push(r#""orderId":"A","customerId":"U1","items":[{"sku":"X","quantity":1}]"#.into());
    let body = format!("{{{}}}", fields.join(","));
    let all = order_domain::parse::parse_order_all(&body).unwrap_err();
    let named: Vec<&str> = all.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(named, ["x25", "x3"]);

    for items in [r#""items":"X""#, r#""items":{"sku":"X"}"#, r#""items":7"#] {
        let e = invalid(&format!(r#"{{"orderId":"A","customerId":"U1",{items}}}"#));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("items", "must be a list of line items")
        );
    }
}

/// Protects: an envelope whose Message is valid JSON text that no string can hold (a lone
/// surrogate escape) is refused naming the Message, as before the Message was decoded while the
/// envelope is read (which fails on it for the whole body; the parser then reads it again raw).
#[test]
fn a_message_no_string_can_hold_is_named_not_the_body() {
    let e = invalid(r#"{"Type":"Notification","MessageId":"m","Message":"{\ud800}"}"#);
    assert_eq!(e.field, "Message");
    let info = parse_body(r#"{"Type":"Notification","MessageId":"m","Message":"\ud800"}"#)
        .envelope
        .expect("still an envelope");
    assert_eq!(info.sns_message_id.as_deref(), Some("m"));
    // An order with such a Message field is read again raw too, and its items still read.
    let (o, _) = order(
        r#"{"Message":"\ud800","orderId":"A","customerId":"U1","items":[{"sku":"X","quantity":2}]}"#,
    );
    assert_eq!((o.order_id.as_str(), o.items[0].quantity), ("A", 2));
}

/// Protects the stored hashes: a content hash is compared with the one an earlier build stored,
/// so the hash input must not change without a new hash version and a migration (these are the
/// hashes builds have stored since the version was set).
#[test]
fn the_content_hash_is_the_one_earlier_builds_stored() {
    assert_eq!(
        order(CANONICAL).0.content_hash(),
        "170ed799b53a908856283840de8b193ac6f1216a32b572dc289faf66d4c56063"
    );
    let two_lines = r#"{"orderId":"F-1","customerId":"U1","currency":"usd","items":[{"sku":"A","name":"Lamp","quantity":3,"unitPrice":12.5},{"name":"Cable","quantity":1,"unitPrice":"0.99"}]}"#;
    assert_eq!(
        order(two_lines).0.content_hash(),
        "4e1226772905f49e018356ec175dcfb7b9ed3144621452b711ee814e85e38e19"
    );
    // The item's hash is written from the texts the item stores: the same.
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: "c".into(),
        sent_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    };
    for body in [CANONICAL, two_lines, SEED_002] {
        let (o, _) = order(body);
        assert_eq!(
            OrderItem::accepted(o.clone(), from.clone(), Utc::now()).content_hash,
            o.content_hash()
        );
    }
}
