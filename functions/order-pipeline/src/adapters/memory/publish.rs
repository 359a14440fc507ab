//! In-memory topics: each keeps what was published, or fails publishing.

use order_domain::{CustomerNotification, LifecycleEvent};

use crate::ports::publish::{CustomerPublisher, EventPublisher, Notifier, OrderPublisher};
use crate::ports::PortError;

/// Keeps published orders in memory, or fails every publish (tests).
#[derive(Default)]
pub struct MemoryPublisher {
    pub published: std::sync::Mutex<Vec<(String, String)>>,
    pub failing: std::sync::atomic::AtomicBool,
}

impl MemoryPublisher {
    /// (body, correlation id) of every published order.
    pub fn published(&self) -> Vec<(String, String)> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

impl OrderPublisher for MemoryPublisher {
    async fn publish_order(&self, body: &str, correlation_id: &str) -> Result<String, PortError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Retryable("SNS throttled the publish".into()));
        }
        let mut published = self
            .published
            .lock()
            .map_err(|e| PortError::Fatal(e.to_string()))?;
        published.push((body.to_string(), correlation_id.to_string()));
        Ok(format!("memory-{}", published.len()))
    }
}

/// Keeps published events in memory, or fails publishing (tests).
#[derive(Default)]
pub struct MemoryEventPublisher {
    pub published: std::sync::Mutex<Vec<LifecycleEvent>>,
    /// Publishing the event with this id fails.
    pub failing_event_id: std::sync::Mutex<Option<String>>,
    /// The event ids of each `publish_events` call, in order.
    pub batches: std::sync::Mutex<Vec<Vec<String>>>,
}

impl MemoryEventPublisher {
    pub fn published(&self) -> Vec<LifecycleEvent> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The event ids of each `publish_events` call (a request, for SNS's PublishBatch).
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl EventPublisher for MemoryEventPublisher {
    async fn publish_event(&self, event: &LifecycleEvent) -> Result<(), PortError> {
        let failing = self.failing_event_id.lock().ok().and_then(|f| f.clone());
        if failing.as_deref() == Some(event.event_id.as_str()) {
            return Err(PortError::Retryable("SNS throttled the publish".into()));
        }
        if let Ok(mut p) = self.published.lock() {
            p.push(event.clone());
        }
        Ok(())
    }

    async fn publish_events(&self, events: &[&LifecycleEvent]) -> Vec<Result<(), PortError>> {
        if let Ok(mut b) = self.batches.lock() {
            b.push(events.iter().map(|e| e.event_id.clone()).collect());
        }
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.publish_event(event).await);
        }
        results
    }
}

/// Keeps published notifications in memory (tests).
#[derive(Default)]
pub struct MemoryCustomerPublisher {
    pub published: std::sync::Mutex<Vec<CustomerNotification>>,
    pub failing: std::sync::Mutex<Option<PortError>>,
}

impl CustomerPublisher for MemoryCustomerPublisher {
    async fn publish(&self, n: &CustomerNotification) -> Result<(), PortError> {
        if let Some(e) = self.failing.lock().ok().and_then(|f| f.clone()) {
            return Err(e);
        }
        if let Ok(mut p) = self.published.lock() {
            p.push(n.clone());
        }
        Ok(())
    }
}

/// Keeps published notifications in memory (tests).
#[derive(Default)]
pub struct MemoryNotifier {
    pub published: std::sync::Mutex<Vec<(String, String)>>,
}

impl MemoryNotifier {
    pub fn published(&self) -> Vec<(String, String)> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Notifier for MemoryNotifier {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        if let Ok(mut p) = self.published.lock() {
            p.push((subject.to_string(), message.to_string()));
        }
        Ok(())
    }
}
