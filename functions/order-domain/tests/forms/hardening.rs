//! Hardening: what a parser must not let through silently.

use super::*;

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
