//! order-consumer's conditional writes against a real DynamoDB API: moto's server, started by
//! each test on a free loopback port. These prove the conditional creates, the ALL_OLD
//! read-back, the re-accept and redrive conditions and the error classification on the wire,
//! not only in memory.

#[path = "common/moto.rs"]
mod moto;

use aws_sdk_dynamodb::types::AttributeValue;
use order_domain::OrderStatus;

use moto::{alarm, consumer, dlq_alarm, dynamodb_through, env, order, record, send_to_dlq};
use order_pipeline::adapters::dynamodb::DynamoStore;

#[tokio::test]
async fn consumer_on_dynamodb_stores_new_drops_duplicate_and_fails_conflict_through_conditional_writes(
) {
    let e = env("c1").await;
    let c = consumer(e.store.clone(), &e.stack.table_name);
    let (resp, _) = c
        .handle_records(&[record("m1", &order("O1", 1))])
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    let stored = e.store.get("O1").await.unwrap().expect("stored");
    assert_eq!(stored.status, OrderStatus::Accepted);
    assert_eq!(
        stored.items[0].unit_price.as_deref(),
        Some("999.99"),
        "price stored exactly"
    );

    let (resp, reports) = c
        .handle_records(&[record("m2", &order("O1", 1)), record("m3", &order("O1", 2))])
        .await
        .unwrap();
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m3"], "only the conflict fails");
    let labels: Vec<_> = reports
        .iter()
        .map(|r| (r.message_id.as_str(), r.outcome.label()))
        .collect();
    assert!(
        labels.contains(&("m2", "duplicate")) && labels.contains(&("m3", "conflict")),
        "{labels:?}"
    );
    assert_eq!(
        e.store.get("O1").await.unwrap().unwrap(),
        stored,
        "nothing overwritten"
    );
}

