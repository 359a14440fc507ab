//! The inventory stage's writes on a real DynamoDB API (moto): the reservation's
//! TransactWriteItems, its per-item cancellation reasons, and the conditional REJECTED update.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use order_domain::{LifecycleEvent, OrderItem, OrderStatus, Provenance};
use order_local::emulator::Emulator;
use order_local::inventory::{load, scan, Product};
use order_local::resources::create;
use order_local::template::Template;
use order_local::Clients;
use order_pipeline::config::WorkerConfig;
use order_pipeline::inventory::{DynamoInventory, InventoryStore, InventoryWorker, Reserve};
use order_pipeline::port::PortError;
use order_pipeline::store::TransitionWrite;
use order_pipeline::store::{CreateResult, DynamoStore, OrderStore};
use order_pipeline::telemetry::Captured;
use order_pipeline::worker::SqsWorker;

struct Env {
    _emulator: Emulator,
    clients: Clients,
    orders: DynamoStore,
    inventory_table: String,
}

async fn env(prefix: &str) -> Env {
    let emulator = Emulator::start().expect("moto_server starts (run `make setup`)");
    let clients = Clients::new(&emulator.sdk_config().await, emulator.endpoint());
    let template = Template::current().expect("the stack's template synthesizes");
    let created = create(&clients, &template, prefix)
        .await
        .expect("resources");
    let orders = DynamoStore::new(clients.dynamodb.clone(), created.stack.table_name.clone());
    let inventory_table = created
        .stack
        .inventory_table_name
        .clone()
        .expect("Inventory table");
    Env {
        _emulator: emulator,
        clients,
        orders,
        inventory_table,
    }
}

fn worker(e: &Env) -> SqsWorker<InventoryWorker<DynamoInventory>> {
    SqsWorker::new(
        InventoryWorker::new(DynamoInventory::new(
            e.orders.clone(),
            e.inventory_table.clone(),
        )),
        WorkerConfig {
            max_receive_count: 5,
            record_concurrency: 4,
            start_margin: Duration::from_secs(3),
            answer_reserve: Duration::from_millis(500),
            backoff: None,
            queue_url: None,
            service: "inventory".into(),
        },
        Arc::new(Captured::default()),
    )
}

async fn accepted(e: &Env, id: &str, lines: serde_json::Value) -> OrderItem {
    let body =
        serde_json::json!({"orderId": id, "customerId": "U1", "currency": "USD", "items": lines});
    let (order, _) = order_domain::parse_order(&body.to_string()).unwrap();
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: format!("c-{id}"),
        sent_at: chrono::Utc::now(),
    };
    let item = OrderItem::accepted(&order, &from, chrono::Utc::now());
    assert_eq!(e.orders.create(&item).await.unwrap(), CreateResult::Created);
    item
}

fn event_record(item: &OrderItem) -> SqsMessage {
    let event = LifecycleEvent::from_change(None, item, "2026-01-01T00:00:00Z").unwrap();
    let mut m = SqsMessage::default();
    m.message_id = Some(format!("m-{}", item.order_id));
    m.body = Some(serde_json::to_string(&event).unwrap());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

fn product(sku: &str, available: u64) -> Product {
    Product {
        sku: sku.into(),
        available,
        name: None,
        unit_price: Some("5.00".into()),
        currency: Some("USD".into()),
    }
}

/// Protects: on DynamoDB itself the reservation is one transaction (stock and order together),
/// a short sku is read from the cancellation reasons and named in the rejection with what was
/// available, nothing is reserved for a rejected order, and the same event again changes
/// nothing (the order's condition cancels the transaction; no stock moves twice).
#[tokio::test]
async fn the_reservation_transaction_reserves_rejects_for_stock_and_is_applied_once() {
    let e = env("t1").await;
    load(
        &e.clients.dynamodb,
        &e.inventory_table,
        &[product("A", 3), product("B", 1)],
    )
    .await
    .unwrap();
    let ok = accepted(
        &e,
        "OK1",
        serde_json::json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]),
    )
    .await;
    let short = accepted(
        &e,
        "SHORT1",
        serde_json::json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}]),
    )
    .await;
    let w = worker(&e);

    let (_, reports) = w.handle_records(&[event_record(&ok)]).await.unwrap();
    assert_eq!(reports[0].outcome.label(), "reserved");
    let (_, reports) = w.handle_records(&[event_record(&short)]).await.unwrap();
    assert_eq!(reports[0].outcome.label(), "rejected");

    let stored = e.orders.get("OK1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Reserved, 2));
    assert_eq!(stored.amount.as_deref(), Some("15"));
    assert!(stored.reserved_at.is_some());
    let rejected = e.orders.get("SHORT1").await.unwrap().unwrap();
    assert_eq!(rejected.status, OrderStatus::Rejected);
    let r = rejected.rejection.unwrap();
    assert_eq!(
        (r.sku.as_deref(), r.requested, r.available),
        (Some("B"), Some(1), Some(0))
    );

    let stock = scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap();
    assert_eq!(
        (stock["A"].available, stock["A"].reserved),
        (1, 2),
        "SHORT1 took nothing from A"
    );
    assert_eq!((stock["B"].available, stock["B"].reserved), (0, 1));

    // The same event again: the order's condition fails; nothing moves.
    let (resp, reports) = w.handle_records(&[event_record(&ok)]).await.unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(reports[0].outcome.label(), "duplicate");
    let again = scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap();
    assert_eq!(again["A"], stock["A"]);
    assert_eq!(e.orders.get("OK1").await.unwrap().unwrap().version, 2);
}

