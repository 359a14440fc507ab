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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HashInput<'a, L> {
    v: &'static str,
    order_id: &'a str,
    customer_id: &'a str,
    items: L,
    currency: Option<&'a str>,
    created_at: Option<&'a str>,
}

/// One line of the hash input.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HashLine<'a> {
    pub(crate) sku: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) quantity: u32,
    pub(crate) unit_price: Option<&'a str>,
}

/// The hash input's lines, written as a list from the `count` lines `line` gives (no list is
/// built for them).
struct HashLines<F> {
    count: usize,
    line: F,
}

impl<'a, F: Fn(usize) -> HashLine<'a>> Serialize for HashLines<F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.count).map(&self.line))
    }
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
        let input = HashInput {
            v: HASH_VERSION,
            order_id: self.order_id,
            customer_id: self.customer_id,
            items: HashLines {
                count: self.line_count,
                line: self.line,
            },
            currency: self.currency,
            created_at: self.created_at,
        };
        // Serialising strings and integers cannot fail.
        let mut bytes = Vec::with_capacity(256);
        serde_json::to_writer(&mut bytes, &input).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        hex
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

/// A price as stored and hashed: the exact decimal without trailing zeros.
pub fn price_text(price: Decimal) -> String {
    price.normalize().to_string()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// RFC 3339 in UTC with a `Z`, and fractional seconds only when there are any.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

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
