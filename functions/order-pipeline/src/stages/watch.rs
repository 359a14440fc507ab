//! The order watch: every order that has not ended a set time after it was accepted is put where
//! an operator sees it.
//!
//! Its queue takes each `OrderAccepted` event with a delivery delay of the stuck-order age
//! (`stuckAfterMinutes`, at most SQS's 15 minutes). When the event arrives the watch reads the
//! stored order: ended (COMPLETED, REJECTED, PAYMENT_FAILED, or FAILED) is done; not ended and
//! older than the stuck-order age is **stuck**: the record is refused, so after its queue's
//! receives it waits in the watch's DLQ, the stuck-order list, whose alarm pages the operators.
//! Its dead-letter handler ([`WatchMode::StuckList`]) looks at each stuck order again whenever
//! the list shows it: an order that has since ended leaves the list (so the alarm clears by
//! itself once every stuck order ended), one still stuck stays. Each stuck order's line says its
//! status, its age and the stage to look at. The watch writes nothing.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use order_domain::{is_terminal, EventType, LifecycleEvent, OrderItem, OrderStatus};

use crate::ports::orders::OrderReader;
use crate::ports::PortError;
use crate::runtime::stage::{Stage, StageTexts};
use crate::runtime::worker::{Disposition, Outcome};

/// The stages that act on an order in a status, for the stuck order's line (the registry's
/// subscriptions: the wiring passes them in).
pub type WaitingOn = fn(OrderStatus) -> Vec<&'static str>;

/// Which queue the watch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// The watch queue: a stuck order's record is refused, to wait in the stuck-order list.
    Watch,
    /// The stuck-order list (the watch's DLQ): an order that ended leaves it, one still stuck
    /// stays.
    StuckList,
}

/// An order that has not ended in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckOrder {
    pub order_id: String,
    pub status: OrderStatus,
    /// Since it was accepted.
    pub age: Duration,
    /// The stages that act on an order in its status: where to look.
    pub waiting_on: Vec<&'static str>,
}

impl StuckOrder {
    fn describe(&self) -> String {
        format!(
            "order {} is still {} {} min after it was accepted; look at {}",
            self.order_id,
            self.status.as_str(),
            self.age.as_secs() / 60,
            match self.waiting_on.as_slice() {
                [] => "the order's log lines (no stage acts on this status)".to_string(),
                stages => format!(
                    "the {} stage (its queue, DLQ and log lines)",
                    stages.join(" or ")
                ),
            }
        )
    }
}

/// What the watch found for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutcome {
    /// The order ended in time (or, on the stuck-order list, has ended since).
    Ended(OrderStatus),
    /// Not ended, and not yet as old as the stuck-order age (a clock ahead of the intake's, or
    /// an order accepted again): it comes back after the queue's visibility timeout (or this
    /// long, where the worker has a backoff), not counted as stuck.
    NotYet(Duration),
    /// Not ended in time: to the stuck-order list.
    Stuck(StuckOrder),
    /// On the stuck-order list and still not ended: it stays there.
    StillStuck(StuckOrder),
    /// No stored order has the event's id (deleted by hand): nothing to watch.
    Missing,
}

impl Outcome for WatchOutcome {
    fn label(&self) -> &'static str {
        match self {
            WatchOutcome::Ended(_) => "ended",
            WatchOutcome::NotYet(_) => "not_yet",
            WatchOutcome::Stuck(_) => "stuck",
            WatchOutcome::StillStuck(_) => "still_stuck",
            WatchOutcome::Missing => "order_missing",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            WatchOutcome::Ended(_) | WatchOutcome::Missing => Disposition::Done,
            WatchOutcome::NotYet(left) => Disposition::Later {
                reason: format!("the order is not yet as old as the stuck-order age ({} s left)", left.as_secs()),
                action: "none: the watch looks again then",
            },
            WatchOutcome::Stuck(stuck) => Disposition::Refused {
                reason: stuck.describe(),
                action: "the order goes to the stuck-order list (the order-watch DLQ), whose alarm pages: find why the stage named stopped on it",
            },
            WatchOutcome::StillStuck(stuck) => Disposition::Later {
                reason: stuck.describe(),
                action: "it stays on the stuck-order list (its alarm stays on) until the order ends: find why the stage named stopped on it",
            },
        }
    }

    /// `OrdersStuck` counts refusals: a stuck order is refused on each of the watch queue's
    /// receives (`maxReceiveCount`, 3) before it reaches the list.
    fn metric(&self) -> Option<&'static str> {
        match self {
            WatchOutcome::Stuck(_) => Some("OrdersStuck"),
            WatchOutcome::StillStuck(_) => Some("OrdersStillStuck"),
            WatchOutcome::Ended(_) | WatchOutcome::NotYet(_) | WatchOutcome::Missing => None,
        }
    }

    /// The stuck order's age: the metric's maximum is the oldest stuck order's.
    fn latency(&self) -> Option<(&'static str, f64)> {
        match self {
            WatchOutcome::Stuck(s) | WatchOutcome::StillStuck(s) => {
                Some(("StuckOrderAge", s.age.as_millis() as f64))
            }
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            WatchOutcome::NotYet(left) => Some(*left),
            _ => None,
        }
    }
}

