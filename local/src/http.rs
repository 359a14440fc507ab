//! HTTP on both sides of the order API.
//!
//! - [`ApiServer`]: the stack's HTTP API served on a loopback port, routing each request by the
//!   template's route keys to the real handler of the function its integration names. A JWT
//!   route's token is checked by the runner's own issuer ([`crate::issuer`]) as API Gateway
//!   checks it; IAM routes take unsigned requests (loopback only).
//! - [`post_order`]: a client for `POST /orders`, signed with SigV4 (service `execute-api`) when
//!   it talks to a deployed stack (https), unsigned for the local server.

use std::sync::Arc;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use lambda_http::{Body, RequestExt};

use crate::issuer::{Denied, Issuer, JWKS_PATH, TOKENS_PATH};
use crate::kit::http_server::HttpServer;
use crate::LocalError;

/// A function an HTTP API integration invokes.
pub trait HttpFunction: Send + Sync {
    fn invoke(&self, request: lambda_http::Request) -> BoxFuture<'_, lambda_http::Response<Body>>;
}

impl<P, R> HttpFunction for order_pipeline::functions::api::OrderApi<P, R>
where
    P: order_pipeline::ports::publish::OrderPublisher + 'static,
    R: order_pipeline::ports::orders::LifecycleStore + 'static,
{
    fn invoke(&self, request: lambda_http::Request) -> BoxFuture<'_, lambda_http::Response<Body>> {
        Box::pin(self.handle(request))
    }
}

/// One route of the API: `POST /orders`, `GET /orders/{orderId}`.
#[derive(Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function_name: String,
    pub handler: Arc<dyn HttpFunction>,
    /// A JWT route's scopes (one of them needed; empty: any valid token); `None`: unsigned.
    pub jwt: Option<Vec<String>>,
}

impl Route {
    /// Whether `method` and `path` match, `{name}` matching one path segment.
    fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) && self.method != "ANY" {
            return false;
        }
        let want: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        want.len() == got.len()
            && want
                .iter()
                .zip(&got)
                .all(|(w, g)| (w.starts_with('{') && w.ends_with('}') && !g.is_empty()) || w == g)
    }
}

/// The HTTP API on a loopback port.
pub struct ApiServer {
    pub url: String,
    server: HttpServer,
}

impl ApiServer {
    /// Serves `routes`; `issuer` checks the JWT routes' tokens and mints tokens.
    pub async fn start(
        routes: Vec<Route>,
        issuer: Option<Arc<Issuer>>,
    ) -> Result<Self, LocalError> {
        if issuer.is_none() && routes.iter().any(|r| r.jwt.is_some()) {
            return Err(LocalError::Input(
                "the API has JWT routes but the runner has no issuer for them".into(),
            ));
        }
        let routes = Arc::new(routes);
        let server = HttpServer::start(move |request| {
            let routes = routes.clone();
            let issuer = issuer.clone();
            async move { dispatch(&routes, issuer.as_deref(), request).await }
        })
        .await
        .map_err(|e| LocalError::Input(format!("could not listen on loopback: {e}")))?;
        Ok(ApiServer {
            url: server.url(),
            server,
        })
    }

    pub fn stop(&self) {
        self.server.stop();
    }
}

fn plain(status: u16, body: &str) -> hyper::Response<Full<Bytes>> {
    crate::kit::http_server::json_response(status, body.to_string())
}

