//! The Inventory table's item and the reservation plan: which skus and units an order needs,
//! what it costs, and the reasons an order is rejected before any stock is touched. Whether the
//! stock suffices is decided by the reservation's own transaction, never by a read.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::item::{Rejection, ReservedLine, StoredLine};

/// DynamoDB's limit on the items of one TransactWriteItems; the order's own update is one.
pub const TRANSACTION_ITEMS_MAX: usize = 100;
/// The most distinct skus one reservation can hold.
pub const RESERVATION_SKUS_MAX: usize = TRANSACTION_ITEMS_MAX - 1;

/// One item of the `Inventory` table (partition key `sku`). Units are conserved:
/// initial stock = available + reserved + sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    pub sku: String,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exact decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub version: u64,
}

/// What a reservation takes: the merged lines and the order's amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationPlan {
    pub lines: Vec<ReservedLine>,
    /// Exact, normalised decimal string.
    pub amount: String,
    /// The order's currency, or the inventory's when the order named none.
    pub currency: Option<String>,
}

/// The sku a line reserves against: its sku, else its name (a flat order's `itemName`).
pub fn line_sku(line: &StoredLine) -> Option<&str> {
    line.sku.as_deref().or(line.name.as_deref())
}

/// The distinct skus of an order, in order of first appearance.
pub fn order_skus(lines: &[StoredLine]) -> Vec<String> {
    let mut skus: Vec<String> = Vec::new();
    for sku in lines.iter().filter_map(line_sku) {
        if !skus.iter().any(|s| s == sku) {
            skus.push(sku.to_string());
        }
    }
    skus
}

fn reject(reason: String, sku: Option<&str>) -> Rejection {
    Rejection {
        reason,
        sku: sku.map(str::to_string),
        requested: None,
        available: None,
    }
}

/// Plans the reservation of `lines` against `stock` (the inventory items read for the order's
/// skus): lines of one sku are merged; the amount is the sum of quantity x the line's price, or
/// the inventory's price where the line has none. An unknown sku, a line with no price
/// anywhere, a currency mismatch or more distinct skus than one transaction takes reject the
/// order with that reason.
pub fn plan_reservation(
    lines: &[StoredLine],
    currency: Option<&str>,
    stock: &BTreeMap<String, InventoryItem>,
) -> Result<ReservationPlan, Rejection> {
    let skus = order_skus(lines);
    if skus.len() > RESERVATION_SKUS_MAX {
        return Err(reject(
            format!(
                "too many lines: {} distinct skus, one reservation takes at most {RESERVATION_SKUS_MAX}",
                skus.len()
            ),
            None,
        ));
    }
    let mut currency = currency.map(str::to_string);
    let mut amount = Decimal::ZERO;
    let mut merged: Vec<ReservedLine> = Vec::new();
    for line in lines {
        let Some(sku) = line_sku(line) else {
            return Err(reject("a line has neither a sku nor a name".into(), None));
        };
        let Some(item) = stock.get(sku) else {
            return Err(reject(
                format!("unknown sku {sku}: it is not in the inventory"),
                Some(sku),
            ));
        };
        if let Some(stocked) = &item.currency {
            match &currency {
                Some(ordered) if ordered != stocked => {
                    return Err(reject(
                        format!("currency mismatch: the order is in {ordered}, sku {sku} is priced in {stocked}"),
                        Some(sku),
                    ))
                }
                Some(_) => {}
                None => currency = Some(stocked.clone()),
            }
        }
        let price = line
            .unit_price
            .as_deref()
            .or(item.unit_price.as_deref())
            .and_then(|p| p.parse::<Decimal>().ok())
            .ok_or_else(|| {
                reject(
                    format!(
                        "no price for sku {sku}: neither the order nor the inventory gives one"
                    ),
                    Some(sku),
                )
            })?;
        amount = price
            .checked_mul(Decimal::from(line.quantity))
            .and_then(|line_amount| amount.checked_add(line_amount))
            .ok_or_else(|| reject(format!("the amount overflows at sku {sku}"), Some(sku)))?;
        match merged.iter_mut().find(|m| m.sku == sku) {
            Some(m) => m.quantity += line.quantity,
            None => merged.push(ReservedLine {
                sku: sku.to_string(),
                quantity: line.quantity,
            }),
        }
    }
    Ok(ReservationPlan {
        lines: merged,
        amount: amount.normalize().to_string(),
        currency,
    })
}

