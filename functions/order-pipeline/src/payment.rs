//! The payment stage: an `InventoryReserved` event in, the order `PAID` or `PAYMENT_FAILED`.
//!
//! Before each call to the provider the attempt is counted on the order (`paymentAttempts`,
//! conditional on the order still being RESERVED at the event's version, so a duplicate event
//! never calls the provider). The provider is called with the idempotency key
//! `<orderId>:payment`, so a retried call never charges twice. Then:
//! - approved → one transaction: `RESERVED → PAID` with the payment record, and the order's
//!   units moved from `reserved` to `sold`;
//! - declined → one transaction: `RESERVED → PAYMENT_FAILED` with the reason, and the units
//!   released (`reserved → available`);
//! - unavailable → the record fails and comes back after a backoff that doubles with each
//!   attempt; once the configured attempts are used up, `PAYMENT_FAILED` + release.
//!
//! [`PaymentDeadLetters`] handles what reaches the stage's DLQ: `RESERVED → PAYMENT_FAILED` +
//! release, nothing for an order already past RESERVED.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::Utc;
use order_domain::{
    format_timestamp, EventType, LifecycleEvent, OrderStatus, Payment, PaymentResult, ReservedLine,
    DECLINED_CUSTOMER_PREFIX,
};
use rust_decimal::Decimal;
use sha2::Digest;

use crate::aws::classify;
use crate::inventory::{sku_key, DynamoInventory};
use crate::port::PortError;
use crate::store::TransitionWrite;
use crate::worker::{receive_count, Backoff, Disposition, Outcome, RecordHandler};

/// One charge, as the gateway is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub order_id: String,
    /// Exact decimal string.
    pub amount: String,
    pub currency: Option<String>,
    pub customer_id: String,
    /// `<orderId>:payment`: the same order is the same charge, however often it is asked for.
    pub idempotency_key: String,
    /// This call's attempt number (1 for the first call).
    pub attempt: u32,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    Approved {
        payment_id: String,
    },
    Declined {
        reason: String,
    },
    /// Timeouts, 429, 5xx, connection failures: try again later.
    Unavailable {
        reason: String,
    },
}

/// The payment provider.
pub trait PaymentGateway: Send + Sync {
    /// `simulated` or `http`: written on the payment record and on every log line.
    fn provider(&self) -> &'static str;
    fn charge(&self, request: &ChargeRequest) -> impl Future<Output = Charge> + Send;
}

/// The idempotency key of an order's payment.
pub fn idempotency_key(order_id: &str) -> String {
    format!("{order_id}:payment")
}

/// The simulated provider: deterministic rules for demos and a stack without a provider.
/// - a customer id starting with `decline-` is declined;
/// - an amount above `decline_over` is declined;
/// - `unavailable_percent` of calls are unavailable, chosen by a hash of the order id and the
///   attempt (the same call answers the same way);
/// - anything else is approved with the payment id `sim_<hash of the idempotency key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedGateway {
    pub decline_over: Decimal,
    pub unavailable_percent: u32,
}

impl SimulatedGateway {
    pub fn decide(&self, request: &ChargeRequest) -> Charge {
        if request.customer_id.starts_with(DECLINED_CUSTOMER_PREFIX) {
            return Charge::Declined {
                reason: format!(
                    "card declined (simulated: customer id starts with {DECLINED_CUSTOMER_PREFIX})"
                ),
            };
        }
        match request.amount.parse::<Decimal>() {
            Ok(a) if a > self.decline_over => {
                return Charge::Declined {
                    reason: format!(
                        "amount {a} is over the limit of {} (simulated)",
                        self.decline_over
                    ),
                }
            }
            Ok(_) => {}
            Err(_) => {
                return Charge::Declined {
                    reason: format!("amount {:?} is not a decimal", request.amount),
                }
            }
        }
        let roll = sha2::Sha256::digest(format!("{}\n{}", request.order_id, request.attempt));
        if u32::from(roll[0]) * 100 / 256 < self.unavailable_percent {
            return Charge::Unavailable {
                reason: format!(
                    "provider unavailable (simulated: {}% of calls)",
                    self.unavailable_percent
                ),
            };
        }
        let id = sha2::Sha256::digest(request.idempotency_key.as_bytes());
        Charge::Approved {
            payment_id: format!(
                "sim_{}",
                id.iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        }
    }
}

impl PaymentGateway for SimulatedGateway {
    fn provider(&self) -> &'static str {
        "simulated"
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        self.decide(request)
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Where the HTTP adapter finds its API key.
pub enum ApiKey {
    /// Read once per process from Secrets Manager: a plain string, or JSON with `apiKey`.
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    /// Given (tests).
    Fixed(String),
}

/// A payment provider's HTTP API: `POST {url}/charges` with `Idempotency-Key` and
/// `Authorization: Bearer <api key>`, body `{orderId, amount, currency, customerId}`.
/// 2xx `{"status":"approved","paymentId":..}` → approved; 2xx `{"status":"declined","reason":..}`
/// or 402 → declined; 429, 5xx, 409 (the key is in use), other 4xx, timeouts and connection
/// failures → unavailable.
pub struct HttpGateway {
    url: String,
    api_key: ApiKey,
    key: tokio::sync::OnceCell<String>,
    timeout: Duration,
    client: HttpClient,
}

impl HttpGateway {
    pub fn new(url: &str, api_key: ApiKey, timeout: Duration) -> Result<Self, PortError> {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| PortError::Fatal(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            api_key,
            key: tokio::sync::OnceCell::new(),
            timeout,
            client,
        })
    }

