//! The payment provider's adapters, one test per answer: the simulated gateway's documented
//! rules, its lookup and refund replaying them, and how the HTTP adapter reads the provider's
//! charge, lookup and refund answers (docs/contract.md, "Payment"). The stage that calls them is
//! tested in payment/.

use order_pipeline::adapters::payment_http::{
    read_answer, read_lookup, read_refund, read_refund_lookup,
};
use order_pipeline::adapters::payment_simulated::SimulatedGateway;
use order_pipeline::ports::payment::{
    Charge, ChargeRequest, Lookup, PaymentGateway, Refund, RefundLookup, RefundRequest,
};
use rust_decimal::Decimal;

#[test]
fn simulated_gateway_follows_its_documented_rules() {
    let g = SimulatedGateway {
        decline_over: Decimal::from(100),
        unavailable_percent: 0,
    };
    let request = |customer: &str, amount: &str, attempt: u32| ChargeRequest {
        order_id: format!("O-{customer}-{amount}"),
        amount: amount.into(),
        currency: "USD".into(),
        customer_id: customer.into(),
        idempotency_key: "O:payment".into(),
        attempt,
    };
    assert!(matches!(
        g.decide(&request("decline-7", "1", 1)),
        Charge::Declined { .. }
    ));
    assert!(matches!(
        g.decide(&request("U1", "100.01", 1)),
        Charge::Declined { .. }
    ));
    let approved = g.decide(&request("U1", "100", 1));
    assert!(
        matches!(&approved, Charge::Approved { payment_id } if payment_id.starts_with("sim_")),
        "{approved:?}"
    );
    assert_eq!(
        approved,
        g.decide(&request("U1", "100", 2)),
        "same key, same payment id"
    );
    let flaky = SimulatedGateway {
        unavailable_percent: 30,
        ..g
    };
    let unavailable = (0..1000)
        .filter(|i| {
            matches!(
                flaky.decide(&ChargeRequest {
                    order_id: format!("O{i}"),
                    ..request("U1", "1", 1)
                }),
                Charge::NotSent { .. }
            )
        })
        .count();
    assert!(
        (200..400).contains(&unavailable),
        "about 30%: {unavailable}"
    );
}

