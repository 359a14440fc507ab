//! The refund DLQ's stage: a `CancelRequested` event the refund stage could not settle (it kept
//! failing until SQS moved it to the DLQ) gets one last attempt, the stage's own
//! ([`RefundStage`]): no charge → CANCELLED, refunded → REFUNDED, refused → REFUND_FAILED. When
//! that attempt cannot decide either (the provider still gives no usable answer, a payment
//! attempt still holds the order, the tables fail), the order stays CANCELLING and the letter
//! stays in the DLQ, its alarm on, to be tried again when the DLQ shows it again: nothing is
//! released or marked failed while a charge or a refund may stand. Nothing for an order no
//! longer CANCELLING at the event's version.

use aws_lambda_events::event::sqs::SqsMessage;
use order_domain::{EventType, LifecycleEvent};

use crate::ports::inventory::PaymentStore;
use crate::ports::payment::PaymentGateway;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{receive_count, Disposition, Outcome};
use crate::stages::refund::{RefundOutcome, RefundStage};

/// What the refund DLQ stage did with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundDlqOutcome {
    /// The last attempt settled the cancel (CANCELLED, REFUNDED or REFUND_FAILED).
    Settled(RefundOutcome),
    /// The last attempt could not decide: the order stays CANCELLING, the letter in the DLQ.
    Unresolved(String),
    /// The order is no longer CANCELLING at the event's version: nothing to do.
    AlreadySettled,
}

impl Outcome for RefundDlqOutcome {
    fn label(&self) -> &'static str {
        match self {
            RefundDlqOutcome::Settled(o) => o.label(),
            RefundDlqOutcome::Unresolved(_) => "refund_unresolved",
            RefundDlqOutcome::AlreadySettled => "already_settled",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            RefundDlqOutcome::Unresolved(reason) => Disposition::Later {
                reason: format!("the last refund attempt could not decide: {reason}"),
                action: "the order stays CANCELLING; the letter stays in the refund DLQ and is tried again after the DLQ's visibility timeout; check the provider and the tables (docs/operations.md, Refunds)",
            },
            _ => Disposition::Done,
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            RefundDlqOutcome::Settled(o) => o.metric(),
            RefundDlqOutcome::Unresolved(_) => Some("RefundsUnresolved"),
            RefundDlqOutcome::AlreadySettled => None,
        }
    }
}

/// The refund DLQ's stage: the refund stage's last attempt, so no cancelled order waits
/// CANCELLING without an alarm.
pub struct RefundDlqStage<S, G> {
    stage: RefundStage<S, G>,
}

impl<S: PaymentStore, G: PaymentGateway> RefundDlqStage<S, G> {
    pub fn new(stage: RefundStage<S, G>) -> Self {
        Self { stage }
    }

    pub fn stage(&self) -> &RefundStage<S, G> {
        &self.stage
    }
}

impl<S: PaymentStore, G: PaymentGateway> Stage for RefundDlqStage<S, G> {
    const ACCEPTS: &'static [EventType] = &[EventType::CancelRequested];
    const TEXTS: StageTexts = StageTexts {
        invalid: "a dead letter that is not a lifecycle event",
        invalid_action:
            "it stays in the refund DLQ (its alarm stays on): read it, then delete it by hand",
        invalid_metric: None,
        unavailable: "the cancel could not be settled",
        unavailable_action: "SQS delivers the dead letter again; check the tables",
    };
    type Outcome = RefundDlqOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        record: &SqsMessage,
    ) -> Result<RefundDlqOutcome, PortError> {
        Ok(
            match self.stage.settle(event, receive_count(record)).await {
                Ok(RefundOutcome::Duplicate) => RefundDlqOutcome::AlreadySettled,
                Ok(RefundOutcome::Held { after }) => RefundDlqOutcome::Unresolved(format!(
                    "a payment attempt holds the order for {}s more",
                    after.as_secs()
                )),
                Ok(RefundOutcome::Retry { reason, .. }) => RefundDlqOutcome::Unresolved(reason),
                Ok(settled) => RefundDlqOutcome::Settled(settled),
                Err(e) => RefundDlqOutcome::Unresolved(e.to_string()),
            },
        )
    }
}
