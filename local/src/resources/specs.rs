//! What the runner knows of each resource it creates or emulates, for the emulation around it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSpec {
    pub id: String,
    pub name: String,
    pub url: String,
    pub arn: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub binary: String,
    /// What the stack wires for it beyond its settings (`OrderPipeline:Features`).
    pub features: Vec<String>,
    pub timeout_seconds: u64,
    pub memory_mb: u64,
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingSpec {
    pub id: String,
    pub queue: QueueSpec,
    pub function_id: String,
    pub batch_size: i32,
    pub batching_window_seconds: u64,
    pub maximum_concurrency: usize,
    pub report_batch_item_failures: bool,
}

/// A DynamoDB stream event source mapping.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamMappingSpec {
    pub id: String,
    pub stream_arn: String,
    pub function_id: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    /// Retries of a failing record before it goes to the on-failure destination.
    pub maximum_retry_attempts: u64,
    /// The on-failure destination, a queue of the stack.
    pub on_failure_queue_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmSpec {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    /// A metric-math alarm's expression (its metric above is the first one it uses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    pub statistic: String,
    pub period_seconds: u64,
    pub evaluation_periods: u64,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
    /// What the alarm means and what to do (its notification carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One route of an HTTP API: `POST /orders` on a function.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    pub function_id: String,
    /// The route's JWT authorizer; `None`: IAM (unsigned locally).
    pub jwt: Option<JwtSpec>,
}

/// A route's JWT authorizer: the issuer and audiences it takes, and the scopes the route needs
/// (one of them; none: any valid token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtSpec {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
}

/// An HTTP API of the stack and its routes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    pub id: String,
    pub routes: Vec<RouteSpec>,
}

/// An EventBridge schedule: its rate, and the function it invokes with a constant input.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    pub id: String,
    /// The rule's `rate(...)`, as deployed (locally every schedule runs faster).
    pub rate_seconds: u64,
    pub function_id: String,
    pub input: Value,
}

impl FunctionSpec {
    /// Whether the stack gives the function `feature` (`backoff`, `payment-provider`).
    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}