async fn dispatch(
    routes: &[Route],
    issuer: Option<&Issuer>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    if let Some(issuer) = issuer {
        match (method.as_str(), path.as_str()) {
            ("GET", JWKS_PATH) => return plain(200, &issuer.jwks().to_string()),
            ("POST", TOKENS_PATH) => return mint(issuer, request).await,
            _ => {}
        }
    }
    let Some(route) = routes.iter().find(|r| r.matches(&method, &path)) else {
        // What API Gateway answers for a route the API does not have.
        return plain(404, r#"{"message":"Not Found"}"#);
    };
    let (parts, body) = request.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return plain(
                400,
                &serde_json::json!({"message": e.to_string()}).to_string(),
            )
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let context = crate::invoke::invocation_context(
        uuid::Uuid::new_v4().to_string(),
        &route.function_name,
        None,
    );
    let mut request = lambda_http::Request::from_parts(parts, body).with_lambda_context(context);
    if let (Some(scopes), Some(issuer)) = (&route.jwt, issuer) {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        // API Gateway's own answers; the function is not invoked.
        let verified = match issuer.verify(authorization, scopes) {
            Ok(verified) => verified,
            Err(Denied::Unauthorized(why)) => {
                tracing::info!(%why, %path, "local API: 401");
                return plain(401, r#"{"message":"Unauthorized"}"#);
            }
            Err(Denied::Forbidden(why)) => {
                tracing::info!(%why, %path, "local API: 403");
                return plain(403, r#"{"message":"Forbidden"}"#);
            }
        };
        request = request.with_request_context(jwt_context(&method, &path, verified));
    }
    let response = route.handler.invoke(request).await;
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// The request context API Gateway gives a function behind a JWT authorizer: the verified
/// token's claims and scopes under `authorizer.jwt`.
fn jwt_context(
    method: &str,
    path: &str,
    verified: crate::issuer::Verified,
) -> lambda_http::request::RequestContext {
    let context = serde_json::json!({
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
        "authorizer": {"jwt": {"claims": verified.claims, "scopes": verified.scopes}},
    });
    lambda_http::request::RequestContext::ApiGatewayV2(
        serde_json::from_value(context).unwrap_or_default(),
    )
}

/// `POST /local/tokens` with `{"customer": "U1", "admin": false}`: a token of the runner's
/// issuer for that customer (`admin`: with the admin scope).
async fn mint(issuer: &Issuer, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let asked: serde_json::Value = match request.into_body().collect().await {
        Ok(b) => serde_json::from_slice(&b.to_bytes()).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let Some(customer) = asked["customer"].as_str().filter(|c| !c.trim().is_empty()) else {
        return plain(
            400,
            r#"{"message":"give {\"customer\": \"<customer id>\", \"admin\": false}"}"#,
        );
    };
    match issuer.token_for(customer, asked["admin"].as_bool().unwrap_or(false)) {
        Ok(token) => plain(200, &serde_json::json!({ "token": token }).to_string()),
        Err(e) => plain(
            500,
            &serde_json::json!({ "message": e.to_string() }).to_string(),
        ),
    }
}

/// A token from the local runner's issuer (the API at `api_url`) for `customer`; `admin`: with
/// the admin scope. For `Authorization: Bearer <token>`.
pub async fn local_token(api_url: &str, customer: &str, admin: bool) -> Result<String, LocalError> {
    let url = format!("{}{TOKENS_PATH}", api_url.trim_end_matches('/'));
    let body = serde_json::json!({ "customer": customer, "admin": admin }).to_string();
    let answer = send("POST", &url, Some(&body), &[], None).await?;
    match answer.body["token"].as_str() {
        Some(token) if answer.status == 200 => Ok(token.to_string()),
        _ => Err(LocalError::Input(format!(
            "the local API at {api_url} minted no token ({} {}): is the runner's API behind a JWT authorizer (`orders run --jwt`)?",
            answer.status, answer.body
        ))),
    }
}

/// What `POST /orders` answered.
#[derive(Debug, Clone)]
pub struct Posted {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Sends one HTTP request and returns the status and the JSON body. `sdk` signs it (SigV4,
/// `execute-api`) when given: a deployed stack's API takes IAM-authorized callers only.
pub async fn send(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
    sdk: Option<&SdkConfig>,
) -> Result<Posted, LocalError> {
    let what = format!("{method} {url}");
    let err = |detail: String| LocalError::Aws {
        what: what.clone(),
        detail,
    };
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_string())))
        .map_err(|e| err(e.to_string()))?;
    {
        let h = request.headers_mut();
        if body.is_some() {
            h.insert(
                "content-type",
                hyper::header::HeaderValue::from_static("application/json"),
            );
        }
        if let Some(host) = request.uri().authority().map(|a| a.to_string()) {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&host) {
                request.headers_mut().insert("host", v);
            }
        }
    }
    for (k, v) in headers {
        let value = hyper::header::HeaderValue::from_str(v).map_err(|e| err(e.to_string()))?;
        let name =
            hyper::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| err(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    if let Some(sdk) = sdk {
        sign(&mut request, body.unwrap_or_default().as_bytes(), sdk)
            .await
            .map_err(err)?;
    }
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| err(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(https);
    let response = client
        .request(request)
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| err(e.to_string()))?
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    Ok(Posted { status, body })
}

/// Signs `request` for API Gateway with the SDK configuration's credentials and region.
async fn sign(
    request: &mut hyper::Request<Full<Bytes>>,
    body: &[u8],
    sdk: &SdkConfig,
) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    let provider = sdk
        .credentials_provider()
        .ok_or("no AWS credentials provider is configured")?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| format!("no AWS credentials: {e}"))?;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region is set: set AWS_REGION")?;
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