    async fn api_key(&self) -> Result<&str, String> {
        self.key
            .get_or_try_init(|| async {
                match &self.api_key {
                    ApiKey::Fixed(k) => Ok(k.clone()),
                    ApiKey::Secret { client, secret_id } => {
                        let out = client
                            .get_secret_value()
                            .secret_id(secret_id)
                            .send()
                            .await
                            .map_err(|e| {
                                format!(
                                    "reading the payment API key from Secrets Manager failed ({}): check the secret's ARN (paymentSecretArn) and the role's secretsmanager:GetSecretValue",
                                    classify(&e)
                                )
                            })?;
                        let raw = out.secret_string.unwrap_or_default();
                        let key = match serde_json::from_str::<serde_json::Value>(&raw) {
                            Ok(serde_json::Value::Object(map)) => map
                                .get("apiKey")
                                .and_then(|v| v.as_str())
                                .map(str::to_string)
                                .ok_or("the payment secret is JSON without an apiKey string")?,
                            _ => raw,
                        };
                        if key.trim().is_empty() {
                            return Err("the payment secret is empty".to_string());
                        }
                        Ok(key)
                    }
                }
            })
            .await
            .map(String::as_str)
    }

    async fn call(&self, request: &ChargeRequest) -> Result<(u16, Vec<u8>), String> {
        use http_body_util::BodyExt;
        let key = self.api_key().await?;
        let body = serde_json::json!({
            "orderId": request.order_id,
            "amount": request.amount,
            "currency": request.currency,
            "customerId": request.customer_id,
        });
        let http_request = hyper::Request::post(format!("{}/charges", self.url))
            .header("content-type", "application/json")
            .header("idempotency-key", &request.idempotency_key)
            .header("authorization", format!("Bearer {key}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(http_request)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the answer failed: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes.to_vec()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))?
    }
}

/// What an HTTP answer means (status, body).
pub fn read_answer(status: u16, body: &[u8]) -> Charge {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
    match status {
        200..=299 => match text("status").as_deref() {
            Some("approved") => match text("paymentId") {
                Some(payment_id) if !payment_id.is_empty() => Charge::Approved { payment_id },
                _ => Charge::Unavailable {
                    reason: "the provider approved without a paymentId".into(),
                },
            },
            Some("declined") => Charge::Declined {
                reason: text("reason").unwrap_or_else(|| "declined".into()),
            },
            other => Charge::Unavailable {
                reason: format!("the provider answered {status} with status {other:?}"),
            },
        },
        402 => Charge::Declined {
            reason: text("reason").unwrap_or_else(|| "declined (402)".into()),
        },
        _ => Charge::Unavailable {
            reason: format!(
                "the provider answered {status}{}",
                text("reason")
                    .or_else(|| text("message"))
                    .map(|r| format!(": {}", r.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            ),
        },
    }
}

impl PaymentGateway for HttpGateway {
    fn provider(&self) -> &'static str {
        "http"
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        match self.call(request).await {
            Ok((status, body)) => read_answer(status, &body),
            Err(reason) => Charge::Unavailable { reason },
        }
    }
}

/// Either gateway, chosen by configuration at start-up.
pub enum Gateway {
    Simulated(SimulatedGateway),
    Http(Box<HttpGateway>),
}

impl PaymentGateway for Gateway {
    fn provider(&self) -> &'static str {
        match self {
            Gateway::Simulated(g) => g.provider(),
            Gateway::Http(g) => g.provider(),
        }
    }

    async fn charge(&self, request: &ChargeRequest) -> Charge {
        match self {
            Gateway::Simulated(g) => g.charge(request).await,
            Gateway::Http(g) => g.charge(request).await,
        }
    }
}

impl<G: PaymentGateway> PaymentGateway for Arc<G> {
    fn provider(&self) -> &'static str {
        self.as_ref().provider()
    }

    fn charge(&self, request: &ChargeRequest) -> impl Future<Output = Charge> + Send {
        self.as_ref().charge(request)
    }
}

/// What the settling transaction does to the order's reserved units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockMove {
    /// `reserved → sold` (PAID).
    Sell,
    /// `reserved → available` (PAYMENT_FAILED).
    Release,
}

/// The Orders and Inventory writes of the payment stage.
pub trait PaymentStore: Send + Sync {
    /// Counts one more payment attempt on an order still RESERVED at `version`; returns the
    /// count, or `None` when the order moved on.
    fn count_attempt(
        &self,
        order_id: &str,
        version: u64,
    ) -> impl Future<Output = Result<Option<u32>, PortError>> + Send;

