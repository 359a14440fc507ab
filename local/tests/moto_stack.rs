//! The emulated stack on moto's server (started by each test on a free loopback port): what the
//! emulator holds matches the synthesized template, and the latency proxy in front of it keeps
//! its callers' connections open.

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
