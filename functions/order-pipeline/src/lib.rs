//! The Lambda functions of the order pipeline, behind small ports so that their logic is tested
//! without a network and again against a real endpoint:
//! - [`worker::SqsWorker`]: what every queue-fed function does around its records (a stage
//!   implements [`worker::RecordHandler`] and nothing else of the batch);
//! - [`consumer::OrderConsumer`]: the intake stage, order message -> Orders table;
//! - [`dlq_alarm::DlqAlarm`]: DLQ-depth alarm -> FAILED marks, ops summary;
//! - [`api::OrderApi`]: POST /orders and GET /orders/{orderId} behind API Gateway;
//! - [`events::OrderEvents`]: the Orders stream -> one lifecycle event per committed change;
//! - [`inventory::InventoryWorker`]: OrderAccepted -> RESERVED or REJECTED;
//! - [`payment::PaymentWorker`] and [`payment::PaymentDeadLetters`]: InventoryReserved -> PAID
//!   or PAYMENT_FAILED (stock sold or released);
//! - [`notification::NotificationWorker`]: terminal outcomes -> customer notifications,
//!   PAID -> COMPLETED.
//!
//! [`bootstrap`] builds each with its AWS adapters from an environment, once per process. The
//! in-memory adapters and fault hooks exist only in tests and behind the `test-support` feature.

/// The Lambda binaries' allocator (the `mimalloc` feature, which every function crate enables):
/// about 10% less CPU per batch than glibc's malloc. The stack sets `MIMALLOC_ARENA_EAGER_COMMIT=0`
/// in each function's environment, which keeps peak memory where glibc's was (docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod api;
pub mod aws;
pub mod bootstrap;
pub mod config;
pub mod consumer;
pub mod dlq_alarm;
pub mod events;
pub mod inventory;
pub mod notification;
pub mod notify;
pub mod payment;
pub mod port;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod worker;
