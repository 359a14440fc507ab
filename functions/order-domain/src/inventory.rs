//! The Inventory table's item and the reservation plan: which skus and units an order needs,
//! what it costs, and the reasons an order is rejected before any stock is touched. Whether the
//! stock suffices is decided by the reservation's own transaction, never by a read.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::item::{Rejection, RejectionCode, ReservedLine, StoredLine};
use crate::money::Currency;

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

/// What a reservation takes: the merged lines and the order's amount in its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationPlan {
    pub lines: Vec<ReservedLine>,
    /// Exact, with the currency's minor unit digits ("39.80").
    pub amount: String,
    /// The order's currency: every reserved order has exactly one.
    pub currency: String,
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

fn reject(code: RejectionCode, reason: String, sku: Option<&str>) -> Rejection {
    Rejection {
        reason,
        code: Some(code),
        sku: sku.map(str::to_string),
        ..Rejection::default()
    }
}

/// The currency an Inventory item is priced in: its own, else the stack's default.
fn priced_in<'a>(item: &'a InventoryItem, default: &'a Currency) -> &'a str {
    item.currency.as_deref().unwrap_or(default.code())
}

// A rejection is the rare path, taken once per order: not worth a Box.
#[allow(clippy::result_large_err)]
/// The order's one currency: its own, else its skus' (which must agree), else `default`.
fn order_currency(
    ordered: Option<&str>,
    priced: &[(&str, &str)],
    default: Currency,
) -> Result<Currency, Rejection> {
    let code = match ordered {
        Some(code) => code,
        None => match priced.first() {
            Some(&(_, first)) => first,
            None => default.code(),
        },
    };
    let currency = Currency::from_code(code).map_err(|problem| {
        reject(
            RejectionCode::CurrencyMismatch,
            format!("the order's currency cannot be charged: {problem}"),
            None,
        )
    })?;
    if let Some(&(sku, other)) = priced.iter().find(|(_, c)| *c != currency.code()) {
        let reason = match ordered {
            Some(_) => format!(
                "currency mismatch: the order is in {}, sku {sku} is priced in {other}",
                currency.code()
            ),
            None => format!(
                "currency mismatch: the order's skus are priced in {} and {other} (sku {sku})",
                currency.code()
            ),
        };
        return Err(reject(RejectionCode::CurrencyMismatch, reason, Some(sku)));
    }
    Ok(currency)
}

/// Plans the reservation of `lines` against `stock` (the inventory items read for the order's
/// skus). **The catalogue sets the price**: the amount is the sum of quantity x the Inventory's
/// unitPrice, exact in the currency's minor unit; a line's own unitPrice is only what the
/// customer expects, and a different catalogue price rejects the order (`price_changed`). The
/// currency is the order's, else its skus' (which must agree), else `default` (the stack's,
/// also the currency of an Inventory item that names none). Lines of one sku are merged. An
/// unknown sku, no usable catalogue price, a currency mismatch or more distinct skus than one
/// transaction takes reject the order with that code and reason.
#[allow(clippy::result_large_err)]
pub fn plan_reservation(
    lines: &[StoredLine],
    currency: Option<&str>,
    default: Currency,
    stock: &BTreeMap<String, InventoryItem>,
) -> Result<ReservationPlan, Rejection> {
    let skus = order_skus(lines);
    if skus.len() > RESERVATION_SKUS_MAX {
        return Err(reject(
            RejectionCode::TooManySkus,
            format!(
                "too many lines: {} distinct skus, one reservation takes at most {RESERVATION_SKUS_MAX}",
                skus.len()
            ),
            None,
        ));
    }
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let Some(sku) = line_sku(line) else {
            return Err(reject(
                RejectionCode::NoSku,
                "a line has neither a sku nor a name".into(),
                None,
            ));
        };
        let Some(item) = stock.get(sku) else {
            return Err(reject(
                RejectionCode::UnknownSku,
                format!("unknown sku {sku}: it is not in the inventory"),
                Some(sku),
            ));
        };
        items.push((line, sku, item));
    }
    let priced: Vec<(&str, &str)> = items
        .iter()
        .map(|(_, sku, item)| (*sku, priced_in(item, &default)))
        .collect();
    let currency = order_currency(currency, &priced, default)?;
    let code = currency.code();
    let mut amount = Decimal::ZERO;
    let mut merged: Vec<ReservedLine> = Vec::new();
    for (line, sku, item) in items {
        let no_price = |why: String| reject(RejectionCode::NoPrice, why, Some(sku));
        let listed = item
            .unit_price
            .as_deref()
            .ok_or_else(|| no_price(format!("no price for sku {sku}: the catalogue gives none")))?;
        let price = listed
            .trim()
            .parse::<Decimal>()
            .ok()
            .filter(|p| currency.amount(*p).is_ok())
            .ok_or_else(|| {
                no_price(format!(
                    "no usable price for sku {sku}: the catalogue's {listed:?} is not an amount of {code}"
                ))
            })?;
        if let Some(expected) = line.unit_price.as_deref() {
            if expected.trim().parse::<Decimal>().ok() != Some(price) {
                let current = currency
                    .amount(price)
                    .unwrap_or_else(|_| listed.to_string());
                return Err(Rejection {
                    expected_price: Some(expected.to_string()),
                    current_price: Some(current.clone()),
                    ..reject(
                        RejectionCode::PriceChanged,
                        format!(
                            "price changed for sku {sku}: the order expected {expected} {code}, the catalogue's price is {current} {code}"
                        ),
                        Some(sku),
                    )
                });
            }
        }
        amount = price
            .checked_mul(Decimal::from(line.quantity))
            .and_then(|line_amount| amount.checked_add(line_amount))
            .ok_or_else(|| no_price(format!("the amount overflows at sku {sku}")))?;
        match merged.iter_mut().find(|m| m.sku == sku) {
            Some(m) => m.quantity += line.quantity,
            None => merged.push(ReservedLine {
                sku: sku.to_string(),
                quantity: line.quantity,
            }),
        }
    }
    let amount = currency
        .amount(amount)
        .map_err(|problem| reject(RejectionCode::NoPrice, problem, None))?;
    Ok(ReservationPlan {
        lines: merged,
        amount,
        currency: code.to_string(),
    })
}

