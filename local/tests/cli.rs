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
    assert_eq!(
        order_local::run_lock::holder(&dir),
        order_local::run_lock::Holder::None,
        "the run's lock released"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("run.pid")).unwrap_or_default(),
        "",
        "a clean end leaves no id for the next run to clean up after"
    );
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
    assert_eq!(
        order_local::run_lock::holder(&dir),
        order_local::run_lock::Holder::Running(next.child.id()),
        "the lock names the new run"
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

/// The processes started with `MOTO_PARENT_PID` = `pid`: the emulators of that runner.
fn emulators_of(pid: u32) -> usize {
    let wanted = format!("MOTO_PARENT_PID={pid}");
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("environ"))
                        .map(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Protects: Ctrl-C while `make run` is still starting stops it cleanly (before, the signal
/// was not handled until the stack was up: the runner died on it), and leaves no emulator.
#[test]
fn ctrl_c_while_the_stack_starts_stops_it_and_leaves_no_emulator() {
    let dir = state_dir("boot");
    let mut run = Run::start(&dir, 1);
    let pid = run.child.id();
    let started = Instant::now();
    while emulators_of(pid) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no emulator started: {}",
            run.stderr()
        );
        assert!(run.child.try_wait().unwrap().is_none(), "{}", run.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let said_up = run.stderr().lines().any(|l| l.starts_with("running."));
    let (status, _) = run.stop("-INT", true);
    assert!(status.success(), "{status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while emulators_of(pid) > 0 {
        assert!(Instant::now() < deadline, "the emulator outlived the run");
        std::thread::sleep(Duration::from_millis(100));
    }
    if !said_up {
        let err = std::fs::read_to_string(dir.join("run-1.err")).unwrap_or_default();
        assert!(
            err.contains("stopped while the stack was starting"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `orders ARGS` against the run whose state directory is `dir`: its whole output.
fn orders(dir: &PathBuf, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(args)
        .env("ORDER_LOCAL_STATE", dir)
        .output()
        .unwrap()
}

/// `orders` (the product command) with the state of `dir`'s run and no target named: the
/// running local stack is the default. Its stderr, and whether it succeeded.
fn producer(dir: &PathBuf, args: &[&str]) -> (bool, String) {
    let out = orders(dir, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` every 200 ms for up to `seconds`.
async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Protects: the runbook's DLQ steps (docs/operations.md, "Redrive"), walked with the product
/// command (`orders`, no target named: the running local stack) on a running local stack. A valid order the consumer never stored is marked FAILED by
/// dlq-alarm; the dry run says it would be accepted again and that the invalid message and the
/// conflict stay; the redrive moves only the order back, which is ACCEPTED again and goes on;
/// the invalid (poison) message and the conflict are never moved back to fail again (before,
/// a redrive moved everything, and the dry run said "will fail again" of what it then moved);
/// `delete --only` removes the poison message, and only it; `ops` shows the pages an operator
/// got; `get` shows an order as the API does; `trace` prints its timeline and its traces
/// through every stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_walk_failed_order_redriven_poison_deleted_conflict_kept() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dir = state_dir("runbook");
    let mut run = Run::start(&dir, 1);
    let address = run.up();
    let stack: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stack.json")).unwrap()).unwrap();
    let config = order_local::emulator::sdk_config_for(&format!("http://{address}")).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let dlq_url = stack["dlqUrl"].as_str().unwrap().to_string();
    let table = stack["tableName"].as_str().unwrap().to_string();
    let status = |id: &'static str| {
        let (dynamodb, table) = (dynamodb.clone(), table.clone());
        async move {
            dynamodb
                .get_item()
                .table_name(table)
                .key("orderId", AttributeValue::S(id.into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .and_then(|i| i.get("status").and_then(|s| s.as_s().ok()).cloned())
        }
    };

    // A stored order, then a message reusing its id with other content (a conflict), a valid
    // order the consumer never stored and a poison message, all straight into the DLQ.
    let (ok, said) = producer(&dir, &["seeds"]);
    assert!(ok, "{said}");
    assert!(eventually(30, || async { status("O1234").await.is_some() }).await);
    let walk = r#"{"orderId":"WALK-1","customerId":"c-walk","currency":"USD","items":[{"sku":"CABLE-C","quantity":1}]}"#;
    let conflict = r#"{"orderId":"O1234","customerId":"someone-else","currency":"USD","items":[{"sku":"CABLE-C","quantity":9}]}"#;
    let mut ids = Vec::new();
    for body in [walk, conflict, "{not an order"] {
        let sent = sqs
            .send_message()
            .queue_url(&dlq_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
        ids.push(sent.message_id.unwrap());
    }
    let poison = ids[2].clone();
    assert!(
        eventually(60, || async {
            status("WALK-1").await.as_deref() == Some("FAILED")
        })
        .await,
        "dlq-alarm marks the never-stored order FAILED: {}",
        run.stderr()
    );

    let failed = orders(&dir, &["list", "--status", "failed"]);
    let failed = String::from_utf8_lossy(&failed.stdout);
    assert!(
        failed.lines().count() == 1 && failed.starts_with("WALK-1") && failed.contains("FAILED"),
        "list --status FAILED shows the one FAILED order with its reason: {failed}"
    );
    let (ok, said) = producer(&dir, &["redrive", "--dry-run"]);
    assert!(ok, "{said}");
    assert!(
        said.contains("to redrive 1 (1 accepted again); staying 2 (1 conflict, 1 invalid)"),
        "{said}"
    );
    assert!(said.contains("dry run: nothing moved"), "{said}");
    let (ok, said) = producer(&dir, &["dlq"]);
    assert!(
        ok && said.contains("staying 2"),
        "dlq lists the intake DLQ: {said}"
    );
    let (ok, said) = producer(&dir, &["dlq", "--dlq", "inventory"]);
    assert!(
        ok && said.contains("the DLQ holds"),
        "a stage's DLQ: {said}"
    );
    let (ok, said) = producer(&dir, &["dlq", "--dlq", "nosuch"]);
    assert!(
        !ok && said.contains("no DLQ named nosuch") && said.contains("order-watch"),
        "the names there are: {said}"
    );
    let (ok, said) = producer(&dir, &["redrive", "--only", "WALK-1,NO-SUCH-ORDER"]);
    assert!(
        !ok && said.contains("--only names no DLQ message") && said.contains("NO-SUCH-ORDER"),
        "a mistyped --only moves nothing: {said}"
    );

    let (ok, said) = producer(&dir, &["redrive"]);
    assert!(ok, "{said}");
    assert!(
        said.contains("moved 1 message back to the order queue; 2 left"),
        "{said}"
    );
    assert!(
        eventually(60, || async {
            !matches!(status("WALK-1").await.as_deref(), Some("FAILED") | None)
        })
        .await,
        "the redriven order is accepted again: {:?}",
        status("WALK-1").await
    );
    assert_eq!(
        status("O1234").await.as_deref(),
        Some("COMPLETED"),
        "the conflict left the stored order alone"
    );

    let (ok, said) = producer(&dir, &["delete", "--only", &poison]);
    assert!(ok, "{said}");
    assert!(
        said.contains("deleted 1 message from the DLQ; 1 left"),
        "{said}"
    );
    assert!(
        said.contains("deleting") && said.contains("invalid"),
        "what goes is listed: {said}"
    );
    let (ok, said) = producer(&dir, &["redrive", "--dry-run"]);
    assert!(ok, "{said}");
    assert!(
        said.contains("the DLQ holds 1 message") && said.contains("1 conflict"),
        "only the conflict is left: {said}"
    );

    // The page an operator gets: the DLQ alarm's notification (with its description, what to
    // do) and dlq-alarm's summary, in the local ops inbox; read once, then marked read.
    let paged = orders(&dir, &["ops"]);
    let pages = String::from_utf8_lossy(&paged.stdout);
    assert!(paged.status.success(), "{pages}");
    assert!(
        pages.contains("ALARM: \""),
        "the alarm's notification: {pages}"
    );
    assert!(
        pages.contains("Order DLQ alarm: read"),
        "dlq-alarm's summary: {pages}"
    );
    let (ok, said) = producer(&dir, &["ops"]);
    assert!(ok && said.contains("0 pages"), "marked read: {said}");

    let outputs = orders(&dir, &["outputs"]);
    let outputs = String::from_utf8_lossy(&outputs.stdout);
    assert!(
        outputs
            .lines()
            .any(|l| l.starts_with("DeadLetterQueueUrl") && l.contains(&dlq_url)),
        "{outputs}"
    );

    // The order as GET /orders/{id} shows it.
    let got = orders(&dir, &["get", "O1234"]);
    let view: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap_or_default();
    assert_eq!(view["status"], "COMPLETED", "{view}");
    assert_eq!(view["orderId"], "O1234", "{view}");

    // One order's timeline: its steps from the table and its lines from the run's log.
    let traced = orders(&dir, &["trace", "O1234"]);
    let timeline = String::from_utf8_lossy(&traced.stdout);
    assert!(traced.status.success(), "{timeline}");
    for part in [
        "order O1234: COMPLETED",
        "acceptedAt (ACCEPTED)",
        "reservedAt (RESERVED)",
        "paidAt (PAID)",
        "completedAt (COMPLETED)",
        "payment approved",
    ] {
        assert!(
            timeline.contains(part),
            "no {part:?} in the timeline:\n{timeline}"
        );
    }
    // And its traces: the segments every stage sent to the runner's X-Ray daemon, each record
    // annotated with the order, the publishes that carried the trace to the next stage, and
    // the calls inside (the stock's transaction, the provider's charge).
    let traces = timeline
        .split_once("Its traces")
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    for part in [
        "order-consumer  order_id=O1234",
        "order-events  order_id=O1234",
        "inventory  order_id=O1234",
        "payment  order_id=O1234",
        "notification  order_id=O1234",
        "SNS  Publish",
        "DynamoDB  TransactWriteItems",
        "provider  POST",
    ] {
        assert!(
            traces.contains(part),
            "no {part:?} in the order's traces:\n{timeline}"
        );
    }
    // A stage's record continues the trace of the publish that sent it: the inventory segment
    // sits in the same trace, below order-events' publish.
    let inventory_trace = traces
        .split("trace ")
        .find(|t| t.contains("inventory  order_id=O1234"))
        .unwrap_or_default();
    assert!(
        inventory_trace.contains("order-events  order_id=O1234")
            && inventory_trace.contains("SNS  Publish"),
        "the inventory segment is not in order-events' trace:\n{traces}"
    );

    let (status, out) = run.stop("-INT", true);
    assert!(status.success(), "{status}");
    assert_full_summary(&out);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Protects (issue 33): `orders flash-sale` (what `make flash-sale` runs with 5,000 orders) carries
/// a small sale through the whole lifecycle with transaction conflicts on and passes its own
/// checks from the tables and the ledger: every order stored once and terminal, COMPLETED or
/// REJECTED for want of stock, each hot sku's units conserved with none oversold (sold equal to
/// its COMPLETED orders' units) and none undersold, a charge for each COMPLETED order at the
/// catalogue's price and none for the others; and it prints its figures.
#[test]
fn a_small_flash_sale_ends_every_order_and_oversells_nothing() {
    let dir = state_dir("flash-sale");
    let out = orders(
        &dir,
        &[
            "flash-sale",
            "--orders",
            "90",
            "--background",
            "9",
            "--timeout",
            "300",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "Flash sale: 99 orders (90 hot, 30 hot units)",
        "every order terminal",
        "transaction conflicts",
        "records that waited because of a conflict (RecordsContended)",
        "stored -> COMPLETED",
        "ok   HOT-1: units conserved",
        "ok   HOT-1: none undersold",
        "ok   every order COMPLETED or REJECTED",
        "ok   a charge for each COMPLETED order",
    ] {
        assert!(stdout.contains(part), "no {part:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
