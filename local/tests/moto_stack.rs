//! The emulated stack on moto's server (started by each test on a free loopback port): what the
//! emulator holds matches the synthesized template, the emulator and the latency proxy in front
//! of it keep their callers' connections open, and the emulator's fast answers are moto's.

#[path = "common/moto.rs"]
mod moto;

use std::time::Duration;

use moto::{dynamodb_through, env};
use order_local::emulator::Emulator;
use serde_json::Value;

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

/// Protects what `order-local --aws-latency-ms` (make bench section 8) measures: calls through
/// the proxy reuse the caller's connection, as calls to a region's endpoint do, whatever the
/// emulator behind it does with its own (its `Connection: close`, when it closes one, used to be
/// passed on, so every call opened a new connection and the kernel's part of that was counted
/// as the functions' CPU); and each call is held for the proxy's latency.
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

/// Protects the emulator's kept connections (local/moto_server.py, `_KeepAliveRequestHandler`):
/// two requests one after another on one TCP connection are both answered. werkzeug's server
/// closed the connection after every answer (each call of each client was a new connection and
/// a new server thread); this read then ends before a second answer.
#[test]
fn the_emulator_answers_two_requests_on_one_connection() {
    use std::io::{Read, Write};
    let emulator = Emulator::start().expect("moto_server starts");
    let address = emulator
        .endpoint()
        .trim_start_matches("http://")
        .to_string();
    let mut connection = std::net::TcpStream::connect(&address).expect("connect to the emulator");
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = "{}";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    connection.write_all(request.as_bytes()).unwrap();
    connection.write_all(request.as_bytes()).unwrap();
    // Both answers, each a status line and a JSON body naming the table list.
    let mut answers = String::new();
    let mut buffer = [0u8; 4096];
    while answers.matches("TableNames").count() < 2 {
        match connection.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answers.push_str(&String::from_utf8_lossy(&buffer[..n])),
        }
    }
    assert_eq!(
        answers.matches("HTTP/1.1 200").count(),
        2,
        "two answers on one connection:\n{answers}"
    );
    assert_eq!(answers.matches("TableNames").count(), 2, "{answers}");
}

/// Protects each test's own emulator: emulators started at once (as the tests in one binary
/// start theirs) each listen on a port of their own and answer for themselves. CI once saw
/// "connection refused" on a test's first call: the port had been picked by the caller and
/// released before moto bound it, so another emulator could hold it, and the caller talked to
/// that one until it stopped. Now moto binds a port the system picks and reports it
/// (local/moto_server.py, MOTO_PORT_FILE).
#[test]
fn emulators_started_at_once_each_answer_on_their_own_port() {
    let emulators: Vec<Emulator> = (0..4)
        .map(|_| std::thread::spawn(|| Emulator::start().expect("moto_server starts")))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let mut ports: Vec<&str> = emulators
        .iter()
        .map(|e| e.endpoint().rsplit(':').next().unwrap())
        .collect();
    assert!(!ports.contains(&"0"), "a real port each: {ports:?}");
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), emulators.len(), "a port each: {ports:?}");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut clients = Vec::new();
            for (i, e) in emulators.iter().enumerate() {
                let sqs = aws_sdk_sqs::Client::new(&e.sdk_config().await);
                sqs.create_queue()
                    .queue_name(format!("own-{i}"))
                    .send()
                    .await
                    .expect("create a queue");
                clients.push(sqs);
            }
            for (i, sqs) in clients.iter().enumerate() {
                let listed = sqs.list_queues().send().await.expect("list queues");
                let names: Vec<&str> = listed
                    .queue_urls()
                    .iter()
                    .map(|u| u.rsplit('/').next().unwrap())
                    .collect();
                assert_eq!(
                    names,
                    vec![format!("own-{i}")],
                    "emulator {i} holds only its queue"
                );
            }
        });
}

