//! A fault-injecting proxy between the functions and the emulator.
//!
//! The functions' AWS SDK clients talk to it instead of the emulator; it forwards each request,
//! and at the set rates answers with throttling or a server error instead, waits first (a latency
//! spike), or drops the connection, before forwarding (the request never arrived) or after (it
//! was applied and its answer lost: the case that makes a retry see its own write). The answers
//! are the services' own error shapes (DynamoDB and SQS JSON, SNS XML), so the SDK classifies and
//! retries them as it would on AWS. The runner's own clients (the event source mappings, the
//! publisher, the checks) talk to the emulator directly: Lambda's service is not what fails.
//! With every request slowed and no other fault (`order-local --aws-latency-ms`), it stands in
//! for a region's endpoint: a round trip per request on a connection kept open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rand::Rng;

use crate::kit::http_server::{HttpServer, ServerOptions};
use crate::LocalError;

/// How often each fault happens, per request (0.0-1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// Answered with the service's throttling error.
    pub throttle: f64,
    /// Answered with a 500.
    pub server_error: f64,
    /// The connection dropped, half before forwarding and half after (the answer lost).
    pub drop: f64,
    /// Delayed by `latency` before forwarding.
    pub slow: f64,
    pub latency: Duration,
    /// Per invocation of a queue-fed function: the function is killed at a random moment within
    /// `kill_within` of its start, its calls in flight abandoned (applied or not), nothing
    /// deleted: the records come back, as after a crashed or killed Lambda process.
    pub kill: f64,
    pub kill_within: Duration,
    /// Every request whose body holds each of these strings is answered with a 500, however
    /// often it is sent: a call that can never succeed for one customer (a customer
    /// notification to an address the provider refuses, say). Empty: none.
    pub fail_bodies_with: &'static [&'static str],
}

impl FaultRates {
    /// No fault at any rate (a proxy for scripted faults only).
    pub fn none() -> Self {
        Self {
            throttle: 0.0,
            server_error: 0.0,
            drop: 0.0,
            slow: 0.0,
            latency: Duration::ZERO,
            kill: 0.0,
            kill_within: Duration::ZERO,
            fail_bodies_with: &[],
        }
    }

    /// Every request held `latency` before it is forwarded, and no fault: a region's round trip
    /// (`order-local --aws-latency-ms`), or a slow endpoint in a test.
    pub fn round_trip(latency: Duration) -> Self {
        Self {
            slow: 1.0,
            latency,
            ..Self::none()
        }
    }

    /// The soak's default mix: 5% throttled, 2% server errors, 1% dropped, 2% 300 ms slower,
    /// and 3% of invocations killed within their first 200 ms.
    pub fn soak() -> Self {
        Self {
            throttle: 0.05,
            server_error: 0.02,
            drop: 0.01,
            slow: 0.02,
            latency: Duration::from_millis(300),
            kill: 0.03,
            kill_within: Duration::from_millis(200),
            fail_bodies_with: &[],
        }
    }
}

/// A fault aimed at one call, for an adapter's partial-failure paths (where a rate cannot say
/// which request fails). `operation` is the request's `X-Amz-Target`, e.g.
/// `AmazonSQS.ReceiveMessage`; requests are counted per operation from 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Scripted {
    /// Every `operation` request from the `from`-th on is answered with a 500 (the SDK's own
    /// retries fail too).
    FailFrom { operation: String, from: u64 },
    /// The `nth` `operation` batch request is forwarded without its entry `id`, and its answer
    /// lists that entry under `Failed`: the batch call succeeds and one of its entries does not,
    /// as SQS answers a partial failure.
    FailEntry {
        operation: String,
        nth: u64,
        id: String,
    },
    /// Every `operation` answer is returned without its top-level JSON `field`: an endpoint
    /// that leaves it out (DynamoDB's old item with a conditional refusal, say).
    DropAnswerField { operation: String, field: String },
}

/// What the proxy did.
#[derive(Debug, Default)]
pub struct FaultStats {
    /// Connections the callers opened to the proxy (fewer than `requests` when they are kept
    /// open).
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub dropped_before: AtomicU64,
    pub dropped_after: AtomicU64,
    pub slowed: AtomicU64,
    /// Scripted faults that fired.
    pub scripted: AtomicU64,
    /// Requests the emulator answered (applied), whether or not the answer then reached the
    /// caller: a test can act once a caller's writes have started to land.
    pub forwarded: AtomicU64,
    /// Transactions the emulator cancelled with reason `TransactionConflict` (its contention
    /// model on): not injected by the proxy, counted as they pass.
    pub transaction_conflicts: AtomicU64,
}

