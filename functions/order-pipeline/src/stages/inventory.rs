//! The inventory stage: an `OrderAccepted` event in, the order `RESERVED` or `REJECTED`.
//!
//! The order's lines and currency are read from the Orders table (consistently) at the event's
//! version, never from the event's body; an order no longer ACCEPTED at that version is a
//! duplicate event. The reservation is one `TransactWriteItems`: for every sku, `available - q` and
//! `reserved + q` on condition `available >= q`, and the order `ACCEPTED -> RESERVED` (at the
//! event's version) with its reservation and amount. The transaction's cancellation reasons say
//! what happened, per item: a stock condition → `REJECTED` naming the sku and what was short;
//! the order's condition → it moved on (a duplicate event, deleted); a conflict or throttling →
//! retried. The catalogue sets the price and the order gets exactly one currency
//! (`order_domain::plan_reservation`): an unknown sku, no catalogue price, a price the order
//! expected differently, a currency mismatch, too many skus, or stock already short by the
//! consistent read reject the order before any transaction. Every write is conditional, so a
//! redelivered event never reserves twice.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{
    format_timestamp, order_skus, plan_reservation, short_of_stock, Currency, EventType,
    LifecycleEvent, OrderStatus, Rejection,
};

use crate::ports::inventory::{InventoryStore, Reserve};
use crate::ports::orders::TransitionWrite;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{Disposition, Outcome};

/// The inventory stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryOutcome {
    Reserved,
    Rejected(Rejection),
    /// The stored order is not ACCEPTED at the event's version (already past it, or no such
    /// order): nothing written, the message deleted.
    Duplicate,
}

impl Outcome for InventoryOutcome {
    fn label(&self) -> &'static str {
        match self {
            InventoryOutcome::Reserved => "reserved",
            InventoryOutcome::Rejected(_) => "rejected",
            InventoryOutcome::Duplicate => "duplicate",
        }
    }

    fn disposition(&self) -> Disposition {
        Disposition::Done
    }

    fn metric(&self) -> Option<&'static str> {
        Some(match self {
            InventoryOutcome::Reserved => "OrdersReserved",
            InventoryOutcome::Rejected(_) => "OrdersRejected",
            InventoryOutcome::Duplicate => "EventsDuplicate",
        })
    }
}

/// The inventory stage.
pub struct InventoryStage<I> {
    store: I,
    /// The currency of an order that names none and whose skus name none (DEFAULT_CURRENCY).
    default_currency: Currency,
}

impl<I: InventoryStore> InventoryStage<I> {
    pub fn new(store: I, default_currency: Currency) -> Self {
        Self {
            store,
            default_currency,
        }
    }

    pub fn store(&self) -> &I {
        &self.store
    }

    /// The reservation of `event`'s order (the stage's decision; its DLQ handler's last attempt).
    pub(crate) async fn reserve(
        &self,
        event: &LifecycleEvent,
    ) -> Result<InventoryOutcome, PortError> {
        let now = format_timestamp(Utc::now());
        // The lines and currency reserved are the stored order's, never the event body's: a
        // forged or stale body chooses neither the skus, the units nor the currency.
        let order = match self.store.read(&event.order_id).await? {
            Some(order)
                if order.status == OrderStatus::Accepted && order.version == event.version =>
            {
                order
            }
            _ => return Ok(InventoryOutcome::Duplicate),
        };
        let stock = self.store.items(&order_skus(&order.items)).await?;
        let plan = match plan_reservation(
            &order.items,
            order.currency.as_deref(),
            self.default_currency,
            &stock,
        ) {
            Ok(plan) => plan,
            Err(rejection) => return self.reject(event, rejection, now).await,
        };
        // Short by the consistent read: reject without a transaction (a cancelled transaction
        // still costs its writes). Under a race the transaction's own condition decides.
        if let Some(short) = plan.lines.iter().find_map(|line| {
            let available = stock.get(&line.sku).map_or(0, |i| i.available);
            (available < u64::from(line.quantity)).then_some((line, available))
        }) {
            let (line, available) = short;
            return self
                .reject(
                    event,
                    short_of_stock(&line.sku, line.quantity, Some(available)),
                    now,
                )
                .await;
        }
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Accepted,
            OrderStatus::Reserved,
            event.version,
            now.clone(),
        ) else {
            return Ok(InventoryOutcome::Duplicate);
        };
        write.reservation = Some(plan.lines);
        write.amount = Some(plan.amount);
        write.currency = Some(plan.currency);
        match self.store.reserve(&write).await? {
            Reserve::Reserved => Ok(InventoryOutcome::Reserved),
            Reserve::OrderMovedOn => Ok(InventoryOutcome::Duplicate),
            Reserve::Short {
                sku,
                requested,
                available,
            } => {
                self.reject(event, short_of_stock(&sku, requested, available), now)
                    .await
            }
        }
    }

    /// `ACCEPTED → REJECTED` at the event's version with `rejection`.
    pub(crate) async fn reject(
        &self,
        event: &LifecycleEvent,
        rejection: Rejection,
        at: String,
    ) -> Result<InventoryOutcome, PortError> {
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Accepted,
            OrderStatus::Rejected,
            event.version,
            at,
        ) else {
            return Ok(InventoryOutcome::Duplicate);
        };
        write.rejection = Some(rejection.clone());
        Ok(if self.store.transition(&write).await? {
            InventoryOutcome::Rejected(rejection)
        } else {
            InventoryOutcome::Duplicate
        })
    }
}

impl<I: InventoryStore> Stage for InventoryStage<I> {
    const ACCEPTS: &'static [EventType] = &[EventType::OrderAccepted];
    const TEXTS: StageTexts = StageTexts {
        invalid: "not a lifecycle event",
        invalid_action: "find what published it to the order-events topic; the message is kept in the DLQ",
        invalid_metric: Some("EventsInvalid"),
        unavailable: "inventory store failed",
        unavailable_action: "SQS retries the event; if it persists check DynamoDB throttling and transaction conflicts",
    };
    type Outcome = InventoryOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        _record: &SqsMessage,
    ) -> Result<InventoryOutcome, PortError> {
        let outcome = self.reserve(event).await?;
        match &outcome {
            InventoryOutcome::Reserved => tracing::debug!("stock reserved"),
            InventoryOutcome::Rejected(r) => {
                tracing::info!(reason = %r.reason, sku = r.sku.as_deref().unwrap_or("-"), "order rejected")
            }
            InventoryOutcome::Duplicate => {
                tracing::debug!("the order is not ACCEPTED at the event's version: a duplicate event, nothing written")
            }
        }
        Ok(outcome)
    }
}
