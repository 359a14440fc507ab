//! What every function runs on: the SQS batch worker ([`worker`]), the bounded runner of a
//! batch's work under the invocation's deadline ([`bounded`]), the event-driven stage around the
//! worker ([`stage`]), configuration ([`config`]) and telemetry ([`telemetry`]). It depends on
//! [`crate::ports`] at most; the wiring ([`crate::registry`], [`crate::bootstrap`]) sits above it.

pub mod bounded;
pub mod config;
pub mod stage;
pub mod telemetry;
pub mod worker;
