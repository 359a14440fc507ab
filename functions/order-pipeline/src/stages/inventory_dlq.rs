//! The inventory DLQ's stage: an `OrderAccepted` event the inventory stage could not process
//! (it failed until SQS moved it to the DLQ) gets one last reservation attempt, the stage's own
//! ([`InventoryStage`]). When that attempt decides, its decision stands (RESERVED, or REJECTED
//! as the stage rejects). When it fails again because of the order's own data (an item that does
//! not map: [`PortError::Unreadable`], e.g. an Inventory item another system wrote), the order
//! goes `ACCEPTED → REJECTED` with code `dead_lettered`, that attempt's error recorded for
//! operators, and no stock reserved (the reservation is one transaction with the order's change,
//! so a failed one reserved nothing). Any other failure (throttling, conflicts, access denied, a
//! missing table) is no fault of the order: it stays ACCEPTED and the letter stays in the DLQ,
//! its alarm on, to be tried again when the DLQ shows it again, so an outage or a bad deploy
//! rejects nothing. Nothing for an order no longer ACCEPTED at the event's version.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{format_timestamp, EventType, LifecycleEvent, Rejection, RejectionCode};

use crate::ports::inventory::InventoryStore;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{receive_count, Disposition, Outcome};
use crate::stages::inventory::{InventoryOutcome, InventoryStage};

/// What the inventory DLQ stage did with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryDlqOutcome {
    /// The last attempt reserved the stock: the order is RESERVED and goes on.
    Reserved,
    /// The last attempt rejected the order as the stage does (out of stock, unknown sku, ...).
    Rejected(Rejection),
    /// The last attempt failed on the order's own data: REJECTED with code `dead_lettered`, no
    /// stock reserved.
    DeadLettered(Rejection),
    /// The last attempt failed for a cause outside the order: it stays ACCEPTED, the letter in
    /// the DLQ.
    Unresolved(String),
    /// The order is no longer ACCEPTED at the event's version: nothing to do.
    AlreadySettled,
}

impl Outcome for InventoryDlqOutcome {
    fn label(&self) -> &'static str {
        match self {
            InventoryDlqOutcome::Reserved => "reserved_on_last_attempt",
            InventoryDlqOutcome::Rejected(_) => "rejected",
            InventoryDlqOutcome::DeadLettered(_) => "dead_lettered",
            InventoryDlqOutcome::Unresolved(_) => "reservation_unresolved",
            InventoryDlqOutcome::AlreadySettled => "already_settled",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            InventoryDlqOutcome::Unresolved(reason) => Disposition::Later {
                reason: format!("the last reservation attempt failed: {reason}"),
                action: "the order stays ACCEPTED; the letter stays in the inventory DLQ and is tried again after the DLQ's visibility timeout; fix the cause (DynamoDB health, the function's role, the tables)",
            },
            _ => Disposition::Done,
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            InventoryDlqOutcome::Reserved => Some("OrdersReserved"),
            InventoryDlqOutcome::Rejected(_) => Some("OrdersRejected"),
            InventoryDlqOutcome::DeadLettered(_) => Some("ReservationsDeadLettered"),
            InventoryDlqOutcome::Unresolved(_) => Some("ReservationsUnresolved"),
            InventoryDlqOutcome::AlreadySettled => None,
        }
    }
}

/// The inventory DLQ's stage: no order waits ACCEPTED because its reservation kept failing.
pub struct InventoryDlqStage<I> {
    stage: InventoryStage<I>,
}

impl<I: InventoryStore> InventoryDlqStage<I> {
    /// `stage` is the inventory stage the letters came from, with its settings.
    pub fn new(stage: InventoryStage<I>) -> Self {
        Self { stage }
    }

    pub fn store(&self) -> &I {
        self.stage.store()
    }
}

impl<I: InventoryStore> Stage for InventoryDlqStage<I> {
    const ACCEPTS: &'static [EventType] = &[EventType::OrderAccepted];
    const TEXTS: StageTexts = StageTexts {
        invalid: "a dead letter that is not a lifecycle event",
        invalid_action:
            "it stays in the inventory DLQ (its alarm stays on): read it, then delete it by hand",
        invalid_metric: None,
        unavailable: "the order's rejection could not be written",
        unavailable_action: "SQS delivers the dead letter again; check the Orders table",
    };
    type Outcome = InventoryDlqOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        record: &SqsMessage,
    ) -> Result<InventoryDlqOutcome, PortError> {
        let error = match self.stage.reserve(event).await {
            Ok(InventoryOutcome::Reserved) => return Ok(InventoryDlqOutcome::Reserved),
            Ok(InventoryOutcome::Rejected(r)) => return Ok(InventoryDlqOutcome::Rejected(r)),
            Ok(InventoryOutcome::Duplicate) => return Ok(InventoryDlqOutcome::AlreadySettled),
            Err(PortError::Unreadable(error)) => error,
            Err(other) => return Ok(InventoryDlqOutcome::Unresolved(other.to_string())),
        };
        let receives = receive_count(record);
        let rejection = Rejection {
            code: Some(RejectionCode::DeadLettered),
            reason: "the stock could not be reserved: the order could not be processed".into(),
            error: Some(format!(
                "the inventory stage failed on the order until its event was dead-lettered (seen {receives} times in the DLQ), and the last attempt failed with: {error}"
            )),
            ..Rejection::default()
        };
        let now = format_timestamp(Utc::now());
        let rejected = match self.stage.reject(event, rejection, now).await? {
            InventoryOutcome::Rejected(rejection) => Some(rejection),
            // The condition failed: moved on, or this very rejection committed and its answer
            // was lost (the SDK's retry then fails the condition): the stored order says which.
            _ => self
                .store()
                .read(&event.order_id)
                .await?
                .filter(|o| o.version == event.version + 1)
                .and_then(|o| o.rejection)
                .filter(|r| r.code == Some(RejectionCode::DeadLettered)),
        };
        match rejected {
            Some(rejection) => {
                tracing::error!(
                    %error,
                    action = "the order is REJECTED (dead_lettered) with no stock reserved; find why the inventory stage failed on it (its log lines share this correlation_id) and fix the cause, e.g. an Inventory item without available/reserved/sold/version",
                    "inventory dead letter handled"
                );
                Ok(InventoryDlqOutcome::DeadLettered(rejection))
            }
            None => Ok(InventoryDlqOutcome::AlreadySettled),
        }
    }
}