    /// `write` (RESERVED → PAID or PAYMENT_FAILED) and `stock` for `lines`, in one
    /// transaction; `false` when the order moved on (nothing written).
    fn settle(
        &self,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        stock: StockMove,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

impl PaymentStore for DynamoInventory {
    async fn count_attempt(&self, order_id: &str, version: u64) -> Result<Option<u32>, PortError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.orders().table())
            .key("orderId", AttributeValue::S(order_id.to_string()))
            .update_expression("SET paymentAttempts = if_not_exists(paymentAttempts, :zero) + :one")
            .condition_expression("#s = :reserved AND version = :v")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":reserved",
                AttributeValue::S(OrderStatus::Reserved.as_str().into()),
            )
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .and_then(|a| a.get("paymentAttempts").cloned())
                .and_then(|n| n.as_n().ok().and_then(|n| n.parse::<u32>().ok()))
                .or(Some(1))),
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

    async fn settle(
        &self,
        write: &TransitionWrite,
        lines: &[ReservedLine],
        stock: StockMove,
    ) -> Result<bool, PortError> {
        let expression = match stock {
            StockMove::Sell => {
                "SET reserved = reserved - :q, sold = sold + :q, version = version + :one"
            }
            StockMove::Release => {
                "SET reserved = reserved - :q, available = available + :q, version = version + :one"
            }
        };
        let mut items = Vec::with_capacity(lines.len() + 1);
        for line in lines {
            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(sku_key(&line.sku)))
                .update_expression(expression)
                .condition_expression("reserved >= :q")
                .expression_attribute_values(":q", AttributeValue::N(line.quantity.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .build()
                .map_err(|e| PortError::Fatal(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let what = match stock {
            StockMove::Sell => "sell",
            StockMove::Release => "release",
        };
        let Some(reasons) = self.transact(items, write, what).await? else {
            return Ok(true);
        };
        let code = |i: usize| {
            reasons
                .get(i)
                .and_then(|r| r.code.as_deref())
                .unwrap_or("None")
        };
        if code(lines.len()) == "ConditionalCheckFailed" {
            return Ok(false);
        }
        if let Some(line) = (0..lines.len())
            .find(|i| code(*i) == "ConditionalCheckFailed")
            .map(|i| &lines[i])
        {
            return Err(PortError::Fatal(format!(
                "sku {} holds fewer reserved units than order {}'s reservation of {}: the Inventory table was changed outside the pipeline; correct the item, then redrive the event",
                line.sku, write.order_id, line.quantity
            )));
        }
        let codes: Vec<&str> = (0..=lines.len()).map(code).collect();
        Err(PortError::Retryable(format!(
            "the payment's transaction was cancelled ({codes:?}); retrying"
        )))
    }
}

#[cfg(any(test, feature = "test-support"))]
impl PaymentStore for crate::inventory::MemoryInventory {
    async fn count_attempt(&self, order_id: &str, version: u64) -> Result<Option<u32>, PortError> {
        self.check()?;
        let still =
            matches!(self.status(order_id), Some((OrderStatus::Reserved, v, _)) if v == version);
        if !still {
            return Ok(None);
        }
        let mut attempts = self
            .attempts
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
            if items.get(&line.sku).map_or(0, |i| i.reserved) < q {
                return Err(PortError::Fatal(format!(
                    "sku {} holds fewer reserved units than the reservation",
                    line.sku
                )));
            }
        }
        for line in lines {
            if let Some(item) = items.get_mut(&line.sku) {
                let q = u64::from(line.quantity);
                item.reserved -= q;
                match stock {
                    StockMove::Sell => item.sold += q,
                    StockMove::Release => item.available += q,
                }
                item.version += 1;
            }
        }
        drop(items);
        self.apply(write);
        Ok(true)
    }
}

/// The payment stage's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentSettings {
    /// Calls to the provider before an order that stays unavailable is PAYMENT_FAILED.
    pub max_attempts: u32,
    /// When an unavailable attempt comes back: doubling per attempt.
    pub backoff: Backoff,
}

/// The payment stage's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid {
        payment_id: String,
    },
    Declined(String),
    /// Unavailable on the last allowed attempt: PAYMENT_FAILED.
    AttemptsUsedUp(String),
    /// Unavailable: the record fails and comes back after `after`.
    Retry {
        reason: String,
        attempt: u32,
        after: Duration,
    },
    /// The order is past RESERVED: nothing written, the provider not called.
    Duplicate,
    Ignored(EventType),
    Invalid(String),
    /// The store failed: retried.
    Unavailable(PortError),
}

