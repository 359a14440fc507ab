//! The canonical order: what every accepted payload form is mapped to.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One validated order in its canonical form.
///
/// `created_at` is `None` when the publisher did not say when the order was created; the stored
/// item then takes the message's SentTimestamp, but the content hash leaves it out, so the same
/// order published twice without a timestamp is a duplicate, not a conflict.
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// One line of an order. At least one of `sku` and `name` is present (validation ensures it).
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quantity: u32,
    /// Exact decimal, serialised as a string ("999.99"): money never goes through binary floats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
}

/// Version of the content-hash input. Bump it only with a migration: stored hashes use it.
const HASH_VERSION: &str = "order-v1";

/// One line of the hash input.
pub(crate) struct HashLine<'a> {
    pub(crate) sku: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) quantity: u32,
    pub(crate) unit_price: Option<&'a str>,
}

/// The parts of an order its content hash reads, with the texts of its line prices
/// ([`price_text`]) and of `created_at` ([`format_timestamp`]) as written for the item.
pub(crate) struct HashParts<'a, F> {
    pub(crate) order_id: &'a str,
    pub(crate) customer_id: &'a str,
    pub(crate) line_count: usize,
    pub(crate) line: F,
    pub(crate) currency: Option<&'a str>,
    pub(crate) created_at: Option<&'a str>,
}

impl<'a, F: Fn(usize) -> HashLine<'a>> HashParts<'a, F> {
    /// SHA-256 (hex) of the canonical order these parts are of.
    pub(crate) fn content_hash(self) -> String {
        let digest = Sha256::digest(self.hash_input());
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        hex
    }

    /// The hashed text: compact JSON, `{"v":"order-v1","orderId":..,"customerId":..,"items":
    /// [{"sku":..,"name":..,"quantity":..,"unitPrice":..}],"currency":..,"createdAt":..}`, an
    /// absent value written `null`, every string escaped as serde_json escapes it. Written by
    /// hand, byte for byte what serde_json writes for those fields in that order (a test holds
    /// the two equal): stored hashes depend on it.
    fn hash_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"v\":\"");
        out.extend_from_slice(HASH_VERSION.as_bytes());
        out.extend_from_slice(b"\",\"orderId\":");
        json_string(&mut out, Some(self.order_id));
        out.extend_from_slice(b",\"customerId\":");
        json_string(&mut out, Some(self.customer_id));
        out.extend_from_slice(b",\"items\":[");
        for i in 0..self.line_count {
            let line = (self.line)(i);
            out.extend_from_slice(if i == 0 { b"{\"sku\":" } else { b",{\"sku\":" });
            json_string(&mut out, line.sku);
            out.extend_from_slice(b",\"name\":");
            json_string(&mut out, line.name);
            out.extend_from_slice(b",\"quantity\":");
            out.extend_from_slice(itoa::Buffer::new().format(line.quantity).as_bytes());
            out.extend_from_slice(b",\"unitPrice\":");
            json_string(&mut out, line.unit_price);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"currency\":");
        json_string(&mut out, self.currency);
        out.extend_from_slice(b",\"createdAt\":");
        json_string(&mut out, self.created_at);
        out.push(b'}');
        out
    }
}

/// A JSON string as serde_json writes it (`null` for none): as it stands between quotes when
/// nothing in it needs an escape (no control character, quote or backslash), else by serde_json.
fn json_string(out: &mut Vec<u8>, text: Option<&str>) {
    let Some(text) = text else {
        out.extend_from_slice(b"null");
        return;
    };
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        serde_json::to_writer(&mut *out, text).unwrap_or_default();
    }
}

impl Order {
    /// Total units over all lines (the item's `itemCount`).
    pub fn item_count(&self) -> u32 {
        self.items.iter().map(|l| l.quantity).sum()
    }

    /// SHA-256 (hex) of the canonical order. Two messages carry "the same order" exactly when
    /// their hashes are equal: trailing zeros of prices and the offset a timestamp was written
    /// in do not matter; any other difference does.
    pub fn content_hash(&self) -> String {
        let prices: Vec<Option<String>> = self
            .items
            .iter()
            .map(|l| l.unit_price.map(price_text))
            .collect();
        let created_at = self.created_at.map(format_timestamp);
        HashParts {
            order_id: &self.order_id,
            customer_id: &self.customer_id,
            line_count: self.items.len(),
            line: |i: usize| {
                let l = &self.items[i];
                HashLine {
                    sku: l.sku.as_deref(),
                    name: l.name.as_deref(),
                    quantity: l.quantity,
                    unit_price: prices[i].as_deref(),
                }
            },
            currency: self.currency.as_deref(),
            created_at: created_at.as_deref(),
        }
        .content_hash()
    }
}

