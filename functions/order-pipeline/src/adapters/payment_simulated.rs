//! The simulated payment provider ([`SimulatedGateway`]), and [`Gateway`], which holds whichever
//! provider the configuration picks.

use order_domain::DECLINED_CUSTOMER_PREFIX;
use rust_decimal::Decimal;
use sha2::Digest;

use crate::adapters::payment_http::HttpGateway;
use crate::ports::payment::{
    Charge, ChargeRequest, Lookup, PaymentGateway, Refund, RefundLookup, RefundRequest,
};

/// The simulated provider: deterministic rules for demos and a stack without a provider.
/// - a customer id starting with `decline-` is declined;
/// - an amount above `decline_over` is declined;
/// - `unavailable_percent` of calls are unavailable, chosen by a hash of the order id and the
///   attempt (the same call answers the same way);
/// - anything else is approved with the payment id `sim_<hash of the idempotency key>`;
/// - a lookup finds the charge when an attempt up to the request's was approved (the same
///   rules, replayed), else no charge;
/// - a refund is refused when the charge does not stand (its lookup, replayed) or the amount is
///   more than was charged or in another currency; `unavailable_percent` of refund calls, by a
///   hash of the order id, `refund` and the attempt, are not sent; anything else is refunded
///   with the refund id `simr_<hash of the refund's key>`;
/// - a refund's lookup finds it when a refund attempt up to the request's was refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedGateway {
    pub decline_over: Decimal,
    pub unavailable_percent: u32,
}

impl SimulatedGateway {
    pub fn decide(&self, request: &ChargeRequest) -> Charge {
        if request.customer_id.starts_with(DECLINED_CUSTOMER_PREFIX) {
            return Charge::Declined {
                reason: format!(
                    "card declined (simulated: customer id starts with {DECLINED_CUSTOMER_PREFIX})"
                ),
            };
        }
        match request.amount.parse::<Decimal>() {
            Ok(a) if a > self.decline_over => {
                return Charge::Declined {
                    reason: format!(
                        "amount {a} is over the limit of {} (simulated)",
                        self.decline_over
                    ),
                }
            }
            Ok(_) => {}
            Err(_) => {
                return Charge::Declined {
                    reason: format!("amount {:?} is not a decimal", request.amount),
                }
            }
        }
        if self.unavailable(&format!("{}\n{}", request.order_id, request.attempt)) {
            return Charge::NotSent {
                reason: self.unavailable_reason(),
            };
        }
        Charge::Approved {
            payment_id: simulated_id("sim", &request.idempotency_key),
        }
    }

    /// Whether the charge `request` names stands: the rules replayed for every attempt up to
    /// the request's.
    pub fn charged(&self, request: &ChargeRequest) -> Lookup {
        let mut attempt = request.clone();
        for n in 1..=request.attempt.max(1) {
            attempt.attempt = n;
            match self.decide(&attempt) {
                Charge::Approved { payment_id } => return Lookup::Charged { payment_id },
                Charge::Declined { reason } => return Lookup::NoCharge { reason },
                Charge::NotSent { .. } | Charge::Unknown { .. } => {}
            }
        }
        Lookup::NoCharge {
            reason: "no simulated attempt was approved".into(),
        }
    }

    /// The answer to `request`'s refund call.
    pub fn decide_refund(&self, request: &RefundRequest) -> Refund {
        if let Lookup::NoCharge { reason } | Lookup::Unknown { reason } =
            self.charged(&request.charge)
        {
            return Refund::Refused {
                reason: format!("nothing to refund (simulated: {reason})"),
            };
        }
        let (Ok(amount), Ok(charged)) = (
            request.amount.parse::<Decimal>(),
            request.charge.amount.parse::<Decimal>(),
        ) else {
            return Refund::Refused {
                reason: format!("amount {:?} is not a decimal", request.amount),
            };
        };
        if amount <= Decimal::ZERO
            || amount > charged
            || request.currency != request.charge.currency
        {
            return Refund::Refused {
                reason: format!(
                    "refund of {amount} {} does not fit the charge of {charged} {} (simulated)",
                    request.currency, request.charge.currency
                ),
            };
        }
        let order_id = &request.charge.order_id;
        if self.unavailable(&format!("{order_id}\nrefund\n{}", request.attempt)) {
            return Refund::NotSent {
                reason: self.unavailable_reason(),
            };
        }
        Refund::Refunded {
            refund_id: simulated_id("simr", &request.idempotency_key),
        }
    }

    /// Whether `text`'s call is one of the `unavailable_percent` that are unavailable.
    fn unavailable(&self, text: &str) -> bool {
        let roll = sha2::Sha256::digest(text.as_bytes());
        u32::from(roll[0]) * 100 / 256 < self.unavailable_percent
    }

    fn unavailable_reason(&self) -> String {
        format!(
            "provider unavailable (simulated: {}% of calls)",
            self.unavailable_percent
        )
    }
}

/// `{prefix}_<the first 8 bytes of the key's SHA-256, in hex>`.
fn simulated_id(prefix: &str, key: &str) -> String {
    let id = sha2::Sha256::digest(key.as_bytes());
    format!(
        "{prefix}_{}",
        id.iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

impl PaymentGateway for SimulatedGateway {
    fn provider(&self) -> &'static str {
        "simulated"
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        self.decide(request)
    }

    async fn lookup(&self, request: &ChargeRequest) -> Lookup {
        self.charged(request)
    }

    async fn refund(&self, request: &RefundRequest) -> Refund {
        self.decide_refund(request)
    }

    async fn lookup_refund(&self, request: &RefundRequest) -> RefundLookup {
        let mut attempt = request.clone();
        for n in 1..=request.attempt.max(1) {
            attempt.attempt = n;
            match self.decide_refund(&attempt) {
                Refund::Refunded { refund_id } => return RefundLookup::Refunded { refund_id },
                Refund::Refused { reason } => return RefundLookup::NoRefund { reason },
                Refund::NotSent { .. } | Refund::Unknown { .. } => {}
            }
        }
        RefundLookup::NoRefund {
            reason: "no simulated refund attempt was refunded".into(),
        }
    }
}

/// Either gateway, chosen by configuration at start-up.
pub enum Gateway {
    Simulated(SimulatedGateway),
    Http(Box<HttpGateway>),
}

impl PaymentGateway for Gateway {
    fn provider(&self) -> &'static str {
        match self {
            Gateway::Simulated(g) => g.provider(),
            Gateway::Http(g) => g.provider(),
        }
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        match self {
            Gateway::Simulated(g) => g.charge(request).await,
            Gateway::Http(g) => g.charge(request).await,
        }
    }

    async fn lookup(&self, request: &ChargeRequest) -> Lookup {
        match self {
            Gateway::Simulated(g) => g.lookup(request).await,
            Gateway::Http(g) => g.lookup(request).await,
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Refund {
        match self {
            Gateway::Simulated(g) => g.refund(request).await,
            Gateway::Http(g) => g.refund(request).await,
        }
    }

    async fn lookup_refund(&self, request: &RefundRequest) -> RefundLookup {
        match self {
            Gateway::Simulated(g) => g.lookup_refund(request).await,
            Gateway::Http(g) => g.lookup_refund(request).await,
        }
    }
}
