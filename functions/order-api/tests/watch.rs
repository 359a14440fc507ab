//! The documented `cargo lambda invoke order-api --data-file test/events/api-post-order.json`,
//! under the `cargo lambda watch` that `make run` prints for order-api (the local test kit's
//! `watch`: the real binary, order-api's own environment, the emulator).

use order_local::alarm::depth;
use order_local::kit::watch::Watched;

/// Protects (issue 32): the API's documented invoke answers 202 with the order's id and puts the
/// order on the order queue, with only order-api's environment (the printed command merged
/// every function's before).
#[test]
fn the_documented_invoke_of_order_api_accepts_the_fixture_order() {
    let watched = Watched::start("order-api");
    let run = watched.invoke_fixtures(env!("CARGO_BIN_EXE_order-api"));
    let answer = run.answer(0);
    assert_eq!(answer["statusCode"], 202, "{answer}\n{}", run.log_text());
    let body: serde_json::Value =
        serde_json::from_str(answer["body"].as_str().expect("a body")).expect("a JSON body");
    assert!(body["orderId"].is_string(), "{body}");
    let stack = &watched.stack;
    assert_eq!(
        watched
            .rt
            .block_on(depth(&stack.clients.sqs, &stack.created.stack.queue_url))
            .unwrap(),
        1,
        "the order is on the order queue\n{}",
        run.log_text()
    );
}
