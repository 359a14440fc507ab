//! The function registry (`order_pipeline::registry`) is the one list of the pipeline's
//! Lambda functions: these tests fail when a function is registered in one place and missing
//! from another (the workspace's binaries, functions/registry.json that the stack reads, the
//! Makefile), and hold the stage wiring every function gets from it and the release profile its
//! binaries are built with (`panic = "unwind"`, which cargo lambda keeps only when it is named).
//! Regenerate functions/registry.json after changing the registry:
//! `UPDATE_REGISTRY=1 cargo test -p order-pipeline --test registry`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use order_pipeline::registry::{self, Built, Function, InventoryFn, Lookup, PaymentFn};
use order_pipeline::runtime::config::Env;
use order_pipeline::runtime::telemetry::{LineWriter, Stdout};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build()
}

fn telemetry() -> Arc<dyn LineWriter> {
    Arc::new(Stdout)
}

/// Protects: functions/registry.json (the stack's source for its stages' event filters and the
/// Makefile's list of functions) is what the registry says, so the stack cannot subscribe a
/// stage to events its code ignores or miss a function.
#[test]
fn the_published_registry_is_the_code_s() {
    let path = root().join("functions/registry.json");
    let generated = registry::to_json();
    if std::env::var_os("UPDATE_REGISTRY").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        published, generated,
        "functions/registry.json is stale; run UPDATE_REGISTRY=1 cargo test -p order-pipeline --test registry"
    );
}

/// Protects: every registered function has a binary crate `functions/<name>` whose `main` runs
/// that registration, every function crate of the workspace is registered, and the workspace
/// lists each crate (a function added in one place only fails here).
#[test]
fn every_registered_function_is_a_binary_of_the_workspace_and_every_binary_is_registered() {
    let registered: BTreeSet<&str> = registry::functions().iter().map(|f| f.name).collect();
    assert_eq!(
        registered.len(),
        registry::functions().len(),
        "a name registered twice"
    );
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("src/main.rs").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        crates.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        registered,
        "functions/<name> binary crates and the registry differ"
    );
    for f in registry::functions() {
        let main =
            std::fs::read_to_string(root().join(format!("functions/{}/src/main.rs", f.name)))
                .unwrap();
        assert!(
            main.contains(&format!("bootstrap::main::<{}>", f.marker)),
            "functions/{}/src/main.rs does not run {}",
            f.name,
            f.marker
        );
        assert_eq!(
            manifest
                .matches(&format!("\"functions/{}\"", f.name))
                .count(),
            2,
            "Cargo.toml lists functions/{} in members and default-members",
            f.name
        );
    }
}

/// Protects: the Makefile builds, packs and benchmarks every registered function: its list is
/// read from functions/registry.json, not written by hand.
#[test]
fn the_makefile_takes_its_functions_from_the_registry() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let line = makefile
        .lines()
        .find(|l| l.starts_with("FUNCTIONS :="))
        .expect("the Makefile defines FUNCTIONS");
    assert!(
        line.contains("functions/registry.json"),
        "FUNCTIONS is not read from the registry: {line}"
    );
    for f in registry::functions() {
        assert!(
            !line.contains(f.name),
            "FUNCTIONS names {} by hand: {line}",
            f.name
        );
    }
    assert!(
        makefile.contains(
            "cargo lambda build --release --arm64 --locked $(addprefix -p ,$(FUNCTIONS))"
        ),
        "make build builds every function"
    );
}

