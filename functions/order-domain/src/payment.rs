//! What the payment stage records on an order ([`Payment`], defined in [`crate::item`] with the
//! item it is part of, and re-exported here), and the notification a customer receives for a
//! terminal outcome.

use serde::{Deserialize, Serialize};

pub use crate::item::{Payment, PaymentResult};
use crate::lifecycle::{EventType, LifecycleEvent};

/// The customer-id prefix that both the simulated gateway and the local fake provider decline
/// (documented in docs/contract.md, "Payment").
pub const DECLINED_CUSTOMER_PREFIX: &str = "decline-";

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
    // "39.80 USD": the currency's minor unit and its code.
    let money = |amount: Option<&str>| match amount {
        Some(a) => crate::money::display_amount(a, order.currency.as_deref()),
        None => "the amount".to_string(),
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
        EventType::OrderCancelled => {
            format!("Your order {id} is cancelled, as you asked. Nothing was charged.")
        }
        EventType::OrderRefunded => format!(
            "Your order {id} is cancelled, as you asked: {} was refunded{}.",
            money(
                order
                    .refund
                    .as_ref()
                    .map(|r| r.amount.as_str())
                    .or(order.amount.as_deref())
            ),
            order
                .refund
                .as_ref()
                .and_then(|r| r.refund_id.as_deref())
                .map(|r| format!(" (refund {r})"))
                .unwrap_or_default()
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
