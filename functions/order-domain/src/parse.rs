//! Parsing and validation of a message body into a canonical [`Order`].
//!
//! The body may be raw (SNS raw message delivery) or an SNS notification envelope whose
//! `Message` holds the order. The order may be in any of the accepted forms (see
//! [`PayloadForm`]). Every error names the field as the publisher wrote it
//! (`items[0].quantity`, `customer_id`, `itemName`), so the log line says what to fix.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::order::{LineItem, Order};

/// Limits from the pipeline contract.
pub const ORDER_ID_MAX: usize = 128;
pub const CUSTOMER_ID_MAX: usize = 128;
pub const ITEMS_MAX: usize = 100;
pub const QUANTITY_MAX: u64 = 10_000;

/// The payload forms the pipeline accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadForm {
    /// `{"orderId","customerId","items":[{"sku","name","quantity","unitPrice"}],"currency","createdAt"}`
    Canonical,
    /// Seeds 001 and 004: `{"orderId","userId","itemName","quantity","status","timestamp"}`.
    Flat,
    /// Seed 002: `{"order_id","customer_id","items":[{"product_id","quantity"}],"timestamp"}`.
    SnakeCase,
}

impl PayloadForm {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadForm::Canonical => "canonical",
            PayloadForm::Flat => "flat",
            PayloadForm::SnakeCase => "snake_case",
        }
    }
}

/// Why a payload is not an acceptable order. `field` is the path as the publisher wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidOrder {
    pub field: String,
    pub problem: String,
}

impl InvalidOrder {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// What the SNS envelope said about the message, when the body had one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeInfo {
    pub sns_message_id: Option<String>,
    /// The `correlationId` message attribute carried inside the envelope.
    pub correlation_id: Option<String>,
}

/// The result of reading one message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBody {
    /// Present when the body was an SNS notification envelope.
    pub envelope: Option<EnvelopeInfo>,
    pub order: Result<(Order, PayloadForm), InvalidOrder>,
}

type Fields<'a> = BTreeMap<String, &'a RawValue>;

