//! CloudWatch alarms in the emulator, over CloudWatch's Query protocol.
//!
//! The Rust CloudWatch SDK speaks the newer RPC v2 CBOR protocol, which moto does not serve, so
//! the three calls the local runner needs (PutMetricAlarm, SetAlarmState, DescribeAlarms) go as
//! form-encoded Query requests over a plain HTTP connection to the loopback emulator. This is
//! only ever used against the emulator; the deployed stack's alarms are CloudFormation's.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::emulator::EMULATOR_REGION;
use crate::resources::AlarmSpec;
use crate::LocalError;

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one Query action and returns the response body (XML).
pub fn query(
    endpoint: &str,
    action: &str,
    params: &[(String, String)],
) -> Result<String, LocalError> {
    let err = |detail: String| LocalError::Aws {
        what: format!("CloudWatch {action} on the emulator"),
        detail,
    };
    let host = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| err(format!("{endpoint} is not an http:// endpoint")))?
        .trim_end_matches('/');
    let mut body = format!("Action={action}&Version=2010-08-01");
    for (k, v) in params {
        body.push('&');
        body.push_str(&encode(k));
        body.push('=');
        body.push_str(&encode(v));
    }
    // moto picks the service from the credential scope; the signature itself is not checked.
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=emulator/20250101/{EMULATOR_REGION}/monitoring/aws4_request, SignedHeaders=host, Signature=0"
    );
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host).map_err(|e| err(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| err(e.to_string()))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| err(e.to_string()))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| err(e.to_string()))?;
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(err(format!(
            "HTTP {status}: {}",
            response.chars().take(500).collect::<String>()
        )));
    }
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Stores an alarm of the template in the emulator (moto keeps it; the runner evaluates it).
pub fn put_metric_alarm(endpoint: &str, alarm: &AlarmSpec) -> Result<(), LocalError> {
    let mut params = vec![
        p("AlarmName", &alarm.name),
        p("Namespace", &alarm.namespace),
        p("MetricName", &alarm.metric_name),
        p("Statistic", &alarm.statistic),
        p("Period", alarm.period_seconds),
        p("EvaluationPeriods", alarm.evaluation_periods),
        p("Threshold", alarm.threshold),
        p("ComparisonOperator", &alarm.comparison_operator),
        p("TreatMissingData", &alarm.treat_missing_data),
    ];
    for (i, (name, value)) in alarm.dimensions.iter().enumerate() {
        params.push(p(&format!("Dimensions.member.{}.Name", i + 1), name));
        params.push(p(&format!("Dimensions.member.{}.Value", i + 1), value));
    }
    for (i, a) in alarm.alarm_actions.iter().enumerate() {
        params.push(p(&format!("AlarmActions.member.{}", i + 1), a));
    }
    for (i, a) in alarm.ok_actions.iter().enumerate() {
        params.push(p(&format!("OKActions.member.{}", i + 1), a));
    }
    query(endpoint, "PutMetricAlarm", &params).map(|_| ())
}

pub fn set_alarm_state(
    endpoint: &str,
    name: &str,
    state: &str,
    reason: &str,
) -> Result<(), LocalError> {
    query(
        endpoint,
        "SetAlarmState",
        &[
            p("AlarmName", name),
            p("StateValue", state),
            p("StateReason", reason),
        ],
    )
    .map(|_| ())
}

/// The alarm's ARN and stored state.
pub fn describe_alarm(endpoint: &str, name: &str) -> Result<(String, String), LocalError> {
    let xml = query(
        endpoint,
        "DescribeAlarms",
        &[p("AlarmNames.member.1", name)],
    )?;
    let tag = |t: &str| {
        xml.split(&format!("<{t}>"))
            .nth(1)
            .and_then(|rest| rest.split(&format!("</{t}>")).next())
            .unwrap_or_default()
            .to_string()
    };
    Ok((tag("AlarmArn"), tag("StateValue")))
}
