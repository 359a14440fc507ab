//! The stack's resources in the emulator, created from the synthesized template.
//!
//! Every resource of the template is either created in moto (topics, queues, subscriptions,
//! tables, alarms), emulated by the runner around the real handler code (functions, event
//! source mappings, alarm evaluation), or skipped for a stated reason (IAM, KMS, resource
//! policies, log groups, the dashboard: things moto does not enforce or the runner does another
//! way). A resource type the runner does not know is an error, so a new kind of resource in the
//! stack cannot be silently missing from the local pipeline. [`plan`] says which is which for
//! each resource id without creating anything (`order-local plan`).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;
use serde_json::Value;

use crate::emulator::{EMULATOR_ACCOUNT, EMULATOR_REGION};
use crate::template::{Physical, Resolver, Resource, Template};
use crate::{aws_err, cloudwatch, Clients, LocalError};

/// Metadata on a function naming the binary it runs (infra/constructs/rust-lambda.ts).
pub const BINARY_METADATA: &str = "OrderPipeline:Binary";

/// What the runner does with one resource of the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action", content = "detail")]
pub enum Action {
    /// Created in the emulator with the template's properties.
    Create,
    /// Run by the local runner itself.
    Emulate(String),
    /// Left out, and why.
    Skip(String),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedResource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub action: Action,
}

/// What the runner does with each resource type; `None` for a type it does not know.
fn action_for(kind: &str) -> Option<Action> {
    let skip = |why: &str| Some(Action::Skip(why.to_string()));
    match kind {
        "AWS::SNS::Topic" | "AWS::SQS::Queue" | "AWS::SNS::Subscription"
        | "AWS::DynamoDB::Table" => Some(Action::Create),
        "AWS::CloudWatch::Alarm" => Some(Action::Emulate(
            "stored in the emulator; evaluated by the runner where the metric is observable locally (queue depth, function errors), and its function actions invoked".into(),
        )),
        "AWS::Lambda::Function" => Some(Action::Emulate(
            "the real handler of its binary, in process, configured from the template's environment".into(),
        )),
        "AWS::Lambda::EventSourceMapping" => Some(Action::Emulate(
            "an SQS source: polls the queue with the template's batch size, window and maximum concurrency, deleting only the records not in batchItemFailures; a DynamoDB stream: reads it in order with the batch size, retrying from a reported failure and sending a record that keeps failing to the on-failure queue".into(),
        )),
        "AWS::ApiGatewayV2::Api" => Some(Action::Emulate(
            "served on a loopback port by the runner (the ApiUrl output locally)".into(),
        )),
        "AWS::ApiGatewayV2::Route" | "AWS::ApiGatewayV2::Integration" => Some(Action::Emulate(
            "routes requests by route key to the real handler of the integrated function".into(),
        )),
        "AWS::ApiGatewayV2::Stage" => {
            skip("throttling and access logs: not applied on loopback")
        }
        "AWS::ApiGatewayV2::Authorizer" => {
            skip("authorization: the local API listens on loopback only and takes unsigned requests")
        }
        "AWS::IAM::Role" | "AWS::IAM::Policy" => skip("permissions: the emulator does not enforce IAM"),
        "AWS::KMS::Key" => skip("encryption at rest: the emulator stores plaintext"),
        "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" => {
            skip("resource policies (TLS only, account only): the emulator does not enforce them")
        }
        "AWS::Logs::LogGroup" => skip("the functions' log lines go to target/order-local/functions.log"),
        "AWS::Lambda::Permission" => skip("the runner invokes the functions itself"),
        "AWS::Events::Rule" => Some(Action::Emulate(
            "a schedule: the runner invokes its target function with the rule's constant input, every few seconds instead of its rate (local time passes faster)".into(),
        )),
        "AWS::CloudWatch::Dashboard" => skip("graphs of CloudWatch metrics, which are not collected locally"),
        "AWS::CDK::Metadata" => skip("CDK's version reporting"),
        _ => None,
    }
}

