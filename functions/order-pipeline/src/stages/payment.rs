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
use crate::ports::payment::{idempotency_key, Charge, ChargeRequest, Lookup, PaymentGateway};
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
    /// The attempts are used up and the provider gave no usable answer to the lookup: the
    /// order stays RESERVED, its stock held, and the record comes back after `after`.
    Unresolved {
        reason: String,
        after: Duration,
    },
    /// Another delivery's attempt holds the order: the provider not called; the record comes
    /// back after `after` (the claim's end), and is then a duplicate or the next attempt.
    Held {
        after: Duration,
    },
    /// The order is past RESERVED: nothing written, the provider not called.
    Duplicate,
    /// The provider approved this attempt's charge, but the order had moved on to `status`
    /// without it (it should not happen: the refund stage waits for every attempt): an ERROR,
    /// the charge to be refunded by hand.
    Orphaned {
        payment_id: String,
        status: String,
    },
}

impl Outcome for PaymentOutcome {
    fn label(&self) -> &'static str {
        match self {
            PaymentOutcome::Paid { .. } => "paid",
            PaymentOutcome::Declined(_) => "declined",
            PaymentOutcome::AttemptsUsedUp(_) => "attempts_used_up",
            PaymentOutcome::Retry { .. } => "provider_unavailable",
            PaymentOutcome::Held { .. } => "held_by_another_attempt",
            PaymentOutcome::Unresolved { .. } => "payment_unresolved",
            PaymentOutcome::Duplicate => "duplicate",
            PaymentOutcome::Orphaned { .. } => "charge_for_an_order_moved_on",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            PaymentOutcome::Paid { .. }
            | PaymentOutcome::Declined(_)
            | PaymentOutcome::AttemptsUsedUp(_)
            | PaymentOutcome::Duplicate
            | PaymentOutcome::Orphaned { .. } => Disposition::Done,
            PaymentOutcome::Retry {
                reason, attempt, ..
            } => Disposition::Later {
                reason: format!("payment provider unavailable on attempt {attempt}: {reason}"),
                action: "the attempt comes back after its backoff; if every payment fails, check the provider's status and the payment API key",
            },
            PaymentOutcome::Unresolved { reason, .. } => Disposition::Later {
                reason: format!("the payment's outcome is unknown: {reason}"),
                action: "the order stays RESERVED with its stock held and is asked again; if the provider cannot answer lookups, check its status (PaymentsUnresolved)",
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
            PaymentOutcome::Unresolved { .. } => "PaymentsUnresolved",
            PaymentOutcome::Duplicate => "EventsDuplicate",
            PaymentOutcome::Orphaned { .. } => "PaymentsOrphaned",
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PaymentOutcome::Retry { after, .. }
            | PaymentOutcome::Held { after }
            | PaymentOutcome::Unresolved { after, .. } => Some(*after),
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
        let (Some(currency), false) = (order.currency.clone(), amount.is_empty()) else {
            // Reserved before the catalogue priced every order in one currency: never charge
            // without both (and no charge can stand: the provider takes none without them).
            let reason = format!(
                "the stored order has no {}: the provider was not called, nothing was charged",
                if amount.is_empty() {
                    "amount"
                } else {
                    "currency"
                }
            );
            let moved = settle_to(
                &self.store,
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
        if attempt > self.settings.max_attempts {
            // Counted attempts without a usable answer (crashes, a settle that kept failing):
            // no new call, but an earlier one may have charged.
            let reason = format!(
                "provider unavailable: {} attempts counted without a final answer, at most {} allowed",
                attempt - 1,
                self.settings.max_attempts
            );
            // The calls made: this delivery makes none.
            let failed = Payment {
                attempts: Some(attempt - 1),
                ..record(PaymentResult::AttemptsUsedUp, None, Some(reason.clone()))
            };
            return self.give_up(event, &lines, &request, failed, reason).await;
        }
        match self.gateway.charge(&request).await {
            Charge::Approved { payment_id } => {
                let paid = record(PaymentResult::Approved, Some(payment_id.clone()), None);
                if settle_to(&self.store, event, &lines, paid).await? {
                    tracing::info!(payment_id, attempt, "payment approved");
                    return Ok(PaymentOutcome::Paid { payment_id });
                }
                self.moved_on_with(event, payment_id).await
            }
            Charge::Declined { reason } => {
                let declined = record(PaymentResult::Declined, None, Some(reason.clone()));
                let moved = settle_to(&self.store, event, &lines, declined).await?;
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
            // Not sent or unknown: both come back after the backoff under the same key. The
            // last allowed attempt is not resolved at once: a charge sent by it may still be in
            // progress at the provider (no answer before the timeout, a 409 "key in use"), so a
            // lookup this moment could miss a charge that stands a moment later. The record comes
            // back after the longest backoff, and that delivery (an attempt past the last)
            // looks the charge up before the order fails.
            unanswered @ (Charge::NotSent { .. } | Charge::Unknown { .. })
                if attempt >= self.settings.max_attempts =>
            {
                self.release(&event.order_id, attempt).await;
                Ok(PaymentOutcome::Retry {
                    reason: format!(
                        "{}; the last allowed attempt: the charge is looked up when this comes back",
                        unanswered.unanswered().unwrap_or_default()
                    ),
                    attempt,
                    after: self.settings.backoff.max,
                })
            }
            unanswered @ (Charge::NotSent { .. } | Charge::Unknown { .. }) => {
                let reason = unanswered.unanswered().unwrap_or_default();
                self.release(&event.order_id, attempt).await;
                Ok(PaymentOutcome::Retry {
                    reason,
                    attempt,
                    after: self.settings.backoff.after(attempt),
                })
            }
        }
    }

    /// An approved charge whose order moved on meanwhile: fine when another delivery settled it
    /// PAID with this charge, or a cancel made it CANCELLING (the refund stage finds the charge
    /// and refunds it); anything else leaves a charge no order accounts for: an ERROR.
    async fn moved_on_with(
        &self,
        event: &LifecycleEvent,
        payment_id: String,
    ) -> Result<PaymentOutcome, PortError> {
        let now = self.store.read(&event.order_id).await?;
        let accounted = now.as_ref().is_some_and(|o| {
            o.status == OrderStatus::Cancelling
                || o.payment.as_ref().and_then(|p| p.payment_id.as_deref())
                    == Some(payment_id.as_str())
        });
        if accounted {
            return Ok(PaymentOutcome::Duplicate);
        }
        let status = now.map_or("not stored", |o| o.status.as_str()).to_string();
        tracing::error!(payment_id, status, "the provider approved a charge for an order that moved on without it: refund it at the provider (key <orderId>:payment) and report it (docs/operations.md, Payments)");
        Ok(PaymentOutcome::Orphaned { payment_id, status })
    }

    /// Ends this attempt's claim now, not at its lease: the next attempt is this event's,
    /// after its backoff.
    async fn release(&self, order_id: &str, attempt: u32) {
        if let Err(e) = self.store.release_claim(order_id, attempt).await {
            tracing::warn!(error = %e, "could not end the payment claim early: the next attempt waits for its lease");
        }
    }

    /// The attempts are used up: the provider is asked whether a charge stands before the
    /// order fails ([`resolve`]).
    async fn give_up(
        &self,
        event: &LifecycleEvent,
        lines: &[ReservedLine],
        request: &ChargeRequest,
        failed: Payment,
        reason: String,
    ) -> Result<PaymentOutcome, PortError> {
        Ok(
            match resolve(&self.store, &self.gateway, event, lines, request, failed).await? {
                Resolved::Paid { payment_id } => PaymentOutcome::Paid { payment_id },
                Resolved::Failed => {
                    tracing::warn!(
                        reason,
                        "payment attempts used up and the provider holds no charge: PAYMENT_FAILED, the reservation is released"
                    );
                    PaymentOutcome::AttemptsUsedUp(reason)
                }
                Resolved::MovedOn => PaymentOutcome::Duplicate,
                Resolved::Unknown { reason } => {
                    self.release(&event.order_id, request.attempt).await;
                    PaymentOutcome::Unresolved {
                        reason,
                        after: self.settings.backoff.max,
                    }
                }
            },
        )
    }
}

/// What [`resolve`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The provider holds the charge: RESERVED → PAID, the units sold.
    Paid { payment_id: String },
    /// No charge stands: RESERVED → PAYMENT_FAILED, the units released.
    Failed,
    /// The order is past RESERVED at that version: nothing written.
    MovedOn,
    /// The provider gave no usable answer: nothing written, the order stays RESERVED.
    Unknown { reason: String },
}

/// Before an order fails for any cause but a decline, asks the provider for `request`'s charge
/// by its idempotency key and settles by the answer: a standing charge → PAID (with its
/// payment id, `attempts` and a reason saying it was found by lookup); none → PAYMENT_FAILED
/// with `failed`; no usable answer → nothing, so stock is never released while a charge may
/// stand. The payment stage and the payment DLQ both end an order this way.
pub async fn resolve<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    event: &LifecycleEvent,
    lines: &[ReservedLine],
    request: &ChargeRequest,
    failed: Payment,
) -> Result<Resolved, PortError> {
    match gateway.lookup(request).await {
        Lookup::Charged { payment_id } => {
            let paid = Payment {
                result: PaymentResult::Approved,
                payment_id: Some(payment_id.clone()),
                reason: Some(format!(
                    "found by lookup after: {}",
                    failed.reason.as_deref().unwrap_or("no usable answer")
                )),
                ..failed
            };
            Ok(if settle_to(store, event, lines, paid).await? {
                tracing::warn!(
                    payment_id,
                    "the provider holds the charge although no attempt had a usable answer: PAID"
                );
                Resolved::Paid { payment_id }
            } else {
                Resolved::MovedOn
            })
        }
        Lookup::NoCharge { reason } => {
            let failed = Payment {
                reason: Some(format!(
                    "{}; the provider holds no charge ({reason})",
                    failed.reason.as_deref().unwrap_or("failed")
                )),
                ..failed
            };
            Ok(if settle_to(store, event, lines, failed).await? {
                Resolved::Failed
            } else {
                Resolved::MovedOn
            })
        }
        Lookup::Unknown { reason } => {
            tracing::warn!(
                reason,
                "the payment's outcome is unknown (the lookup had no usable answer): the order stays RESERVED and is asked again"
            );
            Ok(Resolved::Unknown { reason })
        }
    }
}

/// RESERVED → PAID (an approved `payment`: the units sold) or PAYMENT_FAILED (any other: the
/// units released) at the event's version, with `payment`; `false` when the order moved on.
pub async fn settle_to<S: PaymentStore>(
    store: &S,
    event: &LifecycleEvent,
    lines: &[ReservedLine],
    payment: Payment,
) -> Result<bool, PortError> {
    let (to, stock) = match payment.result {
        PaymentResult::Approved => (OrderStatus::Paid, StockMove::Sell),
        _ => (OrderStatus::PaymentFailed, StockMove::Release),
    };
    let Some(mut write) = TransitionWrite::new(
        &event.order_id,
        OrderStatus::Reserved,
        to,
        event.version,
        format_timestamp(Utc::now()),
    ) else {
        return Ok(false);
    };
    write.payment = Some(payment);
    store.settle(&write, lines, stock).await
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
