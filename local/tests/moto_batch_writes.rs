//! order-consumer's batched creates on a real DynamoDB API (moto's server, started by each test
//! on a free loopback port): a batch's new orders in one BatchExecuteStatement, its duplicates
//! and conflicts decided as alone, and the fallback to single writes.

#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use std::time::Duration;

use moto::{consumer, dynamodb_through, env, order, record, Env};
use order_pipeline::adapters::dynamodb::DynamoStore;
use order_pipeline::registry::OrderConsumerFunction;
use order_pipeline::runtime::config::WorkerConfig;
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::intake::OrderConsumer;

/// The intake's worker at its deployed record concurrency (cdk.json: 10), on `store`.
fn consumer_of_ten(store: DynamoStore) -> OrderConsumerFunction<DynamoStore> {
    SqsWorker::new(
        OrderConsumer::new(store),
        WorkerConfig {
            max_receive_count: 3,
            record_concurrency: 10,
            start_margin: Duration::from_secs(3),
            answer_reserve: Duration::from_millis(500),
            backoff: None,
            queue_url: None,
            service: "order-consumer".into(),
        },
        Arc::new(Captured::default()),
        None,
    )
    .unwrap()
}

/// order-consumer's batching store, its DynamoDB calls through a fault proxy with `scripts`.
async fn batching_store_through(
    e: &Env,
    scripts: Vec<order_local::faults::Scripted>,
) -> (order_local::faults::FaultProxy, DynamoStore) {
    use order_local::faults::{FaultProxy, FaultRates};
    let proxy =
        FaultProxy::start_scripted(e.clients.endpoint.as_str(), FaultRates::none(), scripts)
            .await
            .unwrap();
    let store = DynamoStore::new(dynamodb_through(&proxy).await, e.stack.table_name.clone())
        .batching_creates();
    (proxy, store)
}

