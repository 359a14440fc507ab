//! The messages' JSON Schemas, generated from the Rust types, are the ones published in
//! docs/schemas/, and the fixtures (and events the code produces) validate against them.
//! Regenerate after changing a type: `UPDATE_SCHEMAS=1 cargo test -p order-domain --test schemas`.

use std::path::PathBuf;

use order_domain::{CustomerNotification, LifecycleEvent, Order, OrderItem, Provenance};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "order-created",
            serde_json::to_value(schemars::schema_for!(Order)).unwrap(),
        ),
        (
            "lifecycle-event",
            serde_json::to_value(schemars::schema_for!(LifecycleEvent)).unwrap(),
        ),
        (
            "customer-notification",
            serde_json::to_value(schemars::schema_for!(CustomerNotification)).unwrap(),
        ),
    ]
}

fn published(name: &str) -> Value {
    let path = root().join("docs/schemas").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with UPDATE_SCHEMAS=1 cargo test -p order-domain --test schemas",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// Protects: docs/schemas describes the types the code really sends (no drift).
#[test]
fn the_published_schemas_are_the_types_schemas() {
    for (name, schema) in schemas() {
        let path = root().join("docs/schemas").join(format!("{name}.json"));
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&schema).unwrap() + "\n").unwrap();
        }
        assert_eq!(
            published(name),
            schema,
            "{name}: docs/schemas is stale; run UPDATE_SCHEMAS=1 cargo test -p order-domain --test schemas"
        );
    }
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&published(name)).expect("a valid JSON Schema")
}

fn fixture(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

/// Protects: the fixtures and the events the code produces validate against the published
/// schemas, and a broken message does not.
#[test]
fn fixtures_and_produced_events_validate_against_the_schemas() {
    let order = validator("order-created");
    for path in [
        "test/events/payloads/canonical.json",
        "test/events/payloads/another-order.json",
    ] {
        let errors: Vec<String> = order
            .iter_errors(&fixture(path))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:?}");
    }
    let event = validator("lifecycle-event");
    let accepted = fixture("test/events/lifecycle-order-accepted.json");
    assert!(
        event.is_valid(&accepted),
        "{:?}",
        event
            .iter_errors(&accepted)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );

    let (parsed, _) =
        order_domain::parse_order(&fixture("test/events/payloads/canonical.json").to_string())
            .unwrap();
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: "c".into(),
        sent_at: chrono::Utc::now(),
    };
    let item = OrderItem::accepted(parsed, from, chrono::Utc::now());
    let produced = serde_json::to_value(
        LifecycleEvent::from_change(None, &item, "2026-01-01T00:00:00Z").unwrap(),
    )
    .unwrap();
    assert!(event.is_valid(&produced));

    let mut broken = accepted.clone();
    broken["eventType"] = Value::from("OrderShipped");
    assert!(!event.is_valid(&broken), "an unknown event type is refused");
    let mut broken = fixture("test/events/payloads/canonical.json");
    broken["items"][0]["quantity"] = Value::from("one");
    assert!(
        !order.is_valid(&broken),
        "a quantity that is not a number is refused"
    );
}