/// The runner's plan for every resource of the template, or an error naming an unknown type.
pub fn plan(template: &Template) -> Result<Vec<PlannedResource>, LocalError> {
    template
        .resources
        .iter()
        .map(|(id, r)| {
            let action = action_for(&r.kind).ok_or_else(|| {
                LocalError::Input(format!(
                    "resource {id} is a {}, which the local runner does not know: teach local/src/resources.rs to create, emulate or skip it",
                    r.kind
                ))
            })?;
            Ok(PlannedResource {
                id: id.clone(),
                kind: r.kind.clone(),
                action,
            })
        })
        .collect()
}

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
}

/// One route of an HTTP API: `POST /orders` on a function.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    pub function_id: String,
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

/// The enabled `rate(...)` rules of the template, one spec per function target.
fn schedules(template: &Template) -> Result<Vec<ScheduleSpec>, LocalError> {
    let mut specs = Vec::new();
    for (id, r) in template.of_type("AWS::Events::Rule") {
        if r.properties["State"]
            .as_str()
            .is_some_and(|s| s != "ENABLED")
        {
            continue;
        }
        let Some(expression) = r.properties["ScheduleExpression"].as_str() else {
            return Err(LocalError::Input(format!(
                "rule {id} has no ScheduleExpression: the local runner emulates schedules only"
            )));
        };
        let rate_seconds = rate_seconds(expression).ok_or_else(|| {
            LocalError::Input(format!(
                "rule {id}: {expression:?} is not a rate(N minutes|hours|days) the local runner knows"
            ))
        })?;
        for target in r.properties["Targets"].as_array().into_iter().flatten() {
            let function_id = named_id(&target["Arn"]).ok_or_else(|| {
                LocalError::Input(format!(
                    "rule {id}: a target names no resource of the stack"
                ))
            })?;
            let input = match target["Input"].as_str() {
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    LocalError::Input(format!("rule {id}: its target's Input is not JSON: {e}"))
                })?,
                None => {
                    return Err(LocalError::Input(format!(
                        "rule {id}: the local runner sends a target's constant Input only, and this target has none"
                    )))
                }
            };
            specs.push(ScheduleSpec {
                id: id.to_string(),
                rate_seconds,
                function_id,
                input,
            });
        }
    }
    Ok(specs)
}

/// `rate(5 minutes)` in seconds.
fn rate_seconds(expression: &str) -> Option<u64> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit_seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(n * unit_seconds)
}

/// The logical id a value names through `Ref` or `Fn::GetAtt`, anywhere inside it.
fn named_id(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("Ref") {
                return Some(id.clone());
            }
            if let Some(id) = map.get("Fn::GetAtt").and_then(|a| a[0].as_str()) {
                return Some(id.to_string());
            }
            map.values().find_map(named_id)
        }
        Value::Array(items) => items.iter().find_map(named_id),
        _ => None,
    }
}

/// The template's HTTP APIs: each route's method, path and the function its integration invokes.
fn apis(template: &Template) -> Result<Vec<ApiSpec>, LocalError> {
    template
        .of_type("AWS::ApiGatewayV2::Api")
        .map(|(api_id, _)| {
            let routes = template
                .of_type("AWS::ApiGatewayV2::Route")
                .filter(|(_, r)| named_id(&r.properties["ApiId"]).as_deref() == Some(api_id))
                .map(|(id, r)| {
                    let key = r.properties["RouteKey"].as_str().unwrap_or_default();
                    let (method, path) = key.split_once(' ').ok_or_else(|| {
                        LocalError::Input(format!("route {id} has route key {key:?}, not \"METHOD /path\""))
                    })?;
                    let integration = named_id(&r.properties["Target"]).unwrap_or_default();
                    let function_id = template
                        .resources
                        .get(&integration)
                        .and_then(|i| named_id(&i.properties["IntegrationUri"]))
                        .ok_or_else(|| {
                            LocalError::Input(format!(
                                "route {id} ({key}) integrates no Lambda function the runner can find"
                            ))
                        })?;
                    Ok(RouteSpec {
                        method: method.to_string(),
                        path: path.to_string(),
                        function_id,
                    })
                })
                .collect::<Result<Vec<_>, LocalError>>()?;
            Ok(ApiSpec {
                id: api_id.to_string(),
                routes,
            })
        })
        .collect()
}

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

