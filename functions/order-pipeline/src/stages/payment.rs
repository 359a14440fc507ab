//! The payment stage: an `InventoryReserved` event in, the order `PAID` or `PAYMENT_FAILED`.
//!
//! Before each call to the provider the attempt is claimed on the stored order: one conditional
//! update counts it (`paymentAttempts`) and holds the order for the claim's lease
//! (`paymentClaimUntil`), only while the order is RESERVED at the event's version and no other
//! attempt holds it, and returns the stored order. So a duplicate event never calls the
//! provider, even two copies handled at once (the second waits and comes back), and the charge
//! is the table's amount, currency and customer, never the event's. The provider is called with
//! the idempotency key
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
    format_timestamp, EventType, LifecycleEvent, OrderStatus, Payment, PaymentResult, ReservedLine,
};

use crate::ports::inventory::{Claim, PaymentStore, StockMove};
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
    /// How long an attempt holds the order: longer than the provider call can take (with the
    /// HTTP adapter's one repeat after a rotated key), so a claim ends only after its holder
    /// has answered, crashed or timed out.
    pub claim: Duration,
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
    /// Another delivery's attempt holds the order: the provider not called; the record comes
    /// back after `after` (the claim's end), and is then a duplicate or the next attempt.
    Held {
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
            PaymentOutcome::Held { .. } => "held_by_another_attempt",
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
            PaymentOutcome::Held { after } => Disposition::Later {
                reason: format!(
                    "another delivery's payment attempt holds the order for {}s more",
                    after.as_secs()
                ),
                action: "nothing to do: the event comes back when the claim ends, and is then a duplicate or the next attempt",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        Some(match self {
            PaymentOutcome::Paid { .. } => "PaymentsApproved",
            PaymentOutcome::Declined(_) => "PaymentsDeclined",
            PaymentOutcome::AttemptsUsedUp(_) => "PaymentsAttemptsUsedUp",
            PaymentOutcome::Retry { .. } => "PaymentsProviderUnavailable",
            PaymentOutcome::Held { .. } => "PaymentsHeld",
            PaymentOutcome::Duplicate => "EventsDuplicate",
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PaymentOutcome::Retry { after, .. } | PaymentOutcome::Held { after } => Some(*after),
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
        // The attempt is claimed on the stored order, which it charges and settles: the event
        // says which order and version, never the amount, currency, customer or units.
        let (attempt, order) = match self
            .store
            .claim_attempt(&event.order_id, event.version, self.settings.claim)
            .await?
        {
            Claim::Claimed { attempt, order } => (attempt, order),
            Claim::Held { left } => {
                return Ok(PaymentOutcome::Held {
                    after: left.max(Duration::from_secs(1)),
                })
            }
            Claim::MovedOn => return Ok(PaymentOutcome::Duplicate),
        };
        let lines = order.reservation.clone().unwrap_or_default();
        let amount = order.amount.clone().unwrap_or_default();
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
                    &lines,
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
        let (Some(currency), false) = (order.currency.clone(), amount.is_empty()) else {
            // Reserved before the catalogue priced every order in one currency: never charge
            // without both.
            let reason = format!(
                "the stored order has no {}: the provider was not called, nothing was charged",
                if amount.is_empty() {
                    "amount"
                } else {
                    "currency"
                }
            );
            let moved = self
                .fail(
                    event,
                    &lines,
                    record(PaymentResult::NoPrice, None, Some(reason.clone())),
                )
                .await?;
            if moved {
                tracing::warn!(reason, "PAYMENT_FAILED, the reservation is released");
            }
            return Ok(if moved {
                PaymentOutcome::Declined(reason)
            } else {
                PaymentOutcome::Duplicate
            });
        };
        let request = ChargeRequest {
            order_id: event.order_id.clone(),
            amount: amount.clone(),
            currency,
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
                        &lines,
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
                        &lines,
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
            Charge::Unavailable { reason } => {
                // The claim ends now, not at its lease: the next attempt is this event's,
                // after its backoff.
                if let Err(e) = self.store.release_claim(&event.order_id, attempt).await {
                    tracing::warn!(error = %e, "could not end the payment claim early: the next attempt waits for its lease");
                }
                Ok(PaymentOutcome::Retry {
                    reason,
                    attempt,
                    after: self.settings.backoff.after(attempt),
                })
            }
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

    /// RESERVED -> PAYMENT_FAILED with `payment`, releasing `lines` (the stored reservation).
    async fn fail(
        &self,
        event: &LifecycleEvent,
        lines: &[ReservedLine],
        payment: Payment,
    ) -> Result<bool, PortError> {
        let Some(mut write) = self.write(event, OrderStatus::PaymentFailed) else {
            return Ok(false);
        };
        write.payment = Some(payment);
        self.store.settle(&write, lines, StockMove::Release).await
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
