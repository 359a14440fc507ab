//! The Lambda functions of the order pipeline, behind small ports so that their logic is tested
//! without a network and again against a real endpoint. The modules, by role (each depends only
//! on those listed before it, and the wiring on all of them):
//! - [`ports`]: the traits the stages and functions need from the outside (the Orders and
//!   Inventory tables, the payment provider, the topics, the queues) and
//!   [`ports::PortError`];
//! - [`runtime`]: what every function runs on: [`runtime::worker::SqsWorker`], what every
//!   queue-fed function does around its records (a stage implements
//!   [`runtime::worker::RecordHandler`] and nothing else of the batch), the event-driven
//!   [`runtime::stage::Stage`], configuration and telemetry;
//! - [`stages`]: the queue-fed stages' logic:
//!   - [`stages::intake::OrderConsumer`]: order message -> Orders table;
//!   - [`stages::inventory::InventoryStage`]: OrderAccepted -> RESERVED or REJECTED;
//!   - [`stages::payment::PaymentStage`] and [`stages::payment_dlq::PaymentDlqStage`]:
//!     InventoryReserved -> PAID or PAYMENT_FAILED (stock sold or released);
//!   - [`stages::notification::NotificationStage`]: terminal outcomes -> customer
//!     notifications, PAID -> COMPLETED;
//! - [`functions`]: the functions that are not queue-fed stages:
//!   - [`functions::api::OrderApi`]: POST /orders and GET /orders/{orderId} behind API Gateway;
//!   - [`functions::order_events::OrderEvents`]: the Orders stream -> one lifecycle event per
//!     committed change;
//!   - [`functions::dlq_alarm::DlqAlarm`]: DLQ-depth alarm -> FAILED marks, ops summary;
//! - [`adapters`]: the ports' implementations on DynamoDB, SNS, SQS and the payment provider.
//!   The in-memory adapters and fault hooks (`adapters::memory`) exist only in tests and
//!   behind the `test-support` feature;
//! - the wiring: [`registry`], the one list of the Lambda functions (each built with its
//!   adapters from an environment), and [`bootstrap`], every binary's `main`.

/// The Lambda binaries' allocator (the `mimalloc` feature, which every function crate enables):
/// about 10% less CPU per batch than glibc's malloc. The stack sets `MIMALLOC_ARENA_EAGER_COMMIT=0`
/// in each function's environment, which keeps peak memory where glibc's was (docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod adapters;
pub mod bootstrap;
pub mod functions;
pub mod ports;
pub mod registry;
pub mod runtime;
pub mod stages;
