//! The inventory stage: an `OrderAccepted` event in, the order `RESERVED` or `REJECTED`.
//!
//! The reservation is one `TransactWriteItems`: for every sku, `available - q` and
//! `reserved + q` on condition `available >= q`, and the order `ACCEPTED -> RESERVED` (at the
//! event's version) with its reservation and amount. The transaction's cancellation reasons say
//! what happened, per item: a stock condition → `REJECTED` naming the sku and what was short;
//! the order's condition → it moved on (a duplicate event, deleted); a conflict or throttling →
//! retried. An unknown sku, a line with no price, a currency mismatch, too many skus, or stock
//! already short by the consistent read reject the order before any transaction. Every write is conditional, so a redelivered event
//! never reserves twice.

use std::collections::BTreeMap;
use std::future::Future;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use chrono::Utc;
use order_domain::{
    format_timestamp, order_skus, plan_reservation, short_of_stock, EventType, InventoryItem,
    LifecycleEvent, OrderStatus, Rejection, ReservedLine,
};

use crate::aws::classify;
use crate::port::PortError;
use crate::store::dynamodb::transition_update;
use crate::store::{DynamoStore, TransitionWrite};
use crate::worker::{Disposition, Outcome, RecordHandler, SqsWorker};

/// What the reservation's transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    Reserved,
    /// The order's condition failed: it is no longer ACCEPTED at that version.
    OrderMovedOn,
    /// A stock condition failed.
    Short {
        sku: String,
        requested: u32,
        available: Option<u64>,
    },
}

/// The Inventory table and the order transitions the inventory stage writes.
pub trait InventoryStore: Send + Sync {
    /// The inventory items of `skus` (missing skus are absent), read consistently.
    fn items(
        &self,
        skus: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, InventoryItem>, PortError>> + Send;

    /// The reservation's transaction: `write` is the order's ACCEPTED -> RESERVED change,
    /// carrying the reservation.
    fn reserve(
        &self,
        write: &TransitionWrite,
    ) -> impl Future<Output = Result<Reserve, PortError>> + Send;

    /// A single conditional transition (ACCEPTED -> REJECTED); `false` when the order moved on.
    fn transition(
        &self,
        write: &TransitionWrite,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// The inventory stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryOutcome {
    Reserved,
    Rejected(Rejection),
    /// The order was already past ACCEPTED: nothing written, the message deleted.
    Duplicate,
    /// Not an event this stage acts on (the subscription's filter should keep them away).
    Ignored(EventType),
    /// The body is not a lifecycle event: it goes to the DLQ.
    Invalid(String),
    /// A dependency failed or the transaction conflicted: retried.
    Unavailable(PortError),
}

impl Outcome for InventoryOutcome {
    fn label(&self) -> &'static str {
        match self {
            InventoryOutcome::Reserved => "reserved",
            InventoryOutcome::Rejected(_) => "rejected",
            InventoryOutcome::Duplicate => "duplicate",
            InventoryOutcome::Ignored(_) => "ignored",
            InventoryOutcome::Invalid(_) => "invalid",
            InventoryOutcome::Unavailable(_) => "unavailable",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            InventoryOutcome::Reserved
            | InventoryOutcome::Rejected(_)
            | InventoryOutcome::Duplicate
            | InventoryOutcome::Ignored(_) => Disposition::Done,
            InventoryOutcome::Invalid(e) => Disposition::Rejected {
                reason: format!("not a lifecycle event: {e}"),
                action: "find what published it to the order-events topic; the message is kept in the DLQ",
            },
            InventoryOutcome::Unavailable(e) => Disposition::Unavailable {
                reason: format!("inventory store failed: {e}"),
                action: "SQS retries the event; if it persists check DynamoDB throttling and transaction conflicts",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            InventoryOutcome::Reserved => Some("OrdersReserved"),
            InventoryOutcome::Rejected(_) => Some("OrdersRejected"),
            InventoryOutcome::Duplicate => Some("EventsDuplicate"),
            InventoryOutcome::Invalid(_) => Some("EventsInvalid"),
            _ => None,
        }
    }
}

/// The inventory stage's record handler.
pub struct InventoryWorker<I> {
    store: I,
}

pub type InventoryFunction<I> = SqsWorker<InventoryWorker<I>>;

impl<I: InventoryStore> InventoryWorker<I> {
    pub fn new(store: I) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &I {
        &self.store
    }

    async fn reserve(&self, event: &LifecycleEvent) -> Result<InventoryOutcome, PortError> {
        let now = format_timestamp(Utc::now());
        let order = &event.order;
        let stock = self.store.items(&order_skus(&order.items)).await?;
        let plan = match plan_reservation(&order.items, order.currency.as_deref(), &stock) {
            Ok(plan) => plan,
            Err(rejection) => return self.reject(event, rejection, now).await,
        };
        // Short by the consistent read: reject without a transaction (a cancelled transaction
        // still costs its writes). Under a race the transaction's own condition decides.
        if let Some(short) = plan.lines.iter().find_map(|line| {
            let available = stock.get(&line.sku).map_or(0, |i| i.available);
            (available < u64::from(line.quantity)).then_some((line, available))
        }) {
            let (line, available) = short;
            return self
                .reject(
                    event,
                    short_of_stock(&line.sku, line.quantity, Some(available)),
                    now,
                )
                .await;
        }
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Accepted,
            OrderStatus::Reserved,
            event.version,
            now.clone(),
        ) else {
            return Ok(InventoryOutcome::Duplicate);
        };
        write.reservation = Some(plan.lines);
        write.amount = Some(plan.amount);
        match self.store.reserve(&write).await? {
            Reserve::Reserved => Ok(InventoryOutcome::Reserved),
            Reserve::OrderMovedOn => Ok(InventoryOutcome::Duplicate),
            Reserve::Short {
                sku,
                requested,
                available,
            } => {
                self.reject(event, short_of_stock(&sku, requested, available), now)
                    .await
            }
        }
    }

    async fn reject(
        &self,
        event: &LifecycleEvent,
        rejection: Rejection,
        at: String,
    ) -> Result<InventoryOutcome, PortError> {
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Accepted,
            OrderStatus::Rejected,
            event.version,
            at,
        ) else {
            return Ok(InventoryOutcome::Duplicate);
        };
        write.rejection = Some(rejection.clone());
        Ok(if self.store.transition(&write).await? {
            InventoryOutcome::Rejected(rejection)
        } else {
            InventoryOutcome::Duplicate
        })
    }
}