/// Whether an order in `status` has ended: a terminal status, or FAILED (the intake's failure,
/// with its reason; only a redrive of its message accepts it again, as a new order to watch). A
/// status this build does not know (a newer one, read as LATER) has not: better a look too many.
pub fn has_ended(status: OrderStatus) -> bool {
    status != OrderStatus::Later && (status == OrderStatus::Failed || is_terminal(status))
}

/// How long ago `order` was accepted (its `acceptedAt`, else its `createdAt`); `None` when
/// neither reads as a time.
pub fn age(order: &OrderItem, now: DateTime<Utc>) -> Option<Duration> {
    order
        .accepted_at
        .as_deref()
        .or(Some(order.created_at.as_str()))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            (now - t.with_timezone(&Utc))
                .to_std()
                .unwrap_or(Duration::ZERO)
        })
}

/// The order watch, on its queue or on its stuck-order list.
pub struct OrderWatch<R> {
    orders: R,
    stuck_after: Duration,
    mode: WatchMode,
    waiting_on: WaitingOn,
}

impl<R: OrderReader> OrderWatch<R> {
    pub fn new(orders: R, stuck_after: Duration, mode: WatchMode, waiting_on: WaitingOn) -> Self {
        Self {
            orders,
            stuck_after,
            mode,
            waiting_on,
        }
    }

    pub fn orders(&self) -> &R {
        &self.orders
    }

    /// What the watch says of `order` at `now`.
    pub fn judge(&self, order: &OrderItem, now: DateTime<Utc>) -> WatchOutcome {
        if has_ended(order.status) {
            return WatchOutcome::Ended(order.status);
        }
        // An unreadable timestamp counts as old: better a look too many than an order unseen.
        let age = age(order, now).unwrap_or(self.stuck_after);
        if age < self.stuck_after {
            return WatchOutcome::NotYet(self.stuck_after - age);
        }
        let stuck = StuckOrder {
            order_id: order.order_id.clone(),
            status: order.status,
            age,
            waiting_on: (self.waiting_on)(order.status),
        };
        match self.mode {
            WatchMode::Watch => WatchOutcome::Stuck(stuck),
            WatchMode::StuckList => WatchOutcome::StillStuck(stuck),
        }
    }
}

impl<R: OrderReader> Stage for OrderWatch<R> {
    const ACCEPTS: &'static [EventType] = &[EventType::OrderAccepted];
    const TEXTS: StageTexts = StageTexts {
        invalid: "a watch message that is not a lifecycle event",
        invalid_action: "it waits in the stuck-order list (the order-watch DLQ): read it, then delete it by hand",
        invalid_metric: None,
        unavailable: "the order could not be read",
        unavailable_action: "SQS delivers the watch message again; check the Orders table and the function's dynamodb:GetItem permission",
    };
    type Outcome = WatchOutcome;

