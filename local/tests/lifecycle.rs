//! The inventory stage's writes on a real DynamoDB API (moto): the reservation's
//! TransactWriteItems, its per-item cancellation reasons, and the conditional REJECTED update.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use order_domain::{
    Currency, LifecycleEvent, NotificationFailure, OrderItem, OrderStatus, Provenance,
    RejectionCode,
};
use order_local::emulator::Emulator;
use order_local::inventory::{load, scan, Product};
use order_local::resources::create;
use order_local::template::Template;
use order_local::Clients;
use order_pipeline::adapters::dynamodb::inventory::DynamoInventory;
use order_pipeline::adapters::dynamodb::DynamoStore;
use order_pipeline::ports::inventory::{Claim, InventoryStore, PaymentStore, Reserve};
use order_pipeline::ports::orders::TransitionWrite;
use order_pipeline::ports::orders::{CreateResult, OrderReader, OrderStore};
use order_pipeline::ports::PortError;
use order_pipeline::runtime::config::WorkerConfig;
use order_pipeline::runtime::stage::EventStage;
use order_pipeline::runtime::telemetry::Captured;
use order_pipeline::runtime::worker::SqsWorker;
use order_pipeline::stages::inventory::InventoryStage;
use order_pipeline::stages::inventory_dlq::InventoryDlqStage;

struct Env {
    _emulator: Emulator,
    clients: Clients,
    orders: DynamoStore,
    inventory_table: String,
}

async fn env(prefix: &str) -> Env {
    env_on(
        Emulator::start().expect("moto_server starts (run `make setup`)"),
        prefix,
    )
    .await
}

