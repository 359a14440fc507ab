//! How a record is identified in logs.

/// The longest correlation id the pipeline takes from a publisher.
pub const CORRELATION_ID_MAX: usize = 128;

/// Whether a publisher's correlation id is usable: 1 to 128 printable ASCII characters (it goes
/// into every log line, the item and the events, so nothing that can break a log viewer).
pub fn is_usable_correlation_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= CORRELATION_ID_MAX && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The correlation id of a record: the publisher's `correlationId` message attribute when it is
/// usable ([`is_usable_correlation_id`]), else the SNS message id, else the SQS message id.
pub fn correlation_id<'a>(
    attribute: Option<&'a str>,
    sns_message_id: Option<&'a str>,
    sqs_message_id: &'a str,
) -> &'a str {
    attribute
        .filter(|s| is_usable_correlation_id(s))
        .or(sns_message_id.filter(|s| !s.is_empty()))
        .unwrap_or(sqs_message_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_prefers_attribute_then_sns_then_sqs_id() {
        assert_eq!(correlation_id(Some("c"), Some("s"), "q"), "c");
        assert_eq!(correlation_id(None, Some("s"), "q"), "s");
        assert_eq!(correlation_id(Some(""), None, "q"), "q");
    }

    /// Protects: a publisher cannot put a huge or control-character correlation id into every
    /// log line and item; such an attribute is replaced by the message id.
    #[test]
    fn an_unusable_correlation_attribute_falls_back_to_the_message_id() {
        let long = "c".repeat(CORRELATION_ID_MAX + 1);
        assert_eq!(correlation_id(Some(&long), Some("s"), "q"), "s");
        assert_eq!(correlation_id(Some("a\nb"), Some("s"), "q"), "s");
        assert_eq!(correlation_id(Some("a b"), None, "q"), "q");
        assert_eq!(correlation_id(Some("\u{202e}x"), None, "q"), "q");
        let max = "c".repeat(CORRELATION_ID_MAX);
        assert_eq!(correlation_id(Some(&max), Some("s"), "q"), max);
    }
}