    async fn handle(
        &self,
        event: &LifecycleEvent,
        _record: &SqsMessage,
    ) -> Result<WatchOutcome, PortError> {
        let Some(order) = self.orders.read(&event.order_id).await? else {
            tracing::warn!(
                "the watched order is not in the Orders table (deleted?): nothing to watch"
            );
            return Ok(WatchOutcome::Missing);
        };
        // The worker's failure line of a stuck order's record carries what `describe` says.
        Ok(self.judge(&order, Utc::now()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use order_domain::{parse_order, Provenance};

    use super::*;
    use crate::adapters::memory::orders::MemoryStore;

    const STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

    fn look_at(status: OrderStatus) -> Vec<&'static str> {
        match status {
            OrderStatus::Paid => vec!["notification"],
            _ => vec![],
        }
    }

    /// An order accepted `minutes` ago, now in `status`.
    fn order(id: &str, status: OrderStatus, minutes: i64) -> OrderItem {
        let body = format!(
            r#"{{"orderId":"{id}","customerId":"c","items":[{{"sku":"A","quantity":1}}]}}"#
        );
        let (parsed, _) = parse_order(&body).unwrap();
        let accepted = Utc::now() - TimeDelta::minutes(minutes);
        let from = Provenance {
            message_id: "m".into(),
            correlation_id: "corr".into(),
            sent_at: accepted,
        };
        let mut item = OrderItem::accepted(parsed, from, accepted);
        item.status = status;
        item
    }

    fn watch(mode: WatchMode) -> OrderWatch<MemoryStore> {
        OrderWatch::new(MemoryStore::new(), STUCK_AFTER, mode, look_at)
    }

    /// Protects: an order that ended (a terminal status, or FAILED) is done; one still open at
    /// the stuck-order age is stuck, refused so that it reaches the stuck-order list, and its
    /// line names its status, its age and the stage to look at.
    #[test]
    fn an_ended_order_is_done_and_an_open_one_at_the_stuck_age_is_refused_to_the_list() {
        let w = watch(WatchMode::Watch);
        let now = Utc::now();
        for status in [
            OrderStatus::Completed,
            OrderStatus::Rejected,
            OrderStatus::PaymentFailed,
            OrderStatus::Failed,
        ] {
            let outcome = w.judge(&order("O1", status, 20), now);
            assert_eq!(outcome, WatchOutcome::Ended(status));
            assert_eq!(outcome.disposition(), Disposition::Done);
        }
        let outcome = w.judge(&order("O2", OrderStatus::Paid, 20), now);
        let WatchOutcome::Stuck(stuck) = &outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(stuck.status, OrderStatus::Paid);
        assert_eq!(stuck.waiting_on, ["notification"]);
        assert!(
            (19 * 60..=21 * 60).contains(&stuck.age.as_secs()),
            "{stuck:?}"
        );
        let Disposition::Refused { reason, .. } = outcome.disposition() else {
            panic!("{:?}", outcome.disposition())
        };
        assert!(
            reason.contains("O2") && reason.contains("PAID") && reason.contains("notification"),
            "{reason}"
        );
        assert_eq!(outcome.metric(), Some("OrdersStuck"));
        assert_eq!(outcome.latency().map(|l| l.0), Some("StuckOrderAge"));
    }

    /// Protects: an open order younger than the stuck-order age is not stuck: it comes back when
    /// it would be, and never reaches the list early.
    #[test]
    fn a_young_open_order_comes_back_when_it_would_be_stuck() {
        let outcome =
            watch(WatchMode::Watch).judge(&order("O3", OrderStatus::Accepted, 5), Utc::now());
        let WatchOutcome::NotYet(left) = outcome else {
            panic!("{outcome:?}")
        };
        assert!((9 * 60..=10 * 60).contains(&left.as_secs()), "{left:?}");
        assert!(matches!(outcome.disposition(), Disposition::Later { .. }));
        assert_eq!(outcome.retry_after(), Some(left));
    }

    /// Protects: on the stuck-order list an order that has ended since leaves it (the list's
    /// alarm clears once all did), and one still open stays, whatever its age.
    #[test]
    fn on_the_list_an_ended_order_leaves_and_an_open_one_stays() {
        let w = watch(WatchMode::StuckList);
        let now = Utc::now();
        let ended = w.judge(&order("O4", OrderStatus::Completed, 30), now);
        assert_eq!(ended.disposition(), Disposition::Done);
        let open = w.judge(&order("O5", OrderStatus::Paid, 30), now);
        assert!(matches!(open, WatchOutcome::StillStuck(_)), "{open:?}");
        assert!(matches!(open.disposition(), Disposition::Later { .. }));
        assert_eq!(open.metric(), Some("OrdersStillStuck"));
    }

    /// Protects: a status this build does not know (a newer build's, read as LATER) is watched
    /// as open, not taken for ended: such an order is listed when it does not move on.
    #[test]
    fn a_status_this_build_does_not_know_is_open() {
        assert!(!has_ended(OrderStatus::Later));
        let outcome =
            watch(WatchMode::Watch).judge(&order("O7", OrderStatus::Later, 20), Utc::now());
        assert!(matches!(outcome, WatchOutcome::Stuck(_)), "{outcome:?}");
        for ended in [
            OrderStatus::Completed,
            OrderStatus::Rejected,
            OrderStatus::PaymentFailed,
            OrderStatus::Failed,
        ] {
            assert!(has_ended(ended), "{ended:?}");
        }
    }

    /// Protects: the watch reads the stored order, never the event's body: the event says
    /// ACCEPTED, the table says COMPLETED, and the order is done; an order no longer stored is
    /// done too.
    #[tokio::test]
    async fn the_watch_judges_the_stored_order() {
        let w = watch(WatchMode::Watch);
        let accepted = order("O6", OrderStatus::Accepted, 20);
        let event = order_domain::LifecycleEvent::from_change(None, &accepted, "now").unwrap();
        let mut completed = accepted.clone();
        completed.status = OrderStatus::Completed;
        w.orders().put(completed);
        let record = SqsMessage::default();
        assert_eq!(
            w.handle(&event, &record).await.unwrap(),
            WatchOutcome::Ended(OrderStatus::Completed)
        );
        let mut gone = event.clone();
        gone.order_id = "NOT-STORED".into();
        assert_eq!(
            w.handle(&gone, &record).await.unwrap(),
            WatchOutcome::Missing
        );
    }
}
