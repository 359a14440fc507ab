//! Parsing and validation of a message body into a canonical [`Order`].
//!
//! The body may be raw (SNS raw message delivery) or an SNS notification envelope whose
//! `Message` holds the order. The order may be in any of the accepted forms (see
//! [`PayloadForm`]). Every error names the field as the publisher wrote it
//! (`items[0].quantity`, `customer_id`, `itemName`), so the log line says what to fix.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::order::{LineItem, Order};

mod scan;
use scan::Scanner;

/// Limits from the pipeline contract.
pub const ORDER_ID_MAX: usize = 128;
pub const CUSTOMER_ID_MAX: usize = 128;
pub const SKU_MAX: usize = 128;
pub const NAME_MAX: usize = 256;
pub const ITEMS_MAX: usize = 100;
pub const QUANTITY_MAX: u64 = 10_000;
/// A price has at most this many decimal places...
pub const PRICE_SCALE_MAX: u32 = 8;
/// ...and is below 10^PRICE_DIGITS_MAX: every accepted price is stored and hashed exactly.
pub const PRICE_DIGITS_MAX: usize = 12;

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

/// A JSON object's fields as written, and the keys written more than once (which JSON parsers
/// disagree on: the pipeline rejects them rather than pick one).
///
/// The keys are borrowed from the text and kept in a list in the order written: an order's
/// objects have a handful of fields, so a scan finds one faster than a map would, with no
/// allocation per key. Values are kept as raw JSON and read when asked for, except (when the
/// object is a body or an order) a `Message` string, the SNS envelope's order, and the `items`
/// list, which are decoded as they are read: they are the large values, and reading them first
/// as raw JSON and then again was most of the parsing.
struct Fields<'a> {
    entries: Vec<(Cow<'a, str>, Field<'a>)>,
    duplicates: Vec<String>,
    /// A bit per [`key_bit`] of the keys read: a key whose bit is not set was not read before,
    /// which spares most keys the scan for an earlier one.
    key_bits: u64,
}

/// A key's bit in [`Fields::key_bits`], from its length and its first and last bytes.
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let (first, last) = match bytes {
        [] => (0, 0),
        [first, .., last] => (*first, *last),
        [only] => (*only, *only),
    };
    1 << ((bytes.len() + usize::from(first) * 7 + usize::from(last) * 3) % 64)
}

/// One field's value.
enum Field<'a> {
    /// The value's JSON text, as written.
    Raw(&'a str),
    /// A string read inside a string (the order in an SNS envelope's `Message`, read without
    /// decoding it): its text, which holds no escape.
    Str(&'a str),
    /// `Message` holding a string: its text.
    Text(Cow<'a, str>),
    /// `Message` holding a string whose text is a JSON object, read without decoding the string
    /// (see [`scan`]): the object's fields.
    Object(Box<Fields<'a>>),
    /// `items` holding a list: its elements.
    List(Vec<Element<'a>>),
    /// `Message` or `items` holding something else.
    Other,
}

/// One element of a decoded list.
enum Element<'a> {
    /// An object the scanner read on its way: its fields (a line is then not read twice).
    Object(Fields<'a>),
    /// Any other element, or one serde_json read: its JSON text.
    Raw(&'a str),
}

/// A field's value as the parser reads it.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// Its JSON text.
    Json(&'a str),
    /// A string's text, read inside a string ([`Field::Str`]).
    Str(&'a str),
}

impl<'a> Value<'a> {
    fn is_null(self) -> bool {
        matches!(self, Value::Json("null"))
    }

    /// The text of a string value; `None` for any other value.
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Value::Json(raw) => json_text(raw),
            Value::Str(text) => Some(Cow::Borrowed(text)),
        }
    }

    /// The value as JSON text (for a number, and an error's words). A [`Value::Str`]'s text
    /// holds no character JSON escapes: quoted, it is the string as the decoded text has it.
    fn json(self) -> Cow<'a, str> {
        match self {
            Value::Json(raw) => Cow::Borrowed(raw),
            Value::Str(text) => Cow::Owned(format!("\"{text}\"")),
        }
    }
}

/// Above this many fields, keys written more than once are found with a set rather than a scan.
const FIELDS_SCANNED: usize = 16;

/// The keys of an object read so far, once it has more than [`FIELDS_SCANNED`] fields.
type Seen<'a> = Option<std::collections::HashSet<Cow<'a, str>>>;

impl<'a> Fields<'a> {
    fn new() -> Self {
        Fields {
            entries: Vec::with_capacity(8),
            duplicates: Vec::new(),
            key_bits: 0,
        }
    }

    /// Adds a field as read, noting its key when written before. (Inlined: moving an entry into
    /// a call cost more than the rest of it.)
    #[inline(always)]
    fn push(&mut self, key: Cow<'a, str>, value: Field<'a>, seen: &mut Seen<'a>) {
        let bit = key_bit(&key);
        let repeated = if self.entries.len() >= FIELDS_SCANNED {
            let seen =
                seen.get_or_insert_with(|| self.entries.iter().map(|(k, _)| k.clone()).collect());
            !seen.insert(key.clone())
        } else {
            self.key_bits & bit != 0 && self.entries.iter().any(|(k, _)| *k == key)
        };
        self.key_bits |= bit;
        if repeated && !self.duplicates.iter().any(|d| *d == key) {
            self.duplicates.push(key.to_string());
        }
        self.entries.push((key, value));
    }

    /// The value of `key`; when written more than once, the last (as a map would keep it).
    fn field(&self, key: &str) -> Option<&Field<'a>> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of a field that is not decoded as read.
    fn get(&self, key: &str) -> Option<Value<'a>> {
        match self.field(key)? {
            Field::Raw(raw) => Some(Value::Json(raw)),
            Field::Str(text) => Some(Value::Str(text)),
            Field::Text(_) | Field::Object(_) | Field::List(_) | Field::Other => None,
        }
    }

    fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// One error per key written more than once, named as the publisher wrote it.
    fn duplicate_errors(&self, at: At) -> Vec<InvalidOrder> {
        self.duplicates
            .iter()
            .map(|k| {
                InvalidOrder::new(
                    at.path(&shorten(k)),
                    "appears more than once in the object: send each field once",
                )
            })
            .collect()
    }
}

/// A key as written: borrowed from the text unless it holds an escape.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
        }
        deserializer.deserialize_str(Visit).map(Key)
    }
}

