//! The Orders table on DynamoDB. Items are read with serde_dynamo from the domain types; the
//! item the intake writes is built directly ([`item::item_values`], [`item::item_attributes`]).
//!
//! The intake's creates can go out together ([`DynamoStore::batching_creates`]): the records of
//! a batch, handled concurrently on one thread, each ask for their own conditional create, and
//! the store sends the ones asked for together as one `BatchExecuteStatement` of PartiQL
//! `INSERT`s. An `INSERT` fails when an item with the key exists (`DuplicateItem`), so a
//! statement that succeeded stored a new order, as a conditional `PutItem` would have, at the
//! same write unit per item. Every item the batch did not store (a duplicate, a conflict, a
//! throttled statement, the whole request failing, a batch of one, a second copy of an order the
//! batch already holds) then goes through the
//! conditional `PutItem`, whose refusal returns the stored item: the decisions (duplicate,
//! conflict, re-accept) and the error classes are exactly those of a single create. One request
//! instead of ten is what the CPU per batch is made of (docs/benchmarks.md).

pub mod inventory;
pub mod item;

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementRequest, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use futures::future::{BoxFuture, FutureExt, Shared};
use order_domain::{Existing, OrderItem, OrderStatus};
use serde::Deserialize;

use tracing::Instrument;

use crate::adapters::aws::classify;
use crate::ports::orders::{
    CreateResult, LifecycleStore, OrderReader, OrderStore, Reaccept, TransitionWrite,
};
use crate::ports::PortError;
use crate::runtime::telemetry::trace;
use item::{attribute, into_map, item_values, order_key, ItemValues};

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Set when creates asked for together go out as one request.
    inserts: Option<Arc<Inserts>>,
}

/// DynamoDB's limit on the statements of one `BatchExecuteStatement`.
const STATEMENTS_MAX: usize = 25;

/// The creates waiting to go out together, and the client that sends them.
struct Inserts {
    /// The store's client without retries: a batch that fails is not sent again, its items go
    /// through the single conditional `PutItem` (with the usual retries) instead, so a throttled
    /// table meets no more attempts than without batching.
    client: Client,
    table: String,
    open: Mutex<Option<OpenInserts>>,
}

/// The batch being filled: its items (taken when it is sent) and, per item, whether the batch
/// stored it.
struct OpenInserts {
    items: Arc<Mutex<BatchItems>>,
    stored: Shared<BoxFuture<'static, Arc<Vec<bool>>>>,
}

#[derive(Default)]
struct BatchItems {
    items: Vec<ItemValues>,
    sent: bool,
}

/// The part of a stored item the decisions need.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredHead {
    content_hash: String,
    status: OrderStatus,
    version: u64,
}

impl From<StoredHead> for Existing {
    fn from(h: StoredHead) -> Self {
        Existing {
            content_hash: h.content_hash,
            status: h.status,
            version: h.version,
        }
    }
}

