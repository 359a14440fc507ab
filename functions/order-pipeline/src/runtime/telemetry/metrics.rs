//! CloudWatch Embedded Metric Format: one JSON line per invocation that CloudWatch Logs turns
//! into metrics in the `OrderPipeline` namespace, with no API call on the hot path.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::LineWriter;

pub const NAMESPACE: &str = "OrderPipeline";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Metrics gathered during one invocation, flushed as one EMF line.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    values: BTreeMap<&'static str, (Unit, Vec<f64>)>,
}

/// EMF allows at most 100 values per metric per line.
const MAX_VALUES: usize = 100;

impl Metrics {
    pub fn add(&mut self, name: &'static str, unit: Unit, value: f64) {
        let entry = self.values.entry(name).or_insert((unit, Vec::new()));
        match unit {
            // Counts are summed into one value.
            Unit::Count => match entry.1.first_mut() {
                Some(total) => *total += value,
                None => entry.1.push(value),
            },
            Unit::Milliseconds => entry.1.push(value),
        }
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        self.add(name, Unit::Count, n as f64);
    }

    /// The EMF document, or `None` when there is nothing to report.
    pub fn to_emf(&self, service: &str, timestamp_ms: i64) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        let mut doc = Map::new();
        let mut definitions = Vec::new();
        for (name, (unit, values)) in &self.values {
            definitions.push(json!({ "Name": name, "Unit": unit.as_str() }));
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(&many[..many.len().min(MAX_VALUES)]),
            };
            doc.insert((*name).to_string(), value);
        }
        doc.insert("service".into(), json!(service));
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["service"]],
                    "Metrics": definitions,
                }],
            }),
        );
        Some(Value::Object(doc))
    }

    pub fn flush(&self, service: &str, writer: &dyn LineWriter) {
        if let Some(doc) = self.to_emf(service, chrono::Utc::now().timestamp_millis()) {
            writer.write_line(&doc.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_every_metric_with_its_unit_and_value() {
        let mut m = Metrics::default();
        m.count("OrdersAccepted", 2);
        m.count("OrdersAccepted", 1);
        m.add("OrderLatency", Unit::Milliseconds, 12.0);
        m.add("OrderLatency", Unit::Milliseconds, 30.0);
        let doc = m.to_emf("order-consumer", 1_700_000_000_000).unwrap();
        assert_eq!(doc["OrdersAccepted"], 3.0);
        assert_eq!(doc["OrderLatency"], json!([12.0, 30.0]));
        assert_eq!(doc["service"], "order-consumer");
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "OrderPipeline");
        assert_eq!(cw["Dimensions"], json!([["service"]]));
        let names: Vec<&str> = cw["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["OrderLatency", "OrdersAccepted"]);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }

    #[test]
    fn nothing_is_written_without_metrics() {
        assert!(Metrics::default().to_emf("s", 0).is_none());
    }
}
