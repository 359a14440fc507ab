//! An in-memory Inventory table and order states ([`MemoryInventory`]), with the same conditions
//! as the DynamoDB adapter, for the inventory, payment and notification stages.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use order_domain::{InventoryItem, OrderItem, OrderStatus, ReservedLine};

use crate::ports::inventory::{Claim, InventoryStore, PaymentStore, Reserve, StockMove};
use crate::ports::orders::{LifecycleStore, OrderReader, TransitionWrite};
use crate::ports::PortError;

/// An order's status, version and the last transition applied to it (the in-memory store).
pub type OrderState = (OrderStatus, u64, Option<TransitionWrite>);

/// An in-memory inventory and order states with the same conditions (tests).
#[derive(Default)]
pub struct MemoryInventory {
    pub stock: std::sync::Mutex<BTreeMap<String, InventoryItem>>,
    /// Each order's (status, version) and the last transition applied to it.
    pub orders: std::sync::Mutex<BTreeMap<String, OrderState>>,
    /// Fail every call with this error (an outage, throttling).
    pub failing: std::sync::Mutex<Option<PortError>>,
    /// Fail the stock's reads and the reservation with this error, the orders' writes still
    /// working (an Inventory item the adapter cannot read, written by another system).
    pub failing_stock: std::sync::Mutex<Option<PortError>>,
    /// Fail the next orders' conditional writes (transitions, recorded failures) with these
    /// errors, one each, reads still working (a write throttled once).
    pub failing_writes: std::sync::Mutex<Vec<PortError>>,
    /// Answer reads only after this long (a stalled table).
    pub stall: std::sync::Mutex<Option<std::time::Duration>>,
    /// Payment attempts counted per order.
    pub attempts: std::sync::Mutex<BTreeMap<String, u32>>,
    /// The stored orders a payment attempt reads ([`MemoryInventory::stored`]).
    pub items: std::sync::Mutex<BTreeMap<String, OrderItem>>,
    /// Each order's payment claim: the attempt holding it and until when.
    pub claims: std::sync::Mutex<BTreeMap<String, (u32, Instant)>>,
    /// Refund calls counted per order.
    pub refund_attempts: std::sync::Mutex<BTreeMap<String, u32>>,
}

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

    /// Stores `item` as the table would hold it: its status and version, and the order a
    /// payment attempt reads.
    pub fn stored(&self, item: &OrderItem) {
        self.order(&item.order_id, item.status, item.version);
        if let Ok(mut items) = self.items.lock() {
            items.insert(item.order_id.clone(), item.clone());
        }
    }

    pub fn status(&self, order_id: &str) -> Option<OrderState> {
        self.orders.lock().ok()?.get(order_id).cloned()
    }

    pub fn item(&self, sku: &str) -> Option<InventoryItem> {
        self.stock.lock().ok()?.get(sku).cloned()
    }

    /// Waits as long as a stalled table answers reads ([`MemoryInventory::stall`]).
    async fn stalled(&self) {
        let stall = self.stall.lock().ok().and_then(|s| *s);
        if let Some(d) = stall {
            tokio::time::sleep(d).await;
        }
    }

    fn check(&self) -> Result<(), PortError> {
        match self.failing.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check_writes(&self) -> Result<(), PortError> {
        self.check()?;
        match self.failing_writes.lock().ok().and_then(|mut f| f.pop()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check_stock(&self) -> Result<(), PortError> {
        self.check()?;
        match self.failing_stock.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether `write`'s condition holds: the lifecycle's own description of a conditional
    /// update ([`order_domain::lifecycle::apply`]), which the DynamoDB conditions are tested
    /// against on moto.
    fn applies(&self, write: &TransitionWrite) -> bool {
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

    fn apply(&self, write: &TransitionWrite) {
        if let Some(item) = self
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&write.order_id)
        {
            super::record_fields(write, item);
        }
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

impl InventoryStore for MemoryInventory {
    async fn items(&self, skus: &[String]) -> Result<BTreeMap<String, InventoryItem>, PortError> {
        self.check_stock()?;
        self.stalled().await;
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
        self.check_stock()?;
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
        self.check_writes()?;
        if !self.applies(write) {
            return Ok(false);
        }
        self.apply(write);
        Ok(true)
    }
}

impl PaymentStore for MemoryInventory {
    async fn claim_attempt(
        &self,
        order_id: &str,
        version: u64,
        lease: Duration,
    ) -> Result<Claim, PortError> {
        self.check()?;
        let still =
            matches!(self.status(order_id), Some((OrderStatus::Reserved, v, _)) if v == version);
        if !still {
            return Ok(Claim::MovedOn);
        }
        let now = Instant::now();
        let mut claims = self
            .claims
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        if let Some((_, until)) = claims.get(order_id).filter(|(_, until)| *until > now) {
            return Ok(Claim::Held { left: *until - now });
        }
        let order = self
            .items
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?
            .get(order_id)
            .cloned()
            .ok_or_else(|| {
                PortError::Fatal(format!(
                    "order {order_id} has a status but no stored item: store it with MemoryInventory::stored"
                ))
            })?;
        let mut attempts = self
            .attempts
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        let n = attempts.entry(order_id.to_string()).or_default();
        *n += 1;
        claims.insert(order_id.to_string(), (*n, now + lease));
        Ok(Claim::Claimed {
            attempt: *n,
            order: Box::new(order),
        })
    }

    async fn release_claim(&self, order_id: &str, attempt: u32) -> Result<(), PortError> {
        self.check()?;
        let mut claims = self
            .claims
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        if claims
            .get(order_id)
            .is_some_and(|(held_by, _)| *held_by == attempt)
        {
            claims.insert(order_id.to_string(), (attempt, Instant::now()));
        }
        Ok(())
    }

    async fn count_refund_attempt(
        &self,
        order_id: &str,
        version: u64,
    ) -> Result<Option<u32>, PortError> {
        self.check()?;
        let still = matches!(
            self.status(order_id),
            Some((OrderStatus::Cancelling, v, _)) if v == version
        );
        if !still {
            return Ok(None);
        }
        let mut attempts = self
            .refund_attempts
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        let n = attempts.entry(order_id.to_string()).or_default();
        *n += 1;
        Ok(Some(*n))
    }

    async fn settle(
        &self,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        stock: StockMove,
    ) -> Result<bool, PortError> {
        self.check()?;
        if !self.applies(write) {
            return Ok(false);
        }
        let mut items = self
            .stock
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        for line in lines {
            let q = u64::from(line.quantity);
            let held = items.get(&line.sku).map_or(0, |i| match stock {
                StockMove::Restock => i.sold,
                _ => i.reserved,
            });
            if held < q {
                return Err(PortError::Fatal(format!(
                    "sku {} holds fewer {} units than the order's",
                    line.sku,
                    if stock == StockMove::Restock {
                        "sold"
                    } else {
                        "reserved"
                    }
                )));
            }
        }
        for line in lines {
            if let Some(item) = items.get_mut(&line.sku) {
                let q = u64::from(line.quantity);
                match stock {
                    StockMove::Sell => {
                        item.reserved -= q;
                        item.sold += q;
                    }
                    StockMove::Release => {
                        item.reserved -= q;
                        item.available += q;
                    }
                    StockMove::Restock => {
                        item.sold -= q;
                        item.available += q;
                    }
                }
                item.version += 1;
            }
        }
        drop(items);
        self.apply(write);
        Ok(true)
    }
}

impl OrderReader for MemoryInventory {
    /// The order [`MemoryInventory::stored`] holds, at its current status and version, with what
    /// the transitions since recorded; `None` for an order given only a status.
    async fn read(&self, order_id: &str) -> Result<Option<OrderItem>, PortError> {
        self.check()?;
        self.stalled().await;
        let Some(mut item) = self
            .items
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?
            .get(order_id)
            .cloned()
        else {
            return Ok(None);
        };
        if let Some((status, version, _)) = self.status(order_id) {
            item.status = status;
            item.version = version;
        }
        Ok(Some(item))
    }
}

impl LifecycleStore for MemoryInventory {
    async fn transition(&self, write: &TransitionWrite) -> Result<bool, PortError> {
        InventoryStore::transition(self, write).await
    }

    async fn record_notification_failure(
        &self,
        order_id: &str,
        status: OrderStatus,
        version: u64,
        failure: &order_domain::NotificationFailure,
    ) -> Result<bool, PortError> {
        self.check_writes()?;
        if !matches!(self.status(order_id), Some((s, v, _)) if s == status && v == version) {
            return Ok(false);
        }
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        match items.get_mut(order_id) {
            Some(item) if item.notification_failure.is_none() => {
                item.notification_failure = Some(failure.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