impl FaultStats {
    pub fn line(&self) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} requests: {} throttled, {} server errors, {} dropped before and {} after forwarding, {} slowed",
            n(&self.requests),
            n(&self.throttled),
            n(&self.server_errors),
            n(&self.dropped_before),
            n(&self.dropped_after),
            n(&self.slowed)
        )
    }

    pub fn injected(&self) -> u64 {
        [
            &self.throttled,
            &self.server_errors,
            &self.dropped_before,
            &self.dropped_after,
            &self.slowed,
            &self.scripted,
        ]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum()
    }
}

pub struct FaultProxy {
    pub url: String,
    pub rates: FaultRates,
    pub stats: Arc<FaultStats>,
    server: HttpServer,
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

impl FaultProxy {
    /// Listens on loopback and forwards to `target` (the emulator's endpoint).
    pub async fn start(target: &str, rates: FaultRates) -> Result<Self, LocalError> {
        Self::start_scripted(target, rates, Vec::new()).await
    }

    /// Like [`FaultProxy::start`], with faults aimed at given calls as well.
    pub async fn start_scripted(
        target: &str,
        rates: FaultRates,
        scripts: Vec<Scripted>,
    ) -> Result<Self, LocalError> {
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let stats = Arc::new(FaultStats::default());
        let script = Arc::new(Script {
            faults: scripts,
            seen: std::sync::Mutex::new(HashMap::new()),
        });
        let shared = (
            Arc::new(target.trim_end_matches('/').to_string()),
            client,
            stats.clone(),
            script,
        );
        let counted = stats.clone();
        let options = ServerOptions {
            nodelay: false,
            on_connection: Some(Arc::new(move || {
                counted.connections.fetch_add(1, Ordering::Relaxed);
            })),
        };
        // A dropped connection is the service answering with an error.
        let server = HttpServer::start_with(options, move |request| {
            let (target, client, stats, script) = shared.clone();
            async move { relay(&target, &client, &stats, rates, &script, request).await }
        })
        .await
        .map_err(|e| LocalError::Input(format!("could not listen on loopback: {e}")))?;
        Ok(FaultProxy {
            url: server.url(),
            rates,
            stats,
            server,
        })
    }

