//! Boundaries the mutation run (docs/reliability.md) found unchecked.

use super::*;

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
