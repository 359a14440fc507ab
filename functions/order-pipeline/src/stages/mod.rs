//! The queue-fed stages' logic. Each is a record handler that the batch worker
//! ([`crate::runtime::worker::SqsWorker`]) runs over a batch: the intake
//! ([`intake::OrderConsumer`]) implements [`crate::runtime::worker::RecordHandler`] itself; the
//! event-driven stages implement [`crate::runtime::stage::Stage`] and run inside
//! [`crate::runtime::stage::EventStage`]. A stage reaches the outside only through
//! [`crate::ports`].

pub mod intake;
pub mod inventory;
pub mod inventory_dlq;
pub mod notification;
pub mod notification_dlq;
pub mod payment;
pub mod payment_dlq;
pub mod refund;
pub mod refund_dlq;
pub mod watch;