fn key(order_id: &str) -> (String, AttributeValue) {
    (
        "orderId".to_string(),
        AttributeValue::S(order_id.to_string()),
    )
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            inserts: None,
        }
    }

    /// This store with the creates asked for together (the records of a batch) sent as one
    /// `BatchExecuteStatement` (the module's doc); the role needs `dynamodb:PartiQLInsert`.
    pub fn batching_creates(mut self) -> Self {
        let client = Client::from_conf(
            self.client
                .config()
                .to_builder()
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                .build(),
        );
        self.inserts = Some(Arc::new(Inserts {
            client,
            table: self.table.clone(),
            open: Mutex::new(None),
        }));
        self
    }

    /// Whether the batch `item` joins stored it (`false`: it was not stored by the batch, for
    /// whatever reason, and the conditional `PutItem` decides).
    async fn insert_together(&self, inserts: &Arc<Inserts>, item: ItemValues) -> bool {
        let (stored, index) = {
            let mut open = inserts.open.lock().unwrap_or_else(|e| e.into_inner());
            let joined = match open.as_ref() {
                Some(batch) => {
                    let mut items = batch.items.lock().unwrap_or_else(|e| e.into_inner());
                    if !items.sent && items.items.len() < STATEMENTS_MAX {
                        // Two copies of one order (a redelivery beside the message) in one
                        // request: DynamoDB may refuse the whole request, as BatchWriteItem
                        // refuses duplicate keys. The second copy goes through the PutItem.
                        if items.items.iter().any(|i| order_key(i) == order_key(&item)) {
                            return false;
                        }
                        items.items.push(item);
                        Ok((batch.stored.clone(), items.items.len() - 1))
                    } else {
                        Err(item)
                    }
                }
                None => Err(item),
            };
            match joined {
                Ok(joined) => joined,
                Err(item) => {
                    let items = Arc::new(Mutex::new(BatchItems {
                        items: vec![item],
                        sent: false,
                    }));
                    // Sent by a task of its own, which runs once the task asking for this create
                    // waits: by then the batch's other records have asked for theirs.
                    // The spawned task has no current span: the call's span is made under the
                    // record that opened the batch, so the write shows in that record's trace.
                    let send = tokio::spawn(send_inserts(
                        inserts.clone(),
                        items.clone(),
                        tracing::Span::current(),
                    ));
                    let stored = async move { send.await.unwrap_or_default() }
                        .boxed()
                        .shared();
                    *open = Some(OpenInserts {
                        items,
                        stored: stored.clone(),
                    });
                    (stored, 0)
                }
            }
        };
        stored.await.get(index).copied().unwrap_or(false)
    }

    /// Reads a whole item with a strongly consistent read.
    pub async fn get(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some([key(order_id)].into()))
            .consistent_read(true)
            .send()
            .instrument(trace::aws_call("DynamoDB", "GetItem"))
            .await
            .map_err(|e| classify(&e))?;
        match out.item {
            None => Ok(None),
            Some(item) => serde_dynamo::from_item(item).map(Some).map_err(|e| {
                PortError::Unreadable(format!(
                    "stored item {order_id} does not map to an order: {e}"
                ))
            }),
        }
    }

    async fn head(&self, order_id: &str) -> Result<Option<Existing>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some([key(order_id)].into()))
            .consistent_read(true)
            .projection_expression("contentHash, #s, version")
            .expression_attribute_names("#s", "status")
            .send()
            .instrument(trace::aws_call("DynamoDB", "GetItem"))
            .await
            .map_err(|e| classify(&e))?;
        out.item.map(head_from).transpose()
    }
}

/// What a stored item says about itself; an item without this pipeline's contentHash, status
/// and version was written by another system (or edited by hand): a conflict, never an outage.
fn head_from(
    item: std::collections::HashMap<String, AttributeValue>,
) -> Result<Existing, PortError> {
    Ok(serde_dynamo::from_item::<_, StoredHead>(item)
        .map(Existing::from)
        .unwrap_or_else(|_| Existing::foreign()))
}

/// Sends the items of one batch as one `BatchExecuteStatement` of `INSERT`s; per item, whether
/// it was stored. A batch of one, a failed request or a missing answer stores nothing here.
async fn send_inserts(
    inserts: Arc<Inserts>,
    items: Arc<Mutex<BatchItems>>,
    opened_by: tracing::Span,
) -> Arc<Vec<bool>> {
    let items = {
        let mut batch = items.lock().unwrap_or_else(|e| e.into_inner());
        batch.sent = true;
        std::mem::take(&mut batch.items)
    };
    let count = items.len();
    if count < 2 {
        return Arc::new(vec![false; count]);
    }
    let statements = items
        .into_iter()
        .map(|item| insert_statement(&inserts.table, item))
        .collect::<Result<Vec<_>, _>>();
    let Ok(statements) = statements else {
        return Arc::new(vec![false; count]);
    };
    match inserts
        .client
        .batch_execute_statement()
        .set_statements(Some(statements))
        .send()
        .instrument(opened_by.in_scope(|| trace::aws_call("DynamoDB", "BatchExecuteStatement")))
        .await
    {
        Ok(out) => {
            let answers = out.responses.unwrap_or_default();
            for code in answers
                .iter()
                .filter_map(|a| a.error.as_ref()?.code.as_ref())
                .filter(|code| !EXPECTED_STATEMENT_ERRORS.contains(&code.as_str()))
            {
                tracing::warn!(code = code.as_str(), "a batched insert statement failed unexpectedly: its order is written on its own (one request more); check the table and the role");
            }
            Arc::new(
                (0..count)
                    .map(|i| answers.get(i).is_some_and(|a| a.error.is_none()))
                    .collect(),
            )
        }
        Err(e) => {
            match classify(&e) {
                PortError::Fatal(error) => {
                    tracing::warn!(%error, "the batched insert was refused: each order is written on its own (one request more per batch); if access was denied, grant the function's role dynamodb:PartiQLInsert on the table")
                }
                other => {
                    tracing::debug!(error = %other, "the batched insert failed: each order is written on its own")
                }
            }
            Arc::new(vec![false; count])
        }
    }
}

