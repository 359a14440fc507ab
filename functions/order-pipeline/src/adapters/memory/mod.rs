//! In-memory adapters with the same conditional semantics as the AWS ones, and fault injection,
//! so the stages' and functions' logic is tested without a network: one file per port. Only in
//! tests and behind the `test-support` feature: no Lambda binary carries them.

pub mod inventory;
pub mod orders;
pub mod publish;
pub mod queue;
