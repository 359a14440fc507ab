//! Fuzzing the message parser and the item round-trip with a time budget (no nightly toolchain
//! needed): `FUZZ_SECONDS` (default 5, which `make test` runs; `make fuzz` runs 600) of inputs
//! built by mutating the accepted forms and arbitrary JSON: keys written twice, control and
//! bidirectional characters, long and odd numbers, truncation, byte flips, envelopes.
//!
//! For every input: the parser never panics; and what it accepts is a valid order (every limit
//! holds), reads back the same from its canonical JSON (normalisation is stable), and survives
//! the Orders item through DynamoDB's attribute format with its content hash. `FUZZ_SEED` replays
//! a run; a failure prints the seed and the input.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use order_domain::parse::{CUSTOMER_ID_MAX, ITEMS_MAX, NAME_MAX, ORDER_ID_MAX, SKU_MAX};
use order_domain::{parse_body, Order, OrderItem, Provenance};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const SEEDS: &[&str] = &[
    include_str!("../../../test/events/payloads/seed-001-flat.json"),
    include_str!("../../../test/events/payloads/seed-002-snake.json"),
    include_str!("../../../test/events/payloads/seed-004-flat.json"),
    include_str!("../../../test/events/payloads/canonical.json"),
    r#"{"orderId":"F-1","customerId":"U1","currency":"usd","items":[{"sku":"A","name":"Lamp","quantity":3,"unitPrice":12.5},{"name":"Cable","quantity":1,"unitPrice":"0.99"}]}"#,
];

/// Odd pieces of text and numbers a publisher (or an attacker) might send.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\u{202e}".to_string()),
        Just("\u{2066}".to_string()),
        Just("\u{0000}".to_string()),
        Just("\n".to_string()),
        Just("e\u{301}".to_string()),
        Just("\u{e9}".to_string()),
        Just(" ".to_string()),
        Just("1_000".to_string()),
        Just("+1".to_string()),
        Just("1e-40".to_string()),
        Just("0.".to_string() + &"0".repeat(39) + "1"),
        Just("9".repeat(40)),
        Just("-0".to_string()),
        Just("null".to_string()),
        "[ -~]{0,8}",
        "\\PC{0,4}",
        (0u64..u64::MAX).prop_map(|n| n.to_string()),
    ]
}

