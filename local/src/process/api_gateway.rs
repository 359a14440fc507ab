//! A function behind the HTTP API run as a process: the API Gateway (payload format 2.0) event
//! it is invoked with, and the HTTP response in its answer.

use lambda_http::Body;

/// The API Gateway HTTP API (payload format 2.0) event for `request`.
pub(super) fn api_gateway_event(request: &lambda_http::Request) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.into())))
        .collect();
    let body = match request.body() {
        Body::Text(t) => Some(t.clone()),
        Body::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let method = request.method().as_str();
    let path = request.uri().path();
    let now = chrono::Utc::now();
    // A JWT route's verified claims and scopes, as API Gateway passes them.
    let authorizer = match lambda_http::RequestExt::request_context_ref(request) {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c
            .authorizer
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok()),
        _ => None,
    };
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": request.uri().query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": crate::emulator::EMULATOR_ACCOUNT,
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "order-local"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "body": body,
        "isBase64Encoded": false
    });
    if let Some(authorizer) = authorizer {
        event["requestContext"]["authorizer"] = authorizer;
    }
    event
}

/// The HTTP response in an API Gateway (2.0) answer.
pub(super) fn http_response(answer: &serde_json::Value) -> lambda_http::Response<Body> {
    let status = answer["statusCode"].as_u64().unwrap_or(200) as u16;
    let body = answer["body"].as_str().map(str::to_string);
    let mut r = lambda_http::Response::new(match body {
        Some(b) => Body::Text(b),
        None => Body::Empty,
    });
    *r.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::BAD_GATEWAY);
    if let Some(headers) = answer["headers"].as_object() {
        for (k, v) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                lambda_http::http::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(lambda_http::http::HeaderValue::from_str),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    /// Protects (issue 31): a bootstrap behind a JWT route gets the verified claims and scopes in
    /// `requestContext.authorizer.jwt`, as API Gateway sends them (the runner's check put them on
    /// the request; without this the real binary would see no caller and answer 401).
    #[test]
    fn the_event_carries_the_jwt_authorizers_claims_and_scopes() {
        let context: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext =
            serde_json::from_value(serde_json::json!({
                "http": {"method": "GET", "path": "/orders/O1"},
                "authorizer": {"jwt": {"claims": {"sub": "U1"}, "scopes": ["orders/customer"]}},
            }))
            .unwrap();
        let request = lambda_http::http::Request::builder()
            .method("GET")
            .uri("/orders/O1")
            .body(Body::Empty)
            .unwrap()
            .with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context));
        let event = api_gateway_event(&request);
        let parsed: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(event).unwrap();
        let jwt = parsed.request_context.authorizer.unwrap().jwt.unwrap();
        assert_eq!(jwt.claims["sub"], "U1");
        assert_eq!(jwt.scopes.unwrap(), ["orders/customer"]);
        let unsigned = lambda_http::http::Request::builder()
            .uri("/orders/O1")
            .body(Body::Empty)
            .unwrap();
        assert!(api_gateway_event(&unsigned)["requestContext"]
            .get("authorizer")
            .is_none());
    }
}
