//! `order-local run`: boot and keep the pipeline running until Ctrl-C or SIGTERM, with a status
//! line whenever something changes, then print the summary.

use std::time::Duration;

use order_local::pipeline::LocalPipeline;
use order_local::LocalError;

use super::boot::{boot, CATALOGUE};
use super::cli::{Boot, Cli};

pub(crate) async fn run(cli: &Cli, b: &Boot) -> Result<(), LocalError> {
    let mut stops = Stops::install()?;
    let dir = order_local::state_dir();
    let state = dir.join("stack.json");
    // Before anything starts: a second run on this state is refused, a killed run's state goes.
    let _lock = order_local::run_lock::RunLock::acquire(&dir, &[&state])?;
    // Ctrl-C while it starts: whatever was started stops with the boot (dropped).
    let (pipeline, log) = tokio::select! {
        booted = boot(cli, b, "run") => booted?,
        _ = stops.next() => {
            eprintln!("stopped while the stack was starting: nothing ran yet, and what had started is stopped");
            return Ok(());
        }
    };
    if let Some(table) = &pipeline.stack.inventory_table_name {
        let catalogue = order_local::inventory::parse(CATALOGUE)?;
        order_local::inventory::load(&pipeline.clients.dynamodb, table, &catalogue).await?;
        eprintln!(
            "loaded the sample catalogue (test/events/inventory.json, {} skus); load your own with: cargo orders inventory load FILE",
            catalogue.len()
        );
    }
    let json = serde_json::to_string_pretty(&pipeline.stack)
        .map_err(|e| LocalError::Input(e.to_string()))?;
    std::fs::write(&state, json)
        .map_err(|e| LocalError::Input(format!("write {}: {e}", state.display())))?;
    eprintln!(
        "running. in another terminal: cargo orders seeds (then: cargo orders trace O1234, cargo orders redrive --dry-run; cargo orders --help lists the rest)"
    );
    if let Some(url) = &pipeline.stack.api_url {
        eprintln!(
            "order API at {url} (loopback, no signing):\n  curl -si -X POST {url}/orders -H 'content-type: application/json' -d @test/events/payloads/another-order.json\n  curl -s {url}/orders/O5678"
        );
    }
    eprintln!("{}", cargo_lambda_hint(&pipeline));
    eprintln!(
        "function logs: {} (LOG_LEVEL=debug make run also logs every stored order); resources: {}",
        log.display(),
        state.display()
    );
    eprintln!("Ctrl-C (or SIGTERM) stops everything and prints a summary; a status line follows whenever something changes");
    let status = async {
        let mut last = String::new();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            match status_line(&pipeline).await {
                Ok(line) if line != last => {
                    eprintln!("[{}] {line}", chrono::Local::now().format("%H:%M:%S"));
                    last = line;
                }
                Ok(_) => {}
                Err(e) => eprintln!("status: {}", order_local::one_line(&e)),
            }
        }
    };
    tokio::select! {
        _ = stops.next() => {}
        _ = status => {}
    }
    let _ = std::fs::remove_file(&state);
    eprintln!("stopping... (Ctrl-C again stops at once, without the summary)");
    // A second Ctrl-C: out now. The emulator and the functions follow within a second (they
    // exit when the runner is gone).
    tokio::spawn(async move {
        stops.next().await;
        eprintln!("stopped at once, without the summary");
        std::process::exit(130);
    });
    let mut summary = pipeline.summary(&[]).await;
    if let Ok(s) = &mut summary {
        s.duplicates_dropped = pipeline
            .stats("order-consumer")
            .by_outcome
            .get("duplicate")
            .copied()
            .unwrap_or(0) as usize;
    }
    match summary {
        Ok(s) => print!(
            "{}",
            order_local::report::render_run(&s, &pipeline.stack, &log.display().to_string())
        ),
        Err(e) => eprintln!("could not read the summary: {}", order_local::one_line(&e)),
    }
    if let Ok(items) =
        order_local::report::scan_orders(&pipeline.clients, &pipeline.stack.table_name).await
    {
        let notifications = match &pipeline.inbox {
            Some(inbox) => inbox.received(&pipeline.clients).await.unwrap_or_default(),
            None => Vec::new(),
        };
        print!(
            "{}",
            order_local::report::render_lifecycle(
                &items,
                &pipeline.provider.ledger(),
                &notifications
            )
        );
    }
    // The stock as it stands, and the orders that have not ended: what the demo checks, for
    // whatever this run was sent.
    if let Some(table) = &pipeline.stack.inventory_table_name {
        match order_local::inventory::scan(&pipeline.clients.dynamodb, table).await {
            Ok(stock) => print!(
                "\nInventory at the stop (on hand = available + reserved + sold, as loaded)\n{}",
                order_local::inventory::stock_table(&stock)
            ),
            Err(e) => eprintln!(
                "could not read the inventory: {}",
                order_local::one_line(&e)
            ),
        }
    }
    match order_local::stuck::list(
        &pipeline.clients.dynamodb,
        &pipeline.stack.table_name,
        order_local::pipeline::LOCAL_STUCK_AFTER,
    )
    .await
    {
        Ok(stuck) => print!(
            "{}",
            order_local::stuck::report(&stuck, order_local::pipeline::LOCAL_STUCK_AFTER)
        ),
        Err(e) => eprintln!("could not list stuck orders: {}", order_local::one_line(&e)),
    }
    pipeline.shutdown().await;
    Ok(())
}

