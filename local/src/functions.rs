//! The handlers the local runner can run, by binary name: the one place a new function is
//! registered. Each is built with the same constructor its Lambda binary uses
//! (`order_pipeline::bootstrap`), from the environment the template gives the function.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use lambda_runtime::LambdaEvent;
use order_pipeline::bootstrap::{self, LambdaDlqAlarm};
use order_pipeline::config::Env;
use order_pipeline::telemetry::LineWriter;
use order_pipeline::worker::{RecordHandler, SqsWorker};

use crate::http::HttpFunction;
use crate::process::ProcessFunction;
use crate::stream::StreamFunction;
use crate::LocalError;

/// A record's message id and its outcome's label.
pub type Labels = Vec<(String, &'static str)>;

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

/// A function an SQS event source mapping invokes.
pub trait SqsFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>>;
}

impl<H: RecordHandler + 'static> SqsFunction for SqsWorker<H> {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>> {
        Box::pin(async move {
            let (response, reports) = self
                .handle_reporting(event)
                .await
                .map_err(|e| e.to_string())?;
            let labels = reports
                .iter()
                .map(|r| (r.message_id.clone(), r.outcome.label()))
                .collect();
            Ok((response, labels))
        })
    }
}

/// A function a CloudWatch alarm action invokes; it answers with a JSON document.
pub trait AlarmFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<CloudWatchAlarm>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>>;
}

impl AlarmFunction for LambdaDlqAlarm {
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

impl ScheduledFunction for LambdaDlqAlarm {
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

/// The handler of `binary`, configured from `environment`. Register a new function here.
pub fn build(
    binary: &str,
    environment: &BTreeMap<String, String>,
    sdk: &SdkConfig,
    telemetry: Arc<dyn LineWriter>,
) -> Result<Handler, LocalError> {
    let vars = environment.clone();
    let env = Env(move |name: &str| vars.get(name).cloned());
    let config = |e: order_pipeline::config::ConfigError| {
        LocalError::Input(format!("{binary}'s environment in the template: {e}"))
    };
    match binary {
        "order-consumer" => Ok(Handler::Sqs(Arc::new(
            bootstrap::order_consumer_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        "dlq-alarm" => {
            let f = Arc::new(bootstrap::dlq_alarm_with(&env, sdk, telemetry).map_err(config)?);
            Ok(Handler::Alarm(f.clone(), f))
        }
        "order-api" => Ok(Handler::Http(Arc::new(
            bootstrap::order_api_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        "order-events" => Ok(Handler::Stream(Arc::new(
            bootstrap::order_events_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        "inventory" => Ok(Handler::Sqs(Arc::new(
            bootstrap::inventory_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        "payment" => Ok(Handler::Sqs(Arc::new(
            bootstrap::payment_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        "payment-dlq" => Ok(Handler::Sqs(Arc::new(
            bootstrap::payment_dlq_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        "notification" => Ok(Handler::Sqs(Arc::new(
            bootstrap::notification_with(&env, sdk, telemetry).map_err(config)?,
        ))),
        other => Err(LocalError::Input(format!(
            "the stack has a function built from binary {other}, which the local runner does not know: register its handler in local/src/functions.rs"
        ))),
    }
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
