//! The port to the payment provider: one idempotent charge per order.

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
    /// Timeouts, 429, 5xx, connection failures: try again later.
    Unavailable {
        reason: String,
    },
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

/// The payment provider.
pub trait PaymentGateway: Send + Sync {
    /// `simulated` or `http`: written on the payment record and on every log line.
    fn provider(&self) -> &'static str;
    fn charge(&self, request: &ChargeRequest) -> impl Future<Output = Charge> + Send;
    /// Asks the provider whether `request`'s charge stands, by its idempotency key: before an
    /// order fails for any cause but a decline, since an attempt without a usable answer may
    /// have charged.
    fn lookup(&self, request: &ChargeRequest) -> impl Future<Output = Lookup> + Send;
}

/// The idempotency key of an order's payment.
pub fn idempotency_key(order_id: &str) -> String {
    format!("{order_id}:payment")
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
}
