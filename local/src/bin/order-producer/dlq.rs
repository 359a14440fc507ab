//! The DLQs' commands: `dlq` lists one (the intake's judged against the Orders table, a stage's
//! as its events), `redrive` moves the intake DLQ's redrivable messages back (each judged first;
//! only those that can succeed move), `delete` removes chosen messages, listed as they go.

use std::collections::HashSet;

use order_local::redrive;
use order_local::report::plural;
use order_local::LocalError;

use super::{target, Cli, Target};

/// How many listed lines a redrive prints without --all.
const LISTED_LINES: usize = 20;

/// The URL of the DLQ named `dlq` (intake, inventory, ...), or an error naming those there are.
fn dlq_url<'a>(target: &'a Target, dlq: &str) -> Result<&'a str, LocalError> {
    let mut names = Vec::new();
    for (output, url) in &target.outputs {
        match redrive::dlq_name(output) {
            Some(name) if name == dlq => return Ok(url),
            Some(name) => names.push(name),
            None => {}
        }
    }
    Err(LocalError::Input(format!(
        "no DLQ named {dlq}; the stack has: {}",
        names.join(", ")
    )))
}

/// The DLQ's messages (the intake's judged against the Orders table), and the ones `--only`
/// chose (every `--only` value must name one).
async fn judged(
    target: &Target,
    dlq: &str,
    only: &[String],
) -> Result<(Vec<redrive::Listed>, HashSet<String>), LocalError> {
    let sqs = aws_sdk_sqs::Client::new(&target.config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&target.config);
    let url = dlq_url(target, dlq)?;
    let listing = if dlq == "intake" {
        redrive::list(&sqs, &dynamodb, target.output("OrdersTableName")?, url).await?
    } else {
        redrive::list_events(&sqs, url).await?
    };
    if listing.held_elsewhere > 0 {
        eprintln!(
            "about {} more held hidden by another reader (a console poll?) are not listed, nor acted on: run again once they are visible",
            plural(listing.held_elsewhere as usize, "message", "messages")
        );
    }
    let unmatched: Vec<&String> = only
        .iter()
        .filter(|o| {
            !listing
                .listed
                .iter()
                .any(|l| l.chosen(std::slice::from_ref(*o)))
        })
        .collect();
    if !unmatched.is_empty() {
        return Err(LocalError::Input(format!(
            "--only names no DLQ message (message id or order id): {}; list them with `redrive --dry-run`",
            unmatched.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let chosen = listing
        .listed
        .iter()
        .filter(|l| l.chosen(only))
        .map(|l| l.message_id.clone())
        .collect();
    Ok((listing.listed, chosen))
}

pub(super) async fn redrive_dlq(
    cli: &Cli,
    dry_run: bool,
    only: &[String],
    all: bool,
) -> Result<(), LocalError> {
    list_or_redrive(cli, "intake", Some(dry_run), only, all).await
}

/// `dlq --dlq NAME`: the DLQ's messages as a redrive's dry run lists them (the intake's) or as
/// events (a stage's).
pub(super) async fn list_dlq(cli: &Cli, dlq: &str, all: bool) -> Result<(), LocalError> {
    list_or_redrive(cli, dlq, None, &[], all).await
}

/// Lists the DLQ (with totals, the stayers first); with `move_back` Some(false), moves the
/// intake DLQ's redrivable messages back (Some(true): a dry run).
async fn list_or_redrive(
    cli: &Cli,
    dlq: &str,
    move_back: Option<bool>,
    only: &[String],
    all: bool,
) -> Result<(), LocalError> {
    let target = target(cli).await?;
    let (listed, chosen_ids) = judged(&target, dlq, only).await?;
    let chosen: Vec<&redrive::Listed> = listed
        .iter()
        .filter(|l| chosen_ids.contains(&l.message_id))
        .collect();
    eprintln!(
        "the DLQ holds {}{}: {}",
        plural(listed.len(), "message", "messages"),
        if only.is_empty() {
            String::new()
        } else {
            format!(", {} chosen by --only", chosen.len())
        },
        redrive::totals(&chosen)
    );
    // The ones that stay first: they need a person.
    let mut lines: Vec<&&redrive::Listed> = chosen.iter().collect();
    lines.sort_by_key(|l| (l.verdict.moves(), l.verdict));
    let shown = if all { lines.len() } else { LISTED_LINES };
    for l in lines.iter().take(shown) {
        eprintln!("{}", l.line());
    }
    if lines.len() > shown {
        eprintln!(
            "  ... and {} more (--all lists every one)",
            lines.len() - shown
        );
    }
    let moving: HashSet<String> = chosen
        .iter()
        .filter(|l| l.verdict.moves())
        .map(|l| l.message_id.clone())
        .collect();
    let dry_run = match move_back {
        None => return Ok(()),
        Some(dry_run) => dry_run,
    };
    if dry_run {
        eprintln!(
            "dry run: nothing moved; without --dry-run, the {} to redrive move back and the rest stay",
            moving.len()
        );
        return Ok(());
    }
    if moving.is_empty() {
        eprintln!("nothing to redrive");
        return Ok(());
    }
    let sqs = aws_sdk_sqs::Client::new(&target.config);
    let moved = redrive::act_on(
        &sqs,
        target.output("DeadLetterQueueUrl")?,
        &moving,
        redrive::Action::MoveTo(target.output("OrderQueueUrl")?),
    )
    .await?;
    if moved.len() < moving.len() {
        eprintln!(
            "{} of those to redrive were not moved: another reader held them, or they were deleted meanwhile; run again",
            moving.len() - moved.len()
        );
    }
    let left = listed.len().saturating_sub(moved.len());
    eprintln!(
        "moved {} back to the order queue; {} left in the DLQ{}",
        plural(moved.len(), "message", "messages"),
        left,
        if left > 0 {
            " (delete a message that would fail again with `delete --only MESSAGE_ID` once its cause is fixed)"
        } else {
            ""
        }
    );
    Ok(())
}

pub(super) async fn delete_from_dlq(
    cli: &Cli,
    dlq: &str,
    only: &[String],
) -> Result<(), LocalError> {
    let target = target(cli).await?;
    let (listed, chosen) = judged(&target, dlq, only).await?;
    for l in listed.iter().filter(|l| chosen.contains(&l.message_id)) {
        eprintln!("deleting{}", l.line());
    }
    let sqs = aws_sdk_sqs::Client::new(&target.config);
    let deleted = redrive::act_on(
        &sqs,
        dlq_url(&target, dlq)?,
        &chosen,
        redrive::Action::Delete,
    )
    .await?;
    if deleted.len() < chosen.len() {
        eprintln!(
            "{} of them were not deleted: another reader held them, or they were gone already; run again",
            chosen.len() - deleted.len()
        );
    }
    eprintln!(
        "deleted {} from the DLQ; {} left",
        plural(deleted.len(), "message", "messages"),
        listed.len().saturating_sub(deleted.len())
    );
    Ok(())
}