impl Outcome for PaymentOutcome {
    fn label(&self) -> &'static str {
        match self {
            PaymentOutcome::Paid { .. } => "paid",
            PaymentOutcome::Declined(_) => "declined",
            PaymentOutcome::AttemptsUsedUp(_) => "attempts_used_up",
            PaymentOutcome::Retry { .. } => "provider_unavailable",
            PaymentOutcome::Duplicate => "duplicate",
            PaymentOutcome::Ignored(_) => "ignored",
            PaymentOutcome::Invalid(_) => "invalid",
            PaymentOutcome::Unavailable(_) => "unavailable",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            PaymentOutcome::Paid { .. }
            | PaymentOutcome::Declined(_)
            | PaymentOutcome::AttemptsUsedUp(_)
            | PaymentOutcome::Duplicate
            | PaymentOutcome::Ignored(_) => Disposition::Done,
            PaymentOutcome::Retry {
                reason, attempt, ..
            } => Disposition::Later {
                reason: format!("payment provider unavailable on attempt {attempt}: {reason}"),
                action: "the attempt comes back after its backoff; if every payment fails, check the provider's status and the payment API key",
            },
            PaymentOutcome::Invalid(e) => Disposition::Rejected {
                reason: format!("not a lifecycle event: {e}"),
                action: "find what published it to the order-events topic; the message goes to the payment DLQ",
            },
            PaymentOutcome::Unavailable(e) => Disposition::Unavailable {
                reason: format!("payment store failed: {e}"),
                action: "SQS retries the event; if it persists check DynamoDB throttling and transaction conflicts",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            PaymentOutcome::Paid { .. } => Some("PaymentsApproved"),
            PaymentOutcome::Declined(_) => Some("PaymentsDeclined"),
            PaymentOutcome::AttemptsUsedUp(_) => Some("PaymentsAttemptsUsedUp"),
            PaymentOutcome::Retry { .. } => Some("PaymentsProviderUnavailable"),
            PaymentOutcome::Duplicate => Some("EventsDuplicate"),
            PaymentOutcome::Invalid(_) => Some("EventsInvalid"),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PaymentOutcome::Retry { after, .. } => Some(*after),
            _ => None,
        }
    }
}

/// The payment stage's record handler.
pub struct PaymentWorker<S, G> {
    store: S,
    gateway: G,
    settings: PaymentSettings,
}

