//! A fault-injecting proxy between the functions and the emulator.
//!
//! The functions' AWS SDK clients talk to it instead of the emulator; it forwards each request,
//! and at the set rates answers with throttling or a server error instead, waits first (a latency
//! spike), or drops the connection, before forwarding (the request never arrived) or after (it
//! was applied and its answer lost: the case that makes a retry see its own write). The answers
//! are the services' own error shapes (DynamoDB and SQS JSON, SNS XML), so the SDK classifies and
//! retries them as it would on AWS. The runner's own clients (the event source mappings, the
//! publisher, the checks) talk to the emulator directly: Lambda's service is not what fails.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::TcpListener;

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
}

impl FaultRates {
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
        }
    }
}

/// What the proxy did.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub dropped_before: AtomicU64,
    pub dropped_after: AtomicU64,
    pub slowed: AtomicU64,
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
        ]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum()
    }
}

pub struct FaultProxy {
    pub url: String,
    pub stats: Arc<FaultStats>,
    task: tokio::task::JoinHandle<()>,
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

impl FaultProxy {
    /// Listens on loopback and forwards to `target` (the emulator's endpoint).
    pub async fn start(target: &str, rates: FaultRates) -> Result<Self, LocalError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| LocalError::Input(format!("could not listen on loopback: {e}")))?;
        let addr: SocketAddr = listener
            .local_addr()
            .map_err(|e| LocalError::Input(e.to_string()))?;
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let stats = Arc::new(FaultStats::default());
        let shared = (
            Arc::new(target.trim_end_matches('/').to_string()),
            client,
            stats.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (target, client, stats) = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (target, client, stats) =
                            (target.clone(), client.clone(), stats.clone());
                        async move { relay(&target, &client, &stats, rates, request).await }
                    });
                    // A dropped connection is the service answering with an error.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy {
            url: format!("http://{addr}"),
            stats,
            task,
        })
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
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
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let protocol = protocol(&request);
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
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("{target}{path}"));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST {
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
    if drop_after {
        // Applied by the emulator, the answer lost on the way back.
        stats.dropped_after.fetch_add(1, Ordering::Relaxed);
        return Err(std::io::Error::other("connection dropped after forwarding"));
    }
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}
