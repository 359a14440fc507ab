//! Configuration of the functions, read once from the environment at start-up.
//!
//! A missing or malformed variable stops start-up with an error that names it, so a broken
//! deployment fails its first invocation loudly instead of mis-processing orders.

use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {name}={value:?} is invalid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn required(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        match (self.0)(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ConfigError::Missing { name, hint }),
        }
    }

    fn number<T: FromStr + PartialOrd + Copy>(
        &self,
        name: &'static str,
        default: T,
        range: (T, T),
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        let Some(raw) = (self.0)(name).filter(|v| !v.trim().is_empty()) else {
            return Ok(default);
        };
        match raw.trim().parse::<T>() {
            Ok(v) if v >= range.0 && v <= range.1 => Ok(v),
            _ => Err(ConfigError::Invalid {
                name,
                value: raw,
                expected,
            }),
        }
    }

    /// START_MARGIN_MS: no record starts once less than this is left of the invocation.
    fn start_margin(&self) -> Result<Duration, ConfigError> {
        self.number(
            "START_MARGIN_MS",
            3_000,
            (0, 900_000),
            "a whole number of milliseconds below the function's timeout",
        )
        .map(Duration::from_millis)
    }

    /// TABLE_NAME: the Orders table, which most functions read or write.
    fn orders_table(&self) -> Result<String, ConfigError> {
        self.required("TABLE_NAME", "set it to the Orders table's name")
    }

    /// INVENTORY_TABLE_NAME: the Inventory table of the stages that move stock.
    fn inventory_table(&self) -> Result<String, ConfigError> {
        self.required(
            "INVENTORY_TABLE_NAME",
            "set it to the Inventory table's name",
        )
    }

    /// DEFAULT_CURRENCY: the currency of an order that names none and whose skus name none,
    /// and of an Inventory item without one (context key defaultCurrency; USD when unset).
    fn default_currency(&self) -> Result<order_domain::Currency, ConfigError> {
        let Some(raw) = (self.0)("DEFAULT_CURRENCY").filter(|v| !v.trim().is_empty()) else {
            return Ok(order_domain::Currency::from_code("USD").expect("USD is ISO 4217"));
        };
        order_domain::Currency::from_code(raw.trim()).map_err(|_| ConfigError::Invalid {
            name: "DEFAULT_CURRENCY",
            value: raw,
            expected: "an ISO 4217 currency code with a minor unit, such as USD, EUR or JPY (context key defaultCurrency)",
        })
    }

    /// TRANSACTION_CONFLICT_TRIES: how many times a stock transaction cancelled only by
    /// `TransactionConflict` is sent in all before the record fails
    /// ([`crate::adapters::dynamodb::inventory::CONFLICT_TRIES`] when unset; 1 sends it once, as
    /// before issue 33: `order-local flash-sale --conflict-tries 1` measures that).
    fn conflict_tries(&self) -> Result<u32, ConfigError> {
        self.number(
            "TRANSACTION_CONFLICT_TRIES",
            crate::adapters::dynamodb::inventory::CONFLICT_TRIES,
            (1, 20),
            "a whole number from 1 to 20",
        )
    }

    fn service(&self, default: &str) -> String {
        (self.0)("POWERTOOLS_SERVICE_NAME")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default.to_string())
    }
}

/// Exponential backoff for failed records: `base` x 2^(n-1) after the n-th failure, at most
/// `max` (SQS allows 12 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn after(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// The maxReceiveCount of a queue without a DLQ (`MAX_RECEIVE_COUNT=none`: a dead-letter
/// handler's own queue, the DLQ): a failed record comes back until it is settled or expires, and
/// never "moves to the DLQ".
pub const NO_DEAD_LETTER_QUEUE: u32 = u32::MAX;

/// What every queue-fed function reads: the batch handling of
/// [`crate::runtime::worker::SqsWorker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The queue's maxReceiveCount: a record failing on this receive goes to the DLQ next
    /// ([`NO_DEAD_LETTER_QUEUE`] for a queue without one).
    pub max_receive_count: u32,
    /// How many records of one batch are processed at once.
    pub record_concurrency: usize,
    /// No record starts once less than this is left of the invocation.
    pub start_margin: Duration,
    /// Records still running when this much is left are abandoned, so the invocation answers.
    pub answer_reserve: Duration,
    /// The service name on log lines and metrics.
    pub service: String,
    /// Failed records come back after this backoff (RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)
    /// instead of the queue's visibility timeout; `None` when RETRY_BASE_SECONDS is unset.
    pub backoff: Option<Backoff>,
    /// The function's own queue (QUEUE_URL), for the visibility changes of the backoff.
    pub queue_url: Option<String>,
}