async fn env_on(emulator: Emulator, prefix: &str) -> Env {
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

fn worker_config(service: &str) -> WorkerConfig {
    WorkerConfig {
        max_receive_count: 5,
        record_concurrency: 4,
        start_margin: Duration::from_secs(3),
        answer_reserve: Duration::from_millis(500),
        backoff: None,
        queue_url: None,
        service: service.into(),
    }
}

fn worker(e: &Env) -> SqsWorker<EventStage<InventoryStage<DynamoInventory>>> {
    SqsWorker::new(
        EventStage(InventoryStage::new(
            DynamoInventory::new(e.orders.clone(), e.inventory_table.clone()),
            Currency::from_code("USD").unwrap(),
        )),
        worker_config("inventory"),
        Arc::new(Captured::default()),
        None,
    )
    .unwrap()
}

async fn accepted(e: &Env, id: &str, lines: serde_json::Value) -> OrderItem {
    accepted_as(e, id, "U1", lines).await
}

async fn accepted_as(e: &Env, id: &str, customer: &str, lines: serde_json::Value) -> OrderItem {
    let body = serde_json::json!({"orderId": id, "customerId": customer, "currency": "USD", "items": lines});
    let (order, _) = order_domain::parse_order(&body.to_string()).unwrap();
    let from = Provenance {
        message_id: "m".into(),
        correlation_id: format!("c-{id}"),
        sent_at: chrono::Utc::now(),
    };
    let item = OrderItem::accepted(order, from, chrono::Utc::now());
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
        unit_price: Some("5.00".into()),
        currency: Some("USD".into()),
        ..Product::for_sale(sku, available)
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
    assert_eq!(stored.amount.as_deref(), Some("15.00"));
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

/// The reservation of `order` (`quantity` of sku A) from ACCEPTED, written at `at`.
fn reservation_of(order: &OrderItem, quantity: u32, at: &str) -> TransitionWrite {
    let mut w = TransitionWrite::new(
        &order.order_id,
        OrderStatus::Accepted,
        OrderStatus::Reserved,
        order.version,
        at.into(),
    )
    .unwrap();
    w.reservation = Some(vec![order_domain::ReservedLine {
        sku: "A".into(),
        quantity,
    }]);
    w.amount = Some(format!("{}.00", 5 * quantity));
    w.currency = Some("USD".into());
    w
}

/// Protects (issue 30, finding 5): DynamoDB keeps a transaction's ClientRequestToken for 10
/// minutes and refuses it with other parameters (IdempotentParameterMismatch; the emulator now
/// does too). The token was (what, order, version) while the request carries the step's
/// timestamp: a reservation cancelled once and tried again by the stage with a new timestamp was
/// refused as a mismatch, read as fatal, and retried until it dead-lettered. Now the token is
/// the request's: the second try is a new transaction and reserves; the same request repeated
/// (the SDK's retry after a lost answer) is answered as committed and moves no stock twice.
#[tokio::test]
async fn a_transaction_tried_again_with_a_new_timestamp_is_a_new_request_and_a_repeat_is_one_write()
{
    let e = env("tok").await;
    let db = &e.clients.dynamodb;
    load(db, &e.inventory_table, &[product("A", 1)])
        .await
        .unwrap();
    let order = accepted(&e, "TOK1", serde_json::json!([{"sku": "A", "quantity": 2}])).await;
    let store = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone());

    let first = reservation_of(&order, 2, "2026-01-01T00:00:00Z");
    assert!(
        matches!(store.reserve(&first).await.unwrap(), Reserve::Short { .. }),
        "1 unit of A for 2: the transaction is cancelled"
    );
    load(db, &e.inventory_table, &[product("A", 5)])
        .await
        .unwrap();

    let second = reservation_of(&order, 2, "2026-01-01T00:00:07Z");
    match store.reserve(&second).await {
        Ok(Reserve::Reserved) => {}
        other => panic!("the second try reserves: {other:?}"),
    }
    match store.reserve(&second).await {
        Ok(Reserve::Reserved) => {}
        other => panic!("the same request again is answered as committed: {other:?}"),
    }
    let a = &scan(db, &e.inventory_table).await.unwrap()["A"];
    assert_eq!((a.available, a.reserved), (3, 2), "stock moved once");
    let stored = e.orders.get("TOK1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Reserved, 2));
}

/// Protects (issue 30, finding 7) on DynamoDB itself: the payment claim's conditional update.
/// A second claim while the first holds the order is `Held` (no attempt counted), a released
/// claim can be taken again (the next attempt), an expired one too, and the claim returns the
/// stored order the attempt charges.
#[tokio::test]
async fn a_payment_claim_holds_the_order_against_a_second_attempt_until_released_or_expired() {
    let e = env("claim").await;
    load(&e.clients.dynamodb, &e.inventory_table, &[product("A", 5)])
        .await
        .unwrap();
    let order = accepted(&e, "CL1", serde_json::json!([{"sku": "A", "quantity": 2}])).await;
    let store = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone());
    assert!(matches!(
        store
            .reserve(&reservation_of(&order, 2, "2026-01-01T00:00:00Z"))
            .await
            .unwrap(),
        Reserve::Reserved
    ));
    let lease = Duration::from_secs(30);
    let Claim::Claimed {
        attempt,
        order: stored,
    } = store.claim_attempt("CL1", 2, lease).await.unwrap()
    else {
        panic!("the first claim is taken");
    };
    assert_eq!(attempt, 1);
    assert_eq!(
        (stored.amount.as_deref(), stored.currency.as_deref()),
        (Some("10.00"), Some("USD")),
        "the stored order comes back with the claim"
    );
    match store.claim_attempt("CL1", 2, lease).await.unwrap() {
        Claim::Held { left } => assert!(left > Duration::from_secs(25), "{left:?}"),
        other => panic!("a second claim is held off: {other:?}"),
    }
    assert_eq!(
        e.orders.get("CL1").await.unwrap().unwrap().payment_attempts,
        Some(1),
        "a held-off claim counts no attempt"
    );
    store.release_claim("CL1", 1).await.unwrap();
    let Claim::Claimed { attempt, .. } =
        store.claim_attempt("CL1", 2, Duration::ZERO).await.unwrap()
    else {
        panic!("a released claim can be taken again");
    };
    assert_eq!(attempt, 2);
    // A lease of zero has ended: the next claim takes it, as after a crashed holder.
    let Claim::Claimed { attempt, .. } = store.claim_attempt("CL1", 2, lease).await.unwrap() else {
        panic!("an expired claim can be taken");
    };
    assert_eq!(attempt, 3);
    assert_eq!(
        store.claim_attempt("CL1", 3, lease).await.unwrap(),
        Claim::MovedOn,
        "another version is not this order's claim"
    );
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

/// Protects the inventory DLQ on DynamoDB (issue: an Inventory item written by another system
/// without `reserved`/`sold`/`version` failed every order for its sku, which then waited
/// ACCEPTED for ever): the inventory stage fails on such an order every time, and inventory-dlq's
/// last attempt fails the same way and ends it REJECTED (`dead_lettered`) with the error
/// recorded, the foreign item untouched; the order's other sku is not reserved either.
#[tokio::test]
async fn an_order_whose_inventory_item_cannot_be_read_ends_rejected_by_the_inventory_dlq() {
    let e = env("t-dlq").await;
    load(
        &e.clients.dynamodb,
        &e.inventory_table,
        &[product("GOOD", 5)],
    )
    .await
    .unwrap();
    let foreign = std::collections::HashMap::from([
        ("sku".to_string(), AttributeValue::S("FOREIGN".into())),
        ("available".to_string(), AttributeValue::N("7".into())),
    ]);
    e.clients
        .dynamodb
        .put_item()
        .table_name(&e.inventory_table)
        .set_item(Some(foreign.clone()))
        .send()
        .await
        .unwrap();
    let order = accepted(
        &e,
        "O-FOREIGN",
        serde_json::json!([{"sku": "GOOD", "quantity": 1}, {"sku": "FOREIGN", "quantity": 1}]),
    )
    .await;
    // The stage fails on it every time (the whole batch fails: SQS delivers it again, until
    // the DLQ).
    let failed = worker(&e)
        .handle_records(&[event_record(&order)])
        .await
        .expect_err("the stage cannot read the item");
    assert!(failed.first.contains("sku FOREIGN"), "{}", failed.first);
    let dlq = SqsWorker::new(
        EventStage(InventoryDlqStage::new(InventoryStage::new(
            DynamoInventory::new(e.orders.clone(), e.inventory_table.clone()),
            Currency::from_code("USD").unwrap(),
        ))),
        worker_config("inventory-dlq"),
        Arc::new(Captured::default()),
        None,
    )
    .unwrap();
    let (resp, reports) = dlq.handle_records(&[event_record(&order)]).await.unwrap();
    assert_eq!(reports[0].outcome.label(), "dead_lettered");
    assert!(resp.batch_item_failures.is_empty());
    let stored = e.orders.get("O-FOREIGN").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Rejected, 2));
    let rejection = stored.rejection.unwrap();
    assert_eq!(rejection.code, Some(RejectionCode::DeadLettered));
    assert!(
        rejection.error.as_deref().unwrap_or("").contains("FOREIGN"),
        "the error names the item: {rejection:?}"
    );
    let good = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone())
        .items(&["GOOD".to_string()])
        .await
        .unwrap()["GOOD"]
        .clone();
    assert_eq!((good.available, good.reserved), (5, 0), "nothing reserved");
    let still = e
        .clients
        .dynamodb
        .get_item()
        .table_name(&e.inventory_table)
        .key("sku", AttributeValue::S("FOREIGN".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(still.item(), Some(&foreign), "the foreign item untouched");
}

/// Protects notification-dlq's writes on DynamoDB: a failed notification is recorded on a
/// terminal order without changing its status or version (no event follows) and only at the
/// status and version given; a confirmation's failure goes with PAID -> COMPLETED.
#[tokio::test]
async fn a_failed_notification_is_recorded_on_the_order_as_dynamodb_holds_it() {
    let e = env("t-notify").await;
    let order = accepted(&e, "O-N", serde_json::json!([{"sku": "A", "quantity": 1}])).await;
    let step = |from, to, version| {
        TransitionWrite::new(
            &order.order_id,
            from,
            to,
            version,
            "2026-01-01T00:00:00Z".into(),
        )
        .unwrap()
    };
    let failure = NotificationFailure {
        event_type: order_domain::EventType::PaymentSucceeded,
        error: "KMS access denied".into(),
        failed_at: "2026-01-01T00:00:01Z".into(),
    };
    assert!(e
        .orders
        .transition(&step(OrderStatus::Accepted, OrderStatus::Reserved, 1))
        .await
        .unwrap());
    assert!(e
        .orders
        .transition(&step(OrderStatus::Reserved, OrderStatus::Paid, 2))
        .await
        .unwrap());
    let mut complete = step(OrderStatus::Paid, OrderStatus::Completed, 3);
    complete.notification_failure = Some(failure.clone());
    assert!(e.orders.transition(&complete).await.unwrap());
    let stored = e.orders.get("O-N").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Completed, 4));
    assert_eq!(stored.notification_failure.as_ref(), Some(&failure));

    let notice = NotificationFailure {
        event_type: order_domain::EventType::OrderRejected,
        ..failure.clone()
    };
    let record = |status, version| {
        order_pipeline::ports::orders::LifecycleStore::record_notification_failure(
            &e.orders, "O-N", status, version, &notice,
        )
    };
    assert!(
        !record(OrderStatus::Completed, 3).await.unwrap(),
        "another version"
    );
    assert!(
        !record(OrderStatus::Rejected, 4).await.unwrap(),
        "another status"
    );
    assert!(
        !record(OrderStatus::Completed, 4).await.unwrap(),
        "a failure is recorded already: never overwritten"
    );
    let stored = e.orders.get("O-N").await.unwrap().unwrap();
    assert_eq!(stored.notification_failure.as_ref(), Some(&failure));
    // A terminal order without one gets it, its status and version unchanged.
    let other = accepted(&e, "O-N2", serde_json::json!([{"sku": "A", "quantity": 1}])).await;
    let reject = TransitionWrite::new(
        &other.order_id,
        OrderStatus::Accepted,
        OrderStatus::Rejected,
        1,
        "2026-01-01T00:00:00Z".into(),
    )
    .unwrap();
    assert!(e.orders.transition(&reject).await.unwrap());
    let record_other = |status, version| {
        order_pipeline::ports::orders::LifecycleStore::record_notification_failure(
            &e.orders, "O-N2", status, version, &notice,
        )
    };
    assert!(
        !record_other(OrderStatus::Rejected, 1).await.unwrap(),
        "another version"
    );
    assert!(record_other(OrderStatus::Rejected, 2).await.unwrap());
    let stored = e.orders.get("O-N2").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Rejected, 2));
    assert_eq!(stored.notification_failure, Some(notice.clone()));
}