/// A physical name from the run's prefix and the logical id, within AWS's length limits.
fn physical_name(prefix: &str, id: &str, max: usize) -> String {
    let name = format!("{prefix}-{id}");
    name.chars().take(max).collect()
}

fn props<'a>(r: &'a Resource, key: &str) -> Option<&'a Value> {
    r.properties.get(key)
}

/// The entries of a list-valued property (none when it is absent).
fn list<'a>(r: &'a Resource, key: &str) -> impl Iterator<Item = &'a Value> {
    props(r, key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

struct Builder<'a> {
    clients: &'a Clients,
    template: &'a Template,
    prefix: &'a str,
    physical: HashMap<String, Physical>,
}

impl Builder<'_> {
    fn resolver(&self) -> Resolver<'_> {
        Resolver {
            physical: &self.physical,
            region: EMULATOR_REGION,
            account: EMULATOR_ACCOUNT,
            stack_name: self.prefix,
        }
    }

    fn string(&self, r: &Resource, key: &str) -> Result<Option<String>, LocalError> {
        props(r, key).map(|v| self.resolver().string(v)).transpose()
    }

    /// A JSON-valued property (a redrive or filter policy) as the JSON text the APIs take.
    fn json_text(&self, r: &Resource, key: &str) -> Result<Option<String>, LocalError> {
        props(r, key)
            .map(|v| self.resolver().resolve(v).map(|v| v.to_string()))
            .transpose()
    }

    fn number(&self, r: &Resource, key: &str) -> Result<Option<u64>, LocalError> {
        self.string(r, key)?
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| LocalError::Input(format!("{key} is not a whole number: {s}")))
            })
            .transpose()
    }

    async fn table(&mut self, id: &str, r: &Resource) -> Result<(), LocalError> {
        let name = physical_name(self.prefix, id, 255);
        let mut req = self
            .clients
            .dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest);
        for key in list(r, "KeySchema") {
            let kind = match key["KeyType"].as_str() {
                Some("RANGE") => KeyType::Range,
                _ => KeyType::Hash,
            };
            req = req.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key["AttributeName"].as_str().unwrap_or_default())
                    .key_type(kind)
                    .build()
                    .map_err(aws_err("table key"))?,
            );
        }
        for attr in list(r, "AttributeDefinitions") {
            let kind = match attr["AttributeType"].as_str() {
                Some("N") => ScalarAttributeType::N,
                Some("B") => ScalarAttributeType::B,
                _ => ScalarAttributeType::S,
            };
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr["AttributeName"].as_str().unwrap_or_default())
                    .attribute_type(kind)
                    .build()
                    .map_err(aws_err("table attribute"))?,
            );
        }
        if let Some(view) =
            props(r, "StreamSpecification").and_then(|s| s["StreamViewType"].as_str())
        {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build()
                    .map_err(aws_err("table stream"))?,
            );
        }
        let out = req
            .send()
            .await
            .map_err(aws_err(format!("create table {id}")))?;
        let description = out.table_description;
        let mut attributes = HashMap::from([(
            "Arn".to_string(),
            description
                .as_ref()
                .and_then(|d| d.table_arn.clone())
                .unwrap_or_default(),
        )]);
        if let Some(stream) = description.and_then(|d| d.latest_stream_arn) {
            attributes.insert("StreamArn".into(), stream);
        }
        self.physical.insert(
            id.to_string(),
            Physical {
                reference: name,
                attributes,
            },
        );
        Ok(())
    }

    async fn topic(&mut self, id: &str) -> Result<(), LocalError> {
        let name = physical_name(self.prefix, id, 256);
        let arn = self
            .clients
            .sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .map_err(aws_err(format!("create topic {id}")))?
            .topic_arn
            .unwrap_or_default();
        self.physical.insert(
            id.to_string(),
            Physical {
                reference: arn.clone(),
                attributes: HashMap::from([
                    ("TopicArn".to_string(), arn),
                    ("TopicName".to_string(), name),
                ]),
            },
        );
        Ok(())
    }

    async fn queue(&mut self, id: &str, r: &Resource) -> Result<QueueSpec, LocalError> {
        let name = physical_name(self.prefix, id, 80);
        let mut req = self.clients.sqs.create_queue().queue_name(&name);
        for (key, attribute) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
            (
                "ReceiveMessageWaitTimeSeconds",
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
            ),
        ] {
            if let Some(value) = self.string(r, key)? {
                req = req.attributes(attribute, value);
            }
        }
        if let Some(redrive) = self.json_text(r, "RedrivePolicy")? {
            req = req.attributes(QueueAttributeName::RedrivePolicy, redrive);
        }
        let url = req
            .send()
            .await
            .map_err(aws_err(format!("create queue {id}")))?
            .queue_url
            .unwrap_or_default();
        // The emulator's ARN scheme, without asking it: arn:aws:sqs:REGION:ACCOUNT:NAME.
        let arn = format!("arn:aws:sqs:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:{name}");
        self.physical.insert(
            id.to_string(),
            Physical {
                reference: url.clone(),
                attributes: HashMap::from([
                    ("Arn".to_string(), arn.clone()),
                    ("QueueName".to_string(), name.clone()),
                    ("QueueUrl".to_string(), url.clone()),
                ]),
            },
        );
        Ok(QueueSpec {
            id: id.to_string(),
            name,
            url,
            arn,
        })
    }

    async fn subscription(&mut self, id: &str, r: &Resource) -> Result<(), LocalError> {
        let topic = self.string(r, "TopicArn")?.unwrap_or_default();
        let mut req = self
            .clients
            .sns
            .subscribe()
            .topic_arn(&topic)
            .protocol(self.string(r, "Protocol")?.unwrap_or_default())
            .endpoint(self.string(r, "Endpoint")?.unwrap_or_default());
        for (key, is_json) in [
            ("RawMessageDelivery", false),
            ("FilterPolicyScope", false),
            ("FilterPolicy", true),
            ("RedrivePolicy", true),
        ] {
            let value = if is_json {
                self.json_text(r, key)?
            } else {
                self.string(r, key)?
            };
            if let Some(value) = value {
                req = req.attributes(key, value);
            }
        }
        let arn = req
            .send()
            .await
            .map_err(aws_err(format!("create subscription {id}")))?
            .subscription_arn
            .unwrap_or_default();
        self.physical.insert(
            id.to_string(),
            Physical {
                reference: arn,
                attributes: HashMap::new(),
            },
        );
        Ok(())
    }

    fn function(&mut self, id: &str, r: &Resource) -> Result<FunctionSpec, LocalError> {
        let name = physical_name(self.prefix, id, 64);
        let arn = format!("arn:aws:lambda:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:function:{name}");
        self.physical.insert(
            id.to_string(),
            Physical {
                reference: name.clone(),
                attributes: HashMap::from([("Arn".to_string(), arn.clone())]),
            },
        );
        let binary = r.metadata[BINARY_METADATA]
            .as_str()
            .ok_or_else(|| {
                LocalError::Input(format!(
                    "function {id} names no binary in its {BINARY_METADATA} metadata; build it with RustLambda (infra/constructs/rust-lambda.ts)"
                ))
            })?
            .to_string();
        let environment = match props(r, "Environment").map(|e| &e["Variables"]) {
            Some(Value::Object(vars)) => vars
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.resolver().string(v)?)))
                .collect::<Result<_, LocalError>>()?,
            _ => BTreeMap::new(),
        };
        Ok(FunctionSpec {
            id: id.to_string(),
            name,
            arn,
            binary,
            timeout_seconds: self.number(r, "Timeout")?.unwrap_or(3),
            memory_mb: self.number(r, "MemorySize")?.unwrap_or(128),
            environment,
        })
    }

    fn stream_mapping(
        &self,
        id: &str,
        r: &Resource,
        queues: &[QueueSpec],
    ) -> Result<StreamMappingSpec, LocalError> {
        let failure_arn = props(r, "DestinationConfig")
            .map(|d| self.resolver().string(&d["OnFailure"]["Destination"]))
            .transpose()?;
        Ok(StreamMappingSpec {
            id: id.to_string(),
            stream_arn: self.string(r, "EventSourceArn")?.unwrap_or_default(),
            function_id: props(r, "FunctionName")
                .and_then(|f| f["Ref"].as_str())
                .unwrap_or_default()
                .to_string(),
            batch_size: self.number(r, "BatchSize")?.unwrap_or(100) as i32,
            report_batch_item_failures: list(r, "FunctionResponseTypes")
                .any(|t| t == "ReportBatchItemFailures"),
            maximum_retry_attempts: self.number(r, "MaximumRetryAttempts")?.unwrap_or(10_000),
            on_failure_queue_url: failure_arn
                .and_then(|arn| queues.iter().find(|q| q.arn == arn).map(|q| q.url.clone())),
        })
    }

    fn mapping(
        &self,
        id: &str,
        r: &Resource,
        queues: &[QueueSpec],
    ) -> Result<MappingSpec, LocalError> {
        let source = self.string(r, "EventSourceArn")?.unwrap_or_default();
        let queue = queues.iter().find(|q| q.arn == source).cloned().ok_or_else(|| {
            LocalError::Input(format!(
                "event source mapping {id} reads {source}, which is not a queue of the stack; the local runner emulates SQS sources only"
            ))
        })?;
        let function = match props(r, "FunctionName") {
            Some(Value::Object(m)) => m
                .get("Ref")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_default(),
            _ => String::new(),
        };
        let responses = list(r, "FunctionResponseTypes").any(|t| t == "ReportBatchItemFailures");
        let concurrency = props(r, "ScalingConfig")
            .and_then(|s| s["MaximumConcurrency"].as_u64())
            // Without a maximum, Lambda scales out; five pollers stand for that locally.
            .unwrap_or(5);
        Ok(MappingSpec {
            id: id.to_string(),
            queue,
            function_id: function,
            batch_size: self.number(r, "BatchSize")?.unwrap_or(10) as i32,
            batching_window_seconds: self
                .number(r, "MaximumBatchingWindowInSeconds")?
                .unwrap_or(0),
            maximum_concurrency: concurrency as usize,
            report_batch_item_failures: responses,
        })
    }

    fn alarm(&mut self, id: &str, r: &Resource) -> Result<AlarmSpec, LocalError> {
        let name = physical_name(self.prefix, id, 255);
        self.physical.insert(
            id.to_string(),
            Physical {
                reference: name.clone(),
                attributes: HashMap::from([(
                    "Arn".to_string(),
                    format!("arn:aws:cloudwatch:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:alarm:{name}"),
                )]),
            },
        );
        let strings = |key: &str| -> Result<Vec<String>, LocalError> {
            props(r, key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| self.resolver().string(v))
                .collect()
        };
        // A metric-math alarm names its metrics under Metrics: read the first metric it uses
        // (the local evaluator knows the expressions the stack writes) and keep the expression.
        let math: Vec<&Value> = list(r, "Metrics").collect();
        let stat = math.iter().find_map(|m| m.get("MetricStat"));
        let expression = math
            .iter()
            .find(|m| m["ReturnData"].as_bool() != Some(false))
            .and_then(|m| m["Expression"].as_str())
            .map(str::to_string);
        let metric = stat.map(|s| &s["Metric"]);
        let raw_dimensions: Vec<&Value> = match metric {
            Some(m) => m["Dimensions"].as_array().into_iter().flatten().collect(),
            None => list(r, "Dimensions").collect(),
        };
        let dimensions = raw_dimensions
            .into_iter()
            .map(|d| {
                Ok((
                    d["Name"].as_str().unwrap_or_default().to_string(),
                    self.resolver().string(&d["Value"])?,
                ))
            })
            .collect::<Result<Vec<_>, LocalError>>()?;
        let threshold = self.string(r, "Threshold")?.unwrap_or_default();
        let (namespace, metric_name, statistic, period) = match (stat, metric) {
            (Some(s), Some(m)) => (
                m["Namespace"].as_str().map(str::to_string),
                m["MetricName"].as_str().map(str::to_string),
                s["Stat"].as_str().map(str::to_string),
                s["Period"].as_u64(),
            ),
            _ => (
                self.string(r, "Namespace")?,
                self.string(r, "MetricName")?,
                self.string(r, "Statistic")?,
                self.number(r, "Period")?,
            ),
        };
        Ok(AlarmSpec {
            id: id.to_string(),
            name,
            namespace: namespace.unwrap_or_default(),
            metric_name: metric_name.unwrap_or_default(),
            dimensions,
            expression,
            statistic: statistic.unwrap_or_else(|| "Maximum".into()),
            period_seconds: period.unwrap_or(60),
            evaluation_periods: self.number(r, "EvaluationPeriods")?.unwrap_or(1),
            threshold: threshold.parse().map_err(|_| {
                LocalError::Input(format!(
                    "alarm {id}: Threshold {threshold:?} is not a number"
                ))
            })?,
            comparison_operator: self.string(r, "ComparisonOperator")?.unwrap_or_default(),
            treat_missing_data: self
                .string(r, "TreatMissingData")?
                .unwrap_or_else(|| "missing".into()),
            alarm_actions: strings("AlarmActions")?,
            ok_actions: strings("OKActions")?,
        })
    }
}

