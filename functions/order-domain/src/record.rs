//! How a record is identified in logs.

/// The correlation id of a record: the publisher's `correlationId` message attribute, else the
/// SNS message id, else the SQS message id.
pub fn correlation_id<'a>(
    attribute: Option<&'a str>,
    sns_message_id: Option<&'a str>,
    sqs_message_id: &'a str,
) -> &'a str {
    attribute
        .filter(|s| !s.is_empty())
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
}