/// The real store, but its read reports plenty of stock: another reservation took the units
/// between the read and the transaction.
struct StaleRead(DynamoInventory);

impl OrderReader for StaleRead {
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.0.read(order_id).await
    }
}

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
        EventStage(InventoryStage::new(
            StaleRead(DynamoInventory::new(
                e.orders.clone(),
                e.inventory_table.clone(),
            )),
            Currency::from_code("USD").unwrap(),
        )),
        WorkerConfig {
            record_concurrency: 1,
            ..worker_config("inventory")
        },
        Arc::new(Captured::default()),
        None,
    )
    .unwrap();
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

/// The order as the inventory stage left it, and its InventoryReserved event.
async fn reserved_event(e: &Env, accepted_item: &OrderItem) -> LifecycleEvent {
    let stored = e
        .orders
        .get(&accepted_item.order_id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.status, OrderStatus::Reserved);
    LifecycleEvent::from_change(Some(accepted_item), &stored, "now").unwrap()
}

async fn accepted_for(e: &Env, id: &str, customer: &str, sku: &str, quantity: u32) -> OrderItem {
    accepted_as(
        e,
        id,
        customer,
        serde_json::json!([{"sku": sku, "quantity": quantity}]),
    )
    .await
}

fn record_of(event: &LifecycleEvent, receives: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(format!("m-{}-{receives}", event.order_id));
    m.receipt_handle = Some("h".into());
    m.body = Some(serde_json::to_string(event).unwrap());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    m
}

type Payments = SqsWorker<
    EventStage<
        order_pipeline::stages::payment::PaymentStage<
            DynamoInventory,
            order_pipeline::adapters::payment_http::HttpGateway,
        >,
    >,
>;

/// The payment stage on `store` calling `gateway`, giving up after `max_attempts`, with local
/// time (backoff from 1 s, claims of 5 s).
fn payment_worker(
    store: DynamoInventory,
    gateway: order_pipeline::adapters::payment_http::HttpGateway,
    max_attempts: u32,
) -> Payments {
    use order_pipeline::stages::payment::{PaymentSettings, PaymentStage};
    SqsWorker::new(
        EventStage(PaymentStage::new(
            store,
            gateway,
            PaymentSettings {
                claim: Duration::from_secs(5),
                max_attempts,
                backoff: order_pipeline::runtime::config::Backoff {
                    base: Duration::from_secs(1),
                    max: Duration::from_secs(4),
                },
            },
        )),
        WorkerConfig {
            max_receive_count: max_attempts + 2,
            start_margin: Duration::from_secs(1),
            answer_reserve: Duration::from_millis(200),
            ..worker_config("payment")
        },
        Arc::new(Captured::default()),
        None,
    )
    .unwrap()
}

