//! The SQS adapters on a real SQS API (moto's server, started by each test on a free loopback
//! port): a visibility batch with one failed entry (the fault proxy's scripted faults: moto
//! itself never fails part of a call), and the emulator's redrive under concurrent receives.

#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;

use std::time::Duration;

use moto::{env, hold, send_messages, sqs_through, visible_and_hidden};

/// Protects: a visibility batch that SQS accepts with one entry failed is an error naming the
/// share that failed, for the DLQ snapshot's release and for a stage's backoff alike, never a
/// silent success (the failed message would stay hidden, or come back too early).
#[tokio::test]
async fn one_failed_entry_of_a_visibility_batch_is_an_error() {
    use order_local::faults::{FaultProxy, FaultRates, Scripted};
    use order_pipeline::adapters::sqs::{change_visibility, SqsVisibility};
    use order_pipeline::ports::queue::Visibility;
    let e = env("visfail").await;
    let queue = e.stack.queue_url.clone();
    send_messages(&e.clients, &queue, 3).await;
    let received = e
        .clients
        .sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .visibility_timeout(300)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 3);
    let receipts: Vec<&str> = received
        .iter()
        .filter_map(|m| m.receipt_handle.as_deref())
        .collect();
    let batch = "AmazonSQS.ChangeMessageVisibilityBatch".to_string();
    let proxy = FaultProxy::start_scripted(
        e.clients.endpoint.as_str(),
        FaultRates::none(),
        vec![
            Scripted::FailEntry {
                operation: batch.clone(),
                nth: 1,
                id: "1".into(),
            },
            Scripted::FailEntry {
                operation: batch,
                nth: 2,
                id: "0".into(),
            },
        ],
    )
    .await
    .unwrap();
    let sqs = sqs_through(&proxy).await;

    let err = change_visibility(&sqs, &queue, &receipts, 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 of 3 visibility changes failed"), "{err}");
    assert_eq!(
        visible_and_hidden(&e.clients, &queue).await,
        (2, 1),
        "the other two entries were applied"
    );

    let backoff = SqsVisibility::new(sqs, queue.clone());
    let err = backoff
        .delay(vec![(receipts[1].to_string(), Duration::from_secs(5))])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 of 1 visibility changes failed"), "{err}");
}

/// Protects local/moto_server.py's SQS receive: moto moves a message past maxReceiveCount to
/// the DLQ by taking it out of the queue's list without the lock its sends and (patched) deletes
/// take, so receives racing over the same message failed with a 500 (and the messages that
/// receive had just hidden stayed hidden, unreturned), and a delete meanwhile could put a moved
/// message back beside its DLQ copy. Here the order queue (maxReceiveCount 3) is drained by
/// consumers that give every message back at once, racing consumers that delete what they get:
/// every message ends deleted or in the DLQ, none in both, none twice, and no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receives_redrive_each_message_once_without_errors() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    let e = env("redriverace").await;
    // No retries: a 500 must show, not be retried away.
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&e._emulator.sdk_config().await)
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build(),
    );
    const N: usize = 1000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("m{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&e.stack.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let deleted = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..6)
        .map(|n| {
            let (sqs, url) = (sqs.clone(), e.stack.queue_url.clone());
            let (deleted, errors) = (deleted.clone(), errors.clone());
            let gives_back = n % 2 == 1;
            tokio::spawn(async move {
                let mut empty = 0;
                while empty < 3 {
                    let received = sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(0)
                        .visibility_timeout(if gives_back { 0 } else { 60 })
                        .send()
                        .await;
                    let messages = match received {
                        Ok(r) => r.messages.unwrap_or_default(),
                        Err(err) => {
                            errors.lock().unwrap().push(format!("receive: {err:?}"));
                            continue;
                        }
                    };
                    empty = if messages.is_empty() { empty + 1 } else { 0 };
                    if gives_back {
                        continue;
                    }
                    for m in messages {
                        match sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle.unwrap_or_default())
                            .send()
                            .await
                        {
                            Ok(_) => deleted.lock().unwrap().push(m.body.unwrap_or_default()),
                            Err(err) => errors.lock().unwrap().push(format!("delete: {err:?}")),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} calls failed, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        visible_and_hidden(&e.clients, &e.stack.queue_url).await,
        (0, 0),
        "the order queue is empty: every message was deleted or moved"
    );
    let mut in_dlq = Vec::new();
    loop {
        let got = hold(&sqs, &e.stack.dlq_url, 10).await;
        if got.is_empty() {
            break;
        }
        in_dlq.extend(got.into_iter().map(|m| m.body.unwrap_or_default()));
    }
    let deleted = deleted.lock().unwrap().clone();
    let (deleted_set, dlq_set): (HashSet<&String>, HashSet<&String>) =
        (deleted.iter().collect(), in_dlq.iter().collect());
    assert_eq!(deleted_set.len(), deleted.len(), "no message deleted twice");
    assert_eq!(dlq_set.len(), in_dlq.len(), "no message in the DLQ twice");
    assert!(
        deleted_set.is_disjoint(&dlq_set),
        "no message both deleted and in the DLQ: {:?}",
        deleted_set
            .intersection(&dlq_set)
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        deleted.len() + in_dlq.len(),
        N,
        "every message ends deleted or in the DLQ ({} deleted, {} in the DLQ)",
        deleted.len(),
        in_dlq.len()
    );
    assert!(
        !in_dlq.is_empty() && !deleted.is_empty(),
        "both ends were exercised"
    );
}