/// Time kept to write the response and the last log lines after abandoning records.
const ANSWER_RESERVE: Duration = Duration::from_millis(500);

impl WorkerConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        service: &str,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            max_receive_count: match (env.0)("MAX_RECEIVE_COUNT") {
                Some(v) if v.trim() == "none" => NO_DEAD_LETTER_QUEUE,
                _ => env.number(
                    "MAX_RECEIVE_COUNT",
                    3,
                    (1, 1000),
                    "a whole number from 1 to 1000 (the queue's maxReceiveCount), or none for a queue without a DLQ",
                )?,
            },
            record_concurrency: env.number(
                "RECORD_CONCURRENCY",
                10,
                (1, 100),
                "a whole number from 1 to 100",
            )?,
            start_margin: env.start_margin()?,
            answer_reserve: ANSWER_RESERVE,
            service: env.service(service),
            backoff: match (env.0)("RETRY_BASE_SECONDS").filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(_) => Some(Backoff {
                    base: Duration::from_secs(env.number(
                        "RETRY_BASE_SECONDS",
                        10,
                        (1, 43_200),
                        "a whole number of seconds from 1 to 43200",
                    )?),
                    max: Duration::from_secs(env.number(
                        "RETRY_MAX_SECONDS",
                        300,
                        (1, 43_200),
                        "a whole number of seconds from 1 to 43200 (SQS's limit)",
                    )?),
                }),
            },
            queue_url: (env.0)("QUEUE_URL").filter(|v| !v.trim().is_empty()),
        })
    }
}

/// order-consumer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub table_name: String,
    pub worker: WorkerConfig,
}

impl ConsumerConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.orders_table()?,
            worker: WorkerConfig::from_env(env, "order-consumer")?,
        })
    }
}

/// order-events' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub order_events_topic_arn: String,
    pub service: String,
}

impl EventsConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            order_events_topic_arn: env.required(
                "ORDER_EVENTS_TOPIC_ARN",
                "set it to the order-events topic's ARN",
            )?,
            service: env.service("order-events"),
        })
    }
}

/// The inventory stage's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryConfig {
    pub table_name: String,
    pub inventory_table_name: String,
    pub default_currency: order_domain::Currency,
    /// Sends of a stock transaction cancelled only by conflicts (TRANSACTION_CONFLICT_TRIES).
    pub conflict_tries: u32,
    pub worker: WorkerConfig,
}

impl InventoryConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Self::for_service(env, "inventory")
    }

    /// The settings of the function `service`: the stage, or its DLQ handler (inventory-dlq,
    /// which makes the stage's last attempt with the stage's environment).
    pub fn for_service<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        service: &str,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.orders_table()?,
            inventory_table_name: env.inventory_table()?,
            default_currency: env.default_currency()?,
            conflict_tries: env.conflict_tries()?,
            worker: WorkerConfig::from_env(env, service)?,
        })
    }
}

/// Which payment provider the payment stage calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    /// PAYMENT_PROVIDER_URL unset: the simulated provider with its documented rules.
    Simulated {
        decline_over: rust_decimal::Decimal,
        unavailable_percent: u32,
    },
    /// A provider's HTTP API; its API key is read from the secret PAYMENT_SECRET_ARN.
    Http {
        url: String,
        secret_arn: String,
        timeout: Duration,
    },
}

/// The payment stage's settings (and its DLQ handler's: the tables only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentConfig {
    pub table_name: String,
    pub inventory_table_name: String,
    pub provider: ProviderConfig,
    pub max_attempts: u32,
    /// Sends of a stock transaction cancelled only by conflicts (TRANSACTION_CONFLICT_TRIES).
    pub conflict_tries: u32,
    pub worker: WorkerConfig,
}

