//! The template's alarms, evaluated locally: moto stores alarms but does not evaluate them.
//!
//! Every `interval` each alarm whose metric is observable here is read (a queue's depth: its
//! visible plus in-flight messages; a function's Errors: invocations that failed as a whole in
//! the last period), compared with its threshold, and on each state change its state is set in
//! the emulator and every function among the change's actions is invoked with the CloudWatch
//! alarm event Lambda would receive. Local time runs faster: one reading decides, whatever the
//! alarm's evaluation periods. Alarms on other metrics (the oldest message's age) are stored,
//! not evaluated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use crate::emulator::{EMULATOR_ACCOUNT, EMULATOR_REGION};
use crate::invoke::{invocation_context, AlarmFunction};
use crate::mapping::Mapping;
use crate::resources::AlarmSpec;
use crate::{aws_err, cloudwatch, Clients, LocalError};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub alarm_name: String,
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    /// The metric's value that decided the change.
    pub value: f64,
    /// What the invoked function answered (the first one, when several are actions).
    pub summary: Option<serde_json::Value>,
    pub error: Option<String>,
    /// Whether a function was invoked for this change.
    pub invoked: bool,
}

/// Messages in a queue: visible plus in flight (dlq-alarm's own look hides them briefly, and
/// that must not flip the alarm).
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, LocalError> {
    let (visible, hidden) = counts(sqs, queue_url).await?;
    Ok(visible + hidden)
}

/// The messages of a queue received and not yet deleted or visible again (in flight).
pub async fn hidden(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, LocalError> {
    Ok(counts(sqs, queue_url).await?.1)
}

/// The messages of a queue not yet deliverable (a delivery delay holds them).
pub async fn delayed(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, LocalError> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(aws_err("read the delayed messages"))?
        .attributes
        .unwrap_or_default();
    Ok(attrs
        .get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0))
}

/// A queue's visible and not-visible message counts.
async fn counts(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(u64, u64), LocalError> {
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
    Ok((
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

fn cw_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// The event CloudWatch sends to a Lambda alarm action.
/// Publishes the state change to `topic_arn` the way CloudWatch's SNS action does: the subject
/// names the new state and the alarm, the message is CloudWatch's JSON (with the alarm's
/// description, which says what to do). A failed publish is logged; the alarm still changes.
async fn notify_topic(
    clients: &Clients,
    topic_arn: &str,
    alarm: &AlarmSpec,
    from: &str,
    to: &str,
    value: f64,
    now: DateTime<Utc>,
) {
    let message = serde_json::json!({
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": EMULATOR_ACCOUNT,
        "NewStateValue": to,
        "NewStateReason": format!("Threshold Crossed: {} was {value} (threshold {}).", alarm.metric_name, alarm.threshold),
        "StateChangeTime": cw_time(now),
        "Region": EMULATOR_REGION,
        "OldStateValue": from,
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "Threshold": alarm.threshold,
            "ComparisonOperator": alarm.comparison_operator,
        },
    });
    let mut subject = format!("{to}: \"{}\" (local)", alarm.name);
    subject.truncate(100);
    if let Err(e) = clients
        .sns
        .publish()
        .topic_arn(topic_arn)
        .subject(subject)
        .message(message.to_string())
        .send()
        .await
    {
        tracing::warn!(alarm_name = %alarm.name, topic_arn, error = %e, "could not publish the alarm's notification to its topic");
    }
}

pub fn alarm_event(
    alarm: &AlarmSpec,
    from: &str,
    to: &str,
    value: f64,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let dimensions: serde_json::Map<String, serde_json::Value> = alarm
        .dimensions
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    serde_json::json!({
        "source": "aws.cloudwatch",
        "alarmArn": format!("arn:aws:cloudwatch:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:alarm:{}", alarm.name),
        "accountId": EMULATOR_ACCOUNT,
        "region": EMULATOR_REGION,
        "time": cw_time(now),
        "alarmData": {
            "alarmName": alarm.name,
            "state": {
                "value": to,
                "reason": format!("Threshold Crossed: {} was {value} (threshold {}).", alarm.metric_name, alarm.threshold),
                "timestamp": cw_time(now),
            },
            "previousState": {
                "value": from,
                "reason": "previous evaluation",
                "timestamp": cw_time(now),
            },
            "configuration": {
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": {
                            "namespace": alarm.namespace,
                            "name": alarm.metric_name,
                            "dimensions": dimensions,
                        },
                        "period": alarm.period_seconds,
                        "stat": alarm.statistic,
                    },
                    "returnData": true
                }]
            }
        }
    })
}

