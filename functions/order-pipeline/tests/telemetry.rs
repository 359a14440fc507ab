//! What the intake's invocations log and count (docs/contract.md, "Correlation, logs, metrics"):
//! the correlation id on every record line, cold start and request id, the EMF metrics, the batch
//! line, and the service and function name on every line, against in-memory ports.

mod common;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessageAttribute};
use common::{consumer, logged, order_body, record};
use lambda_runtime::{Context, LambdaEvent};
use order_pipeline::runtime::telemetry::{capture_logs_into, Captured};

/// The EMF line among the captured telemetry.
fn emf_line(out: &Captured) -> serde_json::Value {
    out.json()
        .into_iter()
        .find(|l| l.get("_aws").is_some())
        .expect("an EMF line")
}

#[tokio::test]
async fn correlation_id_comes_from_attribute_then_sns_envelope_then_sqs_id_and_is_on_every_record_line(
) {
    let out = Captured::default();
    let c = consumer(&out);
    let mut with_attr = record("m1", &order_body("O1", 1));
    let mut attr = SqsMessageAttribute::default();
    attr.string_value = Some("corr-from-publisher".into());
    attr.data_type = Some("String".into());
    with_attr
        .message_attributes
        .insert("correlationId".into(), attr);
    let enveloped = record(
        "m2",
        &serde_json::json!({"Type": "Notification", "MessageId": "sns-42", "Message": order_body("O2", 1)}).to_string(),
    );
    let plain = record("m3", &order_body("O3", 1));
    logged(&out, c.handle_records(&[with_attr, enveloped, plain]))
        .await
        .unwrap();
    assert_eq!(
        c.handler().store().get("O1").unwrap().correlation_id,
        "corr-from-publisher"
    );
    assert_eq!(
        c.handler().store().get("O2").unwrap().correlation_id,
        "sns-42"
    );
    assert_eq!(c.handler().store().get("O3").unwrap().correlation_id, "m3");
    for line in out.json().iter().filter(|l| l.get("message_id").is_some()) {
        assert!(
            line["correlation_id"].is_string(),
            "record line without correlation_id: {line}"
        );
    }
    let accepted: Vec<_> = out
        .json()
        .into_iter()
        .filter(|l| l["message"] == "order accepted")
        .collect();
    assert_eq!(accepted.len(), 3);
    assert!(accepted.iter().all(|l| l["order_id"].is_string()));
}

#[tokio::test]
async fn cold_start_is_true_only_on_the_first_invocation_and_request_id_is_logged() {
    let out = Captured::default();
    let c = consumer(&out);
    let event = |id: &str| {
        let mut ctx = Context::default();
        ctx.request_id = id.into();
        let mut payload = SqsEvent::default();
        payload.records = vec![record(id, &order_body(id, 1))];
        LambdaEvent::new(payload, ctx)
    };
    logged(&out, async {
        c.handle(event("r1")).await.unwrap();
        c.handle(event("r2")).await.unwrap();
    })
    .await;
    let accepted: Vec<_> = out
        .json()
        .into_iter()
        .filter(|l| l["message"] == "order accepted")
        .collect();
    assert_eq!(accepted[0]["cold_start"], true);
    assert_eq!(accepted[0]["function_request_id"], "r1");
    assert_eq!(accepted[1]["cold_start"], false);
    assert_eq!(accepted[1]["function_request_id"], "r2");
}

#[tokio::test]
async fn metrics_are_written_in_embedded_metric_format() {
    let out = Captured::default();
    let c = consumer(&out);
    let mut fresh = record("m1", &order_body("O1", 1));
    fresh.attributes.insert(
        "SentTimestamp".into(),
        chrono::Utc::now().timestamp_millis().to_string(),
    );
    c.handle_records(&[
        fresh,
        record("m2", "{}"),
        record("m3", &order_body("O1", 1)),
    ])
    .await
    .unwrap();
    let emf = emf_line(&out);
    assert_eq!(emf["BatchSize"], 3.0);
    assert_eq!(emf["OrdersAccepted"], 1.0);
    assert_eq!(emf["OrdersDuplicate"], 1.0);
    assert_eq!(emf["OrdersInvalid"], 1.0);
    assert_eq!(emf["RecordsFailed"], 1.0);
    assert!(
        emf["OrderLatency"].as_f64().is_some_and(|ms| ms < 60_000.0),
        "{emf}"
    );
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "OrderPipeline"
    );
}

