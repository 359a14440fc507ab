//! A stand-in for Lambda's runtime API on loopback, for running the real function binary: it
//! hands the binary the invocations a test gives it and reports every request the binary makes.
//! One per process: a killed process's connection dies with its stand-in.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the stand-in heard from the binary, or did.
#[derive(Debug)]
#[allow(dead_code)] // each test binary reads its part
pub enum Heard {
    /// A request the binary made.
    Request {
        method: String,
        path: String,
        body: String,
    },
    /// The invocation `request_id` was handed to the binary (its answer to `invocation/next`).
    Delivered { request_id: String, at: Instant },
}

pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
    invocations: mpsc::Sender<(String, String)>,
    pub heard: mpsc::Receiver<Heard>,
}

impl RuntimeApi {
    /// Listens on a loopback port. `invocation/next` waits for [`RuntimeApi::invoke`] (or for
    /// the stand-in to be dropped, which closes the connection).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (heard_tx, heard) = mpsc::channel();
        let (invocations, queued) = mpsc::channel::<(String, String)>();
        let queued = Arc::new(Mutex::new(queued));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (heard, queued) = (heard_tx.clone(), queued.clone());
                std::thread::spawn(move || serve(stream, &queued, &heard));
            }
        });
        Self {
            addr,
            invocations,
            heard,
        }
    }

    /// Queues an invocation with `request_id` and the JSON `event`.
    pub fn invoke(&self, request_id: &str, event: String) {
        self.invocations
            .send((request_id.to_string(), event))
            .unwrap();
    }

    /// The next thing heard within `timeout`, if any.
    pub fn next_heard(&self, timeout: Duration) -> Option<Heard> {
        self.heard.recv_timeout(timeout).ok()
    }
}

type Queued = Arc<Mutex<mpsc::Receiver<(String, String)>>>;

fn serve(stream: TcpStream, queued: &Queued, heard: &mpsc::Sender<Heard>) {
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
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
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
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = heard.send(Heard::Request {
            method,
            path: path.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if path.ends_with("/invocation/next") {
            // Waits for an invocation; the stand-in dropped ends the connection.
            let next = queued.lock().unwrap().recv();
            let Ok((request_id, event)) = next else {
                return;
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {request_id}\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:xx-east-1:000000000000:function:order-consumer\r\nlambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1\r\ncontent-length: {}\r\n\r\n{event}",
                event.len()
            );
            if out.write_all(response.as_bytes()).is_err() {
                return;
            }
            let _ = heard.send(Heard::Delivered {
                request_id,
                at: Instant::now(),
            });
        } else if out
            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