/// The rejection for a stock condition that failed in the reservation's transaction.
pub fn short_of_stock(sku: &str, requested: u32, available: Option<u64>) -> Rejection {
    Rejection {
        code: Some(RejectionCode::OutOfStock),
        reason: match available {
            Some(a) => {
                format!("not enough stock for sku {sku}: {requested} requested, {a} available")
            }
            None => format!("not enough stock for sku {sku}: {requested} requested"),
        },
        sku: Some(sku.to_string()),
        requested: Some(requested),
        available,
        ..Rejection::default()
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
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

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    /// Protects: the amount is the catalogue's price x quantity in the currency's minor unit,
    /// lines of one sku merge, and a line's own price that equals the catalogue's (written
    /// either way, 3.0 or 3.00) is accepted.
    #[test]
    fn lines_of_one_sku_merge_and_the_amount_is_the_catalogue_price_in_minor_units() {
        let stock = BTreeMap::from([
            item("A", Some("3.00"), Some("USD")),
            item("Laptop", Some("999.99"), Some("USD")),
        ]);
        let plan = plan_reservation(
            &[
                line(Some("A"), None, 2, Some("3.0")),
                line(Some("A"), None, 1, None),
                line(None, Some("Laptop"), 1, None),
            ],
            None,
            usd(),
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
        assert_eq!(plan.amount, "1008.99", "3 x 3.00 + 999.99, exactly");
        assert_eq!(plan.currency, "USD");
        let round = plan_reservation(
            &[line(Some("A"), None, 5, None)],
            None,
            usd(),
            &BTreeMap::from([item("A", Some("5"), None)]),
        )
        .unwrap();
        assert_eq!(
            (round.amount.as_str(), round.currency.as_str()),
            ("25.00", "USD"),
            "the minor unit's digits, and the default currency for a sku that names none"
        );
    }

    /// Protects (issue 30, finding 1): the client never sets the price. A laptop listed at
    /// 999.99 and ordered at 0.01 is rejected `price_changed` naming both prices; it is never
    /// charged 0.01. On the old rule (the line's price first) this order planned 0.01.
    #[test]
    fn an_order_line_priced_below_the_catalogue_is_rejected_price_changed_never_charged_its_price()
    {
        let stock = BTreeMap::from([item("Laptop", Some("999.99"), Some("USD"))]);
        let r = plan_reservation(
            &[line(None, Some("Laptop"), 1, Some("0.01"))],
            Some("USD"),
            usd(),
            &stock,
        )
        .unwrap_err();
        assert_eq!(r.code, Some(RejectionCode::PriceChanged));
        assert_eq!(r.sku.as_deref(), Some("Laptop"));
        assert_eq!(r.expected_price.as_deref(), Some("0.01"));
        assert_eq!(r.current_price.as_deref(), Some("999.99"));
        assert!(
            r.reason.contains("0.01 USD") && r.reason.contains("999.99 USD"),
            "{}",
            r.reason
        );
    }

    /// Protects (issue 30, finding 2): every plan has one currency: the order's, else its
    /// skus' (which must agree), else the stack's default; never none.
    #[test]
    fn every_plan_has_one_currency_the_orders_else_its_skus_else_the_default() {
        let eur = Currency::from_code("EUR").unwrap();
        let stock = BTreeMap::from([
            item("E", Some("2.50"), Some("EUR")),
            item("U", Some("1"), Some("USD")),
            item("N", Some("1"), None),
        ]);
        let plan = |lines: &[StoredLine], ordered: Option<&str>, default: Currency| {
            plan_reservation(lines, ordered, default, &stock)
        };
        let e = [line(Some("E"), None, 2, None)];
        assert_eq!(plan(&e, None, usd()).unwrap().currency, "EUR", "the sku's");
        assert_eq!(plan(&e, None, usd()).unwrap().amount, "5.00");
        let n = [line(Some("N"), None, 1, None)];
        assert_eq!(plan(&n, None, eur).unwrap().currency, "EUR", "the default");
        assert_eq!(plan(&n, None, usd()).unwrap().currency, "USD");
        let mixed = [
            line(Some("E"), None, 1, None),
            line(Some("U"), None, 1, None),
        ];
        let r = plan(&mixed, None, usd()).unwrap_err();
        assert_eq!(
            r.code,
            Some(RejectionCode::CurrencyMismatch),
            "{}",
            r.reason
        );
        let r = plan(&e, Some("USD"), usd()).unwrap_err();
        assert_eq!(
            r.code,
            Some(RejectionCode::CurrencyMismatch),
            "{}",
            r.reason
        );
        let r = plan(&n, Some("EUR"), usd()).unwrap_err();
        assert_eq!(
            r.code,
            Some(RejectionCode::CurrencyMismatch),
            "a sku without a currency is priced in the default: {}",
            r.reason
        );
    }

    #[test]
    fn unknown_sku_no_price_a_price_finer_than_the_minor_unit_and_too_many_skus_reject_with_the_code(
    ) {
        let stock = BTreeMap::from([
            item("A", None, Some("USD")),
            item("F", Some("9.999"), Some("USD")),
        ]);
        let code = |lines: &[StoredLine]| plan_reservation(lines, None, usd(), &stock).unwrap_err();
        let unknown = code(&[line(Some("Z"), None, 1, None)]);
        assert_eq!(unknown.code, Some(RejectionCode::UnknownSku));
        assert!(
            unknown.reason.contains("unknown sku Z"),
            "{}",
            unknown.reason
        );
        let unpriced = code(&[line(Some("A"), None, 1, Some("1"))]);
        assert_eq!(
            unpriced.code,
            Some(RejectionCode::NoPrice),
            "the order's own price never stands in for the catalogue's: {}",
            unpriced.reason
        );
        let fine = code(&[line(Some("F"), None, 1, None)]);
        assert_eq!(fine.code, Some(RejectionCode::NoPrice), "{}", fine.reason);
        let nameless = code(&[line(None, None, 1, None)]);
        assert_eq!(nameless.code, Some(RejectionCode::NoSku));
        let many: Vec<StoredLine> = (0..=RESERVATION_SKUS_MAX)
            .map(|i| line(Some(&format!("S{i}")), None, 1, Some("1")))
            .collect();
        let too_many = code(&many);
        assert_eq!(too_many.code, Some(RejectionCode::TooManySkus));
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
                    .map(|i| item(&format!("S{i}"), Some("1"), Some("USD")))
                    .collect(),
            )
        };
        let (lines, stock) = skus(99);
        let plan = plan_reservation(&lines, None, usd(), &stock).expect("99 skus fit");
        assert_eq!(plan.lines.len(), 99);
        assert_eq!(plan.amount, "99.00");
        let (lines, stock) = skus(100);
        assert!(plan_reservation(&lines, None, usd(), &stock)
            .unwrap_err()
            .reason
            .contains("100 distinct skus"));
    }
}