impl<S: PaymentStore, G: PaymentGateway> PaymentWorker<S, G> {
    pub fn new(store: S, gateway: G, settings: PaymentSettings) -> Self {
        Self {
            store,
            gateway,
            settings,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    async fn pay(&self, event: &LifecycleEvent) -> Result<PaymentOutcome, PortError> {
        let order = &event.order;
        let Some(attempt) = self
            .store
            .count_attempt(&event.order_id, event.version)
            .await?
        else {
            return Ok(PaymentOutcome::Duplicate);
        };
        let amount = order.amount.clone().unwrap_or_else(|| "0".into());
        let record =
            |result: PaymentResult, payment_id: Option<String>, reason: Option<String>| Payment {
                result,
                provider: Some(self.gateway.provider().to_string()),
                payment_id,
                amount: amount.clone(),
                currency: order.currency.clone(),
                attempts: Some(attempt),
                reason,
            };
        if attempt > self.settings.max_attempts {
            // Counted attempts without an answer (crashes after counting): give up.
            let reason = format!(
                "{} attempts counted, at most {} allowed",
                attempt - 1,
                self.settings.max_attempts
            );
            return self
                .fail(
                    event,
                    record(PaymentResult::AttemptsUsedUp, None, Some(reason.clone())),
                )
                .await
                .map(|moved| {
                    if moved {
                        PaymentOutcome::AttemptsUsedUp(reason)
                    } else {
                        PaymentOutcome::Duplicate
                    }
                });
        }
        let request = ChargeRequest {
            order_id: event.order_id.clone(),
            amount: amount.clone(),
            currency: order.currency.clone(),
            customer_id: order.customer_id.clone(),
            idempotency_key: idempotency_key(&event.order_id),
            attempt,
        };
        match self.gateway.charge(&request).await {
            Charge::Approved { payment_id } => {
                let Some(mut write) = self.write(event, OrderStatus::Paid) else {
                    return Ok(PaymentOutcome::Duplicate);
                };
                write.payment = Some(record(
                    PaymentResult::Approved,
                    Some(payment_id.clone()),
                    None,
                ));
                let lines = order.reservation.clone().unwrap_or_default();
                Ok(
                    if self.store.settle(&write, &lines, StockMove::Sell).await? {
                        tracing::info!(payment_id, attempt, "payment approved");
                        PaymentOutcome::Paid { payment_id }
                    } else {
                        PaymentOutcome::Duplicate
                    },
                )
            }
            Charge::Declined { reason } => {
                let moved = self
                    .fail(
                        event,
                        record(PaymentResult::Declined, None, Some(reason.clone())),
                    )
                    .await?;
                if moved {
                    tracing::info!(
                        reason,
                        attempt,
                        "payment declined: the reservation is released"
                    );
                }
                Ok(if moved {
                    PaymentOutcome::Declined(reason)
                } else {
                    PaymentOutcome::Duplicate
                })
            }
            Charge::Unavailable { reason } if attempt >= self.settings.max_attempts => {
                let reason =
                    format!("provider unavailable on all {attempt} attempts; last: {reason}");
                let moved = self
                    .fail(
                        event,
                        record(PaymentResult::AttemptsUsedUp, None, Some(reason.clone())),
                    )
                    .await?;
                if moved {
                    tracing::warn!(
                        reason,
                        "payment attempts used up: PAYMENT_FAILED, the reservation is released"
                    );
                }
                Ok(if moved {
                    PaymentOutcome::AttemptsUsedUp(reason)
                } else {
                    PaymentOutcome::Duplicate
                })
            }
            Charge::Unavailable { reason } => Ok(PaymentOutcome::Retry {
                reason,
                attempt,
                after: self.settings.backoff.after(attempt),
            }),
        }
    }

    fn write(&self, event: &LifecycleEvent, to: OrderStatus) -> Option<TransitionWrite> {
        TransitionWrite::new(
            &event.order_id,
            OrderStatus::Reserved,
            to,
            event.version,
            format_timestamp(Utc::now()),
        )
    }

    async fn fail(&self, event: &LifecycleEvent, payment: Payment) -> Result<bool, PortError> {
        let Some(mut write) = self.write(event, OrderStatus::PaymentFailed) else {
            return Ok(false);
        };
        write.payment = Some(payment);
        let lines = event.order.reservation.clone().unwrap_or_default();
        self.store.settle(&write, &lines, StockMove::Release).await
    }
}

impl<S: PaymentStore, G: PaymentGateway> RecordHandler for PaymentWorker<S, G> {
    type Outcome = PaymentOutcome;

    async fn handle(&self, record: &SqsMessage) -> PaymentOutcome {
        let event = match crate::events::read_event(record) {
            Ok(e) => e,
            Err(e) => return PaymentOutcome::Invalid(e),
        };
        if event.event_type != EventType::InventoryReserved {
            return PaymentOutcome::Ignored(event.event_type);
        }
        let outcome = self
            .pay(&event)
            .await
            .unwrap_or_else(PaymentOutcome::Unavailable);
        if outcome == PaymentOutcome::Duplicate {
            tracing::debug!(
                "the order is past RESERVED: a duplicate event, the provider not called"
            );
        }
        outcome
    }
}

/// What the payment DLQ handler did with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterOutcome {
    /// RESERVED → PAYMENT_FAILED, the reservation released.
    PaymentFailed,
    /// The order is already past RESERVED: nothing to do.
    AlreadySettled,
    /// Not an InventoryReserved event: nothing the payment stage owns.
    Ignored(EventType),
    /// Not a lifecycle event: it stays in the DLQ for a person.
    Invalid(String),
    Unavailable(PortError),
}

impl Outcome for DeadLetterOutcome {
    fn label(&self) -> &'static str {
        match self {
            DeadLetterOutcome::PaymentFailed => "payment_failed",
            DeadLetterOutcome::AlreadySettled => "already_settled",
            DeadLetterOutcome::Ignored(_) => "ignored",
            DeadLetterOutcome::Invalid(_) => "invalid",
            DeadLetterOutcome::Unavailable(_) => "unavailable",
        }
    }

