//! The payment DLQ's stage: what reaches the payment stage's DLQ is resolved with the provider
//! the way the payment stage gives up ([`resolve`]): a standing charge → `PAID`; none →
//! `RESERVED → PAYMENT_FAILED` with the stock released; no usable answer → the order stays
//! RESERVED and the letter stays in the DLQ (its alarm on). Nothing for an order already past
//! RESERVED.

use aws_lambda_events::event::sqs::SqsMessage;
use order_domain::{EventType, LifecycleEvent, OrderStatus, Payment, PaymentResult};

use crate::ports::inventory::PaymentStore;
use crate::ports::payment::{idempotency_key, ChargeRequest, PaymentGateway};
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{receive_count, Disposition, Outcome};
use crate::stages::payment::{resolve, settle_to, Resolved};

/// What the payment DLQ stage did with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentDlqOutcome {
    /// RESERVED → PAYMENT_FAILED, the reservation released (no charge stands).
    PaymentFailed,
    /// The provider holds the charge: RESERVED → PAID.
    Paid,
    /// The provider gave no usable answer: the order stays RESERVED, the letter in the DLQ.
    Unresolved(String),
    /// The order is already past RESERVED: nothing to do.
    AlreadySettled,
}

impl Outcome for PaymentDlqOutcome {
    fn label(&self) -> &'static str {
        match self {
            PaymentDlqOutcome::PaymentFailed => "payment_failed",
            PaymentDlqOutcome::Paid => "paid_after_lookup",
            PaymentDlqOutcome::Unresolved(_) => "payment_unresolved",
            PaymentDlqOutcome::AlreadySettled => "already_settled",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            PaymentDlqOutcome::Unresolved(reason) => Disposition::Later {
                reason: format!("the payment's outcome is unknown: {reason}"),
                action: "the order stays RESERVED with its stock held; the letter stays in the payment DLQ and is asked about again after the DLQ's visibility timeout; check the provider, or settle it by hand (docs/operations.md, Payments)",
            },
            _ => Disposition::Done,
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            PaymentDlqOutcome::PaymentFailed => Some("PaymentsDeadLettered"),
            PaymentDlqOutcome::Paid => Some("PaymentsFoundByLookup"),
            PaymentDlqOutcome::Unresolved(_) => Some("PaymentsUnresolved"),
            PaymentDlqOutcome::AlreadySettled => None,
        }
    }
}

/// The payment DLQ's stage: a payment event that could not be processed is resolved with the
/// provider and settled, so no order waits RESERVED without an alarm.
pub struct PaymentDlqStage<S, G> {
    store: S,
    gateway: G,
}

impl<S: PaymentStore, G: PaymentGateway> PaymentDlqStage<S, G> {
    pub fn new(store: S, gateway: G) -> Self {
        Self { store, gateway }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: PaymentStore, G: PaymentGateway> Stage for PaymentDlqStage<S, G> {
    const ACCEPTS: &'static [EventType] = &[EventType::InventoryReserved];
    const TEXTS: StageTexts = StageTexts {
        invalid: "a dead letter that is not a lifecycle event",
        invalid_action:
            "it stays in the payment DLQ (its alarm stays on): read it, then delete it by hand",
        invalid_metric: None,
        unavailable: "payment store failed",
        unavailable_action: "SQS delivers the dead letter again; check DynamoDB throttling",
    };
    type Outcome = PaymentDlqOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        record: &SqsMessage,
    ) -> Result<PaymentDlqOutcome, PortError> {
        // What to release is the stored reservation, never the event's copy.
        let Some(order) = self
            .store
            .read(&event.order_id)
            .await?
            .filter(|o| o.status == OrderStatus::Reserved && o.version == event.version)
        else {
            return Ok(PaymentDlqOutcome::AlreadySettled);
        };
        let receives = receive_count(record);
        let reason = format!(
            "the payment event could not be processed and was dead-lettered (seen {receives} times in the DLQ)"
        );
        let lines = order.reservation.clone().unwrap_or_default();
        let failed = Payment {
            result: PaymentResult::DeadLettered,
            provider: None,
            payment_id: None,
            amount: order.amount.clone().unwrap_or_default(),
            currency: order.currency.clone(),
            attempts: order.payment_attempts,
            reason: Some(reason.clone()),
        };
        let called = order.payment_attempts.unwrap_or(0) > 0;
        let priced = order.amount.clone().zip(order.currency.clone());
        let outcome = match priced.filter(|_| called) {
            // No attempt was counted, or the order has no price: no charge can stand.
            None => {
                if settle_to(&self.store, event, &lines, failed).await? {
                    Resolved::Failed
                } else {
                    Resolved::MovedOn
                }
            }
            Some((amount, currency)) => {
                let request = ChargeRequest {
                    order_id: event.order_id.clone(),
                    amount,
                    currency,
                    customer_id: order.customer_id.clone(),
                    idempotency_key: idempotency_key(&event.order_id),
                    attempt: order.payment_attempts.unwrap_or(0),
                };
                let failed = Payment {
                    provider: Some(self.gateway.provider().to_string()),
                    ..failed
                };
                resolve(&self.store, &self.gateway, event, &lines, &request, failed).await?
            }
        };
        match outcome {
            Resolved::Failed => {}
            Resolved::Paid { .. } => return Ok(PaymentDlqOutcome::Paid),
            Resolved::MovedOn => return Ok(PaymentDlqOutcome::AlreadySettled),
            Resolved::Unknown { reason } => return Ok(PaymentDlqOutcome::Unresolved(reason)),
        }
        tracing::error!(
            reason,
            action = "the order is PAYMENT_FAILED and its stock released; find why the payment stage failed on it (its log lines share this correlation_id)",
            "payment dead letter handled"
        );
        Ok(PaymentDlqOutcome::PaymentFailed)
    }
}
