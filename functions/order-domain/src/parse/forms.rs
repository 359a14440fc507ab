//! The three order forms the pipeline accepts (canonical, flat, snake_case): how a payload's form
//! is recognised, and how each is mapped to the canonical [`Order`] with every field's rule.

use serde_json::value::RawValue;

use crate::order::{LineItem, Order};
use crate::parse::error::{At, InvalidOrder};
use crate::parse::fields::{Element, Field, Fields};
use crate::parse::price::unit_price;
use crate::parse::read::read_fields;
use crate::parse::rules::{
    currency, customer_id, order_id, quantity, text, timestamp, ITEMS_MAX, NAME_MAX, SKU_MAX,
};

/// The payload forms the pipeline accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadForm {
    /// `{"orderId","customerId","items":[{"sku","name","quantity","unitPrice"}],"currency","createdAt"}`
    Canonical,
    /// Seeds 001 and 004: `{"orderId","userId","itemName","quantity","status","timestamp"}`.
    Flat,
    /// Seed 002: `{"order_id","customer_id","items":[{"product_id","quantity"}],"timestamp"}`.
    SnakeCase,
}

impl PayloadForm {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadForm::Canonical => "canonical",
            PayloadForm::Flat => "flat",
            PayloadForm::SnakeCase => "snake_case",
        }
    }
}

/// Field names of a form whose items are a list.
struct ListForm {
    order_id: &'static str,
    customer_id: &'static str,
    sku: &'static str,
    unit_price: &'static str,
    created_at: &'static [&'static str],
}

const CANONICAL: ListForm = ListForm {
    order_id: "orderId",
    customer_id: "customerId",
    sku: "sku",
    unit_price: "unitPrice",
    created_at: &["createdAt"],
};

const SNAKE: ListForm = ListForm {
    order_id: "order_id",
    customer_id: "customer_id",
    sku: "product_id",
    unit_price: "unit_price",
    created_at: &["created_at", "timestamp"],
};

fn detect_form(fields: &Fields<'_>) -> PayloadForm {
    if fields.contains_key("order_id") {
        PayloadForm::SnakeCase
    } else if !fields.contains_key("items")
        && (fields.contains_key("itemName") || fields.contains_key("userId"))
    {
        PayloadForm::Flat
    } else {
        PayloadForm::Canonical
    }
}

/// The name of the order id field in `form`.
pub fn order_id_field(form: PayloadForm) -> &'static str {
    match form {
        PayloadForm::Canonical | PayloadForm::Flat => CANONICAL.order_id,
        PayloadForm::SnakeCase => SNAKE.order_id,
    }
}

/// The name of the customer id field in `form`.
pub fn customer_id_field(form: PayloadForm) -> &'static str {
    match form {
        PayloadForm::Canonical => CANONICAL.customer_id,
        PayloadForm::Flat => "userId",
        PayloadForm::SnakeCase => SNAKE.customer_id,
    }
}

/// The form a payload is in, as the parser would read it; `None` when it is not a JSON object.
pub fn payload_form(payload: &str) -> Option<PayloadForm> {
    read_fields(payload, true).ok().map(|f| detect_form(&f))
}

pub(super) fn order_from_fields(
    fields: &Fields<'_>,
) -> Result<(Order, PayloadForm), Vec<InvalidOrder>> {
    let form = detect_form(fields);
    let mut errors = Errors(fields.duplicate_errors(At::Top));
    let order = match form {
        PayloadForm::Canonical => list_form(fields, &CANONICAL, &mut errors),
        PayloadForm::SnakeCase => list_form(fields, &SNAKE, &mut errors),
        PayloadForm::Flat => flat_form(fields, &mut errors),
    };
    match order {
        Some(order) if errors.0.is_empty() => Ok((order, form)),
        _ => Err(errors.0),
    }
}

/// Every error of one payload, so that all can be reported at once.
#[derive(Default)]
struct Errors(Vec<InvalidOrder>);

impl Errors {
    fn take<T>(&mut self, result: Result<T, InvalidOrder>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }
}

