//! What every function runs on: the SQS batch worker ([`worker`]) and the event-driven stage
//! around it ([`stage`]), configuration ([`config`]) and telemetry ([`telemetry`]). It depends
//! on [`crate::ports`] at most; the wiring ([`crate::registry`], [`crate::bootstrap`]) sits
//! above it.

pub mod config;
pub mod stage;
pub mod telemetry;
pub mod worker;
