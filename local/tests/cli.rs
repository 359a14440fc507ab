//! The local tools as a person runs them: the real binaries, started as processes.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A state directory of the test's own (`ORDER_LOCAL_STATE`): the runs here never meet a
/// `make run` of the same checkout, nor each other.
fn state_dir(name: &str) -> PathBuf {
    let dir = order_local::state_dir().join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `order-local run` in its own process group, as a terminal starts a foreground job, with its
/// stderr in `dir/run-N.err`.
struct Run {
    child: Child,
    dir: PathBuf,
    err: PathBuf,
}

impl Run {
    fn start(dir: &PathBuf, n: usize) -> Run {
        use std::os::unix::process::CommandExt;
        let err = dir.join(format!("run-{n}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_order-local"))
            .arg("run")
            .env("ORDER_LOCAL_STATE", dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .process_group(0)
            .spawn()
            .expect("order-local starts");
        Run {
            child,
            dir: dir.clone(),
            err,
        }
    }

    /// Waits until the stack is up (it says "running" once stack.json is written) and returns
    /// the emulator's address.
    fn up(&mut self) -> String {
        let started = Instant::now();
        let state = self.dir.join("stack.json");
        while !self.stderr().lines().any(|l| l.starts_with("running.")) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "order-local run never came up: {}",
                self.stderr()
            );
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "order-local run exited: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let stack: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
        let address = stack["endpoint"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .to_string();
        assert!(TcpStream::connect(&address).is_ok(), "the emulator answers");
        address
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Sends `signal` (to the whole process group with `group`, as a terminal's Ctrl-C does)
    /// and returns the run's stdout once it has exited.
    fn stop(mut self, signal: &str, group: bool) -> (std::process::ExitStatus, String) {
        let pid = self.child.id();
        let target = if group {
            format!("-{pid}")
        } else {
            pid.to_string()
        };
        let sent = Command::new("kill")
            .args([signal, "--", &target])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "order-local run ignored {signal}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, out)
    }
}

/// Nothing answers at `address` within a few seconds.
fn stops_answering(address: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(address).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The summary a stopped run prints: the counts, the lifecycle, the stock and the stuck orders.
fn assert_full_summary(out: &str) {
    for part in [
        "Order pipeline: summary",
        "Orders by final status",
        "Inventory at the stop",
        "Stuck orders",
    ] {
        assert!(out.contains(part), "no {part:?} in the summary:\n{out}");
    }
}

/// Protects: Ctrl-C in the terminal of `make run` (SIGINT to the whole foreground process
/// group) prints the whole summary: the emulator and the functions are not in that group, so
/// they are still there for it, and are stopped after it. While the run is up, a second run on
/// the same state is refused and leaves the first alone (before, it took over `--local`, and
/// stopping it stranded the first).
#[test]
fn ctrl_c_prints_the_summary_and_a_second_run_is_refused_meanwhile() {
    let dir = state_dir("ctrl-c");
    let mut first = Run::start(&dir, 1);
    let address = first.up();

    let second = Command::new(env!("CARGO_BIN_EXE_order-local"))
        .arg("run")
        .env("ORDER_LOCAL_STATE", &dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second run was refused");
    assert!(
        said.contains("already running") && said.contains(&first.child.id().to_string()),
        "{said}"
    );
    assert!(
        dir.join("stack.json").exists(),
        "the first run's state is left alone"
    );
    assert!(
        TcpStream::connect(&address).is_ok(),
        "the first run's emulator still answers"
    );

    let (status, out) = first.stop("-INT", true);
    assert!(status.success(), "{status}");
    assert_full_summary(&out);
    assert!(!dir.join("stack.json").exists(), "stack.json removed");
    assert!(!dir.join("run.pid").exists(), "the run's lock removed");
    assert!(
        stops_answering(&address),
        "the emulator at {address} was stopped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Protects: a run killed with SIGKILL leaves no emulator answering on its port (the producer
/// would publish into a pipeline nobody runs), `--local` says so, and the next run cleans up
/// its state and starts; `kill -TERM` then stops that run as Ctrl-C does.
#[test]
fn a_killed_run_leaves_no_emulator_and_the_next_run_cleans_up() {
    let dir = state_dir("killed");
    let mut first = Run::start(&dir, 1);
    let address = first.up();
    let (status, _) = first.stop("-KILL", false);
    assert!(!status.success());
    assert!(
        stops_answering(&address),
        "the killed run's emulator at {address} still answers"
    );

    let producer = Command::new(env!("CARGO_BIN_EXE_order-producer"))
        .args(["--local", "seeds"])
        .env("ORDER_LOCAL_STATE", &dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&producer.stderr);
    assert!(!producer.status.success(), "the producer refused: {said}");
    assert!(said.contains("not running"), "{said}");

    let mut next = Run::start(&dir, 2);
    let address = next.up();
    assert!(
        next.stderr()
            .contains("cleaning up after a run that was killed"),
        "{}",
        next.stderr()
    );
    let (status, out) = next.stop("-TERM", false);
    assert!(status.success(), "{status}");
    assert_full_summary(&out);
    assert!(!dir.join("stack.json").exists(), "stack.json removed");
    assert!(
        stops_answering(&address),
        "the emulator at {address} was stopped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Protects: an outputs file with several stacks is not silently read as its first one.
#[test]
fn an_outputs_file_with_two_stacks_asks_which_one() {
    let dir = std::env::temp_dir().join(format!("producer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cdk-outputs.json");
    std::fs::write(
        &file,
        r#"{"OrderPipeline-dev":{"OrderTopicArn":"arn:a"},"OrderPipeline-prod":{"OrderTopicArn":"arn:b"}}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_order-producer"))
        .arg("--outputs-file")
        .arg(&file)
        .arg("seeds")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--stack") && stderr.contains("OrderPipeline-prod"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}
