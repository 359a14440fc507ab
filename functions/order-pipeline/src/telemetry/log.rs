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
/// for (`AWS_LAMBDA_LOG_LEVEL`, else `LOG_LEVEL`, else INFO), and routes panics through it.
/// Calling it again (tests) keeps the first subscriber.
pub fn init_logging(service: &str, writer: Arc<dyn LineWriter>) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let subscriber =
        Registry::default().with(JsonLogLayer::new(service, writer).with_filter(level));
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
            // Only our own spans: lambda_runtime's span repeats the request and trace ids
            // under other names (requestId, xrayTraceId).
            for span in scope
                .from_root()
                .filter(|s| s.metadata().target().starts_with("order_"))
            {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
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
    use crate::telemetry::Captured;
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
