//! EventBridge schedules, emulated: each `rate(...)` rule of the template invokes its target
//! function with the rule's constant input, as EventBridge does, but every `every` instead of its
//! rate (local time passes faster, as with the shortened visibility timeouts). The stack's one
//! schedule is dlq-alarm's sweep: without it, dead letters that arrive while the DLQ alarm stays
//! in ALARM would never be examined locally (a valid order dead-lettered then would have no item).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::LambdaEvent;

use crate::invoke::{invocation_context, ScheduledFunction};
use crate::resources::ScheduleSpec;

/// One schedule and the function it invokes.
pub struct LocalSchedule {
    pub spec: ScheduleSpec,
    pub function_name: String,
    pub function_timeout: Duration,
    pub function: Arc<dyn ScheduledFunction>,
}

/// What the schedules did, for the run's report and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleStats {
    pub invocations: u64,
    pub errors: u64,
}

/// The running schedules. `stop` waits for an invocation in flight, so that what reads the
/// queues afterwards (the run's report) sees no message hidden by a sweep.
#[derive(Clone, Default)]
pub struct Schedules {
    stop: Arc<AtomicBool>,
    /// Held while a schedule's invocation runs.
    running: Arc<tokio::sync::Mutex<()>>,
    invocations: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Schedules {
    /// Invokes every schedule's function every `every` (the first time after one interval), one
    /// invocation at a time, until stopped.
    pub fn spawn(
        &self,
        schedules: Vec<LocalSchedule>,
        every: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if schedules.is_empty() {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for s in &schedules {
                    let _running = me.running.lock().await;
                    if me.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    me.invocations.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = s.invoke().await {
                        me.errors.fetch_add(1, Ordering::SeqCst);
                        tracing::warn!(rule = %s.spec.id, function = %s.function_name, error = %e, "a scheduled invocation failed; the next one runs at the next interval");
                    }
                }
            }
        }))
    }

    /// Stops the schedules; returns when no invocation is in flight.
    pub async fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _idle = self.running.lock().await;
    }

    /// Whether a scheduled invocation is running now.
    pub fn is_busy(&self) -> bool {
        self.running.try_lock().is_err()
    }

    pub fn stats(&self) -> ScheduleStats {
        ScheduleStats {
            invocations: self.invocations.load(Ordering::SeqCst),
            errors: self.errors.load(Ordering::SeqCst),
        }
    }
}

impl LocalSchedule {
    async fn invoke(&self) -> Result<serde_json::Value, String> {
        let context = invocation_context(
            format!("local-schedule-{}", chrono::Utc::now().timestamp_millis()),
            &self.function_name,
            Some(self.function_timeout),
        );
        self.function
            .invoke(LambdaEvent::new(self.spec.input.clone(), context))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    /// Records each event; the first call fails.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<serde_json::Value>>);

    impl ScheduledFunction for Recorder {
        fn invoke(
            &self,
            event: LambdaEvent<serde_json::Value>,
        ) -> BoxFuture<'_, Result<serde_json::Value, String>> {
            Box::pin(async move {
                assert!(event.context.deadline > 0, "a deadline as Lambda gives one");
                let mut seen = self.0.lock().unwrap();
                seen.push(event.payload);
                if seen.len() == 1 {
                    Err("first sweep fails".into())
                } else {
                    Ok(serde_json::json!({"ok": true}))
                }
            })
        }
    }

    /// Protects: a schedule invokes its function with the rule's input at every interval, keeps
    /// going after a failed invocation, and stops when asked.
    #[tokio::test(start_paused = true)]
    async fn a_schedule_invokes_its_function_with_the_rule_input_until_stopped() {
        let recorder = Arc::new(Recorder::default());
        let schedules = Schedules::default();
        let task = schedules.spawn(
            vec![LocalSchedule {
                spec: ScheduleSpec {
                    id: "Sweep".into(),
                    rate_seconds: 300,
                    function_id: "F".into(),
                    input: serde_json::json!({"sweep": "scheduled"}),
                },
                function_name: "f".into(),
                function_timeout: Duration::from_secs(60),
                function: recorder.clone(),
            }],
            Duration::from_secs(5),
        );
        tokio::time::sleep(Duration::from_secs(16)).await;
        schedules.stop().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "at 5, 10 and 15 s, then stopped: {seen:?}");
        assert!(seen
            .iter()
            .all(|e| e == &serde_json::json!({"sweep": "scheduled"})));
        assert_eq!(
            schedules.stats(),
            ScheduleStats {
                invocations: 3,
                errors: 1
            }
        );
        assert!(task.is_some());
    }
}
