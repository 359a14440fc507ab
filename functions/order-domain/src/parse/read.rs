//! Reading a JSON object's fields: the scanner ([`scan`](super::scan)) reads the common case,
//! serde_json the rest. The tests hold the two readers to the same result.

use crate::parse::fields::{serde_fields, Element, Field, Fields};
use crate::parse::scan::Scanner;

/// Reads a JSON object's fields. `decode`: decode `Message` and `items` as they are read (the
/// object is a body or an order, not a line). The scanner reads the common case; serde_json the
/// rest, and says what is wrong with a text that is not an object.
pub(super) fn read_fields(text: &str, decode: bool) -> Result<Fields<'_>, serde_json::Error> {
    match scan_fields(text, decode) {
        Some(fields) => Ok(fields),
        None => serde_fields(text, decode),
    }
}

/// The scanner's reading of an object (see [`scan`](super::scan)); `None` where it leaves the
/// text to serde_json. A decoded `Message` or `items` of another type than expected is read as
/// [`Field::Other`], as serde_json's reading gives it; a `Message` holding an object's JSON is
/// read as that object where the scanner can without decoding the string ([`Field::Object`]).
pub(super) fn scan_fields(text: &str, decode: bool) -> Option<Fields<'_>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use crate::parse::fields::json_text;

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

    /// Protects: the scanner reads the usual bodies itself (its speed is the point), the order
    /// in an envelope's `Message` without decoding the string (decoding it where the order's
    /// strings hold escapes or its values are not scalars), and leaves to serde_json what it
    /// does not decode (a `\u` escape in a key or the `Message`, deep nesting) and every text
    /// that is not JSON.
    #[test]
    fn the_scanner_reads_the_usual_bodies_and_leaves_the_rest_to_serde_json() {
        let order = include_str!("../../../../test/events/payloads/canonical.json");
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
}
