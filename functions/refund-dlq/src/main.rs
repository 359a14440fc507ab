//! refund-dlq: the refund DLQ's dead letters -> the refund stage's last attempt.

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

fn main() -> Result<(), order_pipeline::bootstrap::Error> {
    order_pipeline::bootstrap::main::<order_pipeline::registry::RefundDlqFn>()
}
