//! How the runner invokes a function, whichever way it was built (in process, or its bootstrap as
//! a process): the context Lambda gives an invocation, and the faces a function shows to an
//! alarm action and to a schedule. The queue mappings invoke `SqsFunction`
//! (`order_pipeline::registry`), the HTTP API `crate::http::HttpFunction`, the stream
//! `crate::stream::StreamFunction`.

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use futures::future::BoxFuture;
use lambda_runtime::LambdaEvent;
use order_pipeline::registry::DlqAlarmFunction;

/// The context Lambda gives an invocation: its request id, a sampled trace header of its own, the
/// function's name and, with a `timeout`, the deadline (epoch milliseconds) the function's own deadline logic reads.
pub fn invocation_context(
    request_id: String,
    function_name: &str,
    timeout: Option<std::time::Duration>,
) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id;
    context.xray_trace_id = Some(crate::kit::runtime_api::fresh_trace_id());
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
