//! order-consumer and dlq-alarm against a real DynamoDB/SQS API: moto's server, started by each
//! test on a free loopback port. These prove the conditional writes, the ALL_OLD read-back, the
//! error classification and the non-consuming DLQ snapshot on the wire, not only in memory.

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageAttributeValue;
use order_domain::OrderStatus;
use std::time::Duration;

use order_local::alarm::{alarm_event, depth};
use order_local::emulator::Emulator;
use order_local::resources::{create, AlarmSpec, Created, LocalStack};
use order_local::template::Template;
use order_local::Clients;
use order_pipeline::config::{DlqAlarmConfig, WorkerConfig};
use order_pipeline::consumer::{OrderConsumer, OrderConsumerFunction};
use order_pipeline::dlq_alarm::DlqAlarm;
use order_pipeline::notify::SnsNotifier;
use order_pipeline::queue::SqsDeadLetterQueue;
use order_pipeline::store::DynamoStore;
use order_pipeline::telemetry::Captured;
use order_pipeline::worker::SqsWorker;
use serde_json::Value;

struct Env {
    _emulator: Emulator,
    clients: Clients,
    template: Template,
    created: Created,
    stack: LocalStack,
    store: DynamoStore,
}

async fn env(prefix: &str) -> Env {
    let emulator =
        Emulator::start().expect("moto_server starts (run `make setup` if it is missing)");
    let clients = Clients::new(&emulator.sdk_config().await, emulator.endpoint());
    let template = Template::current().expect("the stack's template synthesizes");
    let created = create(&clients, &template, prefix)
        .await
        .expect("resources created");
    let stack = created.stack.clone();
    let store = DynamoStore::new(clients.dynamodb.clone(), stack.table_name.clone());
    Env {
        _emulator: emulator,
        clients,
        template,
        created,
        stack,
        store,
    }
}

fn consumer(store: DynamoStore, _table: &str) -> OrderConsumerFunction<DynamoStore> {
    let config = WorkerConfig {
        max_receive_count: 3,
        record_concurrency: 4,
        start_margin: Duration::from_secs(3),
        answer_reserve: Duration::from_millis(500),
        backoff: None,
        queue_url: None,
        service: "order-consumer".into(),
    };
    SqsWorker::new(
        OrderConsumer::new(store),
        config,
        Arc::new(Captured::default()),
    )
}

fn dlq_alarm(e: &Env) -> DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier> {
    let config = DlqAlarmConfig {
        table_name: e.stack.table_name.clone(),
        dlq_url: e.stack.dlq_url.clone(),
        ops_topic_arn: e.stack.ops_topic_arn.clone(),
        snapshot_max: 100,
        snapshot_visibility_seconds: 30,
        concurrency: 4,
        start_margin: Duration::from_secs(3),
        service: "dlq-alarm".into(),
    };
    DlqAlarm::new(
        e.store.clone(),
        SqsDeadLetterQueue::new(e.clients.sqs.clone(), e.stack.dlq_url.clone()),
        SnsNotifier::new(e.clients.sns.clone(), e.stack.ops_topic_arn.clone()),
        config,
        Arc::new(Captured::default()),
    )
}

