//! notification-dlq: the notification DLQ's dead letters -> a last attempt, else the failed
//! notification recorded on the order (PAID -> COMPLETED for a confirmation).

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

fn main() -> Result<(), order_pipeline::bootstrap::Error> {
    order_pipeline::bootstrap::main::<order_pipeline::registry::NotificationDlqFn>()
}