/// Statement errors of a batched insert that are part of normal operation: the key is stored
/// (a duplicate or a conflict, decided by the `PutItem`), or DynamoDB asks to try again.
const EXPECTED_STATEMENT_ERRORS: &[&str] = &[
    "DuplicateItem",
    "ConditionalCheckFailed",
    "TransactionConflict",
    "RequestLimitExceeded",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "InternalServerError",
];

/// `INSERT INTO "table" VALUE {'name': ?, ...}` with the item's values as the parameters.
fn insert_statement(
    table: &str,
    item: ItemValues,
) -> Result<BatchStatementRequest, aws_sdk_dynamodb::error::BuildError> {
    let mut statement = String::with_capacity(32 + table.len() + item.len() * 20);
    statement.push_str("INSERT INTO \"");
    statement.push_str(table);
    statement.push_str("\" VALUE {");
    let mut parameters = Vec::with_capacity(item.len());
    for (i, (name, value)) in item.into_iter().enumerate() {
        if i > 0 {
            statement.push_str(", ");
        }
        // Attribute names are the item's own (item_values): letters only, no quote to escape.
        statement.push('\'');
        statement.push_str(name);
        statement.push_str("': ?");
        parameters.push(value);
    }
    statement.push('}');
    BatchStatementRequest::builder()
        .statement(statement)
        .set_parameters(Some(parameters))
        .build()
}

impl OrderStore for DynamoStore {
    async fn create(&self, item: &OrderItem) -> Result<CreateResult, PortError> {
        let values = || {
            item_values(item).map_err(|e| {
                PortError::Fatal(format!(
                    "order {} does not map to an item: {e}",
                    item.order_id
                ))
            })
        };
        if let Some(inserts) = &self.inserts {
            if self.insert_together(inserts, values()?).await {
                return Ok(CreateResult::Created);
            }
        }
        // Built again when the batch did not store it: the rare case pays, not every record.
        let attributes = into_map(values()?);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(orderId)")
            // The stored item comes back with the refusal: no second round trip to read it.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .instrument(trace::aws_call("DynamoDB", "PutItem"))
            .await;
        match result {
            Ok(_) => Ok(CreateResult::Created),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let stored = match ctx.into_err() {
                    PutItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                };
                let existing = match stored {
                    Some(old) => head_from(old)?,
                    // An endpoint that does not return the old item: read it.
                    None => self.head(&item.order_id).await?.ok_or_else(|| {
                        PortError::Contention(format!(
                            "order {} vanished during the write",
                            item.order_id
                        ))
                    })?,
                };
                Ok(CreateResult::Exists(existing))
            }
            Err(e) => Err(classify(&e)),
        }
    }

    async fn reaccept(&self, r: &Reaccept) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some([key(&r.order_id)].into()))
            .update_expression(
                "SET #s = :accepted, acceptedAt = :at, sourceMessageId = :mid, correlationId = :cid, version = :next REMOVE failure",
            )
            .condition_expression("#s = :failed AND version = :v AND contentHash = :h")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":accepted", AttributeValue::S("ACCEPTED".into()))
            .expression_attribute_values(":failed", AttributeValue::S("FAILED".into()))
            .expression_attribute_values(":at", AttributeValue::S(r.accepted_at.clone()))
            .expression_attribute_values(":mid", AttributeValue::S(r.source_message_id.clone()))
            .expression_attribute_values(":cid", AttributeValue::S(r.correlation_id.clone()))
            .expression_attribute_values(":v", AttributeValue::N(r.expected_version.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((r.expected_version + 1).to_string()))
            .expression_attribute_values(":h", AttributeValue::S(r.content_hash.clone()))
            .send()
            .instrument(trace::aws_call("DynamoDB", "UpdateItem"))
            .await;
        Ok(unless_condition_failed(result)?.is_some())
    }
}

impl OrderReader for DynamoStore {
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.get(order_id).await
    }
}

