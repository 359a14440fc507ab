//! `kill -9` of the real order-consumer binary mid-batch, on the emulator (moto): a stand-in for
//! Lambda's service hands the process SQS batches through the runtime API, SIGKILLs it while its
//! writes are in flight, starts a new process, and lets the killed batch come back, as Lambda
//! does after a crashed invocation. Every request of the process goes through a proxy that holds
//! it 40 ms; a kill comes either at once, before a batch's writes are out, or as soon as the
//! emulator has answered the first of them, with the rest sent and not yet answered.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use order_domain::parse_body;
use order_local::alarm::depth;
use order_local::emulator::{Emulator, EMULATOR_REGION};
use order_local::faults::{FaultProxy, FaultRates};
use order_local::generate::{generate, Intent, Mix};
use order_local::kit::runtime_api::{Deadline, Heard, Invocation, RuntimeApi, RuntimeOptions};
use order_local::mapping::to_record;
use order_local::report::scan_orders;
use order_local::resources::create;
use order_local::template::Template;
use order_local::Clients;
use order_pipeline::adapters::sqs::change_visibility;

/// A consumer process and its runtime API.
struct Process {
    child: Child,
    api: RuntimeApi,
}

fn start_consumer(environment: &HashMap<String, String>, endpoint: &str, log: &File) -> Process {
    // The local test kit's stand-in, reporting every request the process makes; one per
    // process: a killed process's connection dies with it.
    let api = RuntimeApi::start_blocking(RuntimeOptions {
        hear: true,
        ..RuntimeOptions::new("arn:aws:lambda:xx-east-1:000000000000:function:order-consumer")
    })
    .expect("the runtime API listens on loopback");
    let child = Command::new(env!("CARGO_BIN_EXE_order-consumer"))
        .env_clear()
        .envs(environment)
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "order-consumer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", EMULATOR_REGION)
        .env("AWS_ACCESS_KEY_ID", "emulator")
        .env("AWS_SECRET_ACCESS_KEY", "emulator")
        .env("AWS_ENDPOINT_URL", endpoint)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log.try_clone().unwrap()))
        .spawn()
        .expect("the order-consumer binary starts");
    Process { child, api }
}

/// The answer to `request_id` (its path and body), if one comes before `until`.
fn answer(api: &RuntimeApi, request_id: &str, until: Instant) -> Option<(String, String)> {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match api.next_heard(left) {
            Some(Heard::Request { path, body, .. })
                if path.contains(&format!("/invocation/{request_id}/")) =>
            {
                return Some((path, body))
            }
            Some(_) => continue,
            None => return None,
        }
    }
}