/// Where an alarm's metric comes from locally.
#[derive(Clone)]
enum Source {
    QueueDepth(String),
    FunctionErrors(Mapping),
}

/// A function among an alarm's actions.
#[derive(Clone)]
pub struct AlarmTarget {
    pub name: String,
    /// Its timeout: the invocation's deadline, as Lambda gives one.
    pub timeout: Duration,
    pub function: Arc<dyn AlarmFunction>,
}

/// One alarm of the template and what the runner knows of it.
#[derive(Clone)]
pub struct LocalAlarm {
    pub spec: AlarmSpec,
    source: Option<Source>,
    /// The functions among the actions, by ARN.
    functions: HashMap<String, AlarmTarget>,
}

impl LocalAlarm {
    /// `queues` maps queue names to URLs, `mappings` function names to their mapping, and
    /// `functions` function ARNs to alarm handlers.
    pub fn new(
        spec: AlarmSpec,
        queues: &HashMap<String, String>,
        mappings: &HashMap<String, Mapping>,
        functions: &HashMap<String, AlarmTarget>,
    ) -> Self {
        let dimension = |name: &str| {
            spec.dimensions
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        // A queue's depth is read as visible + in flight: what the stack's queue alarms compute.
        let source = match (
            spec.namespace.as_str(),
            spec.metric_name.as_str(),
            spec.expression.as_deref(),
        ) {
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", Some("visible + inflight")) => {
                dimension("QueueName")
                    .and_then(|q| queues.get(&q).cloned())
                    .map(Source::QueueDepth)
            }
            ("AWS/Lambda", "Errors", None) => dimension("FunctionName")
                .and_then(|f| mappings.get(&f).cloned())
                .map(Source::FunctionErrors),
            _ => None,
        };
        let functions = spec
            .alarm_actions
            .iter()
            .chain(&spec.ok_actions)
            .filter_map(|arn| functions.get(arn).map(|f| (arn.clone(), f.clone())))
            .collect();
        LocalAlarm {
            spec,
            source,
            functions,
        }
    }

    pub fn is_evaluated(&self) -> bool {
        self.source.is_some()
    }

    /// Whether any of its actions is a function.
    pub fn invokes_functions(&self) -> bool {
        !self.functions.is_empty()
    }

    async fn read(&self, clients: &Clients) -> Result<Option<f64>, LocalError> {
        Ok(match &self.source {
            None => None,
            Some(Source::QueueDepth(url)) => Some(depth(&clients.sqs, url).await? as f64),
            Some(Source::FunctionErrors(mapping)) => {
                let period = Duration::from_secs(self.spec.period_seconds);
                let recent = mapping
                    .snapshot()
                    .error_times
                    .iter()
                    .filter(|t| t.elapsed() <= period)
                    .count();
                Some(recent as f64)
            }
        })
    }

    fn state_for(&self, value: f64) -> &'static str {
        let t = self.spec.threshold;
        let breaching = match self.spec.comparison_operator.as_str() {
            "GreaterThanOrEqualToThreshold" => value >= t,
            "GreaterThanThreshold" => value > t,
            "LessThanThreshold" => value < t,
            "LessThanOrEqualToThreshold" => value <= t,
            _ => false,
        };
        if breaching {
            "ALARM"
        } else {
            "OK"
        }
    }
}