/// Protects: an order naming a sku the Inventory table does not have is rejected on DynamoDB
/// through the conditional ACCEPTED -> REJECTED update, once.
#[tokio::test]
async fn an_unknown_sku_is_rejected_through_the_conditional_update() {
    let e = env("t2").await;
    let order = accepted(
        &e,
        "U1",
        serde_json::json!([{"sku": "NOPE", "quantity": 1}]),
    )
    .await;
    let w = worker(&e);
    let (_, reports) = w.handle_records(&[event_record(&order)]).await.unwrap();
    assert_eq!(reports[0].outcome.label(), "rejected");
    let stored = e.orders.get("U1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Rejected, 2));
    assert!(stored
        .rejection
        .unwrap()
        .reason
        .contains("unknown sku NOPE"));
    let (_, reports) = w.handle_records(&[event_record(&order)]).await.unwrap();
    assert_eq!(reports[0].outcome.label(), "duplicate");
}

/// The real store, but its read reports plenty of stock: another reservation took the units
/// between the read and the transaction.
struct StaleRead(DynamoInventory);

impl InventoryStore for StaleRead {
    async fn items(
        &self,
        skus: &[String],
    ) -> Result<std::collections::BTreeMap<String, order_domain::InventoryItem>, PortError> {
        let mut items = self.0.items(skus).await?;
        for item in items.values_mut() {
            item.available = 1_000;
        }
        Ok(items)
    }
    async fn reserve(&self, write: &TransitionWrite) -> Result<Reserve, PortError> {
        self.0.reserve(write).await
    }
    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        self.0.transition(write).await
    }
}

/// Protects: when the read is stale (a race), the transaction's stock condition decides: it is
/// cancelled, the cancellation reason names the short sku with what DynamoDB says is available,
/// and nothing of the order is reserved.
#[tokio::test]
async fn under_a_race_the_transactions_cancellation_reason_names_the_short_sku() {
    let e = env("t3").await;
    load(
        &e.clients.dynamodb,
        &e.inventory_table,
        &[product("A", 5), product("B", 1)],
    )
    .await
    .unwrap();
    let order = accepted(
        &e,
        "RACE1",
        serde_json::json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 2}]),
    )
    .await;
    let w = SqsWorker::new(
        InventoryWorker::new(StaleRead(DynamoInventory::new(
            e.orders.clone(),
            e.inventory_table.clone(),
        ))),
        WorkerConfig {
            max_receive_count: 5,
            record_concurrency: 1,
            start_margin: Duration::from_secs(3),
            answer_reserve: Duration::from_millis(500),
            backoff: None,
            queue_url: None,
            service: "inventory".into(),
        },
        Arc::new(Captured::default()),
    );
    let (_, reports) = w.handle_records(&[event_record(&order)]).await.unwrap();
    assert_eq!(reports[0].outcome.label(), "rejected");
    let r = e
        .orders
        .get("RACE1")
        .await
        .unwrap()
        .unwrap()
        .rejection
        .unwrap();
    assert_eq!(
        (r.sku.as_deref(), r.requested, r.available),
        (Some("B"), Some(2), Some(1))
    );
    let stock = scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap();
    assert_eq!(
        (stock["A"].available, stock["A"].reserved),
        (5, 0),
        "the transaction moved nothing"
    );
}
