//! An Orders item's attributes as the intake writes them, built directly from the domain's
//! [`OrderItem`] rather than through serde_dynamo ([`item_values`], [`item_attributes`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use order_domain::{OrderItem, StoredLine};

use crate::ports::PortError;

/// An item's attributes in a fixed order (`orderId` first), named as the table stores them: the
/// parameters of the batched `INSERT`, without a map to hash them into.
pub type ItemValues = Vec<(&'static str, AttributeValue)>;

/// The item's key attribute.
pub(super) fn order_key(values: &ItemValues) -> Option<&AttributeValue> {
    values
        .iter()
        .find(|(name, _)| *name == "orderId")
        .map(|(_, v)| v)
}

/// The item as `PutItem` takes it: [`item_values`] in a map.
pub fn item_attributes(item: &OrderItem) -> Result<HashMap<String, AttributeValue>, PortError> {
    Ok(into_map(item_values(item)?))
}

pub(super) fn into_map(values: ItemValues) -> HashMap<String, AttributeValue> {
    values
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// The attributes of an Orders item, the same as `serde_dynamo::to_item(item)` gives (a test keeps
/// the two equal), built directly: serde_dynamo builds a map of its own attribute values and then
/// converts it into the SDK's, hashing and allocating every key twice, and on the intake's hot path
/// that was the largest part of a record's CPU (docs/benchmarks.md). A list, not a map: the
/// batched `INSERT` takes them as its parameters. The rarely set nested fields still go through
/// serde_dynamo.
pub fn item_values(item: &OrderItem) -> Result<ItemValues, PortError> {
    // Destructured without `..`: a field added to OrderItem does not compile until it is mapped.
    let OrderItem {
        order_id,
        customer_id,
        items,
        item_count,
        currency,
        created_at,
        created_at_given,
        accepted_at,
        status,
        content_hash,
        source_message_id,
        correlation_id,
        version,
        failure,
        reserved_at,
        rejected_at,
        paid_at,
        payment_failed_at,
        completed_at,
        cancel_requested_at,
        cancelled_at,
        refunded_at,
        refund_failed_at,
        reservation,
        amount,
        rejection,
        payment_attempts,
        payment,
        payment_claim_until,
        refund_attempts,
        notification_failure,
        cancellation,
        refund,
    } = item;
    let mut map = Attributes(Vec::with_capacity(16));
    map.s("orderId", order_id);
    map.s("customerId", customer_id);
    let lines = items
        .iter()
        .map(|line| {
            let StoredLine {
                sku,
                name,
                quantity,
                unit_price,
            } = line;
            // Straight into the map the SDK takes (no list of the line's values first).
            let mut m = HashMap::with_capacity(4);
            let mut text = |name: &str, value: &Option<String>| {
                if let Some(value) = value {
                    m.insert(name.to_string(), AttributeValue::S(value.clone()));
                }
            };
            text("sku", sku);
            text("name", name);
            text("unitPrice", unit_price);
            m.insert("quantity".to_string(), number(*quantity));
            AttributeValue::M(m)
        })
        .collect();
    map.0.push(("items", AttributeValue::L(lines)));
    map.n("itemCount", *item_count);
    map.opt_s("currency", currency);
    map.s("createdAt", created_at);
    map.0
        .push(("createdAtGiven", AttributeValue::Bool(*created_at_given)));
    map.opt_s("acceptedAt", accepted_at);
    map.s("status", status.as_str());
    map.s("contentHash", content_hash);
    map.s("sourceMessageId", source_message_id);
    map.s("correlationId", correlation_id);
    map.n("version", *version);
    map.nested("failure", failure)?;
    map.opt_s("reservedAt", reserved_at);
    map.opt_s("rejectedAt", rejected_at);
    map.opt_s("paidAt", paid_at);
    map.opt_s("paymentFailedAt", payment_failed_at);
    map.opt_s("completedAt", completed_at);
    map.opt_s("cancelRequestedAt", cancel_requested_at);
    map.opt_s("cancelledAt", cancelled_at);
    map.opt_s("refundedAt", refunded_at);
    map.opt_s("refundFailedAt", refund_failed_at);
    map.nested("reservation", reservation)?;
    map.opt_s("amount", amount);
    map.nested("rejection", rejection)?;
    if let Some(attempts) = payment_attempts {
        map.n("paymentAttempts", *attempts);
    }
    map.nested("payment", payment)?;
    if let Some(until) = payment_claim_until {
        map.n("paymentClaimUntil", *until);
    }
    if let Some(attempts) = refund_attempts {
        map.n("refundAttempts", *attempts);
    }
    map.nested("notificationFailure", notification_failure)?;
    map.nested("cancellation", cancellation)?;
    map.nested("refund", refund)?;
    Ok(map.0)
}

/// A number attribute (itoa writes it without the formatting machinery `to_string` runs).
fn number(value: impl itoa::Integer) -> AttributeValue {
    AttributeValue::N(itoa::Buffer::new().format(value).to_string())
}

/// An item's attributes being built; absent options are left out, as serde skips them.
struct Attributes(ItemValues);

impl Attributes {
    fn s(&mut self, name: &'static str, value: &str) {
        self.0.push((name, AttributeValue::S(value.to_string())));
    }

    fn opt_s(&mut self, name: &'static str, value: &Option<String>) {
        if let Some(value) = value {
            self.s(name, value);
        }
    }

    fn n(&mut self, name: &'static str, value: impl itoa::Integer) {
        self.0.push((name, number(value)));
    }

    fn nested<T: serde::Serialize>(
        &mut self,
        name: &'static str,
        value: &Option<T>,
    ) -> Result<(), PortError> {
        if let Some(value) = value {
            self.0.push((name, attribute(value)?));
        }
        Ok(())
    }
}

pub(super) fn attribute<T: serde::Serialize>(value: &T) -> Result<AttributeValue, PortError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| PortError::Fatal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use order_domain::{
        parse_body, Failure, NotificationFailure, OrderStatus, Payment, PaymentResult, Provenance,
        Rejection, ReservedLine,
    };

    fn serde_dynamo_item(item: &OrderItem) -> HashMap<String, AttributeValue> {
        serde_dynamo::to_item(item).unwrap()
    }

    fn accepted(body: &str) -> OrderItem {
        let (order, _) = parse_body(body).order.unwrap();
        let from = Provenance {
            message_id: "m-1".into(),
            correlation_id: "c-1".into(),
            sent_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        };
        OrderItem::accepted(order, from, Utc.timestamp_opt(1_700_000_001, 0).unwrap())
    }

    /// Protects: the intake's directly built item is the one serde_dynamo would write from the
    /// domain type, in every accepted form (lines with and without sku, name, price; currency and
    /// createdAt given or not).
    #[test]
    fn the_intake_item_is_the_serde_mapping_of_the_order_item() {
        for body in [
            r#"{"orderId":"A1","customerId":"U1","items":[{"sku":"S1","name":"Laptop","quantity":2,"unitPrice":"999.990"},{"name":"Cable","quantity":1}],"currency":"usd","createdAt":"2025-05-03T12:00:00.250+02:00"}"#,
            r#"{"orderId":"A2","userId":"U2","itemName":"Laptop","quantity":1,"status":"new","timestamp":"2025-05-03T12:00:00Z"}"#,
            r#"{"order_id":"A3","customer_id":"U3","items":[{"product_id":"P1","quantity":3,"unit_price":12}]}"#,
        ] {
            let item = accepted(body);
            assert_eq!(
                item_attributes(&item).unwrap(),
                serde_dynamo_item(&item),
                "{body}"
            );
        }
    }

    /// Protects: every later field (failure, timestamps of each step, reservation, amount,
    /// rejection, payment) is mapped as serde maps it, so an item written whole stays readable by
    /// every stage. The literal names every field: a new one must be set here to compile.
    #[test]
    fn an_item_with_every_field_set_maps_as_serde_maps_it() {
        let base = accepted(
            r#"{"orderId":"A4","customerId":"U4","items":[{"sku":"S1","quantity":1,"unitPrice":"5"}]}"#,
        );
        let full = OrderItem {
            order_id: base.order_id,
            customer_id: base.customer_id,
            items: base.items,
            item_count: base.item_count,
            currency: Some("EUR".into()),
            created_at: base.created_at,
            created_at_given: base.created_at_given,
            accepted_at: base.accepted_at,
            status: OrderStatus::PaymentFailed,
            content_hash: base.content_hash,
            source_message_id: base.source_message_id,
            correlation_id: base.correlation_id,
            version: 7,
            failure: Some(Failure {
                reason: "r".into(),
                dead_lettered_at: "2025-05-03T12:00:00Z".into(),
                receive_count: 3,
            }),
            reserved_at: Some("t1".into()),
            rejected_at: Some("t2".into()),
            paid_at: Some("t3".into()),
            payment_failed_at: Some("t4".into()),
            completed_at: Some("t5".into()),
            reservation: Some(vec![ReservedLine {
                sku: "S1".into(),
                quantity: 1,
            }]),
            amount: Some("5".into()),
            rejection: Some(Rejection {
                reason: "out of stock".into(),
                sku: Some("S1".into()),
                requested: Some(1),
                available: Some(0),
                ..Default::default()
            }),
            payment_attempts: Some(2),
            payment: Some(Payment {
                result: PaymentResult::Declined,
                provider: Some("simulated".into()),
                payment_id: None,
                amount: "5".into(),
                currency: Some("EUR".into()),
                attempts: Some(2),
                reason: Some("declined".into()),
            }),
            notification_failure: Some(NotificationFailure {
                event_type: order_domain::EventType::PaymentFailed,
                error: "e".into(),
                failed_at: "t6".into(),
            }),
            cancel_requested_at: Some("t7".into()),
            cancelled_at: Some("t8".into()),
            refunded_at: Some("t9".into()),
            refund_failed_at: Some("t10".into()),
            payment_claim_until: Some(1_700_000_000_000),
            refund_attempts: Some(3),
            cancellation: Some(order_domain::Cancellation {
                requested_at: "t7".into(),
                by: "customer".into(),
                from: OrderStatus::Paid,
            }),
            refund: Some(order_domain::Refund {
                result: order_domain::RefundResult::Refunded,
                provider: Some("http".into()),
                refund_id: Some("re_1".into()),
                payment_id: Some("pay_1".into()),
                amount: "5".into(),
                currency: "EUR".into(),
                reason: None,
            }),
        };
        assert_eq!(item_attributes(&full).unwrap(), serde_dynamo_item(&full));
    }
}
