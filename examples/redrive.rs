//! Move a dead-letter queue's messages back to the queue they came from, once the bug
//! that sent them there is fixed.
//!
//! ```text
//! cargo run --example redrive
//! ```
//!
//! With no credentials in the environment it plays the whole story on the crate's local
//! emulator: a `jobs` queue whose consumer fails some messages until they are
//! dead-lettered to `jobs-dlq`, then the redrive, then a check that every message is back
//! in `jobs` and none is left in `jobs-dlq`. With `CLOUDFLARE_API_TOKEN`,
//! `CLOUDFLARE_ACCOUNT_ID`, `SOURCE_QUEUE_ID` (the dead-letter queue; it needs an HTTP
//! pull consumer) and `TARGET_QUEUE_ID` set, it redrives those queues on Cloudflare.
//! `REDRIVE_MAX` bounds the messages moved.

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, MessageState};
use cloudflare_queues::models::Message;
use cloudflare_queues::{Client, QueueHandle};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let max: Option<u64> = std::env::var("REDRIVE_MAX")
        .ok()
        .and_then(|v| v.parse().ok());
    if std::env::var("CLOUDFLARE_API_TOKEN").is_ok() {
        let client = Client::from_env()?;
        let source = client.queue(std::env::var("SOURCE_QUEUE_ID")?);
        let target = client.queue(std::env::var("TARGET_QUEUE_ID")?);
        redrive(&source, &target, max).await?;
        return Ok(());
    }

    let emulator = Emulator::start().await?;
    println!(
        "No CLOUDFLARE_API_TOKEN set: using the local emulator at {}",
        emulator.base_url()
    );
    let client = emulator.client();
    let jobs = client.queue(
        client
            .queues()
            .create("jobs")
            .await?
            .queue_id
            .unwrap_or_default(),
    );
    jobs.consumers()
        .create_http_pull()
        .max_retries(1)
        .retry_delay(Duration::ZERO)
        .dead_letter_queue("jobs-dlq")
        .await?;

    // 1. A bad deploy: every job whose number ends in 7 fails, and is dead-lettered.
    let publisher = jobs.publisher().build()?;
    let pending: Vec<_> = (0..1_000u32)
        .map(|n| publisher.publish(Message::json_value(serde_json::json!({ "job": n }))))
        .collect();
    for result in futures::future::join_all(pending).await {
        result?;
    }
    consume(&jobs, |job| job % 10 != 7, 900).await?;
    emulator.advance(Duration::from_secs(1)); // dead letters move on the next tick
    let dlq_id = emulator
        .queue_id("jobs-dlq")
        .ok_or("no dead-letter queue")?;
    let dlq = client.queue(dlq_id);
    println!(
        "bad deploy: {} jobs dead-lettered to jobs-dlq",
        emulator.dead_lettered_ids(jobs.id()).len()
    );

    // 2. The fix is out. Pull from the DLQ (it needs an HTTP pull consumer) and redrive.
    dlq.consumers().create_http_pull().await?;
    let report = redrive(&dlq, &jobs, max).await?;

    // 3. The fixed consumer takes the moved jobs; nothing is left in the DLQ.
    consume(&jobs, |_| true, report.moved).await?;
    let left = emulator
        .messages(dlq.id())
        .iter()
        .filter(|m| m.state != MessageState::Acked)
        .count();
    println!("left in jobs-dlq: {left}");
    if max.is_none() && left != 0 {
        return Err("messages were left behind".into());
    }
    Ok(())
}

/// The redrive itself: what this example is about.
async fn redrive(
    source: &QueueHandle,
    target: &QueueHandle,
    max: Option<u64>,
) -> Result<cloudflare_queues::publisher::RedriveReport, Box<dyn std::error::Error>> {
    let mut redrive = source
        .redrive_to(target)
        // A little under the 5,000 messages per second a queue takes.
        .publisher(|p| p.rate_limit(4_900))
        .on_progress(|p| println!("  … {} moved of {} pulled", p.moved, p.pulled));
    if let Some(max) = max {
        redrive = redrive.max_messages(max);
    }
    let report = redrive.await?;
    println!(
        "redrive: moved {} ({} possibly duplicated), failed {}, skipped {}, {} publish requests, {:.2?}",
        report.moved,
        report.possibly_duplicated,
        report.failed,
        report.skipped,
        report.publisher.requests,
        report.elapsed
    );
    if let Some(err) = report.error {
        return Err(err.into());
    }
    Ok(report)
}

/// Runs a consumer that acks the jobs `ok` accepts and fails the rest, until `done`
/// messages were acked.
async fn consume(
    queue: &QueueHandle,
    ok: fn(u64) -> bool,
    done: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let consumer = queue.pull_consumer().max_in_flight(500).build()?;
    let shutdown = consumer.shutdown_handle();
    let acked = Arc::new(AtomicU64::new(0));
    let task = {
        let acked = acked.clone();
        tokio::spawn(consumer.run(move |message| {
            let acked = acked.clone();
            async move {
                let job = message
                    .json::<serde_json::Value>()
                    .ok()
                    .and_then(|v| v["job"].as_u64());
                match job {
                    Some(job) if ok(job) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        Outcome::Ack
                    }
                    _ => Outcome::retry_after(Duration::ZERO),
                }
            }
        }))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while shutdown.stats().acked < done {
        if tokio::time::Instant::now() > deadline {
            return Err("the consumer did not finish within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown
        .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
        .await;
    task.await??;
    Ok(())
}
