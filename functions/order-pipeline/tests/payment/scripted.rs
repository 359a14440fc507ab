//! A payment provider that answers from a script and records every request: the payment
//! stage's and its DLQ handler's gateway in these tests.

use std::sync::Mutex;
use std::time::Duration;

use order_pipeline::ports::payment::{
    Charge, ChargeRequest, Lookup, PaymentGateway, Refund, RefundLookup, RefundRequest,
};

/// A provider that answers from a script and records every request.
#[derive(Default)]
pub struct Scripted {
    answers: Mutex<Vec<Charge>>,
    requests: Mutex<Vec<ChargeRequest>>,
    /// How long each answer takes.
    pub delay: Mutex<Option<Duration>>,
    /// The lookups' answers, in order (no charge once they run out), and how many were asked.
    lookups: Mutex<Vec<Lookup>>,
    looked_up: Mutex<u32>,
}

impl Scripted {
    pub fn answering(answers: Vec<Charge>) -> Self {
        Self {
            answers: Mutex::new(answers.into_iter().rev().collect()),
            ..Default::default()
        }
    }

    /// The lookups answer `lookups`, in order.
    pub fn looking_up(&self, lookups: Vec<Lookup>) {
        *self.lookups.lock().unwrap() = lookups.into_iter().rev().collect();
    }

    pub fn lookups_asked(&self) -> u32 {
        *self.looked_up.lock().unwrap()
    }

    pub fn calls(&self) -> Vec<ChargeRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl PaymentGateway for Scripted {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        self.requests.lock().unwrap().push(request.clone());
        let delay = *self.delay.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.answers
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(Charge::Approved {
                payment_id: "pay-default".into(),
            })
    }

    async fn lookup(&self, _request: &ChargeRequest) -> Lookup {
        *self.looked_up.lock().unwrap() += 1;
        self.lookups
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(Lookup::NoCharge {
                reason: "404".into(),
            })
    }

    // The payment stages never refund: these exist because the port has them.
    async fn refund(&self, _request: &RefundRequest) -> Refund {
        Refund::NotSent {
            reason: "the scripted provider does not refund".into(),
        }
    }

    async fn lookup_refund(&self, _request: &RefundRequest) -> RefundLookup {
        RefundLookup::NoRefund {
            reason: "the scripted provider does not refund".into(),
        }
    }
}

pub fn unavailable() -> Charge {
    Charge::Unknown {
        reason: "503".into(),
    }
}