    pub fn stop(&self) {
        self.server.stop();
    }
}

/// The scripted faults and how many requests of each operation the proxy has seen.
struct Script {
    faults: Vec<Scripted>,
    seen: std::sync::Mutex<HashMap<String, u64>>,
}

impl Script {
    /// Counts a request for `operation` and returns its number.
    fn count(&self, operation: &str) -> u64 {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(operation.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Whether the `n`-th `operation` request fails as a whole.
    fn fails(&self, operation: &str, n: u64) -> bool {
        self.faults.iter().any(|f| {
            matches!(f, Scripted::FailFrom { operation: o, from } if o == operation && n >= *from)
        })
    }

    /// The entry id of the `n`-th `operation` batch request that fails alone, if any.
    fn failing_entry(&self, operation: &str, n: u64) -> Option<&str> {
        self.faults.iter().find_map(|f| match f {
            Scripted::FailEntry {
                operation: o,
                nth,
                id,
            } if o == operation && n == *nth => Some(id.as_str()),
            _ => None,
        })
    }

    /// The field the `operation` answers lose, if any.
    fn dropped_field(&self, operation: &str) -> Option<&str> {
        self.faults.iter().find_map(|f| match f {
            Scripted::DropAnswerField {
                operation: o,
                field,
            } if o == operation => Some(field.as_str()),
            _ => None,
        })
    }
}

/// Whether `body` holds `part`.
fn contains(body: &[u8], part: &[u8]) -> bool {
    !part.is_empty() && body.windows(part.len()).any(|w| w == part)
}

/// The JSON answer `body` without its top-level `field`; `None` when it has no such field.
fn without_field(body: &[u8], field: &str) -> Option<Bytes> {
    let mut answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    answer.as_object_mut()?.remove(field)?;
    Some(Bytes::from(answer.to_string()))
}

/// The batch request `body` without its entry `id`.
fn without_entry(body: &[u8], id: &str) -> Option<Bytes> {
    let mut request: serde_json::Value = serde_json::from_slice(body).ok()?;
    request
        .get_mut("Entries")?
        .as_array_mut()?
        .retain(|e| e["Id"] != id);
    Some(Bytes::from(request.to_string()))
}

/// The batch answer `body` with entry `id` listed under `Failed`.
fn with_failed_entry(body: &[u8], id: &str) -> Option<Bytes> {
    let mut answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let failed = answer
        .as_object_mut()?
        .entry("Failed")
        .or_insert_with(|| serde_json::json!([]));
    failed.as_array_mut()?.push(serde_json::json!({
        "Id": id, "SenderFault": false, "Code": "InternalError",
        "Message": "fault injected by the local proxy"
    }));
    Some(Bytes::from(answer.to_string()))
}

/// Which service a request is for, by its protocol: its error shape.
enum Protocol {
    /// AWS JSON 1.0 (DynamoDB, SQS, Secrets Manager): `__type` names the error.
    Json { throttling: &'static str },
    /// AWS Query (SNS): an XML ErrorResponse.
    Query,
}

fn protocol(request: &hyper::Request<hyper::body::Incoming>) -> Protocol {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target.starts_with("DynamoDB") {
        Protocol::Json {
            throttling: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        }
    } else if target.is_empty() {
        Protocol::Query
    } else {
        Protocol::Json {
            throttling: "ThrottlingException",
        }
    }
}

fn answer(status: u16, protocol: &Protocol, code: &str) -> hyper::Response<Full<Bytes>> {
    let (body, content_type) = match protocol {
        Protocol::Json { .. } => (
            serde_json::json!({"__type": code, "message": "fault injected by the local proxy"})
                .to_string(),
            "application/x-amz-json-1.0",
        ),
        Protocol::Query => (
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>fault injected by the local proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>",
                if status >= 500 { "Receiver" } else { "Sender" }
            ),
            "text/xml",
        ),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    if let Protocol::Json { .. } = protocol {
        if let Ok(v) = hyper::header::HeaderValue::from_str(code) {
            response.headers_mut().insert("x-amzn-errortype", v);
        }
    }
    response
}

async fn relay(
    target: &str,
    client: &Client,
    stats: &FaultStats,
    rates: FaultRates,
    script: &Script,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let protocol = protocol(&request);
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let nth = script.count(&operation);
    if script.fails(&operation, nth) {
        stats.scripted.fetch_add(1, Ordering::Relaxed);
        return Ok(answer(500, &protocol, "InternalError"));
    }
    let failing_entry = script.failing_entry(&operation, nth);
    let roll: f64 = rand::rng().random();
    let mut edge = rates.throttle;
    if roll < edge {
        stats.throttled.fetch_add(1, Ordering::Relaxed);
        let code = match &protocol {
            Protocol::Json { throttling } => *throttling,
            Protocol::Query => "Throttling",
        };
        return Ok(answer(400, &protocol, code));
    }
    edge += rates.server_error;
    if roll < edge {
        stats.server_errors.fetch_add(1, Ordering::Relaxed);
        let code = match &protocol {
            Protocol::Json { .. } => "InternalServerError",
            Protocol::Query => "InternalFailure",
        };
        return Ok(answer(500, &protocol, code));
    }
    edge += rates.drop / 2.0;
    if roll < edge {
        stats.dropped_before.fetch_add(1, Ordering::Relaxed);
        return Err(std::io::Error::other(
            "connection dropped before forwarding",
        ));
    }
    let drop_after = roll < edge + rates.drop / 2.0;
    edge += rates.drop / 2.0;
    if !drop_after && roll < edge + rates.slow {
        stats.slowed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(rates.latency).await;
    }
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .to_bytes();
    if !rates.fail_bodies_with.is_empty()
        && rates
            .fail_bodies_with
            .iter()
            .all(|part| contains(&body, part.as_bytes()))
    {
        stats.scripted.fetch_add(1, Ordering::Relaxed);
        return Ok(answer(500, &protocol, "InternalError"));
    }
    let body = match failing_entry.and_then(|id| without_entry(&body, id)) {
        Some(fewer) => {
            stats.scripted.fetch_add(1, Ordering::Relaxed);
            fewer
        }
        None => body,
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("{target}{path}"));
    for (name, value) in &parts.headers {
        // The body may have lost an entry: its length is set from the body as sent.
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let forward = forward
        .body(Full::new(body))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let response = client
        .request(forward)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .to_bytes();
    stats.forwarded.fetch_add(1, Ordering::SeqCst);
    if contains(&body, b"TransactionConflict") {
        stats.transaction_conflicts.fetch_add(1, Ordering::Relaxed);
    }
    if drop_after {
        // Applied by the emulator, the answer lost on the way back.
        stats.dropped_after.fetch_add(1, Ordering::Relaxed);
        return Err(std::io::Error::other("connection dropped after forwarding"));
    }
    let mut parts = parts;
    // Hop-by-hop headers belong to the emulator's connection, not the caller's (RFC 9110,
    // 7.6.1): where the emulator closes its connection (a body without Content-Length), its
    // `Connection: close` passed on would close the caller's too, where a region's endpoint
    // keeps it open for the next request.
    parts.headers.remove(hyper::header::CONNECTION);
    parts.headers.remove("keep-alive");
    let body = match failing_entry.and_then(|id| with_failed_entry(&body, id)) {
        Some(answer) => {
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            answer
        }
        None => body,
    };
    let body = match script
        .dropped_field(&operation)
        .and_then(|field| without_field(&body, field))
    {
        Some(answer) => {
            stats.scripted.fetch_add(1, Ordering::Relaxed);
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            answer
        }
        None => body,
    };
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}