/// The order `order_id` of `customer` (3 units of A) paid over the real HTTP adapter (client
/// timeout `timeout`), DynamoDB and a fake provider with `rates` whose answers to that customer
/// are lost on both attempts: each attempt is unavailable, the one after the last looks the
/// charge up, finds it, and the order ends PAID with the ledger's single charge (its payment id
/// and amount) and its units sold, never released. Returns the provider, for its counters.
async fn a_lost_answer_is_found_by_lookup(
    prefix: &str,
    rates: order_local::provider::ProviderRates,
    timeout: Duration,
    order_id: &str,
    customer: &str,
) -> order_local::provider::FakeProvider {
    use order_local::provider::FakeProvider;
    use order_pipeline::adapters::payment_http::{ApiKey, HttpGateway};

    let e = env(prefix).await;
    load(&e.clients.dynamodb, &e.inventory_table, &[product("A", 10)])
        .await
        .unwrap();
    let provider = FakeProvider::start(rates).await.unwrap();
    let gateway =
        HttpGateway::new(&provider.url, ApiKey::Fixed(provider.api_key()), timeout).unwrap();
    let store = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone());
    let payments = payment_worker(store, gateway, 2);
    let order = accepted_for(&e, order_id, customer, "A", 3).await;
    worker(&e)
        .handle_records(&[event_record(&order)])
        .await
        .unwrap();
    let event = reserved_event(&e, &order).await;

    // Both attempts without an answer; the last is looked up when it comes back.
    for (receive, expected) in [
        (1, "provider_unavailable"),
        (2, "provider_unavailable"),
        (3, "paid"),
    ] {
        let (_, reports) = payments
            .handle_records(&[record_of(&event, receive)])
            .await
            .unwrap();
        assert_eq!(reports[0].outcome.label(), expected, "receive {receive}");
    }

    let ledger = provider.ledger();
    assert_eq!(ledger.len(), 1, "one ledger entry: {ledger:?}");
    assert!(ledger[0].approved, "the provider charged");
    let stored = e.orders.get(order_id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::Paid);
    let payment = stored.payment.unwrap();
    assert_eq!(payment.payment_id, ledger[0].payment_id);
    assert_eq!(payment.amount, ledger[0].amount);
    let a = &scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap()["A"];
    assert_eq!(
        (a.available, a.reserved, a.sold),
        (7, 0, 3),
        "sold, not released"
    );
    provider
}

/// Protects (issue 30, finding 3) with the real HTTP adapter, DynamoDB and the fake provider: a
/// provider that charges on the first call and answers after the client's timeout on every
/// call. After the last attempt the stage looks the charge up by its idempotency key, finds it,
/// and the order ends PAID with the ledger's payment id and its units sold. Before, it ended
/// PAYMENT_FAILED with its units released while the ledger held an approved charge.
#[tokio::test]
async fn a_charge_answered_too_late_on_every_attempt_is_found_by_lookup_and_the_order_is_paid() {
    let provider = a_lost_answer_is_found_by_lookup(
        "late",
        order_local::provider::ProviderRates {
            late_prefix: Some("late-".into()),
            late_by: Duration::from_millis(1500),
            ..Default::default()
        },
        Duration::from_millis(300),
        "LATE1",
        "late-customer",
    )
    .await;
    let stats = provider.stats();
    assert!(stats.late_answers >= 2 && stats.lookups == 1, "{stats:?}");
}

/// Protects the "answer then drop" unknown outcome with the real HTTP adapter, DynamoDB and the
/// fake provider: the provider charges and closes the connection without an answer, on every
/// attempt. The stage reads each attempt as unknown, looks the charge up after the last one,
/// finds it, and the order ends PAID with exactly one charge in the ledger, its payment id, and
/// its units sold (never released while the charge stands).
#[tokio::test]
async fn a_charge_whose_answer_is_dropped_on_every_attempt_is_found_by_lookup_and_paid_once() {
    let provider = a_lost_answer_is_found_by_lookup(
        "dropped",
        order_local::provider::ProviderRates {
            drop_prefix: Some("drop-".into()),
            ..Default::default()
        },
        Duration::from_secs(2),
        "DROP1",
        "drop-customer",
    )
    .await;
    let ledger = provider.ledger();
    assert!(ledger[0].dropped);
    assert_eq!(ledger[0].calls, 2, "both attempts reached the provider");
    let stats = provider.stats();
    assert!(
        stats.dropped_answers == 2 && stats.late_answers == 0 && stats.lookups == 1,
        "{stats:?}"
    );
}