/// Protects: an item another system wrote under an order's id (no contentHash, status or
/// version) is a conflict for the consumer and dlq-alarm, named as such, and never overwritten;
/// it used to read as a store outage, failing whole invocations.
#[tokio::test]
async fn an_item_stored_by_another_system_is_a_conflict_and_is_never_overwritten() {
    let e = env("f1").await;
    let foreign = std::collections::HashMap::from([
        ("orderId".to_string(), AttributeValue::S("LEGACY-1".into())),
        (
            "note".to_string(),
            AttributeValue::S("imported from the old shop".into()),
        ),
    ]);
    e.clients
        .dynamodb
        .put_item()
        .table_name(&e.stack.table_name)
        .set_item(Some(foreign.clone()))
        .send()
        .await
        .unwrap();
    let c = consumer(e.store.clone(), &e.stack.table_name);
    let (resp, reports) = c
        .handle_records(&[
            record("m1", &order("LEGACY-1", 1)),
            record("m2", &order("NEW-1", 1)),
        ])
        .await
        .expect("a foreign item does not fail the invocation");
    assert_eq!(reports[0].outcome.label(), "conflict");
    assert_eq!(reports[1].outcome.label(), "accepted");
    assert_eq!(resp.batch_item_failures.len(), 1);
    let order_pipeline::runtime::bounded::Settled::Handled(outcome) = &reports[0].outcome else {
        panic!("handled");
    };
    let reason = format!(
        "{:?}",
        order_pipeline::runtime::worker::Outcome::disposition(outcome)
    );
    assert!(reason.contains("another system"), "{reason}");

    send_to_dlq(&e, &[order("LEGACY-1", 1)]).await;
    let summary = dlq_alarm(&e).handle_alarm(&alarm("ALARM")).await.unwrap();
    assert_eq!(summary.conflicts, ["LEGACY-1"]);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let stored = e
        .clients
        .dynamodb
        .get_item()
        .table_name(&e.stack.table_name)
        .key("orderId", AttributeValue::S("LEGACY-1".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(stored, foreign, "the other system's item is untouched");
}

/// Protects: the real adapter's re-accept condition (`status = FAILED AND version = :v AND
/// contentHash = :h`) on DynamoDB itself: a stale version, another hash or a status other than
/// FAILED each refuse the write. The in-memory store keeps its own copy of the condition, so only
/// this test would see a guard removed from the DynamoDB expression.
#[tokio::test]
async fn the_reaccept_condition_refuses_a_stale_version_another_hash_and_a_live_order() {
    use order_pipeline::ports::orders::{OrderStore, Reaccept};
    let e = env("c1").await;
    send_to_dlq(&e, &[order("R1", 2)]).await;
    dlq_alarm(&e).handle_alarm(&alarm("ALARM")).await.unwrap();
    let failed = e.store.get("R1").await.unwrap().unwrap();
    assert_eq!((failed.status, failed.version), (OrderStatus::Failed, 1));
    let attempt = |version: u64, hash: &str| Reaccept {
        order_id: "R1".into(),
        content_hash: hash.into(),
        expected_version: version,
        accepted_at: "2026-01-01T00:00:00Z".into(),
        source_message_id: "m".into(),
        correlation_id: "c".into(),
    };
    // One table of cases, in order, run against DynamoDB and the in-memory store alike, so the
    // in-memory copy of the condition cannot drift from the real one.
    let good = failed.content_hash.clone();
    let cases = [
        (attempt(2, &good), false, "stale version"),
        (attempt(1, "another-hash"), false, "another hash"),
        (attempt(1, &good), true, "FAILED, same version and hash"),
        (
            attempt(2, &good),
            false,
            "an ACCEPTED order is not re-accepted",
        ),
    ];
    let memory = order_pipeline::adapters::memory::orders::MemoryStore::new();
    memory.put(failed.clone());
    for (reaccept, expected, why) in &cases {
        assert_eq!(
            e.store.reaccept(reaccept).await.unwrap(),
            *expected,
            "DynamoDB: {why}"
        );
        assert_eq!(
            memory.reaccept(reaccept).await.unwrap(),
            *expected,
            "in memory: {why}"
        );
    }
    let now = e.store.get("R1").await.unwrap().unwrap();
    assert_eq!((now.status, now.version), (OrderStatus::Accepted, 2));
}

#[tokio::test]
async fn redrive_after_failed_is_accepted_again_through_a_real_conditional_update() {
    let e = env("r1").await;
    send_to_dlq(&e, &[order("O7", 2)]).await;
    dlq_alarm(&e).handle_alarm(&alarm("ALARM")).await.unwrap();
    assert_eq!(
        e.store.get("O7").await.unwrap().unwrap().status,
        OrderStatus::Failed
    );

    let c = consumer(e.store.clone(), &e.stack.table_name);
    let (resp, reports) = c
        .handle_records(&[record("redriven", &order("O7", 2))])
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(reports[0].outcome.label(), "reaccepted");
    let raw = e
        .clients
        .dynamodb
        .get_item()
        .table_name(&e.stack.table_name)
        .key("orderId", AttributeValue::S("O7".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        raw.get("status"),
        Some(&AttributeValue::S("ACCEPTED".into()))
    );
    assert!(!raw.contains_key("failure"), "failure fields cleared");
    assert_eq!(raw.get("version"), Some(&AttributeValue::N("2".into())));
    assert_eq!(
        raw.get("sourceMessageId"),
        Some(&AttributeValue::S("redriven".into()))
    );

    // A second redrive of the same message is now a plain duplicate.
    let (_, reports) = c
        .handle_records(&[record("again", &order("O7", 2))])
        .await
        .unwrap();
    assert_eq!(reports[0].outcome.label(), "duplicate");
}

#[tokio::test]
async fn a_missing_table_fails_every_record_and_so_the_invocation() {
    let e = env("m1").await;
    let c = consumer(
        DynamoStore::new(e.clients.dynamodb.clone(), "no-such-table"),
        "no-such-table",
    );
    let err = c
        .handle_records(&[record("m1", &order("O1", 1)), record("m2", &order("O2", 1))])
        .await
        .unwrap_err();
    assert_eq!(err.count, 2);
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}

/// Protects the DynamoDB adapter's create: a create that meets a stored order reports it
/// (status, version, hash) from the old item DynamoDB returns with the refusal, in one request;
/// when an endpoint leaves the old item out it reads it; and a create, re-accept or transition
/// that fails otherwise (a 500) is retryable, never taken for a refusal ("exists", "vanished",
/// "the condition failed").
#[tokio::test]
async fn a_refused_create_reports_the_stored_order_in_one_request_and_failed_writes_are_retryable()
{
    use order_local::faults::{FaultProxy, FaultRates, Scripted};
    use order_pipeline::ports::orders::{CreateResult, OrderStore};
    use order_pipeline::ports::PortError;
    use std::sync::atomic::Ordering::Relaxed;
    let e = env("cr").await;
    consumer(e.store.clone(), &e.stack.table_name)
        .handle_records(&[record("m1", &order("CR-1", 2))])
        .await
        .unwrap();
    let stored = e.store.get("CR-1").await.unwrap().unwrap();
    let expected = CreateResult::Exists(order_domain::Existing {
        content_hash: stored.content_hash.clone(),
        status: OrderStatus::Accepted,
        version: 1,
    });
    let put = "DynamoDB_20120810.PutItem".to_string();
    let through = |scripts: Vec<Scripted>| {
        let endpoint = e.clients.endpoint.clone();
        let table = e.stack.table_name.clone();
        async move {
            let proxy = FaultProxy::start_scripted(endpoint.as_str(), FaultRates::none(), scripts)
                .await
                .unwrap();
            let client = dynamodb_through(&proxy).await;
            (proxy, DynamoStore::new(client, table))
        }
    };

    let (proxy, store) = through(Vec::new()).await;
    assert_eq!(store.create(&stored).await.unwrap(), expected);
    assert_eq!(
        proxy.stats.requests.load(Relaxed),
        1,
        "the refusal carried the stored item: no second round trip"
    );

    let (proxy, store) = through(vec![Scripted::DropAnswerField {
        operation: put.clone(),
        field: "Item".into(),
    }])
    .await;
    assert_eq!(
        store.create(&stored).await.unwrap(),
        expected,
        "without the old item in the refusal, the stored order is read"
    );
    assert_eq!(proxy.stats.scripted.load(Relaxed), 1);
    assert_eq!(proxy.stats.requests.load(Relaxed), 2);

    let (_proxy, store) = through(vec![Scripted::FailFrom {
        operation: put,
        from: 1,
    }])
    .await;
    let mut fresh = stored.clone();
    fresh.order_id = "CR-2".into();
    let err = store.create(&fresh).await.unwrap_err();
    assert!(matches!(err, PortError::Retryable(_)), "{err:?}");
    assert_eq!(e.store.get("CR-2").await.unwrap(), None);

    // The conditional updates alike: a 500 is an error to retry, not "the condition failed".
    let (_proxy, store) = through(vec![Scripted::FailFrom {
        operation: "DynamoDB_20120810.UpdateItem".into(),
        from: 1,
    }])
    .await;
    let reaccept = order_pipeline::ports::orders::Reaccept {
        order_id: "CR-1".into(),
        content_hash: stored.content_hash.clone(),
        expected_version: 1,
        accepted_at: "2026-01-01T00:00:00Z".into(),
        source_message_id: "m".into(),
        correlation_id: "c".into(),
    };
    let err = store.reaccept(&reaccept).await.unwrap_err();
    assert!(matches!(err, PortError::Retryable(_)), "reaccept: {err:?}");
    let reserve = order_pipeline::ports::orders::TransitionWrite::new(
        "CR-1",
        OrderStatus::Accepted,
        OrderStatus::Reserved,
        1,
        "2026-01-01T00:00:00Z".into(),
    )
    .expect("a change of the lifecycle");
    let err = store.transition(&reserve).await.unwrap_err();
    assert!(
        matches!(err, PortError::Retryable(_)),
        "transition: {err:?}"
    );
    let now = e.store.get("CR-1").await.unwrap().unwrap();
    assert_eq!((now.status, now.version), (OrderStatus::Accepted, 1));
}
