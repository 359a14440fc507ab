//! The Inventory table on DynamoDB ([`DynamoInventory`]): the inventory stage's reservation and
//! the payment stage's settling writes, each one `TransactWriteItems` of the stock updates and
//! the order's conditional transition.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use order_domain::{InventoryItem, OrderItem, OrderStatus, ReservedLine};

use tracing::Instrument;

use crate::adapters::aws::classify;
use crate::adapters::dynamodb::{transition_update, DynamoStore};
use crate::ports::inventory::{Claim, InventoryStore, PaymentStore, Reserve, StockMove};
use crate::ports::orders::{OrderReader, TransitionWrite};
use crate::ports::PortError;
use crate::runtime::telemetry::trace;

/// The Inventory table on DynamoDB, with the Orders table for the transaction's order update.
#[derive(Clone)]
pub struct DynamoInventory {
    orders: DynamoStore,
    table: String,
    /// Sends of a transaction cancelled only by `TransactionConflict` ([`CONFLICT_TRIES`]).
    conflict_tries: u32,
}

impl DynamoInventory {
    pub fn new(orders: DynamoStore, inventory_table: impl Into<String>) -> Self {
        Self {
            orders,
            table: inventory_table.into(),
            conflict_tries: CONFLICT_TRIES,
        }
    }

    /// Sends a transaction cancelled only by conflicts `tries` times in all (at least once).
    pub fn with_conflict_tries(self, tries: u32) -> Self {
        Self {
            conflict_tries: tries.max(1),
            ..self
        }
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.orders.client()
    }

    fn orders(&self) -> &DynamoStore {
        &self.orders
    }

    fn table(&self) -> &str {
        &self.table
    }

    /// Runs `stock` (the Inventory updates of `lines`) and `write` (the order's transition,
    /// last) as one transaction, idempotent for exactly this request (see [`request_token`]).
    /// `None` when it committed, else the cancellation reasons, one per item in that order.
    ///
    /// A transaction cancelled only because another one was in flight on one of its items
    /// (`TransactionConflict`, e.g. two orders of one busy sku) is sent again here, up to
    /// `conflict_tries` times in all ([`CONFLICT_TRIES`] by default), after a jittered pause
    /// ([`conflict_pause`]): DynamoDB evaluates every condition again, so the retry decides on
    /// the stock and the order as they are then (the record does not wait a visibility timeout
    /// for a conflict that lasted milliseconds). Conflicts left after the last try are returned,
    /// and the caller fails the record with [`Cancellation::retry_error`]
    /// ([`PortError::Contention`]: the record's outcome is `contended`, its metric
    /// RecordsContended) for SQS to deliver again.
    async fn transact(
        &self,
        stock: Vec<TransactWriteItem>,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        what: &str,
    ) -> Result<Option<Cancellation>, PortError> {
        let mut tries = 1;
        loop {
            let cancelled = self
                .transact_once(stock.clone(), write, lines, what, tries)
                .await?;
            match cancelled {
                Some(c) if c.only_conflicts() && tries < self.conflict_tries => {
                    let pause = conflict_pause(tries);
                    tracing::debug!(
                        order_id = %write.order_id,
                        what,
                        tries,
                        pause_ms = pause.as_millis() as u64,
                        codes = ?c.codes(),
                        "transaction conflict: sending the transaction again"
                    );
                    tokio::time::sleep(pause).await;
                    tries += 1;
                }
                other => return Ok(other),
            }
        }
    }

