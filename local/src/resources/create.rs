//! Creating the template's resources in the emulator, resolving each one's physical name and
//! attributes for the resources that name it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::emulated::{apis, schedules};
use super::specs::{AlarmSpec, FunctionSpec, MappingSpec, QueueSpec, StreamMappingSpec};
use super::{plan, Created, LocalStack, BINARY_METADATA, FEATURES_METADATA};
use crate::emulator::{EMULATOR_ACCOUNT, EMULATOR_REGION};
use crate::template::{Physical, Resolver, Resource, Template};
use crate::{aws_err, cloudwatch, Clients, LocalError};

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
        let features = match &r.metadata[FEATURES_METADATA] {
            Value::Array(list) => list
                .iter()
                .map(|f| f.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>(),
            _ => None,
        }
        .ok_or_else(|| {
            LocalError::Input(format!(
                "function {id} has no {FEATURES_METADATA} list in its metadata; build it with RustLambda (infra/constructs/rust-lambda.ts)"
            ))
        })?;
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
            features,
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
            description: self.string(r, "AlarmDescription")?,
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
