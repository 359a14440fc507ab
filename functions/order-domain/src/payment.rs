//! What the payment stage records on an order, and the notification a customer receives for a
//! terminal outcome.

use serde::{Deserialize, Serialize};

use crate::lifecycle::{EventType, LifecycleEvent};

/// The customer-id prefix that both the simulated gateway and the local fake provider decline
/// (documented in docs/contract.md, "Payment").
pub const DECLINED_CUSTOMER_PREFIX: &str = "decline-";

/// How a payment ended.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentResult {
    /// The provider approved the charge: the order is PAID.
    Approved,
    /// The provider declined: PAYMENT_FAILED at once.
    Declined,
    /// The provider stayed unavailable for every attempt: PAYMENT_FAILED.
    AttemptsUsedUp,
    /// The payment event could not be processed at all and reached the payment DLQ.
    DeadLettered,
}

/// The payment record on an order (`payment`), written with its PAID or PAYMENT_FAILED change.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub result: PaymentResult,
    /// `simulated` or `http`; absent when no provider was called (a dead letter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's payment id (approved charges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The amount charged or attempted, an exact decimal string.
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Calls made to the provider, this one included (absent for a dead letter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Why it failed: the provider's decline reason or the last unavailability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One message of the customer-notifications topic.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerNotification {
    /// `orderId:eventType`: the same outcome notified twice carries the same id.
    pub dedupe_id: String,
    pub event_type: EventType,
    pub order_id: String,
    pub customer_id: String,
    /// A short text for the customer.
    pub text: String,
    pub event: LifecycleEvent,
}

/// The customer's notification for a terminal outcome's event; `None` for other events.
pub fn notification_for(event: &LifecycleEvent) -> Option<CustomerNotification> {
    let id = &event.order_id;
    let order = &event.order;
    let money = |amount: Option<&str>| match (amount, order.currency.as_deref()) {
        (Some(a), Some(c)) => format!("{a} {c}"),
        (Some(a), None) => a.to_string(),
        (None, _) => "the amount".to_string(),
    };
    let text = match event.event_type {
        EventType::PaymentSucceeded => format!(
            "Your order {id} is confirmed: {} was charged{}.",
            money(order.amount.as_deref()),
            order
                .payment
                .as_ref()
                .and_then(|p| p.payment_id.as_deref())
                .map(|p| format!(" (payment {p})"))
                .unwrap_or_default()
        ),
        EventType::OrderRejected => format!(
            "Your order {id} could not be accepted: {}. Nothing was charged.",
            order
                .rejection
                .as_ref()
                .map(|r| r.reason.as_str())
                .unwrap_or("it could not be fulfilled")
        ),
        EventType::PaymentFailed => format!(
            "Your order {id} was cancelled: the payment of {} did not go through ({}).",
            money(order.amount.as_deref()),
            order
                .payment
                .as_ref()
                .and_then(|p| p.reason.as_deref())
                .unwrap_or("payment failed")
        ),
        _ => return None,
    };
    Some(CustomerNotification {
        dedupe_id: format!("{id}:{}", event.event_type.as_str()),
        event_type: event.event_type,
        order_id: id.clone(),
        customer_id: order.customer_id.clone(),
        text,
        event: event.clone(),
    })
}