impl<I: InventoryStore> RecordHandler for InventoryWorker<I> {
    type Outcome = InventoryOutcome;

    async fn handle(&self, record: &SqsMessage) -> InventoryOutcome {
        let event = match crate::events::read_event(record) {
            Ok(e) => e,
            Err(e) => return InventoryOutcome::Invalid(e),
        };
        if event.event_type != EventType::OrderAccepted {
            return InventoryOutcome::Ignored(event.event_type);
        }
        let outcome = match self.reserve(&event).await {
            Ok(outcome) => outcome,
            Err(e) => InventoryOutcome::Unavailable(e),
        };
        match &outcome {
            InventoryOutcome::Reserved => tracing::debug!("stock reserved"),
            InventoryOutcome::Rejected(r) => {
                tracing::info!(reason = %r.reason, sku = r.sku.as_deref().unwrap_or("-"), "order rejected")
            }
            InventoryOutcome::Duplicate => {
                tracing::debug!("the order is past ACCEPTED: a duplicate event, nothing written")
            }
            _ => {}
        }
        outcome
    }
}

/// The Inventory table on DynamoDB, with the Orders table for the transaction's order update.
#[derive(Clone)]
pub struct DynamoInventory {
    orders: DynamoStore,
    table: String,
}

impl DynamoInventory {
    pub fn new(orders: DynamoStore, inventory_table: impl Into<String>) -> Self {
        Self {
            orders,
            table: inventory_table.into(),
        }
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.orders.client()
    }

