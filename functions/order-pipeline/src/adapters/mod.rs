//! The ports' implementations: DynamoDB for the Orders and Inventory tables, SNS for the topics,
//! SQS for the queues, the payment provider's HTTP API or the simulated provider, and the
//! in-memory adapters with their fault hooks, which exist only in tests and behind the
//! `test-support` feature. [`aws`] holds the SDK set-up they share and the classification of
//! SDK errors into [`crate::ports::PortError`].

pub mod aws;
pub mod dynamodb;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod payment_http;
pub mod payment_simulated;
pub mod sns;
pub mod sqs;