/// The rejection for a stock condition that failed in the reservation's transaction.
pub fn short_of_stock(sku: &str, requested: u32, available: Option<u64>) -> Rejection {
    Rejection {
        reason: match available {
            Some(a) => {
                format!("not enough stock for sku {sku}: {requested} requested, {a} available")
            }
            None => format!("not enough stock for sku {sku}: {requested} requested"),
        },
        sku: Some(sku.to_string()),
        requested: Some(requested),
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        sku: Option<&str>,
        name: Option<&str>,
        quantity: u32,
        price: Option<&str>,
    ) -> StoredLine {
        StoredLine {
            sku: sku.map(Into::into),
            name: name.map(Into::into),
            quantity,
            unit_price: price.map(Into::into),
        }
    }

    fn item(sku: &str, price: Option<&str>, currency: Option<&str>) -> (String, InventoryItem) {
        (
            sku.to_string(),
            InventoryItem {
                sku: sku.into(),
                available: 5,
                reserved: 0,
                sold: 0,
                name: None,
                unit_price: price.map(Into::into),
                currency: currency.map(Into::into),
                version: 1,
            },
        )
    }

    #[test]
    fn lines_of_one_sku_merge_and_the_amount_takes_the_inventory_price_where_the_line_has_none() {
        let stock = BTreeMap::from([
            item("A", Some("2.50"), Some("USD")),
            item("Laptop", Some("999.99"), Some("USD")),
        ]);
        let plan = plan_reservation(
            &[
                line(Some("A"), None, 2, Some("3.00")),
                line(Some("A"), None, 1, None),
                line(None, Some("Laptop"), 1, None),
            ],
            None,
            &stock,
        )
        .unwrap();
        assert_eq!(
            plan.lines,
            [
                ReservedLine {
                    sku: "A".into(),
                    quantity: 3
                },
                ReservedLine {
                    sku: "Laptop".into(),
                    quantity: 1
                }
            ]
        );
        assert_eq!(
            plan.amount, "1008.49",
            "2 x 3.00 + 1 x 2.50 + 999.99, exactly"
        );
        assert_eq!(plan.currency.as_deref(), Some("USD"));
    }

    #[test]
    fn unknown_sku_no_price_currency_mismatch_and_too_many_skus_reject_with_the_reason() {
        let stock = BTreeMap::from([item("A", None, Some("USD"))]);
        let unknown =
            plan_reservation(&[line(Some("Z"), None, 1, None)], None, &stock).unwrap_err();
        assert!(
            unknown.reason.contains("unknown sku Z"),
            "{}",
            unknown.reason
        );
        let unpriced =
            plan_reservation(&[line(Some("A"), None, 1, None)], None, &stock).unwrap_err();
        assert!(
            unpriced.reason.contains("no price for sku A"),
            "{}",
            unpriced.reason
        );
        let mismatch =
            plan_reservation(&[line(Some("A"), None, 1, Some("1"))], Some("EUR"), &stock)
                .unwrap_err();
        assert!(
            mismatch.reason.contains("currency mismatch"),
            "{}",
            mismatch.reason
        );
        let many: Vec<StoredLine> = (0..=RESERVATION_SKUS_MAX)
            .map(|i| line(Some(&format!("S{i}")), None, 1, Some("1")))
            .collect();
        let too_many = plan_reservation(&many, None, &stock).unwrap_err();
        assert!(
            too_many.reason.contains("too many lines"),
            "{}",
            too_many.reason
        );
    }

    /// Protects: one reservation takes 99 distinct skus (DynamoDB's 100 items per transaction,
    /// less the order's own update), all of them, and not one more.
    #[test]
    fn ninety_nine_distinct_skus_are_planned_and_a_hundredth_is_rejected() {
        let skus = |n: usize| -> (Vec<StoredLine>, BTreeMap<String, InventoryItem>) {
            (
                (0..n)
                    .map(|i| line(Some(&format!("S{i}")), None, 1, Some("1")))
                    .collect(),
                (0..n)
                    .map(|i| item(&format!("S{i}"), None, Some("USD")))
                    .collect(),
            )
        };
        let (lines, stock) = skus(99);
        let plan = plan_reservation(&lines, None, &stock).expect("99 skus fit");
        assert_eq!(plan.lines.len(), 99);
        assert_eq!(plan.amount, "99");
        let (lines, stock) = skus(100);
        assert!(plan_reservation(&lines, None, &stock)
            .unwrap_err()
            .reason
            .contains("100 distinct skus"));
    }
}
