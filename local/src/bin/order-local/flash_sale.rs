//! `order-local flash-sale` (issue 33): thousands of orders for a few hot skus, published as
//! fast as the producer can, through the whole lifecycle with the stack's concurrency settings
//! and the queues' real retry delays, on an emulator where a transaction naming an item another
//! one committed within the conflict window is cancelled with `TransactionConflict`, as DynamoDB
//! cancels transactions in flight on one item. It prints how long after the last publish every
//! order was terminal, how many conflicts each order met, how many records waited their queue's
//! retry delay because of one (RecordsContended), the dead letters, and checks the stock from
//! the tables and the charges from the provider's ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use order_domain::{OrderItem, OrderStatus, RejectionCode};
use order_local::generate::{generate, Intent, Mix, Planned};
use order_local::inventory::Product;
use order_local::latency::{ended_at, seconds, Latency};
use order_local::pipeline::LocalPipeline;
use order_local::LocalError;
use rust_decimal::Decimal;
use serde_json::json;

use super::boot::{boot, progress};
use super::cli::{Boot, Cli, FlashSale};

/// The hot skus and their price.
const HOT_SKUS: &[&str] = &["HOT-1", "HOT-2", "HOT-3"];
const HOT_PRICE: &str = "49.00";

pub(crate) async fn flash_sale(cli: &Cli, sale: &FlashSale) -> Result<bool, LocalError> {
    if !(0.0..=1.0).contains(&sale.stock_share) {
        return Err(LocalError::Input(format!(
            "--stock-share must be a fraction from 0 to 1 (got {})",
            sale.stock_share
        )));
    }
    let b = Boot {
        endpoint: None,
        // The queues' own retry delays: a record failed on a conflict waits what it would on
        // AWS (the inventory queue's visibility timeout, the payment stage's backoff).
        retry_after: 0,
        decline_rate: 0.0,
        unavailable_rate: 0.0,
        provider_latency_ms: 5,
        aws_latency_ms: sale.aws_latency_ms,
        transaction_conflict_ms: sale.conflict_ms,
        assembly: None,
        bootstraps: None,
        no_traces: true,
        environment: sale
            .conflict_tries
            .map(|t| vec![("TRANSACTION_CONFLICT_TRIES".to_string(), t.to_string())])
            .unwrap_or_default(),
        template_stuck_age: true,
    };
    let (pipeline, log) = boot(cli, &b, "flash-sale").await?;
    let table = pipeline
        .stack
        .inventory_table_name
        .clone()
        .ok_or_else(|| LocalError::Input("the stack has no Inventory table".into()))?;

    // Stock for `stock_share` of the hot orders, split over the hot skus; the background skus
    // (the generator's, by sku and by product name) plentiful.
    let hot_units = (sale.orders as f64 * sale.stock_share).round() as u64;
    let per_sku: Vec<u64> = (0..HOT_SKUS.len() as u64)
        .map(|i| {
            hot_units / HOT_SKUS.len() as u64 + u64::from(i < hot_units % HOT_SKUS.len() as u64)
        })
        .collect();
    let mut catalogue: Vec<Product> = HOT_SKUS
        .iter()
        .zip(&per_sku)
        .map(|(sku, units)| Product {
            unit_price: Some(HOT_PRICE.into()),
            currency: Some("USD".into()),
            ..Product::for_sale(sku, *units)
        })
        .collect();
    for (sku, name, price) in order_local::generate::SKUS {
        for key in [*sku, *name] {
            catalogue.push(Product {
                unit_price: Some((*price).into()),
                currency: Some("USD".into()),
                ..Product::for_sale(key, 1_000_000)
            });
        }
    }
    order_local::inventory::load(&pipeline.clients.dynamodb, &table, &catalogue).await?;
    let before = order_local::inventory::scan(&pipeline.clients.dynamodb, &table).await?;

    let planned = traffic(sale.orders, sale.background);
    eprintln!(
        "flash sale: {} orders for {} ({} units in stock: {:?}) and {} background orders; conflict window {} ms, AWS calls {} ms{}",
        sale.orders,
        HOT_SKUS.join(", "),
        hot_units,
        per_sku,
        sale.background,
        sale.conflict_ms,
        sale.aws_latency_ms,
        match sale.conflict_tries {
            Some(t) => format!(", TRANSACTION_CONFLICT_TRIES={t}"),
            None => String::new(),
        }
    );
    let first_publish = Utc::now();
    order_local::publish::publish_all(
        &pipeline.clients.sns,
        &pipeline.stack.topic_arn,
        &planned,
        true,
    )
    .await?;
    let last_publish = Utc::now();
    eprintln!(
        "published {} messages in {:.1} s; waiting for every order to end...",
        planned.len(),
        seconds(last_publish - first_publish)
    );
    let drained = pipeline
        .wait_until_drained(Duration::from_secs(sale.timeout), progress)
        .await?;

    let items =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
    let after = order_local::inventory::scan(&pipeline.clients.dynamodb, &table).await?;
    let figures = Figures::of(&pipeline, &items, last_publish).await?;
    let prices: BTreeMap<String, Decimal> = catalogue
        .iter()
        .filter_map(|p| Some((p.sku.clone(), p.unit_price.as_deref()?.parse().ok()?)))
        .collect();
    let checks = check(&pipeline, &planned, &items, &before, &after, &prices);
    let queues = order_local::latency::render_queues(&pipeline.queue_times());
    pipeline.shutdown().await;

    println!("\nFlash sale: {}", figures.render(sale, hot_units));
    println!("  queue wait and stage work, by function (the event source mappings)\n{queues}");
    println!(
        "\nHot skus (units before -> available / reserved / sold; sold = the COMPLETED orders)"
    );
    for sku in HOT_SKUS {
        let (b, a) = (&before[*sku], &after[*sku]);
        println!(
            "  {sku:<6} {:>5} -> {:>5} / {:>3} / {:>5}",
            b.available, a.available, a.reserved, a.sold
        );
    }
    println!("\nChecks");
    for (ok, what) in &checks {
        println!("  {} {what}", if *ok { "ok  " } else { "FAIL" });
    }
    println!("  (the functions' log: {})", log.display());
    Ok(drained && checks.iter().all(|(ok, _)| *ok))
}