/// Reads a value decoded as it is read: a string (`list` false) or a list of raw values (`list`
/// true); any other value is read and left as [`Field::Other`].
struct Decode {
    list: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Decode {
    type Value = Field<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Field<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Decode {
    type Value = Field<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(if self.list {
            Field::Other
        } else {
            Field::Text(Cow::Borrowed(v))
        })
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(if self.list {
            Field::Other
        } else {
            Field::Text(Cow::Owned(v.to_owned()))
        })
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
        if self.list {
            let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(1));
            while let Some(element) = seq.next_element::<&'de RawValue>()? {
                elements.push(Element::Raw(element.get()));
            }
            Ok(Field::List(elements))
        } else {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(Field::Other)
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Field::Other)
    }
}

/// Reads a JSON object's fields. `decode`: decode `Message` and `items` as they are read (the
/// object is a body or an order, not a line). The scanner reads the common case; serde_json the
/// rest, and says what is wrong with a text that is not an object.
fn read_fields(text: &str, decode: bool) -> Result<Fields<'_>, serde_json::Error> {
    match scan_fields(text, decode) {
        Some(fields) => Ok(fields),
        None => serde_fields(text, decode),
    }
}

/// The scanner's reading of an object (see [`scan`]); `None` where it leaves the text to
/// serde_json. A decoded `Message` or `items` of another type than expected is read as
/// [`Field::Other`], as serde_json's reading gives it; a `Message` holding an object's JSON is
/// read as that object where the scanner can without decoding the string ([`Field::Object`]).
fn scan_fields(text: &str, decode: bool) -> Option<Fields<'_>> {
    let mut scan = Scanner::new(text);
    scan.whitespace();
    let fields = scan_object(&mut scan, decode)?;
    scan.at_end().then_some(fields)
}

/// At an object (after whitespace): its fields.
fn scan_object<'a, const QUOTED: bool>(
    scan: &mut Scanner<'a, QUOTED>,
    decode: bool,
) -> Option<Fields<'a>> {
    scan.eat(b'{')?;
    let mut fields = Fields::new();
    let mut seen = None;
    scan.whitespace();
    if scan.eat(b'}').is_none() {
        loop {
            scan.whitespace();
            let key = scan.string()?;
            scan.whitespace();
            scan.eat(b':')?;
            scan.whitespace();
            let value = match (key.as_ref(), scan.peek()?) {
                ("Message", b'"') if decode => {
                    match scan.quoted(|order| scan_object(order, true)) {
                        Some(order) => Field::Object(Box::new(order)),
                        None => Field::Text(scan.string()?),
                    }
                }
                ("items", b'[') if decode => Field::List(scan_elements(scan)?),
                ("Message" | "items", _) if decode => {
                    scan.value()?;
                    Field::Other
                }
                (_, b'"') if QUOTED => Field::Str(scan.quoted_string()?),
                _ => Field::Raw(scan.value()?),
            };
            fields.push(key, value, &mut seen);
            scan.whitespace();
            if scan.eat(b',').is_none() {
                scan.eat(b'}')?;
                break;
            }
        }
    }
    Some(fields)
}

/// At a list (after whitespace): its elements, the objects among them read.
fn scan_elements<'a, const QUOTED: bool>(
    scan: &mut Scanner<'a, QUOTED>,
) -> Option<Vec<Element<'a>>> {
    scan.eat(b'[')?;
    let mut elements = Vec::with_capacity(4);
    scan.whitespace();
    if scan.eat(b']').is_some() {
        return Some(elements);
    }
    loop {
        scan.whitespace();
        let element = if scan.peek()? == b'{' {
            Element::Object(scan_object(scan, false)?)
        } else {
            Element::Raw(scan.value()?)
        };
        elements.push(element);
        scan.whitespace();
        if scan.eat(b',').is_none() {
            scan.eat(b']')?;
            return Some(elements);
        }
    }
}

/// serde_json's reading of an object. Where decoding fails (a `Message` whose text is JSON but
/// not a string Rust can hold: a lone surrogate escape), the object is read with every value
/// raw, so that the error names the field rather than the body.
fn serde_fields(text: &str, decode: bool) -> Result<Fields<'_>, serde_json::Error> {
    let read = |decode| {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let fields =
            serde::de::DeserializeSeed::deserialize(FieldsSeed { decode }, &mut deserializer)?;
        deserializer.end()?;
        Ok(fields)
    };
    read(decode).or_else(|e| if decode { read(false) } else { Err(e) })
}

struct FieldsSeed {
    decode: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldsSeed {
    type Value = Fields<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Fields<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldsSeed {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut access: A,
    ) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields::new();
        let mut seen = None;
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            let value = match key.as_ref() {
                "Message" if self.decode => access.next_value_seed(Decode { list: false })?,
                "items" if self.decode => access.next_value_seed(Decode { list: true })?,
                _ => Field::Raw(access.next_value::<&'de RawValue>()?.get()),
            };
            fields.push(key, value, &mut seen);
        }
        Ok(fields)
    }
}

/// The text of a JSON string value; `None` when the value is not a string. A string with no
/// escape is its text between the quotes (the raw value was checked as JSON when read).
fn json_text(text: &str) -> Option<Cow<'_, str>> {
    match text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('\\'))
    {
        Some(inner) => Some(Cow::Borrowed(inner)),
        None => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
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

fn is_envelope(top: &Fields<'_>) -> bool {
    top.contains_key("Message")
        && top
            .get("Type")
            .and_then(Value::text)
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

/// The name of the order id field in `form`.
pub fn order_id_field(form: PayloadForm) -> &'static str {
    match form {
        PayloadForm::Canonical | PayloadForm::Flat => CANONICAL.order_id,
        PayloadForm::SnakeCase => SNAKE.order_id,
    }
}

/// The name of the customer id field in `form`.
pub fn customer_id_field(form: PayloadForm) -> &'static str {
    match form {
        PayloadForm::Canonical => CANONICAL.customer_id,
        PayloadForm::Flat => "userId",
        PayloadForm::SnakeCase => SNAKE.customer_id,
    }
}

