//! Property tests: the parser never panics on any input, and canonical -> item -> canonical
//! round-trips (so a stored item always reproduces the order and its content hash).

use chrono::{TimeZone, Utc};
use order_domain::{parse_body, LineItem, Order, OrderItem, Provenance};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("orderId".to_string()),
            Just("order_id".to_string()),
            Just("customerId".to_string()),
            Just("userId".to_string()),
            Just("items".to_string()),
            Just("itemName".to_string()),
            Just("quantity".to_string()),
            Just("unitPrice".to_string()),
            Just("sku".to_string()),
            Just("Type".to_string()),
            Just("Message".to_string()),
            "[a-z]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn line() -> impl Strategy<Value = LineItem> {
    (
        prop::option::of("[A-Z0-9-]{1,12}"),
        // Canonical text: no surrounding spaces (the parser trims them).
        prop::option::of("[!-~]([ -~]{0,18}[!-~])?"),
        1u32..=10_000,
        prop::option::of((0i64..100_000_000, 0u32..6)),
    )
        .prop_filter("sku or name", |(s, n, _, _)| s.is_some() || n.is_some())
        .prop_map(|(sku, name, quantity, price)| LineItem {
            sku,
            name,
            quantity,
            unit_price: price.map(|(m, scale)| Decimal::new(m, scale)),
        })
}

fn canonical_order() -> impl Strategy<Value = Order> {
    (
        "[A-Za-z0-9._:-]{1,128}",
        "[!-~]([ -~]{0,126}[!-~])?",
        prop::collection::vec(line(), 1..=100),
        prop::option::of(
            prop::sample::select(vec!["USD", "EUR", "JPY", "KWD", "GBP"]).prop_map(String::from),
        ),
        prop::option::of(0i64..4_000_000_000),
    )
        .prop_map(|(order_id, customer_id, items, currency, secs)| Order {
            order_id,
            customer_id,
            items,
            currency,
            created_at: secs.map(|s| Utc.timestamp_opt(s, 0).unwrap()),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_body(&text);
    }

    #[test]
    fn arbitrary_json_never_panics_the_parser(value in json_value()) {
        let text = value.to_string();
        let _ = parse_body(&text);
        // The same JSON inside an SNS envelope.
        let wrapped = serde_json::json!({"Type": "Notification", "Message": text}).to_string();
        let _ = parse_body(&wrapped);
    }

    #[test]
    fn canonical_to_item_to_canonical_round_trips(order in canonical_order()) {
        let provenance = Provenance {
            message_id: "m-1".into(),
            correlation_id: "c-1".into(),
            sent_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        };
        let item = OrderItem::accepted(order.clone(), provenance, Utc::now());
        // Through DynamoDB's attribute format too, as the store writes it.
        let attributes: serde_dynamo::Item =
            serde_dynamo::to_item(&item).expect("item maps to attributes");
        let stored: OrderItem = serde_dynamo::from_item(attributes).expect("attributes map back");
        prop_assert_eq!(&stored, &item);
        let back = stored.to_order().expect("item maps back to an order");
        prop_assert_eq!(back.content_hash(), order.content_hash());
        let mut normalised = order.clone();
        for l in &mut normalised.items {
            l.unit_price = l.unit_price.map(|p| p.normalize());
        }
        prop_assert_eq!(back, normalised);
    }

    #[test]
    fn canonical_json_parses_back_to_the_same_order(order in canonical_order()) {
        let text = serde_json::to_string(&order).unwrap();
        let (parsed, _) = parse_body(&text).order.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.content_hash(), order.content_hash());
    }
}

// --- the lifecycle (order_domain::lifecycle) ---

mod lifecycle_properties {
    use order_domain::lifecycle::{apply, transition, Request, Stored};
    use order_domain::OrderStatus;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = OrderStatus> {
        proptest::sample::select(OrderStatus::ALL.to_vec())
    }

    fn request() -> impl Strategy<Value = Request> {
        (status(), 0u64..6, status()).prop_map(|(from, expected_version, to)| Request {
            from,
            expected_version,
            to,
        })
    }

    proptest! {
        /// Protects: whatever events arrive, in whatever order and however stale, no status
        /// change outside the lifecycle table is ever written.
        #[test]
        fn no_sequence_of_events_writes_a_change_outside_the_table(requests in proptest::collection::vec(request(), 0..40)) {
            let mut stored = Stored { status: OrderStatus::Accepted, version: 1 };
            for r in requests {
                if let Some(next) = apply(stored, r) {
                    prop_assert!(transition(Some(stored.status), next.status).is_some(), "{:?} -> {:?}", stored.status, next.status);
                    prop_assert_eq!(next.version, stored.version + 1);
                    stored = next;
                }
            }
        }

        /// Protects: an event delivered twice changes the order once (at-least-once delivery).
        #[test]
        fn applying_the_same_event_twice_equals_applying_it_once(start in status(), version in 1u64..5, r in request()) {
            let stored = Stored { status: start, version };
            let once = apply(stored, r).unwrap_or(stored);
            let twice = apply(once, r).unwrap_or(once);
            prop_assert_eq!(once, twice);
        }
    }
}
