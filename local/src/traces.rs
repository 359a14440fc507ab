//! The local X-Ray daemon: the runner listens where a traced function sends its segment
//! documents (`AWS_XRAY_DAEMON_ADDRESS`, UDP, each datagram a `{"format": "json", "version": 1}`
//! header line and one document), and keeps them one per line in a file of the state directory.
//! `orders trace ORDER_ID` reads that file back: one order's segments, as a tree per trace.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::LocalError;

/// Where a `run` (or a `demo`, ...) keeps its functions' segment documents.
pub fn path(command: &str) -> PathBuf {
    match command {
        "run" => crate::state_dir().join("traces.jsonl"),
        other => crate::state_dir().join(format!("{other}-traces.jsonl")),
    }
}

/// The listening daemon; it lives as long as the process.
pub struct Collector {
    pub address: SocketAddr,
    pub path: PathBuf,
}

impl Collector {
    /// Listens on a free loopback port and appends every document it receives to `path`
    /// (emptied first).
    pub fn start(path: &Path) -> Result<Self, LocalError> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| LocalError::Input(format!("the trace collector cannot listen: {e}")))?;
        let address = socket
            .local_addr()
            .map_err(|e| LocalError::Input(format!("the trace collector's address: {e}")))?;
        let mut file = std::fs::File::create(path).map_err(|e| {
            LocalError::Input(format!(
                "cannot write the traces to {}: {e}",
                path.display()
            ))
        })?;
        std::thread::Builder::new()
            .name("trace-collector".into())
            .spawn(move || {
                let mut buffer = vec![0u8; 65_536];
                loop {
                    match socket.recv(&mut buffer) {
                        Ok(n) => {
                            if let Some(document) = document_of(&buffer[..n]) {
                                let _ = file.write_all(document.as_bytes());
                                let _ = file.write_all(b"\n");
                            }
                        }
                        // A datagram lost (ICMP errors, signals) loses only itself.
                        Err(_) => continue,
                    }
                }
            })
            .map_err(|e| LocalError::Input(format!("the trace collector's thread: {e}")))?;
        Ok(Self {
            address,
            path: path.to_path_buf(),
        })
    }
}

/// The document of one datagram (the daemon's header line dropped), on one line.
fn document_of(datagram: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (_, document) = text.split_once('\n')?;
    let value: Value = serde_json::from_str(document).ok()?;
    Some(value.to_string())
}

/// Every document of `path` (a line that is not JSON, e.g. one being written, is left out).
pub fn read(path: &Path) -> Result<Vec<Value>, LocalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(LocalError::Input(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn text<'a>(doc: &'a Value, name: &str) -> Option<&'a str> {
    doc.get(name)?.as_str()
}

/// The documents about one order: those whose `order_id` annotation is `order_id`, what they
/// contain (the calls made for it) and what contains them (up to the invocation), in the
/// order's every trace. Another order's records of the same batch are left out.
pub fn of_order(documents: &[Value], order_id: &str) -> Vec<Value> {
    let by_id: HashMap<&str, &Value> = documents
        .iter()
        .filter_map(|d| Some((text(d, "id")?, d)))
        .collect();
    let mut kept: HashSet<&str> = documents
        .iter()
        .filter(|d| d["annotations"]["order_id"].as_str() == Some(order_id))
        .filter_map(|d| text(d, "id"))
        .collect();
    // What contains them: up the parents present.
    let annotated: Vec<&str> = kept.iter().copied().collect();
    for id in annotated {
        let mut at = by_id.get(id).and_then(|d| text(d, "parent_id"));
        while let Some(parent) = at {
            if !kept.insert(parent) {
                break;
            }
            at = by_id.get(parent).and_then(|d| text(d, "parent_id"));
        }
    }
    // What they contain: below an annotated document (below an invocation would take the
    // batch's other records too).
    let mut result: Vec<Value> = documents
        .iter()
        .filter(|d| {
            let Some(id) = text(d, "id") else {
                return false;
            };
            kept.contains(id) || descends_from_annotated(d, &by_id, order_id)
        })
        .cloned()
        .collect();
    result.sort_by(|a, b| start(a).total_cmp(&start(b)));
    result
}

/// Whether `doc` is, or sits below, a document annotated with `order_id`.
fn descends_from_annotated(doc: &Value, by_id: &HashMap<&str, &Value>, order_id: &str) -> bool {
    let mut at = Some(doc);
    let mut steps = 0;
    while let Some(d) = at {
        if d["annotations"]["order_id"].as_str() == Some(order_id) {
            return true;
        }
        steps += 1;
        if steps > 64 {
            return false;
        }
        at = text(d, "parent_id").and_then(|p| by_id.get(p).copied());
    }
    false
}

fn start(doc: &Value) -> f64 {
    doc["start_time"].as_f64().unwrap_or(0.0)
}

fn end(doc: &Value) -> f64 {
    doc["end_time"].as_f64().unwrap_or_else(|| start(doc))
}