/// The form a payload is in, as the parser would read it; `None` when it is not a JSON object.
pub fn payload_form(payload: &str) -> Option<PayloadForm> {
    read_fields(payload, true).ok().map(|f| detect_form(&f))
}

fn order_from_fields(fields: &Fields<'_>) -> Result<(Order, PayloadForm), Vec<InvalidOrder>> {
    let form = detect_form(fields);
    let mut errors = Errors(fields.duplicate_errors(At::Top));
    let order = match form {
        PayloadForm::Canonical => list_form(fields, &CANONICAL, &mut errors),
        PayloadForm::SnakeCase => list_form(fields, &SNAKE, &mut errors),
        PayloadForm::Flat => flat_form(fields, &mut errors),
    };
    match order {
        Some(order) if errors.0.is_empty() => Ok((order, form)),
        _ => Err(errors.0),
    }
}

/// Every error of one payload, so that all can be reported at once.
#[derive(Default)]
struct Errors(Vec<InvalidOrder>);

impl Errors {
    fn take<T>(&mut self, result: Result<T, InvalidOrder>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }
}

fn list_form(fields: &Fields<'_>, names: &ListForm, errors: &mut Errors) -> Option<Order> {
    let order_id = errors.take(order_id(fields, names.order_id));
    let customer_id = errors.take(customer_id(fields, names.customer_id));
    let items = line_items(fields, names, errors);
    let created_at = match names.created_at.iter().find(|k| fields.contains_key(k)) {
        Some(key) => errors.take(timestamp(fields, key)),
        None => Some(None),
    };
    let currency = errors.take(currency(fields));
    Some(Order {
        order_id: order_id?,
        customer_id: customer_id?,
        items: items?,
        currency: currency?,
        created_at: created_at?,
    })
}

fn line_items(fields: &Fields<'_>, names: &ListForm, errors: &mut Errors) -> Option<Vec<LineItem>> {
    let read_now;
    let raw_items: &[Element<'_>] = match fields.field("items") {
        None => {
            errors.0.push(InvalidOrder::new("items", "is required"));
            return None;
        }
        Some(Field::List(list)) => list,
        Some(field) => {
            let list = match field {
                Field::Raw(raw) => serde_json::from_str::<Vec<&RawValue>>(raw)
                    .ok()
                    .map(|list| {
                        list.into_iter()
                            .map(|raw| Element::Raw(raw.get()))
                            .collect::<Vec<_>>()
                    }),
                _ => None,
            };
            let Some(list) = list else {
                errors
                    .0
                    .push(InvalidOrder::new("items", "must be a list of line items"));
                return None;
            };
            read_now = list;
            &read_now
        }
    };
    if raw_items.is_empty() || raw_items.len() > ITEMS_MAX {
        errors.0.push(InvalidOrder::new(
            "items",
            format!(
                "must have 1 to {ITEMS_MAX} entries (found {})",
                raw_items.len()
            ),
        ));
        return None;
    }
    let mut items = Some(Vec::with_capacity(raw_items.len()));
    for (i, raw) in raw_items.iter().enumerate() {
        let line = line_item(raw, names, At::Line(i), errors);
        items = items.zip(line).map(|(mut all, line)| {
            all.push(line);
            all
        });
    }
    items
}

fn line_item(
    element: &Element<'_>,
    names: &ListForm,
    at: At,
    errors: &mut Errors,
) -> Option<LineItem> {
    let read_now;
    let line = match element {
        Element::Object(fields) => fields,
        Element::Raw(text) => {
            let Ok(fields) = read_fields(text, false) else {
                errors
                    .0
                    .push(InvalidOrder::new(at.to_string(), "must be an object"));
                return None;
            };
            read_now = fields;
            &read_now
        }
    };
    let duplicates = line.duplicate_errors(at);
    let clean = duplicates.is_empty();
    errors.0.extend(duplicates);
    let sku = errors.take(text(line, names.sku, at, SKU_MAX));
    let name = errors.take(text(line, "name", at, NAME_MAX));
    let quantity = errors.take(quantity(line, "quantity", at));
    let unit_price = errors.take(unit_price(line, names.unit_price, at));
    let (sku, name) = (
        sku?.filter(|s| !s.is_empty()),
        name?.filter(|s| !s.is_empty()),
    );
    if sku.is_none() && name.is_none() {
        errors.0.push(InvalidOrder::new(
            at.to_string(),
            format!("needs a {} or a name", names.sku),
        ));
        return None;
    }
    let line = LineItem {
        sku,
        name,
        quantity: quantity?,
        unit_price: unit_price?,
    };
    clean.then_some(line)
}

fn flat_form(fields: &Fields<'_>, errors: &mut Errors) -> Option<Order> {
    let order_id = errors.take(order_id(fields, "orderId"));
    let customer_id = errors.take(customer_id(fields, "userId"));
    let name = errors.take(
        text(fields, "itemName", At::Top, NAME_MAX).and_then(|name| {
            name.filter(|s| !s.is_empty())
                .ok_or_else(|| InvalidOrder::new("itemName", "is required"))
        }),
    );
    let quantity = errors.take(quantity(fields, "quantity", At::Top));
    let currency = errors.take(currency(fields));
    let created_at = errors.take(timestamp(fields, "timestamp"));
    Some(Order {
        order_id: order_id?,
        customer_id: customer_id?,
        items: vec![LineItem {
            sku: None,
            name: Some(name?),
            quantity: quantity?,
            unit_price: None,
        }],
        currency: currency?,
        created_at: created_at?,
    })
}

/// Where a field is: at the top of the order or in a line. Its name is only written out for an
/// error.
#[derive(Debug, Clone, Copy)]
enum At {
    Top,
    Line(usize),
}