/// Protects: a stage's backoff is always wired: with RETRY_BASE_SECONDS and QUEUE_URL any
/// queue-fed function delays its failed records through its queue (the inventory stage once
/// read its backoff and silently never applied it), and a backoff without its queue is refused
/// at start-up naming QUEUE_URL.
#[test]
fn every_stage_with_a_backoff_delays_its_failed_records_and_one_without_its_queue_cannot_start() {
    let vars = |extra: &[(&'static str, &'static str)]| {
        let mut v = vec![
            ("TABLE_NAME", "Orders"),
            ("INVENTORY_TABLE_NAME", "Inventory"),
            (
                "NOTIFICATION_TOPIC_ARN",
                "arn:aws:sns:us-east-1:000000000000:n",
            ),
        ];
        v.extend_from_slice(extra);
        v
    };
    let with_queue = vars(&[
        ("RETRY_BASE_SECONDS", "5"),
        ("QUEUE_URL", "http://127.0.0.1:1/queue/stage"),
    ]);
    let lookup = |name: &str| {
        with_queue
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let inventory = InventoryFn::build(&Env(lookup), &sdk(), telemetry()).unwrap();
    assert!(inventory.has_backoff(), "inventory ignores its backoff");
    let payment = PaymentFn::build(&Env(lookup), &sdk(), telemetry()).unwrap();
    assert!(payment.has_backoff());

    let without_queue = vars(&[("RETRY_BASE_SECONDS", "5")]);
    let lookup = |name: &str| {
        without_queue
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let env = Env(&lookup as Lookup<'_>);
    for f in registry::functions() {
        if f.trigger != registry::Trigger::Sqs {
            continue;
        }
        let error = (f.build)(&env, &sdk(), telemetry())
            .err()
            .unwrap_or_else(|| panic!("{} starts with a backoff and no queue", f.name));
        assert!(
            error.to_string().contains("QUEUE_URL"),
            "{}: {error}",
            f.name
        );
    }
}

/// Protects: each registered function builds from the environment its stack gives it into the
/// handler its trigger needs (the local runner and the binaries build them the same way).
#[test]
fn every_registered_function_builds_into_its_trigger_s_handler() {
    let vars = [
        ("TABLE_NAME", "Orders"),
        ("INVENTORY_TABLE_NAME", "Inventory"),
        (
            "NOTIFICATION_TOPIC_ARN",
            "arn:aws:sns:us-east-1:000000000000:n",
        ),
        ("ORDER_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:o"),
        (
            "ORDER_EVENTS_TOPIC_ARN",
            "arn:aws:sns:us-east-1:000000000000:e",
        ),
        ("OPS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:ops"),
        ("DLQ_URL", "http://127.0.0.1:1/queue/dlq"),
        ("DLQ_ARN", "arn:aws:sqs:us-east-1:000000000000:dlq"),
        ("ORDER_QUEUE_URL", "http://127.0.0.1:1/queue/orders"),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let env = Env(&lookup as Lookup<'_>);
    for f in registry::functions() {
        let built =
            (f.build)(&env, &sdk(), telemetry()).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let trigger = match built {
            Built::Sqs(_) => registry::Trigger::Sqs,
            Built::Stream(_) => registry::Trigger::Stream,
            Built::Alarm(_) => registry::Trigger::Alarm,
            Built::Http(_) => registry::Trigger::Http,
        };
        assert_eq!(trigger, f.trigger, "{}", f.name);
    }
}

/// Protects: the deployed bootstraps keep the batch worker's per-record panic isolation.
/// cargo lambda adds `--config profile.release.panic="abort"` to its release builds unless the
/// workspace's release profile names its own panic strategy; under "abort" a panic in one
/// record kills the process and fails the whole batch. (Fails on the profile before
/// 2026-12-06, which left `panic` unset.)
#[test]
fn the_release_profile_names_panic_unwind_so_cargo_lambda_keeps_it() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let release: String = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a [profile.release] section")
        .lines()
        .take_while(|l| !l.starts_with('['))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        release
            .lines()
            .any(|l| l.replace(' ', "") == "panic=\"unwind\""),
        "[profile.release] must say panic = \"unwind\":\n{release}"
    );
}

/// Protects: a stuck order's line names the stage that acts on its status, taken from the
/// stages' subscriptions (not from a hand-kept list): ACCEPTED waits on inventory, RESERVED on
/// payment, PAID on notification; an ended status on none, and the watch names neither itself
/// nor a dead-letter handler.
#[test]
fn a_stuck_order_s_stage_is_the_one_subscribed_to_the_event_that_entered_its_status() {
    use order_domain::OrderStatus;
    assert_eq!(registry::waiting_on(OrderStatus::Accepted), ["inventory"]);
    assert_eq!(registry::waiting_on(OrderStatus::Reserved), ["payment"]);
    assert_eq!(registry::waiting_on(OrderStatus::Paid), ["notification"]);
    assert!(registry::waiting_on(OrderStatus::Completed).is_empty());
}
