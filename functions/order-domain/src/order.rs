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
struct HashInput<'a> {
    v: &'static str,
    order_id: &'a str,
    customer_id: &'a str,
    items: Vec<HashLine<'a>>,
    currency: Option<&'a str>,
    created_at: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HashLine<'a> {
    sku: Option<&'a str>,
    name: Option<&'a str>,
    quantity: u32,
    unit_price: Option<&'a str>,
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
        self.content_hash_of(
            |i| prices.get(i).and_then(|p| p.as_deref()),
            created_at.as_deref(),
        )
    }

    /// The content hash from the texts of the line prices ([`price_text`]) and of `created_at`
    /// ([`format_timestamp`]), when the caller has written them already (the item stores them).
    pub(crate) fn content_hash_of<'a>(
        &'a self,
        price: impl Fn(usize) -> Option<&'a str>,
        created_at: Option<&'a str>,
    ) -> String {
        let input = HashInput {
            v: HASH_VERSION,
            order_id: &self.order_id,
            customer_id: &self.customer_id,
            items: self
                .items
                .iter()
                .enumerate()
                .map(|(i, l)| HashLine {
                    sku: l.sku.as_deref(),
                    name: l.name.as_deref(),
                    quantity: l.quantity,
                    unit_price: price(i),
                })
                .collect(),
            currency: self.currency.as_deref(),
            created_at,
        };
        // Serialising a struct of strings and integers cannot fail.
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
