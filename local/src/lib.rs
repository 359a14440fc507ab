//! The order pipeline on a laptop, with no AWS account: moto as the embedded AWS emulator, the
//! stack's resources created from its synthesized template, Lambda's SQS event source mappings
//! and the alarms emulated around the real handler code, a producer, and the demo.

pub mod alarm;
pub mod cloudwatch;
pub mod emulator;
pub mod faults;
pub mod functions;
pub mod generate;
pub mod http;
pub mod inventory;
pub mod invoke;
pub mod issuer;
pub mod kit;
pub mod latency;
pub mod mapping;
pub mod observe;
pub mod ops_inbox;
pub mod pipeline;
pub mod process;
pub mod provider;
pub mod publish;
pub mod redrive;
pub mod report;
pub mod resources;
pub mod run_lock;
pub mod schedule;
pub mod seeds;
pub mod stream;
pub mod stuck;
pub mod template;
pub mod timeline;
pub mod traces;

use aws_config::SdkConfig;

/// Where the local tools keep their logs and state: under `target/`, which no watcher or
/// commit looks at. `ORDER_LOCAL_STATE` names another directory (the tests' own runs use one,
/// so that they never meet a `make run` of the same checkout).
pub fn state_dir() -> std::path::PathBuf {
    match std::env::var_os("ORDER_LOCAL_STATE") {
        Some(dir) => dir.into(),
        None => work_dir(),
    }
}

/// What every run of this checkout shares, whatever its state directory: the synthesized
/// template, kept while the sources are unchanged.
pub fn work_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize()
        .unwrap_or(root)
        .join("target")
        .join("order-local")
}

/// Function log lines (JSON) written to a file, one per line, so a run's terminal shows the run
/// and the file the functions' lines.
pub struct FileLines(std::sync::Mutex<std::fs::File>);

impl FileLines {
    /// Creates (or empties) `path`, and its directory.
    pub fn create(path: &std::path::Path) -> Result<Self, LocalError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| LocalError::Input(format!("create {}: {e}", dir.display())))?;
        }
        let file = std::fs::File::create(path)
            .map_err(|e| LocalError::Input(format!("create {}: {e}", path.display())))?;
        Ok(Self(std::sync::Mutex::new(file)))
    }
}

impl order_pipeline::runtime::telemetry::LineWriter for FileLines {
    fn write_line(&self, line: &str) {
        use std::io::Write;
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Errors of the local tools, each saying what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{what} failed: {detail}")]
    Aws { what: String, detail: String },
    #[error(transparent)]
    Emulator(#[from] emulator::EmulatorError),
    #[error("{0}")]
    Input(String),
}

/// An error as one line for a person: the SDK's multi-line context folded, and what to do when
/// the cause is a usual one (no credentials, no region, nothing listening).
pub fn one_line(e: &LocalError) -> String {
    let (what, detail) = match e {
        LocalError::Aws { what, detail } => (what.clone(), detail.clone()),
        other => return other.to_string(),
    };
    let lower = detail.to_lowercase();
    let hint = if lower.contains("credential") {
        Some("no AWS credentials were found: run `aws configure` (or set AWS_PROFILE), or use --local for the local pipeline")
    } else if lower.contains("region") && lower.contains("missing") {
        Some("no AWS region is set: set AWS_REGION or configure one in your profile")
    } else if lower.contains("connection refused") || lower.contains("dispatch failure") {
        Some("nothing answered at the endpoint: is the local pipeline (`make run`) or your network up?")
    } else {
        None
    };
    match hint {
        Some(hint) => format!("{what} failed: {hint}"),
        None => {
            let folded: String = detail.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = folded.chars().take(300).collect();
            format!("{what} failed: {short}")
        }
    }
}

/// Wraps an SDK (or builder) error with what was being done.
pub fn aws_err<E: std::error::Error + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> LocalError {
    let what = what.into();
    move |e| LocalError::Aws {
        what,
        detail: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
    }
}

/// The SDK clients the local tools use.
#[derive(Clone)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The emulator's endpoint (CloudWatch calls go there directly, see [`cloudwatch`]).
    pub endpoint: String,
}

impl Clients {
    pub fn new(config: &SdkConfig, endpoint: &str) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            endpoint: endpoint.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: a missing-credentials failure reads as one line saying what to do, not the
    /// SDK's multi-line dump.
    #[test]
    fn sdk_errors_are_one_line_with_what_to_do() {
        let e = LocalError::Aws {
            what: "publish to arn:aws:sns:r:1:t".into(),
            detail: "dispatch failure: other: no credentials provider\n  caused by: failed to load credentials: the credential provider was not enabled\n".into(),
        };
        let line = one_line(&e);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains("aws configure") && line.contains("--local"),
            "{line}"
        );
        let other = LocalError::Aws {
            what: "create queue Q".into(),
            detail: "service error:\n  QueueAlreadyExists\n".into(),
        };
        assert_eq!(
            one_line(&other),
            "create queue Q failed: service error: QueueAlreadyExists"
        );
    }
}
