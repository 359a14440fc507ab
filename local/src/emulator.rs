//! The embedded AWS emulator: moto's server on a free loopback port, started and stopped by us.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// moto only serves real region names. This one names no deployment: it exists only inside the
/// emulator, which accepts any credentials.
pub const EMULATOR_REGION: &str = "us-east-1";
/// The account moto answers for (its default); it exists only inside the emulator.
pub const EMULATOR_ACCOUNT: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("moto_server was not found (looked at $MOTO_SERVER, {venv} and PATH); run `make setup` to install the project's tools")]
    NotInstalled { venv: String },
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("moto_server was not listening within {seconds}s; its log is {log}")]
    NotReady { seconds: u64, log: String },
    #[error("moto_server exited ({status}) before it listened; its log is {log}")]
    Exited { status: String, log: String },
    #[error("could not find a free loopback port: {0}")]
    Port(std::io::Error),
}

/// A running emulator. Dropping it stops the server it started.
pub struct Emulator {
    endpoint: String,
    child: Option<Child>,
    log: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How to start the emulator: the program and the arguments before `-H HOST -p PORT`.
fn find_moto() -> Result<(PathBuf, Vec<String>), EmulatorError> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return Ok((PathBuf::from(p), Vec::new()));
    }
    let venv = workspace_root().join(".venv").join("bin");
    // moto with its DynamoDB backend serialized (see local/moto_server.py): transactions that
    // are cancelled must not lose other requests' writes.
    let launcher = workspace_root().join("local").join("moto_server.py");
    if venv.join("python").exists() && launcher.exists() {
        return Ok((venv.join("python"), vec![launcher.display().to_string()]));
    }
    let moto = venv.join("moto_server");
    if moto.exists() {
        return Ok((moto, Vec::new()));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.exists());
    // moto installed elsewhere (another virtual environment on PATH): its Python runs the
    // launcher, so the DynamoDB backend is serialized there too.
    on_path
        .map(|p| match p.parent().map(|dir| dir.join("python")) {
            Some(python) if python.exists() && launcher.exists() => {
                (python, vec![launcher.display().to_string()])
            }
            _ => (p, Vec::new()),
        })
        .ok_or(EmulatorError::NotInstalled {
            venv: moto.display().to_string(),
        })
}

impl Emulator {
    /// Starts moto_server on a free port of 127.0.0.1 and waits until it answers.
    pub fn start() -> Result<Self, EmulatorError> {
        Self::spawn(&[])
    }

    /// [`Emulator::start`] with contention as DynamoDB has it: a committed transaction holds its
    /// items in flight for `window`, and a transaction naming one of them meanwhile is cancelled
    /// with reason `TransactionConflict` (local/moto_server.py, `MOTO_TRANSACTION_CONFLICT_MS`).
    pub fn start_contended(window: Duration) -> Result<Self, EmulatorError> {
        Self::spawn(&[(
            "MOTO_TRANSACTION_CONFLICT_MS",
            window.as_millis().to_string(),
        )])
    }

    /// [`Emulator::start`] checking its own fast answers: every DynamoDB item or stream answer
    /// written with `json.dumps` is also written by moto's serializer, and the emulator exits
    /// (its log says which answer differed) on the first difference (local/moto_server.py,
    /// `MOTO_VERIFY_FAST_JSON`).
    pub fn start_checking_fast_answers() -> Result<Self, EmulatorError> {
        Self::spawn(&[("MOTO_VERIFY_FAST_JSON", "1".to_string())])
    }

    fn spawn(env: &[(&str, String)]) -> Result<Self, EmulatorError> {
        let (program, launcher) = find_moto()?;
        // Under target/ (not the system temp directory), and removed when the emulator stops.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "moto-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let log = crate::state_dir().join(format!("{name}.log"));
        let port_file = crate::state_dir().join(format!("{name}.port"));
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::remove_file(&port_file);
        let spawn_error = |source| EmulatorError::Spawn {
            program: program.display().to_string(),
            source,
        };
        let log_file = std::fs::File::create(&log).map_err(spawn_error)?;
        let err_file = log_file.try_clone().map_err(spawn_error)?;
        // Our launcher binds a port the system picks and reports it (local/moto_server.py,
        // MOTO_PORT_FILE), so no other process can take the port between its choice and the
        // bind; a bare moto_server is given a port that was free a moment ago.
        let reports_port = !launcher.is_empty();
        let port = if reports_port {
            0
        } else {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(EmulatorError::Port)?
                .port()
        };
        // Its own process group: a terminal's Ctrl-C reaches the runner, which prints its
        // summary from the emulator before it stops it. The launcher exits when its parent
        // does (MOTO_PARENT_PID), so a killed runner leaves no emulator on its port.
        let child = Command::new(&program)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("MOTO_PORT_FILE", &port_file)
            .env("MOTO_PARENT_PID", std::process::id().to_string())
            .process_group(0)
            .args(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(spawn_error)?;
        let mut emulator = Emulator {
            endpoint: String::new(),
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = emulator
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                emulator.child = None; // keeps its log, which the error names
                return Err(EmulatorError::Exited {
                    status: status.to_string(),
                    log: emulator.log.display().to_string(),
                });
            }
            let listening = if reports_port {
                std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|p| p.trim().parse::<u16>().ok())
            } else {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_millis(200),
                )
                .ok()
                .map(|_| port)
            };
            if let Some(port) = listening {
                let _ = std::fs::remove_file(&port_file);
                emulator.endpoint = format!("http://127.0.0.1:{port}");
                return Ok(emulator);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(mut child) = emulator.child.take() {
            // Stopped here rather than on drop, which would remove the log the error names.
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(EmulatorError::NotReady {
            seconds: 60,
            log: emulator.log.display().to_string(),
        })
    }

    /// Uses an emulator that is already running (not stopped on drop).
    pub fn external(endpoint: impl Into<String>) -> Self {
        Emulator {
            endpoint: endpoint.into(),
            child: None,
            log: PathBuf::new(),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// SDK configuration that talks to this emulator.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

/// SDK configuration for an emulator at `endpoint`, with throwaway credentials.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(EMULATOR_REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "emulator", "emulator", None, None, "emulator",
        ))
        .load()
        .await
}

/// SDK configuration for the functions' clients when they talk through the fault proxy at
/// `endpoint`: the deployed functions' timeouts and retries (order_pipeline::adapters::aws::sdk_config), so
/// injected faults meet the same retry policy as on AWS.
pub async fn function_sdk_config_for(endpoint: &str) -> SdkConfig {
    order_pipeline::adapters::aws::with_function_limits(aws_config::defaults(
        BehaviorVersion::latest(),
    ))
    .endpoint_url(endpoint)
    .region(Region::new(EMULATOR_REGION))
    .credentials_provider(aws_sdk_sqs::config::Credentials::new(
        "emulator", "emulator", None, None, "emulator",
    ))
    .load()
    .await
}

/// The environment a function's real binary gets under `cargo lambda watch` against the
/// emulator at `endpoint`: what the template gives that function (no other function's: the
/// stages share names like `QUEUE_URL`), with the emulator's endpoint, region and credentials.
pub fn watch_environment(
    function: &BTreeMap<String, String>,
    endpoint: &str,
) -> BTreeMap<String, String> {
    let mut env = function.clone();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", EMULATOR_REGION),
        ("AWS_ACCESS_KEY_ID", "emulator"),
        ("AWS_SECRET_ACCESS_KEY", "emulator"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