/// Reads a message body: unwraps an SNS envelope when there is one, detects the payload form,
/// maps it to the canonical order and validates it. Never panics, whatever the input.
pub fn parse_body(body: &str) -> ParsedBody {
    let top: Fields<'_> = match serde_json::from_str(body) {
        Ok(map) => map,
        Err(e) => {
            return ParsedBody {
                envelope: None,
                order: Err(not_an_object("body", body, &e)),
            }
        }
    };
    if is_envelope(&top) {
        let envelope = envelope_info(&top);
        let order = match top
            .get("Message")
            .map(|raw| serde_json::from_str::<String>(raw.get()))
        {
            Some(Ok(message)) => parse_order(&message),
            _ => Err(InvalidOrder::new(
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
        order: order_from_fields(&top),
    }
}

/// Parses an order payload (no envelope) in any accepted form.
pub fn parse_order(payload: &str) -> Result<(Order, PayloadForm), InvalidOrder> {
    match serde_json::from_str::<Fields<'_>>(payload) {
        Ok(fields) => order_from_fields(&fields),
        Err(e) => Err(not_an_object("Message", payload, &e)),
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

fn is_envelope(top: &Fields<'_>) -> bool {
    top.contains_key("Message")
        && top
            .get("Type")
            .and_then(|t| serde_json::from_str::<String>(t.get()).ok())
            .is_some_and(|t| t == "Notification")
}

fn envelope_info(top: &Fields<'_>) -> EnvelopeInfo {
    #[derive(serde::Deserialize)]
    struct Attribute {
        #[serde(rename = "Value")]
        value: Option<String>,
    }
    let sns_message_id = top
        .get("MessageId")
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    let correlation_id = top
        .get("MessageAttributes")
        .and_then(|raw| serde_json::from_str::<BTreeMap<String, Attribute>>(raw.get()).ok())
        .and_then(|mut attrs| attrs.remove("correlationId"))
        .and_then(|a| a.value)
        .filter(|v| !v.is_empty());
    EnvelopeInfo {
        sns_message_id,
        correlation_id,
    }
}

/// Field names of a form whose items are a list.
struct ListForm {
    order_id: &'static str,
    customer_id: &'static str,
    sku: &'static str,
    unit_price: &'static str,
    created_at: &'static [&'static str],
}

const CANONICAL: ListForm = ListForm {
    order_id: "orderId",
    customer_id: "customerId",
    sku: "sku",
    unit_price: "unitPrice",
    created_at: &["createdAt"],
};

const SNAKE: ListForm = ListForm {
    order_id: "order_id",
    customer_id: "customer_id",
    sku: "product_id",
    unit_price: "unit_price",
    created_at: &["created_at", "timestamp"],
};

fn detect_form(fields: &Fields<'_>) -> PayloadForm {
    if fields.contains_key("order_id") {
        PayloadForm::SnakeCase
    } else if !fields.contains_key("items")
        && (fields.contains_key("itemName") || fields.contains_key("userId"))
    {
        PayloadForm::Flat
    } else {
        PayloadForm::Canonical
    }
}

fn order_from_fields(fields: &Fields<'_>) -> Result<(Order, PayloadForm), InvalidOrder> {
    let form = detect_form(fields);
    let order = match form {
        PayloadForm::Canonical => list_form(fields, &CANONICAL)?,
        PayloadForm::SnakeCase => list_form(fields, &SNAKE)?,
        PayloadForm::Flat => flat_form(fields)?,
    };
    Ok((order, form))
}

fn list_form(fields: &Fields<'_>, names: &ListForm) -> Result<Order, InvalidOrder> {
    let order_id = order_id(fields, names.order_id)?;
    let customer_id = customer_id(fields, names.customer_id)?;
    let raw_items = fields
        .get("items")
        .ok_or_else(|| InvalidOrder::new("items", "is required"))?;
    let raw_items: Vec<&RawValue> = serde_json::from_str(raw_items.get())
        .map_err(|_| InvalidOrder::new("items", "must be a list of line items"))?;
    if raw_items.is_empty() || raw_items.len() > ITEMS_MAX {
        return Err(InvalidOrder::new(
            "items",
            format!(
                "must have 1 to {ITEMS_MAX} entries (found {})",
                raw_items.len()
            ),
        ));
    }
    let mut items = Vec::with_capacity(raw_items.len());
    for (i, raw) in raw_items.iter().enumerate() {
        let path = format!("items[{i}]");
        let line: Fields<'_> = serde_json::from_str(raw.get())
            .map_err(|_| InvalidOrder::new(&path, "must be an object"))?;
        let sku = optional_string(&line, names.sku, &path)?.filter(|s| !s.is_empty());
        let name = optional_string(&line, "name", &path)?.filter(|s| !s.is_empty());
        if sku.is_none() && name.is_none() {
            return Err(InvalidOrder::new(
                &path,
                format!("needs a {} or a name", names.sku),
            ));
        }
        items.push(LineItem {
            sku,
            name,
            quantity: quantity(&line, "quantity", &path)?,
            unit_price: unit_price(&line, names.unit_price, &path)?,
        });
    }
    let created_at = match names.created_at.iter().find(|k| fields.contains_key(**k)) {
        Some(key) => timestamp(fields, key)?,
        None => None,
    };
    Ok(Order {
        order_id,
        customer_id,
        items,
        currency: currency(fields)?,
        created_at,
    })
}

fn flat_form(fields: &Fields<'_>) -> Result<Order, InvalidOrder> {
    let order_id = order_id(fields, "orderId")?;
    let customer_id = customer_id(fields, "userId")?;
    let name = optional_string(fields, "itemName", "")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| InvalidOrder::new("itemName", "is required"))?;
    let line = LineItem {
        sku: None,
        name: Some(name),
        quantity: quantity(fields, "quantity", "")?,
        unit_price: None,
    };
    Ok(Order {
        order_id,
        customer_id,
        items: vec![line],
        currency: currency(fields)?,
        created_at: timestamp(fields, "timestamp")?,
    })
}

fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A string field; `null` counts as absent.
fn optional_string(
    fields: &Fields<'_>,
    key: &str,
    prefix: &str,
) -> Result<Option<String>, InvalidOrder> {
    match fields.get(key) {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| InvalidOrder::new(path(prefix, key), "must be a string")),
    }
}

