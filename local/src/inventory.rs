//! The Inventory table from a file: `order-producer inventory load FILE` and the demo's
//! catalogue. A file is JSON (a list of `{sku, available, name, unitPrice, currency}`) or CSV with
//! a header naming those columns. Loading sets each sku's stock afresh: `available` as given,
//! nothing reserved or sold.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};
use order_domain::InventoryItem;
use serde::Deserialize;

use crate::{aws_err, LocalError};

/// One product as a file gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    pub sku: String,
    pub available: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub unit_price: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

fn invalid(what: String) -> LocalError {
    LocalError::Input(what)
}

/// Reads products from JSON or CSV text (CSV when it does not start with `[`).
pub fn parse(text: &str) -> Result<Vec<Product>, LocalError> {
    let products: Vec<Product> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| invalid(format!("inventory JSON: {e}")))?
    } else {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .ok_or_else(|| invalid("inventory CSV: empty file".into()))?
            .split(',')
            .map(|h| h.trim().to_string())
            .collect();
        lines
            .enumerate()
            .map(|(n, line)| {
                let row: BTreeMap<&str, &str> = header
                    .iter()
                    .map(String::as_str)
                    .zip(line.split(',').map(str::trim))
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                let json = serde_json::to_value(&row).map_err(|e| invalid(e.to_string()))?;
                let mut json = json;
                if let Some(a) = row.get("available") {
                    json["available"] =
                        serde_json::Value::from(a.parse::<u64>().map_err(|_| {
                            invalid(format!(
                                "inventory CSV line {}: available {a:?} is not a whole number",
                                n + 2
                            ))
                        })?);
                }
                serde_json::from_value(json)
                    .map_err(|e| invalid(format!("inventory CSV line {}: {e}", n + 2)))
            })
            .collect::<Result<_, _>>()?
    };
    for p in &products {
        if p.sku.trim().is_empty() {
            return Err(invalid("inventory: a product has an empty sku".into()));
        }
        if let Some(price) = &p.unit_price {
            if price
                .parse::<rust_decimal::Decimal>()
                .map_or(true, |d| d.is_sign_negative())
            {
                return Err(invalid(format!(
                    "inventory: sku {}: unitPrice {price:?} is not a non-negative decimal",
                    p.sku
                )));
            }
        }
    }
    Ok(products)
}

/// Writes every product to the Inventory table (a progress bar on long loads).
pub async fn load(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    products: &[Product],
) -> Result<usize, LocalError> {
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
    for p in products {
        let item = InventoryItem {
            sku: p.sku.clone(),
            available: p.available,
            reserved: 0,
            sold: 0,
            name: p.name.clone(),
            unit_price: p.unit_price.clone(),
            currency: p.currency.as_ref().map(|c| c.to_ascii_uppercase()),
            version: 1,
        };
        let attributes = serde_dynamo::to_item(&item).map_err(|e| invalid(e.to_string()))?;
        dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(attributes))
            .send()
            .await
            .map_err(aws_err(format!("load sku {}", p.sku)))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(products.len())
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
}