impl PaymentConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Self::for_service(env, "payment")
    }

    /// The settings of the function `service`: the stage, or its DLQ handler (payment-dlq: the
    /// same tables and provider).
    pub fn for_service<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        service: &str,
    ) -> Result<Self, ConfigError> {
        let url = (env.0)("PAYMENT_PROVIDER_URL").filter(|v| !v.trim().is_empty());
        let provider = match url {
            Some(url) => ProviderConfig::Http {
                url,
                secret_arn: env.required(
                    "PAYMENT_SECRET_ARN",
                    "set it to the ARN of the Secrets Manager secret holding the provider's API key (context key paymentSecretArn)",
                )?,
                timeout: Duration::from_millis(env.number(
                    "PAYMENT_TIMEOUT_MS",
                    3_000,
                    (100, 60_000),
                    "a whole number of milliseconds from 100 to 60000",
                )?),
            },
            None => ProviderConfig::Simulated {
                decline_over: rust_decimal::Decimal::from(env.number(
                    "SIMULATED_DECLINE_OVER",
                    5_000u64,
                    (0, 1_000_000_000),
                    "a whole amount from 0 to 1000000000",
                )?),
                unavailable_percent: env.number(
                    "SIMULATED_UNAVAILABLE_PERCENT",
                    0,
                    (0, 100),
                    "a whole number from 0 to 100",
                )?,
            },
        };
        Ok(Self {
            table_name: env.orders_table()?,
            inventory_table_name: env.inventory_table()?,
            provider,
            max_attempts: env.number(
                "PAYMENT_MAX_ATTEMPTS",
                4,
                (1, 100),
                "a whole number from 1 to 100 (below the queue's maxReceiveCount)",
            )?,
            conflict_tries: env.conflict_tries()?,
            worker: WorkerConfig::from_env(env, service)?,
        })
    }
}

/// The notification stage's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfig {
    pub table_name: String,
    pub topic_arn: String,
    pub worker: WorkerConfig,
}

impl NotificationConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Self::for_service(env, "notification")
    }

    /// The settings of the function `service`: the stage, or its DLQ handler
    /// (notification-dlq, which makes the stage's last attempt with the stage's environment).
    pub fn for_service<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        service: &str,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.orders_table()?,
            topic_arn: env.required(
                "NOTIFICATION_TOPIC_ARN",
                "set it to the customer-notifications topic's ARN",
            )?,
            worker: WorkerConfig::from_env(env, service)?,
        })
    }
}

/// The order watch's settings (order-watch, and order-watch-dlq on its stuck-order list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    pub table_name: String,
    /// STUCK_AFTER_SECONDS: an order not ended this long after it was accepted is stuck (the
    /// watch queue's delivery delay; SQS delays a message 15 minutes at most).
    pub stuck_after: Duration,
    pub worker: WorkerConfig,
}

impl WatchConfig {
    /// The settings of the function `service`: the watch, or its stuck-order list's handler.
    pub fn for_service<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        service: &str,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.orders_table()?,
            stuck_after: Duration::from_secs(env.number(
                "STUCK_AFTER_SECONDS",
                900,
                (1, 900),
                "a whole number of seconds from 1 to 900 (SQS delays a message 15 minutes at most)",
            )?),
            worker: WorkerConfig::from_env(env, service)?,
        })
    }
}

/// order-api's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Orders are published here.
    pub order_topic_arn: String,
    /// Orders are read from here.
    pub table_name: String,
    pub service: String,
    /// Who the callers are: the stack's API authorization.
    pub auth: ApiAuth,
}

/// How order-api's callers are authorized, as the stack sets up its HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAuth {
    /// IAM (SigV4): the callers are services acting for any customer (API_AUTH=iam, the default).
    Iam,
    /// A JWT authorizer (API_AUTH=jwt): the customer is the token's `customer_claim`
    /// (API_CUSTOMER_CLAIM, `sub` by default); a token with `admin_scope` (API_ADMIN_SCOPE,
    /// `orders/admin` by default) acts for any customer.
    Jwt {
        customer_claim: String,
        admin_scope: String,
    },
}

impl ApiAuth {
    /// API_AUTH with, for `jwt`, API_CUSTOMER_CLAIM and API_ADMIN_SCOPE (their defaults when
    /// unset): order-api's, and the local runner's issuer reads the same from its environment.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let setting = |name: &str, default: &str| {
            (env.0)(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        match setting("API_AUTH", "iam").as_str() {
            "iam" => Ok(ApiAuth::Iam),
            "jwt" => Ok(ApiAuth::Jwt {
                customer_claim: setting("API_CUSTOMER_CLAIM", "sub"),
                admin_scope: setting("API_ADMIN_SCOPE", "orders/admin"),
            }),
            other => Err(ConfigError::Invalid {
                name: "API_AUTH",
                value: other.to_string(),
                expected: "iam or jwt (the stack sets it from apiJwtIssuer)",
            }),
        }
    }
}

impl ApiConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            order_topic_arn: env.required("ORDER_TOPIC_ARN", "set it to the order topic's ARN")?,
            table_name: env.orders_table()?,
            service: env.service("order-api"),
            auth: ApiAuth::from_env(env)?,
        })
    }
}

/// dlq-alarm's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqAlarmConfig {
    pub table_name: String,
    pub dlq_url: String,
    pub ops_topic_arn: String,
    /// At most this many DLQ messages are looked at per alarm.
    pub snapshot_max: usize,
    /// How long the looked-at messages stay hidden while the snapshot is taken; they are made
    /// visible again as soon as it is done.
    pub snapshot_visibility_seconds: i32,
    pub concurrency: usize,
    /// No dead letter is examined once less than this is left of the invocation.
    pub start_margin: Duration,
    pub service: String,
}

