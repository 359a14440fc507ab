//! The port to the payment provider: one idempotent charge per order, its lookup, and one
//! idempotent refund of it (with the refund's lookup). docs/contract.md, "The payment provider's
//! protocol".

use std::future::Future;
use std::sync::Arc;

/// One charge, as the gateway is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub order_id: String,
    /// Exact decimal string.
    pub amount: String,
    /// ISO 4217 code: no charge goes out without one.
    pub currency: String,
    pub customer_id: String,
    /// `<orderId>:payment`: the same order is the same charge, however often it is asked for.
    pub idempotency_key: String,
    /// This call's attempt number (1 for the first call).
    pub attempt: u32,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    Approved {
        payment_id: String,
    },
    Declined {
        reason: String,
    },
    /// The provider did not act on this call (no connection, the key refused, 409, 429, another
    /// 4xx): nothing was charged by it; safe to try again.
    NotSent {
        reason: String,
    },
    /// Sent, no usable answer (no answer in time, the connection dropped after sending, a 5xx,
    /// an answer that cannot be read): a charge may stand. Try again under the same key, and look
    /// the charge up before the order fails ([`PaymentGateway::lookup`]).
    Unknown {
        reason: String,
    },
}

impl Charge {
    /// The reason of a call without a final answer ([`Charge::NotSent`], [`Charge::Unknown`]),
    /// with which of the two it was; `None` for approved and declined.
    pub fn unanswered(&self) -> Option<String> {
        match self {
            Charge::NotSent { reason } => Some(format!("not sent: {reason}")),
            Charge::Unknown { reason } => Some(format!("outcome unknown: {reason}")),
            Charge::Approved { .. } | Charge::Declined { .. } => None,
        }
    }
}

/// What the provider's ledger holds for a charge's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The charge stands: the money was taken.
    Charged { payment_id: String },
    /// No charge stands: never made, or declined.
    NoCharge { reason: String },
    /// No usable answer: the outcome is still unknown.
    Unknown { reason: String },
}

/// One refund of an order's charge, as the gateway is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The charge refunded, as it was asked for: its idempotency key names it at the provider
    /// (and its attempt is the last one counted, for a provider that replays its rules).
    pub charge: ChargeRequest,
    /// Exact decimal string, in the charge's minor units (the charge's amount for a full refund).
    pub amount: String,
    /// ISO 4217 code: no refund goes out without one.
    pub currency: String,
    /// `<orderId>:refund`: the same order is the same refund, however often it is asked for.
    pub idempotency_key: String,
    /// This refund call's attempt number (1 for the first call).
    pub attempt: u32,
}

impl RefundRequest {
    /// The whole of `charge` refunded, on refund attempt `attempt`.
    pub fn full(charge: &ChargeRequest, attempt: u32) -> Self {
        Self {
            amount: charge.amount.clone(),
            currency: charge.currency.clone(),
            idempotency_key: refund_key(&charge.order_id),
            attempt,
            charge: charge.clone(),
        }
    }
}

/// What the provider answered to a refund; a call without a final answer says, as a charge's
/// does, whether it may have reached the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refund {
    /// Final: the money went back.
    Refunded { refund_id: String },
    /// Final: nothing refunded (no approved charge to refund, an amount or currency that does
    /// not match, the key used before with another amount).
    Refused { reason: String },
    /// The provider did not act on this call (no connection, the key refused, 409, 429, another
    /// 4xx): safe to try again.
    NotSent { reason: String },
    /// Sent, no usable answer (no answer in time, the connection dropped, a 5xx): the refund may
    /// stand; ask again with the same key ([`PaymentGateway::lookup_refund`]) or repeat it.
    Unknown { reason: String },
}

/// What the provider's ledger holds for a refund's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundLookup {
    /// The refund stands: the money went back.
    Refunded { refund_id: String },
    /// No refund stands: never made, or refused.
    NoRefund { reason: String },
    /// No usable answer: the outcome is still unknown.
    Unknown { reason: String },
}

/// The payment provider.
pub trait PaymentGateway: Send + Sync {
    /// `simulated` or `http`: written on the payment record and on every log line.
    fn provider(&self) -> &'static str;
    fn charge(&self, request: &ChargeRequest) -> impl Future<Output = Charge> + Send;
    /// Asks the provider whether `request`'s charge stands, by its idempotency key: before an
    /// order fails for any cause but a decline, since an attempt without a usable answer may
    /// have charged.
    fn lookup(&self, request: &ChargeRequest) -> impl Future<Output = Lookup> + Send;
    /// Refunds `request.amount` of `request.charge`, under the refund's own idempotency key: a
    /// repeat never refunds twice.
    fn refund(&self, request: &RefundRequest) -> impl Future<Output = Refund> + Send;
    /// Asks the provider whether `request`'s refund stands, by its idempotency key: how a
    /// [`Refund::Unknown`] is resolved, as [`PaymentGateway::lookup`] resolves a charge.
    fn lookup_refund(&self, request: &RefundRequest) -> impl Future<Output = RefundLookup> + Send;
}

/// The idempotency key of an order's payment.
pub fn idempotency_key(order_id: &str) -> String {
    format!("{order_id}:payment")
}

/// The idempotency key of an order's refund.
pub fn refund_key(order_id: &str) -> String {
    format!("{order_id}:refund")
}

impl<G: PaymentGateway> PaymentGateway for Arc<G> {
    fn provider(&self) -> &'static str {
        self.as_ref().provider()
    }

    fn charge(&self, request: &ChargeRequest) -> impl Future<Output = Charge> + Send {
        self.as_ref().charge(request)
    }

    fn lookup(&self, request: &ChargeRequest) -> impl Future<Output = Lookup> + Send {
        self.as_ref().lookup(request)
    }

    fn refund(&self, request: &RefundRequest) -> impl Future<Output = Refund> + Send {
        self.as_ref().refund(request)
    }

    fn lookup_refund(&self, request: &RefundRequest) -> impl Future<Output = RefundLookup> + Send {
        self.as_ref().lookup_refund(request)
    }
}
