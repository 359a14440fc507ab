//! order-watch-dlq: the stuck-order list -> an order that has ended since leaves it, one still
//! stuck stays. See order_pipeline::registry.

// Room over rustc's default 128 for the main future's nesting: docs/design.md, "Adding a stage".
#![recursion_limit = "256"]

fn main() -> Result<(), order_pipeline::bootstrap::Error> {
    order_pipeline::bootstrap::main::<order_pipeline::registry::OrderWatchDlqFn>()
}
