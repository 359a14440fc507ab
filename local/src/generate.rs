//! Generated order traffic: valid orders in every accepted form, plus chosen fractions of
//! duplicates (the same message again), conflicting reuses of an id, and invalid payloads.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// What the generator meant a message to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    New,
    Duplicate,
    Conflict,
    Invalid,
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Unique per message; published as the `correlationId` message attribute.
    pub correlation_id: String,
    pub body: String,
    pub order_id: Option<String>,
    pub intent: Intent,
}

#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub duplicates: f64,
    pub conflicts: f64,
    pub invalid: f64,
}

impl Mix {
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("duplicates", self.duplicates),
            ("conflicts", self.conflicts),
            ("invalid", self.invalid),
        ];
        for (name, f) in all {
            if !(0.0..=1.0).contains(&f) {
                return Err(format!("--{name} must be a fraction from 0 to 1 (got {f})"));
            }
        }
        if self.duplicates + self.conflicts + self.invalid > 0.9 {
            return Err(
                "--duplicates + --conflicts + --invalid must leave at least 10% new orders".into(),
            );
        }
        Ok(())
    }
}

/// The products generated orders buy: (sku, name, unit price). Flat-form orders name them by name.
pub const SKUS: &[(&str, &str, &str)] = &[
    ("LAPTOP-15", "Laptop", "999.99"),
    ("MOUSE-1", "Mouse", "19.90"),
    ("KB-2", "Keyboard", "49.00"),
    ("MON-27", "Monitor", "279.50"),
    ("CABLE-C", "USB-C cable", "9.99"),
];

fn order_body(rng: &mut StdRng, order_id: &str, customer: u32) -> String {
    let lines = rng.random_range(1..=3);
    match rng.random_range(0..10) {
        // Seed 001/004's flat form.
        0 => {
            let (_, name, _) = SKUS[rng.random_range(0..SKUS.len())];
            json!({"orderId": order_id, "userId": format!("U{customer}"), "itemName": name,
                   "quantity": rng.random_range(1..5), "status": "new", "timestamp": "2025-05-03T12:00:00Z"})
            .to_string()
        }
        // Seed 002's snake_case form.
        1 => {
            let items: Vec<_> = (0..lines)
                .map(|_| json!({"product_id": SKUS[rng.random_range(0..SKUS.len())].0, "quantity": rng.random_range(1..5)}))
                .collect();
            json!({"order_id": order_id, "customer_id": format!("cust-{customer}"), "items": items,
                   "timestamp": "2026-02-09T10:00:00Z"})
            .to_string()
        }
        _ => {
            let items: Vec<_> = (0..lines)
                .map(|_| {
                    let (sku, name, price) = SKUS[rng.random_range(0..SKUS.len())];
                    json!({"sku": sku, "name": name, "quantity": rng.random_range(1..5), "unitPrice": price})
                })
                .collect();
            json!({"orderId": order_id, "customerId": format!("U{customer}"), "items": items,
                   "currency": "USD", "createdAt": "2025-05-03T12:00:00Z"})
            .to_string()
        }
    }
}

fn invalid_body(rng: &mut StdRng, n: usize) -> String {
    match rng.random_range(0..5) {
        0 => format!("not json {n}"),
        1 => json!({"orderId": format!("bad id {n}"), "customerId": "U1", "items": [{"sku": "A", "quantity": 1}]}).to_string(),
        2 => json!({"orderId": format!("Q{n}"), "customerId": "U1", "items": [{"sku": "A", "quantity": 0}]}).to_string(),
        3 => json!({"orderId": format!("Q{n}"), "customerId": "U1", "items": []}).to_string(),
        _ => json!({"orderId": format!("Q{n}"), "items": [{"sku": "A", "quantity": 1}]}).to_string(),
    }
}

/// `count` messages; `run` prefixes order and correlation ids so runs never collide.
pub fn generate(count: usize, mix: Mix, seed: u64, run: &str) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<Planned> = Vec::with_capacity(count);
    let mut valid: Vec<usize> = Vec::new();
    for n in 0..count {
        let roll: f64 = rng.random();
        let correlation_id = format!("{run}-msg-{n:06}");
        let planned = if roll < mix.invalid {
            Planned {
                correlation_id,
                body: invalid_body(&mut rng, n),
                order_id: None,
                intent: Intent::Invalid,
            }
        } else if roll < mix.invalid + mix.duplicates && !valid.is_empty() {
            let original = &out[valid[rng.random_range(0..valid.len())]];
            Planned {
                correlation_id,
                body: original.body.clone(),
                order_id: original.order_id.clone(),
                intent: Intent::Duplicate,
            }
        } else if roll < mix.invalid + mix.duplicates + mix.conflicts && !valid.is_empty() {
            let original = out[valid[rng.random_range(0..valid.len())]]
                .order_id
                .clone()
                .unwrap_or_default();
            Planned {
                correlation_id,
                body: order_body(&mut rng, &original, 999_999),
                order_id: Some(original),
                intent: Intent::Conflict,
            }
        } else {
            let order_id = format!("{run}-{n:06}");
            valid.push(out.len());
            let customer = rng.random_range(1..500);
            Planned {
                correlation_id,
                body: order_body(&mut rng, &order_id, customer),
                order_id: Some(order_id),
                intent: Intent::New,
            }
        };
        out.push(planned);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_traffic_has_the_asked_mix_and_every_new_order_is_valid() {
        let mix = Mix {
            duplicates: 0.1,
            conflicts: 0.05,
            invalid: 0.1,
        };
        let planned = generate(2000, mix, 7, "t");
        let count = |i: Intent| planned.iter().filter(|p| p.intent == i).count();
        assert!(
            (150..250).contains(&count(Intent::Duplicate)),
            "{}",
            count(Intent::Duplicate)
        );
        assert!(
            (60..140).contains(&count(Intent::Conflict)),
            "{}",
            count(Intent::Conflict)
        );
        assert!(
            (150..250).contains(&count(Intent::Invalid)),
            "{}",
            count(Intent::Invalid)
        );
        for p in &planned {
            let parsed = order_domain::parse_body(&p.body).order;
            assert_eq!(parsed.is_ok(), p.intent != Intent::Invalid, "{}", p.body);
        }
        let ids: std::collections::HashSet<_> = planned.iter().map(|p| &p.correlation_id).collect();
        assert_eq!(ids.len(), planned.len(), "correlation ids are unique");
    }

    #[test]
    fn a_conflict_reuses_an_id_with_other_content() {
        let planned = generate(
            500,
            Mix {
                duplicates: 0.0,
                conflicts: 0.3,
                invalid: 0.0,
            },
            1,
            "t",
        );
        for c in planned.iter().filter(|p| p.intent == Intent::Conflict) {
            let original = planned
                .iter()
                .find(|p| p.intent == Intent::New && p.order_id == c.order_id)
                .unwrap();
            let h = |b: &str| order_domain::parse_body(b).order.unwrap().0.content_hash();
            assert_ne!(h(&c.body), h(&original.body));
        }
    }

    #[test]
    fn the_mix_must_leave_room_for_new_orders() {
        assert!(Mix {
            duplicates: 0.5,
            conflicts: 0.3,
            invalid: 0.2
        }
        .validate()
        .is_err());
        assert!(Mix {
            duplicates: -0.1,
            conflicts: 0.0,
            invalid: 0.0
        }
        .validate()
        .is_err());
    }
}
