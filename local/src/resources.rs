//! The stack's resources in the emulator, created from the same settings as the CDK stack.
//!
//! [`Plan`] is every setting the local resources take, derived from [`Settings`] exactly as
//! infra/ derives them; `order-local plan` prints it and test/local-parity.test.ts compares it
//! with the synthesized template, so the two cannot drift apart unnoticed.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::settings::{Settings, DLQ_RETENTION_SECONDS, QUEUE_RETENTION_SECONDS};
use crate::{aws_err, cloudwatch, Clients, LocalError};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuePlan {
    /// Absent: the SQS default (30 s), which the stack leaves as it is too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_seconds: Option<u32>,
    pub message_retention_seconds: u32,
    /// maxReceiveCount of the redrive policy to the DLQ (order queue only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_receive_count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingPlan {
    pub batch_size: u32,
    pub maximum_batching_window_seconds: u32,
    pub maximum_concurrency: u32,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionPlan {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmPlan {
    pub namespace: String,
    pub metric_name: String,
    pub statistic: String,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub order_queue: QueuePlan,
    pub dead_letter_queue: QueuePlan,
    pub subscription_raw_message_delivery: bool,
    pub event_source_mapping: MappingPlan,
    pub consumer: FunctionPlan,
    pub dlq_alarm_function: FunctionPlan,
    pub dlq_depth_alarm: AlarmPlan,
    pub queue_age_alarm: AlarmPlan,
}

fn env(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl Plan {
    pub fn from_settings(s: &Settings) -> Self {
        Plan {
            order_queue: QueuePlan {
                visibility_timeout_seconds: Some(s.queue_visibility_timeout_seconds()),
                message_retention_seconds: QUEUE_RETENTION_SECONDS,
                max_receive_count: Some(s.max_receive_count),
            },
            dead_letter_queue: QueuePlan {
                visibility_timeout_seconds: None,
                message_retention_seconds: DLQ_RETENTION_SECONDS,
                max_receive_count: None,
            },
            subscription_raw_message_delivery: true,
            event_source_mapping: MappingPlan {
                batch_size: s.batch_size,
                maximum_batching_window_seconds: s.batching_window_seconds,
                maximum_concurrency: s.max_concurrency,
                report_batch_item_failures: true,
            },
            consumer: FunctionPlan {
                memory_mb: s.consumer_memory_mb,
                timeout_seconds: s.consumer_timeout_seconds,
                environment: env(&[
                    ("MAX_RECEIVE_COUNT", s.max_receive_count.to_string()),
                    ("RECORD_CONCURRENCY", s.record_concurrency.to_string()),
                ]),
            },
            dlq_alarm_function: FunctionPlan {
                memory_mb: s.dlq_alarm_memory_mb,
                timeout_seconds: s.dlq_alarm_timeout_seconds,
                environment: env(&[("DLQ_SNAPSHOT_MAX", s.dlq_snapshot_max.to_string())]),
            },
            dlq_depth_alarm: AlarmPlan {
                namespace: "AWS/SQS".into(),
                metric_name: "ApproximateNumberOfMessagesVisible".into(),
                statistic: "Maximum".into(),
                period_seconds: 60,
                evaluation_periods: 1,
                threshold: 1.0,
                comparison_operator: "GreaterThanOrEqualToThreshold".into(),
                treat_missing_data: "notBreaching".into(),
            },
            queue_age_alarm: AlarmPlan {
                namespace: "AWS/SQS".into(),
                metric_name: "ApproximateAgeOfOldestMessage".into(),
                statistic: "Maximum".into(),
                period_seconds: 60,
                evaluation_periods: 5,
                threshold: f64::from(s.queue_age_alarm_seconds),
                comparison_operator: "GreaterThanOrEqualToThreshold".into(),
                treat_missing_data: "notBreaching".into(),
            },
        }
    }
}

/// The names and addresses of the resources created in the emulator.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalStack {
    pub endpoint: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub subscription_dlq_url: String,
    pub table_name: String,
    pub ops_topic_arn: String,
    pub dlq_alarm_name: String,
    pub queue_age_alarm_name: String,
}

async fn queue(
    clients: &Clients,
    name: &str,
    attrs: Vec<(QueueAttributeName, String)>,
) -> Result<(String, String), LocalError> {
    let mut req = clients.sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(k, v);
    }
    let url = req
        .send()
        .await
        .map_err(aws_err(format!("create queue {name}")))?
        .queue_url
        .unwrap_or_default();
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_err(format!("read queue {name}")))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    Ok((url, arn))
}

