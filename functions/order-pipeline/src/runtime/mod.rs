//! What every function runs on: the SQS batch worker ([`worker`]) and the event-driven stage
//! around it ([`stage`]), configuration ([`config`]) and telemetry ([`telemetry`]), and the
//! wiring: the one registry of the Lambda functions ([`registry`]) and the binaries' start-up
//! ([`bootstrap`]). Only the registry and the bootstrap know the stages, the functions and the
//! adapters; the rest depends on [`crate::ports`] at most.

pub mod bootstrap;
pub mod config;
pub mod registry;
pub mod stage;
pub mod telemetry;
pub mod worker;
