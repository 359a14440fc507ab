//! The simulated payment provider ([`SimulatedGateway`]), and [`Gateway`], which holds whichever
//! provider the configuration picks.

use order_domain::DECLINED_CUSTOMER_PREFIX;
use rust_decimal::Decimal;
use sha2::Digest;

use crate::adapters::payment_http::HttpGateway;
use crate::ports::payment::{Charge, ChargeRequest, Lookup, PaymentGateway};

/// The simulated provider: deterministic rules for demos and a stack without a provider.
/// - a customer id starting with `decline-` is declined;
/// - an amount above `decline_over` is declined;
/// - `unavailable_percent` of calls are unavailable, chosen by a hash of the order id and the
///   attempt (the same call answers the same way);
/// - anything else is approved with the payment id `sim_<hash of the idempotency key>`;
/// - a lookup finds the charge when an attempt up to the request's was approved (the same
///   rules, replayed), else no charge.
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
        let roll = sha2::Sha256::digest(format!("{}\n{}", request.order_id, request.attempt));
        if u32::from(roll[0]) * 100 / 256 < self.unavailable_percent {
            return Charge::Unavailable {
                reason: format!(
                    "provider unavailable (simulated: {}% of calls)",
                    self.unavailable_percent
                ),
            };
        }
        let id = sha2::Sha256::digest(request.idempotency_key.as_bytes());
        Charge::Approved {
            payment_id: format!(
                "sim_{}",
                id.iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        }
    }
}

impl PaymentGateway for SimulatedGateway {
    fn provider(&self) -> &'static str {
        "simulated"
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        self.decide(request)
    }

    async fn lookup(&self, request: &ChargeRequest) -> Lookup {
        let mut attempt = request.clone();
        for n in 1..=request.attempt.max(1) {
            attempt.attempt = n;
            match self.decide(&attempt) {
                Charge::Approved { payment_id } => return Lookup::Charged { payment_id },
                Charge::Declined { reason } => return Lookup::NoCharge { reason },
                Charge::Unavailable { .. } => {}
            }
        }
        Lookup::NoCharge {
            reason: "no simulated attempt was approved".into(),
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
}