impl At {
    fn path(self, key: &str) -> String {
        match self {
            At::Top => key.to_string(),
            At::Line(i) => format!("items[{i}].{key}"),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Top => Ok(()),
            At::Line(i) => write!(f, "items[{i}]"),
        }
    }
}

/// A string field; `null` counts as absent.
fn optional_string<'a>(
    fields: &Fields<'a>,
    key: &str,
    at: At,
) -> Result<Option<Cow<'a, str>>, InvalidOrder> {
    match fields.get(key) {
        None => Ok(None),
        Some(value) if value.is_null() => Ok(None),
        Some(value) => value
            .text()
            .map(Some)
            .ok_or_else(|| InvalidOrder::new(at.path(key), "must be a string")),
    }
}

fn required_string(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    optional_string(fields, key, At::Top)?
        .map(Cow::into_owned)
        .ok_or_else(|| InvalidOrder::new(key, "is required"))
}

fn order_id(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    let id = required_string(fields, key)?;
    check_order_id(&id, key)?;
    Ok(id)
}

/// The orderId rule: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`. `field` names it in the
/// error (the API checks path parameters with it too).
pub fn check_order_id(id: &str, field: &str) -> Result<(), InvalidOrder> {
    let len = id.chars().count();
    if len == 0 || len > ORDER_ID_MAX {
        return Err(InvalidOrder::new(
            field,
            format!("must be 1 to {ORDER_ID_MAX} characters long (found {len})"),
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(InvalidOrder::new(
            field,
            format!("may only hold A-Z a-z 0-9 . _ : - (found {bad:?})"),
        ));
    }
    Ok(())
}

/// The customer id, trimmed and in Unicode NFC (so equivalent spellings are one customer, and
/// the stored id is the one checked).
fn customer_id(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    let id = text(fields, key, At::Top, CUSTOMER_ID_MAX)?
        .ok_or_else(|| InvalidOrder::new(key, "is required"))?;
    if id.is_empty() {
        return Err(InvalidOrder::new(key, "must not be empty"));
    }
    Ok(id)
}

/// A text field (customer id, sku, name): `null` counts as absent; the value is trimmed and put
/// in Unicode NFC, so two spellings of the same text are one value (and one content hash); it
/// may hold at most `max` characters and no control or bidirectional-formatting characters
/// (which can disguise what a log line or an order says).
fn text(
    fields: &Fields<'_>,
    key: &str,
    at: At,
    max: usize,
) -> Result<Option<String>, InvalidOrder> {
    use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
    let Some(raw) = optional_string(fields, key, at)? else {
        return Ok(None);
    };
    let trimmed = raw.trim();
    // Printable ASCII (most text) is NFC, holds no control or bidirectional character, and has
    // a character per byte: one pass decides all three.
    if trimmed.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let len = trimmed.len();
        if len > max {
            return Err(InvalidOrder::new(
                at.path(key),
                format!("must be at most {max} characters long (found {len})"),
            ));
        }
        return Ok(Some(if len == raw.len() {
            raw.into_owned()
        } else {
            trimmed.to_string()
        }));
    }
    // Most other text is already NFC (all ASCII text is): the quick check's `Yes` is definitive, and
    // skips the decomposition and recomposition the iterator would do character by character.
    let value: String = if is_nfc_quick(trimmed.chars()) == IsNormalized::Yes {
        if trimmed.len() == raw.len() {
            raw.into_owned()
        } else {
            trimmed.to_string()
        }
    } else {
        trimmed.nfc().collect()
    };
    if let Some(bad) = value
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Err(InvalidOrder::new(
            at.path(key),
            format!(
                "must not hold control or bidirectional-formatting characters (found U+{:04X})",
                u32::from(bad)
            ),
        ));
    }
    let len = value.chars().count();
    if len > max {
        return Err(InvalidOrder::new(
            at.path(key),
            format!("must be at most {max} characters long (found {len})"),
        ));
    }
    Ok(Some(value))
}

/// Unicode's bidirectional formatting characters (embeddings, overrides, isolates, marks).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn quantity(fields: &Fields<'_>, key: &str, at: At) -> Result<u32, InvalidOrder> {
    let raw = fields
        .get(key)
        .ok_or_else(|| InvalidOrder::new(at.path(key), "is required"))?
        .json();
    let problem = || format!("must be a whole number from 1 to {QUANTITY_MAX}");
    match serde_json::from_str::<u64>(&raw) {
        Ok(q) if (1..=QUANTITY_MAX).contains(&q) => {
            u32::try_from(q).map_err(|_| InvalidOrder::new(at.path(key), problem()))
        }
        Ok(q) => Err(InvalidOrder::new(
            at.path(key),
            format!("{} (found {q})", problem()),
        )),
        Err(_) => Err(InvalidOrder::new(
            at.path(key),
            format!("{} (found {})", problem(), shorten(&raw)),
        )),
    }
}

/// A price as a JSON string ("999.99") or number (999.99), read from its text so it stays exact.
fn unit_price(fields: &Fields<'_>, key: &str, at: At) -> Result<Option<Decimal>, InvalidOrder> {
    let Some(value) = fields.get(key) else {
        return Ok(None);
    };
    if value.is_null() {
        return Ok(None);
    }
    let literal = match value {
        Value::Json(number) if !number.starts_with('"') => Cow::Borrowed(number),
        string => string
            .text()
            .ok_or_else(|| InvalidOrder::new(at.path(key), "must be a decimal string or number"))?,
    };
    exact_price(literal.trim()).map(Some).map_err(|problem| {
        InvalidOrder::new(
            at.path(key),
            format!("{problem} (found {})", shorten(&value.json())),
        )
    })
}

