//! The pipeline's settings, read from the CDK context in `cdk.json`: the one source that both
//! the stack (infra/config.ts) and the local runner read. A test compares the resources the
//! runner creates with the synthesized template (test/local-parity.test.ts).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The SQS limit on a queue's visibility timeout.
const MAX_VISIBILITY_SECONDS: u32 = 43_200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub stage: String,
    pub max_receive_count: u32,
    pub batch_size: u32,
    pub batching_window_seconds: u32,
    pub max_concurrency: u32,
    pub record_concurrency: u32,
    pub consumer_memory_mb: u32,
    pub consumer_timeout_seconds: u32,
    pub dlq_alarm_memory_mb: u32,
    pub dlq_alarm_timeout_seconds: u32,
    pub dlq_snapshot_max: u32,
    pub log_retention_days: u32,
    pub queue_age_alarm_seconds: u32,
    #[serde(default)]
    pub alarm_email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}; run from the project's root or pass --cdk-json")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the \"context\" block is missing or a key is wrong: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: context key {key} is invalid: {problem}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
}

#[derive(Deserialize)]
struct CdkJson {
    context: Settings,
}

/// The DLQ keeps messages for the SQS maximum, 14 days, so an operator has time to act.
pub const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;
/// The order queue keeps messages for 4 days (the SQS default), written down explicitly.
pub const QUEUE_RETENTION_SECONDS: u32 = 4 * 24 * 3600;

impl Settings {
    /// The project's `cdk.json`, found from this crate's location.
    pub fn default_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("cdk.json")
    }

    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed: CdkJson =
            serde_json::from_str(&text).map_err(|source| SettingsError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        parsed.context.validate(path)?;
        Ok(parsed.context)
    }

    fn validate(&self, path: &Path) -> Result<(), SettingsError> {
        let bad = |key, problem: &str| {
            Err(SettingsError::Invalid {
                path: path.to_path_buf(),
                key,
                problem: problem.to_string(),
            })
        };
        if !(1..=1000).contains(&self.max_receive_count) {
            return bad("maxReceiveCount", "must be 1 to 1000");
        }
        if !(1..=10).contains(&self.batch_size) {
            return bad("batchSize", "must be 1 to 10");
        }
        if self.batching_window_seconds > 300 {
            return bad("batchingWindowSeconds", "must be 0 to 300");
        }
        if self.queue_visibility_timeout_seconds() > MAX_VISIBILITY_SECONDS {
            return bad(
                "consumerTimeoutSeconds",
                "6 x timeout + batching window exceeds 12 hours",
            );
        }
        Ok(())
    }

    /// At least six times the consumer's timeout plus the batching window (AWS's guidance for
    /// SQS event sources), derived here exactly as the stack derives it.
    pub fn queue_visibility_timeout_seconds(&self) -> u32 {
        6 * self.consumer_timeout_seconds + self.batching_window_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projects_cdk_json_is_valid_and_derives_the_visibility_timeout() {
        let s = Settings::load(&Settings::default_path()).expect("cdk.json loads");
        assert_eq!(
            s.queue_visibility_timeout_seconds(),
            6 * s.consumer_timeout_seconds + s.batching_window_seconds
        );
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let dir = std::env::temp_dir().join(format!("settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cdk.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(Settings::default_path()).unwrap())
                .unwrap();
        json["context"]["batchSize"] = serde_json::json!(50);
        std::fs::write(&path, json.to_string()).unwrap();
        let err = Settings::load(&path).unwrap_err().to_string();
        assert!(err.contains("batchSize"), "{err}");
    }
}
