//! The real order-consumer binary against a stand-in for Lambda's runtime API (loopback HTTP):
//! what Lambda and CloudWatch Logs see when it cannot start and when an invocation fails.

use std::process::{Command, Stdio};
use std::time::Duration;

use order_local::kit::runtime_api::{Deadline, Heard, Invocation, RuntimeApi, RuntimeOptions};

/// The stand-in for Lambda's runtime API (the local test kit's), reporting every request the
/// binary makes.
fn runtime_api() -> RuntimeApi {
    RuntimeApi::start_blocking(RuntimeOptions {
        hear: true,
        ..RuntimeOptions::new("arn:aws:lambda:xx-east-1:000000000000:function:order-consumer")
    })
    .expect("the runtime API listens on loopback")
}

fn consumer(runtime: &str, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_order-consumer"));
    c.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "order-consumer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "xx-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
        .collect()
}

/// Protects: a function that cannot start says why in one JSON line (no Rust Debug text on
/// stderr) and reports it to the runtime API's init-error endpoint, as Lambda expects.
#[test]
fn a_start_up_error_is_one_json_line_and_is_reported_as_the_init_error() {
    let runtime = runtime_api();
    let output = consumer(&runtime.addr.to_string(), &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let mut lines = json_lines(&output.stdout);
    lines.extend(json_lines(&output.stderr));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(
        lines[0]["error"].as_str().unwrap().contains("TABLE_NAME"),
        "{}",
        lines[0]
    );
    let Some(Heard::Request { method, path, body }) = runtime.next_heard(Duration::from_secs(5))
    else {
        panic!("the runtime API heard of it");
    };
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", "/2018-06-01/runtime/init/error")
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("TABLE_NAME"),
        "{body}"
    );
}

/// Protects: when an invocation fails as a whole (DynamoDB unreachable), every line it writes,
/// including the runtime's own error line, is JSON with the invocation's request and trace ids,
/// and the error is one short sentence (it once dumped ~1.5 KB of Rust debug text).
#[test]
fn a_failed_invocation_logs_json_lines_with_the_request_and_trace_ids() {
    let body = r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":1}]}"#;
    let event = serde_json::json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "h", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1746273600000"},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:xx-east-1:000000000000:orders", "awsRegion": "xx-east-1"
    }]})
    .to_string();
    let runtime = runtime_api();
    runtime.invoke(
        Invocation::new(
            "req-42",
            event,
            Deadline::AfterDelivery(Duration::from_secs(30)),
        )
        .with_trace_id(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ),
    );
    let mut child = consumer(
        &runtime.addr.to_string(),
        &[
            ("TABLE_NAME", "Orders"),
            // Nothing listens there: every write fails at once.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("START_MARGIN_MS", "1000"),
        ],
    )
    .spawn()
    .unwrap();
    let error_path = loop {
        match runtime.next_heard(Duration::from_secs(60)) {
            Some(Heard::Request { path, .. }) if path.contains("/invocation/req-42/") => {
                break path
            }
            Some(_) => continue,
            None => panic!("the invocation ends"),
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(error_path.ends_with("/error"), "{error_path}");
    let lines = json_lines(&output.stdout);
    assert!(json_lines(&output.stderr).is_empty(), "nothing on stderr");
    let in_invocation: Vec<_> = lines
        .iter()
        .filter(|l| l["level"] == "ERROR" || l["level"] == "WARN")
        .collect();
    assert!(!in_invocation.is_empty());
    for l in &in_invocation {
        assert_eq!(l["function_request_id"], "req-42", "{l}");
        assert_eq!(
            l["xray_trace_id"], "1-5759e988-bd862e3fe1be46a994272793",
            "{l}"
        );
    }
    let runtime_line = lines
        .iter()
        .find(|l| {
            l["logger"]
                .as_str()
                .is_some_and(|t| t.starts_with("lambda_runtime"))
        })
        .expect("the runtime logged the failed invocation");
    let message = runtime_line["message"].as_str().unwrap();
    assert!(
        message.starts_with("all 1 records of the batch failed"),
        "{message}"
    );
    assert!(message.len() < 600, "{} bytes: {message}", message.len());
}

/// Protects: a traced function (Lambda's `AWS_XRAY_DAEMON_ADDRESS` set) sends its own segments to the X-Ray daemon: `handler` below the function segment of the
/// invocation's trace header, the record as a segment of the trace its message carries
/// (`AWSTraceHeader`) with the order id as an annotation, and the DynamoDB call inside the
/// record. Without this the functions sent nothing and no trace followed an order past the API.
#[test]
fn a_traced_invocation_sends_its_segments_in_the_messages_trace() {
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = r#"{"orderId":"O7","customerId":"U1","items":[{"sku":"A","quantity":1}]}"#;
    // X-Ray refuses a trace id older than 30 days: both are of now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let invocation_root = format!("1-{now:08x}-bd862e3fe1be46a994272793");
    let message_root = format!("1-{now:08x}-1233e140bfd846c5a5f43594");
    let message_trace = format!("Root={message_root};Parent=1a2b3c4d5e6f7a8b;Sampled=1");
    let event = serde_json::json!({"Records": [{
        "messageId": "m-7", "receiptHandle": "h", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1746273600000",
                       "AWSTraceHeader": message_trace},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:xx-east-1:000000000000:orders", "awsRegion": "xx-east-1"
    }]})
    .to_string();
    let runtime = runtime_api();
    let _answer = runtime.invoke(
        Invocation::new(
            "req-7",
            event,
            Deadline::AfterDelivery(Duration::from_secs(30)),
        )
        .with_trace_id(format!(
            "Root={invocation_root};Parent=53995c3f42cd8ad8;Sampled=1"
        )),
    );
    let mut child = consumer(
        &runtime.addr.to_string(),
        &[
            ("TABLE_NAME", "Orders"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("START_MARGIN_MS", "1000"),
            (
                "AWS_XRAY_DAEMON_ADDRESS",
                &daemon.local_addr().unwrap().to_string(),
            ),
        ],
    )
    .spawn()
    .unwrap();
    let mut documents = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    while let Ok(n) = daemon.recv(&mut buffer) {
        let text = String::from_utf8_lossy(&buffer[..n]).to_string();
        let (header, document) = text.split_once('\n').expect("a daemon header line");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        documents.push(serde_json::from_str::<serde_json::Value>(document).unwrap());
        if documents.iter().any(|d| d["name"] == "handler") {
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let named = |name: &str| {
        documents
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no {name} document in {documents:#?}"))
    };
    let handler = named("handler");
    assert_eq!(handler["trace_id"], invocation_root.as_str());
    assert_eq!(handler["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(handler["type"], "subsegment");
    let record = named("order-consumer");
    assert_eq!(record["trace_id"], message_root.as_str());
    assert_eq!(record["parent_id"], "1a2b3c4d5e6f7a8b");
    assert_eq!(record["annotations"]["order_id"], "O7", "{record}");
    let call = named("DynamoDB");
    assert_eq!(call["parent_id"], record["id"], "{call}");
    assert_eq!(call["trace_id"], record["trace_id"]);
}