/// The hot orders (`FS-nnnnn`, one unit of HOT-1/2/3 in turn, customers `fs-n`) with the
/// background orders (the generator's new orders, no duplicates or invalid ones) spread among
/// them.
fn traffic(hot: usize, background: usize) -> Vec<Planned> {
    let mut others = generate(
        background,
        Mix {
            duplicates: 0.0,
            conflicts: 0.0,
            invalid: 0.0,
        },
        33,
        "bg",
    )
    .into_iter();
    let every = hot
        .checked_div(background)
        .map_or(usize::MAX, |every| every.max(1));
    let mut out = Vec::with_capacity(hot + background);
    for n in 0..hot {
        let order_id = format!("FS-{n:05}");
        out.push(Planned {
            correlation_id: format!("fs-msg-{n:05}"),
            body: json!({
                "orderId": order_id,
                "customerId": format!("fs-{}", n % 1_000),
                "items": [{"sku": HOT_SKUS[n % HOT_SKUS.len()], "quantity": 1}],
                "currency": "USD"
            })
            .to_string(),
            order_id: Some(order_id),
            intent: Intent::New,
        });
        if n % every == every - 1 {
            out.extend(others.next());
        }
    }
    out.extend(others);
    out
}

struct Figures {
    orders: usize,
    by_status: BTreeMap<String, usize>,
    /// The last order's end after the last publish.
    to_terminal: Option<f64>,
    latency: Latency,
    conflicts: u64,
    contended: u64,
    dead_letters: u64,
    requests: u64,
}

