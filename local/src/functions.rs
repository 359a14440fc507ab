//! The handlers the local runner can run, by binary name: each is built by the function registry
//! (`order_pipeline::runtime::registry`) that its Lambda binary's `main` uses, from the environment the
//! template gives the function.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use futures::future::BoxFuture;
use lambda_runtime::LambdaEvent;
use order_pipeline::runtime::config::Env;
use order_pipeline::runtime::registry::{self, Built, DlqAlarmFunction};
pub use order_pipeline::runtime::registry::{Labels, SqsFunction};
use order_pipeline::runtime::telemetry::LineWriter;

use crate::http::HttpFunction;
use crate::process::ProcessFunction;
use crate::stream::StreamFunction;
use crate::LocalError;

/// The context Lambda gives an invocation: its request id, the function's name and, with a
/// `timeout`, the deadline (epoch milliseconds) the function's own deadline logic reads.
pub fn invocation_context(
    request_id: String,
    function_name: &str,
    timeout: Option<std::time::Duration>,
) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id;
    if let Some(timeout) = timeout {
        context.deadline =
            u64::try_from((chrono::Utc::now() + timeout).timestamp_millis()).unwrap_or(0);
    }
    context.env_config = Arc::new(lambda_runtime::Config {
        function_name: function_name.to_string(),
        ..Default::default()
    });
    context
}

/// A function a CloudWatch alarm action invokes; it answers with a JSON document.
pub trait AlarmFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<CloudWatchAlarm>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>>;
}

impl AlarmFunction for DlqAlarmFunction {
    fn invoke(
        &self,
        event: LambdaEvent<CloudWatchAlarm>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let summary = self.handle(event).await.map_err(|e| e.to_string())?;
            serde_json::to_value(summary).map_err(|e| e.to_string())
        })
    }
}

/// A function an EventBridge schedule invokes with the rule's constant input (dlq-alarm's
/// sweeps): it reads the event itself, as its Lambda binary does.
pub trait ScheduledFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>>;
}

impl ScheduledFunction for DlqAlarmFunction {
    fn invoke(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let (payload, context) = event.into_parts();
            let event = serde_json::from_value(payload)
                .map_err(|e| format!("dlq-alarm does not take this event: {e}"))?;
            let summary = self
                .handle_event(LambdaEvent::new(event, context))
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(summary).map_err(|e| e.to_string())
        })
    }
}

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
/// (`order_pipeline::runtime::registry`) builds it.
pub fn build(
    binary: &str,
    environment: &BTreeMap<String, String>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<Handler, LocalError> {
    let function = registry::find(binary).ok_or_else(|| {
        LocalError::Input(format!(
            "the stack has a function built from binary {binary}, which order_pipeline::runtime::registry does not know: register it there"
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: the context every local invocation is built with carries, given a timeout,
    /// Lambda's deadline (now + timeout, epoch ms) and the function's name. That the queue
    /// mappings, schedules and alarm actions pass their function's timeout is checked by the
    /// schedule's test and the end-to-end runs, not here.
    #[test]
    fn an_invocation_with_a_timeout_carries_the_deadline_lambda_would_give() {
        let before = chrono::Utc::now().timestamp_millis() as u64;
        let context = invocation_context(
            "r1".into(),
            "dlq-alarm",
            Some(std::time::Duration::from_secs(60)),
        );
        let after = chrono::Utc::now().timestamp_millis() as u64;
        assert!(
            (before + 60_000..=after + 60_000).contains(&context.deadline),
            "{} not 60 s from now",
            context.deadline
        );
        assert_eq!(context.env_config.function_name, "dlq-alarm");
        assert_eq!(context.request_id, "r1");
        let none = invocation_context("r2".into(), "order-api", None);
        assert_eq!(none.deadline, 0, "no timeout, no deadline");
    }
}
