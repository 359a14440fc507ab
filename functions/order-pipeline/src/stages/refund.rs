//! The refund stage: a `CancelRequested` event in, the order `CANCELLED`, `REFUNDED` or
//! `REFUND_FAILED`.
//!
//! A cancel asked of the API moves a RESERVED, PAID or COMPLETED order to CANCELLING (docs/
//! contract.md, "Cancel and refund"). This stage settles its money and stock from the stored
//! order at the event's version, never from the event's body:
//! - **Which charge stands.** A paid order's approved payment names it. A RESERVED order's may
//!   be in flight: a payment attempt counted before the cancel may still charge. The stage waits
//!   until that attempt's claim has ended (no attempt can start after the cancel: the payment
//!   stage claims only RESERVED orders), then asks the provider by the charge's idempotency key,
//!   as the payment stage does before an order fails. A charge found is refunded at once; "no
//!   charge" is trusted only once the last attempt ended more than the longest payment backoff
//!   ago (a charge it sent may still be in progress at the provider: the payment stage waits as
//!   long before its own last lookup). No usable answer → the record comes back after its
//!   backoff; nothing is released while a charge may stand.
//! - **No charge** → `CANCELLED`, the units released (`reserved → available`), in one
//!   transaction with the change.
//! - **A charge** → refunded in full under the idempotency key `<orderId>:refund` (a repeat never
//!   refunds twice). Refunded → `REFUNDED` with the refund record, the units back to available
//!   (`reserved` or `sold → available`), in one transaction. Refused (a final answer) →
//!   `REFUND_FAILED` with the reason, the units sold (the charge stands). No usable answer → the
//!   record comes back after its backoff, the same key asked again. Each call is counted on the
//!   order first (`refundAttempts`), so waits and lookups never use up calls; past the allowed
//!   calls (`maxAttempts`, the last one followed by the longest backoff, so a refund it sent has
//!   landed) the provider is asked whether the refund stands instead: it does → `REFUNDED`; none
//!   → `REFUND_FAILED`; no usable answer → asked again.
//!
//! [`RefundDlqStage`](crate::stages::refund_dlq::RefundDlqStage) makes a last attempt for what
//! reaches the stage's DLQ.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{
    format_timestamp, EventType, LifecycleEvent, OrderItem, OrderStatus, PaymentResult, Refund,
    RefundResult,
};

use crate::ports::inventory::{PaymentStore, StockMove};
use crate::ports::orders::TransitionWrite;
use crate::ports::payment::{
    idempotency_key, ChargeRequest, Lookup, PaymentGateway, Refund as Refunding, RefundLookup,
    RefundRequest,
};
use crate::ports::PortError;
use crate::runtime::config::Backoff;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{receive_count, Disposition, Outcome};

/// The refund stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// No charge stands: CANCELLED, the units released.
    Cancelled,
    /// The charge refunded: REFUNDED, the units back to available.
    Refunded { refund_id: String },
    /// The provider refused the refund: REFUND_FAILED.
    Refused(String),
    /// A payment attempt holds the order: looked at again once its claim ends.
    Held { after: Duration },
    /// The provider gave no usable answer (to the charge's lookup or the refund): the record
    /// comes back after `after`.
    Retry { reason: String, after: Duration },
    /// The order is no longer CANCELLING at that version: nothing written.
    Duplicate,
}

