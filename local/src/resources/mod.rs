//! The stack's resources in the emulator, created from the synthesized template.
//!
//! Every resource of the template is either created in moto (topics, queues, subscriptions,
//! tables, alarms), emulated by the runner around the real handler code (functions, event
//! source mappings, alarm evaluation), or skipped for a stated reason (IAM, KMS, resource
//! policies, log groups, the dashboard: things moto does not enforce or the runner does another
//! way). A resource type the runner does not know is an error, so a new kind of resource in the
//! stack cannot be silently missing from the local pipeline. [`plan`] says which is which for
//! each resource id without creating anything (`order-local plan`).

mod create;
mod emulated;
mod plan;
mod specs;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::LocalError;

pub use create::create;
pub use plan::{plan, Action, PlannedResource};
pub use specs::{
    AlarmSpec, ApiSpec, FunctionSpec, JwtSpec, MappingSpec, QueueSpec, RouteSpec, ScheduleSpec,
    StreamMappingSpec,
};

/// Metadata on a function naming the binary it runs (infra/constructs/rust-lambda.ts).
pub const BINARY_METADATA: &str = "OrderPipeline:Binary";
/// Metadata on a function listing what the runner wires for it (infra/config.ts's stage table):
/// `backoff` (its failed records come back after its own backoff, which local time shortens)
/// and `payment-provider` (it calls the payment provider: the runner's fake one).
pub const FEATURES_METADATA: &str = "OrderPipeline:Features";

/// The outputs the local tools use, under the names `cdk deploy --outputs-file` writes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalStack {
    pub endpoint: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub table_name: String,
    pub ops_topic_arn: String,
    pub dlq_alarm_name: String,
    /// The Inventory table, when the stack has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_table_name: Option<String>,
    /// The order-events topic, when the stack has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_events_topic_arn: Option<String>,
    /// The local HTTP API's base URL, once the runner serves it (the ApiUrl output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Every output of the stack, resolved.
    pub outputs: BTreeMap<String, String>,
}

impl LocalStack {
    fn from_outputs(endpoint: &str, outputs: BTreeMap<String, String>) -> Result<Self, LocalError> {
        let get = |name: &str| {
            outputs.get(name).cloned().ok_or_else(|| {
                LocalError::Input(format!(
                    "the stack has no {name} output, which the local tools need"
                ))
            })
        };
        Ok(LocalStack {
            endpoint: endpoint.to_string(),
            topic_arn: get("OrderTopicArn")?,
            queue_url: get("OrderQueueUrl")?,
            dlq_url: get("DeadLetterQueueUrl")?,
            table_name: get("OrdersTableName")?,
            ops_topic_arn: get("OpsTopicArn")?,
            dlq_alarm_name: get("DlqAlarmName")?,
            inventory_table_name: outputs.get("InventoryTableName").cloned(),
            order_events_topic_arn: outputs.get("OrderEventsTopicArn").cloned(),
            api_url: None,
            outputs,
        })
    }
}

/// Everything created from the template, for the runner to emulate around.
#[derive(Debug, Clone)]
pub struct Created {
    pub stack: LocalStack,
    pub queues: Vec<QueueSpec>,
    pub functions: Vec<FunctionSpec>,
    pub mappings: Vec<MappingSpec>,
    pub stream_mappings: Vec<StreamMappingSpec>,
    pub alarms: Vec<AlarmSpec>,
    pub schedules: Vec<ScheduleSpec>,
    pub apis: Vec<ApiSpec>,
    /// Each table's physical name, by logical id.
    pub tables: BTreeMap<String, String>,
}

impl Created {
    pub fn function(&self, id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.id == id)
    }
}
