//! An in-memory store with the same conditional semantics as the DynamoDB adapter, and fault
//! injection, so handler logic is tested without a network. Only in tests and behind the
//! `test-support` feature: no Lambda binary carries it.

use std::collections::HashMap;
use std::sync::Mutex;

use order_domain::{Existing, OrderItem, OrderStatus};

use crate::ports::orders::{
    CreateResult, LifecycleStore, OrderReader, OrderStore, Reaccept, TransitionWrite,
};
use crate::ports::PortError;

/// What the store does instead of its work for one orderId.
#[derive(Debug, Clone)]
pub enum Fault {
    Fail(PortError),
    Panic,
    /// Answers only after this long (a stalled connection, a throttled table).
    Stall(std::time::Duration),
}

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, OrderItem>>,
    faults: Mutex<HashMap<String, Fault>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inject(&self, order_id: &str, fault: Fault) {
        self.lock_faults().insert(order_id.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        self.lock_faults().clear();
    }

    pub fn get(&self, order_id: &str) -> Option<OrderItem> {
        self.lock_items().get(order_id).cloned()
    }

    pub fn put(&self, item: OrderItem) {
        self.lock_items().insert(item.order_id.clone(), item);
    }

    pub fn len(&self) -> usize {
        self.lock_items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock_items(&self) -> std::sync::MutexGuard<'_, HashMap<String, OrderItem>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_faults(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fault>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn fault_for(&self, order_id: &str) -> Result<(), PortError> {
        let fault = self.lock_faults().get(order_id).cloned();
        match fault {
            None => Ok(()),
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::Panic) => panic!("injected panic for order {order_id}"),
            Some(Fault::Stall(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }
}

fn existing(item: &OrderItem) -> Existing {
    Existing {
        content_hash: item.content_hash.clone(),
        status: item.status,
        version: item.version,
    }
}

impl OrderStore for MemoryStore {
    async fn create(&self, item: &OrderItem) -> Result<CreateResult, PortError> {
        self.fault_for(&item.order_id).await?;
        let mut items = self.lock_items();
        if let Some(stored) = items.get(&item.order_id) {
            return Ok(CreateResult::Exists(existing(stored)));
        }
        items.insert(item.order_id.clone(), item.clone());
        Ok(CreateResult::Created)
    }

    async fn reaccept(&self, r: &Reaccept) -> Result<bool, PortError> {
        self.fault_for(&r.order_id).await?;
        let mut items = self.lock_items();
        match items.get_mut(&r.order_id) {
            Some(stored)
                if stored.status == OrderStatus::Failed
                    && stored.version == r.expected_version
                    && stored.content_hash == r.content_hash =>
            {
                stored.status = OrderStatus::Accepted;
                stored.accepted_at = Some(r.accepted_at.clone());
                stored.source_message_id = r.source_message_id.clone();
                stored.correlation_id = r.correlation_id.clone();
                stored.version = r.expected_version + 1;
                stored.failure = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl OrderReader for MemoryStore {
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.fault_for(order_id).await?;
        Ok(self.get(order_id))
    }
}

impl LifecycleStore for MemoryStore {
    /// The lifecycle's own conditional update ([`order_domain::lifecycle::apply`]) on the stored
    /// item, with the fields the change records and its step's timestamp.
    async fn transition(&self, w: &TransitionWrite) -> Result<bool, PortError> {
        self.fault_for(&w.order_id).await?;
        let mut items = self.lock_items();
        let (Some(item), Some(from)) = (items.get_mut(&w.order_id), w.change.from) else {
            return Ok(false);
        };
        let request = order_domain::lifecycle::Request {
            from,
            expected_version: w.expected_version,
            to: w.change.to,
        };
        let stored = order_domain::lifecycle::Stored {
            status: item.status,
            version: item.version,
        };
        let Some(next) = order_domain::lifecycle::apply(stored, request) else {
            return Ok(false);
        };
        item.status = next.status;
        item.version = next.version;
        let at = Some(w.at.clone());
        match w.change.step {
            "reservedAt" => item.reserved_at = at,
            "rejectedAt" => item.rejected_at = at,
            "paidAt" => item.paid_at = at,
            "paymentFailedAt" => item.payment_failed_at = at,
            "completedAt" => item.completed_at = at,
            "cancelRequestedAt" => item.cancel_requested_at = at,
            "cancelledAt" => item.cancelled_at = at,
            "refundedAt" => item.refunded_at = at,
            "refundFailedAt" => item.refund_failed_at = at,
            _ => {}
        }
        super::record_fields(w, item);
        Ok(true)
    }

    async fn record_notification_failure(
        &self,
        order_id: &str,
        status: OrderStatus,
        version: u64,
        failure: &order_domain::NotificationFailure,
    ) -> Result<bool, PortError> {
        self.fault_for(order_id).await?;
        let mut items = self.lock_items();
        match items.get_mut(order_id) {
            Some(item)
                if item.status == status
                    && item.version == version
                    && item.notification_failure.is_none() =>
            {
                item.notification_failure = Some(failure.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
