//! The real order-consumer binary against a stand-in for Lambda's runtime API (loopback HTTP):
//! what Lambda and CloudWatch Logs see when it cannot start and when an invocation fails.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A request the fake runtime API received.
struct Received {
    method: String,
    path: String,
    body: String,
}

/// Serves the runtime API on a loopback port: `event` once on `invocation/next` (then nothing:
/// the next call waits), and records every request.
fn runtime_api(event: Option<String>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = event;
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            let next = event.take();
            std::thread::spawn(move || serve(stream, next, tx));
        }
    });
    (addr, rx)
}

fn serve(stream: TcpStream, mut event: Option<String>, tx: mpsc::Sender<Received>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let _ = tx.send(Received {
            method: method.clone(),
            path: path.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if path.ends_with("/invocation/next") {
            let Some(e) = event.take() else {
                std::thread::sleep(Duration::from_secs(600));
                return;
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 10_000;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-42\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:xx-east-1:000000000000:function:order-consumer\r\nlambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1\r\ncontent-length: {}\r\n\r\n{e}",
                e.len()
            );
            out.write_all(response.as_bytes()).unwrap();
        } else {
            out.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        }
    }
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
    let (runtime, received) = runtime_api(None);
    let output = consumer(&runtime, &[]).output().unwrap();
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
    let init = received
        .recv_timeout(Duration::from_secs(5))
        .expect("the runtime API heard of it");
    assert_eq!(
        (init.method.as_str(), init.path.as_str()),
        ("POST", "/2018-06-01/runtime/init/error")
    );
    let body: serde_json::Value = serde_json::from_str(&init.body).unwrap();
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
    let (runtime, received) = runtime_api(Some(event));
    let mut child = consumer(
        &runtime,
        &[
            ("TABLE_NAME", "Orders"),
            // Nothing listens there: every write fails at once.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("START_MARGIN_MS", "1000"),
        ],
    )
    .spawn()
    .unwrap();
    let error = loop {
        let r = received
            .recv_timeout(Duration::from_secs(60))
            .expect("the invocation ends");
        if r.path.contains("/invocation/req-42/") {
            break r;
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(error.path.ends_with("/error"), "{}", error.path);
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
