//! The SNS notification envelope: how a body is recognised as one, and what it says about the
//! message.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::parse::fields::{Fields, Value};

/// What the SNS envelope said about the message, when the body had one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeInfo {
    pub sns_message_id: Option<String>,
    /// The `correlationId` message attribute carried inside the envelope.
    pub correlation_id: Option<String>,
}

pub(super) fn is_envelope(top: &Fields<'_>) -> bool {
    top.contains_key("Message")
        && top
            .get("Type")
            .and_then(Value::text)
            .is_some_and(|t| t == "Notification")
}

pub(super) fn envelope_info(top: &Fields<'_>) -> EnvelopeInfo {
    #[derive(serde::Deserialize)]
    struct Attribute {
        #[serde(rename = "Value")]
        value: Option<String>,
    }
    let sns_message_id = top
        .get("MessageId")
        .and_then(Value::text)
        .map(Cow::into_owned);
    let correlation_id = top
        .get("MessageAttributes")
        .and_then(|value| serde_json::from_str::<BTreeMap<String, Attribute>>(&value.json()).ok())
        .and_then(|mut attrs| attrs.remove("correlationId"))
        .and_then(|a| a.value)
        .filter(|v| !v.is_empty());
    EnvelopeInfo {
        sns_message_id,
        correlation_id,
    }
}