/// Protects: on DynamoDB and over HTTP, the payment stage's real adapters do what the handler
/// tests assume: the API key comes from Secrets Manager, the provider sees one idempotency key
/// per order, an approved charge moves the order to PAID and its units from reserved to sold in
/// one transaction, a declined one to PAYMENT_FAILED with the units back, the same event again
/// neither calls the provider nor moves stock, and a stale transition changes nothing.
#[tokio::test]
async fn the_payment_transactions_and_the_http_adapter_on_moto_and_a_fake_provider() {
    use order_local::provider::{FakeProvider, ProviderRates};
    use order_pipeline::adapters::payment_http::{ApiKey, HttpGateway};
    use order_pipeline::ports::inventory::{PaymentStore, StockMove};
    use order_pipeline::ports::payment::{Charge, ChargeRequest, PaymentGateway};

    let e = env("t9").await;
    load(&e.clients.dynamodb, &e.inventory_table, &[product("A", 10)])
        .await
        .unwrap();
    let provider = FakeProvider::start(ProviderRates::default()).await.unwrap();
    let secret = e
        .clients
        .secrets
        .create_secret()
        .name("payment-key")
        .secret_string(serde_json::json!({"apiKey": provider.api_key()}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let gateway = HttpGateway::new(
        &provider.url,
        ApiKey::Secret {
            client: e.clients.secrets.clone(),
            secret_id: secret,
        },
        Duration::from_secs(2),
    )
    .unwrap();
    let store = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone());
    let payments = payment_worker(store.clone(), gateway, 3);
    let reserve = worker(&e);

    let paid = accepted_for(&e, "PAY1", "U1", "A", 3).await;
    let declined = accepted_for(&e, "PAY2", "decline-9", "A", 2).await;
    for order in [&paid, &declined] {
        let (_, reports) = reserve
            .handle_records(&[event_record(order)])
            .await
            .unwrap();
        assert_eq!(reports[0].outcome.label(), "reserved");
    }
    assert_eq!(
        scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap()["A"].reserved,
        5
    );
    let paid_event = reserved_event(&e, &paid).await;
    let declined_event = reserved_event(&e, &declined).await;

    let (_, reports) = payments
        .handle_records(&[record_of(&paid_event, 1), record_of(&declined_event, 1)])
        .await
        .unwrap();
    let labels: Vec<&str> = reports.iter().map(|r| r.outcome.label()).collect();
    assert_eq!(labels, ["paid", "declined"]);
    let a = &scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap()["A"];
    assert_eq!(
        (a.available, a.reserved, a.sold),
        (7, 0, 3),
        "PAY1's 3 units sold, PAY2's 2 back"
    );
    let stored = e.orders.get("PAY1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Paid, 3));
    assert_eq!(stored.payment_attempts, Some(1));
    let payment = stored.payment.unwrap();
    assert_eq!(payment.provider.as_deref(), Some("http"));
    assert_eq!(payment.amount, "15.00");
    let ledger = provider.ledger();
    assert_eq!(ledger.len(), 2);
    let charge = ledger.iter().find(|l| l.order_id == "PAY1").unwrap();
    assert_eq!(charge.idempotency_key, "PAY1:payment");
    assert_eq!(payment.payment_id, charge.payment_id);
    let failed = e.orders.get("PAY2").await.unwrap().unwrap();
    assert_eq!(failed.status, OrderStatus::PaymentFailed);
    assert!(failed.payment.unwrap().reason.unwrap().contains("declined"));

    // The same events again: no provider call, no stock movement.
    let (_, reports) = payments
        .handle_records(&[record_of(&paid_event, 2), record_of(&declined_event, 2)])
        .await
        .unwrap();
    assert!(reports.iter().all(|r| r.outcome.label() == "duplicate"));
    assert!(provider.ledger().iter().all(|l| l.calls == 1));
    let a = &scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap()["A"];
    assert_eq!((a.available, a.reserved, a.sold), (7, 0, 3));

    // A stale settle (the order is past RESERVED) is refused by its condition.
    let mut stale = TransitionWrite::new(
        "PAY1",
        OrderStatus::Reserved,
        OrderStatus::PaymentFailed,
        2,
        "2026-01-01T00:00:00Z".into(),
    )
    .unwrap();
    stale.payment = None;
    let lines = paid_event.order.reservation.clone().unwrap();
    assert!(!store
        .settle(&stale, &lines, StockMove::Release)
        .await
        .unwrap());
    assert_eq!(
        store
            .claim_attempt("PAY1", 2, Duration::from_secs(30))
            .await
            .unwrap(),
        Claim::MovedOn
    );

    // The provider honours the idempotency key; a wrong API key is "unavailable", not a decline.
    let direct = HttpGateway::new(
        &provider.url,
        ApiKey::Fixed(provider.api_key()),
        Duration::from_secs(2),
    )
    .unwrap();
    let request = ChargeRequest {
        order_id: "PAY1".into(),
        amount: "15".into(),
        currency: "USD".into(),
        customer_id: "U1".into(),
        idempotency_key: "PAY1:payment".into(),
        attempt: 2,
    };
    assert_eq!(
        direct.charge(&request).await,
        Charge::Approved {
            payment_id: charge.payment_id.clone().unwrap()
        }
    );
    let wrong = HttpGateway::new(
        &provider.url,
        ApiKey::Fixed("wrong".into()),
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(matches!(
        wrong.charge(&request).await,
        Charge::NotSent { reason } if reason.contains("401")
    ));
    assert_eq!(provider.ledger().len(), 2, "one ledger entry per order");
}

/// Protects: a catalogue load while orders hold stock (issue 30, finding 8). Loading again sets
/// the catalogue's fields and the units for sale and leaves reserved and sold as the orders left
/// them (before: the whole item was written afresh, reserved and sold reset to 0, so the
/// reserved order could not settle); `stock` keeps the held units out of `available`, and a
/// stock below them is refused with nothing written; an item another system wrote without
/// reserved, sold or version gets them as 0.
#[tokio::test]
async fn a_catalogue_load_changes_only_what_the_catalogue_owns_and_keeps_held_units() {
    use order_pipeline::ports::inventory::{PaymentStore, StockMove};
    let e = env("reload").await;
    let db = &e.clients.dynamodb;
    let loaded = load(db, &e.inventory_table, &[product("A", 10)])
        .await
        .unwrap();
    assert_eq!((loaded.created, loaded.updated), (1, 0));
    let order = accepted(
        &e,
        "HOLD1",
        serde_json::json!([{"sku": "A", "quantity": 3}]),
    )
    .await;
    let (_, reports) = worker(&e)
        .handle_records(&[event_record(&order)])
        .await
        .unwrap();
    assert_eq!(reports[0].outcome.label(), "reserved");

    let repriced = Product {
        unit_price: Some("6.00".into()),
        name: Some("Lamp".into()),
        ..product("A", 20)
    };
    let loaded = load(db, &e.inventory_table, &[repriced]).await.unwrap();
    assert_eq!((loaded.created, loaded.updated), (0, 1));
    let a = &scan(db, &e.inventory_table).await.unwrap()["A"];
    assert_eq!(
        (a.available, a.reserved, a.sold),
        (20, 3, 0),
        "the 3 reserved units kept"
    );
    assert_eq!(
        (a.unit_price.as_deref(), a.name.as_deref()),
        (Some("6.00"), Some("Lamp"))
    );

    // The reserved order still settles against the reloaded item.
    let store = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone());
    let mut paid = TransitionWrite::new(
        "HOLD1",
        OrderStatus::Reserved,
        OrderStatus::Paid,
        2,
        "2026-01-01T00:00:00Z".into(),
    )
    .unwrap();
    paid.payment = None;
    let lines = e
        .orders
        .get("HOLD1")
        .await
        .unwrap()
        .unwrap()
        .reservation
        .unwrap();
    assert!(store.settle(&paid, &lines, StockMove::Sell).await.unwrap());
    let a = &scan(db, &e.inventory_table).await.unwrap()["A"];
    assert_eq!((a.available, a.reserved, a.sold), (20, 0, 3));

    // Units on hand: the 3 sold stay sold; fewer on hand than sold is refused, nothing written.
    let on_hand = Product {
        available: None,
        stock: Some(15),
        ..product("A", 0)
    };
    load(db, &e.inventory_table, &[on_hand]).await.unwrap();
    let a = &scan(db, &e.inventory_table).await.unwrap()["A"];
    assert_eq!((a.available, a.reserved, a.sold), (12, 0, 3));
    let too_few = Product {
        available: None,
        stock: Some(2),
        ..product("A", 0)
    };
    let err = load(db, &e.inventory_table, &[too_few])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sku A") && err.contains("less than the 3"),
        "{err}"
    );
    assert_eq!(
        scan(db, &e.inventory_table).await.unwrap()["A"].available,
        12
    );

    // An item written by another system without the order-owned counts.
    db.put_item()
        .table_name(&e.inventory_table)
        .item("sku", AttributeValue::S("B".into()))
        .item("available", AttributeValue::N("4".into()))
        .send()
        .await
        .unwrap();
    load(db, &e.inventory_table, &[product("B", 7)])
        .await
        .unwrap();
    let b = &scan(db, &e.inventory_table).await.unwrap()["B"];
    assert_eq!((b.available, b.reserved, b.sold, b.version), (7, 0, 0, 1));
}

/// Protects: a rotated payment API key (issue 30, finding 4). A warm HTTP adapter that read the
/// key before the rotation gets 401, reads the secret again at once and charges with the new
/// key in the same attempt (before: the key was read once per process, so every charge after a
/// rotation was "unavailable" until the container was recycled). A secret not yet updated is
/// "unavailable" with the action named, never a decline; a key older than the TTL is read again
/// without waiting for a 401.
#[tokio::test]
async fn a_rotated_api_key_is_read_again_at_the_first_refusal_and_the_charge_goes_through() {
    use order_local::provider::{FakeProvider, ProviderRates};
    use order_pipeline::adapters::payment_http::{ApiKey, HttpGateway};
    use order_pipeline::ports::payment::{Charge, ChargeRequest, PaymentGateway};

    let e = env("rotate").await;
    let provider = FakeProvider::start(ProviderRates::default()).await.unwrap();
    let secrets = e.clients.secrets.clone();
    let secret = secrets
        .create_secret()
        .name("rotated-key")
        .secret_string(serde_json::json!({"apiKey": provider.api_key()}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let put = |key: String| {
        let (secrets, secret) = (secrets.clone(), secret.clone());
        async move {
            secrets
                .put_secret_value()
                .secret_id(secret)
                .secret_string(serde_json::json!({"apiKey": key}).to_string())
                .send()
                .await
                .unwrap();
        }
    };
    let gateway = |ttl: Option<Duration>| {
        let g = HttpGateway::new(
            &provider.url,
            ApiKey::Secret {
                client: secrets.clone(),
                secret_id: secret.clone(),
            },
            Duration::from_secs(2),
        )
        .unwrap();
        match ttl {
            Some(ttl) => g.with_key_ttl(ttl),
            None => g,
        }
    };
    let request = |order: &str| ChargeRequest {
        order_id: order.into(),
        amount: "15.00".into(),
        currency: "USD".into(),
        customer_id: "U1".into(),
        idempotency_key: format!("{order}:payment"),
        attempt: 1,
    };
    let approved = |c: Charge| matches!(c, Charge::Approved { .. });

    let warm = gateway(None);
    assert!(
        approved(warm.charge(&request("ROT1")).await),
        "the key as first read"
    );

    // The provider rotates and the secret is updated: the warm adapter still holds the old key.
    put(provider.rotate_key()).await;
    let charged = warm.charge(&request("ROT2")).await;
    assert!(
        approved(charged.clone()),
        "charged after the rotation: {charged:?}"
    );
    assert_eq!(
        provider.stats().unauthorized,
        1,
        "one refused call, then the key read again"
    );

    // Rotated at the provider, the secret not yet updated: unavailable (retried), not declined.
    provider.rotate_key();
    match warm.charge(&request("ROT3")).await {
        Charge::NotSent { reason } => assert!(
            reason.contains("401") && reason.contains("paymentSecretArn"),
            "{reason}"
        ),
        other => panic!("a refused key must be unavailable, not {other:?}"),
    }

    // Past the TTL the key is read again before the call: no refusal at all.
    let short = gateway(Some(Duration::ZERO));
    put(provider.api_key()).await;
    assert!(approved(short.charge(&request("ROT4")).await));
    put(provider.rotate_key()).await;
    let refused_before = provider.stats().unauthorized;
    assert!(approved(short.charge(&request("ROT5")).await));
    assert_eq!(provider.stats().unauthorized, refused_before);
    assert_eq!(provider.ledger().iter().filter(|l| l.approved).count(), 4);
}

/// Protects a refund's key handling, the charge's own (issue "Money is right"): a warm HTTP
/// adapter whose key the provider rotated gets 401 on the refund, reads the secret again and
/// refunds in the same call; while the secret still holds the refused key the refund is "not
/// sent" (the provider did not act: safe to retry) with the action named, never refused or
/// unknown; retried once the secret is updated, it refunds once.
#[tokio::test]
async fn a_refund_after_a_key_rotation_reads_the_key_again_and_is_refunded_once() {
    use order_local::provider::{FakeProvider, ProviderRates};
    use order_pipeline::adapters::payment_http::{ApiKey, HttpGateway};
    use order_pipeline::ports::payment::{
        idempotency_key, Charge, ChargeRequest, PaymentGateway, Refund, RefundRequest,
    };

    let e = env("rotate-refund").await;
    let provider = FakeProvider::start(ProviderRates::default()).await.unwrap();
    let secrets = e.clients.secrets.clone();
    let secret = secrets
        .create_secret()
        .name("rotated-refund-key")
        .secret_string(serde_json::json!({"apiKey": provider.api_key()}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let put = |key: String| {
        let (secrets, secret) = (secrets.clone(), secret.clone());
        async move {
            secrets
                .put_secret_value()
                .secret_id(secret)
                .secret_string(serde_json::json!({"apiKey": key}).to_string())
                .send()
                .await
                .unwrap();
        }
    };
    let warm = HttpGateway::new(
        &provider.url,
        ApiKey::Secret {
            client: secrets.clone(),
            secret_id: secret.clone(),
        },
        Duration::from_secs(2),
    )
    .unwrap();
    let charge = |order: &str| ChargeRequest {
        order_id: order.into(),
        amount: "15.00".into(),
        currency: "USD".into(),
        customer_id: "U1".into(),
        idempotency_key: idempotency_key(order),
        attempt: 1,
    };
    for order in ["RR1", "RR2"] {
        assert!(matches!(
            warm.charge(&charge(order)).await,
            Charge::Approved { .. }
        ));
    }

    // Rotated and the secret updated: the warm adapter's key is refused once, then read again.
    put(provider.rotate_key()).await;
    let refunded = warm.refund(&RefundRequest::full(&charge("RR1"), 1)).await;
    assert!(
        matches!(refunded, Refund::Refunded { .. }),
        "refunded after the rotation: {refunded:?}"
    );
    assert_eq!(provider.stats().unauthorized, 1);

    // Rotated at the provider, the secret not yet updated: not sent, the secret named.
    provider.rotate_key();
    let request = RefundRequest::full(&charge("RR2"), 1);
    match warm.refund(&request).await {
        Refund::NotSent { reason } => assert!(
            reason.contains("401") && reason.contains("paymentSecretArn"),
            "{reason}"
        ),
        other => panic!("a refused key must be not sent, not {other:?}"),
    }
    assert_eq!(provider.stats().refunded, 1, "nothing refunded meanwhile");
    put(provider.api_key()).await;
    let retried = warm
        .refund(&RefundRequest {
            attempt: 2,
            ..request
        })
        .await;
    assert!(matches!(retried, Refund::Refunded { .. }), "{retried:?}");
    let refunds = provider.refunds();
    assert_eq!(refunds.len(), 2, "one refund per order: {refunds:?}");
    assert!(refunds.iter().all(|r| r.refunded && r.calls == 1));
}

/// Protects: the DynamoDB condition of every lifecycle change (`#s = :from AND version = :v`)
/// and the in-memory store's both say what `order_domain::lifecycle::apply` says, for one table
/// of cases: the right status and version apply and bump the version, a stale or future version
/// or another status changes nothing. A condition cut to the status alone fails here.
#[tokio::test]
async fn every_conditional_change_on_dynamodb_and_in_memory_agrees_with_the_lifecycle() {
    use order_domain::lifecycle::{apply, Request, Stored};
    use order_pipeline::adapters::memory::inventory::MemoryInventory;
    use OrderStatus as S;
    let e = env("apply").await;
    let memory = MemoryInventory::default();
    let cases = [
        (S::Accepted, 1, S::Accepted, 1, S::Reserved),
        (S::Accepted, 1, S::Accepted, 0, S::Reserved),
        (S::Accepted, 1, S::Accepted, 2, S::Reserved),
        (S::Accepted, 1, S::Accepted, 1, S::Rejected),
        (S::Reserved, 2, S::Accepted, 2, S::Reserved),
        (S::Reserved, 2, S::Reserved, 2, S::Paid),
        (S::Reserved, 2, S::Reserved, 1, S::PaymentFailed),
        (S::Paid, 3, S::Paid, 3, S::Completed),
        (S::Paid, 3, S::Reserved, 3, S::Paid),
        (S::Completed, 4, S::Paid, 3, S::Completed),
    ];
    for (n, (status, version, from, expected_version, to)) in cases.into_iter().enumerate() {
        let id = format!("APPLY-{n}");
        accepted(&e, &id, serde_json::json!([{"sku": "A", "quantity": 1}])).await;
        e.clients
            .dynamodb
            .update_item()
            .table_name(e.orders.table())
            .key("orderId", AttributeValue::S(id.clone()))
            .update_expression("SET #s = :s, version = :v")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", AttributeValue::S(status.as_str().into()))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await
            .unwrap();
        memory.order(&id, status, version);
        let stored = Stored { status, version };
        let expected = apply(
            stored,
            Request {
                from,
                expected_version,
                to,
            },
        );
        let write = TransitionWrite::new(
            &id,
            from,
            to,
            expected_version,
            "2026-01-01T00:00:00Z".into(),
        )
        .expect("a change of the lifecycle");
        let case = format!("stored {status:?} v{version}, {from:?} v{expected_version} -> {to:?}");
        assert_eq!(
            e.orders.transition(&write).await.unwrap(),
            expected.is_some(),
            "DynamoDB: {case}"
        );
        let now = e.orders.get(&id).await.unwrap().expect("stored");
        let after = expected.unwrap_or(stored);
        assert_eq!(
            (now.status, now.version),
            (after.status, after.version),
            "DynamoDB: {case}"
        );
        assert_eq!(
            memory.transition(&write).await.unwrap(),
            expected.is_some(),
            "in memory: {case}"
        );
        let (m_status, m_version, _) = memory.status(&id).unwrap();
        assert_eq!(
            (m_status, m_version),
            (after.status, after.version),
            "in memory: {case}"
        );
    }
}

/// A transaction of one condition check on sku A (it writes nothing): it commits, and holds
/// the item for the conflict window, unless another transaction holds it.
async fn check_sku_a(
    e: &Env,
) -> Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
> {
    e.clients
        .dynamodb
        .transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .condition_check(
                    aws_sdk_dynamodb::types::ConditionCheck::builder()
                        .table_name(&e.inventory_table)
                        .key("sku", AttributeValue::S("A".into()))
                        .condition_expression("attribute_exists(sku)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
}

/// An emulator that holds a committed transaction's items in flight for `window` (conflicts on),
/// with 5 units of sku A.
async fn contended_with_sku_a(window: Duration, prefix: &str) -> Env {
    let emulator =
        Emulator::start_contended(window).expect("moto_server starts (run `make setup`)");
    let e = env_on(emulator, prefix).await;
    load(&e.clients.dynamodb, &e.inventory_table, &[product("A", 5)])
        .await
        .unwrap();
    e
}

/// Protects (issue 30, "TransactionConflict handled explicitly"): DynamoDB cancels a
/// transaction with reason TransactionConflict while another one is in flight on one of its
/// items (two orders of one busy sku). The emulator models it (MOTO_TRANSACTION_CONFLICT_MS):
/// a committed transaction holds its items for a window. A reservation cancelled that way is
/// sent again in process after a jittered pause and decides on the stock as it is then, instead
/// of failing its record for a whole visibility timeout. Fails when the adapter returns the
/// first cancellation ("cancelled (["TransactionConflict", ...]); retrying").
#[tokio::test]
async fn a_reservation_cancelled_by_a_transaction_conflict_is_sent_again_and_reserves() {
    let e = contended_with_sku_a(Duration::from_millis(150), "conflict").await;
    let first = accepted(
        &e,
        "BUSY1",
        serde_json::json!([{"sku": "A", "quantity": 1}]),
    )
    .await;
    let second = accepted(
        &e,
        "BUSY2",
        serde_json::json!([{"sku": "A", "quantity": 1}]),
    )
    .await;
    let inventory = DynamoInventory::new(e.orders.clone(), e.inventory_table.clone());
    assert_eq!(
        inventory
            .reserve(&reservation_of(&first, 1, "2026-01-01T00:00:01Z"))
            .await
            .unwrap(),
        Reserve::Reserved
    );
    // The model: right after that commit, a transaction on sku A is cancelled as a conflict.
    let probe = check_sku_a(&e)
        .await
        .expect_err("sku A is held by the reservation just committed");
    let reasons = probe
        .as_service_error()
        .and_then(|s| match s {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => c.cancellation_reasons.clone(),
            _ => None,
        })
        .unwrap_or_default();
    assert_eq!(
        reasons.first().and_then(|r| r.code.as_deref()),
        Some("TransactionConflict"),
        "{probe:?}"
    );
    // The second order's reservation meets the conflict and is sent again until it commits.
    assert_eq!(
        inventory
            .reserve(&reservation_of(&second, 1, "2026-01-01T00:00:02Z"))
            .await
            .expect("the conflict is retried in process"),
        Reserve::Reserved
    );
    let stock = scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap();
    assert_eq!((stock["A"].available, stock["A"].reserved), (3, 2));
}

/// Protects (issue 33): a reservation sent once only (TRANSACTION_CONFLICT_TRIES=1) that meets
/// a conflict fails as contention (the record's outcome `contended`, metric RecordsContended),
/// not as an outage, and writes nothing. The emulator holds an item 5 s after a commit here, so
/// a loaded machine cannot let the window pass before the reservation is sent.
#[tokio::test]
async fn a_reservation_sent_once_that_meets_a_conflict_fails_as_contention() {
    let e = contended_with_sku_a(Duration::from_secs(5), "contended").await;
    let order = accepted(
        &e,
        "BUSY-ONCE",
        serde_json::json!([{"sku": "A", "quantity": 1}]),
    )
    .await;
    // Another transaction commits on sku A (a condition check: it writes nothing).
    check_sku_a(&e).await.expect("the condition check commits");
    let once =
        DynamoInventory::new(e.orders.clone(), e.inventory_table.clone()).with_conflict_tries(1);
    match once
        .reserve(&reservation_of(&order, 1, "2026-01-01T00:00:03Z"))
        .await
    {
        Err(order_pipeline::ports::PortError::Contention(text)) => {
            assert!(text.contains("TransactionConflict"), "{text}")
        }
        other => panic!("expected contention, got {other:?}"),
    }
    let stock = scan(&e.clients.dynamodb, &e.inventory_table).await.unwrap();
    assert_eq!(
        (stock["A"].available, stock["A"].reserved),
        (5, 0),
        "nothing written"
    );
}
