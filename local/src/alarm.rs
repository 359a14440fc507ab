//! The DLQ-depth alarm, evaluated locally: moto stores alarms but does not evaluate them.
//!
//! Every `interval` it reads the DLQ's depth, and on each state change it sets the alarm's
//! state in the emulator and invokes the real dlq-alarm handler with the CloudWatch alarm event
//! Lambda would receive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use lambda_runtime::{Context, LambdaEvent};
use order_pipeline::bootstrap::LambdaDlqAlarm;
use order_pipeline::dlq_alarm::AlarmSummary;
use serde::Serialize;

use crate::{aws_err, cloudwatch, Clients, LocalError};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub depth: u64,
    pub summary: Option<AlarmSummary>,
    pub error: Option<String>,
}

#[derive(Clone, Default)]
pub struct AlarmEvaluator {
    pub transitions: Arc<Mutex<Vec<Transition>>>,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<String>>,
}

/// Messages in a queue: visible plus in flight (dlq-alarm's own look hides them briefly, and
/// that must not flip the alarm).
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, LocalError> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(aws_err("read queue depth"))?
        .attributes
        .unwrap_or_default();
    let n = |k: QueueAttributeName| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

fn cw_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// The event CloudWatch sends to a Lambda alarm action.
pub fn alarm_event(
    alarm_name: &str,
    alarm_arn: &str,
    dlq_name: &str,
    from: &str,
    to: &str,
    depth: u64,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let parts: Vec<&str> = alarm_arn.split(':').collect();
    serde_json::json!({
        "source": "aws.cloudwatch",
        "alarmArn": alarm_arn,
        "accountId": parts.get(4).copied().unwrap_or_default(),
        "region": parts.get(3).copied().unwrap_or_default(),
        "time": cw_time(now),
        "alarmData": {
            "alarmName": alarm_name,
            "state": {
                "value": to,
                "reason": format!("Threshold Crossed: the DLQ holds {depth} messages (threshold 1)."),
                "timestamp": cw_time(now),
            },
            "previousState": {
                "value": from,
                "reason": "previous evaluation",
                "timestamp": cw_time(now),
            },
            "configuration": {
                "description": "Messages are in the order DLQ",
                "metrics": [{
                    "id": "dlq_depth",
                    "metricStat": {
                        "metric": {
                            "namespace": "AWS/SQS",
                            "name": "ApproximateNumberOfMessagesVisible",
                            "dimensions": { "QueueName": dlq_name }
                        },
                        "period": 60,
                        "stat": "Maximum"
                    },
                    "returnData": true
                }]
            }
        }
    })
}

impl AlarmEvaluator {
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new("INSUFFICIENT_DATA".into())),
            ..Default::default()
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn transitions(&self) -> Vec<Transition> {
        self.transitions
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    pub fn state(&self) -> String {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// One evaluation: returns the transition it made, if any.
    pub async fn evaluate(
        &self,
        clients: &Clients,
        dlq_url: &str,
        alarm_name: &str,
        handler: &LambdaDlqAlarm,
    ) -> Result<Option<Transition>, LocalError> {
        let depth = depth(&clients.sqs, dlq_url).await?;
        let to = if depth >= 1 { "ALARM" } else { "OK" };
        let from = self.state();
        if from == to {
            return Ok(None);
        }
        let endpoint = clients.endpoint.clone();
        cloudwatch::set_alarm_state(
            &endpoint,
            alarm_name,
            to,
            &format!("local evaluation: DLQ depth {depth}"),
        )?;
        let (alarm_arn, _) = cloudwatch::describe_alarm(&endpoint, alarm_name)?;
        let dlq_name = dlq_url.rsplit('/').next().unwrap_or_default();
        let now = Utc::now();
        let event: CloudWatchAlarm = serde_json::from_value(alarm_event(
            alarm_name, &alarm_arn, dlq_name, &from, to, depth, now,
        ))
        .map_err(|e| LocalError::Input(format!("alarm event: {e}")))?;
        let mut context = Context::default();
        context.request_id = format!("local-alarm-{}", now.timestamp_millis());
        let result = handler.handle(LambdaEvent::new(event, context)).await;
        let transition = Transition {
            from: from.clone(),
            to: to.to_string(),
            at: now,
            depth,
            summary: result.as_ref().ok().cloned(),
            error: result.err().map(|e| e.to_string()),
        };
        if let Ok(mut s) = self.state.lock() {
            *s = to.to_string();
        }
        if let Ok(mut t) = self.transitions.lock() {
            t.push(transition.clone());
        }
        Ok(Some(transition))
    }

    /// Evaluates every `interval` until stopped.
    pub fn spawn(
        &self,
        clients: Clients,
        dlq_url: String,
        alarm_name: String,
        handler: Arc<LambdaDlqAlarm>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while !me.stop.load(Ordering::SeqCst) {
                if let Err(e) = me.evaluate(&clients, &dlq_url, &alarm_name, &handler).await {
                    tracing::warn!(error = %e, "alarm evaluation failed; retrying");
                }
                tokio::time::sleep(interval).await;
            }
        })
    }
}
