//! The documented `cargo lambda invoke order-consumer --data-file test/events/sqs-batch.json`,
//! under the `cargo lambda watch` that `make run` prints for order-consumer: the real binary,
//! order-consumer's own environment from the template, the emulator, and cargo-lambda's runtime
//! API behaviour (the local test kit's `watch`).

use order_local::kit::watch::Watched;
use order_local::report::scan_orders;

/// Protects (issue 32): a queue-fed function works under `cargo lambda watch`, whose runtime API
/// sends the constant `Lambda-Runtime-Deadline-Ms: 600000`. Read as an epoch time, that is a
/// deadline in 1970, and every record was answered BatchUnavailable "not started before the
/// invocation's deadline". The fixture's good orders are stored (the duplicate once), its
/// invalid body alone fails, its reason logged.
#[test]
fn the_documented_invoke_of_order_consumer_stores_the_fixture_batch() {
    let watched = Watched::start("order-consumer");
    let run = watched.invoke_fixtures(env!("CARGO_BIN_EXE_order-consumer"));
    let log = run.log_text();
    assert_eq!(run.invoked.len(), 1, "{:?}", run.invoked);
    assert_eq!(
        run.answer(0)["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": "00000005-aaaa-4bbb-8ccc-fixture00005"}]),
        "only the invalid body fails (SQS's redrive takes it to the DLQ)\n{log}"
    );
    let stack = &watched.stack;
    let mut stored: Vec<String> = watched
        .rt
        .block_on(scan_orders(&stack.clients, &stack.created.stack.table_name))
        .unwrap()
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    stored.sort();
    assert_eq!(stored.len(), 3, "{stored:?}\n{log}");
    assert!(stored.contains(&"O-FIXTURE-1".to_string()), "{stored:?}");
    assert!(stored.contains(&"O1234".to_string()), "{stored:?}");
    assert!(
        log.contains("items[0].quantity"),
        "the invalid body's reason is logged, naming the field:\n{log}"
    );
}