impl LifecycleStore for DynamoStore {
    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        DynamoStore::transition(self, write).await
    }

    async fn record_notification_failure(
        &self,
        order_id: &str,
        status: order_domain::OrderStatus,
        version: u64,
        failure: &order_domain::NotificationFailure,
    ) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(std::collections::HashMap::from([key(order_id)])))
            .update_expression("SET notificationFailure = :failure")
            .condition_expression(
                "#s = :status AND version = :v AND attribute_not_exists(notificationFailure)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":failure", attribute(failure)?)
            .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .instrument(trace::aws_call("DynamoDB", "UpdateItem"))
            .await;
        Ok(unless_condition_failed(result)?.is_some())
    }
}

/// A conditional transition as DynamoDB takes it, for an `UpdateItem` or a transaction's
/// `Update`: the one place the lifecycle's condition is written for DynamoDB.
struct TransitionUpdate {
    pub key: std::collections::HashMap<String, AttributeValue>,
    pub update: String,
    pub condition: String,
    pub names: std::collections::HashMap<String, String>,
    pub values: std::collections::HashMap<String, AttributeValue>,
}

fn transition_update(w: &TransitionWrite) -> Result<TransitionUpdate, PortError> {
    let from = w
        .change
        .from
        .ok_or_else(|| PortError::Fatal("a creation is not an update".into()))?;
    let mut update = String::from("SET #s = :to, version = :next, #step = :at");
    let mut values = std::collections::HashMap::from([
        (
            ":to".to_string(),
            AttributeValue::S(w.change.to.as_str().into()),
        ),
        (":from".to_string(), AttributeValue::S(from.as_str().into())),
        (
            ":v".to_string(),
            AttributeValue::N(w.expected_version.to_string()),
        ),
        (
            ":next".to_string(),
            AttributeValue::N((w.expected_version + 1).to_string()),
        ),
        (":at".to_string(), AttributeValue::S(w.at.clone())),
    ]);
    if let Some(reservation) = &w.reservation {
        update.push_str(", reservation = :reservation");
        values.insert(":reservation".into(), attribute(reservation)?);
    }
    if let Some(amount) = &w.amount {
        update.push_str(", amount = :amount");
        values.insert(":amount".into(), AttributeValue::S(amount.clone()));
    }
    if let Some(currency) = &w.currency {
        update.push_str(", currency = :currency");
        values.insert(":currency".into(), AttributeValue::S(currency.clone()));
    }
    if let Some(rejection) = &w.rejection {
        update.push_str(", rejection = :rejection");
        values.insert(":rejection".into(), attribute(rejection)?);
    }
    if let Some(payment) = &w.payment {
        update.push_str(", payment = :payment");
        values.insert(":payment".into(), attribute(payment)?);
    }
    if let Some(failure) = &w.notification_failure {
        update.push_str(", notificationFailure = :notificationFailure");
        values.insert(":notificationFailure".into(), attribute(failure)?);
    }
    if let Some(cancellation) = &w.cancellation {
        update.push_str(", cancellation = :cancellation");
        values.insert(":cancellation".into(), attribute(cancellation)?);
    }
    if let Some(refund) = &w.refund {
        update.push_str(", refund = :refund");
        values.insert(":refund".into(), attribute(refund)?);
    }
    Ok(TransitionUpdate {
        key: std::collections::HashMap::from([key(&w.order_id)]),
        update,
        condition: "#s = :from AND version = :v".into(),
        names: std::collections::HashMap::from([
            ("#s".to_string(), "status".to_string()),
            ("#step".to_string(), w.change.step.to_string()),
        ]),
        values,
    })
}

impl DynamoStore {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Applies a conditional transition; `false` when its condition failed (the order moved on).
    pub async fn transition(&self, w: &TransitionWrite) -> Result<bool, PortError> {
        let t = transition_update(w)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(t.key))
            .update_expression(t.update)
            .condition_expression(t.condition)
            .set_expression_attribute_names(Some(t.names))
            .set_expression_attribute_values(Some(t.values))
            .send()
            .instrument(trace::aws_call("DynamoDB", "UpdateItem"))
            .await;
        Ok(unless_condition_failed(result)?.is_some())
    }
}

/// A conditional `UpdateItem`'s answer: `Some` when it was written, `None` when its condition
/// failed (the item moved on: not an error), the classified error otherwise.
fn unless_condition_failed<O>(
    result: Result<O, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<Option<O>, PortError> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(SdkError::ServiceError(ctx))
            if matches!(
                ctx.err(),
                UpdateItemError::ConditionalCheckFailedException(_)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(&e)),
    }
}
