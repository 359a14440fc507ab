//! The end-to-end run shared by the end-to-end test (no faults) and the soak (faults on).
//! Every invariant is asserted from the tables, the provider's ledger and the customers' inbox.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use order_domain::{parse_body, OrderStatus, PaymentResult, RejectionCode};
use order_local::faults::FaultRates;
use order_local::generate::{generate, Intent, Mix, Planned};
use order_local::inventory::{load, scan, Product};
use order_local::pipeline::{LocalPipeline, Options, LOCAL_SCHEDULE_EVERY};
use order_local::report::scan_orders;
use order_local::template::Template;
use rust_decimal::Decimal;

mod cancels;

/// Orders from customers the fake provider always answers 503.
pub const FLAKY: usize = 4;
/// Orders of a sku whose Inventory item another system wrote without `reserved`, `sold` and
/// `version`: the inventory stage fails on them until they are dead-lettered, and inventory-dlq
/// ends them REJECTED (`dead_lettered`). The fault runs (the soak) carry them; the end-to-end
/// run does not (their DLQ's alarms held its drain for about a minute, and one run covers them).
pub const POISONED: usize = 3;
/// That sku.
const FOREIGN_SKU: &str = "FOREIGN-1";
/// Orders of customers no notification can reach: the fault proxy fails every customer
/// notification naming them (the publish carries the customer as its `customerId` attribute), so
/// the notification stage fails on them until they are dead-lettered, and notification-dlq ends
/// each order with `notificationFailure` recorded (a paid one COMPLETED). The fault runs carry
/// them, with the poisoned ones.
pub const UNNOTIFIABLE: usize = 3;
/// Every request holding both: a customer notification (its `customerId` attribute, as the SNS
/// Query body has it) to one of those customers. The lifecycle events name the customer only in
/// their JSON body, URL-encoded, never so.
const UNNOTIFIABLE_PUBLISH: &[&str] = &["Name=customerId", "StringValue=unnotifiable-"];

/// The soak's transaction-conflict window (the emulator's MOTO_TRANSACTION_CONFLICT_MS).
const SOAK_CONFLICT_WINDOW: Duration = Duration::from_millis(20);

/// One in this many generated new orders is cancelled during the run.
const CANCEL_EVERY: usize = 12;

/// What a run did, for the soak's report.
#[derive(Debug)]
#[allow(dead_code)] // each test binary reads its part (the soak prints them all)
pub struct Figures {
    pub orders: usize,
    pub by_status: BTreeMap<OrderStatus, usize>,
    pub charges: u64,
    pub notifications: usize,
    pub dead_letters: usize,
    pub faults: Option<String>,
    pub faults_injected: u64,
    /// Transactions the emulator cancelled with TransactionConflict (the soak's contention).
    pub transaction_conflicts: u64,
    /// Invocations killed mid-batch, over every queue-fed function.
    pub kills: u64,
    pub seconds: u64,
}

