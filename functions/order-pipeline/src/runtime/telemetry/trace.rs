//! Traces: the functions' own X-Ray segments. Every `tracing` span of a traced function is an
//! OpenTelemetry span (tracing-opentelemetry), and each finished span goes at once, as an X-Ray
//! segment document, to the X-Ray daemon Lambda runs beside a function with active tracing
//! (opentelemetry-aws's exporter and daemon client: UDP, no collector layer, nothing to flush
//! when the invocation ends). docs/design.md says why this library.
//!
//! What a trace holds:
//! - `handler`: one invocation, a subsegment of the function's segment Lambda made (the
//!   invocation's trace header);
//! - the record, `order_id` and `correlation_id` as annotations: a segment of the trace its
//!   message carries (SQS's `AWSTraceHeader`), else a subsegment of `handler`;
//! - one subsegment per call: `DynamoDB`, `SNS`, `SQS` (the AWS operation in it) and `provider`
//!   (the payment provider). A publish carries its trace onward in `X-Amzn-Trace-Id`, so SNS, SQS
//!   and the next stage join the same trace; the DynamoDB stream carries none, so order-events
//!   starts from its own invocation and the annotations link the traces of one order.
//!
//! A function is traced when `AWS_XRAY_DAEMON_ADDRESS` is set (Lambda sets it with active
//! tracing; the local runner gives its bootstraps its own collector's, and traces the functions
//! it runs in process itself); otherwise [`layer`] is `None` and every helper here does nothing.

use std::net::SocketAddr;
use std::sync::OnceLock;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_aws::trace::xray_propagator::{span_context_from_str, span_context_to_string};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_aws::xray_exporter::{SegmentTranslator, XrayExporter};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span fields X-Ray indexes as annotations (searchable: `annotation.order_id = "..."`).
pub const ANNOTATIONS: [&str; 2] = ["order_id", "correlation_id"];

/// The variable naming the X-Ray daemon's UDP address.
pub const DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port` (a name is resolved),
/// or the `udp:host:port tcp:host:port` form the X-Ray SDKs also accept.
pub fn daemon_address(value: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let udp = value.split_whitespace().find_map(|part| {
        part.strip_prefix("udp:")
            .or_else(|| (!part.starts_with("tcp:")).then_some(part))
    })?;
    udp.to_socket_addrs().ok()?.find(SocketAddr::is_ipv4)
}

/// The daemon address of this process's environment (`AWS_XRAY_DAEMON_ADDRESS`), if any.
pub fn daemon_from_env() -> Option<SocketAddr> {
    daemon_address(&std::env::var(DAEMON_ADDRESS).ok()?)
}

/// The layer that sends this process's spans to the X-Ray daemon at `daemon` as `service`'s
/// segments; `None` when the process is not traced (no daemon) or the socket cannot be opened.
/// Sampling follows the trace headers (Lambda's decision, or the message's): a span with no
/// traced parent is not sent.
pub fn layer<S>(
    service: &str,
    daemon: Option<SocketAddr>,
) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let address = daemon?;
    let client = XrayDaemonClient::new(address).ok()?;
    let translator =
        SegmentTranslator::new().with_indexed_attrs(ANNOTATIONS.iter().map(|a| a.to_string()));
    let exporter = XrayExporter::new(client).with_translator(translator);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_id_generator(XrayIdGenerator::default())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service.to_string());
    let _ = PROVIDER.set(provider);
    // Spans only: no code location, thread, level or target attributes, no busy/idle timings,
    // no OpenTelemetry context made current on every enter (nothing here reads it).
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_level(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false),
    )
}

/// Whether this process sends traces.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Makes `span` continue the trace of `header` (an X-Ray trace header,
/// `Root=…;Parent=…;Sampled=…`): its parent becomes the header's segment. Nothing when the
/// header is absent or unreadable, or the process is not traced.
pub fn continue_trace(span: &Span, header: Option<&str>) {
    if !enabled() {
        return;
    }
    if let Some(parent) = header.and_then(span_context_from_str) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// The trace header that carries `span`'s trace onward (`X-Amzn-Trace-Id` of a publish), with
/// `span` as the parent; `None` when the process is not traced.
pub fn header_of(span: &Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    span_context_to_string(span.context().span().span_context())
}

/// The span of one call to an AWS service (`DynamoDB`, `SNS`, `SQS`), a subsegment named after
/// the service with the operation in its `aws` section; a disabled span when not traced.
pub fn aws_call(service: &'static str, operation: &'static str) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!("aws_call", otel.name = service, otel.kind = "client");
    // Attributes of the segment only, not fields: the log lines stay as they were.
    span.set_attribute("rpc.system", "aws-api");
    span.set_attribute("rpc.service", service);
    span.set_attribute("rpc.method", operation);
    span
}

/// The span of one call to the payment provider, a subsegment named `provider` with the
/// request's method and path; a disabled span when not traced.
pub fn provider_call(method: &str, path: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "provider_call",
        otel.name = "provider",
        otel.kind = "client"
    );
    span.set_attribute("http.request.method", method.to_string());
    span.set_attribute("url.path", path.to_string());
    span
}

/// Marks `span`'s segment as failed (X-Ray's `fault`); nothing when not traced. The span must
/// declare `otel.status_code`.
pub fn failed(span: &Span) {
    if enabled() {
        span.record("otel.status_code", "error");
    }
}

/// Whether a span field is for the trace only (the JSON log lines leave it out).
pub fn is_trace_field(name: &str) -> bool {
    name.starts_with("otel.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: a process that is not traced (no daemon: the tests', the bench's, a function
    /// without active tracing) makes no call spans, sends no trace header with a publish, and
    /// marks nothing: tracing costs it nothing per record.
    #[test]
    fn untraced_calls_make_no_spans_and_carry_no_header() {
        assert!(!enabled());
        let call = aws_call("SNS", "Publish");
        assert!(call.is_disabled());
        assert!(provider_call("POST", "/charges").is_disabled());
        assert_eq!(header_of(&call), None);
        assert_eq!(header_of(&tracing::info_span!("record")), None);
    }

    /// Protects: the daemon address is read in both forms Lambda and the X-Ray SDKs use; a
    /// TCP-only or unreadable value means no traces rather than a wrong socket.
    #[test]
    fn the_daemon_address_is_read_in_both_forms() {
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000".parse().unwrap())
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            Some("127.0.0.2:2001".parse().unwrap())
        );
        assert_eq!(
            daemon_address("localhost:2000"),
            Some("127.0.0.1:2000".parse().unwrap())
        );
        assert_eq!(daemon_address("tcp:127.0.0.1:2000"), None);
        assert_eq!(daemon_address("nowhere"), None);
    }
}
