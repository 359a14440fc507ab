//! In-memory adapters with the same conditional semantics as the AWS ones, and fault injection,
//! so the stages' and functions' logic is tested without a network: one file per port. Only in
//! tests and behind the `test-support` feature: no Lambda binary carries them.

pub mod inventory;
pub mod orders;
pub mod publish;
pub mod queue;

use order_domain::OrderItem;

use crate::ports::orders::TransitionWrite;

/// The fields `w` records, onto `item` (a field the change does not set keeps its value), as
/// the DynamoDB update's `SET`s do: the in-memory stores' one copy of that list.
pub(crate) fn record_fields(w: &TransitionWrite, item: &mut OrderItem) {
    let w = w.clone();
    item.reservation = w.reservation.or(item.reservation.take());
    item.amount = w.amount.or(item.amount.take());
    item.currency = w.currency.or(item.currency.take());
    item.rejection = w.rejection.or(item.rejection.take());
    item.payment = w.payment.or(item.payment.take());
    item.notification_failure = w.notification_failure.or(item.notification_failure.take());
    item.cancellation = w.cancellation.or(item.cancellation.take());
    item.refund = w.refund.or(item.refund.take());
}
