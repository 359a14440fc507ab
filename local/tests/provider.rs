//! The payment provider's refund protocol (docs/contract.md, "The payment provider's protocol"):
//! the real HTTP adapter against the local fake provider, on loopback, no emulator. Refunded,
//! repeated, refused, not sent and unknown outcomes, and the refund's lookup resolving an
//! unknown one. The key rotation path of a refund is in lifecycle.rs (it needs Secrets Manager).

use std::time::Duration;

use order_local::provider::{FakeProvider, ProviderRates};
use order_pipeline::adapters::payment_http::{ApiKey, HttpGateway};
use order_pipeline::ports::payment::{
    idempotency_key, Charge, ChargeRequest, Lookup, PaymentGateway, Refund, RefundLookup,
    RefundRequest,
};

fn gateway(provider: &FakeProvider, timeout: Duration) -> HttpGateway {
    HttpGateway::new(&provider.url, ApiKey::Fixed(provider.api_key()), timeout).unwrap()
}

fn charge_of(order: &str, customer: &str) -> ChargeRequest {
    ChargeRequest {
        order_id: order.into(),
        amount: "39.80".into(),
        currency: "USD".into(),
        customer_id: customer.into(),
        idempotency_key: idempotency_key(order),
        attempt: 1,
    }
}

/// Protects: a refund of a standing charge is refunded once, under `<orderId>:refund`: a repeat
/// (a retry after any outcome) gets the first refund back, never a second one, and the refund's
/// lookup finds it. The ledger records it with its amount and currency.
#[tokio::test]
async fn a_refund_is_refunded_once_and_a_repeat_gets_the_same_refund() {
    let provider = FakeProvider::start(ProviderRates::default()).await.unwrap();
    let g = gateway(&provider, Duration::from_secs(2));
    let charge = charge_of("R1", "U1");
    assert!(matches!(g.charge(&charge).await, Charge::Approved { .. }));
    let request = RefundRequest::full(&charge, 1);
    assert_eq!(request.idempotency_key, "R1:refund");

    let first = g.refund(&request).await;
    let Refund::Refunded { refund_id } = first.clone() else {
        panic!("refunded, not {first:?}");
    };
    let again = g
        .refund(&RefundRequest {
            attempt: 2,
            ..request.clone()
        })
        .await;
    assert_eq!(again, first, "the repeat is answered with the first refund");
    assert_eq!(
        g.lookup_refund(&request).await,
        RefundLookup::Refunded {
            refund_id: refund_id.clone()
        }
    );
    let refunds = provider.refunds();
    assert_eq!(refunds.len(), 1, "one refund in the ledger: {refunds:?}");
    let r = &refunds[0];
    assert_eq!(
        (
            r.idempotency_key.as_str(),
            r.charge_key.as_str(),
            r.amount.as_str(),
            r.currency.as_str(),
            r.refunded,
            r.refund_id.as_deref(),
            r.calls
        ),
        (
            "R1:refund",
            "R1:payment",
            "39.80",
            "USD",
            true,
            Some(refund_id.as_str()),
            2
        )
    );
    // The charge itself still stands in the ledger: a refund is its own entry.
    assert!(matches!(g.lookup(&charge).await, Lookup::Charged { .. }));
    assert_eq!(provider.stats().refunded, 1);
}