impl Figures {
    async fn of(
        pipeline: &LocalPipeline,
        items: &[OrderItem],
        last_publish: DateTime<Utc>,
    ) -> Result<Self, LocalError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut by_status = BTreeMap::new();
        for i in items {
            *by_status.entry(i.status.as_str().to_string()).or_insert(0) += 1;
        }
        let ends: Vec<Option<DateTime<Utc>>> = items.iter().map(ended_at).collect();
        let to_terminal = match ends.iter().all(Option::is_some) {
            true => ends
                .iter()
                .flatten()
                .max()
                .map(|t| seconds(*t - last_publish)),
            false => None,
        };
        // Records the stages failed because an item stayed busy, by outcome label.
        let contended = pipeline
            .mappings
            .iter()
            .map(|m| {
                m.mapping
                    .snapshot()
                    .by_outcome
                    .get("contended")
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        // Dead letters: the records the stages' DLQ handlers received, and the intake's DLQ.
        let mut dead_letters =
            order_local::alarm::depth(&pipeline.clients.sqs, &pipeline.stack.dlq_url).await?;
        for f in order_pipeline::registry::functions() {
            if f.dead_letters_of.is_some() {
                dead_letters += pipeline.stats(f.name).records;
            }
        }
        let (conflicts, requests) = pipeline.faults.as_ref().map_or((0, 0), |p| {
            (
                p.stats.transaction_conflicts.load(Relaxed),
                p.stats.requests.load(Relaxed),
            )
        });
        Ok(Figures {
            orders: items.len(),
            by_status,
            to_terminal,
            latency: Latency::of(items),
            conflicts,
            contended,
            dead_letters,
            requests,
        })
    }

    fn render(&self, sale: &FlashSale, hot_units: u64) -> String {
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let per_order = |n: u64| n as f64 / self.orders.max(1) as f64;
        format!(
            "{} orders ({} hot, {hot_units} hot units), {}
  every order terminal        {} after the last publish
{}  transaction conflicts       {} ({:.2} per order)
  records that waited because of a conflict (RecordsContended)   {}
  dead letters                {}
  AWS calls of the functions  {} ({:.1} per order)
  (RecordsContended: records a stage failed because an item stayed busy after its own tries, {}; each waited its queue's retry delay)",
            self.orders,
            sale.orders,
            statuses.join(", "),
            match self.to_terminal {
                Some(s) => format!("{s:.1} s"),
                None => "NOT ALL (see the checks)".into(),
            },
            self.latency.render(),
            self.conflicts,
            per_order(self.conflicts),
            self.contended,
            self.dead_letters,
            self.requests,
            per_order(self.requests),
            match sale.conflict_tries {
                Some(t) => format!("TRANSACTION_CONFLICT_TRIES={t}"),
                None => format!(
                    "{} sends by default",
                    order_pipeline::adapters::dynamodb::inventory::CONFLICT_TRIES
                ),
            },
        )
    }
}

/// The invariants, from the tables and the provider's ledger: each (passed, what it checks).
fn check(
    pipeline: &LocalPipeline,
    planned: &[Planned],
    items: &[OrderItem],
    before: &BTreeMap<String, order_domain::InventoryItem>,
    after: &BTreeMap<String, order_domain::InventoryItem>,
    prices: &BTreeMap<String, Decimal>,
) -> Vec<(bool, String)> {
    let mut checks = Vec::new();
    let stored: BTreeMap<&str, &OrderItem> =
        items.iter().map(|i| (i.order_id.as_str(), i)).collect();
    let missing = planned
        .iter()
        .filter_map(|p| p.order_id.as_deref())
        .filter(|id| !stored.contains_key(id))
        .count();
    checks.push((
        missing == 0 && items.len() == planned.len(),
        format!(
            "every published order stored once ({} stored of {}, {missing} missing)",
            items.len(),
            planned.len()
        ),
    ));
    let open: Vec<&str> = items
        .iter()
        .filter(|i| ended_at(i).is_none())
        .map(|i| i.order_id.as_str())
        .take(5)
        .collect();
    checks.push((
        open.is_empty(),
        format!("every order terminal (not ended, first 5: {open:?})"),
    ));
    for sku in HOT_SKUS {
        let (b, a) = (&before[*sku], &after[*sku]);
        // The units of this sku in the orders of `status`.
        let units = |status: OrderStatus| -> u64 {
            items
                .iter()
                .filter(|i| i.status == status)
                .flat_map(|i| &i.items)
                .filter(|l| l.sku.as_deref() == Some(*sku))
                .map(|l| u64::from(l.quantity))
                .sum()
        };
        let completed = units(OrderStatus::Completed);
        checks.push((
            a.available + a.reserved + a.sold == b.available + b.reserved + b.sold
                && a.reserved == 0
                && a.sold == completed,
            format!(
                "{sku}: units conserved ({} + {} + {} = {}), none left reserved, sold = the {completed} units of its COMPLETED orders (none oversold)",
                a.available,
                a.reserved,
                a.sold,
                b.available + b.reserved + b.sold
            ),
        ));
        // None undersold: an order refused for want of stock leaves less than it asked for.
        let smallest_refused = items
            .iter()
            .filter(|i| i.status == OrderStatus::Rejected)
            .flat_map(|i| &i.items)
            .filter(|l| l.sku.as_deref() == Some(*sku))
            .map(|l| u64::from(l.quantity))
            .min();
        checks.push((
            smallest_refused.is_none_or(|q| a.available < q),
            format!(
                "{sku}: none undersold ({} left, the smallest order refused for want of it: {smallest_refused:?})",
                a.available
            ),
        ));
    }
    // No declines or provider outages in a sale: an order ends COMPLETED, or REJECTED for want
    // of stock (a settle that kept meeting conflicts until its attempts ran out would end
    // PAYMENT_FAILED).
    let otherwise: Vec<&str> = items
        .iter()
        .filter(|i| !matches!(i.status, OrderStatus::Completed | OrderStatus::Rejected))
        .map(|i| i.order_id.as_str())
        .take(5)
        .collect();
    checks.push((
        otherwise.is_empty(),
        format!("every order COMPLETED or REJECTED (others, first 5: {otherwise:?})"),
    ));
    let sold_out = items
        .iter()
        .filter(|i| i.status == OrderStatus::Rejected)
        .filter(|i| i.rejection.as_ref().and_then(|r| r.code) != Some(RejectionCode::OutOfStock))
        .count();
    checks.push((
        sold_out == 0,
        format!("every REJECTED order was out of stock ({sold_out} rejected otherwise)"),
    ));
    // The provider's ledger (one entry per payment key, `<orderId>:payment`: a second charge of
    // an order is answered from it, never made): charged if and only if COMPLETED, at the
    // catalogue's price.
    let ledger = pipeline.provider.ledger();
    let mut charged: BTreeMap<&str, Vec<&order_local::provider::LedgerEntry>> = BTreeMap::new();
    for e in ledger.iter().filter(|e| e.approved) {
        charged.entry(e.order_id.as_str()).or_default().push(e);
    }
    let wrong: Vec<String> = items
        .iter()
        .filter_map(|i| {
            let charges = charged.get(i.order_id.as_str()).map_or(0, Vec::len);
            let want = usize::from(i.status == OrderStatus::Completed);
            let price_ok = charged.get(i.order_id.as_str()).is_none_or(|c| {
                c.iter().all(|e| {
                    e.amount.parse::<Decimal>().ok() == expected_amount(i, prices)
                        && e.currency == "USD"
                })
            });
            (charges != want || !price_ok).then(|| i.order_id.clone())
        })
        .take(5)
        .collect();
    checks.push((
        wrong.is_empty(),
        format!("a charge for each COMPLETED order at the catalogue's price, none for the others (wrong, first 5: {wrong:?})"),
    ));
    checks
}

/// An order's amount at the catalogue's prices (a line names its sku, or a product's name).
fn expected_amount(i: &OrderItem, prices: &BTreeMap<String, Decimal>) -> Option<Decimal> {
    let mut total = Decimal::ZERO;
    for line in &i.items {
        let key = line.sku.as_deref().or(line.name.as_deref())?;
        total += *prices.get(key)? * Decimal::from(line.quantity);
    }
    Some(total)
}