/// One line of what the running pipeline has done so far (without the time, which the caller
/// adds when the line changed).
async fn status_line(pipeline: &LocalPipeline) -> Result<String, LocalError> {
    let stats = pipeline.stats("order-consumer");
    let count = |label: &str| stats.by_outcome.get(label).copied().unwrap_or(0);
    let dlq = order_local::alarm::depth(&pipeline.clients.sqs, &pipeline.stack.dlq_url).await?;
    let queued =
        order_local::alarm::depth(&pipeline.clients.sqs, &pipeline.stack.queue_url).await?;
    // The lifecycle's statuses as the stages decided them (no table scan per line).
    let outcome = |binary: &str, label: &str| {
        pipeline
            .stats(binary)
            .by_outcome
            .get(label)
            .copied()
            .unwrap_or(0)
    };
    let payment_failed = outcome("payment", "declined")
        + outcome("payment", "attempts_used_up")
        + outcome("payment-dlq", "payment_failed");
    Ok(format!(
        "received {} records: stored {}, duplicates {}, failed {} (retried until the DLQ); queued {}, in the DLQ {}; DLQ alarm {}; reserved {}, rejected {}, paid {}, payment failed {}, completed {}",
        stats.records,
        count("accepted") + count("reaccepted"),
        count("duplicate"),
        stats.failed_records,
        queued,
        dlq,
        pipeline.alarms.state(&pipeline.stack.dlq_alarm_name),
        outcome("inventory", "reserved") + outcome("inventory-dlq", "reserved_on_last_attempt"),
        outcome("inventory", "rejected")
            + outcome("inventory-dlq", "rejected")
            + outcome("inventory-dlq", "dead_lettered"),
        outcome("payment", "paid"),
        payment_failed,
        outcome("notification", "completed") + outcome("notification-dlq", "completed_unnotified"),
    ))
}

/// Ctrl-C and SIGTERM, handled from the moment this is made (before the stack starts: the
/// boot blocks the thread at moments, and a handler installed only when first polled would let
/// the default action kill the runner).
struct Stops {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stops {
    fn install() -> Result<Self, LocalError> {
        use tokio::signal::unix::{signal, SignalKind};
        let handle = |kind| {
            signal(kind).map_err(|e| LocalError::Input(format!("handle Ctrl-C and SIGTERM: {e}")))
        };
        Ok(Self {
            interrupt: handle(SignalKind::interrupt())?,
            terminate: handle(SignalKind::terminate())?,
        })
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// How to run the real Lambda binaries against this emulator: one `cargo lambda watch` per
/// function that has fixtures, on a port of its own, with the environment the template gives
/// that function alone (one watch serves every binary with one environment, and the stages
/// share names such as `QUEUE_URL`).
fn cargo_lambda_hint(pipeline: &LocalPipeline) -> String {
    let mut out = String::from(
        "to try a real Lambda binary against this emulator, run its watch in another terminal, then its invokes (the first build takes minutes; invoke waits for it):",
    );
    let mut port = 9000;
    for f in &pipeline.created.functions {
        let fixtures = order_local::functions::fixtures(&f.binary);
        if fixtures.is_empty() {
            continue;
        }
        port += 1;
        let env =
            order_local::emulator::watch_environment(&f.environment, &pipeline.stack.endpoint);
        let vars: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("--env-var {k}={v}"))
            .collect();
        out.push_str(&format!(
            "\n  {}:\n    cargo lambda watch -P {port} {}",
            f.binary,
            vars.join(" ")
        ));
        for fixture in fixtures {
            out.push_str(&format!(
                "\n    cargo lambda invoke {} -P {port} --data-file {fixture}",
                f.binary
            ));
        }
    }
    out
}
