//! React to R2 uploads: a `PullConsumer` reads the messages an R2 bucket's event
//! notification rule (and an event subscription) put on a queue, and handles each by
//! its typed body.
//!
//! ```text
//! cargo run --example events
//! ```
//!
//! With no credentials in the environment it starts the crate's local emulator, creates
//! a queue with an HTTP pull consumer, seeds it with messages shaped like the ones R2
//! and event subscriptions send (uploads, a copy, deletes, a bucket-created event and
//! one stray message), consumes them all and stops. No account needed.
//!
//! Against Cloudflare: set `CLOUDFLARE_API_TOKEN`, `CLOUDFLARE_ACCOUNT_ID` and
//! `QUEUE_ID` (a queue with an HTTP pull consumer that a bucket notifies, e.g. after
//! `wrangler r2 bucket notification create <bucket> --event-type object-create --queue
//! <queue>`); it then runs until Ctrl-C.

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, SeedMessage};
use cloudflare_queues::events::{Event, EventPayload, R2Action, R2Notification};
use cloudflare_queues::{Client, QueueHandle};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the handler did, for the summary.
#[derive(Debug, Default)]
struct Tally {
    uploads: Vec<String>,
    upload_bytes: u64,
    removed: Vec<String>,
    other_events: Vec<String>,
    unreadable: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. A queue with an HTTP pull consumer: on Cloudflare, or seeded on the emulator.
    let (queue, emulator, seeded) = match std::env::var("CLOUDFLARE_API_TOKEN") {
        Ok(_) => {
            let client = Client::from_env()?;
            let id = std::env::var("QUEUE_ID")
                .map_err(|_| "set QUEUE_ID to a queue with an HTTP pull consumer")?;
            println!("Running against Cloudflare, queue {id}; Ctrl-C to stop");
            (client.queue(id), None, None)
        }
        Err(_) => {
            let emulator = Emulator::start().await?;
            println!("No CLOUDFLARE_API_TOKEN set: using the local emulator");
            let queue = emulated_queue(&emulator).await?;
            let bodies = sample_messages();
            let count = bodies.len() as u64;
            let seeds = bodies
                .iter()
                .map(SeedMessage::json)
                .collect::<cloudflare_queues::Result<Vec<_>>>()?;
            emulator.seed(queue.id(), seeds)?;
            println!("Seeded {count} notification messages into `uploads`");
            (queue, Some(emulator), Some(count))
        }
    };

    // 2. Consume: every message is an R2 notification, a subscription event, or neither.
    let consumer = queue.pull_consumer().max_in_flight(32).build()?;
    let shutdown = consumer.shutdown_handle();
    let stopper = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match seeded {
                // On the emulator: stop once every seeded message has been settled.
                Some(total) => {
                    let started = Instant::now();
                    while {
                        let s = shutdown.stats();
                        s.acked + s.retried < total
                    } && started.elapsed() < Duration::from_secs(60)
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            shutdown
                .shutdown(ShutdownMode::drain(Duration::from_secs(10)))
                .await;
        })
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let report = {
        let tally = tally.clone();
        consumer
            .run(move |message| {
                let tally = tally.clone();
                async move {
                    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                    if let Ok(note) = message.json::<R2Notification>() {
                        on_object_change(&note, &mut tally);
                    } else if let Ok(event) = message.json::<Event>() {
                        on_event(&event, &mut tally);
                    } else {
                        // Neither: retrying will not help, so let max_retries move it to
                        // the dead-letter queue (if one is set) instead of losing it.
                        println!("  ? unreadable message {}", message.id());
                        tally.unreadable += 1;
                        return Outcome::retry_after(Duration::from_secs(60));
                    }
                    Outcome::Ack
                }
            })
            .await?
    };
    stopper.await?;

    // 3. Summary.
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    println!();
    println!(
        "Uploads handled: {} ({} bytes): {:?}",
        tally.uploads.len(),
        tally.upload_bytes,
        tally.uploads
    );
    println!("Objects removed: {:?}", tally.removed);
    println!("Other events:    {:?}", tally.other_events);
    println!("Unreadable:      {}", tally.unreadable);
    println!("Report:          {report:?}");
    if let (Some(emulator), Some(total)) = (&emulator, seeded) {
        let acked = emulator.acked_ids(queue.id()).len() as u64;
        if acked + u64::from(tally.unreadable) != total || !report.is_balanced() {
            return Err(format!("expected {total} messages settled, {acked} acked").into());
        }
        println!("All {total} seeded messages handled.");
    }
    Ok(())
}

