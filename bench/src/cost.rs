//! The cost model (sections 5 and 6): AWS list prices, the whole lifecycle's stages, and the
//! cost tables.

use crate::setup::function_setting;

/// AWS list prices (us-east-1, USD) as published by AWS and known to this project on the date
/// below; this machine has no internet access, so they were not re-read from the pricing pages
/// when the benchmark ran. Change them here if they move.
pub(crate) const PRICES_DATE: &str = "2025-05 (AWS public pricing pages, us-east-1)";
pub(crate) const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
pub(crate) const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
pub(crate) const SQS_REQUEST: f64 = 0.40 / 1e6;
pub(crate) const SNS_PUBLISH: f64 = 0.50 / 1e6;
pub(crate) const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
pub(crate) const LOGS_INGEST_GB: f64 = 0.50;
const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
const API_GATEWAY_HTTP_REQUEST: f64 = 1.00 / 1e6;
/// Lambda's memory size at which a function gets one full vCPU.
pub(crate) const FULL_VCPU_MB: f64 = 1769.0;

/// A function's share of the lifecycle: how many of its events one order makes, and how many
/// AWS (or provider) round trips one record waits for in sequence.
struct Stage {
    function: &'static str,
    /// Records per order on the completed path.
    records_per_order: f64,
    /// Round trips a record waits for one after the other (a batch's records overlap).
    calls_in_sequence: f64,
    what: &'static str,
}

/// Per order on the completed path (one sku, items under 1 KB), from the code: see
/// docs/benchmarks.md, section 6.
const STAGES: &[Stage] = &[
    Stage {
        function: "order-api",
        records_per_order: 1.0,
        calls_in_sequence: 2.0,
        what: "POST /orders: a GetItem (an id stored with other content is 409), one SNS publish",
    },
    Stage {
        function: "order-consumer",
        records_per_order: 1.0,
        calls_in_sequence: 1.0,
        what: "a batch's new orders as one BatchExecuteStatement of INSERTs (a conditional PutItem each for duplicates and conflicts)",
    },
    Stage {
        function: "order-events",
        records_per_order: 5.0,
        calls_in_sequence: 1.0,
        what: "5 stream records (created, reserved, attempt counted, paid, completed), 4 events in PublishBatch requests of 10",
    },
    Stage {
        function: "inventory",
        records_per_order: 1.0,
        calls_in_sequence: 3.0,
        what: "GetItem of the order, BatchGetItem of the skus, one TransactWriteItems",
    },
    Stage {
        function: "payment",
        records_per_order: 1.0,
        calls_in_sequence: 3.0,
        what: "attempt counted (UpdateItem), the provider, one TransactWriteItems",
    },
    Stage {
        function: "notification",
        records_per_order: 1.0,
        calls_in_sequence: 3.0,
        what: "GetItem, a publish, UpdateItem to COMPLETED",
    },
    Stage {
        function: "order-watch",
        records_per_order: 1.0,
        calls_in_sequence: 1.0,
        what: "GetItem of the order once its delay ends (it writes nothing)",
    },
];

