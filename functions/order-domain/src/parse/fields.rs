//! The field reader's record of a JSON object: its fields as written, each value kept raw until a
//! rule reads it, and serde_json's reading of an object into it (the reference the scanner is
//! held to, and the reader of what the scanner leaves).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::parse::error::{shorten, At, InvalidOrder};

/// A JSON object's fields as written, and the keys written more than once (which JSON parsers
/// disagree on: the pipeline rejects them rather than pick one).
///
/// The keys are borrowed from the text and kept in a list in the order written: an order's
/// objects have a handful of fields, so a scan finds one faster than a map would, with no
/// allocation per key. Values are kept as raw JSON and read when asked for, except (when the
/// object is a body or an order) a `Message` string, the SNS envelope's order, and the `items`
/// list, which are decoded as they are read: they are the large values, and reading them first
/// as raw JSON and then again was most of the parsing.
pub(super) struct Fields<'a> {
    pub(super) entries: Vec<(Cow<'a, str>, Field<'a>)>,
    pub(super) duplicates: Vec<String>,
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
pub(super) enum Field<'a> {
    /// The value's JSON text, as written.
    Raw(&'a str),
    /// A string read inside a string (the order in an SNS envelope's `Message`, read without
    /// decoding it): its text, which holds no escape.
    Str(&'a str),
    /// `Message` holding a string: its text.
    Text(Cow<'a, str>),
    /// `Message` holding a string whose text is a JSON object, read without decoding the string
    /// (see [`scan`](super::scan)): the object's fields.
    Object(Box<Fields<'a>>),
    /// `items` holding a list: its elements.
    List(Vec<Element<'a>>),
    /// `Message` or `items` holding something else.
    Other,
}

/// One element of a decoded list.
pub(super) enum Element<'a> {
    /// An object the scanner read on its way: its fields (a line is then not read twice).
    Object(Fields<'a>),
    /// Any other element, or one serde_json read: its JSON text.
    Raw(&'a str),
}

/// A field's value as the parser reads it.
#[derive(Clone, Copy)]
pub(super) enum Value<'a> {
    /// Its JSON text.
    Json(&'a str),
    /// A string's text, read inside a string ([`Field::Str`]).
    Str(&'a str),
}

impl<'a> Value<'a> {
    pub(super) fn is_null(self) -> bool {
        matches!(self, Value::Json("null"))
    }

    /// The text of a string value; `None` for any other value.
    pub(super) fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Value::Json(raw) => json_text(raw),
            Value::Str(text) => Some(Cow::Borrowed(text)),
        }
    }

    /// The value as JSON text (for a number, and an error's words). A [`Value::Str`]'s text
    /// holds no character JSON escapes: quoted, it is the string as the decoded text has it.
    pub(super) fn json(self) -> Cow<'a, str> {
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
    pub(super) fn new() -> Self {
        Fields {
            entries: Vec::with_capacity(8),
            duplicates: Vec::new(),
            key_bits: 0,
        }
    }

    /// Adds a field as read, noting its key when written before. (Inlined: moving an entry into
    /// a call cost more than the rest of it.)
    #[inline(always)]
    pub(super) fn push(&mut self, key: Cow<'a, str>, value: Field<'a>, seen: &mut Seen<'a>) {
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
    pub(super) fn field(&self, key: &str) -> Option<&Field<'a>> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of a field that is not decoded as read.
    pub(super) fn get(&self, key: &str) -> Option<Value<'a>> {
        match self.field(key)? {
            Field::Raw(raw) => Some(Value::Json(raw)),
            Field::Str(text) => Some(Value::Str(text)),
            Field::Text(_) | Field::Object(_) | Field::List(_) | Field::Other => None,
        }
    }

    pub(super) fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// One error per key written more than once, named as the publisher wrote it.
    pub(super) fn duplicate_errors(&self, at: At) -> Vec<InvalidOrder> {
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

/// serde_json's reading of an object. Where decoding fails (a `Message` whose text is JSON but
/// not a string Rust can hold: a lone surrogate escape), the object is read with every value
/// raw, so that the error names the field rather than the body.
pub(super) fn serde_fields(text: &str, decode: bool) -> Result<Fields<'_>, serde_json::Error> {
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
pub(super) fn json_text(text: &str) -> Option<Cow<'_, str>> {
    match text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('\\'))
    {
        Some(inner) => Some(Cow::Borrowed(inner)),
        None => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}