    pub(crate) fn orders(&self) -> &DynamoStore {
        &self.orders
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Runs `stock` (the Inventory updates) and `write` (the order's transition, last) as one
    /// transaction, idempotent for `what` on the order at its version. `None` when it committed,
    /// else the cancellation reasons, one per item in that order.
    pub(crate) async fn transact(
        &self,
        mut stock: Vec<TransactWriteItem>,
        write: &TransitionWrite,
        what: &str,
    ) -> Result<Option<Vec<aws_sdk_dynamodb::types::CancellationReason>>, PortError> {
        let t = transition_update(write)?;
        let order = Update::builder()
            .table_name(self.orders.table())
            .set_key(Some(t.key))
            .update_expression(t.update)
            .condition_expression(t.condition)
            .set_expression_attribute_names(Some(t.names))
            .set_expression_attribute_values(Some(t.values))
            .build()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        stock.push(TransactWriteItem::builder().update(order).build());
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(stock))
            .client_request_token(request_token(what, &write.order_id, write.expected_version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                Ok(Some(match ctx.into_err() {
                    TransactWriteItemsError::TransactionCanceledException(e) => {
                        e.cancellation_reasons.unwrap_or_default()
                    }
                    _ => Vec::new(),
                }))
            }
            Err(e) => Err(classify(&e)),
        }
    }
}

/// A transaction's idempotency token (at most 36 characters): what it does, the order and its
/// version, hashed.
pub(crate) fn request_token(what: &str, order_id: &str, version: u64) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{what}\n{order_id}\n{version}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sku_key(sku: &str) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([("sku".to_string(), AttributeValue::S(sku.to_string()))])
}

