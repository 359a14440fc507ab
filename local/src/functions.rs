//! The handlers the local runner can run, by binary name: each is built by the function registry
//! (`order_pipeline::registry`) that its Lambda binary's `main` uses, from the environment the
//! template gives the function.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use order_pipeline::registry::{self, Built, SqsFunction};
use order_pipeline::runtime::config::Env;
use order_pipeline::runtime::telemetry::LineWriter;

use crate::http::HttpFunction;
use crate::invoke::{AlarmFunction, ScheduledFunction};
use crate::process::ProcessFunction;
use crate::stream::StreamFunction;
use crate::LocalError;

#[derive(Clone)]
pub enum Handler {
    Sqs(Arc<dyn SqsFunction>),
    /// dlq-alarm: its alarm's state changes, and its schedule.
    Alarm(Arc<dyn AlarmFunction>, Arc<dyn ScheduledFunction>),
    Http(Arc<dyn HttpFunction>),
    Stream(Arc<dyn StreamFunction>),
    /// The real bootstrap as a process: it takes whatever event its source sends.
    Process(Arc<ProcessFunction>),
}

impl Handler {
    pub fn sqs(&self) -> Option<Arc<dyn SqsFunction>> {
        match self {
            Handler::Sqs(h) => Some(h.clone()),
            Handler::Process(p) => Some(p.clone()),
            _ => None,
        }
    }

    pub fn alarm(&self) -> Option<Arc<dyn AlarmFunction>> {
        match self {
            Handler::Alarm(h, _) => Some(h.clone()),
            Handler::Process(p) => Some(p.clone()),
            _ => None,
        }
    }

    pub fn scheduled(&self) -> Option<Arc<dyn ScheduledFunction>> {
        match self {
            Handler::Alarm(_, h) => Some(h.clone()),
            Handler::Process(p) => Some(p.clone()),
            _ => None,
        }
    }

    pub fn http(&self) -> Option<Arc<dyn HttpFunction>> {
        match self {
            Handler::Http(h) => Some(h.clone()),
            Handler::Process(p) => Some(p.clone()),
            _ => None,
        }
    }

    pub fn stream(&self) -> Option<Arc<dyn StreamFunction>> {
        match self {
            Handler::Stream(h) => Some(h.clone()),
            Handler::Process(p) => Some(p.clone()),
            _ => None,
        }
    }
}

/// The handler of `binary`, configured from `environment`, as the function registry
/// (`order_pipeline::registry`) builds it.
pub fn build(
    binary: &str,
    environment: &BTreeMap<String, String>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<Handler, LocalError> {
    let function = registry::find(binary).ok_or_else(|| {
        LocalError::Input(format!(
            "the stack has a function built from binary {binary}, which order_pipeline::registry does not know: register it there"
        ))
    })?;
    let lookup = |name: &str| environment.get(name).cloned();
    let env = Env(&lookup as registry::Lookup<'_>);
    let built = (function.build)(&env, sdk, telemetry)
        .map_err(|e| LocalError::Input(format!("{binary}'s environment in the template: {e}")))?;
    Ok(match built {
        Built::Sqs(f) => Handler::Sqs(f),
        Built::Alarm(f) => Handler::Alarm(f.clone(), f),
        Built::Http(f) => Handler::Http(f),
        Built::Stream(f) => Handler::Stream(f),
    })
}

/// The event fixture to try a function with under `cargo lambda watch`.
pub fn fixtures(binary: &str) -> &'static [&'static str] {
    match binary {
        "order-consumer" => &["test/events/sqs-batch.json"],
        "dlq-alarm" => &["test/events/alarm-alarm.json", "test/events/alarm-ok.json"],
        "order-api" => &["test/events/api-post-order.json"],
        _ => &[],
    }
}
