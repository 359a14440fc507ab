//! The payment DLQ's stage: what reaches the payment stage's DLQ becomes
//! `RESERVED → PAYMENT_FAILED` with the stock released, and nothing for an order already past
//! RESERVED.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{
    format_timestamp, EventType, LifecycleEvent, OrderStatus, Payment, PaymentResult,
};

use crate::ports::inventory::{PaymentStore, StockMove};
use crate::ports::orders::TransitionWrite;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{receive_count, Disposition, Outcome};

/// What the payment DLQ stage did with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentDlqOutcome {
    /// RESERVED → PAYMENT_FAILED, the reservation released.
    PaymentFailed,
    /// The order is already past RESERVED: nothing to do.
    AlreadySettled,
}

impl Outcome for PaymentDlqOutcome {
    fn label(&self) -> &'static str {
        match self {
            PaymentDlqOutcome::PaymentFailed => "payment_failed",
            PaymentDlqOutcome::AlreadySettled => "already_settled",
        }
    }

    fn disposition(&self) -> Disposition {
        Disposition::Done
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            PaymentDlqOutcome::PaymentFailed => Some("PaymentsDeadLettered"),
            PaymentDlqOutcome::AlreadySettled => None,
        }
    }
}

/// The payment DLQ's stage: a payment event that could not be processed fails the payment and
/// releases its stock, so no order waits RESERVED forever.
pub struct PaymentDlqStage<S> {
    store: S,
}

impl<S: PaymentStore> PaymentDlqStage<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: PaymentStore> Stage for PaymentDlqStage<S> {
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
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Reserved,
            OrderStatus::PaymentFailed,
            event.version,
            format_timestamp(Utc::now()),
        ) else {
            return Ok(PaymentDlqOutcome::AlreadySettled);
        };
        // What to release is the stored reservation, never the event's copy.
        let Some(order) = self
            .store
            .stored_order(&event.order_id)
            .await?
            .filter(|o| o.status == OrderStatus::Reserved && o.version == event.version)
        else {
            return Ok(PaymentDlqOutcome::AlreadySettled);
        };
        let receives = receive_count(record);
        let reason = format!(
            "the payment event could not be processed and was dead-lettered (seen {receives} times in the DLQ)"
        );
        write.payment = Some(Payment {
            result: PaymentResult::DeadLettered,
            provider: None,
            payment_id: None,
            amount: order.amount.clone().unwrap_or_default(),
            currency: order.currency.clone(),
            attempts: None,
            reason: Some(reason.clone()),
        });
        let lines = order.reservation.clone().unwrap_or_default();
        if !self
            .store
            .settle(&write, &lines, StockMove::Release)
            .await?
        {
            return Ok(PaymentDlqOutcome::AlreadySettled);
        }
        tracing::error!(
            reason,
            action = "the order is PAYMENT_FAILED and its stock released; find why the payment stage failed on it (its log lines share this correlation_id)",
            "payment dead letter handled"
        );
        Ok(PaymentDlqOutcome::PaymentFailed)
    }
}