fn order(id: &str, quantity: u32) -> String {
    serde_json::json!({
        "orderId": id, "customerId": "U1", "currency": "USD", "createdAt": "2025-05-03T12:00:00Z",
        "items": [{"sku": "LAPTOP-15", "quantity": quantity, "unitPrice": "999.99"}]
    })
    .to_string()
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("SentTimestamp".into(), "1746273600000".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

fn alarm(state: &str) -> CloudWatchAlarm {
    let spec = AlarmSpec {
        id: "DlqDepth".into(),
        name: "dlq-depth".into(),
        namespace: "AWS/SQS".into(),
        metric_name: "ApproximateNumberOfMessagesVisible".into(),
        dimensions: vec![("QueueName".into(), "dlq".into())],
        expression: Some("visible + inflight".into()),
        statistic: "Maximum".into(),
        period_seconds: 60,
        evaluation_periods: 1,
        threshold: 1.0,
        comparison_operator: "GreaterThanOrEqualToThreshold".into(),
        treat_missing_data: "notBreaching".into(),
        alarm_actions: vec![],
        ok_actions: vec![],
    };
    serde_json::from_value(alarm_event(&spec, "OK", state, 1.0, chrono::Utc::now()))
        .expect("alarm event")
}

async fn send_to_dlq(e: &Env, bodies: &[String]) {
    for (i, body) in bodies.iter().enumerate() {
        e.clients
            .sqs
            .send_message()
            .queue_url(&e.stack.dlq_url)
            .message_body(body)
            .message_attributes(
                "correlationId",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(format!("corr-{i}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("send to DLQ");
    }
}

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

#[tokio::test]
async fn dlq_alarm_marks_orders_failed_from_a_real_dlq_and_leaves_every_message_in_it() {
    let e = env("d1").await;
    // O-stored is accepted with other content first: its dead letter is a conflicting reuse.
    consumer(e.store.clone(), &e.stack.table_name)
        .handle_records(&[record("m0", &order("O-stored", 1))])
        .await
        .unwrap();
    let bodies: Vec<String> = (0..12)
        .map(|i| order(&format!("O{i}"), 1))
        .chain([order("O-stored", 9), "not json".to_string()])
        .collect();
    send_to_dlq(&e, &bodies).await;
    let handler = dlq_alarm(&e);

    let summary = handler.handle_alarm(&alarm("ALARM")).await.unwrap();
    assert_eq!(summary.messages_seen, 14);
    assert_eq!(summary.marked_failed.len(), 12);
    assert_eq!(summary.conflicts, ["O-stored"]);
    assert_eq!(summary.unparseable.len(), 1);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (14, 0),
        "every message is still there and visible"
    );

    let failed = e
        .store
        .get("O3")
        .await
        .unwrap()
        .expect("FAILED item created");
    assert_eq!(failed.status, OrderStatus::Failed);
    assert!(
        failed
            .failure
            .as_ref()
            .is_some_and(|f| f.reason.contains("corr-3")),
        "{failed:?}"
    );
    assert_eq!(
        e.store.get("O-stored").await.unwrap().unwrap().status,
        OrderStatus::Accepted,
        "stored order left alone"
    );

    // The same alarm event again changes nothing more.
    let again = handler.handle_alarm(&alarm("ALARM")).await.unwrap();
    assert!(again.marked_failed.is_empty());
    assert_eq!(again.already_failed.len(), 12);
    assert_eq!(e.store.get("O3").await.unwrap().unwrap(), failed);
    assert_eq!(depth(&e.clients.sqs, &e.stack.dlq_url).await.unwrap(), 14);
}

/// Protects: on a real SQS API, an alarm's sweep that fires while another look (the scheduled
/// sweep) holds the DLQ's messages counts them as held (ApproximateNumberOfMessagesNotVisible)
/// and examines them once they are released, instead of reporting an empty DLQ.
#[tokio::test]
async fn an_alarm_sweep_on_a_real_dlq_waits_for_what_another_look_holds() {
    use order_pipeline::queue::DeadLetterQueue;
    let e = env("h1").await;
    let bodies: Vec<String> = (0..3).map(|i| order(&format!("H{i}"), 1)).collect();
    send_to_dlq(&e, &bodies).await;
    let other = SqsDeadLetterQueue::new(e.clients.sqs.clone(), e.stack.dlq_url.clone());
    let held = other.snapshot(100, 30).await.unwrap();
    assert_eq!(held.len(), 3);
    assert_eq!(
        other.held().await.unwrap(),
        3,
        "the other look holds all three"
    );
    let handler = dlq_alarm(&e);
    let event = alarm("ALARM");
    let (summary, ()) = tokio::join!(handler.handle_alarm(&event), async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        other.release(&held).await.unwrap();
    });
    let summary = summary.unwrap();
    assert_eq!(summary.messages_seen, 3, "{summary:?}");
    assert_eq!(summary.marked_failed, ["H0", "H1", "H2"]);
    assert_eq!(other.held().await.unwrap(), 0, "released by both looks");
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
    let order_pipeline::worker::Settled::Handled(outcome) = &reports[0].outcome else {
        panic!("handled");
    };
    let reason = format!(
        "{:?}",
        order_pipeline::worker::Outcome::disposition(outcome)
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
    use order_pipeline::store::{OrderStore, Reaccept};
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
    let memory = order_pipeline::store::MemoryStore::new();
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

/// Protects: the emulated stack is the synthesized one, resource by resource. For every queue,
/// subscription and table in the template, what the emulator holds has the template's
/// settings (visibility timeout, retention, redrive target and maxReceiveCount; raw delivery,
/// filter and redrive policies; key schema and stream).
#[tokio::test]
async fn every_queue_subscription_and_table_in_the_emulator_matches_the_template() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let e = env("p1").await;
    let arn_to_id: std::collections::HashMap<&str, &str> = e
        .created
        .queues
        .iter()
        .map(|q| (q.arn.as_str(), q.id.as_str()))
        .collect();
    for q in &e.created.queues {
        let props = &e.template.resources[&q.id].properties;
        let attrs = e
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&q.url)
            .attribute_names(A::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        for (key, attribute) in [
            ("VisibilityTimeout", A::VisibilityTimeout),
            ("MessageRetentionPeriod", A::MessageRetentionPeriod),
        ] {
            if let Some(expected) = props.get(key) {
                assert_eq!(
                    attrs.get(&attribute).map(String::as_str),
                    Some(expected.to_string().as_str()),
                    "{} {key}",
                    q.id
                );
            }
        }
        match props.get("RedrivePolicy") {
            Some(expected) => {
                let actual: Value =
                    serde_json::from_str(&attrs[&A::RedrivePolicy]).expect("redrive policy");
                let target = actual["deadLetterTargetArn"].as_str().unwrap();
                assert_eq!(
                    Some(&arn_to_id[target]),
                    expected["deadLetterTargetArn"]["Fn::GetAtt"][0]
                        .as_str()
                        .as_ref(),
                    "{} redrives to its DLQ",
                    q.id
                );
                assert_eq!(
                    actual["maxReceiveCount"].as_u64(),
                    expected["maxReceiveCount"].as_u64(),
                    "{} maxReceiveCount",
                    q.id
                );
            }
            None => assert!(!attrs.contains_key(&A::RedrivePolicy), "{}", q.id),
        }
    }

    let subscriptions: Vec<_> = e.template.of_type("AWS::SNS::Subscription").collect();
    assert!(!subscriptions.is_empty());
    let listed = e
        .clients
        .sns
        .list_subscriptions()
        .send()
        .await
        .unwrap()
        .subscriptions
        .unwrap_or_default();
    for (id, r) in subscriptions {
        let queue_id = r.properties["Endpoint"]["Fn::GetAtt"][0].as_str().unwrap();
        let queue = e.created.queues.iter().find(|q| q.id == queue_id).unwrap();
        let arn = listed
            .iter()
            .find(|s| s.endpoint.as_deref() == Some(queue.arn.as_str()))
            .and_then(|s| s.subscription_arn.clone())
            .unwrap_or_else(|| panic!("{id} exists"));
        let attrs = e
            .clients
            .sns
            .get_subscription_attributes()
            .subscription_arn(arn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        assert_eq!(
            attrs.get("RawMessageDelivery").map(String::as_str),
            Some(r.properties["RawMessageDelivery"].to_string().as_str()),
            "{id} raw delivery"
        );
        let filter = r.properties.get("FilterPolicy");
        assert_eq!(
            attrs
                .get("FilterPolicy")
                .map(|f| serde_json::from_str::<Value>(f).unwrap()),
            filter.cloned(),
            "{id} filter policy"
        );
        assert!(attrs.contains_key("RedrivePolicy"), "{id} redrive policy");
    }

    for (id, r) in e.template.of_type("AWS::DynamoDB::Table") {
        let table = e
            .clients
            .dynamodb
            .describe_table()
            .table_name(&e.created.tables[id])
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let keys: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = r.properties["KeySchema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap().to_string(),
                    k["KeyType"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(keys, expected, "{id} keys");
        assert_eq!(
            table
                .stream_specification()
                .is_some_and(|s| s.stream_enabled()),
            r.properties.get("StreamSpecification").is_some(),
            "{id} stream"
        );
    }
}

// The SQS adapters' partial failures, made by the fault proxy's scripted faults (moto itself
// never fails part of a call).

async fn send_messages(clients: &Clients, queue_url: &str, n: usize) {
    for i in 0..n {
        clients
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(format!("{{\"orderId\":\"P{i}\"}}"))
            .send()
            .await
            .unwrap();
    }
}

/// (visible, in flight) messages of `queue_url` (u64::MAX when the emulator leaves one out).
async fn visible_and_hidden(clients: &Clients, queue_url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |k: A| {
        attrs
            .get(&k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
    )
}

async fn sqs_through(proxy: &order_local::faults::FaultProxy) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&order_local::emulator::function_sdk_config_for(&proxy.url).await)
}

async fn dynamodb_through(proxy: &order_local::faults::FaultProxy) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&order_local::emulator::function_sdk_config_for(&proxy.url).await)
}

/// Protects what `order-local --aws-latency-ms` (make bench section 8) measures: calls through
/// the proxy reuse the caller's connection, as calls to a region's endpoint do, although the
/// emulator behind it closes every connection (its `Connection: close` used to be passed on, so
/// every call opened a new connection and the kernel's part of that was counted as the
/// functions' CPU); and each call is held for the proxy's latency.
#[tokio::test]
async fn calls_through_the_latency_proxy_keep_their_connection_open() {
    use order_local::faults::{FaultProxy, FaultRates};
    use std::sync::atomic::Ordering::Relaxed;
    let emulator = Emulator::start().expect("moto_server starts");
    let latency = FaultRates::round_trip(Duration::from_millis(10));
    let proxy = FaultProxy::start(emulator.endpoint(), latency)
        .await
        .unwrap();
    let dynamodb = dynamodb_through(&proxy).await;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        dynamodb
            .list_tables()
            .send()
            .await
            .expect("the emulator answers through the proxy");
        assert!(
            started.elapsed() >= Duration::from_millis(10),
            "each call is held 10 ms"
        );
    }
    assert_eq!(proxy.stats.requests.load(Relaxed), 5);
    assert_eq!(proxy.stats.slowed.load(Relaxed), 5);
    assert_eq!(
        proxy.stats.connections.load(Relaxed),
        1,
        "five calls one after another use one connection"
    );
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
    use order_pipeline::port::PortError;
    use order_pipeline::store::{CreateResult, OrderStore};
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
    let reaccept = order_pipeline::store::Reaccept {
        order_id: "CR-1".into(),
        content_hash: stored.content_hash.clone(),
        expected_version: 1,
        accepted_at: "2026-01-01T00:00:00Z".into(),
        source_message_id: "m".into(),
        correlation_id: "c".into(),
    };
    let err = store.reaccept(&reaccept).await.unwrap_err();
    assert!(matches!(err, PortError::Retryable(_)), "reaccept: {err:?}");
    let reserve = order_pipeline::store::TransitionWrite::new(
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

/// Protects: a DLQ snapshot that takes longer than its visibility timeout (a large DLQ, a slow
/// endpoint) holds each message once and ends when its first messages are visible again:
/// they used to be read again, and again, until the snapshot's maximum (the 10,000-order soak's
/// report never ended on a DLQ of 973), each counted more than once.
#[tokio::test]
async fn a_dlq_snapshot_slower_than_its_visibility_timeout_holds_each_message_once() {
    use order_local::faults::{FaultProxy, FaultRates};
    use order_pipeline::queue::DeadLetterQueue;
    let e = env("snapslow").await;
    send_messages(&e.clients, &e.stack.dlq_url, 30).await;
    let slow = FaultRates::round_trip(Duration::from_millis(700));
    let proxy = FaultProxy::start_scripted(e.clients.endpoint.as_str(), slow, Vec::new())
        .await
        .unwrap();
    let dlq = SqsDeadLetterQueue::new(sqs_through(&proxy).await, e.stack.dlq_url.clone());
    // Hidden for 1 s, each receive taking at least 0.7 s: the first ten are back by the third.
    let started = std::time::Instant::now();
    let letters = dlq.snapshot(200, 1).await.unwrap();
    let ids: std::collections::HashSet<&str> =
        letters.iter().map(|l| l.message_id.as_str()).collect();
    assert_eq!(letters.len(), ids.len(), "no message twice");
    assert!(
        (10..=30).contains(&letters.len()),
        "{} letters",
        letters.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it ends once its first messages are visible again, not at its maximum ({:?})",
        started.elapsed()
    );
    dlq.release(&letters).await.unwrap();
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (30, 0),
        "released with the receipts that still hold them"
    );
}

/// Protects: when a receive fails part-way through dlq-alarm's DLQ snapshot (after ten
/// messages were hidden), the snapshot fails and every message it hid is visible again at
/// once: none stays hidden for the snapshot's visibility timeout, out of the operator's and the
/// next sweep's sight.
#[tokio::test]
async fn a_dlq_snapshot_that_fails_part_way_shows_every_hidden_message_again() {
    use order_local::faults::{FaultProxy, FaultRates, Scripted};
    use order_pipeline::queue::DeadLetterQueue;
    let e = env("snapfail").await;
    send_messages(&e.clients, &e.stack.dlq_url, 25).await;
    let proxy = FaultProxy::start_scripted(
        e.clients.endpoint.as_str(),
        FaultRates::none(),
        vec![Scripted::FailFrom {
            operation: "AmazonSQS.ReceiveMessage".into(),
            from: 2,
        }],
    )
    .await
    .unwrap();
    let dlq = SqsDeadLetterQueue::new(sqs_through(&proxy).await, e.stack.dlq_url.clone());
    let err = dlq.snapshot(100, 300).await.unwrap_err();
    assert!(
        proxy
            .stats
            .scripted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "the second receive failed ({err})"
    );
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (25, 0),
        "the ten messages the first receive hid are visible again"
    );
}

/// Protects: a visibility batch that SQS accepts with one entry failed is an error naming the
/// share that failed, for the DLQ snapshot's release and for a stage's backoff alike, never a
/// silent success (the failed message would stay hidden, or come back too early).
#[tokio::test]
async fn one_failed_entry_of_a_visibility_batch_is_an_error() {
    use order_local::faults::{FaultProxy, FaultRates, Scripted};
    use order_pipeline::queue::{change_visibility, SqsVisibility};
    use order_pipeline::worker::Visibility;
    let e = env("visfail").await;
    let queue = e.stack.queue_url.clone();
    send_messages(&e.clients, &queue, 3).await;
    let received = e
        .clients
        .sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .visibility_timeout(300)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 3);
    let receipts: Vec<&str> = received
        .iter()
        .filter_map(|m| m.receipt_handle.as_deref())
        .collect();
    let batch = "AmazonSQS.ChangeMessageVisibilityBatch".to_string();
    let proxy = FaultProxy::start_scripted(
        e.clients.endpoint.as_str(),
        FaultRates::none(),
        vec![
            Scripted::FailEntry {
                operation: batch.clone(),
                nth: 1,
                id: "1".into(),
            },
            Scripted::FailEntry {
                operation: batch,
                nth: 2,
                id: "0".into(),
            },
        ],
    )
    .await
    .unwrap();
    let sqs = sqs_through(&proxy).await;

    let err = change_visibility(&sqs, &queue, &receipts, 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 of 3 visibility changes failed"), "{err}");
    assert_eq!(
        visible_and_hidden(&e.clients, &queue).await,
        (2, 1),
        "the other two entries were applied"
    );

    let backoff = SqsVisibility::new(sqs, queue.clone());
    let err = backoff
        .delay(vec![(receipts[1].to_string(), Duration::from_secs(5))])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 of 1 visibility changes failed"), "{err}");
}

/// Receives up to `max` visible messages of `queue_url` and hides them for ten minutes.
async fn hold(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(0)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// Protects local/moto_server.py's SQS receive: moto moves a message past maxReceiveCount to
/// the DLQ by taking it out of the queue's list without the lock its sends and (patched) deletes
/// take, so receives racing over the same message failed with a 500 (and the messages that
/// receive had just hidden stayed hidden, unreturned), and a delete meanwhile could put a moved
/// message back beside its DLQ copy. Here the order queue (maxReceiveCount 3) is drained by
/// consumers that give every message back at once, racing consumers that delete what they get:
/// every message ends deleted or in the DLQ, none in both, none twice, and no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receives_redrive_each_message_once_without_errors() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    let e = env("redriverace").await;
    // No retries: a 500 must show, not be retried away.
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&e._emulator.sdk_config().await)
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build(),
    );
    const N: usize = 1000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("m{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&e.stack.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let deleted = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..6)
        .map(|n| {
            let (sqs, url) = (sqs.clone(), e.stack.queue_url.clone());
            let (deleted, errors) = (deleted.clone(), errors.clone());
            let gives_back = n % 2 == 1;
            tokio::spawn(async move {
                let mut empty = 0;
                while empty < 3 {
                    let received = sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(0)
                        .visibility_timeout(if gives_back { 0 } else { 60 })
                        .send()
                        .await;
                    let messages = match received {
                        Ok(r) => r.messages.unwrap_or_default(),
                        Err(err) => {
                            errors.lock().unwrap().push(format!("receive: {err:?}"));
                            continue;
                        }
                    };
                    empty = if messages.is_empty() { empty + 1 } else { 0 };
                    if gives_back {
                        continue;
                    }
                    for m in messages {
                        match sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle.unwrap_or_default())
                            .send()
                            .await
                        {
                            Ok(_) => deleted.lock().unwrap().push(m.body.unwrap_or_default()),
                            Err(err) => errors.lock().unwrap().push(format!("delete: {err:?}")),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} calls failed, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.queue_url).await,
        (0, 0),
        "the order queue is empty: every message was deleted or moved"
    );
    let mut in_dlq = Vec::new();
    loop {
        let got = hold(&sqs, &e.stack.dlq_url, 10).await;
        if got.is_empty() {
            break;
        }
        in_dlq.extend(got.into_iter().map(|m| m.body.unwrap_or_default()));
    }
    let deleted = deleted.lock().unwrap().clone();
    let (deleted_set, dlq_set): (HashSet<&String>, HashSet<&String>) =
        (deleted.iter().collect(), in_dlq.iter().collect());
    assert_eq!(deleted_set.len(), deleted.len(), "no message deleted twice");
    assert_eq!(dlq_set.len(), in_dlq.len(), "no message in the DLQ twice");
    assert!(
        deleted_set.is_disjoint(&dlq_set),
        "no message both deleted and in the DLQ: {:?}",
        deleted_set
            .intersection(&dlq_set)
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        deleted.len() + in_dlq.len(),
        N,
        "every message ends deleted or in the DLQ ({} deleted, {} in the DLQ)",
        deleted.len(),
        in_dlq.len()
    );
    assert!(
        !in_dlq.is_empty() && !deleted.is_empty(),
        "both ends were exercised"
    );
}

/// Protects the report's completeness check: a DLQ message another reader holds hidden when the
/// report looks is counted as unread and named as a problem. The sixth 10,000-order soak's report
/// read 704 of the DLQ's 740 messages and the 36 it missed read as lost, without a word.
#[tokio::test]
async fn a_report_that_cannot_read_the_whole_dlq_says_so() {
    let e = env("dlqunread").await;
    send_to_dlq(&e, &[order("U1", 1), order("U2", 1), order("U3", 1)]).await;
    // Another reader holds one of them.
    assert_eq!(hold(&e.clients.sqs, &e.stack.dlq_url, 1).await.len(), 1);
    let summary = order_local::report::collect(
        &e.clients,
        &e.stack,
        &[],
        &order_local::mapping::MappingStats::default(),
        Vec::new(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        summary.dead_letters.len(),
        2,
        "the two visible ones are read"
    );
    assert_eq!(summary.dlq_unread, 1, "the held one is counted as unread");
    assert!(
        !summary.all_accounted_for(),
        "an incomplete look is a problem"
    );
    let text = order_local::report::render(&summary, &e.stack, "log");
    assert!(
        text.contains("the DLQ holds 1 message(s) its look could not read"),
        "{text}"
    );
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.dlq_url).await,
        (2, 1),
        "the report's look released what it read"
    );
}

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
    )
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
    (raw, order_pipeline::store::item_attributes(&read).unwrap())
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
