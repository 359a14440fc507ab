//! The two Lambda functions of the order pipeline, behind small ports so that their logic is
//! tested without a network and again against a real endpoint:
//! - [`consumer::OrderConsumer`]: SQS batch -> Orders table, returning the failed records;
//! - [`dlq_alarm::DlqAlarm`]: DLQ-depth alarm -> FAILED marks, ops summary.
//!
//! [`bootstrap`] builds each with its AWS adapters from the environment, once per process.

pub mod aws;
pub mod bootstrap;
pub mod config;
pub mod consumer;
pub mod dlq_alarm;
pub mod notify;
pub mod queue;
pub mod store;
pub mod telemetry;