/// Protects the emulator's fast answers (local/moto_server.py, `_serialized_fast`): the item
/// operations and stream reads the pipeline makes answer what moto's own serializer writes. The
/// emulator here writes both and exits on the first difference, so a call would fail; the SDK
/// reads every answer back as it was written (numbers as text, maps, lists, sets, binary, null,
/// booleans, a stream record's images and creation time).
#[tokio::test]
async fn the_emulators_fast_item_and_stream_answers_are_the_ones_moto_writes() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue as V, BillingMode, KeySchemaElement, KeyType,
        KeysAndAttributes, Put, ReturnValue, ScalarAttributeType, StreamSpecification,
        StreamViewType, TransactWriteItem,
    };
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    use std::collections::HashMap;

    let emulator = Emulator::start_checking_fast_answers().expect("moto_server starts");
    let config = emulator.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let streams = aws_sdk_dynamodbstreams::Client::new(&config);
    let table = dynamodb
        .create_table()
        .table_name("fast")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create the table");
    let line = HashMap::from([
        ("sku".to_string(), V::S("LAPTOP-15".into())),
        ("quantity".to_string(), V::N("2".into())),
        ("unitPrice".to_string(), V::S("1299.99".into())),
    ]);
    let item = HashMap::from([
        ("pk".to_string(), V::S("ORDER-1".into())),
        ("version".to_string(), V::N("1".into())),
        ("amount".to_string(), V::N("2599.98".into())),
        (
            "lines".to_string(),
            V::L(vec![V::M(line.clone()), V::M(line)]),
        ),
        ("paid".to_string(), V::Bool(false)),
        ("note".to_string(), V::Null(true)),
        ("tags".to_string(), V::Ss(vec!["a".into(), "b".into()])),
        ("sizes".to_string(), V::Ns(vec!["1".into(), "2.5".into()])),
        (
            "blob".to_string(),
            V::B(aws_sdk_dynamodb::primitives::Blob::new(
                b"\x00\xffbytes".to_vec(),
            )),
        ),
    ]);
    dynamodb
        .put_item()
        .table_name("fast")
        .set_item(Some(item.clone()))
        .send()
        .await
        .expect("put");
    let got = dynamodb
        .get_item()
        .table_name("fast")
        .key("pk", V::S("ORDER-1".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.item.as_ref(),
        Some(&item),
        "GetItem answers the item put"
    );
    let updated = dynamodb
        .update_item()
        .table_name("fast")
        .key("pk", V::S("ORDER-1".into()))
        .update_expression("SET version = version + :one, paid = :t")
        .expression_attribute_values(":one", V::N("1".into()))
        .expression_attribute_values(":t", V::Bool(true))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("update");
    let attributes = updated.attributes.expect("ALL_NEW attributes");
    assert_eq!(attributes["version"], V::N("2".into()));
    assert_eq!(attributes["lines"], item["lines"]);
    dynamodb
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("fast")
                        .item("pk", V::S("ORDER-2".into()))
                        .item("version", V::N("1".into()))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .expect("transaction");
    let batch = dynamodb
        .batch_get_item()
        .request_items(
            "fast",
            KeysAndAttributes::builder()
                .keys(HashMap::from([("pk".to_string(), V::S("ORDER-1".into()))]))
                .keys(HashMap::from([("pk".to_string(), V::S("ORDER-2".into()))]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("batch get");
    assert_eq!(batch.responses.unwrap_or_default()["fast"].len(), 2);
    let scanned = dynamodb
        .scan()
        .table_name("fast")
        .send()
        .await
        .expect("scan");
    assert_eq!(scanned.count, 2);
    let queried = dynamodb
        .query()
        .table_name("fast")
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", V::S("ORDER-1".into()))
        .send()
        .await
        .expect("query");
    assert_eq!(queried.items.unwrap_or_default().len(), 1);

    let stream_arn = table
        .table_description
        .and_then(|t| t.latest_stream_arn)
        .expect("the table has a stream");
    let shard = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .expect("describe the stream")
        .stream_description
        .and_then(|d| d.shards)
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.shard_id)
        .expect("a shard");
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&stream_arn)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("shard iterator")
        .shard_iterator
        .expect("an iterator");
    let records = streams
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("stream records")
        .records
        .unwrap_or_default();
    assert_eq!(records.len(), 3, "insert, modify, insert: {records:?}");
    let modify = records[1].dynamodb.as_ref().expect("the change");
    assert!(
        modify.approximate_creation_date_time.is_some(),
        "each record has its creation time"
    );
    let new_image = modify.new_image.as_ref().expect("the new image");
    assert_eq!(
        new_image["version"],
        aws_sdk_dynamodbstreams::types::AttributeValue::N("2".into())
    );
    assert!(modify.old_image.is_some(), "and the old one");
}
