//! The seed systems' sample payloads, as the demo and the producer publish them.

use crate::generate::{Intent, Planned};

pub const SEED_001: &str = include_str!("../../test/events/payloads/seed-001-flat.json");
pub const SEED_002: &str = include_str!("../../test/events/payloads/seed-002-snake.json");
pub const SEED_004: &str = include_str!("../../test/events/payloads/seed-004-flat.json");
/// The contract's canonical example. It reuses seed 001's orderId O1234 with other content,
/// so published after seed 001 it is a conflicting reuse of an id.
pub const CANONICAL: &str = include_str!("../../test/events/payloads/canonical.json");

fn planned(run: &str, n: usize, body: &str, order_id: Option<&str>, intent: Intent) -> Planned {
    Planned {
        correlation_id: format!("{run}-{n}"),
        body: body.to_string(),
        order_id: order_id.map(str::to_string),
        intent,
    }
}

/// The seed systems' sample orders (seeds 001, 002 and 004).
pub fn seed_orders(run: &str) -> Vec<Planned> {
    vec![
        planned(run, 1, SEED_001, Some("O1234"), Intent::New),
        planned(
            run,
            2,
            SEED_002,
            Some("9f1c2a4e-5b6d-4c3e-8f7a-1b2c3d4e5f60"),
            Intent::New,
        ),
        planned(run, 4, SEED_004, Some("01234"), Intent::New),
    ]
}

/// A duplicate of seed 001, a conflicting reuse of its id, and an invalid payload.
pub fn troublemakers(run: &str) -> Vec<Planned> {
    vec![
        planned(run, 5, SEED_001, Some("O1234"), Intent::Duplicate),
        planned(run, 6, CANONICAL, Some("O1234"), Intent::Conflict),
        planned(
            run,
            7,
            r#"{"orderId":"O9999","customerId":"U123","items":[{"sku":"LAPTOP-15","quantity":0}]}"#,
            Some("O9999"),
            Intent::Invalid,
        ),
    ]
}

/// The customer-id prefix the local fake provider charges and then answers too late, on every
/// attempt: an unknown outcome the payment stage resolves by looking the charge up.
pub const LATE_CUSTOMER_PREFIX: &str = "late-";

/// An order whose payment answer is lost (customer `late-demo`): charged on the first call, every
/// answer after the stage's timeout; after its attempts the stage looks the charge up, finds it,
/// and the order is PAID, then COMPLETED.
pub fn lost_answer(run: &str) -> Vec<Planned> {
    vec![planned(
        run,
        10,
        r#"{"orderId":"O-LATE","customerId":"late-demo","currency":"USD","items":[{"sku":"MOUSE-1","name":"Mouse","quantity":1}]}"#,
        Some("O-LATE"),
        Intent::New,
    )]
}

/// The lifecycle's two unhappy endings: an order the payment provider declines (its customer
/// id starts with `decline-`: reserved, then PAYMENT_FAILED, its stock back), and one for more
/// laptops than the sample catalogue has left after the seed orders (REJECTED).
pub fn unhappy_endings(run: &str) -> Vec<Planned> {
    vec![
        planned(
            run,
            8,
            r#"{"orderId":"O-DECLINED","customerId":"decline-demo","currency":"USD","items":[{"sku":"MOUSE-1","name":"Mouse","quantity":2,"unitPrice":"19.90"}]}"#,
            Some("O-DECLINED"),
            Intent::New,
        ),
        planned(
            run,
            9,
            r#"{"orderId":"O-SOLD-OUT","userId":"U777","itemName":"Laptop","quantity":3}"#,
            Some("O-SOLD-OUT"),
            Intent::New,
        ),
    ]
}