/// Runs `orders` generated orders (with duplicates, conflicts, invalid payloads and a few
/// customers the provider never answers) through the whole pipeline on moto, with `faults`
/// between the functions and the emulator, and asserts every invariant of the lifecycle from the
/// tables, the provider's ledger and the customers' inbox. Returns the running pipeline (the
/// caller shuts it down) and the run's figures.
pub async fn lifecycle_run(
    orders: usize,
    faults: Option<FaultRates>,
    prefix: &str,
) -> (LocalPipeline, Figures) {
    let started = std::time::Instant::now();
    let faulty = faults.is_some();
    let poisoned_orders = if faulty { POISONED } else { 0 };
    let unnotifiable_orders = if faulty { UNNOTIFIABLE } else { 0 };
    let faults = faults.map(|f| FaultRates {
        fail_bodies_with: UNNOTIFIABLE_PUBLISH,
        ..f
    });
    let template = Template::current().expect("the stack's template synthesizes");
    // The functions' lines go to a file the report names, so a failed run can be traced.
    let log = order_local::state_dir().join(format!("{prefix}-functions.log"));
    let telemetry: Arc<order_local::FileLines> =
        Arc::new(order_local::FileLines::create(&log).expect("the run's log file"));
    // The functions' log lines (a failed record's WARN names its correlation id and reason) go
    // there too, not only their metric lines. One subscriber per test process: the first run's.
    order_pipeline::runtime::telemetry::init_logging("order-local", telemetry.clone());
    // init_logging sends panics to the log, as a function's must go; a failed assertion of this
    // test belongs on the terminal: the default hook back.
    drop(std::panic::take_hook());
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            endpoint: None,
            retry_after_seconds: Some(1),
            telemetry,
            prefix: prefix.into(),
            alarm_interval: Duration::from_secs(1),
            schedule_every: Some(LOCAL_SCHEDULE_EVERY),
            provider: order_local::provider::ProviderRates {
                decline: 0.05,
                unavailable: 0.20,
                unavailable_prefix: Some("flaky-".into()),
                latency: Duration::from_millis(2),
                // Unknown outcomes (issue 30): 5% of new charges are made and then answered
                // after the payment stage's timeout (1 s here), on every attempt; the stage must
                // find them by lookup (the ledger checks below fail an order left
                // PAYMENT_FAILED with a charge standing).
                late: 0.05,
                late_by: Duration::from_millis(1500),
                // And 2% of new charges are made and then their connection is closed without an
                // answer (every attempt): unknown outcomes reached by a lost connection, not a
                // timeout. With the late ones, 7% of new charges have unknown outcomes.
                drop: 0.02,
                ..Default::default()
            },
            payment_timeout: Some(Duration::from_secs(1)),
            faults,
            bootstraps: None,
            stuck_after: None,
            trace_daemon: None,
            // The soak runs with contention as DynamoDB has it (issue 33): a transaction naming
            // an item another one committed within 20 ms is cancelled (TransactionConflict), so
            // the reservations of a scarce sku and the settling writes conflict, and the stages'
            // in-process retries and SQS's redeliveries carry them.
            transaction_conflict: faulty.then_some(SOAK_CONFLICT_WINDOW),
            environment: Vec::new(),
        },
    )
    .await
    .expect("pipeline boots on moto (run `make setup` if moto_server is missing)");

    // Scarce skus: orders compete for their last units; the rest (and the product names that
    // flat-form orders reserve against) are plentiful.
    let scarce: BTreeMap<&str, u64> = [("LAPTOP-15", 40), ("MON-27", 25)].into();
    let initial: BTreeMap<&str, u64> = order_local::generate::SKUS
        .iter()
        .flat_map(|(sku, name, _)| {
            [
                (*sku, scarce.get(sku).copied().unwrap_or(100_000)),
                (*name, 100_000),
            ]
        })
        .collect();
    // The catalogue's prices: the generator's (its orders expect them), a product's name
    // (what a flat order reserves against) at its sku's price.
    let catalogue: BTreeMap<&str, Decimal> = order_local::generate::SKUS
        .iter()
        .flat_map(|(sku, name, price)| {
            let price: Decimal = price.parse().expect("the generator's prices are decimals");
            [(*sku, price), (*name, price)]
        })
        .collect();
    let products: Vec<Product> = initial
        .iter()
        .map(|(sku, available)| Product {
            unit_price: Some(catalogue[sku].to_string()),
            currency: Some("USD".into()),
            ..Product::for_sale(sku, *available)
        })
        .collect();
    let inventory_table = pipeline
        .stack
        .inventory_table_name
        .clone()
        .expect("the stack has an Inventory table");
    load(&pipeline.clients.dynamodb, &inventory_table, &products)
        .await
        .expect("catalogue loads");
    let foreign_item = HashMap::from([
        ("sku".to_string(), AttributeValue::S(FOREIGN_SKU.into())),
        ("available".to_string(), AttributeValue::N("50".into())),
    ]);
    pipeline
        .clients
        .dynamodb
        .put_item()
        .table_name(&inventory_table)
        .set_item(Some(foreign_item.clone()))
        .send()
        .await
        .expect("the foreign item is written");

    // 10% duplicates (redelivery and publishers retrying); conflicting reuses of an id and
    // invalid payloads at 3% and 4%, so the DLQ's paths carry load too.
    let mix = Mix {
        duplicates: 0.10,
        conflicts: 0.03,
        invalid: 0.04,
    };
    let mut planned = generate(
        orders - FLAKY - poisoned_orders - unnotifiable_orders,
        mix,
        2024,
        prefix,
    );
    // Customers changing their minds: one in CANCEL_EVERY of the generated new orders is
    // cancelled through the API as soon as it is stored, once reserved, or once ended, while the
    // run goes on (the special orders below keep their own ends).
    let chosen = cancels::choose(&planned, CANCEL_EVERY, 31);
    // Customers the provider never answers: their orders use up every payment attempt.
    planned.extend((0..FLAKY).map(|n| Planned {
        correlation_id: format!("{prefix}-flaky-{n}"),
        body: serde_json::json!({"orderId": format!("FLAKY-{n}"), "customerId": format!("flaky-{n}"),
            "currency": "USD", "items": [{"sku": "CABLE-C", "quantity": 1}]})
        .to_string(),
        order_id: Some(format!("FLAKY-{n}")),
        intent: Intent::New,
    }));
    planned.extend((0..poisoned_orders).map(|n| Planned {
        correlation_id: format!("{prefix}-poisoned-{n}"),
        body: serde_json::json!({"orderId": format!("POISONED-{n}"), "customerId": format!("poisoned-{n}"),
            "currency": "USD", "items": [{"sku": "CABLE-C", "quantity": 1}, {"sku": FOREIGN_SKU, "quantity": 1}]})
        .to_string(),
        order_id: Some(format!("POISONED-{n}")),
        intent: Intent::New,
    }));
    planned.extend((0..unnotifiable_orders).map(|n| Planned {
        correlation_id: format!("{prefix}-unnotifiable-{n}"),
        body: serde_json::json!({"orderId": format!("UNNOTIFIABLE-{n}"), "customerId": format!("unnotifiable-{n}"),
            "currency": "USD", "items": [{"sku": "CABLE-C", "quantity": 1}]})
        .to_string(),
        order_id: Some(format!("UNNOTIFIABLE-{n}")),
        intent: Intent::New,
    }));
    // A key rotation mid-run (issue 30), the harsh way round: the provider retires the old key
    // first, and the payment secret holds the new one half a second later. The functions keep
    // the key 5 minutes, so every charge after the rotation went through by reading the secret
    // again at the provider's 401.
    let rotation = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        // Every call before the rotation used the right key.
        let refused_before = pipeline.provider.stats().unauthorized;
        let key = pipeline.provider.rotate_key();
        let approved_before = pipeline.provider.stats().approved;
        tokio::time::sleep(Duration::from_millis(500)).await;
        pipeline
            .clients
            .secrets
            .put_secret_value()
            .secret_id(format!("{prefix}-payment-api-key"))
            .secret_string(serde_json::json!({ "apiKey": key }).to_string())
            .send()
            .await
            .expect("the new key is stored in the payment secret");
        (approved_before, refused_before)
    };
    let drain_for = Duration::from_secs(600.max(orders as u64 / 2));
    let progress = |d: order_local::pipeline::Drain| {
        eprintln!(
            "{prefix}: {} queued, {} in DLQ, {} records processed, {}s",
            d.queue,
            d.dlq,
            d.records,
            d.elapsed.as_secs()
        );
    };
    let (drained, (approved_before_rotation, refused_before_rotation), cancelled) = tokio::join!(
        pipeline.publish_and_drain(&planned, drain_for, progress),
        rotation,
        cancels::cancel_at_points(&pipeline, &chosen, drain_for)
    );
    let drained = drained.expect("publish and drain");
    assert!(drained, "the order queue drained");
    assert_eq!(
        cancelled.len(),
        chosen.len(),
        "every chosen order got an answer to its cancel: {cancelled:?}"
    );
    // The cancels sent last (after completion) are settled by the refund stage after them.
    assert!(
        pipeline
            .wait_until_drained(drain_for, progress)
            .await
            .expect("drain after the cancels"),
        "the queues drained after the cancels"
    );
    assert!(
        pipeline.provider.stats().approved > approved_before_rotation,
        "charges went through with the rotated key ({:?})",
        pipeline.provider.stats()
    );
    let summary = pipeline.summary(&planned).await.expect("summary");
    eprintln!(
        "{}",
        order_local::report::render(&summary, &pipeline.stack, &log.display().to_string())
    );

    assert_eq!(
        summary.dlq_unread, 0,
        "the report read the whole DLQ (messages hidden past the wait would read as lost)"
    );
    if !summary.unaccounted.is_empty() {
        // What order-consumer answered on each receive of each (the outcomes the report used).
        let outcomes = pipeline.stats("order-consumer").outcomes;
        for id in &summary.unaccounted {
            eprintln!(
                "unaccounted {id}: receives answered {:?}",
                outcomes.get(id).map(Vec::as_slice).unwrap_or_default()
            );
        }
    }
    assert!(
        summary.unaccounted.is_empty(),
        "lost messages: {:?}",
        summary.unaccounted
    );
    assert!(
        summary.double_written.is_empty(),
        "written twice: {:?}",
        summary.double_written
    );
    let items_now = scan_orders(&pipeline.clients, &pipeline.stack.table_name)
        .await
        .unwrap();
    for id in &summary.wrong_content {
        let stored = items_now.iter().find(|i| &i.order_id == id);
        eprintln!(
            "wrong content {id}: stored {:?}",
            stored.map(|i| (&i.status, i.version, &i.content_hash))
        );
        for p in planned
            .iter()
            .filter(|p| p.order_id.as_deref() == Some(id.as_str()))
        {
            eprintln!(
                "  planned {} {:?} hash {:?}",
                p.correlation_id,
                p.intent,
                parse_body(&p.body)
                    .order
                    .ok()
                    .map(|(o, _)| o.content_hash())
            );
        }
    }
    assert!(
        summary.wrong_content.is_empty(),
        "stored with the wrong content: {:?}",
        summary.wrong_content
    );
    assert_eq!(
        summary.stored_by_message + summary.duplicates_dropped + summary.dead_letters.len(),
        orders,
        "each message ends in exactly one place"
    );

    // Independently of the runner's bookkeeping: what the table and the DLQ hold.
    let items = scan_orders(&pipeline.clients, &pipeline.stack.table_name)
        .await
        .unwrap();
    let valid_ids: HashSet<&str> = planned
        .iter()
        .filter(|p| p.intent != Intent::Invalid)
        .filter_map(|p| p.order_id.as_deref())
        .collect();
    // Each message's outcome on every receive, as the runner's event source mapping saw it.
    let outcomes = pipeline.stats("order-consumer").outcomes;
    if items.len() != valid_ids.len() {
        // Say what became of each message of an order that has no item.
        let stored: HashSet<&str> = items.iter().map(|i| i.order_id.as_str()).collect();
        let mut missing: Vec<&&str> = valid_ids
            .iter()
            .filter(|id| !stored.contains(**id))
            .collect();
        missing.sort();
        for id in missing {
            eprintln!("no item for order {id}; its messages:");
            for p in planned
                .iter()
                .filter(|p| p.order_id.as_deref() == Some(*id))
            {
                let dead = summary
                    .dead_letters
                    .iter()
                    .find(|d| d.correlation_id == p.correlation_id)
                    .map(|d| d.reason.as_str());
                eprintln!(
                    "  {} {:?}: outcomes {:?}, DLQ {:?}",
                    p.correlation_id,
                    p.intent,
                    outcomes.get(&p.correlation_id),
                    dead
                );
            }
        }
    }
    assert_eq!(
        items.len(),
        valid_ids.len(),
        "one item per distinct valid order id (see the lines above for the missing ones, and {})",
        log.display()
    );
    // Every order ended: COMPLETED (v4: reserved, paid, completed), REJECTED (v2) or
    // PAYMENT_FAILED (v3); a cancelled one CANCELLED at once (v2, from ACCEPTED) or through
    // CANCELLING (two changes after the one it was cancelled at), each change made once.
    let mut by_status: BTreeMap<OrderStatus, usize> = BTreeMap::new();
    let version_at = |status: OrderStatus| match status {
        OrderStatus::Accepted => 1,
        OrderStatus::Reserved | OrderStatus::Rejected => 2,
        OrderStatus::Paid | OrderStatus::PaymentFailed => 3,
        OrderStatus::Completed => 4,
        other => panic!("no order is cancelled from {other:?}"),
    };
    for i in &items {
        *by_status.entry(i.status).or_default() += 1;
        let from = i.cancellation.as_ref().map(|c| c.from);
        let expected_version = match (i.status, from) {
            (OrderStatus::Cancelled, Some(OrderStatus::Accepted)) => 2,
            (OrderStatus::Cancelled | OrderStatus::Refunded, Some(from)) => version_at(from) + 2,
            (OrderStatus::Completed, None) => 4,
            (OrderStatus::Rejected, None) => 2,
            (OrderStatus::PaymentFailed, None) => 3,
            // Stored by dlq-alarm after the consumer failed it on every receive (faults).
            (OrderStatus::Failed, None) => 1,
            (other, _) => panic!(
                "{} is {other:?} (cancelled from {from:?}), not terminal",
                i.order_id
            ),
        };
        assert_eq!(
            i.version, expected_version,
            "{} at version {}",
            i.order_id, i.version
        );
    }
    eprintln!("{prefix}: orders by status {by_status:?}");
    // Every cancel the API took ended CANCELLED or REFUNDED; one it refused was of an order
    // that had ended without a sale (or had been cancelled at that point already).
    let status_of: HashMap<&str, OrderStatus> = items
        .iter()
        .map(|i| (i.order_id.as_str(), i.status))
        .collect();
    for (id, cancel) in &cancelled {
        let now = status_of.get(id.as_str()).copied();
        match cancel.status {
            200 | 202 => assert!(
                matches!(now, Some(OrderStatus::Cancelled | OrderStatus::Refunded)),
                "{id}: cancelled ({cancel:?}) but {now:?}"
            ),
            _ => assert!(
                order_domain::cancel_from(now.unwrap_or(OrderStatus::Failed)).is_none(),
                "{id}: the cancel was refused ({cancel:?}) but the order is {now:?}"
            ),
        }
    }
    let points: BTreeMap<String, usize> = cancelled.values().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(format!("{:?}@{:?}->{}", c.point, c.seen, c.status))
            .or_default() += 1;
        m
    });
    eprintln!("{prefix}: cancels {points:?}");
    for status in [
        OrderStatus::Completed,
        OrderStatus::Rejected,
        OrderStatus::PaymentFailed,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ] {
        assert!(
            by_status.get(&status).copied().unwrap_or(0) > 0,
            "some orders end {status:?}: {by_status:?}"
        );
    }

    // The orders of the foreign item ended REJECTED by inventory-dlq, the error naming the
    // item; the item is as it was written (then removed, so that the Inventory reads below).
    let poisoned: Vec<_> = items
        .iter()
        .filter(|i| i.order_id.starts_with("POISONED-"))
        .collect();
    assert_eq!(poisoned.len(), poisoned_orders);
    for i in &poisoned {
        let r = i.rejection.as_ref().expect("rejected with its rejection");
        assert_eq!(
            (i.status, r.code),
            (OrderStatus::Rejected, Some(RejectionCode::DeadLettered)),
            "{}: {r:?}",
            i.order_id
        );
        let error = r.error.as_deref().unwrap_or_default();
        assert!(error.contains(FOREIGN_SKU), "{}: {error}", i.order_id);
    }
    let foreign_key = HashMap::from([("sku".to_string(), AttributeValue::S(FOREIGN_SKU.into()))]);
    let foreign_now = pipeline
        .clients
        .dynamodb
        .delete_item()
        .table_name(&inventory_table)
        .set_key(Some(foreign_key))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
        .expect("the foreign item is removed");
    assert_eq!(
        foreign_now.attributes(),
        Some(&foreign_item),
        "the foreign item untouched"
    );

    // From the tables alone: stock is conserved, nothing is left reserved, and what is sold is
    // exactly the completed orders' reservations (each order's lines, merged per sku).
    let stock = scan(&pipeline.clients.dynamodb, &inventory_table)
        .await
        .expect("scan Inventory (a negative count would not read as a whole number)");
    let mut sold_by_orders: BTreeMap<String, u64> = BTreeMap::new();
    for i in &items {
        let cancelled_unreserved = i.status == OrderStatus::Cancelled
            && i.cancellation.as_ref().map(|c| c.from) == Some(OrderStatus::Accepted);
        if matches!(i.status, OrderStatus::Rejected | OrderStatus::Failed) || cancelled_unreserved {
            assert!(
                i.reservation.is_none(),
                "{}: rejected orders and those cancelled before their reservation reserve nothing",
                i.order_id
            );
            continue;
        }
        let reservation = i
            .reservation
            .as_ref()
            .expect("a reserved order has its reservation");
        let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
        for line in &i.items {
            let sku = line.sku.clone().or(line.name.clone()).unwrap_or_default();
            *wanted.entry(sku).or_default() += u64::from(line.quantity);
        }
        let got: BTreeMap<String, u64> = reservation
            .iter()
            .map(|r| (r.sku.clone(), u64::from(r.quantity)))
            .collect();
        assert_eq!(
            got, wanted,
            "{}: the reservation is the order's lines",
            i.order_id
        );
        if i.status == OrderStatus::Completed {
            for r in reservation {
                *sold_by_orders.entry(r.sku.clone()).or_default() += u64::from(r.quantity);
            }
        }
    }
    for (sku, initial) in &initial {
        let item = &stock[*sku];
        assert_eq!(
            item.available + item.reserved + item.sold,
            *initial,
            "{sku}: units conserved"
        );
        assert_eq!(item.reserved, 0, "{sku}: nothing left reserved when idle");
        assert_eq!(
            item.sold,
            sold_by_orders.get(*sku).copied().unwrap_or(0),
            "{sku}: sold = the completed orders' units, each sold once (a cancelled or refunded order's back to available)"
        );
    }
    // The scarce sku ran out while orders competed for it (some of its units may be back in
    // stock since: a failed payment releases its reservation).
    assert!(
        items.iter().any(|i| i
            .rejection
            .as_ref()
            .is_some_and(|r| r.sku.as_deref() == Some("LAPTOP-15"))),
        "some orders were rejected for the scarce sku"
    );
    for i in items
        .iter()
        .filter(|i| i.status == OrderStatus::Rejected && !i.order_id.starts_with("POISONED-"))
    {
        let r = i.rejection.as_ref().expect("a rejected order says why");
        assert!(
            r.reason.contains("not enough stock"),
            "{}: {}",
            i.order_id,
            r.reason
        );
    }

    // From the provider's ledger (charges and refunds): no charge or refund without a
    // currency; at most one approved charge per order; per order, approved minus refunded is the
    // order's amount when it is COMPLETED (or PAID), else 0; a COMPLETED order's charge is the
    // catalogue's amount in its currency, under the payment id on its record.
    let ledger = pipeline.provider.ledger();
    let refunds = pipeline.provider.refunds();
    for e in &ledger {
        assert!(!e.currency.is_empty(), "a charge without a currency: {e:?}");
    }
    for r in &refunds {
        assert!(!r.currency.is_empty(), "a refund without a currency: {r:?}");
    }
    let mut approved: BTreeMap<&str, Vec<&order_local::provider::LedgerEntry>> = BTreeMap::new();
    for e in ledger.iter().filter(|e| e.approved) {
        approved.entry(e.order_id.as_str()).or_default().push(e);
    }
    for (order, charges) in &approved {
        assert_eq!(charges.len(), 1, "{order} charged {} times", charges.len());
    }
    let money =
        |amount: &str| -> Decimal { amount.parse().expect("the ledger's amounts are decimals") };
    let mut net: BTreeMap<&str, Decimal> = BTreeMap::new();
    for e in ledger.iter().filter(|e| e.approved) {
        *net.entry(e.order_id.as_str()).or_default() += money(&e.amount);
    }
    for r in refunds.iter().filter(|r| r.refunded) {
        *net.entry(r.order_id.as_str()).or_default() -= money(&r.amount);
    }
    for i in &items {
        let kept = net.get(i.order_id.as_str()).copied().unwrap_or_default();
        let owed = match i.status {
            OrderStatus::Completed | OrderStatus::Paid => {
                money(i.amount.as_deref().expect("a paid order has its amount"))
            }
            _ => Decimal::ZERO,
        };
        assert_eq!(
            kept, owed,
            "{} is {:?}: approved minus refunded is {kept}, not {owed}",
            i.order_id, i.status
        );
        if i.status != OrderStatus::Completed {
            continue;
        }
        let charges = approved.get(i.order_id.as_str()).map_or(0, Vec::len);
        assert_eq!(charges, 1, "{}: one approved charge", i.order_id);
        let charge = approved[i.order_id.as_str()][0];
        assert_eq!(
            Some(&charge.amount),
            i.amount.as_ref(),
            "{}: charged its amount",
            i.order_id
        );
        // The catalogue sets the price, in the order's one currency, with its minor
        // unit (issue 30, findings 1 and 2): whatever the order's own prices said.
        let priced: Decimal = i
            .reservation
            .iter()
            .flatten()
            .map(|r| catalogue[r.sku.as_str()] * Decimal::from(r.quantity))
            .sum();
        let usd = order_domain::Currency::from_code("USD").unwrap();
        assert_eq!(
            (charge.amount.as_str(), charge.currency.as_str()),
            (usd.amount(priced).unwrap().as_str(), "USD"),
            "{}: charged the catalogue's amount in its currency",
            i.order_id
        );
        assert_eq!(i.currency.as_deref(), Some("USD"), "{}", i.order_id);
        let payment = i
            .payment
            .as_ref()
            .expect("a completed order has its payment");
        assert_eq!(payment.payment_id, charge.payment_id, "{}", i.order_id);
    }
    // Every approved charge and refund belongs to a stored order.
    let stored: HashSet<&str> = items.iter().map(|i| i.order_id.as_str()).collect();
    for order in net.keys() {
        assert!(
            stored.contains(order),
            "{order} has money at the provider and no item"
        );
    }
    // The unknown outcomes were injected and resolved by lookup, not by luck.
    let provider = pipeline.provider.stats();
    if items.len() >= 200 {
        assert!(
            provider.late_answers > 0 && provider.dropped_answers > 0 && provider.lookups > 0,
            "charges answered too late, charges whose answers were dropped, and lookups of them: {provider:?}"
        );
    }
    let failed_results: Vec<PaymentResult> = items
        .iter()
        .filter(|i| i.status == OrderStatus::PaymentFailed)
        .map(|i| {
            i.payment
                .as_ref()
                .expect("a failed payment says why")
                .result
        })
        .collect();
    // Under injected faults a flaky order's payment event can also run out of receives before
    // it runs out of attempts (a killed invocation or a failed claim is a receive without a
    // call): payment-dlq then fails it (`dead_lettered`) after asking the provider.
    let used_up = failed_results
        .iter()
        .filter(|r| {
            **r == PaymentResult::AttemptsUsedUp || (faulty && **r == PaymentResult::DeadLettered)
        })
        .count();
    assert!(
        used_up >= FLAKY,
        "the flaky customers' orders used up every attempt: {failed_results:?}"
    );
    assert!(
        failed_results.contains(&PaymentResult::Declined),
        "some payments were declined: {failed_results:?}"
    );
    for i in items.iter().filter(|i| i.order_id.starts_with("FLAKY-")) {
        assert_eq!(i.status, OrderStatus::PaymentFailed, "{}", i.order_id);
        let result = i.payment.as_ref().map(|p| p.result);
        if faulty && result == Some(PaymentResult::DeadLettered) {
            continue;
        }
        // Every attempt used (a counter whose answer was lost counts one more: at least 4).
        let attempts = i.payment.as_ref().and_then(|p| p.attempts).unwrap_or(0);
        assert!(
            attempts >= 4,
            "{}: every attempt used ({attempts})",
            i.order_id
        );
    }
    let stats = pipeline.provider.stats();
    eprintln!("{prefix}: provider {stats:?}");
    // A call in the half second between the key's retirement and the secret's update is
    // refused (401), and only then: the key was right before the rotation.
    assert!(
        stats.unavailable_answers > 0 && refused_before_rotation == 0,
        "{stats:?}, {refused_before_rotation} refused before the rotation"
    );

    // From the customers' inbox: one notification (by dedupe id) per terminal outcome.
    let inbox = pipeline
        .inbox
        .as_ref()
        .expect("the stack has a customer-notifications topic")
        .received(&pipeline.clients)
        .await
        .unwrap();
    let notified: HashSet<String> = inbox.iter().filter_map(|n| n.dedupe_id.clone()).collect();
    // The unreachable customers' orders ended all the same, each with the failure recorded by
    // notification-dlq and no notification sent.
    let unnotifiable: Vec<_> = items
        .iter()
        .filter(|i| i.order_id.starts_with("UNNOTIFIABLE-"))
        .collect();
    assert_eq!(unnotifiable.len(), unnotifiable_orders);
    for i in &unnotifiable {
        let failure = i
            .notification_failure
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no notificationFailure ({:?})", i.order_id, i.status));
        assert!(
            !failure.error.is_empty(),
            "{}: the failure names its error",
            i.order_id
        );
        assert!(
            !notified
                .iter()
                .any(|d| d.starts_with(&format!("{}:", i.order_id))),
            "{}: no notification reached the inbox",
            i.order_id
        );
    }
    if unnotifiable_orders > 0 {
        assert!(
            unnotifiable
                .iter()
                .any(|i| i.status == OrderStatus::Completed),
            "a paid order of an unreachable customer still COMPLETED"
        );
    }
    // A cancelled order's notice; a refunded one's confirmation too when it had COMPLETED (when
    // it was cancelled while PAID, the confirmation may or may not have gone out first).
    let mut expected: HashSet<String> = HashSet::new();
    let mut may_be: HashSet<String> = HashSet::new();
    for i in items
        .iter()
        .filter(|i| i.status != OrderStatus::Failed)
        .filter(|i| !i.order_id.starts_with("UNNOTIFIABLE-"))
    {
        let id = &i.order_id;
        let from = i.cancellation.as_ref().map(|c| c.from);
        let kind = match i.status {
            OrderStatus::Completed => "PaymentSucceeded",
            OrderStatus::Rejected => "OrderRejected",
            OrderStatus::Cancelled => "OrderCancelled",
            OrderStatus::Refunded => "OrderRefunded",
            _ => "PaymentFailed",
        };
        expected.insert(format!("{id}:{kind}"));
        match (i.status, from) {
            (OrderStatus::Refunded, Some(OrderStatus::Completed)) => {
                expected.insert(format!("{id}:PaymentSucceeded"));
            }
            (OrderStatus::Refunded, Some(OrderStatus::Paid)) => {
                may_be.insert(format!("{id}:PaymentSucceeded"));
            }
            _ => {}
        }
    }
    let missing: Vec<_> = expected.difference(&notified).collect();
    let extra: Vec<_> = notified
        .difference(&expected)
        .filter(|n| !may_be.contains(*n))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "one notification per outcome: missing {missing:?}, unexpected {extra:?}"
    );
    eprintln!(
        "{prefix}: {} notifications, {} distinct dedupe ids",
        inbox.len(),
        notified.len()
    );
    let stored_hash: HashMap<&str, &str> = items
        .iter()
        .map(|i| (i.order_id.as_str(), i.content_hash.as_str()))
        .collect();
    // A message belongs in the DLQ exactly when it is invalid, or its content differs from the
    // stored order's (which of two conflicting messages wins depends on arrival order), or it
    // failed on every receive (faults: its order is then FAILED, marked by dlq-alarm's sweep,
    // unless a duplicate message stored it meanwhile).
    let failed_every_time = |p: &Planned| {
        !matches!(
            outcomes
                .get(&p.correlation_id)
                .and_then(|o| o.last())
                .map(String::as_str),
            Some("accepted" | "reaccepted" | "duplicate" | "conflict" | "invalid")
        )
    };
    let mut dead_lettered_valid = 0;
    let expected_dlq = planned
        .iter()
        .filter(|p| match parse_body(&p.body).order {
            Err(_) => true,
            Ok((o, _))
                if stored_hash.get(o.order_id.as_str()) != Some(&o.content_hash().as_str()) =>
            {
                true
            }
            Ok(_) if failed_every_time(p) => {
                dead_lettered_valid += 1;
                true
            }
            Ok(_) => false,
        })
        .count();
    assert_eq!(summary.dead_letters.len(), expected_dlq);
    // Every FAILED order has its message in the DLQ, for an operator to redrive.
    for i in items.iter().filter(|i| i.status == OrderStatus::Failed) {
        assert!(
            summary
                .dead_letters
                .iter()
                .any(|d| d.order_id.as_deref() == Some(i.order_id.as_str())),
            "{} is FAILED but none of its messages is in the DLQ",
            i.order_id
        );
    }
    let sweeps = pipeline.schedules.stats();
    eprintln!(
        "{prefix}: {dead_lettered_valid} valid messages failed on every receive and were dead-lettered; dlq-alarm's scheduled sweeps: {sweeps:?}"
    );
    // The runner ran the stack's schedule: without it, a valid order dead-lettered while the DLQ
    // alarm stays in ALARM is never marked FAILED and has no item.
    assert!(sweeps.invocations > 0, "dlq-alarm's scheduled sweep ran");
    let invalid = planned
        .iter()
        .filter(|p| p.intent == Intent::Invalid)
        .count();
    assert!(
        invalid > 0 && expected_dlq > invalid,
        "the run had invalid and conflicting messages"
    );
    let transaction_conflicts = pipeline.faults.as_ref().map_or(0, |f| {
        f.stats
            .transaction_conflicts
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    if faulty {
        // Every invariant above held with contention on, and there was contention.
        assert!(
            transaction_conflicts > 0,
            "the emulator cancelled no transaction as a conflict: is its contention model on?"
        );
    }
    let figures = Figures {
        orders,
        transaction_conflicts,
        by_status,
        charges: stats.approved,
        notifications: inbox.len(),
        dead_letters: summary.dead_letters.len(),
        faults: pipeline.faults.as_ref().map(|f| f.stats.line()),
        faults_injected: pipeline.faults.as_ref().map_or(0, |f| f.stats.injected()),
        kills: pipeline
            .mappings
            .iter()
            .map(|m| m.mapping.snapshot().killed)
            .sum(),
        seconds: started.elapsed().as_secs(),
    };
    (pipeline, figures)
}
