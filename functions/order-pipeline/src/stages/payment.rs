//! The payment stage: an `InventoryReserved` event in, the order `PAID` or `PAYMENT_FAILED`.
//!
//! Before each call to the provider the attempt is counted on the order (`paymentAttempts`,
//! conditional on the order still being RESERVED at the event's version, so a duplicate event
//! never calls the provider). The provider is called with the idempotency key
//! `<orderId>:payment`, so a retried call never charges twice. Then:
//! - approved → one transaction: `RESERVED → PAID` with the payment record, and the order's
//!   units moved from `reserved` to `sold`;
//! - declined → one transaction: `RESERVED → PAYMENT_FAILED` with the reason, and the units
//!   released (`reserved → available`);
//! - unavailable → the record fails and comes back after a backoff that doubles with each
//!   attempt; once the configured attempts are used up, `PAYMENT_FAILED` + release.
//!
//! [`PaymentDlqStage`](crate::stages::payment_dlq::PaymentDlqStage) handles what reaches the
//! stage's DLQ: `RESERVED → PAYMENT_FAILED` + release, nothing for an order already past
//! RESERVED.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use order_domain::{
    format_timestamp, EventType, LifecycleEvent, OrderStatus, Payment, PaymentResult,
};

use crate::ports::inventory::{PaymentStore, StockMove};
use crate::ports::orders::TransitionWrite;
use crate::ports::payment::{idempotency_key, Charge, ChargeRequest, PaymentGateway};
use crate::ports::PortError;
use crate::runtime::config::Backoff;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{Disposition, Outcome};

/// The payment stage's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentSettings {
    /// Calls to the provider before an order that stays unavailable is PAYMENT_FAILED.
    pub max_attempts: u32,
    /// When an unavailable attempt comes back: doubling per attempt.
    pub backoff: Backoff,
}

/// The payment stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid {
        payment_id: String,
    },
    Declined(String),
    /// Unavailable on the last allowed attempt: PAYMENT_FAILED.
    AttemptsUsedUp(String),
    /// Unavailable: the record fails and comes back after `after`.
    Retry {
        reason: String,
        attempt: u32,
        after: Duration,
    },
    /// The order is past RESERVED: nothing written, the provider not called.
    Duplicate,
}

