//! The Inventory table from a file: `order-producer inventory load FILE` and the demo's
//! catalogue. A file is a JSON list of `{sku, available | stock, name, unitPrice, currency}` or CSV
//! whose first line is a header naming those columns (no quoting).
//!
//! A load changes only what the catalogue owns: name, price, currency, and the units for sale.
//! `available` sets the units for sale; `stock` gives the units on hand, of which those reserved
//! or sold stay where they are (available = stock - reserved - sold; a stock below them is
//! refused). `reserved` and `sold` belong to the orders and are never written by a load (an item
//! written without them by another system gets them as 0). Each sku is read, then written on the
//! condition that its version is still the one read (reservations and settlements bump it), so a
//! load racing orders neither loses nor invents units.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use indicatif::{ProgressBar, ProgressStyle};
use order_domain::{Currency, InventoryItem};
use serde::Deserialize;

use crate::{aws_err, LocalError};

/// One product as a file gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    pub sku: String,
    /// Units for sale from now on (reserved and sold untouched).
    #[serde(default)]
    pub available: Option<u64>,
    /// Units on hand, reserved and sold included.
    #[serde(default)]
    pub stock: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub unit_price: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

impl Product {
    /// A product with `available` units for sale.
    pub fn for_sale(sku: &str, available: u64) -> Self {
        Product {
            sku: sku.to_string(),
            available: Some(available),
            ..Product::default()
        }
    }
}

/// The columns a file may have.
const COLUMNS: [&str; 6] = ["sku", "available", "stock", "name", "unitPrice", "currency"];
const SHAPE: &str = "a JSON list of {sku, available or stock, name, unitPrice, currency}, or CSV whose first line is the header sku,available,name,unitPrice,currency (stock instead of available to give the units on hand)";

fn invalid(what: String) -> LocalError {
    LocalError::Input(what)
}

/// Reads products from JSON (a list) or CSV text (anything not starting with `[` or `{`), and
/// refuses a file in another shape, an empty one, a sku listed twice, a product without exactly
/// one of `available` and `stock`, a currency that is not ISO 4217 with a minor unit, and a
/// price without a currency, negative, or finer than its currency's minor unit (9.999 USD).
pub fn parse(text: &str) -> Result<Vec<Product>, LocalError> {
    let trimmed = text.trim_start();
    let products: Vec<Product> = if trimmed.starts_with('{') {
        return Err(invalid(format!(
            "inventory JSON: the file is one object; expected {SHAPE}"
        )));
    } else if trimmed.starts_with('[') {
        serde_json::from_str(text).map_err(|e| invalid(format!("inventory JSON: {e}")))?
    } else {
        parse_csv(text)?
    };
    if products.is_empty() {
        return Err(invalid(format!(
            "inventory: the file lists no products; expected {SHAPE}"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &products {
        if p.sku.trim().is_empty() {
            return Err(invalid("inventory: a product has an empty sku".into()));
        }
        if !seen.insert(p.sku.as_str()) {
            return Err(invalid(format!(
                "inventory: sku {} is listed twice; list each sku once",
                p.sku
            )));
        }
        if p.available.is_some() == p.stock.is_some() {
            return Err(invalid(format!(
                "inventory: sku {}: give exactly one of available (units for sale) and stock (units on hand)",
                p.sku
            )));
        }
        let currency = match p.currency.as_deref() {
            Some(code) => Some(Currency::from_code(code).map_err(|problem| {
                invalid(format!("inventory: sku {}: currency: {problem}", p.sku))
            })?),
            None => None,
        };
        if let Some(price) = &p.unit_price {
            let Some(currency) = currency else {
                return Err(invalid(format!(
                    "inventory: sku {}: unitPrice {price:?} without a currency; give the price's ISO 4217 currency (e.g. USD)",
                    p.sku
                )));
            };
            currency.parse_amount(price).map_err(|problem| {
                invalid(format!(
                    "inventory: sku {}: unitPrice {price:?} is not a price in {}: {problem}",
                    p.sku,
                    currency.code()
                ))
            })?;
        }
    }
    Ok(products)
}

fn parse_csv(text: &str) -> Result<Vec<Product>, LocalError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| invalid(format!("inventory: the file is empty; expected {SHAPE}")))?;
    let header: Vec<String> = first.split(',').map(|h| h.trim().to_string()).collect();
    if let Some(unknown) = header.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(invalid(format!(
            "inventory CSV: the first line must be the header, and {unknown:?} is not a column (found {first:?}); expected {SHAPE}"
        )));
    }
    if !header.iter().any(|h| h == "sku") {
        return Err(invalid(format!(
            "inventory CSV: the header has no sku column (found {first:?}); expected {SHAPE}"
        )));
    }
    lines
        .enumerate()
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != header.len() {
                return Err(invalid(format!(
                    "inventory CSV line {}: {} fields, the header has {}",
                    n + 2,
                    fields.len(),
                    header.len()
                )));
            }
            let mut json = serde_json::Map::new();
            for (column, value) in header.iter().zip(fields).filter(|(_, v)| !v.is_empty()) {
                let value = if column == "available" || column == "stock" {
                    serde_json::Value::from(value.parse::<u64>().map_err(|_| {
                        invalid(format!(
                            "inventory CSV line {}: {column} {value:?} is not a whole number",
                            n + 2
                        ))
                    })?)
                } else {
                    serde_json::Value::from(value)
                };
                json.insert(column.clone(), value);
            }
            serde_json::from_value(serde_json::Value::Object(json))
                .map_err(|e| invalid(format!("inventory CSV line {}: {e}", n + 2)))
        })
        .collect()
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub created: usize,
    pub updated: usize,
}