async fn topic(clients: &Clients, name: &str) -> Result<String, LocalError> {
    Ok(clients
        .sns
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(aws_err(format!("create topic {name}")))?
        .topic_arn
        .unwrap_or_default())
}

/// Creates every resource of the stack that the emulator can hold, named with `prefix`.
pub async fn create(
    clients: &Clients,
    endpoint: &str,
    plan: &Plan,
    prefix: &str,
) -> Result<LocalStack, LocalError> {
    let dlq_name = format!("{prefix}-order-dlq");
    let (dlq_url, dlq_arn) = queue(
        clients,
        &dlq_name,
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            plan.dead_letter_queue.message_retention_seconds.to_string(),
        )],
    )
    .await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": plan.order_queue.max_receive_count.unwrap_or(3),
    });
    let (queue_url, queue_arn) = queue(
        clients,
        &format!("{prefix}-order-queue"),
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                plan.order_queue
                    .visibility_timeout_seconds
                    .unwrap_or(30)
                    .to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                plan.order_queue.message_retention_seconds.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    let (subscription_dlq_url, subscription_dlq_arn) = queue(
        clients,
        &format!("{prefix}-subscription-dlq"),
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECONDS.to_string(),
        )],
    )
    .await?;
    let topic_arn = topic(clients, &format!("{prefix}-orders")).await?;
    clients
        .sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes(
            "RawMessageDelivery",
            plan.subscription_raw_message_delivery.to_string(),
        )
        .attributes(
            "RedrivePolicy",
            serde_json::json!({ "deadLetterTargetArn": subscription_dlq_arn }).to_string(),
        )
        .send()
        .await
        .map_err(aws_err("subscribe the order queue to the topic"))?;
    let ops_topic_arn = topic(clients, &format!("{prefix}-ops")).await?;
    let table_name = format!("{prefix}-Orders");
    clients
        .dynamodb
        .create_table()
        .table_name(&table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("orderId")
                .key_type(KeyType::Hash)
                .build()
                .map_err(aws_err("table key"))?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("orderId")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(aws_err("table key"))?,
        )
        .send()
        .await
        .map_err(aws_err("create the Orders table"))?;

    // The alarm's Lambda action names dlq-alarm by an ARN in the emulator's own account.
    let account_region = queue_arn.split(':').collect::<Vec<_>>();
    let function_arn = match account_region.as_slice() {
        [_, partition, _, region, account, ..] => {
            format!("arn:{partition}:lambda:{region}:{account}:function:{prefix}-dlq-alarm")
        }
        _ => format!("{prefix}-dlq-alarm"),
    };
    let dlq_alarm_name = format!("{prefix}-order-dlq-depth");
    cloudwatch::put_metric_alarm(
        endpoint,
        &dlq_alarm_name,
        &plan.dlq_depth_alarm,
        ("QueueName", &dlq_name),
        &[function_arn, ops_topic_arn.clone()],
    )?;
    let queue_age_alarm_name = format!("{prefix}-order-queue-age");
    cloudwatch::put_metric_alarm(
        endpoint,
        &queue_age_alarm_name,
        &plan.queue_age_alarm,
        ("QueueName", &format!("{prefix}-order-queue")),
        std::slice::from_ref(&ops_topic_arn),
    )?;

    Ok(LocalStack {
        endpoint: endpoint.to_string(),
        topic_arn,
        queue_url,
        queue_arn,
        dlq_url,
        subscription_dlq_url,
        table_name,
        ops_topic_arn,
        dlq_alarm_name,
        queue_age_alarm_name,
    })
}
