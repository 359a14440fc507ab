//! Every accepted payload form (the seeds' samples and the canonical form), raw and inside an
//! SNS envelope.

use super::*;

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