impl Loaded {
    pub fn total(&self) -> usize {
        self.created + self.updated
    }
}

/// How often a sku is read and written again when orders keep changing it under the load.
const LOAD_TRIES: usize = 20;

/// Writes every product to the Inventory table (a progress bar on long loads): new skus are
/// created, known ones get the catalogue's fields and units for sale, their reserved and sold
/// untouched. Stops at the first sku it cannot load, naming it (the skus before it are loaded).
pub async fn load(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    products: &[Product],
) -> Result<Loaded, LocalError> {
    let bar = if products.len() > 20 {
        let bar = ProgressBar::new(products.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("loading inventory {bar:40} {pos}/{len} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut loaded = Loaded::default();
    for p in products {
        if load_one(dynamodb, table, p).await? {
            loaded.created += 1;
        } else {
            loaded.updated += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(loaded)
}

/// Loads one product; true when it created the sku.
async fn load_one(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    p: &Product,
) -> Result<bool, LocalError> {
    let what = || format!("load sku {}", p.sku);
    let number = |n: u64| AttributeValue::N(n.to_string());
    for _ in 0..LOAD_TRIES {
        let current = dynamodb
            .get_item()
            .table_name(table)
            .key("sku", AttributeValue::S(p.sku.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_err(what()))?
            .item;
        let count = |item: &HashMap<String, AttributeValue>, name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let (held, version) = match &current {
            None => (0, None),
            Some(item) => (
                count(item, "reserved").unwrap_or(0) + count(item, "sold").unwrap_or(0),
                count(item, "version"),
            ),
        };
        let available = match (p.available, p.stock) {
            (Some(available), _) => available,
            (None, Some(stock)) if stock >= held => stock - held,
            (None, Some(stock)) => {
                return Err(invalid(format!(
                    "inventory: sku {}: stock {stock} is less than the {held} units reserved or sold; not loaded (give at least {held}, or available for the units for sale)",
                    p.sku
                )))
            }
            (None, None) => unreachable!("parse refuses a product without available or stock"),
        };
        let mut sets = vec![
            "available = :available",
            "reserved = if_not_exists(reserved, :zero)",
            "sold = if_not_exists(sold, :zero)",
            "version = :next",
        ];
        let mut values = HashMap::from([
            (":available".to_string(), number(available)),
            (":zero".to_string(), number(0)),
            (":next".to_string(), number(version.unwrap_or(0) + 1)),
        ]);
        let mut names = HashMap::new();
        for (field, name, value) in [
            ("#name", "name", p.name.clone()),
            ("#unitPrice", "unitPrice", p.unit_price.clone()),
            (
                "#currency",
                "currency",
                p.currency.as_ref().map(|c| c.to_ascii_uppercase()),
            ),
        ] {
            if let Some(value) = value {
                let placeholder = format!(":{name}");
                sets.push(match name {
                    "name" => "#name = :name",
                    "unitPrice" => "#unitPrice = :unitPrice",
                    _ => "#currency = :currency",
                });
                names.insert(field.to_string(), name.to_string());
                values.insert(placeholder, AttributeValue::S(value));
            }
        }
        let condition = match (&current, version) {
            (None, _) => "attribute_not_exists(sku)".to_string(),
            (Some(_), Some(v)) => {
                values.insert(":read".into(), number(v));
                "version = :read".to_string()
            }
            (Some(_), None) => {
                "attribute_exists(sku) AND attribute_not_exists(version)".to_string()
            }
        };
        let written = dynamodb
            .update_item()
            .table_name(table)
            .key("sku", AttributeValue::S(p.sku.clone()))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match written {
            Ok(_) => return Ok(current.is_none()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                continue
            }
            Err(e) => return Err(aws_err(what())(e)),
        }
    }
    Err(invalid(format!(
        "inventory: sku {} changed under the load {LOAD_TRIES} times in a row (orders are reserving it); load it again",
        p.sku
    )))
}

/// Every inventory item, by sku.
pub async fn scan(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<BTreeMap<String, InventoryItem>, LocalError> {
    crate::report::scan_all(dynamodb, table)
        .await?
        .into_iter()
        .map(|raw| {
            let item: InventoryItem = serde_dynamo::from_item(raw)
                .map_err(|e| invalid(format!("inventory item: {e}")))?;
            Ok((item.sku.clone(), item))
        })
        .collect()
}

/// Every sku's stock as `inventory show` prints it: one line per sku with its units for sale,
/// reserved, sold, on hand (their sum) and price.
pub fn stock_table(items: &BTreeMap<String, InventoryItem>) -> String {
    let mut out = format!(
        "{:<16} {:>9} {:>8} {:>8} {:>8}  {}\n",
        "sku", "available", "reserved", "sold", "on hand", "price"
    );
    for item in items.values() {
        let price = match (&item.unit_price, &item.currency) {
            (Some(p), Some(c)) => format!("{p} {c}"),
            (Some(p), None) => p.clone(),
            (None, _) => "no price".to_string(),
        };
        out.push_str(&format!(
            "{:<16} {:>9} {:>8} {:>8} {:>8}  {price}\n",
            item.sku,
            item.available,
            item.reserved,
            item.sold,
            item.available + item.reserved + item.sold
        ));
    }
    out.push_str(&format!(
        "{} skus, {} units on hand\n",
        items.len(),
        items
            .values()
            .map(|i| i.available + i.reserved + i.sold)
            .sum::<u64>()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_csv_give_the_same_products_and_bad_rows_are_named() {
        let json =
            parse(r#"[{"sku":"A","available":3,"unitPrice":"1.50","currency":"usd"}]"#).unwrap();
        let csv = parse("sku,available,unitPrice,currency\nA,3,1.50,usd\n").unwrap();
        assert_eq!(
            (
                json[0].sku.as_str(),
                json[0].available,
                json[0].unit_price.as_deref()
            ),
            (
                csv[0].sku.as_str(),
                csv[0].available,
                csv[0].unit_price.as_deref()
            )
        );
        let err = parse("sku,available\nA,many\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("available"), "{err}");
        assert!(parse(r#"[{"sku":"A","available":1,"unitPrice":"-1"}]"#).is_err());
    }

    /// Protects: `inventory show` gives each sku's units on hand as available + reserved + sold.
    #[test]
    fn the_stock_table_adds_up_the_units_on_hand() {
        let item = InventoryItem {
            sku: "A".into(),
            available: 5,
            reserved: 2,
            sold: 3,
            name: None,
            unit_price: Some("1.50".into()),
            currency: Some("USD".into()),
            version: 4,
        };
        let table = stock_table(&BTreeMap::from([("A".to_string(), item)]));
        let row = table.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["A", "5", "2", "3", "10", "1.50", "USD"], "{table}");
        assert!(table.ends_with("1 skus, 10 units on hand\n"), "{table}");
    }

    /// Protects: a catalogue file in a wrong shape is refused with what was expected (issue 30,
    /// finding 8: a CSV without its header "loaded 0 skus" and exited 0; a JSON object was read
    /// as CSV).
    #[test]
    fn a_file_in_a_wrong_shape_is_refused_naming_what_is_wrong() {
        let refused = |text: &str, says: &str| {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        };
        refused(
            "A,3,1.50,USD\nB,4,2.00,USD\n",
            "the first line must be the header",
        );
        refused("A,3\n", "the first line must be the header");
        refused(r#"{"sku":"A","available":3}"#, "one object");
        refused("sku,available\n", "lists no products");
        refused("[]", "lists no products");
        refused("", "empty");
        refused("sku,available\nA,3,9\n", "3 fields, the header has 2");
        refused("name,available\nA,3\n", "no sku column");
        refused("sku,available\nA,3\nA,4\n", "listed twice");
        refused("sku,available,stock\nA,3,5\n", "exactly one of available");
        refused("sku,name\nA,lamp\n", "exactly one of available");
        refused(
            "sku,available,unitPrice,currency\nA,3,9.999,USD\n",
            "finer than the minor unit of USD",
        );
        refused(
            "sku,available,unitPrice,currency\nA,3,10.5,JPY\n",
            "finer than the minor unit of JPY",
        );
        refused("sku,available,unitPrice\nA,3,9.99\n", "without a currency");
        refused(
            "sku,available,unitPrice,currency\nA,3,9.99,ABC\n",
            "not an ISO 4217",
        );
        refused("sku,available,unitPrice,currency\nA,3,-1,USD\n", "negative");
        assert!(parse("sku,available,unitPrice,currency\nA,3,1.250,KWD\n").is_ok());
        let stock = parse("sku,stock\nA,12\n").unwrap();
        assert_eq!((stock[0].stock, stock[0].available), (Some(12), None));
    }
}