/// An upload gets "processed" (here: printed and counted); a delete forgets the object.
fn on_object_change(note: &R2Notification, tally: &mut Tally) {
    let key = &note.object.key;
    match &note.action {
        action if action.is_object_create() => {
            let size = note.object.size.unwrap_or(0);
            let how = match (action, &note.copy_source) {
                (R2Action::CopyObject, Some(from)) => format!(
                    "copied from {}/{}",
                    from.bucket.as_deref().unwrap_or("?"),
                    from.object.as_deref().unwrap_or("?")
                ),
                (R2Action::CompleteMultipartUpload, _) => "multipart upload".to_owned(),
                _ => "upload".to_owned(),
            };
            println!(
                "  + {}/{key} ({size} bytes, {how}): making a thumbnail",
                note.bucket
            );
            tally.uploads.push(key.clone());
            tally.upload_bytes += size;
        }
        action if action.is_object_delete() => {
            println!(
                "  - {}/{key} ({action}): dropping its thumbnail",
                note.bucket
            );
            tally.removed.push(key.clone());
        }
        other => println!("  ~ {}/{key}: {other}, nothing to do", note.bucket),
    }
}

/// Account-level events from an event subscription.
fn on_event(event: &Event, tally: &mut Tally) {
    match &event.payload {
        EventPayload::R2BucketCreated(bucket) => println!(
            "  * bucket {} created in {}",
            bucket.name.as_deref().unwrap_or("?"),
            bucket.location.as_deref().unwrap_or("?")
        ),
        EventPayload::Unknown(_) => println!("  * {} (not typed by this crate)", event.event_type),
        _ => println!("  * {}", event.event_type),
    }
    tally.other_events.push(event.event_type.clone());
}

async fn emulated_queue(emulator: &Emulator) -> cloudflare_queues::Result<QueueHandle> {
    let client = emulator.client();
    let created = client.queues().create("uploads").await?;
    let queue = client.queue(created.id());
    queue.consumers().create_http_pull().max_retries(3).await?;
    Ok(queue)
}

/// Messages shaped like the ones R2 event notifications and event subscriptions send.
fn sample_messages() -> Vec<Value> {
    let account = "3f4b7e3dcab231cbfdaa90a6a28bd548";
    let note = |action: &str, object: Value| {
        json!({
            "account": account, "action": action, "bucket": "photos", "object": object,
            "eventTime": "2026-11-20T09:30:00.000Z"
        })
    };
    let tabby = json!({"key": "cats/tabby.jpg", "size": 48_213, "eTag": "9b2cf535f27731c974343645a3985328"});
    let mut copy = note(
        "CopyObject",
        json!({"key": "cats/tabby-copy.jpg", "size": 48_213, "eTag": "9b2cf535f27731c974343645a3985328"}),
    );
    copy["copySource"] = json!({"bucket": "photos", "object": "cats/tabby.jpg"});
    vec![
        note("PutObject", tabby),
        note(
            "CompleteMultipartUpload",
            json!({"key": "videos/holiday.mp4", "size": 734_003_200, "eTag": "c1d5e2f9a0b3c4d5e6f7a8b9c0d1e2f3-14"}),
        ),
        copy,
        // Deletions carry no size or eTag.
        note("DeleteObject", json!({"key": "cats/old.jpg"})),
        note("LifecycleDeletion", json!({"key": "tmp/upload-42.part"})),
        json!({
            "type": "cf.r2.bucket.created",
            "source": {"type": "r2"},
            "payload": {"name": "photos-archive", "jurisdiction": "default", "location": "WEUR", "storageClass": "Standard"},
            "metadata": {
                "accountId": account, "eventSubscriptionId": "1830c4bb612e43c3af7f4cada31fbf3f",
                "eventSchemaVersion": 1, "eventTimestamp": "2026-11-20T09:31:00.000Z"
            }
        }),
        json!({"hello": "not a notification"}),
    ]
}