/// An exact, non-negative decimal in JSON number syntax (`12`, `12.50`, `1.25e2`; no `+`, `_`,
/// spaces or hex), with at most [`PRICE_SCALE_MAX`] decimal places and below
/// 10^[`PRICE_DIGITS_MAX`] once trailing zeros are dropped: nothing accepted is rounded.
pub fn exact_price(literal: &str) -> Result<Decimal, String> {
    let PriceLiteral {
        negative,
        whole,
        fraction,
        exponent,
    } = price_literal(literal)?;
    // digits x 10^-scale, exactly: the digits are whole and fraction's without their leading
    // zeros, and without the trailing zeros a positive scale can drop.
    let digits = || whole.bytes().chain(fraction.bytes());
    let leading = digits().take_while(|b| *b == b'0').count();
    let mut len = whole.len() + fraction.len() - leading;
    if len == 0 {
        return Ok(Decimal::ZERO);
    }
    let mut scale = fraction.len() as i64 - exponent;
    if scale > 0 {
        let trailing = digits().rev().take_while(|b| *b == b'0').count();
        let dropped = (trailing as i64).min(scale);
        len -= dropped as usize;
        scale -= dropped;
    }
    if negative {
        return Err("must not be negative".into());
    }
    if scale > i64::from(PRICE_SCALE_MAX) {
        return Err(format!(
            "has more than {PRICE_SCALE_MAX} decimal places, which would be rounded"
        ));
    }
    let whole_digits = len as i64 - scale;
    if whole_digits > PRICE_DIGITS_MAX as i64 {
        return Err(format!("must be below 10^{PRICE_DIGITS_MAX}"));
    }
    // At most PRICE_DIGITS_MAX + PRICE_SCALE_MAX digits: an i128 holds them.
    let mut mantissa = digits()
        .skip(leading)
        .take(len)
        .fold(0i128, |m, b| m * 10 + i128::from(b - b'0'));
    if scale < 0 {
        mantissa *= 10i128.pow((-scale) as u32);
        scale = 0;
    }
    Ok(Decimal::from_i128_with_scale(mantissa, scale as u32))
}

/// A price literal taken apart by JSON's number syntax: sign, whole and fraction digits, exponent.
struct PriceLiteral<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
    exponent: i64,
}

/// Takes a price literal apart, or says it is not a decimal in JSON's number syntax.
fn price_literal(literal: &str) -> Result<PriceLiteral<'_>, String> {
    let syntax = || "must be a non-negative decimal like 12.50".to_string();
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(whole) || (number.contains('.') && !digits_only(fraction)) {
        return Err(syntax());
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if !digits_only(unsigned) || unsigned.len() > 4 {
                return Err(syntax());
            }
            e.parse().map_err(|_| syntax())?
        }
    };
    Ok(PriceLiteral {
        negative,
        whole,
        fraction,
        exponent,
    })
}

fn currency(fields: &Fields<'_>) -> Result<Option<String>, InvalidOrder> {
    let Some(code) = optional_string(fields, "currency", At::Top)? else {
        return Ok(None);
    };
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(Some(code.to_ascii_uppercase()))
    } else {
        Err(InvalidOrder::new(
            "currency",
            format!(
                "must be a 3-letter ISO 4217 code (found {:?})",
                shorten(&code)
            ),
        ))
    }
}

