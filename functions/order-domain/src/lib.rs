//! The order domain of the pipeline: the accepted payload forms and their validation, the
//! canonical order and its content hash, the Orders item, the decisions taken against a stored
//! item, and how a record is identified. Nothing here talks to AWS.

pub mod inventory;
pub mod item;
pub mod lifecycle;
pub mod money;
pub mod order;
pub mod parse;
pub mod payment;
pub mod record;

pub use inventory::{
    line_sku, order_skus, plan_reservation, short_of_stock, InventoryItem, ReservationPlan,
};
pub use item::{
    consumer_decision, dead_letter_decision, Cancellation, ConsumerDecision, DeadLetterDecision,
    Existing, Failure, NotificationFailure, OrderItem, OrderStatus, Provenance, Refund,
    RefundResult, Rejection, RejectionCode, ReservedLine, StoredLine, FOREIGN_CONTENT_HASH,
};
pub use lifecycle::{
    cancel_from, event_for, is_terminal, transition, EventOrder, EventType, LifecycleEvent,
    Transition, TRANSITIONS,
};
pub use money::{display_amount, Currency};
pub use order::{format_timestamp, LineItem, Order};
pub use parse::{
    check_order_id, customer_id_field, normalized_text, order_id_field, parse_body, parse_order,
    parse_order_all, payload_form, EnvelopeInfo, InvalidOrder, ParsedBody, PayloadForm,
};
pub use payment::{
    notification_for, CustomerNotification, Payment, PaymentResult, DECLINED_CUSTOMER_PREFIX,
};
pub use record::{correlation_id, is_usable_correlation_id, CORRELATION_ID_MAX};