impl Outcome for PaymentOutcome {
    fn label(&self) -> &'static str {
        match self {
            PaymentOutcome::Paid { .. } => "paid",
            PaymentOutcome::Declined(_) => "declined",
            PaymentOutcome::AttemptsUsedUp(_) => "attempts_used_up",
            PaymentOutcome::Retry { .. } => "provider_unavailable",
            PaymentOutcome::Duplicate => "duplicate",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            PaymentOutcome::Paid { .. }
            | PaymentOutcome::Declined(_)
            | PaymentOutcome::AttemptsUsedUp(_)
            | PaymentOutcome::Duplicate => Disposition::Done,
            PaymentOutcome::Retry {
                reason, attempt, ..
            } => Disposition::Later {
                reason: format!("payment provider unavailable on attempt {attempt}: {reason}"),
                action: "the attempt comes back after its backoff; if every payment fails, check the provider's status and the payment API key",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        Some(match self {
            PaymentOutcome::Paid { .. } => "PaymentsApproved",
            PaymentOutcome::Declined(_) => "PaymentsDeclined",
            PaymentOutcome::AttemptsUsedUp(_) => "PaymentsAttemptsUsedUp",
            PaymentOutcome::Retry { .. } => "PaymentsProviderUnavailable",
            PaymentOutcome::Duplicate => "EventsDuplicate",
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PaymentOutcome::Retry { after, .. } => Some(*after),
            _ => None,
        }
    }
}

/// The payment stage.
pub struct PaymentStage<S, G> {
    store: S,
    gateway: G,
    settings: PaymentSettings,
}

impl<S: PaymentStore, G: PaymentGateway> PaymentStage<S, G> {
    pub fn new(store: S, gateway: G, settings: PaymentSettings) -> Self {
        Self {
            store,
            gateway,
            settings,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    async fn pay(&self, event: &LifecycleEvent) -> Result<PaymentOutcome, PortError> {
        let order = &event.order;
        let Some(attempt) = self
            .store
            .count_attempt(&event.order_id, event.version)
            .await?
        else {
            return Ok(PaymentOutcome::Duplicate);
        };
        let amount = order.amount.clone().unwrap_or_else(|| "0".into());
        let record =
            |result: PaymentResult, payment_id: Option<String>, reason: Option<String>| Payment {
                result,
                provider: Some(self.gateway.provider().to_string()),
                payment_id,
                amount: amount.clone(),
                currency: order.currency.clone(),
                attempts: Some(attempt),
                reason,
            };
        if attempt > self.settings.max_attempts {
            // Counted attempts without an answer (crashes after counting): give up.
            let reason = format!(
                "{} attempts counted, at most {} allowed",
                attempt - 1,
                self.settings.max_attempts
            );
            return self
                .fail(
                    event,
                    record(PaymentResult::AttemptsUsedUp, None, Some(reason.clone())),
                )
                .await
                .map(|moved| {
                    if moved {
                        PaymentOutcome::AttemptsUsedUp(reason)
                    } else {
                        PaymentOutcome::Duplicate
                    }
                });
        }
        let request = ChargeRequest {
            order_id: event.order_id.clone(),
            amount: amount.clone(),
            currency: order.currency.clone(),
            customer_id: order.customer_id.clone(),
            idempotency_key: idempotency_key(&event.order_id),
            attempt,
        };
        match self.gateway.charge(&request).await {
            Charge::Approved { payment_id } => {
                let Some(mut write) = self.write(event, OrderStatus::Paid) else {
                    return Ok(PaymentOutcome::Duplicate);
                };
                write.payment = Some(record(
                    PaymentResult::Approved,
                    Some(payment_id.clone()),
                    None,
                ));
                let lines = order.reservation.clone().unwrap_or_default();
                Ok(
                    if self.store.settle(&write, &lines, StockMove::Sell).await? {
                        tracing::info!(payment_id, attempt, "payment approved");
                        PaymentOutcome::Paid { payment_id }
                    } else {
                        PaymentOutcome::Duplicate
                    },
                )
            }
            Charge::Declined { reason } => {
                let moved = self
                    .fail(
                        event,
                        record(PaymentResult::Declined, None, Some(reason.clone())),
                    )
                    .await?;
                if moved {
                    tracing::info!(
                        reason,
                        attempt,
                        "payment declined: the reservation is released"
                    );
                }
                Ok(if moved {
                    PaymentOutcome::Declined(reason)
                } else {
                    PaymentOutcome::Duplicate
                })
            }
            Charge::Unavailable { reason } if attempt >= self.settings.max_attempts => {
                let reason =
                    format!("provider unavailable on all {attempt} attempts; last: {reason}");
                let moved = self
                    .fail(
                        event,
                        record(PaymentResult::AttemptsUsedUp, None, Some(reason.clone())),
                    )
                    .await?;
                if moved {
                    tracing::warn!(
                        reason,
                        "payment attempts used up: PAYMENT_FAILED, the reservation is released"
                    );
                }
                Ok(if moved {
                    PaymentOutcome::AttemptsUsedUp(reason)
                } else {
                    PaymentOutcome::Duplicate
                })
            }
            Charge::Unavailable { reason } => Ok(PaymentOutcome::Retry {
                reason,
                attempt,
                after: self.settings.backoff.after(attempt),
            }),
        }
    }

    fn write(&self, event: &LifecycleEvent, to: OrderStatus) -> Option<TransitionWrite> {
        TransitionWrite::new(
            &event.order_id,
            OrderStatus::Reserved,
            to,
            event.version,
            format_timestamp(Utc::now()),
        )
    }

    async fn fail(&self, event: &LifecycleEvent, payment: Payment) -> Result<bool, PortError> {
        let Some(mut write) = self.write(event, OrderStatus::PaymentFailed) else {
            return Ok(false);
        };
        write.payment = Some(payment);
        let lines = event.order.reservation.clone().unwrap_or_default();
        self.store.settle(&write, &lines, StockMove::Release).await
    }
}

impl<S: PaymentStore, G: PaymentGateway> Stage for PaymentStage<S, G> {
    const ACCEPTS: &'static [EventType] = &[EventType::InventoryReserved];
    const TEXTS: StageTexts = StageTexts {
        invalid: "not a lifecycle event",
        invalid_action: "find what published it to the order-events topic; the message goes to the payment DLQ",
        invalid_metric: Some("EventsInvalid"),
        unavailable: "payment store failed",
        unavailable_action: "SQS retries the event; if it persists check DynamoDB throttling and transaction conflicts",
    };
    type Outcome = PaymentOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        _record: &SqsMessage,
    ) -> Result<PaymentOutcome, PortError> {
        let outcome = self.pay(event).await?;
        if outcome == PaymentOutcome::Duplicate {
            tracing::debug!(
                "the order is past RESERVED: a duplicate event, the provider not called"
            );
        }
        Ok(outcome)
    }
}
