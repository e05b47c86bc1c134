//! Publish a few thousand messages and consume them all with a `PullConsumer`.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no credentials in the environment it starts the crate's local emulator of the
//! Cloudflare Queues API, creates a queue and an HTTP pull consumer on it, and runs
//! there: no account needed. With `CLOUDFLARE_API_TOKEN`, `CLOUDFLARE_ACCOUNT_ID` and
//! `QUEUE_ID` (a queue that has an HTTP pull consumer) set, the same program runs against
//! Cloudflare. `QUICKSTART_MESSAGES` changes the count (default 4000).

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::Emulator;
use cloudflare_queues::models::{ContentType, Message};
use cloudflare_queues::{Client, QueueHandle};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Serialize, Deserialize)]
struct Order {
    id: u64,
    amount_cents: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: u64 = std::env::var("QUICKSTART_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);

    // 1. A queue with an HTTP pull consumer: on Cloudflare, or on a local emulator.
    let (queue, emulator) = match std::env::var("CLOUDFLARE_API_TOKEN") {
        Ok(_) => {
            let client = Client::from_env()?;
            let id = std::env::var("QUEUE_ID")
                .map_err(|_| "set QUEUE_ID to a queue with an HTTP pull consumer")?;
            println!("Running against Cloudflare, queue {id}");
            (client.queue(id), None)
        }
        Err(_) => {
            let emulator = Emulator::start().await?;
            println!(
                "No CLOUDFLARE_API_TOKEN set: using the local emulator at {}",
                emulator.base_url()
            );
            let client = emulator.client();
            let created = client.queues().create("quickstart").await?;
            let queue = client.queue(created.id());
            queue.consumers().create_http_pull().max_retries(3).await?;
            println!(
                "Created queue `quickstart` ({}) with an HTTP pull consumer",
                queue.id()
            );
            (queue, Some(emulator))
        }
    };

    // 2. Publish: half text, half JSON, in batches of up to 100 messages / 256 KB.
    let started = Instant::now();
    let requests = publish(&queue, total).await?;
    println!("Published {total} messages in {:.2?}", started.elapsed());
    println!("  {requests} batch requests");

    // 3. Consume with a PullConsumer: decode, check, ack. Stop once everything is acked.
    let consumer = queue
        .pull_consumer()
        .max_in_flight(500)
        .max_concurrent_pulls(4)
        .build()?;
    let shutdown = consumer.shutdown_handle();
    let (texts, orders, cents) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let progress = {
        let (shutdown, started) = (shutdown.clone(), Instant::now());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut last_print = Instant::now();
            loop {
                tick.tick().await;
                let s = shutdown.stats();
                if last_print.elapsed() >= Duration::from_millis(500) || s.acked >= total {
                    last_print = Instant::now();
                    println!(
                        "  consumed {:>6}/{total}  in flight {:>4}  pulls {:>4}  ack requests {:>4}",
                        s.acked, s.in_flight, s.pull_requests, s.ack_requests
                    );
                }
                if s.acked >= total {
                    let done = Instant::now();
                    shutdown
                        .shutdown(ShutdownMode::drain(Duration::from_secs(10)))
                        .await;
                    return done;
                }
                if started.elapsed() > Duration::from_secs(300) {
                    eprintln!("  giving up after 5 minutes");
                    shutdown.shutdown(ShutdownMode::ReleaseNow).await;
                    return Instant::now();
                }
            }
        })
    };
    let consume_started = Instant::now();
    let report = {
        let (texts, orders, cents) = (texts.clone(), orders.clone(), cents.clone());
        consumer
            .run(move |message| {
                let (texts, orders, cents) = (texts.clone(), orders.clone(), cents.clone());
                async move {
                    match message.content_type() {
                        ContentType::Text
                            if message.text().is_ok_and(|t| t.starts_with("hello #")) =>
                        {
                            texts.fetch_add(1, Ordering::Relaxed);
                            Outcome::Ack
                        }
                        ContentType::Json => match message.json::<Order>() {
                            Ok(order) => {
                                orders.fetch_add(1, Ordering::Relaxed);
                                cents.fetch_add(order.amount_cents, Ordering::Relaxed);
                                Outcome::Ack
                            }
                            Err(e) => {
                                eprintln!("  {e}");
                                Outcome::retry_after(Duration::from_secs(30))
                            }
                        },
                        // Not ours (or not decodable): leave it for another consumer.
                        _ => Outcome::Release,
                    }
                }
            })
            .await?
    };
    let elapsed = progress.await?.duration_since(consume_started);

    // 4. Summary.
    let stats = shutdown.stats();
    println!();
    println!("Summary");
    println!("  messages published     {total}");
    println!("  text messages acked    {}", texts.load(Ordering::Relaxed));
    println!(
        "  JSON orders acked      {} (total {} cents)",
        orders.load(Ordering::Relaxed),
        cents.load(Ordering::Relaxed)
    );
    #[allow(clippy::cast_precision_loss)]
    let rate = report.acked as f64 / elapsed.as_secs_f64();
    println!("  consumed in            {elapsed:.2?} ({rate:.0} messages/s)");
    println!(
        "  pull requests          {} ({} empty)",
        stats.pull_requests, stats.empty_pulls
    );
    println!(
        "  ack requests           {} ({:.1} messages per request)",
        stats.ack_requests,
        report.acked as f64 / stats.ack_requests.max(1) as f64
    );
    println!("  report                 {report:?}");
    if let Some(emulator) = &emulator {
        let ledger = emulator.messages(queue.id());
        let acked_once = ledger.iter().filter(|m| m.acks == 1).count();
        println!(
            "  emulator ledger        {acked_once} of {} messages acknowledged exactly once",
            ledger.len()
        );
        println!("  requests served        {}", emulator.total_requests());
    }
    if report.acked != total || !report.is_balanced() {
        return Err(format!("expected {total} acks, got {report:?}").into());
    }
    println!("All {total} messages consumed and acknowledged.");
    println!();
    println!("What next");
    println!("  cargo run --example pull_consumer   a daemon that drains on SIGINT/SIGTERM");
    println!(
        "  cargo run --features emulator --bin cloudflare-queues-emulator   the emulator as a program, for curl and other languages"
    );
    println!("  https://docs.rs/cloudflare-queues   the API documentation (or: cargo doc --open)");
    Ok(())
}

/// Publishes `total` messages with one `send_batch`; returns the requests it took.
async fn publish(queue: &QueueHandle, total: u64) -> cloudflare_queues::Result<usize> {
    let messages = (0..total).map(|i| {
        if i % 2 == 0 {
            Ok(Message::text(format!("hello #{i}")))
        } else {
            Message::json(&Order {
                id: i,
                amount_cents: 100 + i % 900,
            })
        }
    });
    let messages = messages.collect::<cloudflare_queues::Result<Vec<_>>>()?;
    let receipt = queue.send_batch(messages).await?;
    Ok(receipt.requests)
}
