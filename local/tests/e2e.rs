//! End to end on the emulator: 1,000+ generated orders with duplicates, conflicting reuses of
//! ids and invalid payloads go through SNS -> SQS -> the event source mapping -> order-consumer
//! -> DynamoDB, with the DLQ and the alarm, then through the Orders stream, order-events and the
//! inventory stage against a catalogue where some skus run out (many orders compete for their
//! last units). Every message must be accounted for: stored once, dropped as a duplicate, or in
//! the DLQ; every stored order ends RESERVED or REJECTED; and from the tables alone: per sku,
//! initial stock = available + reserved + sold, nothing negative, and each reserved order's
//! units reserved exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use order_domain::{parse_body, OrderStatus};
use order_local::generate::{generate, Intent, Mix};
use order_local::inventory::{load, scan, Product};
use order_local::pipeline::{LocalPipeline, Options};
use order_local::report::scan_orders;
use order_local::template::Template;
use order_pipeline::telemetry::Captured;

const ORDERS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_thousand_orders_is_accounted_for_and_none_is_written_twice() {
    let template = Template::current().expect("the stack's template synthesizes");
    let pipeline = LocalPipeline::boot(
        &template,
        Options {
            endpoint: None,
            retry_after_seconds: Some(1),
            telemetry: Arc::new(Captured::default()),
            prefix: "e2e".into(),
            alarm_interval: Duration::from_secs(1),
            provider: Default::default(),
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
    let products: Vec<Product> = initial
        .iter()
        .map(|(sku, available)| Product {
            sku: sku.to_string(),
            available: *available,
            name: None,
            unit_price: Some("10.00".into()),
            currency: Some("USD".into()),
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

    let mix = Mix {
        duplicates: 0.06,
        conflicts: 0.03,
        invalid: 0.04,
    };
    let planned = generate(ORDERS, mix, 2024, "e2e");
    let drained = pipeline
        .publish_and_drain(&planned, Duration::from_secs(600), |d| {
            eprintln!(
                "e2e: {} queued, {} in DLQ, {} records processed, {}s",
                d.queue,
                d.dlq,
                d.records,
                d.elapsed.as_secs()
            );
        })
        .await
        .expect("publish and drain");
    assert!(drained, "the order queue drained");
    let summary = pipeline.summary(&planned).await.expect("summary");
    eprintln!(
        "{}",
        order_local::report::render(&summary, &pipeline.stack, "(captured)")
    );

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
        ORDERS,
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
    assert_eq!(
        items.len(),
        valid_ids.len(),
        "one item per distinct valid order id"
    );
    // Every order moved on from ACCEPTED exactly once: RESERVED or REJECTED at version 2.
    let mut by_status: BTreeMap<OrderStatus, usize> = BTreeMap::new();
    for i in &items {
        *by_status.entry(i.status).or_default() += 1;
        assert!(
            matches!(i.status, OrderStatus::Reserved | OrderStatus::Rejected) && i.version == 2,
            "{} is {:?} at version {}",
            i.order_id,
            i.status,
            i.version
        );
    }
    eprintln!("e2e: orders by status {by_status:?}");
    assert!(
        by_status.get(&OrderStatus::Rejected).copied().unwrap_or(0) > 0
            && by_status.get(&OrderStatus::Reserved).copied().unwrap_or(0) > 0,
        "the scarce skus ran out for some orders: {by_status:?}"
    );

    // From the tables alone: stock is conserved and reserved exactly once per reserved order.
    let stock = scan(&pipeline.clients.dynamodb, &inventory_table)
        .await
        .expect("scan Inventory");
    let mut reserved_by_orders: BTreeMap<String, u64> = BTreeMap::new();
    for i in items.iter().filter(|i| i.status == OrderStatus::Reserved) {
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
        for r in reservation {
            *reserved_by_orders.entry(r.sku.clone()).or_default() += u64::from(r.quantity);
        }
    }
    for (sku, initial) in &initial {
        let item = &stock[*sku];
        assert_eq!(
            item.available + item.reserved + item.sold,
            *initial,
            "{sku}: units conserved"
        );
        assert_eq!(
            item.reserved,
            reserved_by_orders.get(*sku).copied().unwrap_or(0),
            "{sku}: each reserved order's units reserved exactly once"
        );
    }
    assert_eq!(stock["LAPTOP-15"].available, 0, "the scarce sku ran out");
    for i in items.iter().filter(|i| i.status == OrderStatus::Rejected) {
        let r = i.rejection.as_ref().expect("a rejected order says why");
        assert!(
            r.reason.contains("not enough stock"),
            "{}: {}",
            i.order_id,
            r.reason
        );
    }
    let stored_hash: HashMap<&str, &str> = items
        .iter()
        .map(|i| (i.order_id.as_str(), i.content_hash.as_str()))
        .collect();
    // A message belongs in the DLQ exactly when it is invalid or its content differs from the
    // stored order's (which of two conflicting messages wins depends on arrival order).
    let expected_dlq = planned
        .iter()
        .filter(|p| match parse_body(&p.body).order {
            Err(_) => true,
            Ok((o, _)) => stored_hash.get(o.order_id.as_str()) != Some(&o.content_hash().as_str()),
        })
        .count();
    assert_eq!(summary.dead_letters.len(), expected_dlq);
    let invalid = planned
        .iter()
        .filter(|p| p.intent == Intent::Invalid)
        .count();
    assert!(
        invalid > 0 && expected_dlq > invalid,
        "the run had invalid and conflicting messages"
    );

    // The DLQ alarm fired and dlq-alarm looked at the DLQ.
    let transitions = pipeline.alarms.transitions();
    let fired = transitions
        .iter()
        .find(|t| t.to == "ALARM" && t.alarm_name == pipeline.stack.dlq_alarm_name)
        .expect("the DLQ alarm fired");
    let seen = fired.summary.as_ref().expect("dlq-alarm ran")["messagesSeen"]
        .as_u64()
        .unwrap_or(0);
    assert!(seen >= 1, "dlq-alarm saw the DLQ's messages");
    pipeline.shutdown().await;
}
