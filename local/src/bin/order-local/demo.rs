//! `order-local demo`: boot, publish the seed orders and the troublemakers, post to the API,
//! wait until the queues drain, print the summary and say whether every message is accounted
//! for.

use std::time::Duration;

use order_local::generate::{generate, Intent, Mix, Planned};
use order_local::pipeline::LocalPipeline;
use order_local::report::render;
use order_local::seeds;
use order_local::LocalError;

use super::boot::{boot, progress, CATALOGUE};
use super::cli::{Boot, Cli};

pub(crate) async fn demo(
    cli: &Cli,
    b: &Boot,
    generated: usize,
    timeout: u64,
) -> Result<bool, LocalError> {
    let (pipeline, log) = boot(cli, b, "demo").await?;
    let timeout = Duration::from_secs(timeout);
    let catalogue = order_local::inventory::parse(CATALOGUE)?;
    if let Some(table) = &pipeline.stack.inventory_table_name {
        eprintln!(
            "loading the sample catalogue ({} skus) into the Inventory table...",
            catalogue.len()
        );
        order_local::inventory::load(&pipeline.clients.dynamodb, table, &catalogue).await?;
    }
    let observer = match &pipeline.stack.order_events_topic_arn {
        Some(topic) => Some(
            order_local::observe::Observer::subscribe(&pipeline.clients, topic, "demo-observer")
                .await?,
        ),
        None => None,
    };
    let mut planned = seeds::seed_orders("seed");
    eprintln!("publishing the seed orders (seeds 001, 002, 004)...");
    let mut drained = pipeline
        .publish_and_drain(&planned, timeout, progress)
        .await?;
    let more = seeds::troublemakers("demo");
    eprintln!(
        "publishing a duplicate of seed 001, a conflicting order O1234 and an invalid payload..."
    );
    drained &= pipeline.publish_and_drain(&more, timeout, progress).await?;
    planned.extend(more);
    let declined = seeds::unhappy_endings("demo");
    eprintln!("publishing O-DECLINED (customer decline-demo: the provider declines its payment) and O-SOLD-OUT (3 laptops, 0 left)...");
    drained &= pipeline
        .publish_and_drain(&declined, timeout, progress)
        .await?;
    planned.extend(declined);
    let late = seeds::lost_answer("demo");
    eprintln!("publishing O-LATE (customer late-demo: the provider charges it and answers too late, every attempt; the payment stage looks the charge up and finds it)...");
    drained &= pipeline.publish_and_drain(&late, timeout, progress).await?;
    planned.extend(late);
    let api = match &pipeline.stack.api_url {
        Some(url) => {
            eprintln!("posting an order to the order API ({url}), then the same POST again (a client retry)...");
            let (posted, api_planned) = post_twice(url).await?;
            drained &= pipeline.wait_until_drained(timeout, progress).await?;
            planned.extend(api_planned);
            let completed = posted.0.body["orderId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            eprintln!("a customer changing their mind: O-CANCEL posted and cancelled as soon as it is stored, and {completed} (COMPLETED) cancelled...");
            let (cancels, cancel_planned) = cancel_two(url, &completed).await?;
            drained &= pipeline.wait_until_drained(timeout, progress).await?;
            planned.push(cancel_planned);
            Some((url.clone(), posted, cancels))
        }
        None => None,
    };
    if !pipeline.processes.is_empty() {
        drained &= dead_letter_settled_events(&pipeline, timeout).await?;
    }
    if generated > 0 {
        let mix = Mix {
            duplicates: 0.05,
            conflicts: 0.02,
            invalid: 0.03,
        };
        let traffic = generate(generated, mix, 42, "gen");
        eprintln!(
            "publishing {generated} generated orders (5% duplicates, 2% conflicts, 3% invalid)..."
        );
        drained &= pipeline
            .publish_and_drain(&traffic, timeout, progress)
            .await?;
        planned.extend(traffic);
    }
    eprintln!(
        "waiting for the order watch to look at every order (one not ended {} s after it was accepted is listed stuck)...",
        order_local::pipeline::LOCAL_STUCK_AFTER.as_secs()
    );
    drained &= pipeline.wait_for_the_watch(timeout, progress).await?;
    if !drained {
        eprintln!(
            "the queue did not drain within {}s; the summary shows where things are",
            timeout.as_secs()
        );
    }
    let summary = pipeline.summary(&planned).await?;
    print!(
        "{}",
        render(&summary, &pipeline.stack, &log.display().to_string())
    );
    if let Some(table) = &pipeline.stack.inventory_table_name {
        let after = order_local::inventory::scan(&pipeline.clients.dynamodb, table).await?;
        println!("\nInventory (stock before -> after; units are conserved: before = available + reserved + sold)");
        println!(
            "  {:<12} {:>7} {:>10} {:>9} {:>5}",
            "sku", "before", "available", "reserved", "sold"
        );
        for p in &catalogue {
            if let Some(a) = after.get(&p.sku) {
                println!(
                    "  {:<12} {:>7} {:>10} {:>9} {:>5}",
                    p.sku,
                    p.available.or(p.stock).unwrap_or(0),
                    a.available,
                    a.reserved,
                    a.sold
                );
            }
        }
        let items =
            order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
        for i in items.iter().filter(|i| i.rejection.is_some()) {
            if let Some(r) = &i.rejection {
                println!("  rejected {:<22} {}", i.order_id, r.reason);
            }
        }
    }
    let items =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
    let notifications = match &pipeline.inbox {
        Some(inbox) => inbox.received(&pipeline.clients).await?,
        None => Vec::new(),
    };
    print!(
        "{}",
        order_local::report::render_lifecycle(&items, &pipeline.provider.ledger(), &notifications)
    );
    // make bench sections 7 and 8: how long the orders took, and where the time went.
    println!(
        "\nOrder latency (from each order's timestamps; a step is the hop to its queue, the queue's wait and the stage's work)\n{}  queue wait and stage work, by function (the event source mappings)\n{}",
        order_local::latency::Latency::of(&items).render(),
        order_local::latency::render_queues(&pipeline.queue_times())
    );
    let seeds_completed = ["O1234", "9f1c2a4e-5b6d-4c3e-8f7a-1b2c3d4e5f60", "01234"]
        .iter()
        .all(|id| {
            items
                .iter()
                .any(|i| i.order_id == *id && i.status == order_domain::OrderStatus::Completed)
        });
    let status_of = |id: &str| items.iter().find(|i| i.order_id == id).map(|i| i.status);
    let declined_failed = status_of("O-DECLINED") == Some(order_domain::OrderStatus::PaymentFailed)
        && status_of("O-SOLD-OUT") == Some(order_domain::OrderStatus::Rejected);
    if let Some(observer) = &observer {
        let counts = observer.drain_counts(&pipeline.clients).await?;
        let text: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("\nLifecycle events published: {}", text.join(", "));
    }
    let mut api_ok = true;
    if let Some((url, (first, retry), cancels)) = api {
        let id = first.body["orderId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let got =
            order_local::http::send("GET", &format!("{url}/orders/{id}"), None, &[], None).await?;
        println!("\nOrder API ({url})");
        println!(
            "  POST /orders                 {} {}",
            first.status, first.body
        );
        println!(
            "  POST /orders (same key)      {} orderId {}",
            retry.status, retry.body["orderId"]
        );
        println!(
            "  GET  /orders/{id}  {} status {}",
            got.status, got.body["status"]
        );
        let mut cancels_ok = true;
        for (id, answer) in &cancels {
            let now =
                order_local::http::send("GET", &format!("{url}/orders/{id}"), None, &[], None)
                    .await?;
            let refund = &now.body["refund"];
            println!(
                "  POST /orders/{id}/cancel  {} {} -> now {}{}",
                answer.status,
                answer.body["status"],
                now.body["status"],
                match refund["refundId"].as_str() {
                    Some(r) => format!(
                        " ({} {} refunded, {r})",
                        refund["amount"].as_str().unwrap_or(""),
                        refund["currency"].as_str().unwrap_or("")
                    ),
                    None => String::new(),
                }
            );
            cancels_ok &= matches!(answer.status, 200 | 202)
                && matches!(now.body["status"].as_str(), Some("CANCELLED" | "REFUNDED"));
        }
        // The completed order's cancel is a refund.
        cancels_ok &= cancels
            .last()
            .is_some_and(|(id, _)| status_of(id) == Some(order_domain::OrderStatus::Refunded));
        println!("  try it: curl -s -X POST {url}/orders -H 'content-type: application/json' -d @test/events/payloads/another-order.json");
        println!("          curl -s -X POST {url}/orders/O5678/cancel");
        api_ok = first.status == 202
            && retry.body["orderId"] == first.body["orderId"]
            && got.status == 200
            && cancels_ok;
    }
    // Every order ended: none is stuck.
    let stuck = order_local::stuck::list(
        &pipeline.clients.dynamodb,
        &pipeline.stack.table_name,
        order_local::pipeline::LOCAL_STUCK_AFTER,
    )
    .await?;
    print!(
        "{}",
        order_local::stuck::report(&stuck, order_local::pipeline::LOCAL_STUCK_AFTER)
    );
    let processes_ok = report_processes(&pipeline);
    pipeline.shutdown().await;
    if !seeds_completed || !declined_failed {
        eprintln!("the lifecycle did not end as expected: the seed orders COMPLETED ({seeds_completed}), O-DECLINED PAYMENT_FAILED and O-SOLD-OUT REJECTED ({declined_failed}); see {}", log.display());
    }
    Ok(summary.all_accounted_for()
        && drained
        && stuck.rows.is_empty()
        && api_ok
        && seeds_completed
        && declined_failed
        && processes_ok)
}

/// With the bootstraps as processes: an event of O1234 (settled by now) put in the DLQ of each
/// stage that has a dead-letter handler (the registry's), the first one the stage acts on that
/// O1234's path produced (inventory: OrderAccepted, payment: InventoryReserved, notification:
/// PaymentSucceeded, order-watch: OrderAccepted, refund: CancelRequested of the completed order),
/// so that every dead-letter handler answers a real event too (each finds the order moved on, or ended, and leaves it alone).
async fn dead_letter_settled_events(
    pipeline: &LocalPipeline,
    timeout: Duration,
) -> Result<bool, LocalError> {
    use order_domain::OrderStatus as S;
    let items =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await?;
    let Some(order) = items.into_iter().find(|i| i.order_id == "O1234") else {
        return Ok(false);
    };
    // O1234's statuses, each at its version (index + 1).
    let path = [S::Accepted, S::Reserved, S::Paid, S::Completed];
    let at = |status| {
        let version = path.iter().position(|s| *s == status)? as u64 + 1;
        Some(order_domain::OrderItem {
            status,
            version,
            ..order.clone()
        })
    };
    // (the handler, the queue that feeds it: the stage's DLQ, the change whose event its stage
    // acts on)
    let mut letters = Vec::new();
    for handler in order_pipeline::registry::functions() {
        let Some(stage) = handler
            .dead_letters_of
            .and_then(order_pipeline::registry::find)
        else {
            continue;
        };
        let Some(dlq) = pipeline.mappings.iter().find(|m| m.binary == handler.name) else {
            continue;
        };
        // A change on O1234's path; else one leaving it (a cancel of the COMPLETED order: the
        // refund DLQ's CancelRequested), at the version after.
        let change = stage.events.iter().find_map(|event| {
            order_domain::TRANSITIONS.iter().find_map(|t| {
                if t.event != *event {
                    return None;
                }
                let old = t.from.and_then(at);
                let new = at(t.to).or_else(|| {
                    let old = old.clone()?;
                    Some(order_domain::OrderItem {
                        status: t.to,
                        version: old.version + 1,
                        ..old
                    })
                })?;
                match t.from {
                    None => Some((None, new)),
                    Some(_) => Some((Some(old?), new)),
                }
            })
        });
        if let Some((old, new)) = change {
            letters.push((handler.name, dlq.queue_url.clone(), old, new));
        }
    }
    for (handler, dlq, old, new) in letters {
        let event =
            order_domain::LifecycleEvent::from_change(old.as_ref(), &new, "2026-01-01T00:00:00Z")
                .ok_or_else(|| LocalError::Input(format!("no event for {:?}", new.status)))?;
        eprintln!(
            "putting O1234's {} event in {handler}'s queue, a stage's DLQ (it finds the order settled)...",
            event.event_type.as_str()
        );
        pipeline
            .clients
            .sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(
                serde_json::to_string(&event).map_err(|e| LocalError::Input(e.to_string()))?,
            )
            .send()
            .await
            .map_err(order_local::aws_err("send to a stage's DLQ"))?;
    }
    pipeline.wait_until_drained(timeout, progress).await
}

/// Each bootstrap run as a process: how often it started, answered and failed, and what it
/// cost: spawn to its first request for an event and the CPU used by then, then CPU and wall
/// time per event answered (the wall time includes the emulator's), and peak memory. True when
/// every one answered at least one event and none failed.
fn report_processes(pipeline: &LocalPipeline) -> bool {
    if pipeline.processes.is_empty() {
        return true;
    }
    use std::sync::atomic::Ordering::Relaxed;
    println!("\nBootstraps run as processes (one event at a time, like a warm Lambda instance)");
    println!(
        "  {:<14} {:>7} {:>8} {:>6} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "function",
        "started",
        "answered",
        "failed",
        "start ms",
        "init CPU",
        "CPU/event",
        "wall/event",
        "peak RSS"
    );
    let mut ok = true;
    for p in &pipeline.processes {
        let (started, answered, errors) = (
            p.stats.started.load(Relaxed),
            p.stats.answered.load(Relaxed),
            p.stats.errors.load(Relaxed),
        );
        let ms = |us: u64| us as f64 / 1000.0;
        let init_cpu = ms(p.stats.init_cpu_us.load(Relaxed));
        let per_event = |total: f64| total / answered.max(1) as f64;
        let (cpu, rss) = match p.usage() {
            // One start: its CPU after initialisation is the events'.
            Some(u) if started == 1 => (
                format!("{:.2} ms", per_event(u.cpu_ms - init_cpu)),
                format!("{:.1} MB", u.peak_rss_kb as f64 / 1024.0),
            ),
            Some(u) => (
                "-".into(),
                format!("{:.1} MB", u.peak_rss_kb as f64 / 1024.0),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "  {:<14} {started:>7} {answered:>8} {errors:>6} {:>9.1} {:>9} {cpu:>11} {:>11} {rss:>8}",
            p.binary,
            ms(p.stats.cold_start_us.load(Relaxed)),
            format!("{init_cpu:.0} ms"),
            format!("{:.1} ms", per_event(ms(p.stats.busy_us.load(Relaxed)))),
        );
        ok &= answered > 0 && errors == 0;
    }
    println!("  (CPU from /proc at 10 ms resolution: CPU/event is meaningful over many events)");
    if let Some(proxy) = &pipeline.faults {
        println!(
            "  their AWS calls: {} requests on {} connections to the proxy, {} of them held {} ms",
            proxy.stats.requests.load(Relaxed),
            proxy.stats.connections.load(Relaxed),
            proxy.stats.slowed.load(Relaxed),
            proxy.rates.latency.as_millis()
        );
    }
    if !ok {
        eprintln!("a bootstrap answered no event or failed one: its lines are in the function log");
    }
    ok
}

/// POSTs an order without an id, with an Idempotency-Key, twice (a client retrying): both
/// answers name the same order, and the pipeline stores it once.
async fn post_twice(
    url: &str,
) -> Result<
    (
        (order_local::http::Posted, order_local::http::Posted),
        Vec<Planned>,
    ),
    LocalError,
> {
    let body = serde_json::json!({
        "customerId": "U-API",
        "items": [{"sku": "MON-27", "name": "Monitor", "quantity": 1, "unitPrice": "279.50"}],
        "currency": "USD"
    })
    .to_string();
    let (first, first_planned) = post_once(url, &body, "demo-api-1", Intent::New).await?;
    let (retry, retry_planned) = post_once(url, &body, "demo-api-2", Intent::Duplicate).await?;
    Ok(((first, retry), vec![first_planned, retry_planned]))
}

/// A customer changing their mind: O-CANCEL posted and cancelled as soon as the intake stored it
/// (before its reservation, so CANCELLED), and `completed` (an order COMPLETED by now) cancelled
/// (CANCELLING, then REFUNDED). The cancels' answers, by order id, and O-CANCEL's message.
async fn cancel_two(
    url: &str,
    completed: &str,
) -> Result<(Vec<(String, order_local::http::Posted)>, Planned), LocalError> {
    let body = serde_json::json!({
        "orderId": "O-CANCEL",
        "customerId": "U-CHANGED-MIND",
        "items": [{"sku": "KB-2", "quantity": 1}],
        "currency": "USD"
    })
    .to_string();
    let (_, planned) = post_once(url, &body, "demo-cancel", Intent::New).await?;
    let cancel = |id: String| async move {
        order_local::http::send(
            "POST",
            &format!("{url}/orders/{id}/cancel"),
            None,
            &[],
            None,
        )
        .await
    };
    let started = std::time::Instant::now();
    let early = loop {
        let answer = cancel("O-CANCEL".into()).await?;
        // 404 until the intake has stored it.
        if answer.status != 404 || started.elapsed() > Duration::from_secs(30) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let late = cancel(completed.to_string()).await?;
    Ok((
        vec![("O-CANCEL".into(), early), (completed.to_string(), late)],
        planned,
    ))
}

async fn post_once(
    url: &str,
    body: &str,
    correlation: &str,
    intent: Intent,
) -> Result<(order_local::http::Posted, Planned), LocalError> {
    let posted = order_local::http::send(
        "POST",
        &format!("{url}/orders"),
        Some(body),
        &[
            ("idempotency-key", "demo-checkout-1"),
            ("x-correlation-id", correlation),
        ],
        None,
    )
    .await?;
    // The accounting compares the stored order with the order as published: with its id.
    let order_id = posted.body["orderId"].as_str().map(str::to_string);
    let mut published: serde_json::Value =
        serde_json::from_str(body).map_err(|e| LocalError::Input(e.to_string()))?;
    published["orderId"] = serde_json::Value::from(order_id.clone().unwrap_or_default());
    let planned = Planned {
        correlation_id: correlation.to_string(),
        body: published.to_string(),
        order_id,
        intent,
    };
    Ok((posted, planned))
}