fn timestamp(fields: &Fields<'_>, key: &str) -> Result<Option<DateTime<Utc>>, InvalidOrder> {
    let Some(text) = optional_string(fields, key, At::Top)? else {
        return Ok(None);
    };
    if let Some(t) = utc_seconds(&text) {
        return Ok(Some(t));
    }
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            InvalidOrder::new(
                key,
                format!(
                    "must be an RFC 3339 timestamp like 2025-05-03T12:00:00Z (found {:?})",
                    shorten(&text)
                ),
            )
        })
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form most publishers write, read without chrono's general
/// parser: the instant chrono reads from it (a test holds the two equal), or `None` for anything
/// else (offsets, fractions, other separators, a leap second, a date that does not exist), which
/// chrono then reads or refuses.
fn utc_seconds(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    let time = chrono::NaiveTime::from_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)?;
    Some(date.and_time(time).and_utc())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    /// A reading of an object's fields as the parser uses it: a `Message` or `items` that
    /// serde_json kept raw (it does when decoding failed, and then reads them again) is what
    /// decoding it gives; a `Message` whose text is an object is that object's reading (the
    /// scanner's read without decoding the string, or serde_json's of the decoded text); a
    /// string read inside a string is the JSON it was; a list element is its fields when it is
    /// an object (as read on the way, or as serde_json reads its text), else its text. Both
    /// readers' results then compare as the parser sees them.
    fn as_used(fields: &Fields<'_>, decode: bool) -> (Vec<(String, String)>, Vec<String>) {
        let element = |e: &Element<'_>| match e {
            Element::Object(fields) => format!("object {:?}", as_used(fields, false)),
            Element::Raw(text) => match serde_fields(text, false) {
                Ok(fields) => format!("object {:?}", as_used(&fields, false)),
                Err(_) => format!("raw {text:?}"),
            },
        };
        let message = |text: &str| match serde_fields(text, true) {
            Ok(order) => format!("order {:?}", as_used(&order, true)),
            Err(_) => format!("text {text:?}"),
        };
        let entries = fields
            .entries
            .iter()
            .map(|(key, value)| {
                let value = match (value, key.as_ref()) {
                    (Field::Raw(raw), "Message") if decode => match json_text(raw) {
                        Some(text) if raw.starts_with('"') => message(&text),
                        _ => "other".to_string(),
                    },
                    (Field::Raw(raw), "items") if decode => {
                        match serde_json::from_str::<Vec<&RawValue>>(raw) {
                            Ok(list) => format!(
                                "list {:?}",
                                list.iter()
                                    .map(|r| element(&Element::Raw(r.get())))
                                    .collect::<Vec<_>>()
                            ),
                            Err(_) => "other".to_string(),
                        }
                    }
                    (Field::Raw(raw), _) => format!("raw {raw:?}"),
                    (Field::Str(text), _) => format!("raw {:?}", format!("\"{text}\"")),
                    (Field::Text(text), "Message") if decode => message(text),
                    (Field::Text(text), _) => format!("text {text:?}"),
                    (Field::Object(order), _) => format!("order {:?}", as_used(order, true)),
                    (Field::List(list), _) => {
                        format!("list {:?}", list.iter().map(element).collect::<Vec<_>>())
                    }
                    (Field::Other, _) => "other".to_string(),
                };
                (key.to_string(), value)
            })
            .collect();
        (entries, fields.duplicates.clone())
    }

    /// Compares the scanner with serde_json on one text: what the scanner reads, serde_json
    /// reads the same; what serde_json refuses, the scanner leaves to it.
    fn readers_agree(text: &str) -> Result<(), TestCaseError> {
        for decode in [true, false] {
            let Some(scanned) = scan_fields(text, decode) else {
                continue;
            };
            match serde_fields(text, decode) {
                Ok(read) => prop_assert_eq!(
                    as_used(&scanned, decode),
                    as_used(&read, decode),
                    "decode {}: {:?}",
                    decode,
                    text
                ),
                Err(e) => prop_assert!(
                    false,
                    "the scanner read what serde_json refuses ({e}), decode {decode}: {text:?}"
                ),
            }
        }
        Ok(())
    }

    /// JSON objects, mostly well-formed: strings with every kind of escape (surrogates too) and,
    /// rarely, raw control characters or bad escapes; numbers valid and, rarely, not; literals and
    /// near-literals; lists and objects nested, with a trailing comma now and then; the keys the
    /// parser decodes; odd whitespace.
    fn json_object_strategy() -> impl Strategy<Value = String> {
        let string = prop::collection::vec(
            prop_oneof![
                24 => "[a-zA-Z0-9 .:{}\\[\\],]{1,6}",
                3 => Just("\\\"".to_string()),
                3 => Just("\\n".to_string()),
                2 => Just("\\\\".to_string()),
                2 => Just("\\/\\b\\f\\r\\t".to_string()),
                2 => Just("\\u00e9".to_string()),
                1 => Just("\\ud83d\\ude00".to_string()),
                1 => Just("\\ud800".to_string()),
                2 => Just("\u{e9}\u{1F600}\u{7f}".to_string()),
                // Rarely, what JSON refuses in a string.
                1 => proptest::sample::select(vec!["\\u12G4", "\\x", "\u{1}", "\t", "\u{1f}"])
                    .prop_map(str::to_string),
            ],
            0..5,
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat()));
        let number = prop_oneof![
            40 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            4 => proptest::sample::select(vec!["1e400", "-0", "123456789012345678901234567890"])
                .prop_map(str::to_string),
            1 => proptest::sample::select(vec!["01", "1.", ".5", "1e", "1e+", "-", "+1", "1.5.2", "0x10"])
                .prop_map(str::to_string),
        ];
        let scalar = prop_oneof![
            30 => string.clone(),
            20 => number,
            10 => proptest::sample::select(vec!["true", "false", "null"]).prop_map(str::to_string),
            1 => proptest::sample::select(vec!["tru", "nul", "nulll", "True"]).prop_map(str::to_string),
        ];
        let key = prop_oneof![
            2 => string,
            1 => proptest::sample::select(vec!["\"Message\"", "\"items\"", "\"Type\"", "\"a\""])
                .prop_map(str::to_string),
        ];
        let space = prop_oneof![
            30 => proptest::sample::select(vec!["", "", "", " ", "\n  ", "\t", "\r\n"]),
            // Not JSON whitespace.
            1 => proptest::sample::select(vec!["\u{a0}", "\u{b}"]),
        ];
        let element = move |value: BoxedStrategy<String>| {
            (space.clone(), value, space.clone()).prop_map(|(a, v, b)| format!("{a}{v}{b}"))
        };
        let object = move |value: BoxedStrategy<String>| {
            (
                prop::collection::vec((key.clone(), element(value)), 0..6),
                prop::bool::weighted(0.02),
            )
                .prop_map(|(fields, trailing)| {
                    let fields: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!(
                        "{{{}{}}}",
                        fields.join(","),
                        if trailing { "," } else { "" }
                    )
                })
        };
        let list = move |value: BoxedStrategy<String>| {
            (
                prop::collection::vec(value, 0..5),
                prop::bool::weighted(0.02),
            )
                .prop_map(|(e, trailing)| {
                    format!("[{}{}]", e.join(","), if trailing { "," } else { "" })
                })
        };
        let object_of = object.clone();
        let value = scalar.boxed().prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![list(inner.clone()), object_of(inner)].boxed()
        });
        object(value.boxed())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Protects: the fast reader never accepts what serde_json refuses, and reads what it
        /// accepts as serde_json does (keys, values, keys written twice; the decoded `Message`
        /// and `items`), on generated JSON and on the same texts cut short or with a byte
        /// changed or inserted.
        #[test]
        fn the_scanner_reads_objects_as_serde_json_does(
            text in json_object_strategy(),
            cut in any::<prop::sample::Index>(),
            byte in proptest::sample::select(b"{}[],:\"\\ 0-.eEtn\x01".to_vec()),
        ) {
            readers_agree_changed(&text, cut, byte)?;
        }

        /// Protects: an order read inside an SNS envelope's `Message` without decoding the
        /// string reads as serde_json reads the decoded text (keys, strings, numbers, lines,
        /// keys written twice), and what the scanner cannot read so is decoded and read as
        /// before; on generated orders written compactly and pretty-printed, and on the
        /// envelopes cut short or with a byte changed or inserted.
        #[test]
        fn the_scanner_reads_an_order_in_a_message_as_serde_json_reads_the_decoded_text(
            order in order_like_strategy(),
            cut in any::<prop::sample::Index>(),
            byte in proptest::sample::select(b"{}[],:\"\\ 0ntu\x01".to_vec()),
        ) {
            let envelope = format!(
                "{{\"Type\":\"Notification\",\"Message\":{},\"MessageId\":\"m\"}}",
                serde_json::to_string(&order).expect("a string writes as JSON")
            );
            readers_agree_changed(&envelope, cut, byte)?;
        }
    }

    /// [`readers_agree`] on `text`, and on it cut short at `cut`, with `byte` inserted there, and
    /// with the byte there replaced by it.
    fn readers_agree_changed(
        text: &str,
        cut: prop::sample::Index,
        byte: u8,
    ) -> Result<(), TestCaseError> {
        readers_agree(text)?;
        let at = cut.index(text.len() + 1);
        if text.is_char_boundary(at) {
            readers_agree(&text[..at])?;
            let mut changed = text.to_string();
            changed.insert(at, char::from(byte));
            readers_agree(&changed)?;
            if at < text.len() && text.is_char_boundary(at + 1) {
                changed.remove(at + 1);
                readers_agree(&changed)?;
            }
        }
        Ok(())
    }

    /// Order-shaped JSON texts (not always valid orders, nor always JSON): the fields of the
    /// accepted forms and others, strings mostly without escapes (some with: the scanner then
    /// decodes the `Message`), numbers, literals, an object or a list as a value now and then,
    /// `items` a list of line objects and other values, a nested `Message`; compact or spread
    /// over lines with spaces and tabs, as publishers pretty-print.
    fn order_like_strategy() -> impl Strategy<Value = String> {
        let string = prop_oneof![
            12 => "[a-zA-Z0-9 .:{}\\[\\],-]{0,8}".prop_map(|s| format!("\"{s}\"")),
            1 => proptest::sample::select(vec![
                r#""a\"b""#, r#""a\\""#, r#""\u00e9""#, r#""x\ny""#, "\"\u{e9}\u{1F600}\"",
            ])
            .prop_map(str::to_string),
        ];
        let scalar = prop_oneof![
            8 => string.clone(),
            4 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,2})?",
            2 => proptest::sample::select(vec!["true", "false", "null"]).prop_map(str::to_string),
            1 => proptest::sample::select(vec![r#"{"a":1}"#, "[1]", "{}", "[]"])
                .prop_map(str::to_string),
        ];
        let key = prop_oneof![
            4 => proptest::sample::select(vec![
                "orderId", "customerId", "sku", "name", "quantity", "unitPrice", "currency",
                "createdAt", "order_id", "Message",
            ])
            .prop_map(|k| format!("\"{k}\"")),
            1 => string,
        ];
        let space = prop_oneof![
            20 => proptest::sample::select(vec!["", "", "", " ", "\n  ", "\t", "\r\n"]),
            // Not JSON whitespace (written `\b`, `\f`, `\u000b` and as is in the Message).
            1 => proptest::sample::select(vec!["\u{8}", "\u{c}", "\u{b}", "\u{a0}"]),
        ];
        let object = |fields: Vec<(String, String)>, space: &str| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{space}{k}:{space}{v}"))
                .collect();
            format!("{{{}{space}}}", fields.join(","))
        };
        let line = (
            prop::collection::vec((key.clone(), scalar.clone()), 0..5),
            space.clone(),
        )
            .prop_map(move |(fields, space)| object(fields, space));
        let items = prop::collection::vec(prop_oneof![4 => line, 1 => scalar.clone()], 0..4)
            .prop_map(|lines| format!("[{}]", lines.join(",")));
        let field = prop_oneof![
            6 => (key, scalar),
            1 => items.prop_map(|items| ("\"items\"".to_string(), items)),
        ];
        (prop::collection::vec(field, 0..7), space)
            .prop_map(move |(fields, space)| object(fields, space))
    }

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

    /// Protects: the scanner reads the usual bodies itself (its speed is the point), the order
    /// in an envelope's `Message` without decoding the string (decoding it where the order's
    /// strings hold escapes or its values are not scalars), and leaves to serde_json what it
    /// does not decode (a `\u` escape in a key or the `Message`, deep nesting) and every text
    /// that is not JSON.
    #[test]
    fn the_scanner_reads_the_usual_bodies_and_leaves_the_rest_to_serde_json() {
        let order = include_str!("../../../test/events/payloads/canonical.json");
        let envelope =
            serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": order})
                .to_string();
        for body in [
            order,
            envelope.as_str(),
            r#"{"a":[1,{"b":null}],"c":-1.5e3,"d":"x\"y"}"#,
        ] {
            assert!(scan_fields(body, true).is_some(), "{body}");
        }
        // The order in the envelope is read without decoding the Message, pretty-printed or
        // not; a Message whose order has a string with an escape of its own (or is not an
        // object's JSON) is decoded.
        let compact = serde_json::to_string(
            &serde_json::from_str::<serde_json::Value>(order).expect("the fixture is JSON"),
        )
        .expect("JSON writes");
        let in_envelope = |order: &str| {
            serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": order})
                .to_string()
        };
        let message = |body: &str| {
            let fields = scan_fields(body, true).expect("the scanner reads the envelope");
            match fields.field("Message") {
                Some(Field::Object(_)) => "read quoted",
                Some(Field::Text(_)) => "decoded",
                _ => "other",
            }
        };
        assert_eq!(message(&envelope), "read quoted");
        assert_eq!(message(&in_envelope(&compact)), "read quoted");
        assert_eq!(
            message(&in_envelope("\t{\"name\": \"Caf\u{e9}\", \"q\": [1]} ")),
            "decoded"
        );
        assert_eq!(message(&in_envelope(r#"{"name": "a\"b"}"#)), "decoded");
        assert_eq!(message(&in_envelope(r#"{"name": "ok"} x"#)), "decoded");
        assert_eq!(message(&in_envelope("not JSON")), "decoded");
        assert_eq!(
            message(&in_envelope("{\"name\": \"Caf\u{e9}\", \"q\": 1}")),
            "read quoted"
        );
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        for body in [
            r#"{"a\u0062":1}"#,
            r#"{"Message":"\u0041"}"#,
            deep.as_str(),
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":"x"} x"#,
            "[1]",
        ] {
            assert!(scan_fields(body, true).is_none(), "{body}");
        }
        // The \u escape in a raw value is the scanner's to skip; serde_json's to decode later.
        assert!(scan_fields(r#"{"a":"\u0041"}"#, true).is_some());
        assert!(
            serde_fields(&deep, true).is_ok(),
            "serde_json reads any depth in a raw value"
        );
    }

    /// The price rule as first written, on the digits' text: the reference for [`exact_price`]'s
    /// value and limits (the syntax is [`price_literal`]'s for both).
    fn exact_price_by_text(literal: &str) -> Result<Decimal, String> {
        let PriceLiteral {
            negative,
            whole,
            fraction,
            exponent,
        } = price_literal(literal)?;
        let mut digits: String = whole
            .chars()
            .chain(fraction.chars())
            .skip_while(|c| *c == '0')
            .collect();
        let mut scale = fraction.len() as i64 - exponent;
        while scale > 0 && digits.ends_with('0') {
            digits.pop();
            scale -= 1;
        }
        if digits.is_empty() {
            return Ok(Decimal::ZERO);
        }
        if negative {
            return Err("must not be negative".into());
        }
        if scale > i64::from(PRICE_SCALE_MAX) {
            return Err(format!(
                "has more than {PRICE_SCALE_MAX} decimal places, which would be rounded"
            ));
        }
        if digits.len() as i64 - scale > PRICE_DIGITS_MAX as i64 {
            return Err(format!("must be below 10^{PRICE_DIGITS_MAX}"));
        }
        if scale < 0 {
            digits.push_str(&"0".repeat((-scale) as usize));
            scale = 0;
        }
        let mantissa: i128 = digits.parse().map_err(|e| format!("{e}"))?;
        Ok(Decimal::from_i128_with_scale(mantissa, scale as u32))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Protects every stored `createdAt` and content hash: a timestamp the quick reader
        /// takes is the instant chrono's RFC 3339 parser reads from it (digits out of range,
        /// days that do not exist, leap years and seconds, separators and signs changed); what
        /// it does not take, chrono decides.
        #[test]
        fn utc_seconds_reads_a_timestamp_as_chrono_does(
            text in prop_oneof![
                "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9]Z",
                "(19|20)[0-9]{2}-0[1-9]-(0[1-9]|1[0-9]|2[0-9]|3[01])T(0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z",
                "[0-9+-]{4}[-T:Z ][0-9]{2}[-T:Z ][0-9]{2}[-T:Z t][0-9]{2}[-T:Z ][0-9]{2}[-T:Z ][0-9]{2}[-T:Zz ]",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,4})?([Zz]|[+-][0-9]{2}:[0-9]{2})",
                // A valid one with one character changed.
                (
                    "(19|20)[0-9]{2}-0[1-9]-(0[1-9]|1[0-9]|2[0-8])T(0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z",
                    0usize..20,
                    proptest::sample::select(b"0123456789 +-:.TtZz/\x00".to_vec()),
                )
                    .prop_map(|(text, at, byte)| {
                        let mut bytes = text.into_bytes();
                        bytes[at] = byte;
                        String::from_utf8(bytes).unwrap_or_default()
                    }),
            ]
        ) {
            let chrono = DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).ok();
            if let Some(quick) = utc_seconds(&text) {
                prop_assert_eq!(Some(quick), chrono, "{}", text);
            }
            // The common form itself is taken, not left to chrono.
            if text.len() == 20 && text.ends_with('Z') && chrono.is_some_and(|t| t.timestamp_subsec_nanos() == 0) && !text.contains([' ', 't', '+']) && text[..4].bytes().all(|b| b.is_ascii_digit()) {
                prop_assert!(utc_seconds(&text).is_some(), "{}", text);
            }
        }
    }

    #[test]
    fn a_leap_second_and_a_day_that_does_not_exist_are_left_to_chrono() {
        assert_eq!(utc_seconds("2016-12-31T23:59:60Z"), None);
        assert!(DateTime::parse_from_rfc3339("2016-12-31T23:59:60Z").is_ok());
        assert_eq!(utc_seconds("2025-02-29T00:00:00Z"), None);
        assert_eq!(
            utc_seconds("2024-02-29T23:59:59Z"),
            Some(chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 2, 29, 23, 59, 59).unwrap())
        );
    }

    proptest! {
        /// Protects: the price read without building its digits' text accepts, refuses and
        /// values every literal as the text-based rule does (zeros leading and trailing,
        /// exponents either way, the scale and digit limits, negative zero).
        #[test]
        fn prices_are_read_as_the_text_based_rule_reads_them(
            literal in prop_oneof![
                "-?[0-9]{0,15}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,5})?",
                "-?0{0,3}[1-9]{0,3}0{0,6}(\\.0{0,4}[0-9]{0,3}0{0,9})?([eE][+-]?[0-9]{1,2})?",
            ]
        ) {
            prop_assert_eq!(exact_price(&literal), exact_price_by_text(&literal), "{}", literal);
        }
    }

    fn text_of(value: &str) -> Result<Option<String>, InvalidOrder> {
        let body = serde_json::json!({ "k": value }).to_string();
        let fields = read_fields(&body, false).unwrap();
        text(&fields, "k", At::Top, usize::MAX)
    }

    proptest! {
        /// Protects: the quick check that skips normalising text already in NFC gives exactly
        /// what full normalisation gives (combining marks, Hangul jamo, spaces to trim).
        #[test]
        fn text_is_the_trimmed_nfc_of_what_was_sent(
            value in "[ a-eA-E\u{e9}\u{300}-\u{36f}\u{1100}-\u{1112}\u{1161}-\u{1175}\u{11a8}\u{ac00}\u{212b}\u{2000}]{0,12}|\\PC{0,16}"
        ) {
            let expected: String = value.trim().nfc().collect();
            prop_assert_eq!(text_of(&value).unwrap(), Some(expected));
        }
    }

    #[test]
    fn decomposed_and_padded_text_is_composed_and_trimmed() {
        assert_eq!(
            text_of(" cafe\u{301} ").unwrap().as_deref(),
            Some("caf\u{e9}")
        );
        assert_eq!(text_of("\u{212b}").unwrap().as_deref(), Some("\u{c5}"));
        assert_eq!(
            text_of("\u{1100}\u{1161}").unwrap().as_deref(),
            Some("\u{ac00}")
        );
        assert_eq!(text_of("plain").unwrap().as_deref(), Some("plain"));
    }
}