    async fn transact_once(
        &self,
        mut stock: Vec<TransactWriteItem>,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        what: &str,
        try_number: u32,
    ) -> Result<Option<Cancellation>, PortError> {
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
            .client_request_token(request_token(what, write, lines, try_number))
            .send()
            .instrument(trace::aws_call("DynamoDB", "TransactWriteItems"))
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    TransactWriteItemsError::IdempotentParameterMismatchException(_)
                ) =>
            {
                // Cannot happen while the token hashes the whole request; should it, the
                // request is not the one the token first named: the stage's next try is a new
                // request (a new timestamp, so a new token) whose conditions decide.
                Err(PortError::Retryable(format!(
                    "the {what} transaction's token was used with other parameters (IdempotentParameterMismatch); the record is tried again as a new request"
                )))
            }
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                Ok(Some(Cancellation(match ctx.into_err() {
                    TransactWriteItemsError::TransactionCanceledException(e) => {
                        e.cancellation_reasons.unwrap_or_default()
                    }
                    _ => Vec::new(),
                })))
            }
            Err(e) => Err(classify(&e)),
        }
    }
}

/// A transaction's idempotency token (32 hex characters; DynamoDB takes up to 36): a hash of
/// everything the transaction writes: what it does, the order's transition (its id, version,
/// timestamp and every field it records) and the stock lines.
///
/// DynamoDB answers `IdempotentParameterMismatch` to a token it saw within 10 minutes with
/// other parameters. The token was once (what, order, version) only, while the request carries
/// the step's timestamp and the payment's attempt count: a transaction cancelled (a conflict on
/// a busy sku, throttling) and tried again by the stage within 10 minutes was refused with that
/// error, classified fatal, until the record dead-lettered. Now a retry of the same request
/// (the SDK's) has the same token and is answered as the first was; the stage's next try is a
/// new request whose order condition decides.
///
/// `try_number` counts the sends after a `TransactionConflict` ([`DynamoInventory::transact`]):
/// a cancelled transaction wrote nothing, and its resend is a request of its own.
fn request_token(
    what: &str,
    write: &TransitionWrite,
    lines: &[ReservedLine],
    try_number: u32,
) -> String {
    use sha2::Digest;
    // Debug of these types is deterministic: structs, vectors and options, no hash maps.
    let digest =
        sha2::Sha256::digest(format!("{what}\n{write:?}\n{lines:?}\n{try_number}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// How many times a transaction is sent while it is cancelled only by `TransactionConflict`:
/// 10 sends wait 0.69-1.38 s in all ([`conflict_pause`]), well inside a record's deadline. Five
/// (0.19-0.38 s) left no record of a 5,000-order flash sale waiting on an idle machine, and 7 of
/// 1,100 on a loaded one (each then waited the inventory queue's visibility timeout, 61 s):
/// docs/benchmarks.md, "Flash sale".
pub const CONFLICT_TRIES: u32 = 10;

/// The pause before resending a transaction after conflict number `tries`: "equal jitter" over
/// 25 ms × 2^(tries-1), at most 200 ms, i.e. between half of that and all of it (12.5-25,
/// 25-50, 50-100, then 100-200 ms each), so transactions that collided do not collide again in
/// step.
fn conflict_pause(tries: u32) -> Duration {
    let ceiling_us = 25_000u64 << tries.saturating_sub(1).min(3);
    // A v4 uuid is random: its low bits are the jitter, without another dependency.
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_micros(ceiling_us / 2 + random % (ceiling_us / 2 + 1))
}

/// Milliseconds since the epoch (the claim's clock: the functions' clocks agree within a few ms).
fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn sku_key(sku: &str) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([("sku".to_string(), AttributeValue::S(sku.to_string()))])
}

impl OrderReader for DynamoInventory {
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.orders.get(order_id).await
    }
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
                    .instrument(trace::aws_call("DynamoDB", "BatchGetItem"))
                    .await
                    .map_err(|e| classify(&e))?;
                for raw in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let sku = match raw.get("sku") {
                        Some(AttributeValue::S(sku)) => sku.clone(),
                        _ => "?".into(),
                    };
                    let item: InventoryItem = serde_dynamo::from_item(raw).map_err(|e| {
                        PortError::Unreadable(format!(
                            "the Inventory item of sku {sku} does not map: {e} (an item needs available, reserved, sold and version; docs/contract.md, Inventory)"
                        ))
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
        let Some(cancelled) = self.transact(items, write, lines, "reserve").await? else {
            return Ok(Reserve::Reserved);
        };
        // The order first: a stale event must not read as short stock.
        if cancelled.condition_failed(lines.len()) {
            return Ok(Reserve::OrderMovedOn);
        }
        for (i, line) in lines.iter().enumerate() {
            if cancelled.condition_failed(i) {
                let available = cancelled.0[i]
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
        Err(cancelled.retry_error("the reservation's transaction"))
    }

    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        self.orders.transition(write).await
    }
}

impl PaymentStore for DynamoInventory {
    async fn claim_attempt(
        &self,
        order_id: &str,
        version: u64,
        lease: Duration,
    ) -> Result<Claim, PortError> {
        let now = epoch_ms(SystemTime::now());
        let result = self
            .client()
            .update_item()
            .table_name(self.orders().table())
            .key("orderId", AttributeValue::S(order_id.to_string()))
            .update_expression(
                "SET paymentAttempts = if_not_exists(paymentAttempts, :zero) + :one, paymentClaimUntil = :until",
            )
            .condition_expression(
                "#s = :reserved AND version = :v AND (attribute_not_exists(paymentClaimUntil) OR paymentClaimUntil <= :now)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":reserved",
                AttributeValue::S(OrderStatus::Reserved.as_str().into()),
            )
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(
                ":until",
                AttributeValue::N((now + lease.as_millis() as u64).to_string()),
            )
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .instrument(trace::aws_call("DynamoDB", "UpdateItem"))
            .await;
        match result {
            Ok(out) => {
                let attributes = out.attributes.unwrap_or_default();
                let attempt = attributes
                    .get("paymentAttempts")
                    .and_then(|n| n.as_n().ok())
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(1);
                let order: OrderItem = serde_dynamo::from_item(attributes).map_err(|e| {
                    PortError::Unreadable(format!(
                        "stored item {order_id} does not map to an order: {e}"
                    ))
                })?;
                Ok(Claim::Claimed {
                    attempt,
                    order: Box::new(order),
                })
            }
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                let old = match ctx.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                }
                .unwrap_or_default();
                let text = |name: &str| old.get(name).and_then(|v| v.as_s().ok()).cloned();
                let number = |name: &str| {
                    old.get(name)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse::<u64>().ok())
                };
                let still_reserved = text("status").as_deref()
                    == Some(OrderStatus::Reserved.as_str())
                    && number("version") == Some(version);
                Ok(match number("paymentClaimUntil") {
                    Some(until) if still_reserved && until > now => Claim::Held {
                        left: Duration::from_millis(until - now),
                    },
                    _ => Claim::MovedOn,
                })
            }
            Err(e) => Err(classify(&e)),
        }
    }

    async fn release_claim(&self, order_id: &str, attempt: u32) -> Result<(), PortError> {
        // The claim ends now, and the item keeps when: the refund stage waits well past it
        // before it trusts "no charge" (a charge this attempt sent may still be in progress).
        let now = epoch_ms(SystemTime::now());
        let result = self
            .client()
            .update_item()
            .table_name(self.orders().table())
            .key("orderId", AttributeValue::S(order_id.to_string()))
            .update_expression("SET paymentClaimUntil = :now")
            .condition_expression("paymentAttempts = :attempt AND paymentClaimUntil > :now")
            .expression_attribute_values(":attempt", AttributeValue::N(attempt.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .instrument(trace::aws_call("DynamoDB", "UpdateItem"))
            .await;
        super::unless_condition_failed(result)?;
        Ok(())
    }

    async fn count_refund_attempt(
        &self,
        order_id: &str,
        version: u64,
    ) -> Result<Option<u32>, PortError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.orders().table())
            .key("orderId", AttributeValue::S(order_id.to_string()))
            .update_expression("SET refundAttempts = if_not_exists(refundAttempts, :zero) + :one")
            .condition_expression("#s = :cancelling AND version = :v")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":cancelling",
                AttributeValue::S(OrderStatus::Cancelling.as_str().into()),
            )
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .instrument(trace::aws_call("DynamoDB", "UpdateItem"))
            .await;
        let Some(out) = super::unless_condition_failed(result)? else {
            return Ok(None);
        };
        Ok(Some(
            out.attributes
                .unwrap_or_default()
                .get("refundAttempts")
                .and_then(|n| n.as_n().ok())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(1),
        ))
    }

    async fn settle(
        &self,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        stock: StockMove,
    ) -> Result<bool, PortError> {
        let (expression, condition) = match stock {
            StockMove::Sell => (
                "SET reserved = reserved - :q, sold = sold + :q, version = version + :one",
                "reserved >= :q",
            ),
            StockMove::Release => (
                "SET reserved = reserved - :q, available = available + :q, version = version + :one",
                "reserved >= :q",
            ),
            StockMove::Restock => (
                "SET sold = sold - :q, available = available + :q, version = version + :one",
                "sold >= :q",
            ),
        };
        let mut items = Vec::with_capacity(lines.len() + 1);
        for line in lines {
            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(sku_key(&line.sku)))
                .update_expression(expression)
                .condition_expression(condition)
                .expression_attribute_values(":q", AttributeValue::N(line.quantity.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .build()
                .map_err(|e| PortError::Fatal(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let what = match stock {
            StockMove::Sell => "sell",
            StockMove::Release => "release",
            StockMove::Restock => "restock",
        };
        let Some(reasons) = self.transact(items, write, lines, what).await? else {
            return Ok(true);
        };
        if reasons.condition_failed(lines.len()) {
            return Ok(false);
        }
        if let Some(line) = (0..lines.len())
            .find(|i| reasons.condition_failed(*i))
            .map(|i| &lines[i])
        {
            return Err(PortError::Fatal(format!(
                "sku {} holds fewer {} units than order {}'s {}: the Inventory table was changed outside the pipeline; correct the item, then redrive the event",
                line.sku,
                if stock == StockMove::Restock { "sold" } else { "reserved" },
                write.order_id,
                line.quantity
            )));
        }
        Err(reasons.retry_error("the payment's transaction"))
    }
}

/// A cancelled stock transaction's reasons, one per item in the order they were sent: the stock
/// lines, then the order.
struct Cancellation(Vec<aws_sdk_dynamodb::types::CancellationReason>);

impl Cancellation {
    /// Item `i`'s cancellation code ("None" when it was not the cause).
    fn code(&self, i: usize) -> &str {
        self.0
            .get(i)
            .and_then(|r| r.code.as_deref())
            .unwrap_or("None")
    }

    /// Whether item `i`'s condition failed.
    fn condition_failed(&self, i: usize) -> bool {
        self.code(i) == "ConditionalCheckFailed"
    }

    /// Whether the only causes were other transactions in flight on the items
    /// (`TransactionConflict`): no condition failed.
    fn only_conflicts(&self) -> bool {
        let codes = self.codes();
        codes.contains(&"TransactionConflict")
            && codes
                .iter()
                .all(|c| matches!(*c, "TransactionConflict" | "None"))
    }

    /// The error of a transaction `what` cancelled for no condition the caller acts on: the
    /// record fails and SQS delivers it again. [`PortError::Contention`] when only conflicts
    /// were left after the last send (the record's outcome is `contended`: it waits its queue's
    /// retry delay because of a busy item); else [`PortError::Retryable`] (e.g. throttling).
    fn retry_error(&self, what: &str) -> PortError {
        let text = format!("{what} was cancelled ({:?}); retrying", self.codes());
        if self.only_conflicts() {
            PortError::Contention(text)
        } else {
            PortError::Retryable(text)
        }
    }

    /// Every item's code, for the log.
    fn codes(&self) -> Vec<&str> {
        (0..self.0.len()).map(|i| self.code(i)).collect()
    }
}
