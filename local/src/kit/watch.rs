//! What the documented `cargo lambda invoke NAME -P PORT --data-file FIXTURE` answers under the
//! `cargo lambda watch` that `make run` prints for NAME: the function's real binary, with the
//! environment the stack's template gives that function alone
//! ([`crate::emulator::watch_environment`]), on the emulator, and handed each fixture the way
//! cargo-lambda 1.9's runtime API hands it: `Lambda-Runtime-Deadline-Ms` is the constant
//! [`CARGO_LAMBDA_DEADLINE_MS`], not an epoch time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use order_pipeline::runtime::telemetry::Captured;

use crate::emulator::watch_environment;
use crate::emulator::Emulator;
use crate::functions::fixtures;
use crate::process::{Bootstraps, ProcessFunction};
use crate::resources::{create, Created};
use crate::template::Template;
use crate::Clients;

/// The deadline cargo-lambda's runtime API sends with every invocation (1.9.2).
pub const CARGO_LAMBDA_DEADLINE_MS: i64 = 600_000;

/// One fixture and what the function answered.
#[derive(Debug)]
pub struct Invoked {
    /// The fixture's path, as the README and `make run` name it.
    pub fixture: String,
    /// The function's response, or its error (the `errorMessage`), or why none came.
    pub answer: Result<serde_json::Value, String>,
}

/// A function's fixtures, invoked in order.
pub struct WatchRun {
    pub invoked: Vec<Invoked>,
    /// Every line the process wrote (stdout and stderr).
    pub log: Vec<String>,
}

/// The stack's resources on the emulator, and the environment the printed `cargo lambda watch`
/// gives one function.
pub struct WatchStack {
    pub clients: Clients,
    pub created: Created,
    pub binary: String,
    pub environment: BTreeMap<String, String>,
}

/// The repository's root, where the fixtures' paths start.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

impl WatchStack {
    /// Creates the stack's resources on `emulator` for trying the binary `binary`.
    pub async fn create(emulator: &Emulator, binary: &str) -> Result<Self, String> {
        let clients = Clients::new(&emulator.sdk_config().await, emulator.endpoint());
        let template = Template::current().map_err(|e| e.to_string())?;
        let created = create(&clients, &template, &format!("watch-{binary}"))
            .await
            .map_err(|e| e.to_string())?;
        let function = created
            .functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| format!("the stack has no function built from {binary}"))?;
        let environment = watch_environment(&function.environment, emulator.endpoint());
        Ok(Self {
            clients,
            created,
            binary: binary.to_string(),
            environment,
        })
    }

    /// Starts `bootstrap` as `cargo lambda watch` would with the printed command, and invokes
    /// each of the function's fixtures.
    pub async fn invoke_fixtures(&self, bootstrap: &Path) -> Result<WatchRun, String> {
        let binary = self.binary.as_str();
        let fixtures = fixtures(binary);
        if fixtures.is_empty() {
            return Err(format!(
                "{binary} has no fixtures (order_local::functions::fixtures)"
            ));
        }
        let spec = self
            .created
            .functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| format!("the stack has no function built from {binary}"))?;
        let bootstraps = Bootstraps {
            by_binary: HashMap::from([(binary.to_string(), bootstrap.to_path_buf())]),
            launcher: Vec::new(),
        };
        let lines = Captured::default();
        let endpoint = self
            .environment
            .get("AWS_ENDPOINT_URL")
            .cloned()
            .unwrap_or_default();
        let process = ProcessFunction::new(
            spec,
            &self.environment,
            &bootstraps,
            &endpoint,
            Arc::new(lines.clone()),
        )
        .map_err(|e| e.to_string())?
        .with_fixed_deadline(CARGO_LAMBDA_DEADLINE_MS);
        let mut invoked = Vec::new();
        for fixture in fixtures {
            let body = std::fs::read_to_string(workspace_root().join(fixture))
                .map_err(|e| format!("read {fixture}: {e}"))?;
            let event: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| format!("{fixture}: {e}"))?;
            invoked.push(Invoked {
                fixture: fixture.to_string(),
                answer: process.call(&event).await,
            });
        }
        // Killed with its handle (kill_on_drop); its readers then see the pipes close.
        drop(process);
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(WatchRun {
            invoked,
            log: lines.lines(),
        })
    }
}

impl WatchRun {
    /// Every line the process wrote, one per line.
    pub fn log_text(&self) -> String {
        self.log.join("\n")
    }

    /// The answer to the `i`th fixture; panics with its error and the process's log (tests).
    pub fn answer(&self, i: usize) -> &serde_json::Value {
        let invoked = self
            .invoked
            .get(i)
            .unwrap_or_else(|| panic!("no fixture {i}: {:?}", self.invoked));
        invoked
            .answer
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", invoked.fixture, self.log_text()))
    }
}

/// For a test: the emulator, the stack's resources for one binary, and a runtime to block on.
pub struct Watched {
    pub rt: tokio::runtime::Runtime,
    pub stack: WatchStack,
    _emulator: Emulator,
}

impl Watched {
    /// Starts the emulator and creates the stack's resources for `binary`; panics saying what
    /// to do when it cannot (tests).
    pub fn start(binary: &str) -> Self {
        let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let emulator =
            Emulator::start().expect("moto_server starts (run `make setup` if it is missing)");
        let stack = rt
            .block_on(WatchStack::create(&emulator, binary))
            .expect("the stack's resources are created");
        Self {
            rt,
            stack,
            _emulator: emulator,
        }
    }

    /// Runs `bootstrap` with the binary's fixtures, as the printed `cargo lambda watch` would.
    pub fn invoke_fixtures(&self, bootstrap: &str) -> WatchRun {
        self.rt
            .block_on(self.stack.invoke_fixtures(Path::new(bootstrap)))
            .expect("the fixtures are invoked")
    }
}
