//! The validation rules: one test per rule, each asserting the field named.

use super::*;

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
