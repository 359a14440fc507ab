//! The validation rules of an order's fields: ids, texts, quantities, currency and timestamps,
//! with the contract's limits.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::parse::error::{shorten, At, InvalidOrder};
use crate::parse::fields::Fields;

/// Limits from the pipeline contract.
pub const ORDER_ID_MAX: usize = 128;
pub const CUSTOMER_ID_MAX: usize = 128;
pub const SKU_MAX: usize = 128;
pub const NAME_MAX: usize = 256;
pub const ITEMS_MAX: usize = 100;
pub const QUANTITY_MAX: u64 = 10_000;

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

pub(super) fn order_id(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
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
pub(super) fn customer_id(fields: &Fields<'_>, key: &str) -> Result<String, InvalidOrder> {
    let id = text(fields, key, At::Top, CUSTOMER_ID_MAX)?
        .ok_or_else(|| InvalidOrder::new(key, "is required"))?;
    if id.is_empty() {
        return Err(InvalidOrder::new(key, "must not be empty"));
    }
    Ok(id)
}

/// `raw` as the parser keeps a customer id (or any text field): trimmed and in Unicode NFC. A
/// JWT's customer claim is compared with the order's customer in this form.
pub fn normalized_text(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.trim().nfc().collect()
}

/// A text field (customer id, sku, name): `null` counts as absent; the value is trimmed and put
/// in Unicode NFC, so two spellings of the same text are one value (and one content hash); it
/// may hold at most `max` characters and no control or bidirectional-formatting characters
/// (which can disguise what a log line or an order says).
pub(super) fn text(
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

pub(super) fn quantity(fields: &Fields<'_>, key: &str, at: At) -> Result<u32, InvalidOrder> {
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

pub(super) fn currency(fields: &Fields<'_>) -> Result<Option<String>, InvalidOrder> {
    let Some(code) = optional_string(fields, "currency", At::Top)? else {
        return Ok(None);
    };
    match crate::money::Currency::from_code(&code) {
        Ok(currency) => Ok(Some(currency.code().to_string())),
        Err(_) if !(code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic())) => {
            Err(InvalidOrder::new(
                "currency",
                format!(
                    "must be a 3-letter ISO 4217 code (found {:?})",
                    shorten(&code)
                ),
            ))
        }
        Err(problem) => Err(InvalidOrder::new(
            "currency",
            format!("must be an ISO 4217 currency that can be charged: {problem}"),
        )),
    }
}

pub(super) fn timestamp(
    fields: &Fields<'_>,
    key: &str,
) -> Result<Option<DateTime<Utc>>, InvalidOrder> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    use crate::parse::read::read_fields;

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
