//! order-api's HTTP surface: the routes, the bounded headers, and the answers with their
//! errors, each naming its field.

use lambda_http::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Response};
use order_domain::InvalidOrder;
use serde::Serialize;
use serde_json::{json, Value};

/// One error of a 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub field: String,
    pub message: String,
}

impl From<InvalidOrder> for ApiError {
    fn from(e: InvalidOrder) -> Self {
        ApiError {
            field: e.field,
            message: e.problem,
        }
    }
}

pub(super) fn error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A header's value when it is present: 1 to `max` visible ASCII characters (`!` to `~`: no
/// spaces, tabs or other control characters), else an error naming the header (`name` as the
/// contract spells it), which the API answers with `400`.
pub(super) fn bounded_header(
    headers: &HeaderMap,
    name: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if !bytes.is_empty() && bytes.len() <= max && bytes.iter().all(u8::is_ascii_graphic) {
        return Ok(Some(String::from_utf8_lossy(bytes).into_owned()));
    }
    Err(error(
        name,
        format!(
            "must be 1 to {max} visible ASCII characters, without spaces or control characters \
             (found {} bytes)",
            bytes.len()
        ),
    ))
}

pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(header::HeaderName, String)>,
}

pub(super) fn answer(status: StatusCode, body: Value) -> Answer {
    Answer {
        status,
        body,
        headers: Vec::new(),
    }
}

pub(super) fn errors(status: StatusCode, errors: Vec<ApiError>) -> Answer {
    answer(status, json!({ "errors": errors }))
}

pub(super) enum Route {
    Post,
    Get(String),
    Cancel(String),
    WrongMethod(&'static str),
    Unknown,
}

pub(super) fn route(method: &Method, path: &str) -> Route {
    let path = path.trim_end_matches('/');
    let cancel = path
        .strip_prefix("/orders/")
        .and_then(|rest| rest.strip_suffix("/cancel"))
        .filter(|id| !id.is_empty() && !id.contains('/'));
    if let Some(id) = cancel {
        return if method == Method::POST {
            Route::Cancel(percent_decode(id))
        } else {
            Route::WrongMethod("POST")
        };
    }
    match (path, path.strip_prefix("/orders/")) {
        ("/orders", _) if method == Method::POST => Route::Post,
        ("/orders", _) => Route::WrongMethod("POST"),
        (_, Some(id)) if !id.contains('/') && method == Method::GET => {
            Route::Get(percent_decode(id))
        }
        (_, Some(id)) if !id.contains('/') => Route::WrongMethod("GET"),
        _ => Route::Unknown,
    }
}

/// Path segments arrive percent-encoded; an invalid escape stays as it is (and fails the rule).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn respond(answer: Answer, correlation: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(answer.body.to_string()));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(correlation) {
        headers.insert("x-correlation-id", v);
    }
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}
