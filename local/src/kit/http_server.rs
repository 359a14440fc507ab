//! An HTTP/1.1 server on a free loopback port, serving a handler until it is stopped or dropped:
//! the one server behind every local endpoint (the HTTP API, the fake payment provider, the
//! fault proxy, the runtime API stand-in, the benchmarks' fake DynamoDB and SNS). Loopback only;
//! it serves the real clients (the AWS SDK's, lambda_runtime's, hyper's), keeping their
//! connections open between requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request as the handler gets it.
pub type Request = hyper::Request<Incoming>;
/// A response with its whole body.
pub type Response = hyper::Response<Full<Bytes>>;

/// How the server treats the connections it accepts.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// Sets TCP_NODELAY on each connection, so that a small answer leaves at once (the
    /// benchmarks' endpoints, whose figures a delayed segment would spoil).
    pub nodelay: bool,
    /// Called for each connection accepted (the fault proxy counts them).
    pub on_connection: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// A running server. Stopping it (or dropping it) stops accepting connections; the ones open
/// finish what they are doing.
pub struct HttpServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Serves `handler` on a free loopback port.
    pub async fn start<H, F>(handler: H) -> std::io::Result<Self>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        Self::start_with(ServerOptions::default(), move |request| {
            let answer = handler(request);
            async move { Ok::<_, Infallible>(answer.await) }
        })
        .await
    }

    /// Serves `handler` on a free loopback port with `options`. A handler's error drops the
    /// connection without an answer (a stand-in for a connection lost or a service gone).
    pub async fn start_with<H, F, E>(options: ServerOptions, handler: H) -> std::io::Result<Self>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Response, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if options.nodelay {
                    let _ = stream.set_nodelay(true);
                }
                if let Some(counted) = &options.on_connection {
                    counted();
                }
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handler(request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response with `status` and `body` (a status that is not one is answered as 500).
pub fn response(status: u16, body: impl Into<Bytes>) -> Response {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// A JSON answer: `status`, `body`, `content-type: application/json`.
pub fn json_response(status: u16, body: impl Into<Bytes>) -> Response {
    with_header(response(status, body), "content-type", "application/json")
}

/// `response` with the header `name: value` (left out when `value` is not a header value).
pub fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// Protects the kit's server: it answers on loopback with the handler's status, headers and
    /// body, keeps a client's connection for its next request, counts connections, and a
    /// handler's error drops the connection without an answer.
    #[tokio::test]
    async fn the_kit_server_answers_keeps_connections_and_drops_one_on_an_error() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let connections = Arc::new(AtomicU64::new(0));
        let counted = connections.clone();
        let server = HttpServer::start_with(
            ServerOptions {
                nodelay: true,
                on_connection: Some(Arc::new(move || {
                    counted.fetch_add(1, Ordering::Relaxed);
                })),
            },
            |request: Request| async move {
                if request.uri().path() == "/drop" {
                    return Err(std::io::Error::other("dropped"));
                }
                let body = request.into_body().collect().await.unwrap().to_bytes();
                Ok(with_header(
                    response(201, body),
                    "content-type",
                    "text/plain",
                ))
            },
        )
        .await
        .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        for i in 0..3 {
            let request = hyper::Request::post(format!("{}/echo", server.url()))
                .body(Full::new(Bytes::from(format!("hello {i}"))))
                .unwrap();
            let answer = client.request(request).await.unwrap();
            assert_eq!(answer.status(), 201);
            assert_eq!(answer.headers()["content-type"], "text/plain");
            let body = answer.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("hello {i}"));
        }
        assert_eq!(
            connections.load(Ordering::Relaxed),
            1,
            "one kept connection"
        );
        let dropped = client
            .request(
                hyper::Request::get(format!("{}/drop", server.url()))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert!(dropped.is_err(), "no answer on a handler's error");
    }
}