/// One line per document, indented under its parent, each trace after the one before, with the
/// offset from the order's first document, the duration, and what the document says of its
/// call (the AWS operation, the HTTP method and path) or its order.
pub fn render(documents: &[Value]) -> String {
    let Some(first) = documents.iter().map(start).reduce(f64::min) else {
        return String::new();
    };
    let ids: HashSet<&str> = documents.iter().filter_map(|d| text(d, "id")).collect();
    let mut children: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    let mut roots: Vec<&Value> = Vec::new();
    for d in documents {
        match text(d, "parent_id").filter(|p| ids.contains(p)) {
            Some(parent) => children.entry(parent).or_default().push(d),
            None => roots.push(d),
        }
    }
    let mut traces: Vec<(&str, Vec<&Value>)> = Vec::new();
    for root in roots {
        let trace = text(root, "trace_id").unwrap_or("");
        match traces.iter_mut().find(|(t, _)| *t == trace) {
            Some((_, list)) => list.push(root),
            None => traces.push((trace, vec![root])),
        }
    }
    let mut out = String::new();
    for (trace, roots) in traces {
        out.push_str(&format!("trace {trace}\n"));
        for root in roots {
            line(&mut out, root, 1, first, &children);
        }
    }
    out
}

fn line(
    out: &mut String,
    doc: &Value,
    depth: usize,
    first: f64,
    children: &BTreeMap<&str, Vec<&Value>>,
) {
    let name = text(doc, "name").unwrap_or("?");
    let mut detail = Vec::new();
    if let Some(operation) = doc["aws"]["operation"].as_str() {
        detail.push(operation.to_string());
    }
    if let Some(method) = doc["http"]["request"]["method"].as_str() {
        detail.push(method.to_string());
    }
    if let Some(order) = doc["annotations"]["order_id"].as_str() {
        detail.push(format!("order_id={order}"));
    }
    if doc["fault"].as_bool() == Some(true) || doc["error"].as_bool() == Some(true) {
        detail.push("FAILED".into());
    }
    out.push_str(&format!(
        "{:>9} {:>8} {}{}{}{}\n",
        format!("+{:.0} ms", (start(doc) - first) * 1000.0),
        format!("{:.1} ms", (end(doc) - start(doc)) * 1000.0),
        "  ".repeat(depth - 1),
        name,
        if detail.is_empty() { "" } else { "  " },
        detail.join(" "),
    ));
    if depth > 64 {
        return; // a document naming itself (or a loop) as its parent
    }
    let mut below: Vec<&Value> = children
        .get(text(doc, "id").unwrap_or(""))
        .cloned()
        .unwrap_or_default();
    below.sort_by(|a, b| start(a).total_cmp(&start(b)));
    for child in below {
        line(out, child, depth + 1, first, children);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(
        id: &str,
        parent: Option<&str>,
        trace: &str,
        name: &str,
        at: f64,
        order: Option<&str>,
    ) -> Value {
        let mut d = json!({"id": id, "trace_id": trace, "name": name, "start_time": at, "end_time": at + 0.002});
        if let Some(p) = parent {
            d["parent_id"] = json!(p);
        }
        if let Some(o) = order {
            d["annotations"] = json!({"order_id": o});
        }
        d
    }

    /// Protects: an order's trace holds its records, the calls made inside them and the
    /// invocations that contain them, across traces, and never another order's record of the
    /// same batch nor that record's calls.
    #[test]
    fn an_orders_trace_keeps_its_records_calls_and_invocations_only() {
        let documents = vec![
            doc("h1", Some("lambda"), "T1", "handler", 1.000, None),
            doc("r1", Some("h1"), "T1", "record", 1.001, Some("O1")),
            doc("c1", Some("r1"), "T1", "DynamoDB", 1.002, None),
            doc("p1", Some("r1"), "T1", "SNS", 1.003, None),
            doc("r2", Some("h1"), "T1", "record", 1.001, Some("O2")),
            doc("c2", Some("r2"), "T1", "DynamoDB", 1.002, None),
            doc("s1", Some("p1"), "T1", "inventory", 1.010, Some("O1")),
            doc("c3", Some("s1"), "T1", "DynamoDB", 1.011, None),
            doc("x", None, "T9", "handler", 0.5, None),
        ];
        let kept: Vec<String> = of_order(&documents, "O1")
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kept, ["h1", "r1", "c1", "p1", "s1", "c3"]);
        let text = render(&of_order(&documents, "O1"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "trace T1", "{text}");
        assert!(
            lines[1].contains("+0 ms") && lines[1].ends_with(" handler"),
            "{text}"
        );
        assert!(lines[2].contains("  record  order_id=O1"), "{text}");
        assert!(lines[5].contains("      inventory  order_id=O1"), "{text}");
        assert_eq!(lines.len(), 7, "{text}");
    }

    /// Protects: the collector drops the daemon header and keeps each document on one line.
    #[test]
    fn a_datagram_is_its_document_without_the_daemon_header() {
        let datagram =
            b"{\"format\": \"json\", \"version\": 1}\n{\"id\": \"a\",\n \"name\": \"n\"}";
        assert_eq!(document_of(datagram).unwrap(), r#"{"id":"a","name":"n"}"#);
        assert_eq!(document_of(b"no header"), None);
    }
}