impl Outcome for RefundOutcome {
    fn label(&self) -> &'static str {
        match self {
            RefundOutcome::Cancelled => "cancelled",
            RefundOutcome::Refunded { .. } => "refunded",
            RefundOutcome::Refused(_) => "refund_refused",
            RefundOutcome::Held { .. } => "held_by_a_payment_attempt",
            RefundOutcome::Retry { .. } => "provider_unanswered",
            RefundOutcome::Duplicate => "duplicate",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            RefundOutcome::Cancelled
            | RefundOutcome::Refunded { .. }
            | RefundOutcome::Refused(_)
            | RefundOutcome::Duplicate => Disposition::Done,
            RefundOutcome::Held { after } => Disposition::Later {
                reason: format!(
                    "a payment attempt holds the order, or ended too recently for \"no charge\" to be final; looked at again in {}s",
                    after.as_secs()
                ),
                action: "nothing to do: the cancel is settled once a charge that attempt sent can no longer land",
            },
            RefundOutcome::Retry { reason, .. } => Disposition::Later {
                reason: format!("the provider gave no usable answer: {reason}"),
                action: "the order stays CANCELLING and is asked again after the backoff; if every refund fails, check the provider's status and the payment API key",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        Some(match self {
            RefundOutcome::Cancelled => "CancelsWithoutCharge",
            RefundOutcome::Refunded { .. } => "RefundsDone",
            RefundOutcome::Refused(_) => "RefundsRefused",
            RefundOutcome::Held { .. } => "RefundsHeld",
            RefundOutcome::Retry { .. } => "RefundsProviderUnanswered",
            RefundOutcome::Duplicate => "EventsDuplicate",
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            RefundOutcome::Held { after } | RefundOutcome::Retry { after, .. } => Some(*after),
            _ => None,
        }
    }
}

/// The refund stage.
pub struct RefundStage<S, G> {
    store: S,
    gateway: G,
    backoff: Backoff,
    /// Refund calls before a refund the provider never answers is looked up and settled.
    max_attempts: u32,
}

/// Which charge stands for a cancelled order, as far as the stage can tell.
enum Standing {
    Charge(String),
    NoCharge,
    /// Ask again later.
    Wait(RefundOutcome),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl<S: PaymentStore, G: PaymentGateway> RefundStage<S, G> {
    pub fn new(store: S, gateway: G, backoff: Backoff, max_attempts: u32) -> Self {
        Self {
            store,
            gateway,
            backoff,
            max_attempts,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    /// Settles the cancel of `event`'s order; `receive` is this delivery's number (for the
    /// backoff of a lookup without an answer).
    pub async fn settle(
        &self,
        event: &LifecycleEvent,
        receive: u32,
    ) -> Result<RefundOutcome, PortError> {
        let Some(order) = self.store.read(&event.order_id).await? else {
            return Ok(RefundOutcome::Duplicate);
        };
        if order.status != OrderStatus::Cancelling || order.version != event.version {
            return Ok(RefundOutcome::Duplicate);
        }
        let from = order
            .cancellation
            .as_ref()
            .map_or(OrderStatus::Reserved, |c| c.from);
        let lines = order.reservation.clone().unwrap_or_default();
        // Where the units are: a reserved order's still reserved, a paid one's sold.
        let back = if from == OrderStatus::Reserved {
            StockMove::Release
        } else {
            StockMove::Restock
        };
        let (Some(amount), Some(currency)) = (order.amount.clone(), order.currency.clone()) else {
            // The payment stage never charges without both: no charge can stand.
            return self.cancelled(event, &lines, back).await;
        };
        let charge = ChargeRequest {
            order_id: order.order_id.clone(),
            amount: amount.clone(),
            currency: currency.clone(),
            customer_id: order.customer_id.clone(),
            idempotency_key: idempotency_key(&order.order_id),
            attempt: order.payment_attempts.unwrap_or(0),
        };
        let payment_id = match self.standing(&order, &charge, receive).await {
            Standing::Charge(id) => id,
            Standing::NoCharge => return self.cancelled(event, &lines, back).await,
            Standing::Wait(outcome) => return Ok(outcome),
        };
        let record = |result, refund_id, reason| Refund {
            result,
            provider: Some(self.gateway.provider().to_string()),
            refund_id,
            payment_id: Some(payment_id.clone()),
            amount: amount.clone(),
            currency: currency.clone(),
            reason,
        };
        // Counted before the call, so a crash after it still counts it.
        let Some(attempt) = self
            .store
            .count_refund_attempt(&event.order_id, event.version)
            .await?
        else {
            return Ok(RefundOutcome::Duplicate);
        };
        let request = RefundRequest::full(&charge, attempt);
        let answer = if attempt > self.max_attempts {
            // No new call: ask whether one of the earlier ones refunded.
            match self.gateway.lookup_refund(&request).await {
                RefundLookup::Refunded { refund_id } => Refunding::Refunded { refund_id },
                RefundLookup::NoRefund { reason } => Refunding::Refused {
                    reason: format!(
                        "no usable answer to {} refund calls, and the provider holds no refund ({reason})",
                        self.max_attempts
                    ),
                },
                RefundLookup::Unknown { reason } => Refunding::Unknown {
                    reason: format!("the refund's lookup: {reason}"),
                },
            }
        } else {
            self.gateway.refund(&request).await
        };
        // After the last allowed call, the longest backoff: the lookup that follows must not miss
        // a refund still in progress.
        let retry = |reason: String| RefundOutcome::Retry {
            reason,
            after: if attempt >= self.max_attempts {
                self.backoff.max
            } else {
                self.backoff.after(attempt)
            },
        };
        match answer {
            Refunding::Refunded { refund_id } => {
                let refunded = record(RefundResult::Refunded, Some(refund_id.clone()), None);
                if self
                    .end(event, &lines, back, OrderStatus::Refunded, Some(refunded))
                    .await?
                {
                    tracing::info!(refund_id, "refunded: the units are back on sale");
                    return Ok(RefundOutcome::Refunded { refund_id });
                }
                // Moved on: another delivery settled it, or (it should not happen) it was marked
                // REFUND_FAILED while this refund was in progress.
                if let Some(now) = self.store.read(&event.order_id).await? {
                    if now.status == OrderStatus::RefundFailed {
                        tracing::error!(refund_id, "the provider refunded an order marked REFUND_FAILED: do not refund it by hand; correct the order's status (docs/operations.md, Refunds)");
                    }
                }
                Ok(RefundOutcome::Duplicate)
            }
            Refunding::Refused { reason } => {
                let refused = record(RefundResult::Refused, None, Some(reason.clone()));
                // The charge stands: the units are sold (a paid order's already are).
                let sold: &[_] = if from == OrderStatus::Reserved {
                    &lines
                } else {
                    &[]
                };
                if !self
                    .end(
                        event,
                        sold,
                        StockMove::Sell,
                        OrderStatus::RefundFailed,
                        Some(refused),
                    )
                    .await?
                {
                    return Ok(RefundOutcome::Duplicate);
                }
                tracing::error!(reason, "the provider refused the refund: REFUND_FAILED; refund the customer by hand (docs/operations.md, Refunds)");
                Ok(RefundOutcome::Refused(reason))
            }
            Refunding::NotSent { reason } => Ok(retry(format!("refund not sent: {reason}"))),
            Refunding::Unknown { reason } => Ok(retry(format!("refund outcome unknown: {reason}"))),
        }
    }

    /// No charge stands: CANCELLING → CANCELLED with the units moved back (`back`).
    async fn cancelled(
        &self,
        event: &LifecycleEvent,
        lines: &[order_domain::ReservedLine],
        back: StockMove,
    ) -> Result<RefundOutcome, PortError> {
        if !self
            .end(event, lines, back, OrderStatus::Cancelled, None)
            .await?
        {
            return Ok(RefundOutcome::Duplicate);
        }
        tracing::info!("cancelled: no charge stands, the units are released");
        Ok(RefundOutcome::Cancelled)
    }

    /// The charge that stands for `order`: its approved payment's, else (a RESERVED order with a
    /// payment attempt counted) the provider's answer once no attempt holds the order, "no
    /// charge" being final only the longest payment backoff after the last attempt ended.
    async fn standing(&self, order: &OrderItem, charge: &ChargeRequest, receive: u32) -> Standing {
        let approved = order
            .payment
            .as_ref()
            .filter(|p| p.result == PaymentResult::Approved)
            .and_then(|p| p.payment_id.clone());
        if let Some(id) = approved {
            return Standing::Charge(id);
        }
        if order.payment_attempts.unwrap_or(0) == 0 {
            // No attempt was ever counted, and none can start: the payment stage claims only
            // RESERVED orders.
            return Standing::NoCharge;
        }
        let now = now_ms();
        if let Some(until) = order.payment_claim_until.filter(|u| *u > now) {
            return Standing::Wait(RefundOutcome::Held {
                after: Duration::from_millis(until - now).max(Duration::from_secs(1)),
            });
        }
        let final_after = order
            .payment_claim_until
            .unwrap_or(0)
            .saturating_add(self.backoff.max.as_millis() as u64);
        match self.gateway.lookup(charge).await {
            Lookup::Charged { payment_id } => Standing::Charge(payment_id),
            Lookup::NoCharge { .. } if now < final_after => Standing::Wait(RefundOutcome::Held {
                after: Duration::from_millis(final_after - now).max(Duration::from_secs(1)),
            }),
            Lookup::NoCharge { .. } => Standing::NoCharge,
            Lookup::Unknown { reason } => Standing::Wait(RefundOutcome::Retry {
                reason: format!("the charge's lookup: {reason}"),
                after: self.backoff.after(receive),
            }),
        }
    }

    /// CANCELLING → `to` at the event's version with `refund`, and `stock` for `lines`, in one
    /// transaction; `false` when the order moved on (nothing written).
    async fn end(
        &self,
        event: &LifecycleEvent,
        lines: &[order_domain::ReservedLine],
        stock: StockMove,
        to: OrderStatus,
        refund: Option<Refund>,
    ) -> Result<bool, PortError> {
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Cancelling,
            to,
            event.version,
            format_timestamp(Utc::now()),
        ) else {
            return Ok(false);
        };
        write.refund = refund;
        self.store.settle(&write, lines, stock).await
    }
}

impl<S: PaymentStore, G: PaymentGateway> Stage for RefundStage<S, G> {
    const ACCEPTS: &'static [EventType] = &[EventType::CancelRequested];
    const TEXTS: StageTexts = StageTexts {
        invalid: "not a lifecycle event",
        invalid_action: "find what published it to the order-events topic; the message goes to the refund DLQ",
        invalid_metric: Some("EventsInvalid"),
        unavailable: "refund store failed",
        unavailable_action: "SQS retries the event; if it persists check DynamoDB throttling and transaction conflicts",
    };
    type Outcome = RefundOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        record: &SqsMessage,
    ) -> Result<RefundOutcome, PortError> {
        self.settle(event, receive_count(record)).await
    }
}