/// Protects: a SentTimestamp from a clock that disagrees by more than a day (an old fixture, a
/// skewed publisher) adds no latency: one such value would swamp the OrderLatency metric.
#[tokio::test]
async fn latency_from_a_clock_a_day_off_is_not_recorded() {
    let out = Captured::default();
    let c = consumer(&out);
    // record() sends SentTimestamp 2025-05-03, far more than a day ago.
    c.handle_records(&[record("m1", &order_body("O1", 1))])
        .await
        .unwrap();
    let emf = emf_line(&out);
    assert_eq!(emf["OrdersAccepted"], 1.0);
    assert!(emf.get("OrderLatency").is_none(), "{emf}");
}

#[tokio::test]
async fn the_batch_line_counts_outcomes_and_per_record_success_lines_are_debug() {
    let out = Captured::default();
    let c = consumer(&out);
    let batch = [
        record("m1", &order_body("O1", 1)),
        record("m2", &order_body("O1", 1)),
        record("m3", "{}"),
    ];
    logged(&out, c.handle_records(&batch)).await.unwrap();
    let lines = out.json();
    let batch_line = lines
        .iter()
        .find(|l| l["message"] == "batch processed")
        .expect("batch line");
    assert_eq!(batch_line["level"], "INFO");
    assert_eq!(
        (
            &batch_line["records"],
            &batch_line["done"],
            &batch_line["failed"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(2),
            &serde_json::json!(1)
        )
    );
    let accepted = lines
        .iter()
        .find(|l| l["message"] == "order accepted")
        .expect("accepted line");
    assert_eq!(
        accepted["level"], "DEBUG",
        "kept out of INFO: it was most of the log volume"
    );
    let failed = lines
        .iter()
        .find(|l| l["message_id"] == "m3" && l["reason"].is_string())
        .expect("failure line");
    assert_eq!(failed["level"], "WARN");
}

/// Protects: every invocation's lines carry the function's own service and, when the context
/// names it, its function name (the local runner runs several functions in one process).
#[tokio::test]
async fn invocation_lines_carry_the_functions_service_and_name() {
    let out = Captured::default();
    let c = consumer(&out);
    let mut context = Context::default();
    context.request_id = "r1".into();
    context.env_config = Arc::new(lambda_runtime::Config {
        function_name: "local-IntakeFunction".into(),
        ..Default::default()
    });
    let mut event = SqsEvent::default();
    event.records = vec![record("m1", "{}")];
    // The process-wide layer names another service ("process"), as the local runner's does.
    capture_logs_into(&out);
    c.handle(LambdaEvent::new(event, context)).await.unwrap();
    let lines = out.json();
    let batch = lines
        .iter()
        .find(|l| l["message"] == "batch processed")
        .unwrap();
    assert_eq!(batch["service"], "order-consumer");
    assert_eq!(batch["function_name"], "local-IntakeFunction");
}

/// Protects: a record that fails on a queue without a DLQ (a dead-letter handler's, which keeps
/// a letter it cannot settle) is a WARN however often it came back, never the ERROR "it moves to
/// the DLQ" (the old handlers' MAX_RECEIVE_COUNT 1000 said so for every look after ~16 hours).
#[tokio::test]
async fn a_failure_on_a_queue_without_a_dlq_never_claims_a_move_to_the_dlq() {
    let out = Captured::default();
    let config = order_pipeline::runtime::config::WorkerConfig {
        max_receive_count: order_pipeline::runtime::config::NO_DEAD_LETTER_QUEUE,
        ..common::worker_config()
    };
    let c = order_pipeline::runtime::worker::SqsWorker::new(
        order_pipeline::stages::intake::OrderConsumer::new(
            order_pipeline::adapters::memory::orders::MemoryStore::new(),
        ),
        config,
        Arc::new(out.clone()),
        None,
    )
    .unwrap();
    let mut poison = record("m1", "{}");
    poison
        .attributes
        .insert("ApproximateReceiveCount".into(), "5000".into());
    logged(&out, c.handle_records(&[poison])).await.unwrap();
    let failed = out
        .json()
        .into_iter()
        .find(|l| l["message_id"] == "m1" && l["reason"].is_string())
        .expect("failure line");
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no DLQ"),
        "{failed}"
    );
}