/// Protects: a consumer process killed with SIGKILL while its conditional writes are in flight
/// loses no order and writes none twice: the batch comes back, the orders the killed process
/// stored are found as duplicates and deleted, the others are stored, and only invalid and
/// conflicting messages reach the DLQ, each with its reason logged. Checked from the table and
/// the queues alone.
#[test]
fn a_consumer_killed_mid_batch_loses_no_order_and_writes_none_twice() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator =
        Emulator::start().expect("moto_server starts (run `make setup` if it is missing)");
    let (clients, created, proxy) = rt.block_on(async {
        let clients = Clients::new(&emulator.sdk_config().await, emulator.endpoint());
        let template = Template::current().expect("the stack's template synthesizes");
        let created = create(&clients, &template, "kill")
            .await
            .expect("resources created");
        let slow = FaultRates::round_trip(Duration::from_millis(40));
        let proxy = FaultProxy::start(emulator.endpoint(), slow)
            .await
            .expect("proxy starts");
        (clients, created, proxy)
    });
    let stack = created.stack.clone();
    let function = created
        .functions
        .iter()
        .find(|f| f.binary == "order-consumer")
        .expect("the stack has an order-consumer");
    let environment: HashMap<String, String> = function.environment.clone().into_iter().collect();
    let queue = created
        .queues
        .iter()
        .find(|q| q.url == stack.queue_url)
        .expect("the order queue");

    let planned = generate(
        150,
        Mix {
            duplicates: 0.1,
            conflicts: 0.05,
            invalid: 0.05,
        },
        9,
        "kill",
    );
    rt.block_on(order_local::publish::publish_all(
        &clients.sns,
        &stack.topic_arn,
        &planned,
        false,
    ))
    .expect("published");

    let log_path = order_local::state_dir().join("kill-test-consumer.log");
    std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
    let log = File::create(&log_path).unwrap();
    let hide = |batch: &[Message]| {
        let receipts: Vec<&str> = batch
            .iter()
            .filter_map(|m| m.receipt_handle.as_deref())
            .collect();
        rt.block_on(change_visibility(&clients.sqs, &queue.url, &receipts, 1))
            .expect("visibility changed");
    };
    let settle = |batch: &[Message], path: &str, body: &str| {
        if !path.ends_with("/response") {
            // A failed invocation deletes nothing; the batch comes back.
            return hide(batch);
        }
        let response: serde_json::Value = serde_json::from_str(body).unwrap();
        let failed: BTreeSet<&str> = response["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        let (retry, done): (Vec<Message>, Vec<Message>) = batch
            .iter()
            .cloned()
            .partition(|m| failed.contains(m.message_id.as_deref().unwrap_or_default()));
        rt.block_on(async {
            for m in &done {
                clients
                    .sqs
                    .delete_message()
                    .queue_url(&queue.url)
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .send()
                    .await
                    .expect("deleted");
            }
        });
        if !retry.is_empty() {
            hide(&retry);
        }
    };

    let mut process: Option<Process> = None;
    let (mut killed_mid_batch, mut stored_by_killed, mut unstored_in_killed) = (0, 0, 0);
    let started = Instant::now();
    for invocation in 1.. {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the queue drains within 4 minutes"
        );
        let batch = rt
            .block_on(
                clients
                    .sqs
                    .receive_message()
                    .queue_url(&queue.url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send(),
            )
            .expect("received")
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            if rt.block_on(depth(&clients.sqs, &queue.url)).unwrap() == 0 {
                break;
            }
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(|m| to_record(m, &queue.arn)).collect();
        let request_id = format!("req-{invocation}");
        let p = process.get_or_insert_with(|| start_consumer(&environment, &proxy.url, &log));
        let forwarded_before = proxy.stats.forwarded.load(Ordering::SeqCst);
        p.api.invoke(
            Invocation::new(
                request_id.clone(),
                serde_json::to_string(&event).unwrap(),
                Deadline::AfterDelivery(Duration::from_secs(30)),
            )
            .with_trace_id(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            ),
        );
        let delivered = loop {
            match p.api.next_heard(Duration::from_secs(30)) {
                Some(Heard::Delivered { request_id: r, at }) if r == request_id => break at,
                Some(_) => continue,
                None => panic!("the consumer did not take invocation {request_id}"),
            }
        };
        // Every other batch on its first delivery is killed, in turn: at once, before its
        // writes are out (the next process stores them), or as soon as the emulator has
        // answered the first of its writes (the others, sent together and held 40 ms each by
        // the proxy, are applied after the process died: the next process meets its own
        // writes). A kill at a fixed time into the batch, as first written, landed before any
        // write once the machine was loaded.
        let first_delivery = batch.iter().all(|m| {
            m.attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .is_some_and(|c| c == "1")
        });
        if first_delivery && invocation % 2 == 1 {
            let after_a_write = killed_mid_batch % 2 == 1;
            let give_up = delivered + Duration::from_secs(10);
            let answered = loop {
                if let Some(a) = answer(
                    &p.api,
                    &request_id,
                    Instant::now() + Duration::from_millis(1),
                ) {
                    // A batch without a write to make (all invalid) answers first.
                    break Some(a);
                }
                if !after_a_write
                    || proxy.stats.forwarded.load(Ordering::SeqCst) > forwarded_before
                    || Instant::now() >= give_up
                {
                    break None;
                }
            };
            let mut p = process.take().unwrap();
            p.child.kill().unwrap(); // SIGKILL
            p.child.wait().unwrap();
            drop(p);
            if let Some((path, body)) = answered {
                settle(&batch, &path, &body);
                continue;
            }
            killed_mid_batch += 1;
            // What the killed process's writes did (the proxy still forwards what it holds).
            std::thread::sleep(Duration::from_millis(300));
            let stored: BTreeSet<String> = rt
                .block_on(scan_orders(&clients, &stack.table_name))
                .unwrap()
                .into_iter()
                .map(|i| i.order_id)
                .collect();
            for m in &batch {
                if let Ok((order, _)) = parse_body(m.body.as_deref().unwrap_or_default()).order {
                    if stored.contains(&order.order_id) {
                        stored_by_killed += 1;
                    } else {
                        unstored_in_killed += 1;
                    }
                }
            }
            hide(&batch);
        } else {
            let (path, body) = answer(
                &p.api,
                &request_id,
                Instant::now() + Duration::from_secs(30),
            )
            .expect("the consumer answers");
            settle(&batch, &path, &body);
        }
    }
    if let Some(mut p) = process.take() {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
    eprintln!(
        "{killed_mid_batch} processes killed mid-batch; their batches held {stored_by_killed} orders already stored and {unstored_in_killed} not; {}",
        proxy.stats.line()
    );
    assert!(
        killed_mid_batch >= 3,
        "processes were killed mid-batch ({killed_mid_batch})"
    );
    assert!(
        stored_by_killed > 0,
        "a killed process had stored some of its orders: their redelivery meets its own writes"
    );

    // From the table and the DLQ alone.
    let items = rt
        .block_on(scan_orders(&clients, &stack.table_name))
        .unwrap();
    let stored_hash: HashMap<&str, &str> = items
        .iter()
        .map(|i| (i.order_id.as_str(), i.content_hash.as_str()))
        .collect();
    assert_eq!(stored_hash.len(), items.len(), "one item per order id");
    let mut hashes_by_id: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut expected_dlq = BTreeSet::new();
    for p in &planned {
        match parse_body(&p.body).order {
            Err(_) => {
                expected_dlq.insert(p.correlation_id.clone());
            }
            Ok((order, _)) => {
                let hash = order.content_hash();
                if stored_hash.get(order.order_id.as_str()) != Some(&hash.as_str()) {
                    expected_dlq.insert(p.correlation_id.clone());
                }
                hashes_by_id
                    .entry(order.order_id.clone())
                    .or_default()
                    .insert(hash);
            }
        }
    }
    assert_eq!(
        items.len(),
        hashes_by_id.len(),
        "every valid order id is stored once: none lost"
    );
    for i in &items {
        assert!(
            hashes_by_id[&i.order_id].contains(&i.content_hash),
            "{} is stored with the content of one of its messages",
            i.order_id
        );
        assert_eq!(i.version, 1, "{} was written once", i.order_id);
    }
    let conflicts = planned
        .iter()
        .filter(|p| p.intent == Intent::Conflict)
        .count();
    assert!(conflicts > 0 && expected_dlq.len() > conflicts);

    let mut dead: BTreeSet<String> = BTreeSet::new();
    rt.block_on(async {
        loop {
            let got = clients
                .sqs
                .receive_message()
                .queue_url(&stack.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .send()
                .await
                .expect("DLQ read")
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                break;
            }
            for m in got {
                let id = m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get("correlationId"))
                    .and_then(|v| v.string_value.clone())
                    .expect("a dead letter keeps its correlationId");
                assert!(dead.insert(id.clone()), "{id} reached the DLQ twice");
            }
        }
    });
    assert_eq!(
        dead, expected_dlq,
        "exactly the invalid and conflicting messages reached the DLQ"
    );

    // Each of them with its reason logged on its last receive.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for id in &dead {
        assert!(
            lines.iter().any(|l| l["correlation_id"] == id.as_str()
                && l["level"] == "ERROR"
                && l["reason"].as_str().is_some_and(|r| !r.is_empty())),
            "the reason {id} reached the DLQ is logged (in {})",
            log_path.display()
        );
    }
    proxy.stop();
}
