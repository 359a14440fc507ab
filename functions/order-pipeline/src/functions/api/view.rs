//! The order as `GET /orders/{orderId}` answers it: the stored item's status, lines, amount
//! and currency, step timestamps, and why it ended where it did.

use std::collections::BTreeMap;

use order_domain::{OrderItem, OrderStatus};
use serde::Serialize;

/// The order as GET answers it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub status: &'static str,
    pub customer_id: String,
    pub lines: Vec<LineView>,
    pub item_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The amount the catalogue priced at the reservation, exact in the currency's minor unit;
    /// absent before (a line's own unitPrice is never summed into it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub created_at: String,
    /// When each step happened (`acceptedAt`, ...).
    pub steps: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureView>,
    /// Why the inventory rejected it (without `error`, which is for operators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<order_domain::Rejection>,
    /// How its payment ended (PAID, COMPLETED, PAYMENT_FAILED): the result and, for a failed
    /// payment, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
    /// The customer notification that could not be sent (notification-dlq).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_failure: Option<NotificationFailureView>,
    /// The cancel asked for: when, by whom, from which status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<order_domain::Cancellation>,
    /// The refund (REFUNDED, REFUND_FAILED): its result, amount and currency, and why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<order_domain::Refund>,
    pub correlation_id: String,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub result: order_domain::PaymentResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    pub reason: String,
    pub dead_lettered_at: String,
}

impl OrderView {
    pub fn of(item: &OrderItem) -> Self {
        // The amount the catalogue priced, once reserved: never a sum of the client's prices.
        let amount = item.amount.clone();
        let mut steps = BTreeMap::new();
        if let Some(at) = &item.accepted_at {
            steps.insert("acceptedAt", at.clone());
        }
        if let Some(f) = &item.failure {
            steps.insert("failedAt", f.dead_lettered_at.clone());
        }
        for (step, at) in [
            ("reservedAt", &item.reserved_at),
            ("rejectedAt", &item.rejected_at),
            ("paidAt", &item.paid_at),
            ("paymentFailedAt", &item.payment_failed_at),
            ("completedAt", &item.completed_at),
            ("cancelRequestedAt", &item.cancel_requested_at),
            ("cancelledAt", &item.cancelled_at),
            ("refundedAt", &item.refunded_at),
            ("refundFailedAt", &item.refund_failed_at),
        ] {
            if let Some(at) = at {
                steps.insert(step, at.clone());
            }
        }
        OrderView {
            order_id: item.order_id.clone(),
            status: match item.status {
                OrderStatus::Later => "PROCESSING",
                known => known.as_str(),
            },
            customer_id: item.customer_id.clone(),
            lines: item
                .items
                .iter()
                .map(|l| LineView {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.clone(),
                })
                .collect(),
            item_count: item.item_count,
            currency: item.currency.clone(),
            amount,
            created_at: item.created_at.clone(),
            steps,
            failure: item.failure.as_ref().map(|f| FailureView {
                reason: f.reason.clone(),
                dead_lettered_at: f.dead_lettered_at.clone(),
            }),
            rejection: item
                .rejection
                .clone()
                .map(order_domain::Rejection::without_error),
            payment: item.payment.as_ref().map(|p| PaymentView {
                result: p.result,
                reason: p.reason.clone(),
                payment_id: p.payment_id.clone(),
            }),
            notification_failure: item.notification_failure.as_ref().map(|f| {
                NotificationFailureView {
                    event_type: f.event_type,
                    failed_at: f.failed_at.clone(),
                }
            }),
            cancellation: item.cancellation.clone(),
            refund: item.refund.clone(),
            correlation_id: item.correlation_id.clone(),
            version: item.version,
        }
    }
}

/// A customer notification that could not be sent, as GET shows it: which one and when (its
/// error is for operators: on the Orders item and notification-dlq's ERROR line).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFailureView {
    pub event_type: order_domain::EventType,
    pub failed_at: String,
}
