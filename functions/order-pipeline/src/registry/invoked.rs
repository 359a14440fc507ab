//! How Lambda invokes each kind of function: its [`Trigger`], the runtime loop that feeds its
//! handler ([`Invoked`]), and the handler as the local runner and the tests hold it ([`Built`]).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use order_domain::EventType;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sns::{SnsEventPublisher, SnsNotifier, SnsOrderPublisher};
use crate::adapters::sqs::SqsDeadLetterQueue;
use crate::functions::api::OrderApi;
use crate::functions::dlq_alarm::DlqAlarm;
use crate::functions::order_events::OrderEvents;
use crate::runtime::worker::{RecordHandler, SqsWorker};
use crate::stages::intake::OrderConsumer;

/// How Lambda invokes a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An SQS event source mapping (a stage, or a DLQ's handler).
    Sqs,
    /// The Orders table's stream.
    Stream,
    /// A CloudWatch alarm's action and an EventBridge schedule.
    Alarm,
    /// API Gateway's HTTP API.
    Http,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sqs => "sqs",
            Trigger::Stream => "stream",
            Trigger::Alarm => "alarm",
            Trigger::Http => "http",
        }
    }
}

/// A function's built handler, as the local runner and the tests hold it.
#[derive(Clone)]
pub enum Built {
    Sqs(Arc<dyn SqsFunction>),
    Stream(Arc<OrderEventsFunction>),
    Alarm(Arc<DlqAlarmFunction>),
    Http(Arc<OrderApiFunction>),
}

/// A record's message id and its outcome's label.
pub type Labels = Vec<(String, &'static str)>;

/// A queue-fed function behind one object type, whatever its handler: what an SQS event
/// source mapping invokes.
pub trait SqsFunction: Send + Sync {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>>;
}

impl<H: RecordHandler + 'static> SqsFunction for SqsWorker<H> {
    fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> BoxFuture<'_, Result<(SqsBatchResponse, Labels), String>> {
        Box::pin(async move {
            let (response, reports) = self
                .handle_reporting(event)
                .await
                .map_err(|e| e.to_string())?;
            let labels = reports
                .iter()
                .map(|r| (r.message_id.clone(), r.outcome.label()))
                .collect();
            Ok((response, labels))
        })
    }
}

/// How Lambda invokes a handler: its trigger, and the runtime loop that feeds it.
pub trait Invoked: Send + Sync + Sized + 'static {
    const TRIGGER: Trigger;
    /// The lifecycle event types it acts on (an event-driven stage's subscription filter).
    const EVENTS: &'static [EventType] = &[];
    /// Runs Lambda's runtime loop with this handler until the process ends.
    fn serve(&'static self)
        -> impl std::future::Future<Output = Result<(), lambda_runtime::Error>>;
    /// The handler as the local runner holds it.
    fn into_built(self) -> Built;
}

impl<H: RecordHandler + 'static> Invoked for SqsWorker<H> {
    const TRIGGER: Trigger = Trigger::Sqs;
    const EVENTS: &'static [EventType] = H::EVENTS;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            self.handle(event)
        }))
        .await
    }

    fn into_built(self) -> Built {
        Built::Sqs(Arc::new(self))
    }
}

impl Invoked for OrderEventsFunction {
    const TRIGGER: Trigger = Trigger::Stream;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| self.handle(event))).await
    }

    fn into_built(self) -> Built {
        Built::Stream(Arc::new(self))
    }
}

impl Invoked for DlqAlarmFunction {
    const TRIGGER: Trigger = Trigger::Alarm;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
            self.handle_event(event)
        }))
        .await
    }

    fn into_built(self) -> Built {
        Built::Alarm(Arc::new(self))
    }
}

impl Invoked for OrderApiFunction {
    const TRIGGER: Trigger = Trigger::Http;

    async fn serve(&'static self) -> Result<(), lambda_runtime::Error> {
        lambda_http::run(service_fn(
            move |request: lambda_http::Request| async move {
                Ok::<_, std::convert::Infallible>(self.handle(request).await)
            },
        ))
        .await
    }

    fn into_built(self) -> Built {
        Built::Http(Arc::new(self))
    }
}

/// The order-consumer Lambda function: the intake's record handler in the shared batch worker.
pub type OrderConsumerFunction<S> = SqsWorker<OrderConsumer<S>>;
pub type OrderEventsFunction = OrderEvents<SnsEventPublisher>;
pub type DlqAlarmFunction = DlqAlarm<DynamoStore, SqsDeadLetterQueue, SnsNotifier>;
pub type OrderApiFunction = OrderApi<SnsOrderPublisher, DynamoStore>;