/// Protects the fake provider's refusals and how the adapter reads them: a refund of a key with
/// no approved charge (never charged, or declined) is refused (404), final; the same refund key
/// with another amount is refused 422 and the first refund stays the only one; more than was
/// charged, or another currency, is refused 422; a refund without a currency is never made (400,
/// read as not sent: nothing recorded).
#[tokio::test]
async fn refunds_without_a_charge_or_with_another_amount_are_refused() {
    let provider = FakeProvider::start(ProviderRates::default()).await.unwrap();
    let g = gateway(&provider, Duration::from_secs(2));

    let never = RefundRequest::full(&charge_of("R-NONE", "U1"), 1);
    match g.refund(&never).await {
        Refund::Refused { reason } => assert!(reason.contains("404"), "{reason}"),
        other => panic!("nothing to refund must be refused, not {other:?}"),
    }
    assert!(matches!(
        g.lookup_refund(&never).await,
        RefundLookup::NoRefund { .. }
    ));

    let declined = charge_of("R-DECL", "decline-1");
    assert!(matches!(g.charge(&declined).await, Charge::Declined { .. }));
    assert!(matches!(
        g.refund(&RefundRequest::full(&declined, 1)).await,
        Refund::Refused { .. }
    ));

    let charge = charge_of("R2", "U1");
    assert!(matches!(g.charge(&charge).await, Charge::Approved { .. }));
    let full = RefundRequest::full(&charge, 1);
    let first = g.refund(&full).await;
    assert!(matches!(first, Refund::Refunded { .. }), "{first:?}");
    match g
        .refund(&RefundRequest {
            amount: "10.00".into(),
            ..full.clone()
        })
        .await
    {
        Refund::Refused { reason } => assert!(reason.contains("422"), "{reason}"),
        other => panic!("another amount under the same key must be refused, not {other:?}"),
    }
    assert_eq!(g.refund(&full).await, first, "the first refund stands");

    let other = charge_of("R3", "U1");
    assert!(matches!(g.charge(&other).await, Charge::Approved { .. }));
    for (amount, currency) in [("39.81", "USD"), ("39.80", "EUR")] {
        let refund = g
            .refund(&RefundRequest {
                amount: amount.into(),
                currency: currency.into(),
                idempotency_key: format!("R3:refund:{amount}:{currency}"),
                ..RefundRequest::full(&other, 1)
            })
            .await;
        assert!(
            matches!(&refund, Refund::Refused { reason } if reason.contains("422")),
            "{amount} {currency}: {refund:?}"
        );
    }
    let before = provider.refunds().len();
    let no_currency = g
        .refund(&RefundRequest {
            currency: String::new(),
            idempotency_key: "R3:refund".into(),
            ..RefundRequest::full(&other, 1)
        })
        .await;
    assert!(
        matches!(&no_currency, Refund::NotSent { reason } if reason.contains("400")),
        "{no_currency:?}"
    );
    assert_eq!(provider.refunds().len(), before, "nothing recorded");
    assert_eq!(provider.stats().refunded, 1, "only R2 was refunded");
}

/// Protects the unknown outcome of a refund: the provider refunds and then drops the connection
/// without an answer (or answers after the adapter stopped waiting). The adapter reads both as
/// unknown (sent, the refund may stand), never as refused or not sent; the refund's lookup then
/// finds the refund, and a repeat refunds nothing more. The drops are counted like late answers.
#[tokio::test]
async fn a_refund_whose_answer_is_dropped_or_late_is_unknown_and_its_lookup_finds_it() {
    let provider = FakeProvider::start(ProviderRates {
        drop_prefix: Some("drop-".into()),
        late_prefix: Some("late-".into()),
        late_by: Duration::from_millis(1500),
        ..ProviderRates::default()
    })
    .await
    .unwrap();
    let g = gateway(&provider, Duration::from_millis(300));
    for (order, customer) in [("R-DROP", "drop-1"), ("R-LATE", "late-1")] {
        let charge = charge_of(order, customer);
        // The charge's answer is lost the same way: unavailable to the stage, standing at the
        // provider.
        assert!(matches!(g.charge(&charge).await, Charge::Unknown { .. }));
        assert!(matches!(g.lookup(&charge).await, Lookup::Charged { .. }));

        let request = RefundRequest::full(&charge, 1);
        let refund = g.refund(&request).await;
        assert!(
            matches!(refund, Refund::Unknown { .. }),
            "{order}: unknown, not {refund:?}"
        );
        let found = g.lookup_refund(&request).await;
        assert!(
            matches!(found, RefundLookup::Refunded { .. }),
            "{order}: the lookup finds the refund: {found:?}"
        );
        assert!(matches!(
            g.refund(&RefundRequest {
                attempt: 2,
                ..request.clone()
            })
            .await,
            Refund::Unknown { .. }
        ));
        let refunds: Vec<_> = provider
            .refunds()
            .into_iter()
            .filter(|r| r.order_id == order)
            .collect();
        assert_eq!(refunds.len(), 1, "{order}: one refund");
        assert!(refunds[0].refunded && refunds[0].calls == 2, "{refunds:?}");
    }
    let stats = provider.stats();
    assert_eq!(stats.dropped_answers, 3, "charge + two refunds: {stats:?}");
    assert_eq!(stats.late_answers, 3, "charge + two refunds: {stats:?}");
}

/// Protects "not sent": a refund that never reached a provider (nothing listens at the URL) is
/// read as not sent, safe to retry, not as unknown; its lookup there is unknown, never "no
/// refund".
#[tokio::test]
async fn a_refund_that_cannot_connect_is_not_sent() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let g = HttpGateway::new(
        &closed,
        ApiKey::Fixed("k".into()),
        Duration::from_millis(500),
    )
    .unwrap();
    let request = RefundRequest::full(&charge_of("R-NOWHERE", "U1"), 1);
    let refund = g.refund(&request).await;
    assert!(
        matches!(refund, Refund::NotSent { .. }),
        "not sent: {refund:?}"
    );
    assert!(matches!(
        g.lookup_refund(&request).await,
        RefundLookup::Unknown { .. }
    ));
}
