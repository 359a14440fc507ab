//! Telemetry shared by every function: JSON log lines with the Powertools logger's keys, and
//! metrics in CloudWatch Embedded Metric Format. Both write whole lines to one [`LineWriter`]
//! (stdout on Lambda, a buffer in tests).

mod log;
mod metrics;
pub mod trace;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use log::{init_logging, init_logging_traced, JsonLogLayer};
pub use metrics::{Metrics, Unit, NAMESPACE};

/// Where telemetry lines go.
pub trait LineWriter: Send + Sync {
    fn write_line(&self, line: &str);
}

/// Standard output, one line per call (CloudWatch Logs takes each line as one event).
pub struct Stdout;

impl LineWriter for Stdout {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // Logging must never fail a record: a closed stdout loses the line, nothing else.
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// Keeps lines in memory (tests, the local runner's summaries).
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<String>>>);

impl Captured {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every captured line parsed as JSON (a line that is not JSON fails the caller's test).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}

impl LineWriter for Captured {
    fn write_line(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.to_string());
        }
    }
}

/// True only for the first invocation a process serves.
#[derive(Default)]
pub struct ColdStart(AtomicBool);

impl ColdStart {
    pub fn new() -> Self {
        Self(AtomicBool::new(true))
    }

    /// Returns whether this is the process's first invocation, and records that it happened.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }

    /// The span of one invocation: `service`, `function_name` (from the context, when it has
    /// one), `cold_start`, `function_request_id`, `xray_trace_id`, which every line logged
    /// inside it carries. The service and function name are the function's own even when
    /// several functions share a process (the local runner). A cold start also writes the
    /// `ColdStart` metric (count 1; dimension `service`, like every metric here, where
    /// Powertools adds `function_name`) to `telemetry`.
    pub fn invocation_span(
        &self,
        context: &lambda_runtime::Context,
        service: &str,
        telemetry: &dyn LineWriter,
    ) -> tracing::Span {
        let cold_start = self.take();
        if cold_start {
            let mut metrics = Metrics::default();
            metrics.count("ColdStart", 1);
            metrics.flush(service, telemetry);
        }
        let span = tracing::info_span!(
            "invocation",
            otel.name = "handler",
            service,
            function_name = tracing::field::Empty,
            mode = tracing::field::Empty,
            cold_start,
            function_request_id = %context.request_id,
            xray_trace_id = tracing::field::Empty,
        );
        if !context.env_config.function_name.is_empty() {
            span.record("function_name", context.env_config.function_name.as_str());
        }
        if let Some(trace) = xray_trace_id(context.xray_trace_id.as_deref()) {
            span.record("xray_trace_id", trace.as_str());
        }
        trace::continue_trace(&span, context.xray_trace_id.as_deref());
        span
    }
}

/// The X-Ray trace id of an invocation: the runtime's value, else the `_X_AMZN_TRACE_ID`
/// variable's Root part, which Lambda sets for the current invocation.
pub fn xray_trace_id(from_context: Option<&str>) -> Option<String> {
    let header = from_context
        .map(str::to_string)
        .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok())?;
    let root = header
        .split(';')
        .find_map(|part| part.strip_prefix("Root="))
        .unwrap_or(&header);
    Some(root.to_string())
}

#[cfg(any(test, feature = "test-support"))]
thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes log lines to the capture of the thread that logs them (tests).
#[cfg(any(test, feature = "test-support"))]
struct ThreadCapture;

#[cfg(any(test, feature = "test-support"))]
impl LineWriter for ThreadCapture {
    fn write_line(&self, line: &str) {
        CAPTURE.with(|c| {
            if let Some(out) = c.borrow().as_ref() {
                out.write_line(line);
            }
        });
    }
}

/// Tests: the log lines of this thread go to `out` from now on. One global subscriber (the
/// JSON layer with service `process`) serves every test of a binary: per-test scoped
/// subscribers race with tracing's per-callsite interest cache across test threads, and a line
/// can go missing.
#[cfg(any(test, feature = "test-support"))]
pub fn capture_logs_into(out: &Captured) {
    use tracing_subscriber::layer::SubscriberExt;
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(JsonLogLayer::new("process", Arc::new(ThreadCapture)));
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(out.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: a function's first invocation writes the `ColdStart` metric (count 1, by
    /// service) and later ones do not, so cold starts can be graphed and alarmed on.
    #[test]
    fn the_first_invocation_writes_the_cold_start_metric_and_the_next_does_not() {
        let out = Captured::default();
        let cold = ColdStart::new();
        let context = lambda_runtime::Context::default();
        let _first = cold.invocation_span(&context, "payment", &out);
        let _second = cold.invocation_span(&context, "payment", &out);
        let lines = out.json();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["ColdStart"], 1.0);
        assert_eq!(lines[0]["service"], "payment");
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "ColdStart"
        );
    }
}
