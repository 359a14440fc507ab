//! The functions that are not queue-fed stages: the HTTP API ([`api::OrderApi`]), the Orders
//! stream's publisher ([`order_events::OrderEvents`]) and the intake DLQ's alarm handler
//! ([`dlq_alarm::DlqAlarm`]). Each is its own Lambda handler, built on [`crate::runtime`] and
//! reaching the outside only through [`crate::ports`].

pub mod api;
pub mod dlq_alarm;
pub mod order_events;