    fn disposition(&self) -> Disposition {
        match self {
            DeadLetterOutcome::PaymentFailed
            | DeadLetterOutcome::AlreadySettled
            | DeadLetterOutcome::Ignored(_) => Disposition::Done,
            DeadLetterOutcome::Invalid(e) => Disposition::Rejected {
                reason: format!("a dead letter that is not a lifecycle event: {e}"),
                action: "it stays in the payment DLQ (its alarm stays on): read it, then delete it by hand",
            },
            DeadLetterOutcome::Unavailable(e) => Disposition::Unavailable {
                reason: format!("payment store failed: {e}"),
                action: "SQS delivers the dead letter again; check DynamoDB throttling",
            },
        }
    }

    fn metric(&self) -> Option<&'static str> {
        match self {
            DeadLetterOutcome::PaymentFailed => Some("PaymentsDeadLettered"),
            _ => None,
        }
    }
}

/// The payment DLQ's handler: a payment event that could not be processed fails the payment
/// and releases its stock, so no order waits RESERVED forever.
pub struct PaymentDeadLetters<S> {
    store: S,
}

impl<S: PaymentStore> PaymentDeadLetters<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: PaymentStore> RecordHandler for PaymentDeadLetters<S> {
    type Outcome = DeadLetterOutcome;

    async fn handle(&self, record: &SqsMessage) -> DeadLetterOutcome {
        let event = match crate::events::read_event(record) {
            Ok(e) => e,
            Err(e) => return DeadLetterOutcome::Invalid(e),
        };
        if event.event_type != EventType::InventoryReserved {
            return DeadLetterOutcome::Ignored(event.event_type);
        }
        let Some(mut write) = TransitionWrite::new(
            &event.order_id,
            OrderStatus::Reserved,
            OrderStatus::PaymentFailed,
            event.version,
            format_timestamp(Utc::now()),
        ) else {
            return DeadLetterOutcome::AlreadySettled;
        };
        let receives = receive_count(record);
        let reason = format!(
            "the payment event could not be processed and was dead-lettered (seen {receives} times in the DLQ)"
        );
        write.payment = Some(Payment {
            result: PaymentResult::DeadLettered,
            provider: None,
            payment_id: None,
            amount: event.order.amount.clone().unwrap_or_else(|| "0".into()),
            currency: event.order.currency.clone(),
            attempts: None,
            reason: Some(reason.clone()),
        });
        let lines = event.order.reservation.clone().unwrap_or_default();
        match self.store.settle(&write, &lines, StockMove::Release).await {
            Ok(true) => {
                tracing::error!(
                    reason,
                    action = "the order is PAYMENT_FAILED and its stock released; find why the payment worker failed on it (its log lines share this correlation_id)",
                    "payment dead letter handled"
                );
                DeadLetterOutcome::PaymentFailed
            }
            Ok(false) => DeadLetterOutcome::AlreadySettled,
            Err(e) => DeadLetterOutcome::Unavailable(e),
        }
    }
}
