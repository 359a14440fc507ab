//! A `tracing` layer that writes one flat JSON object per event with the keys of the
//! Powertools logger: `timestamp`, `level`, `message`, `service`, `function_name`, then every
//! field of the enclosing spans (the invocation's `cold_start`, `function_request_id`,
//! `xray_trace_id`; a record's `correlation_id`, `order_id`, `message_id`) and the event's own.
//!
//! tracing-subscriber's own JSON formatter nests span fields under `spans`; operators query
//! flat keys (`{ $.correlation_id = "..." }`), so this layer flattens them.

use std::fmt;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use super::LineWriter;

pub struct JsonLogLayer {
    service: String,
    function_name: Option<String>,
    writer: Arc<dyn LineWriter>,
}

impl JsonLogLayer {
    pub fn new(service: &str, writer: Arc<dyn LineWriter>) -> Self {
        Self {
            service: service.to_string(),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
            writer,
        }
    }
}

/// Installs the JSON layer as the global subscriber, at the level Lambda's logging config asks
/// for (`AWS_LAMBDA_LOG_LEVEL`, else `LOG_LEVEL`, else INFO), and routes panics through it; when
/// `AWS_XRAY_DAEMON_ADDRESS` is set, the traces too ([`super::trace`]). Calling it again
/// (tests) keeps the first subscriber.
pub fn init_logging(service: &str, writer: Arc<dyn LineWriter>) {
    init_logging_traced(service, writer, super::trace::daemon_from_env());
}

/// [`init_logging`] with the traces going to the X-Ray daemon `daemon` (none: not traced).
pub fn init_logging_traced(
    service: &str,
    writer: Arc<dyn LineWriter>,
    daemon: Option<std::net::SocketAddr>,
) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // Only this crate's own spans become trace segments: the SDK's and hyper's internal spans
    // would be noise in the trace and cost per call; log events stay in the logs. Untraced, no
    // layer and no filter at all (a filter would lift the subscriber's level hint).
    let traced = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span() && meta.target().starts_with("order_pipeline")
    });
    let subscriber = Registry::default()
        .with(JsonLogLayer::new(service, writer).with_filter(level))
        .with(super::trace::layer(service, daemon).map(|l| l.with_filter(traced)));
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(panic = %info, %location, "panic while processing; only the record being processed fails");
        }));
    }
}

struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if super::trace::is_trace_field(field.name()) {
            return;
        }
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_string(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        line.insert(
            "level".into(),
            Value::from(level_name(event.metadata().level())),
        );
        line.insert("message".into(), Value::from(""));
        line.insert("service".into(), Value::from(self.service.as_str()));
        if let Some(name) = &self.function_name {
            line.insert("function_name".into(), Value::from(name.as_str()));
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let target = span.metadata().target();
                let extensions = span.extensions();
                let Some(SpanFields(fields)) = extensions.get::<SpanFields>() else {
                    continue;
                };
                if target.starts_with("order_") {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                } else if target.starts_with("lambda_runtime") {
                    // lambda_runtime's invocation span names the ids its own way; lines it
                    // logs itself (a failed invocation's error) get them under ours.
                    if let Some(id) = fields.get("requestId") {
                        line.insert("function_request_id".into(), id.clone());
                    }
                    if let Some(trace) = fields.get("xrayTraceId").and_then(Value::as_str) {
                        if let Some(root) = super::xray_trace_id(Some(trace)) {
                            line.insert("xray_trace_id".into(), Value::from(root));
                        }
                    }
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut JsonVisitor(&mut own));
        line.extend(own);
        if !event.metadata().target().starts_with("order_") {
            line.insert("logger".into(), Value::from(event.metadata().target()));
        }
        self.writer.write_line(&Value::Object(line).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::telemetry::Captured;
    use tracing::{info_span, Instrument};

    #[test]
    fn lines_are_flat_json_with_span_fields_and_powertools_keys() {
        let captured = Captured::default();
        let subscriber =
            Registry::default().with(JsonLogLayer::new("svc", Arc::new(captured.clone())));
        tracing::subscriber::with_default(subscriber, || {
            let invocation = info_span!(
                "invocation",
                cold_start = true,
                function_request_id = "req-1"
            );
            let _i = invocation.enter();
            let record = info_span!(
                "record",
                correlation_id = "c-1",
                order_id = tracing::field::Empty
            );
            record.record("order_id", "O1");
            let _r = record.enter();
            tracing::warn!(reason = "bad", "order rejected");
        });
        let lines = captured.json();
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l["message"], "order rejected");
        assert_eq!(l["level"], "WARN");
        assert_eq!(l["service"], "svc");
        assert_eq!(l["cold_start"], true);
        assert_eq!(l["function_request_id"], "req-1");
        assert_eq!(l["correlation_id"], "c-1");
        assert_eq!(l["order_id"], "O1");
        assert_eq!(l["reason"], "bad");
        assert!(l["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    /// Protects: a line lambda_runtime logs itself inside an invocation (a failed invocation's
    /// error) carries the invocation's ids under our names, like every other line.
    #[test]
    fn lines_inside_the_runtimes_invocation_span_carry_its_ids_under_our_names() {
        let captured = Captured::default();
        let subscriber =
            Registry::default().with(JsonLogLayer::new("svc", Arc::new(captured.clone())));
        tracing::subscriber::with_default(subscriber, || {
            let runtime = info_span!(
                target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke",
                requestId = "req-9",
                xrayTraceId = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            );
            let _r = runtime.enter();
            tracing::error!(target: "lambda_runtime::layers::panic", "all 1 records of the batch failed");
        });
        let l = &captured.json()[0];
        assert_eq!(l["function_request_id"], "req-9");
        assert_eq!(l["xray_trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(l["logger"], "lambda_runtime::layers::panic");
        assert!(l.get("requestId").is_none());
    }

    #[tokio::test]
    async fn span_fields_follow_instrumented_futures() {
        let captured = Captured::default();
        let subscriber =
            Registry::default().with(JsonLogLayer::new("svc", Arc::new(captured.clone())));
        let _guard = tracing::subscriber::set_default(subscriber);
        async { tracing::info!("inside") }
            .instrument(info_span!("record", message_id = "m-1"))
            .await;
        assert_eq!(captured.json()[0]["message_id"], "m-1");
    }
}