/// Section 6: what one order costs across the whole lifecycle, from the counts of the
/// completed path, the measured order-consumer and order-api figures, and cdk.json.
pub(crate) fn lifecycle_cost(
    delay_ms: f64,
    consumer_cpu_per_batch: f64,
    consumer_median_ms: f64,
    api_median_ms: f64,
    log_per_order: f64,
) {
    println!("\n## 6. The whole lifecycle per million completed orders (one sku each, posted to the API)\n");
    println!("Lambda duration per batch: order-consumer and order-api as measured above; the other stages estimated as their round trips in sequence x {delay_ms} ms + order-consumer's CPU per batch, stretched by 1769 MB / memory.\n");
    println!("| function | memory MB | batch | invocations | est. ms per batch | compute USD | requests USD | per order |\n| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut lambda_usd = 0.0;
    let mut invocations_total = 0.0;
    for stage in STAGES {
        let memory = function_setting(stage.function, "memoryMb").unwrap_or(128.0);
        let batch = function_setting(stage.function, "batchSize")
            .unwrap_or(1.0)
            .max(1.0);
        let invocations = 1e6 * stage.records_per_order / batch;
        let stretch = (FULL_VCPU_MB / memory - 1.0).max(0.0);
        let ms = match stage.function {
            "order-consumer" => consumer_median_ms + consumer_cpu_per_batch * stretch,
            // Measured in process: its CPU is the wall time beyond the endpoint's delays.
            "order-api" => {
                api_median_ms
                    + (api_median_ms - stage.calls_in_sequence * delay_ms).max(0.0) * stretch
            }
            _ => stage.calls_in_sequence * delay_ms + consumer_cpu_per_batch * (1.0 + stretch),
        };
        let compute = invocations * (ms.ceil() / 1000.0) * (memory / 1024.0) * LAMBDA_ARM_GB_SECOND;
        let requests = invocations * LAMBDA_REQUEST;
        lambda_usd += compute + requests;
        invocations_total += invocations;
        println!(
            "| {} | {memory:.0} | {batch:.0} | {invocations:.0} | {ms:.1} | {compute:.3} | {requests:.3} | {} |",
            stage.function, stage.what
        );
    }
    // order-events publishes a stream batch's events 10 to a PublishBatch request, billed as
    // one publish per 64 KB (an event is under 2 KB): at load a stream batch holds 10 events or
    // more; a quiet stream's batch of one event is one publish, as before.
    let sns_publishes = 1.0 + 4.0 / 10.0 + 1.0;
    let sqs_messages = 5.0;
    let write_units = 1.0 + 4.0 + 1.0 + 4.0 + 1.0;
    let read_units = 1.0 + 1.0 + 1.0 + 1.0 + 1.0;
    let logging_functions = STAGES.len() as f64;
    let lines = [
        ("API Gateway HTTP API", 1e6 * API_GATEWAY_HTTP_REQUEST, "one POST per order".to_string()),
        ("Lambda (every function)", lambda_usd, format!("{invocations_total:.0} invocations, compute and requests, table above")),
        ("SNS publishes", 1e6 * sns_publishes * SNS_PUBLISH, "2.4 per order: the order topic, 4 lifecycle events (accepted, reserved, paid, completed) 10 to a PublishBatch request (billed per 64 KB: one request), the customer's confirmation; delivery to SQS free".into()),
        ("SQS requests", 1e6 * sqs_messages * (1.0 + 2.0 / 10.0) * SQS_REQUEST, "5 messages per order (intake, inventory, payment, notification and order-watch queues): SNS's send + a receive and a batch delete per 10".into()),
        ("DynamoDB writes", 1e6 * write_units * DYNAMODB_WRITE_UNIT, "11 write units: the intake's INSERT 1, the reservation transaction 4 (2 items x 2), attempt count 1, the payment transaction 4, COMPLETED 1".into()),
        ("DynamoDB reads", 1e6 * read_units * DYNAMODB_READ_UNIT, "5 strongly consistent read units: the API's look at the id, the order and the sku's stock before reserving, the order before confirming, the watch's look".into()),
        ("DynamoDB Streams", 0.0, "reads by a Lambda trigger are free".into()),
        (
            "CloudWatch Logs ingestion",
            1e6 * log_per_order * logging_functions / 1e9 * LOGS_INGEST_GB,
            format!("{log_per_order:.0} bytes per order per function (measured for order-consumer) x {logging_functions:.0} functions"),
        ),
    ];
    println!();
    print_costs(&lines, "not per order: KMS keys and requests (data keys reused for minutes), idle SQS long polls, alarms, X-Ray (sampled), storage");
}

/// A cost table: each item's USD and basis, then their total with what it leaves out.
pub(crate) fn print_costs(lines: &[(&str, f64, String)], not_included: &str) {
    println!("| item | USD | basis |\n| --- | --- | --- |");
    let mut total = 0.0;
    for (item, usd, basis) in lines {
        total += usd;
        println!("| {item} | {usd:.3} | {basis} |");
    }
    println!("| **total** | **{total:.2}** | {not_included} |");
}

#[cfg(test)]
mod tests {
    use super::*;
    use order_pipeline::registry::{self, Trigger};

    /// Protects: the cost model (section 6) covers every function an order passes through on
    /// its completed path and names only registered functions: a stage added to the registry
    /// and not to STAGES fails here. dlq-alarm, the dead-letter handlers and the stages of other
    /// paths (refund: a cancel's) are off that path.
    #[test]
    fn the_lifecycle_cost_model_covers_every_function_on_the_completed_path() {
        use order_domain::EventType as E;
        let completed_path = [
            E::OrderAccepted,
            E::InventoryReserved,
            E::PaymentSucceeded,
            E::OrderCompleted,
        ];
        let modelled: std::collections::BTreeSet<&str> =
            STAGES.iter().map(|s| s.function).collect();
        let on_the_path: std::collections::BTreeSet<&str> = registry::functions()
            .iter()
            .filter(|f| f.trigger != Trigger::Alarm && f.dead_letters_of.is_none())
            .filter(|f| f.events.is_empty() || f.events.iter().any(|e| completed_path.contains(e)))
            .map(|f| f.name)
            .collect();
        assert_eq!(modelled, on_the_path);
    }
}
