//! The local test kit: the stand-ins the local runner, the benchmarks and the tests share.
//!
//! - [`http_server`]: an HTTP/1.1 server on a free loopback port, for every local endpoint (the
//!   HTTP API, the fake payment provider, the fault proxy, the benchmarks' fake AWS endpoints).
//! - [`runtime_api`]: a stand-in for Lambda's runtime API, to run a function's real bootstrap.
//! - [`proc`]: a process's CPU time, memory and scheduling, from /proc.
//! - [`watch`]: the documented `cargo lambda invoke`s of a function, as `cargo lambda watch`
//!   runs them.

pub mod http_server;
pub mod proc;
pub mod runtime_api;
pub mod watch;