/// Creates every resource of `template` that the emulator holds, named with `prefix`, and
/// describes the ones the runner emulates.
pub async fn create(
    clients: &Clients,
    template: &Template,
    prefix: &str,
) -> Result<Created, LocalError> {
    plan(template)?;
    let mut b = Builder {
        clients,
        template,
        prefix,
        physical: HashMap::new(),
    };
    let template = b.template;
    for (id, r) in template.of_type("AWS::DynamoDB::Table") {
        b.table(id, r).await?;
    }
    for (id, _) in template.of_type("AWS::SNS::Topic") {
        b.topic(id).await?;
    }
    // Dead-letter queues first: a work queue's redrive policy names its DLQ's ARN.
    let mut queues = Vec::new();
    let (plain, redriven): (Vec<_>, Vec<_>) = template
        .of_type("AWS::SQS::Queue")
        .partition(|(_, r)| props(r, "RedrivePolicy").is_none());
    for (id, r) in plain.into_iter().chain(redriven) {
        queues.push(b.queue(id, r).await?);
    }
    for (id, r) in template.of_type("AWS::SNS::Subscription") {
        b.subscription(id, r).await?;
    }
    let mut functions = Vec::new();
    for (id, r) in template.of_type("AWS::Lambda::Function") {
        functions.push(b.function(id, r)?);
    }
    // Resources the emulator does not hold (and alarms, named before they exist) still
    // resolve, to a name, for anything naming them (an alarm's dimensions name the API).
    for (id, r) in &template.resources {
        if r.kind == "AWS::CloudWatch::Alarm" {
            continue;
        }
        b.physical.entry(id.clone()).or_insert_with(|| Physical {
            reference: physical_name(prefix, id, 255),
            attributes: HashMap::from([(
                "Arn".to_string(),
                format!(
                    "arn:aws:local:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:{}",
                    r.kind
                ),
            )]),
        });
    }
    let streams: Vec<String> = b
        .physical
        .values()
        .filter_map(|p| p.attributes.get("StreamArn").cloned())
        .collect();
    let (stream_sources, queue_sources): (Vec<_>, Vec<_>) = template
        .of_type("AWS::Lambda::EventSourceMapping")
        .partition(|(_, r)| {
            b.string(r, "EventSourceArn")
                .ok()
                .flatten()
                .is_some_and(|arn| streams.contains(&arn))
        });
    let mappings = queue_sources
        .into_iter()
        .map(|(id, r)| b.mapping(id, r, &queues))
        .collect::<Result<Vec<_>, _>>()?;
    let stream_mappings = stream_sources
        .into_iter()
        .map(|(id, r)| b.stream_mapping(id, r, &queues))
        .collect::<Result<Vec<_>, _>>()?;
    let mut alarms = Vec::new();
    for (id, r) in template.of_type("AWS::CloudWatch::Alarm") {
        let alarm = b.alarm(id, r)?;
        cloudwatch::put_metric_alarm(&clients.endpoint, &alarm)?;
        alarms.push(alarm);
    }
    let outputs = template
        .outputs
        .iter()
        .map(|(name, o)| Ok((name.clone(), b.resolver().string(&o.value)?)))
        .collect::<Result<BTreeMap<_, _>, LocalError>>()?;
    Ok(Created {
        stack: LocalStack::from_outputs(&clients.endpoint, outputs)?,
        queues,
        functions,
        mappings,
        stream_mappings,
        alarms,
        schedules: schedules(template)?,
        apis: apis(template)?,
        tables: template
            .of_type("AWS::DynamoDB::Table")
            .filter_map(|(id, _)| {
                b.physical
                    .get(id)
                    .map(|p| (id.to_string(), p.reference.clone()))
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: the stack's DLQ sweep is found with its rate, its function and its input, so the
    /// local runner runs it as EventBridge would; a schedule it cannot run is an error.
    #[test]
    fn the_dlq_sweep_schedule_is_read_from_the_template() {
        let template = Template::current().expect("the stack synthesizes");
        let specs = schedules(&template).expect("the stack's schedules are rates");
        assert_eq!(specs.len(), 1, "{specs:?}");
        assert!(specs[0].rate_seconds >= 60, "{specs:?}");
        assert!(
            specs[0].function_id.starts_with("DlqAlarmFunction"),
            "{specs:?}"
        );
        assert_eq!(specs[0].input, serde_json::json!({"sweep": "scheduled"}));
        assert_eq!(rate_seconds("rate(1 hour)"), Some(3600));
        assert_eq!(rate_seconds("cron(0 12 * * ? *)"), None);
        assert_eq!(rate_seconds("rate(five minutes)"), None);
    }

    /// Protects: every resource of the project's stack is created, emulated or skipped for a
    /// stated reason; a resource type the runner does not know fails the plan, naming it.
    #[test]
    fn every_resource_of_the_stack_has_a_plan_and_an_unknown_type_is_an_error() {
        let template = Template::current().expect("the stack synthesizes");
        let planned = plan(&template).expect("every type is known");
        assert_eq!(planned.len(), template.resources.len());
        for kind in [
            "AWS::SQS::Queue",
            "AWS::SNS::Subscription",
            "AWS::Lambda::EventSourceMapping",
            "AWS::CloudWatch::Alarm",
        ] {
            assert!(planned.iter().any(|p| p.kind == kind), "{kind} planned");
        }
        let mut unknown = template.clone();
        unknown.resources.insert(
            "Api".into(),
            serde_json::from_value(serde_json::json!({"Type": "AWS::StepFunctions::StateMachine"}))
                .unwrap(),
        );
        let err = plan(&unknown).unwrap_err().to_string();
        assert!(
            err.contains("Api") && err.contains("AWS::StepFunctions::StateMachine"),
            "{err}"
        );
    }
}