/// Protects: the lookup protocol (docs/contract.md): `GET /charges/{key}` 200 approved → the
/// charge stands; 200 declined or 404 → no charge; anything else → unknown, never "no charge".
#[test]
fn lookup_answers_map_to_charged_no_charge_or_unknown() {
    assert_eq!(
        read_lookup(200, br#"{"status":"approved","paymentId":"ch_1"}"#),
        Lookup::Charged {
            payment_id: "ch_1".into()
        }
    );
    assert!(matches!(
        read_lookup(200, br#"{"status":"declined","reason":"no funds"}"#),
        Lookup::NoCharge { .. }
    ));
    assert!(matches!(read_lookup(404, b"{}"), Lookup::NoCharge { .. }));
    for status in [500, 503, 429, 401, 400, 409] {
        assert!(
            matches!(read_lookup(status, b"{}"), Lookup::Unknown { .. }),
            "{status}"
        );
    }
    assert!(matches!(
        read_lookup(200, br#"{"status":"approved"}"#),
        Lookup::Unknown { .. }
    ));
}

/// Protects: the simulated provider's lookup replays its rules: the charge stands when an
/// attempt up to the request's was approved, and not for a declined customer.
#[tokio::test]
async fn the_simulated_lookup_finds_what_the_simulated_charge_decided() {
    let always_down = SimulatedGateway {
        decline_over: Decimal::from(100),
        unavailable_percent: 100,
    };
    let up = SimulatedGateway {
        unavailable_percent: 0,
        ..always_down.clone()
    };
    let request = |customer: &str| ChargeRequest {
        order_id: "O-sim".into(),
        amount: "10".into(),
        currency: "USD".into(),
        customer_id: customer.into(),
        idempotency_key: "O-sim:payment".into(),
        attempt: 3,
    };
    assert!(matches!(
        up.lookup(&request("U1")).await,
        Lookup::Charged { payment_id } if payment_id.starts_with("sim_")
    ));
    assert!(matches!(
        always_down.lookup(&request("U1")).await,
        Lookup::NoCharge { .. }
    ));
    assert!(matches!(
        up.lookup(&request("decline-1")).await,
        Lookup::NoCharge { .. }
    ));
}

/// Protects: the simulated provider's refund replays its own rules (docs/contract.md): a
/// standing charge is refunded under a deterministic id, the same for every repeat; no charge
/// (declined, or every attempt unavailable), an amount over the charge or another currency is
/// refused; unavailable refund calls are "not sent", never refunded; the refund's lookup finds
/// the refund when an attempt up to the request's refunded.
#[tokio::test]
async fn the_simulated_refund_refunds_a_standing_charge_once_and_refuses_the_rest() {
    use order_pipeline::ports::payment::refund_key;
    let up = SimulatedGateway {
        decline_over: Decimal::from(100),
        unavailable_percent: 0,
    };
    let charge = |customer: &str| ChargeRequest {
        order_id: "O-ref".into(),
        amount: "10.00".into(),
        currency: "USD".into(),
        customer_id: customer.into(),
        idempotency_key: "O-ref:payment".into(),
        attempt: 1,
    };
    let full = RefundRequest::full(&charge("U1"), 1);
    assert_eq!(full.idempotency_key, refund_key("O-ref"));
    assert_eq!(full.idempotency_key, "O-ref:refund");
    assert_eq!(
        (full.amount.as_str(), full.currency.as_str()),
        ("10.00", "USD")
    );
    let refunded = up.refund(&full).await;
    assert!(
        matches!(&refunded, Refund::Refunded { refund_id } if refund_id.starts_with("simr_")),
        "{refunded:?}"
    );
    assert_eq!(
        up.refund(&RefundRequest {
            attempt: 2,
            ..full.clone()
        })
        .await,
        refunded,
        "a repeat is the same refund"
    );
    let refund_id = match &refunded {
        Refund::Refunded { refund_id } => refund_id.clone(),
        _ => unreachable!(),
    };
    assert_eq!(
        up.lookup_refund(&full).await,
        RefundLookup::Refunded { refund_id }
    );
    for refused in [
        RefundRequest::full(&charge("decline-1"), 1),
        RefundRequest {
            amount: "10.01".into(),
            ..full.clone()
        },
        RefundRequest {
            currency: "EUR".into(),
            ..full.clone()
        },
    ] {
        assert!(
            matches!(up.refund(&refused).await, Refund::Refused { .. }),
            "{refused:?}"
        );
        assert!(matches!(
            up.lookup_refund(&refused).await,
            RefundLookup::NoRefund { .. }
        ));
    }
    let down = SimulatedGateway {
        unavailable_percent: 100,
        ..up.clone()
    };
    assert!(
        matches!(down.refund(&full).await, Refund::Refused { .. }),
        "no attempt charged: nothing to refund"
    );
    // The charge stands (approved by a gateway that was up); every refund call is unavailable.
    let flaky = SimulatedGateway {
        unavailable_percent: 60,
        ..up
    };
    let not_sent = (0..200)
        .map(|i| {
            RefundRequest::full(
                &ChargeRequest {
                    order_id: format!("O{i}"),
                    ..charge("U1")
                },
                1,
            )
        })
        .filter(|r| matches!(flaky.decide_refund(r), Refund::NotSent { .. }))
        .filter(|r| matches!(flaky.charged(&r.charge), Lookup::Charged { .. }))
        .collect::<Vec<_>>();
    assert!(!not_sent.is_empty(), "some refund calls are unavailable");
    for r in &not_sent {
        assert!(
            matches!(flaky.lookup_refund(r).await, RefundLookup::NoRefund { .. }),
            "a refund not sent does not stand"
        );
    }
}

/// Protects: the refund protocol's answers (docs/contract.md): 2xx refunded → refunded; 2xx
/// refused, 402, 404 (no charge) and 422 (amount mismatch) → refused, final; 401, 403, 409, 429
/// and other 4xx → not sent (safe to retry); 5xx and an unreadable 2xx → unknown, never
/// "refused". The refund's lookup: refunded → stands; refused or 404 → no refund; else unknown.
#[test]
fn refund_answers_map_to_refunded_refused_not_sent_or_unknown() {
    assert_eq!(
        read_refund(201, br#"{"status":"refunded","refundId":"re_1"}"#),
        Refund::Refunded {
            refund_id: "re_1".into()
        }
    );
    assert!(matches!(
        read_refund(200, br#"{"status":"refused","reason":"nothing to refund"}"#),
        Refund::Refused { reason } if reason == "nothing to refund"
    ));
    for status in [402, 404, 422] {
        assert!(
            matches!(read_refund(status, b"{}"), Refund::Refused { .. }),
            "{status}"
        );
    }
    for status in [400, 401, 403, 409, 429] {
        assert!(
            matches!(read_refund(status, b"{}"), Refund::NotSent { .. }),
            "{status}"
        );
    }
    for status in [500, 502, 503] {
        assert!(
            matches!(read_refund(status, b"{}"), Refund::Unknown { .. }),
            "{status}"
        );
    }
    assert!(
        matches!(
            read_refund(201, br#"{"status":"refunded"}"#),
            Refund::Unknown { .. }
        ),
        "refunded without a refund id is not known to be refunded"
    );
    assert!(matches!(
        read_refund(200, b"garbage"),
        Refund::Unknown { .. }
    ));
    assert_eq!(
        read_refund_lookup(200, br#"{"status":"refunded","refundId":"re_1"}"#),
        RefundLookup::Refunded {
            refund_id: "re_1".into()
        }
    );
    assert!(matches!(
        read_refund_lookup(200, br#"{"status":"refused","reason":"x"}"#),
        RefundLookup::NoRefund { .. }
    ));
    assert!(matches!(
        read_refund_lookup(404, b"{}"),
        RefundLookup::NoRefund { .. }
    ));
    for status in [500, 503, 429, 401, 400, 409, 422] {
        assert!(
            matches!(
                read_refund_lookup(status, b"{}"),
                RefundLookup::Unknown { .. }
            ),
            "{status}"
        );
    }
}

#[test]
fn http_answers_map_to_approved_declined_or_unavailable() {
    let approved = read_answer(201, br#"{"status":"approved","paymentId":"ch_1"}"#);
    assert_eq!(
        approved,
        Charge::Approved {
            payment_id: "ch_1".into()
        }
    );
    assert!(matches!(
        read_answer(200, br#"{"status":"declined","reason":"stolen card"}"#),
        Charge::Declined { reason } if reason == "stolen card"
    ));
    assert!(matches!(read_answer(402, b"{}"), Charge::Declined { .. }));
    // The provider did not act (safe to send again) against sent without a usable answer (a
    // charge may stand: looked up before the order fails).
    for status in [429, 409, 401, 400] {
        assert!(
            matches!(read_answer(status, b"{}"), Charge::NotSent { .. }),
            "{status}"
        );
    }
    for status in [500, 503, 504] {
        assert!(
            matches!(read_answer(status, b"{}"), Charge::Unknown { .. }),
            "{status}"
        );
    }
    assert!(
        matches!(
            read_answer(200, br#"{"status":"approved"}"#),
            Charge::Unknown { .. }
        ),
        "approved without a payment id is not an approval"
    );
}
