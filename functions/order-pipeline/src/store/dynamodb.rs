//! The Orders table on DynamoDB. Items are mapped with serde_dynamo from the domain types.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use order_domain::{Existing, OrderItem, OrderStatus};

use crate::port::PortError;
use serde::Deserialize;

use super::{CreateResult, OrderStore, Reaccept};
use crate::aws::classify;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
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
        }
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
            .await
            .map_err(|e| classify(&e))?;
        match out.item {
            None => Ok(None),
            Some(item) => serde_dynamo::from_item(item).map(Some).map_err(|e| {
                PortError::Fatal(format!(
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

impl OrderStore for DynamoStore {
    async fn create(&self, item: &OrderItem) -> Result<CreateResult, PortError> {
        let attributes = serde_dynamo::to_item(item).map_err(|e| {
            PortError::Fatal(format!(
                "order {} does not map to an item: {e}",
                item.order_id
            ))
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(orderId)")
            // The stored item comes back with the refusal: no second round trip to read it.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
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
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(&e)),
        }
    }
}

/// A conditional transition as DynamoDB takes it, for an `UpdateItem` or a transaction's
/// `Update`: the one place the lifecycle's condition is written for DynamoDB.
pub(crate) struct TransitionUpdate {
    pub key: std::collections::HashMap<String, AttributeValue>,
    pub update: String,
    pub condition: String,
    pub names: std::collections::HashMap<String, String>,
    pub values: std::collections::HashMap<String, AttributeValue>,
}

fn attribute<T: serde::Serialize>(value: &T) -> Result<AttributeValue, PortError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| PortError::Fatal(e.to_string()))
}

pub(crate) fn transition_update(w: &super::TransitionWrite) -> Result<TransitionUpdate, PortError> {
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
    if let Some(rejection) = &w.rejection {
        update.push_str(", rejection = :rejection");
        values.insert(":rejection".into(), attribute(rejection)?);
    }
    if let Some(payment) = &w.payment {
        update.push_str(", payment = :payment");
        values.insert(":payment".into(), attribute(payment)?);
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
    pub async fn transition(&self, w: &super::TransitionWrite) -> Result<bool, PortError> {
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
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(&e)),
        }
    }
}