/// The item stored under `order_id` as DynamoDB returns it (a consistent read).
async fn raw_item(
    e: &Env,
    order_id: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    e.clients
        .dynamodb
        .get_item()
        .table_name(&e.stack.table_name)
        .key("orderId", AttributeValue::S(order_id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// The raw item as stored, and the attribute map the intake builds for the order read back:
/// equal when the stored item is exactly the one a `PutItem` of the order would have written.
async fn stored_as_written(
    e: &Env,
    order_id: &str,
) -> (
    std::collections::HashMap<String, AttributeValue>,
    std::collections::HashMap<String, AttributeValue>,
) {
    let raw = raw_item(e, order_id)
        .await
        .unwrap_or_else(|| panic!("{order_id} is stored"));
    let read = e.store.get(order_id).await.unwrap().expect("stored");
    (
        raw,
        order_pipeline::adapters::dynamodb::item::item_attributes(&read).unwrap(),
    )
}

/// Protects the intake's batched creates (store::dynamodb, `batching_creates`): a batch's new
/// orders go to DynamoDB in one request, stored exactly as a conditional PutItem would store
/// them; a duplicate and a conflict in the same batch are decided as they are alone (duplicate
/// deleted, conflict failed, the stored order untouched), through the conditional PutItem.
#[tokio::test]
async fn a_batch_of_new_orders_is_stored_in_one_request_and_its_duplicates_and_conflicts_decided_as_alone(
) {
    use std::sync::atomic::Ordering::Relaxed;
    let e = env("bc").await;
    consumer(e.store.clone(), &e.stack.table_name)
        .handle_records(&[
            record("m-dup-first", &order("BC-dup", 1)),
            record("m-conflict-first", &order("BC-conflict", 1)),
        ])
        .await
        .unwrap();
    let (conflicting_before, _) = stored_as_written(&e, "BC-conflict").await;

    let (proxy, store) = batching_store_through(&e, Vec::new()).await;
    let mut records: Vec<SqsMessage> = (0..8)
        .map(|i| record(&format!("m{i}"), &order(&format!("BC-{i}"), i + 1)))
        .collect();
    records.push(record("m-dup", &order("BC-dup", 1)));
    records.push(record("m-conflict", &order("BC-conflict", 2)));
    let (resp, reports) = consumer_of_ten(store)
        .handle_records(&records)
        .await
        .unwrap();

    let labels: Vec<&str> = reports.iter().map(|r| r.outcome.label()).collect();
    assert_eq!(
        labels,
        [vec!["accepted"; 8], vec!["duplicate", "conflict"]].concat()
    );
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-conflict"], "only the conflict fails");
    assert_eq!(
        proxy.stats.requests.load(Relaxed),
        3,
        "one request for the eight new orders, one conditional PutItem each for the duplicate and the conflict (not ten)"
    );
    for i in 0..8 {
        let (raw, as_written) = stored_as_written(&e, &format!("BC-{i}")).await;
        assert_eq!(raw, as_written, "BC-{i} is stored as a PutItem writes it");
        let AttributeValue::L(lines) = &raw["items"] else {
            panic!("items is a list")
        };
        let AttributeValue::M(line) = &lines[0] else {
            panic!("a line is a map")
        };
        assert_eq!(line["quantity"], AttributeValue::N((i + 1).to_string()));
    }
    let (conflicting_after, _) = stored_as_written(&e, "BC-conflict").await;
    assert_eq!(
        conflicting_after, conflicting_before,
        "the conflict left the stored order alone"
    );
}

/// Protects the fallback of the batched creates: when the batch request fails (here every
/// BatchExecuteStatement answers 500, as when the role lacks dynamodb:PartiQLInsert or the
/// table throttles), each order is written by its own conditional PutItem and the batch still
/// succeeds: batching can cost a request, never an order.
#[tokio::test]
async fn when_the_batched_insert_fails_every_order_is_written_on_its_own() {
    use order_local::faults::Scripted;
    use std::sync::atomic::Ordering::Relaxed;
    let e = env("bf").await;
    let (proxy, store) = batching_store_through(
        &e,
        vec![Scripted::FailFrom {
            operation: "DynamoDB_20120810.BatchExecuteStatement".into(),
            from: 1,
        }],
    )
    .await;
    let records: Vec<SqsMessage> = (0..10)
        .map(|i| record(&format!("m{i}"), &order(&format!("BF-{i}"), 1)))
        .collect();
    let (resp, reports) = consumer_of_ten(store)
        .handle_records(&records)
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert!(reports.iter().all(|r| r.outcome.label() == "accepted"));
    assert_eq!(
        proxy.stats.scripted.load(Relaxed),
        1,
        "the batch request failed once and was not retried"
    );
    assert_eq!(proxy.stats.requests.load(Relaxed), 11, "then ten PutItem");
    for i in 0..10 {
        let (raw, as_written) = stored_as_written(&e, &format!("BF-{i}")).await;
        assert_eq!(raw, as_written);
    }
}

/// Protects the emulator's INSERT (local/moto_server.py): like DynamoDB, an INSERT of a key that
/// is stored answers DuplicateItem and leaves the stored item alone (moto's own overwrote it),
/// while the statements beside it in the batch are applied.
#[tokio::test]
async fn the_emulators_insert_refuses_a_stored_key_as_dynamodb_does() {
    use aws_sdk_dynamodb::types::BatchStatementRequest;
    let e = env("ins").await;
    let insert = |id: &str, status: &str| {
        BatchStatementRequest::builder()
            .statement(format!(
                "INSERT INTO \"{}\" VALUE {{'orderId': ?, 'status': ?}}",
                e.stack.table_name
            ))
            .parameters(AttributeValue::S(id.into()))
            .parameters(AttributeValue::S(status.into()))
            .build()
            .unwrap()
    };
    let first = e
        .clients
        .dynamodb
        .batch_execute_statement()
        .statements(insert("INS-1", "FIRST"))
        .statements(insert("INS-2", "FIRST"))
        .send()
        .await
        .unwrap();
    assert!(first.responses().iter().all(|r| r.error.is_none()));
    let second = e
        .clients
        .dynamodb
        .batch_execute_statement()
        .statements(insert("INS-1", "SECOND"))
        .statements(insert("INS-3", "SECOND"))
        .send()
        .await
        .unwrap();
    let codes: Vec<Option<String>> = second
        .responses()
        .iter()
        .map(|r| {
            r.error
                .as_ref()
                .and_then(|e| e.code.as_ref())
                .map(|c| c.as_str().to_string())
        })
        .collect();
    assert_eq!(codes, [Some("DuplicateItem".to_string()), None]);
    let status = |id: &'static str| {
        let e = &e;
        async move { raw_item(e, id).await.and_then(|i| i.get("status").cloned()) }
    };
    assert_eq!(
        status("INS-1").await,
        Some(AttributeValue::S("FIRST".into()))
    );
    assert_eq!(
        status("INS-3").await,
        Some(AttributeValue::S("SECOND".into()))
    );
}

/// Protects the batched creates from two copies of one order in one batch (SNS delivers at
/// least once, so a copy can land beside its message): the second copy is not put in the same
/// request, which DynamoDB may refuse whole (the emulator does, as BatchWriteItem is refused for
/// a key named twice); it goes through the PutItem, and the order is stored once, one message
/// accepted and the other a duplicate.
#[tokio::test]
async fn two_copies_of_an_order_in_one_batch_are_not_sent_in_one_request() {
    use std::sync::atomic::Ordering::Relaxed;
    let e = env("tw").await;
    let (proxy, store) = batching_store_through(&e, Vec::new()).await;
    let mut records: Vec<SqsMessage> = (0..8)
        .map(|i| record(&format!("m{i}"), &order(&format!("TW-{i}"), 1)))
        .collect();
    records.push(record("m-first", &order("TW-twice", 3)));
    records.push(record("m-copy", &order("TW-twice", 3)));
    let (resp, reports) = consumer_of_ten(store)
        .handle_records(&records)
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    let mut labels: Vec<&str> = reports[8..].iter().map(|r| r.outcome.label()).collect();
    labels.sort();
    assert_eq!(
        labels,
        ["accepted", "duplicate"],
        "one copy stored, one a duplicate"
    );
    assert!(reports[..8].iter().all(|r| r.outcome.label() == "accepted"));
    let requests = proxy.stats.requests.load(Relaxed);
    assert!(
        (2..=3).contains(&requests),
        "one batch request and the copy's PutItem (and one more if the copy's PutItem landed first), not a refused batch and ten PutItem: {requests}"
    );
    let (raw, as_written) = stored_as_written(&e, "TW-twice").await;
    assert_eq!(raw, as_written);
}