fn required_string(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    optional_string(fields, key, "")?.ok_or_else(|| InvalidOrder::new(key, "is required"))
}

fn order_id(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    let id = required_string(fields, key)?;
    let len = id.chars().count();
    if len == 0 || len > ORDER_ID_MAX {
        return Err(InvalidOrder::new(
            key,
            format!("must be 1 to {ORDER_ID_MAX} characters long (found {len})"),
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(InvalidOrder::new(
            key,
            format!("may only hold A-Z a-z 0-9 . _ : - (found {bad:?})"),
        ));
    }
    Ok(id)
}

fn customer_id(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    let id = required_string(fields, key)?;
    if id.trim().is_empty() {
        return Err(InvalidOrder::new(key, "must not be empty"));
    }
    let len = id.chars().count();
    if len > CUSTOMER_ID_MAX {
        return Err(InvalidOrder::new(
            key,
            format!("must be at most {CUSTOMER_ID_MAX} characters long (found {len})"),
        ));
    }
    Ok(id)
}

fn quantity(fields: &Fields<'_>, key: &str, prefix: &str) -> Result<u32, InvalidOrder> {
    let field = path(prefix, key);
    let raw = fields
        .get(key)
        .ok_or_else(|| InvalidOrder::new(&field, "is required"))?;
    let problem = || format!("must be a whole number from 1 to {QUANTITY_MAX}");
    match serde_json::from_str::<u64>(raw.get()) {
        Ok(q) if (1..=QUANTITY_MAX).contains(&q) => {
            u32::try_from(q).map_err(|_| InvalidOrder::new(&field, problem()))
        }
        Ok(q) => Err(InvalidOrder::new(
            &field,
            format!("{} (found {q})", problem()),
        )),
        Err(_) => Err(InvalidOrder::new(
            &field,
            format!("{} (found {})", problem(), shorten(raw.get())),
        )),
    }
}

/// A price as a JSON string ("999.99") or number (999.99), read from its text so it stays exact.
fn unit_price(
    fields: &Fields<'_>,
    key: &str,
    prefix: &str,
) -> Result<Option<Decimal>, InvalidOrder> {
    let Some(raw) = fields.get(key) else {
        return Ok(None);
    };
    let field = path(prefix, key);
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let literal = if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map_err(|_| InvalidOrder::new(&field, "must be a decimal string or number"))?
    } else {
        text.to_string()
    };
    let bad = || {
        InvalidOrder::new(
            &field,
            format!("must be a non-negative decimal (found {})", shorten(text)),
        )
    };
    let trimmed = literal.trim();
    let price = if trimmed.contains(['e', 'E']) {
        Decimal::from_scientific(trimmed)
    } else {
        Decimal::from_str(trimmed)
    }
    .map_err(|_| bad())?;
    if price.is_sign_negative() && !price.is_zero() {
        return Err(bad());
    }
    Ok(Some(price.abs()))
}

fn currency(fields: &Fields<'_>) -> Result<Option<String>, InvalidOrder> {
    let Some(code) = optional_string(fields, "currency", "")? else {
        return Ok(None);
    };
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(Some(code.to_ascii_uppercase()))
    } else {
        Err(InvalidOrder::new(
            "currency",
            format!("must be a 3-letter ISO 4217 code (found {code:?})"),
        ))
    }
}

fn timestamp(fields: &Fields<'_>, key: &str) -> Result<Option<DateTime<Utc>>, InvalidOrder> {
    let Some(text) = optional_string(fields, key, "")? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            InvalidOrder::new(
                key,
                format!("must be an RFC 3339 timestamp like 2025-05-03T12:00:00Z (found {text:?})"),
            )
        })
}

/// Keeps error messages short when a field holds something large.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}