fn list_form(fields: &Fields<'_>, names: &ListForm, errors: &mut Errors) -> Option<Order> {
    let order_id = errors.take(order_id(fields, names.order_id));
    let customer_id = errors.take(customer_id(fields, names.customer_id));
    let items = line_items(fields, names, errors);
    let created_at = match names.created_at.iter().find(|k| fields.contains_key(k)) {
        Some(key) => errors.take(timestamp(fields, key)),
        None => Some(None),
    };
    let currency = errors.take(currency(fields));
    Some(Order {
        order_id: order_id?,
        customer_id: customer_id?,
        items: items?,
        currency: currency?,
        created_at: created_at?,
    })
}

fn line_items(fields: &Fields<'_>, names: &ListForm, errors: &mut Errors) -> Option<Vec<LineItem>> {
    let read_now;
    let raw_items: &[Element<'_>] = match fields.field("items") {
        None => {
            errors.0.push(InvalidOrder::new("items", "is required"));
            return None;
        }
        Some(Field::List(list)) => list,
        Some(field) => {
            let list = match field {
                Field::Raw(raw) => serde_json::from_str::<Vec<&RawValue>>(raw)
                    .ok()
                    .map(|list| {
                        list.into_iter()
                            .map(|raw| Element::Raw(raw.get()))
                            .collect::<Vec<_>>()
                    }),
                _ => None,
            };
            let Some(list) = list else {
                errors
                    .0
                    .push(InvalidOrder::new("items", "must be a list of line items"));
                return None;
            };
            read_now = list;
            &read_now
        }
    };
    if raw_items.is_empty() || raw_items.len() > ITEMS_MAX {
        errors.0.push(InvalidOrder::new(
            "items",
            format!(
                "must have 1 to {ITEMS_MAX} entries (found {})",
                raw_items.len()
            ),
        ));
        return None;
    }
    let mut items = Some(Vec::with_capacity(raw_items.len()));
    for (i, raw) in raw_items.iter().enumerate() {
        let line = line_item(raw, names, At::Line(i), errors);
        items = items.zip(line).map(|(mut all, line)| {
            all.push(line);
            all
        });
    }
    items
}

fn line_item(
    element: &Element<'_>,
    names: &ListForm,
    at: At,
    errors: &mut Errors,
) -> Option<LineItem> {
    let read_now;
    let line = match element {
        Element::Object(fields) => fields,
        Element::Raw(text) => {
            let Ok(fields) = read_fields(text, false) else {
                errors
                    .0
                    .push(InvalidOrder::new(at.to_string(), "must be an object"));
                return None;
            };
            read_now = fields;
            &read_now
        }
    };
    let duplicates = line.duplicate_errors(at);
    let clean = duplicates.is_empty();
    errors.0.extend(duplicates);
    let sku = errors.take(text(line, names.sku, at, SKU_MAX));
    let name = errors.take(text(line, "name", at, NAME_MAX));
    let quantity = errors.take(quantity(line, "quantity", at));
    let unit_price = errors.take(unit_price(line, names.unit_price, at));
    let (sku, name) = (
        sku?.filter(|s| !s.is_empty()),
        name?.filter(|s| !s.is_empty()),
    );
    if sku.is_none() && name.is_none() {
        errors.0.push(InvalidOrder::new(
            at.to_string(),
            format!("needs a {} or a name", names.sku),
        ));
        return None;
    }
    let line = LineItem {
        sku,
        name,
        quantity: quantity?,
        unit_price: unit_price?,
    };
    clean.then_some(line)
}

fn flat_form(fields: &Fields<'_>, errors: &mut Errors) -> Option<Order> {
    let order_id = errors.take(order_id(fields, "orderId"));
    let customer_id = errors.take(customer_id(fields, "userId"));
    let name = errors.take(
        text(fields, "itemName", At::Top, NAME_MAX).and_then(|name| {
            name.filter(|s| !s.is_empty())
                .ok_or_else(|| InvalidOrder::new("itemName", "is required"))
        }),
    );
    let quantity = errors.take(quantity(fields, "quantity", At::Top));
    let currency = errors.take(currency(fields));
    let created_at = errors.take(timestamp(fields, "timestamp"));
    Some(Order {
        order_id: order_id?,
        customer_id: customer_id?,
        items: vec![LineItem {
            sku: None,
            name: Some(name?),
            quantity: quantity?,
            unit_price: None,
        }],
        currency: currency?,
        created_at: created_at?,
    })
}
