//! Publishing to the order topic in batches of ten, with a progress bar for long runs.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use indicatif::{ProgressBar, ProgressStyle};

use crate::generate::Planned;
use crate::{aws_err, LocalError};

/// Publishes every planned message with its `correlationId` attribute. Returns how many
/// SNS accepted; a message SNS refused is an error (nothing is silently dropped).
pub async fn publish_all(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    planned: &[Planned],
    progress: bool,
) -> Result<usize, LocalError> {
    let bar = if progress && planned.len() > 20 {
        let bar = ProgressBar::new(planned.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("publishing {bar:40} {pos}/{len} ({rate}, eta {eta})")
                .map(|style| {
                    style.with_key(
                        "rate",
                        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}/s", state.per_sec());
                        },
                    )
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut published = 0;
    for chunk in planned.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(&p.correlation_id)
                    .build()
                    .map_err(aws_err("message attribute"))?;
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(&p.body)
                    .message_attributes("correlationId", attr)
                    .build()
                    .map_err(aws_err("publish entry"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sns
            .publish_batch()
            .topic_arn(topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(aws_err(format!("publish to {topic_arn}")))?;
        let failed = out.failed.unwrap_or_default();
        if let Some(f) = failed.first() {
            return Err(LocalError::Input(format!(
                "SNS refused {} of a batch of {}: {} {}",
                failed.len(),
                chunk.len(),
                f.code,
                f.message.clone().unwrap_or_default()
            )));
        }
        published += chunk.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(published)
}