#[derive(Clone, Default)]
pub struct AlarmEvaluator {
    alarms: Arc<Vec<LocalAlarm>>,
    states: Arc<Mutex<HashMap<String, String>>>,
    transitions: Arc<Mutex<Vec<Transition>>>,
    stop: Arc<AtomicBool>,
}

impl AlarmEvaluator {
    pub fn new(alarms: Vec<LocalAlarm>) -> Self {
        let states = alarms
            .iter()
            .map(|a| (a.spec.name.clone(), "INSUFFICIENT_DATA".to_string()))
            .collect();
        Self {
            alarms: Arc::new(alarms),
            states: Arc::new(Mutex::new(states)),
            ..Default::default()
        }
    }

    pub fn alarms(&self) -> &[LocalAlarm] {
        &self.alarms
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

    pub fn state(&self, alarm_name: &str) -> String {
        self.states
            .lock()
            .ok()
            .and_then(|s| s.get(alarm_name).cloned())
            .unwrap_or_default()
    }

    /// Whether every evaluated alarm's state matches its metric now (so every function an
    /// alarm invokes has run on what is there).
    pub async fn settled(&self, clients: &Clients) -> Result<bool, LocalError> {
        for alarm in self.alarms.iter() {
            if let Some(value) = alarm.read(clients).await? {
                if self.state(&alarm.spec.name) != alarm.state_for(value) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// One evaluation of every alarm: returns the transitions it made.
    pub async fn evaluate(&self, clients: &Clients) -> Result<Vec<Transition>, LocalError> {
        let mut made = Vec::new();
        for alarm in self.alarms.iter() {
            let Some(value) = alarm.read(clients).await? else {
                continue;
            };
            let to = alarm.state_for(value);
            let from = self.state(&alarm.spec.name);
            if from == to {
                continue;
            }
            cloudwatch::set_alarm_state(
                &clients.endpoint,
                &alarm.spec.name,
                to,
                &format!("local evaluation: {} = {value}", alarm.spec.metric_name),
            )?;
            let now = Utc::now();
            let actions = if to == "ALARM" {
                &alarm.spec.alarm_actions
            } else {
                &alarm.spec.ok_actions
            };
            let mut answers = Vec::new();
            for arn in actions {
                let Some(target) = alarm.functions.get(arn) else {
                    // Not the OK of an alarm just created: CloudWatch sends it, but locally every
                    // boot would fill the ops inbox with one per alarm.
                    if arn.starts_with("arn:aws:sns:") && from != "INSUFFICIENT_DATA" {
                        // A topic action: CloudWatch's notification, as the ops topic gets it.
                        notify_topic(clients, arn, &alarm.spec, &from, to, value, now).await;
                    }
                    continue;
                };
                let event: CloudWatchAlarm =
                    serde_json::from_value(alarm_event(&alarm.spec, &from, to, value, now))
                        .map_err(|e| LocalError::Input(format!("alarm event: {e}")))?;
                let context = invocation_context(
                    format!("local-alarm-{}", now.timestamp_millis()),
                    &target.name,
                    Some(target.timeout),
                );
                answers.push(
                    target
                        .function
                        .invoke(LambdaEvent::new(event, context))
                        .await,
                );
            }
            let first = answers.into_iter().next();
            let transition = Transition {
                alarm_name: alarm.spec.name.clone(),
                from,
                to: to.to_string(),
                at: now,
                value,
                invoked: first.is_some(),
                summary: first.as_ref().and_then(|r| r.as_ref().ok().cloned()),
                error: first.and_then(|r| r.err()),
            };
            if let Ok(mut s) = self.states.lock() {
                s.insert(alarm.spec.name.clone(), to.to_string());
            }
            if let Ok(mut t) = self.transitions.lock() {
                t.push(transition.clone());
            }
            made.push(transition);
        }
        Ok(made)
    }

    /// Evaluates every `interval` until stopped.
    pub fn spawn(&self, clients: Clients, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while !me.stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                if let Err(e) = me.evaluate(&clients).await {
                    tracing::warn!(error = %e, "alarm evaluation failed; retrying");
                }
                tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
            }
        })
    }
}