/// One input: a seed or arbitrary JSON, mutated.
fn input() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        3 => proptest::sample::select(SEEDS.to_vec()).prop_map(str::to_string),
        1 => any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let mutation = prop_oneof![
        // Replace a JSON string or number value by a fragment.
        (any::<prop::sample::Index>(), fragment()).prop_map(|(at, f)| Mutation::Value(at, f)),
        // Write a key of the object twice.
        any::<prop::sample::Index>().prop_map(Mutation::DuplicateKey),
        (any::<prop::sample::Index>(), fragment()).prop_map(|(at, f)| Mutation::Insert(at, f)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        Just(Mutation::Envelope),
        Just(Mutation::None),
    ];
    (base, prop::collection::vec(mutation, 0..4)).prop_map(|(mut text, mutations)| {
        for m in mutations {
            text = m.apply(&text);
        }
        text
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Value(prop::sample::Index, String),
    DuplicateKey(prop::sample::Index),
    Insert(prop::sample::Index, String),
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Envelope,
    None,
}

impl Mutation {
    fn apply(&self, text: &str) -> String {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let at = |i: &prop::sample::Index| boundaries[i.index(boundaries.len())];
        match self {
            Mutation::Value(i, f) => {
                // The value after the n-th colon, up to the next , or }.
                let colons: Vec<usize> = text.match_indices(':').map(|(p, _)| p).collect();
                if colons.is_empty() {
                    return text.to_string();
                }
                let start = colons[i.index(colons.len())] + 1;
                let end = text[start..]
                    .find([',', '}'])
                    .map_or(text.len(), |e| start + e);
                let value = if f.parse::<f64>().is_ok() || f == "null" {
                    f.clone()
                } else {
                    serde_json::to_string(f).unwrap_or_default()
                };
                format!("{}{}{}", &text[..start], value, &text[end..])
            }
            Mutation::DuplicateKey(i) => {
                let keys: Vec<usize> = text.match_indices("\":").map(|(p, _)| p).collect();
                if keys.is_empty() {
                    return text.to_string();
                }
                let end = keys[i.index(keys.len())];
                let Some(start) = text[..end].rfind('"') else {
                    return text.to_string();
                };
                let key = &text[start..end + 1];
                match text.find('{') {
                    Some(open) => {
                        format!("{}{{{key}:\"twice\",{}", &text[..open], &text[open + 1..])
                    }
                    None => text.to_string(),
                }
            }
            Mutation::Insert(i, f) => {
                let p = at(i);
                format!("{}{}{}", &text[..p], f, &text[p..])
            }
            Mutation::Truncate(i) => text[..at(i)].to_string(),
            Mutation::Flip(i, b) => {
                let mut bytes = text.as_bytes().to_vec();
                if !bytes.is_empty() {
                    let n = i.index(bytes.len());
                    bytes[n] ^= b | 1;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Mutation::Envelope => {
                serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": text})
                    .to_string()
            }
            Mutation::None => text.to_string(),
        }
    }
}

/// What must hold for one input; `Err` says which property broke.
fn check(text: &str) -> Result<bool, String> {
    let parsed = catch_unwind(AssertUnwindSafe(|| parse_body(text)))
        .map_err(|_| "the parser panicked".to_string())?;
    let Ok((order, _)) = parsed.order else {
        return Ok(false);
    };
    valid(&order)?;
    // Normalisation is stable: the canonical JSON of an accepted order is accepted as itself.
    let canonical = serde_json::to_string(&order).map_err(|e| e.to_string())?;
    let (again, _) = parse_body(&canonical)
        .order
        .map_err(|e| format!("its canonical JSON is rejected: {e}"))?;
    if again != order || again.content_hash() != order.content_hash() {
        return Err(format!("its canonical JSON reads differently: {again:?}"));
    }
    // The Orders item, through DynamoDB's attribute format, gives back the order and its hash.
    let provenance = Provenance {
        message_id: "m".into(),
        correlation_id: "c".into(),
        sent_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    };
    let item = OrderItem::accepted(order.clone(), provenance, Utc::now());
    let attributes: serde_dynamo::Item = serde_dynamo::to_item(&item).map_err(|e| e.to_string())?;
    let stored: OrderItem = serde_dynamo::from_item(attributes).map_err(|e| e.to_string())?;
    let back = stored.to_order().ok_or("the item does not map back")?;
    if back.content_hash() != order.content_hash() {
        return Err("the item's order hashes differently".into());
    }
    Ok(true)
}

/// Every limit of the contract holds for an accepted order.
fn valid(o: &Order) -> Result<(), String> {
    let clean = |s: &str, max: usize, what: &str| {
        let bad = s.chars().any(|c| c.is_control() || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'));
        if bad || s.chars().count() > max || s != s.trim() {
            Err(format!("{what} {s:?} passed validation"))
        } else {
            Ok(())
        }
    };
    clean(&o.order_id, ORDER_ID_MAX, "orderId")?;
    clean(&o.customer_id, CUSTOMER_ID_MAX, "customerId")?;
    if o.customer_id.is_empty() || o.items.is_empty() || o.items.len() > ITEMS_MAX {
        return Err("empty customer or a bad number of lines passed validation".into());
    }
    for l in &o.items {
        if let Some(s) = &l.sku {
            clean(s, SKU_MAX, "sku")?;
        }
        if let Some(n) = &l.name {
            clean(n, NAME_MAX, "name")?;
        }
        if !(1..=10_000).contains(&l.quantity) {
            return Err(format!("quantity {} passed validation", l.quantity));
        }
        if let Some(p) = l.unit_price {
            if p.is_sign_negative() && !p.is_zero() || p.normalize().scale() > 8 {
                return Err(format!("price {p} passed validation"));
            }
        }
    }
    Ok(())
}

/// Protects: no input crashes the parser or gets an invalid order past it; accepted orders
/// normalise stably and survive the Orders item. Runs for FUZZ_SECONDS (default 5).
#[test]
fn fuzz_the_parser_and_the_item_round_trip_for_a_time_budget() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = input();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut inputs, mut accepted) = (0u64, 0u64);
    while Instant::now() < deadline {
        let text = strategy
            .new_tree(&mut runner)
            .expect("inputs generate")
            .current();
        match check(&text) {
            Ok(ok) => {
                inputs += 1;
                accepted += u64::from(ok);
            }
            Err(broken) => panic!("FUZZ_SEED={seed}: {broken}\ninput: {text:?}"),
        }
    }
    eprintln!(
        "fuzz: {inputs} inputs in {seconds} s ({} per second), {accepted} accepted, seed {seed}",
        inputs / seconds.max(1)
    );
    assert!(inputs > 0 && accepted > 0, "the run exercised acceptance");
}
