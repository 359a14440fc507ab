//! The per-record unit of section 2 (shared with the criterion bench): what order-consumer does
//! with a message body before its write: parse, validate, build the Orders item (content hash
//! included) and its DynamoDB attribute values as the batched `INSERT` sends them.

use chrono::{TimeZone, Utc};
use order_domain::{parse_body, OrderItem, Provenance};
use order_pipeline::adapters::dynamodb::item::{item_values, ItemValues};

const SEED_001: &str = include_str!("../../test/events/payloads/seed-001-flat.json");
const SEED_002: &str = include_str!("../../test/events/payloads/seed-002-snake.json");
pub const CANONICAL: &str = include_str!("../../test/events/payloads/canonical.json");

/// Each accepted form, named as the report names it, with a body in it.
pub fn forms() -> Vec<(&'static str, String)> {
    let enveloped =
        serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": CANONICAL})
            .to_string();
    vec![
        ("canonical", CANONICAL.to_string()),
        ("flat (seed 001)", SEED_001.to_string()),
        ("snake_case (seed 002)", SEED_002.to_string()),
        ("canonical in SNS envelope", enveloped),
    ]
}

/// One record's work before its write.
pub fn to_item(body: &str) -> ItemValues {
    let (order, _) = parse_body(body).order.expect("valid order");
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: "c".into(),
        sent_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    };
    let item = OrderItem::accepted(order, from, Utc.timestamp_opt(1_700_000_001, 0).unwrap());
    item_values(&item).expect("maps to attributes")
}
