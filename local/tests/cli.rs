//! The local tools as a person runs them: the real binaries, started as processes.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn state_file() -> std::path::PathBuf {
    order_local::state_dir().join("stack.json")
}

/// Protects: `kill -TERM` of `order-local run` stops it as Ctrl-C does: the summary is printed,
/// the emulator it started is stopped (nothing answers on its port) and the stale state file
/// that `order-producer --local` reads is removed.
#[test]
fn sigterm_stops_run_cleanly_with_a_summary_and_no_orphaned_emulator() {
    let _ = std::fs::remove_file(state_file());
    let mut child = Command::new(env!("CARGO_BIN_EXE_order-local"))
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("order-local starts");
    let started = Instant::now();
    while !state_file().exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "order-local run never came up"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "order-local run exited"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stack: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_file()).unwrap()).unwrap();
    let address = stack["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    assert!(TcpStream::connect(&address).is_ok(), "the emulator answers");

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "order-local run ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(out.contains("Order pipeline: summary"), "{out}");
    assert!(!state_file().exists(), "stack.json removed");
    assert!(
        TcpStream::connect(&address).is_err(),
        "the emulator at {address} was stopped"
    );
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
