//! The documented `cargo lambda invoke dlq-alarm --data-file test/events/alarm-alarm.json` (and
//! `alarm-ok.json`), under the `cargo lambda watch` that `make run` prints for dlq-alarm (the
//! local test kit's `watch`: the real binary, dlq-alarm's own environment, the emulator).

use order_local::kit::watch::Watched;

/// Protects (issue 32): with two letters in the DLQ, the alarm's documented invoke examines them
/// under `cargo lambda watch`, whose runtime API sends the constant deadline 600000; read as an
/// epoch time, the run answered DlqSweepIncomplete "not examined before the invocation's
/// deadline". The OK fixture is answered too.
#[test]
fn the_documented_invokes_of_dlq_alarm_examine_the_dead_letters() {
    let watched = Watched::start("dlq-alarm");
    let stack = &watched.stack;
    for body in ["{\"orderId\":\"O-DEAD-1\"}", "not json"] {
        watched
            .rt
            .block_on(
                stack
                    .clients
                    .sqs
                    .send_message()
                    .queue_url(&stack.created.stack.dlq_url)
                    .message_body(body)
                    .send(),
            )
            .expect("a letter in the DLQ");
    }
    let run = watched.invoke_fixtures(env!("CARGO_BIN_EXE_dlq-alarm"));
    assert_eq!(run.invoked.len(), 2, "{:?}", run.invoked);
    run.answer(0);
    run.answer(1);
    assert!(
        !run.log_text().contains("deadline"),
        "nothing is cut off by the invocation's deadline:\n{}",
        run.log_text()
    );
}