impl InventoryStore for DynamoInventory {
    async fn items(&self, skus: &[String]) -> Result<BTreeMap<String, InventoryItem>, PortError> {
        let mut found = BTreeMap::new();
        for chunk in skus.chunks(100) {
            let mut keys = KeysAndAttributes::builder().consistent_read(true);
            for sku in chunk {
                keys = keys.keys(sku_key(sku));
            }
            let mut request = std::collections::HashMap::from([(
                self.table.clone(),
                keys.build().map_err(|e| PortError::Fatal(e.to_string()))?,
            )]);
            // Unprocessed keys come back under throttling: ask again for them.
            for _ in 0..5 {
                let out = self
                    .client()
                    .batch_get_item()
                    .set_request_items(Some(request.clone()))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                for raw in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let item: InventoryItem = serde_dynamo::from_item(raw).map_err(|e| {
                        PortError::Fatal(format!("an inventory item does not map: {e}"))
                    })?;
                    found.insert(item.sku.clone(), item);
                }
                match out.unprocessed_keys.filter(|u| !u.is_empty()) {
                    Some(rest) => request = rest,
                    None => break,
                }
            }
        }
        Ok(found)
    }

    async fn reserve(&self, write: &TransitionWrite) -> Result<Reserve, PortError> {
        let lines: &[ReservedLine] = write.reservation.as_deref().unwrap_or_default();
        let mut items = Vec::with_capacity(lines.len() + 1);
        for line in lines {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(sku_key(&line.sku)))
                .update_expression(
                    "SET available = available - :q, reserved = reserved + :q, version = version + :one",
                )
                .condition_expression("available >= :q")
                .expression_attribute_values(":q", AttributeValue::N(line.quantity.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(|e| PortError::Fatal(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        // The same order's reservation retried within 10 minutes is one reservation.
        let Some(cancelled) = self.transact(items, write, "reserve").await? else {
            return Ok(Reserve::Reserved);
        };
        let code = |i: usize| {
            cancelled
                .get(i)
                .and_then(|r| r.code.as_deref())
                .unwrap_or("None")
        };
        // The order first: a stale event must not read as short stock.
        if code(lines.len()) == "ConditionalCheckFailed" {
            return Ok(Reserve::OrderMovedOn);
        }
        for (i, line) in lines.iter().enumerate() {
            if code(i) == "ConditionalCheckFailed" {
                let available = cancelled[i]
                    .item
                    .as_ref()
                    .and_then(|old| old.get("available"))
                    .and_then(|a| a.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok());
                return Ok(Reserve::Short {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available,
                });
            }
        }
        let codes: Vec<&str> = (0..=lines.len()).map(code).collect();
        Err(PortError::Retryable(format!(
            "the reservation's transaction was cancelled ({codes:?}); retrying"
        )))
    }

    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        self.orders.transition(write).await
    }
}

/// An order's status, version and the last transition applied to it (the in-memory store).
#[cfg(any(test, feature = "test-support"))]
pub type OrderState = (OrderStatus, u64, Option<TransitionWrite>);

/// An in-memory inventory and order states with the same conditions (tests).
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryInventory {
    pub stock: std::sync::Mutex<BTreeMap<String, InventoryItem>>,
    /// Each order's (status, version) and the last transition applied to it.
    pub orders: std::sync::Mutex<BTreeMap<String, OrderState>>,
    /// Fail every call with this error (an outage, throttling).
    pub failing: std::sync::Mutex<Option<PortError>>,
    /// Answer reads only after this long (a stalled table).
    pub stall: std::sync::Mutex<Option<std::time::Duration>>,
    /// Payment attempts counted per order.
    pub attempts: std::sync::Mutex<BTreeMap<String, u32>>,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryInventory {
    pub fn with(stock: Vec<InventoryItem>) -> Self {
        Self {
            stock: std::sync::Mutex::new(stock.into_iter().map(|i| (i.sku.clone(), i)).collect()),
            ..Default::default()
        }
    }

    pub fn order(&self, order_id: &str, status: OrderStatus, version: u64) {
        if let Ok(mut o) = self.orders.lock() {
            o.insert(order_id.to_string(), (status, version, None));
        }
    }

    pub fn status(&self, order_id: &str) -> Option<OrderState> {
        self.orders.lock().ok()?.get(order_id).cloned()
    }

    pub fn item(&self, sku: &str) -> Option<InventoryItem> {
        self.stock.lock().ok()?.get(sku).cloned()
    }

    pub(crate) fn check(&self) -> Result<(), PortError> {
        match self.failing.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether `write`'s condition holds: the lifecycle's own description of a conditional
    /// update ([`order_domain::lifecycle::apply`]), which the DynamoDB conditions are tested
    /// against on moto.
    pub(crate) fn applies(&self, write: &TransitionWrite) -> bool {
        let orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        let (Some((status, version, _)), Some(from)) =
            (orders.get(&write.order_id), write.change.from)
        else {
            return false;
        };
        order_domain::lifecycle::apply(
            order_domain::lifecycle::Stored {
                status: *status,
                version: *version,
            },
            order_domain::lifecycle::Request {
                from,
                expected_version: write.expected_version,
                to: write.change.to,
            },
        )
        .is_some()
    }

    pub(crate) fn apply(&self, write: &TransitionWrite) {
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        orders.insert(
            write.order_id.clone(),
            (
                write.change.to,
                write.expected_version + 1,
                Some(write.clone()),
            ),
        );
    }
}

#[cfg(any(test, feature = "test-support"))]
impl InventoryStore for MemoryInventory {
    async fn items(&self, skus: &[String]) -> Result<BTreeMap<String, InventoryItem>, PortError> {
        self.check()?;
        let stall = self.stall.lock().ok().and_then(|s| *s);
        if let Some(d) = stall {
            tokio::time::sleep(d).await;
        }
        let stock = self
            .stock
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        Ok(skus
            .iter()
            .filter_map(|s| stock.get(s).map(|i| (s.clone(), i.clone())))
            .collect())
    }

    async fn reserve(&self, write: &TransitionWrite) -> Result<Reserve, PortError> {
        self.check()?;
        let lines = write.reservation.clone().unwrap_or_default();
        if !self.applies(write) {
            return Ok(Reserve::OrderMovedOn);
        }
        let mut stock = self
            .stock
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        for line in &lines {
            let available = stock.get(&line.sku).map(|i| i.available);
            if available.unwrap_or(0) < u64::from(line.quantity) {
                return Ok(Reserve::Short {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available,
                });
            }
        }
        for line in &lines {
            if let Some(item) = stock.get_mut(&line.sku) {
                item.available -= u64::from(line.quantity);
                item.reserved += u64::from(line.quantity);
                item.version += 1;
            }
        }
        drop(stock);
        self.apply(write);
        Ok(Reserve::Reserved)
    }

    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        self.check()?;
        if !self.applies(write) {
            return Ok(false);
        }
        self.apply(write);
        Ok(true)
    }
}