/// A price as stored and hashed: the exact decimal without trailing zeros, as
/// `price.normalize().to_string()` writes it (a test holds the two equal), written from the
/// digits of its mantissa without the formatting machinery.
pub fn price_text(price: Decimal) -> String {
    let price = price.normalize();
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(price.mantissa().unsigned_abs());
    // At most 28 fractional digits: the scale of a Decimal.
    let scale = price.scale() as usize;
    let mut text = String::with_capacity(digits.len() + scale + 3);
    // normalize() made a negative zero 0.
    if price.is_sign_negative() {
        text.push('-');
    }
    if scale == 0 {
        text.push_str(digits);
    } else if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        text.push_str(whole);
        text.push('.');
        text.push_str(fraction);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', scale - digits.len()));
        text.push_str(digits);
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// RFC 3339 in UTC with a `Z`, and fractional seconds only when there are any.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    /// The hash input as serde_json writes it: what the hand-written [`HashParts::hash_input`]
    /// must equal byte for byte.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct HashInput<'a> {
        v: &'static str,
        order_id: &'a str,
        customer_id: &'a str,
        items: Vec<ReferenceLine<'a>>,
        currency: Option<&'a str>,
        created_at: Option<&'a str>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ReferenceLine<'a> {
        sku: Option<&'a str>,
        name: Option<&'a str>,
        quantity: u32,
        unit_price: Option<&'a str>,
    }

    type Line = (Option<String>, Option<String>, u32, Option<String>);

    /// Texts with what JSON escapes (quotes, backslashes, control characters), what it does not
    /// (DEL, non-ASCII, astral characters) and plain ones.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9 ._-]{0,12}",
            "[\\x00-\\x7f]{0,12}",
            ".{0,8}",
            Just("\"\\\u{1f}\u{7f}é😀".to_string()),
        ]
    }

    fn any_line() -> impl Strategy<Value = Line> {
        (
            proptest::option::of(any_text()),
            proptest::option::of(any_text()),
            any::<u32>(),
            proptest::option::of(any_text()),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Protects every stored content hash: the hand-written hash input is, byte for byte,
        /// the JSON serde_json writes for the same fields (escapes, `null`s, numbers, the order
        /// of the keys).
        #[test]
        fn the_hash_input_is_what_serde_json_writes(
            order_id in any_text(),
            customer_id in any_text(),
            lines in proptest::collection::vec(any_line(), 0..4),
            currency in proptest::option::of(any_text()),
            created_at in proptest::option::of(any_text()),
        ) {
            let parts = HashParts {
                order_id: &order_id,
                customer_id: &customer_id,
                line_count: lines.len(),
                line: |i: usize| {
                    let (sku, name, quantity, unit_price) = &lines[i];
                    HashLine {
                        sku: sku.as_deref(),
                        name: name.as_deref(),
                        quantity: *quantity,
                        unit_price: unit_price.as_deref(),
                    }
                },
                currency: currency.as_deref(),
                created_at: created_at.as_deref(),
            };
            let reference = serde_json::to_vec(&HashInput {
                v: HASH_VERSION,
                order_id: &order_id,
                customer_id: &customer_id,
                items: lines
                    .iter()
                    .map(|(sku, name, quantity, unit_price)| ReferenceLine {
                        sku: sku.as_deref(),
                        name: name.as_deref(),
                        quantity: *quantity,
                        unit_price: unit_price.as_deref(),
                    })
                    .collect(),
                currency: currency.as_deref(),
                created_at: created_at.as_deref(),
            })
            .unwrap();
            let written = parts.hash_input();
            prop_assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&reference)
            );
        }

        /// Protects stored prices and hashes: the price written from its mantissa is the text
        /// rust_decimal writes for the normalised decimal (signs, zeros, leading `0.`, every
        /// scale up to 28, the largest mantissas).
        #[test]
        fn price_text_is_what_rust_decimal_writes(
            mantissa in prop_oneof![
                -1_000_000i128..1_000_000,
                any::<i128>().prop_map(|m| m % (1i128 << 96)),
            ],
            scale in 0u32..=28,
        ) {
            let price = Decimal::from_i128_with_scale(mantissa, scale);
            prop_assert_eq!(price_text(price), price.normalize().to_string());
        }
    }

    #[test]
    fn price_text_writes_negative_zero_and_small_fractions_as_rust_decimal_does() {
        for text in [
            "-0.00",
            "-0",
            "0.000",
            "-0.05",
            "0.0000000000000000000000000001",
            "1e-28",
        ] {
            let price = Decimal::from_str(text).or_else(|_| Decimal::from_scientific(text));
            let price = price.unwrap();
            assert_eq!(price_text(price), price.normalize().to_string(), "{text}");
        }
        assert_eq!(price_text(Decimal::from_str("-0.00").unwrap()), "0");
    }

    fn order() -> Order {
        Order {
            order_id: "O1".into(),
            customer_id: "U1".into(),
            items: vec![LineItem {
                sku: Some("S".into()),
                name: None,
                quantity: 2,
                unit_price: Some(Decimal::from_str("9.50").unwrap()),
            }],
            currency: Some("USD".into()),
            created_at: None,
        }
    }

    #[test]
    fn hash_ignores_trailing_zeros_of_prices() {
        let mut other = order();
        other.items[0].unit_price = Some(Decimal::from_str("9.5").unwrap());
        assert_eq!(order().content_hash(), other.content_hash());
    }

    #[test]
    fn hash_changes_with_any_content_change() {
        let base = order().content_hash();
        let mut q = order();
        q.items[0].quantity = 3;
        let mut c = order();
        c.customer_id = "U2".into();
        let mut t = order();
        t.created_at = Some(Utc::now());
        for changed in [q, c, t] {
            assert_ne!(base, changed.content_hash());
        }
    }

    #[test]
    fn item_count_sums_quantities() {
        let mut o = order();
        o.items.push(LineItem {
            sku: None,
            name: Some("Mouse".into()),
            quantity: 3,
            unit_price: None,
        });
        assert_eq!(o.item_count(), 5);
    }
}
