//! The pipeline under faults: the end-to-end run (the whole lifecycle, every invariant from the
//! tables, the provider's ledger and the customers' inbox) with the fault-injecting proxy between
//! the functions and the emulator: throttling, server errors, dropped connections (before and
//! after the emulator applied a request) and latency spikes, and orders of an Inventory item
//! another system wrote unreadable, which the inventory DLQ's handler must end REJECTED
//! (`dead_lettered`). `make test` runs 500 orders;
//! `make soak` runs `SOAK_ORDERS` (10,000) and prints the figures for docs/reliability.md.

mod common;

use order_local::faults::FaultRates;

/// Protects: zero lost and zero double-written orders, no oversell and no double charge when the
/// functions' calls are throttled, fail, are slow or lose their answers, and when invocations
/// are killed mid-batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_orders_with_faults_keep_every_invariant() {
    let (pipeline, figures) = common::lifecycle_run(500, Some(FaultRates::soak()), "soak").await;
    eprintln!("soak: {figures:?}");
    assert!(
        figures.faults_injected > 0,
        "faults were injected: {:?}",
        figures.faults
    );
    assert!(figures.kills > 0, "invocations were killed mid-batch");
    pipeline.shutdown().await;
}

/// `make soak`: SOAK_ORDERS (10,000) orders with faults; prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with make soak"]
async fn soak() {
    let orders: usize = std::env::var("SOAK_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let (pipeline, figures) = common::lifecycle_run(orders, Some(FaultRates::soak()), "soak").await;
    println!("soak passed: {figures:#?}");
    pipeline.shutdown().await;
}
