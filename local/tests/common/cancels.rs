//! Customers changing their minds during the end-to-end run and the soak (issue 31): a share of
//! the generated orders is cancelled through the real API at a random point of its lifecycle
//! (as soon as it is stored, once it is reserved, once it is completed), while the pipeline runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use order_domain::OrderStatus;
use order_local::generate::{Intent, Planned};
use order_local::pipeline::LocalPipeline;
use rand::{Rng, SeedableRng};

/// Where in its lifecycle an order is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// As soon as it is stored: usually before its reservation.
    Stored,
    /// Once it is RESERVED: between the reservation and the payment.
    Reserved,
    /// Once it has ended (COMPLETED: a refund).
    Ended,
}

/// What the API answered to one order's cancel.
#[derive(Debug, Clone)]
pub struct Cancel {
    pub point: Point,
    /// The status the order was seen at when the cancel was sent (a cancel "as soon as it is
    /// stored" reads nothing first: ACCEPTED, the status it aims at).
    pub seen: OrderStatus,
    pub status: u16,
}

/// The orders to cancel: one in `every` of the generated new orders, each at a random point.
pub fn choose(planned: &[Planned], every: usize, seed: u64) -> BTreeMap<String, Point> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut chosen = BTreeMap::new();
    for id in planned
        .iter()
        .filter(|p| p.intent == Intent::New)
        .filter_map(|p| p.order_id.clone())
    {
        if rng.random_range(0..every) != 0 {
            continue;
        }
        let point = match rng.random_range(0..3) {
            0 => Point::Stored,
            1 => Point::Reserved,
            _ => Point::Ended,
        };
        chosen.insert(id, point);
    }
    chosen
}

async fn status_of(pipeline: &LocalPipeline, order_id: &str) -> Option<OrderStatus> {
    let out = pipeline
        .clients
        .dynamodb
        .get_item()
        .table_name(&pipeline.stack.table_name)
        .key("orderId", AttributeValue::S(order_id.into()))
        .consistent_read(true)
        .projection_expression("#s")
        .expression_attribute_names("#s", "status")
        .send()
        .await
        .ok()?;
    let text = out.item()?.get("status")?.as_s().ok()?.clone();
    serde_json::from_value(serde_json::Value::String(text)).ok()
}

/// Cancels each order of `chosen` through the API at its point, while the pipeline runs, until
/// each has an answer (or `timeout`): 200/202 cancelled, 409 an order that ended without a sale
/// (or a cancel's point it never reached). A 404 (not stored yet) or 503 is asked again.
pub async fn cancel_at_points(
    pipeline: &LocalPipeline,
    chosen: &BTreeMap<String, Point>,
    timeout: Duration,
) -> BTreeMap<String, Cancel> {
    let url = pipeline
        .stack
        .api_url
        .clone()
        .expect("the stack's API is served");
    let started = Instant::now();
    let mut answered: BTreeMap<String, Cancel> = BTreeMap::new();
    while answered.len() < chosen.len() && started.elapsed() < timeout {
        for (id, point) in chosen {
            if answered.contains_key(id) {
                continue;
            }
            // "As soon as it is stored": the cancel itself asks (404 until the intake stored
            // it), without a read first: the pipeline reserves within about a second of the
            // store, and a read of every chosen order before each cancel took longer than that.
            let seen = match point {
                Point::Stored => OrderStatus::Accepted,
                _ => match status_of(pipeline, id).await {
                    Some(seen) => seen,
                    None => continue,
                },
            };
            let ready = match point {
                Point::Stored => true,
                Point::Reserved => seen != OrderStatus::Accepted,
                Point::Ended => order_domain::is_terminal(seen) || seen == OrderStatus::Failed,
            };
            if !ready {
                continue;
            }
            let Ok(answer) = order_local::http::send(
                "POST",
                &format!("{url}/orders/{id}/cancel"),
                None,
                &[],
                None,
            )
            .await
            else {
                continue;
            };
            if matches!(answer.status, 200 | 202 | 409) {
                answered.insert(
                    id.clone(),
                    Cancel {
                        point: *point,
                        seen,
                        status: answer.status,
                    },
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answered
}