impl DlqAlarmConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.orders_table()?,
            dlq_url: env.required("DLQ_URL", "set it to the dead-letter queue's URL")?,
            ops_topic_arn: env.required("OPS_TOPIC_ARN", "set it to the ops topic's ARN")?,
            snapshot_max: env.number(
                "DLQ_SNAPSHOT_MAX",
                100,
                (1, 10_000),
                "a whole number from 1 to 10000",
            )?,
            snapshot_visibility_seconds: env.number(
                "DLQ_SNAPSHOT_VISIBILITY_SECONDS",
                60,
                (5, 43_200),
                "a whole number of seconds from 5 to 43200",
            )?,
            concurrency: env.number(
                "RECORD_CONCURRENCY",
                10,
                (1, 100),
                "a whole number from 1 to 100",
            )?,
            start_margin: env.start_margin()?,
            service: env.service("dlq-alarm"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn consumer_config_reads_defaults_and_values() {
        let c = ConsumerConfig::from_env(&env(&[
            ("TABLE_NAME", "Orders"),
            ("MAX_RECEIVE_COUNT", "5"),
        ]))
        .unwrap();
        assert_eq!(c.table_name, "Orders");
        assert_eq!(c.worker.max_receive_count, 5);
        assert_eq!(c.worker.record_concurrency, 10);
        assert_eq!(c.worker.start_margin, Duration::from_secs(3));
        assert_eq!(c.worker.service, "order-consumer");
    }

    /// Protects: a dead-letter handler's queue (the DLQ itself) says it has no DLQ, so its
    /// worker never claims a record moves to one.
    #[test]
    fn max_receive_count_none_is_a_queue_without_a_dlq() {
        let c = ConsumerConfig::from_env(&env(&[
            ("TABLE_NAME", "Orders"),
            ("MAX_RECEIVE_COUNT", "none"),
        ]))
        .unwrap();
        assert_eq!(c.worker.max_receive_count, NO_DEAD_LETTER_QUEUE);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = ConsumerConfig::from_env(&env(&[])).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
        let err =
            DlqAlarmConfig::from_env(&env(&[("TABLE_NAME", "t"), ("DLQ_URL", "u")])).unwrap_err();
        assert!(err.to_string().contains("OPS_TOPIC_ARN"), "{err}");
    }

    #[test]
    fn a_malformed_variable_is_named_with_its_value() {
        let err =
            ConsumerConfig::from_env(&env(&[("TABLE_NAME", "t"), ("RECORD_CONCURRENCY", "zero")]))
                .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("RECORD_CONCURRENCY") && text.contains("zero"),
            "{text}"
        );
        let err =
            ConsumerConfig::from_env(&env(&[("TABLE_NAME", "t"), ("MAX_RECEIVE_COUNT", "0")]))
                .unwrap_err();
        assert!(err.to_string().contains("MAX_RECEIVE_COUNT"));
    }

    /// Protects (issue 31): the API's callers are services unless the stack says JWT, whose
    /// claim and admin scope have defaults; an unknown mode stops start-up naming the variable.
    #[test]
    fn api_auth_is_iam_by_default_and_jwt_reads_its_claim_and_admin_scope() {
        let base = [("ORDER_TOPIC_ARN", "arn"), ("TABLE_NAME", "Orders")];
        assert_eq!(ApiConfig::from_env(&env(&base)).unwrap().auth, ApiAuth::Iam);
        let jwt = ApiConfig::from_env(&env(&[base[0], base[1], ("API_AUTH", "jwt")])).unwrap();
        assert_eq!(
            jwt.auth,
            ApiAuth::Jwt {
                customer_claim: "sub".into(),
                admin_scope: "orders/admin".into()
            }
        );
        let named = ApiConfig::from_env(&env(&[
            base[0],
            base[1],
            ("API_AUTH", "jwt"),
            ("API_CUSTOMER_CLAIM", "custom:customer_id"),
            ("API_ADMIN_SCOPE", "shop/support"),
        ]))
        .unwrap();
        assert_eq!(
            named.auth,
            ApiAuth::Jwt {
                customer_claim: "custom:customer_id".into(),
                admin_scope: "shop/support".into()
            }
        );
        let err = ApiConfig::from_env(&env(&[base[0], base[1], ("API_AUTH", "none")])).unwrap_err();
        assert!(err.to_string().contains("API_AUTH"), "{err}");
    }
}
