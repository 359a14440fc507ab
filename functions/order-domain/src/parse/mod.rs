//! Parsing and validation of a message body into a canonical [`Order`].
//!
//! The body may be raw (SNS raw message delivery) or an SNS notification envelope whose
//! `Message` holds the order. The order may be in any of the accepted forms (see
//! [`PayloadForm`]). Every error names the field as the publisher wrote it
//! (`items[0].quantity`, `customer_id`, `itemName`), so the log line says what to fix.

use std::borrow::Cow;

use crate::order::Order;

mod envelope;
mod error;
mod fields;
mod forms;
mod price;
mod read;
mod rules;
mod scan;

pub use envelope::EnvelopeInfo;
pub use error::InvalidOrder;
pub use forms::{customer_id_field, order_id_field, payload_form, PayloadForm};
pub use price::{exact_price, PRICE_DIGITS_MAX, PRICE_SCALE_MAX};
pub use rules::{
    check_order_id, normalized_text, CUSTOMER_ID_MAX, ITEMS_MAX, NAME_MAX, ORDER_ID_MAX,
    QUANTITY_MAX, SKU_MAX,
};

use envelope::{envelope_info, is_envelope};
use error::At;
use fields::{json_text, Field};
use forms::order_from_fields;
use read::read_fields;

/// The result of reading one message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBody {
    /// Present when the body was an SNS notification envelope.
    pub envelope: Option<EnvelopeInfo>,
    pub order: Result<(Order, PayloadForm), InvalidOrder>,
}

/// Reads a message body: unwraps an SNS envelope when there is one, detects the payload form,
/// maps it to the canonical order and validates it. Never panics, whatever the input.
pub fn parse_body(body: &str) -> ParsedBody {
    let top = match read_fields(body, true) {
        Ok(fields) => fields,
        Err(e) => {
            return ParsedBody {
                envelope: None,
                order: Err(not_an_object("body", body, &e)),
            }
        }
    };
    if is_envelope(&top) {
        let envelope = envelope_info(&top);
        if let Some(e) = top.duplicate_errors(At::Top).into_iter().next() {
            return ParsedBody {
                envelope: Some(envelope),
                order: Err(e),
            };
        }
        let message = match top.field("Message") {
            Some(Field::Object(order)) => {
                return ParsedBody {
                    envelope: Some(envelope),
                    order: order_from_fields(order).map_err(first),
                }
            }
            Some(Field::Text(message)) => Some(Cow::Borrowed(message.as_ref())),
            Some(Field::Raw(raw)) => json_text(raw),
            Some(Field::Str(_) | Field::List(_) | Field::Other) | None => None,
        };
        let order = match message {
            Some(message) => parse_order(&message),
            None => Err(InvalidOrder::new(
                "Message",
                "the SNS envelope's Message must be a string holding the order JSON",
            )),
        };
        return ParsedBody {
            envelope: Some(envelope),
            order,
        };
    }
    ParsedBody {
        envelope: None,
        order: order_from_fields(&top).map_err(first),
    }
}

/// Parses an order payload (no envelope) in any accepted form; the first error when it is not
/// acceptable.
pub fn parse_order(payload: &str) -> Result<(Order, PayloadForm), InvalidOrder> {
    parse_payload(payload, "Message").map_err(first)
}

/// Parses an order payload (no envelope) in any accepted form, with every error when it is not
/// acceptable (the HTTP API reports them all; the DLQ reason is the first).
pub fn parse_order_all(payload: &str) -> Result<(Order, PayloadForm), Vec<InvalidOrder>> {
    parse_payload(payload, "body")
}

/// `field` names the payload when it is not a JSON object at all.
fn parse_payload(payload: &str, field: &str) -> Result<(Order, PayloadForm), Vec<InvalidOrder>> {
    match read_fields(payload, true) {
        Ok(fields) => order_from_fields(&fields),
        Err(e) => Err(vec![not_an_object(field, payload, &e)]),
    }
}

fn first(mut errors: Vec<InvalidOrder>) -> InvalidOrder {
    if errors.is_empty() {
        InvalidOrder::new("body", "is not an acceptable order")
    } else {
        errors.swap_remove(0)
    }
}

fn not_an_object(field: &str, text: &str, e: &serde_json::Error) -> InvalidOrder {
    // A valid JSON value that is not an object (a number, a list) is a type error, not a syntax one.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        InvalidOrder::new(field, "must be a JSON object")
    } else {
        InvalidOrder::new(field, format!("is not valid JSON ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::read::scan_fields;

    /// Protects: an order read inside an envelope's `Message` without decoding it is accepted or
    /// refused exactly as the same order sent raw, with the same words: strings where numbers
    /// belong and the reverse, `null` and the string `"null"`, prices as strings and numbers,
    /// bad ids and timestamps, pretty-printed text (each read inside the string, as checked).
    #[test]
    fn an_order_read_inside_the_message_reads_as_the_same_order_sent_raw() {
        let orders = [
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","name":"Lamp","quantity":2,"unitPrice":"12.50"}],"currency":"usd","createdAt":"2025-05-03T12:00:00+02:00"}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":"two"}]}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":1,"unitPrice":"abc"}]}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":1,"unitPrice":12.5}]}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":1,"unitPrice":"1.123456789"}]}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":5,"quantity":1}]}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":null,"name":"null","quantity":1}]}"#,
            r#"{"orderId":"O 1","customerId":"U1","items":[{"sku":"A","quantity":1}]}"#,
            r#"{"orderId":"O1","customerId":"U1","items":[{"sku":"A","quantity":1}],"createdAt":"yesterday"}"#,
            r#"{"orderId":"O1","customerId":"  U1 ","items":[{"sku":"A","quantity":1}],"currency":null}"#,
            "{\n\t\"order_id\": \"O1\",\r\n \"customer_id\": \"U1\",\n \"items\": [ {\"product_id\": \"A\", \"quantity\": 3} ]\n}",
            r#"{"orderId":"O1","userId":"U1","itemName":"Lamp","quantity":1,"timestamp":"2025-05-03T12:00:00Z"}"#,
            r#"{"orderId":"O1","orderId":"O2","customerId":"U1","items":[{"sku":"A","quantity":1}]}"#,
        ];
        for order in orders {
            let envelope =
                serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": order})
                    .to_string();
            let top = scan_fields(&envelope, true).expect("the scanner reads the envelope");
            assert!(
                matches!(top.field("Message"), Some(Field::Object(_))),
                "read inside the string: {order}"
            );
            assert_eq!(parse_body(&envelope).order, parse_order(order), "{order}");
        }
    }
}
