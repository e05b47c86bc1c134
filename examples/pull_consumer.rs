//! A pull-consumer daemon: consumes until SIGINT or SIGTERM, then drains (running
//! handlers finish, every ack is flushed, the rest is released) and exits.
//!
//! ```text
//! cargo run --example pull_consumer                      # against the local emulator
//! CLOUDFLARE_API_TOKEN=... CLOUDFLARE_ACCOUNT_ID=... QUEUE_ID=... cargo run --example pull_consumer
//! ```
//!
//! Without credentials it starts the local emulator and a producer that publishes a
//! message every few milliseconds, so there is something to consume. Settings come from
//! the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CONSUMER_MAX_IN_FLIGHT` | 64 | handlers running at once |
//! | `CONSUMER_VISIBILITY_SECS` | 60 | lease per message: how soon a crashed worker's messages come back (running jobs' leases are extended) |
//! | `CONSUMER_MAX_LEASE_SECS` | 3600 | longest a job may hold its message; set it above your slowest job |
//! | `CONSUMER_BATCH_SIZE` | 100 | messages per pull |
//! | `CONSUMER_DRAIN_SECS` | 30 | how long running jobs may take at shutdown |
//! | `RUST_LOG` | `info` | log filter |

use cloudflare_queues::consumer::{ReceivedMessage, ShutdownMode};
use cloudflare_queues::emulator::Emulator;
use cloudflare_queues::models::Message;
use cloudflare_queues::{Client, QueueHandle};
use std::time::Duration;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The work: here, parse and pretend to process for a few milliseconds.
async fn process(message: ReceivedMessage) -> Result<(), String> {
    let job: serde_json::Value = message.json().map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    tracing::debug!(id = message.id(), attempts = message.attempts(), %job, "processed");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let (queue, _emulator) = connect().await?;
    let consumer = queue
        .pull_consumer()
        .max_in_flight(env_or("CONSUMER_MAX_IN_FLIGHT", 64))
        // Short: running jobs keep their leases through extension, and a crash costs
        // only this long before the messages come back.
        .visibility_timeout(Duration::from_secs(env_or("CONSUMER_VISIBILITY_SECS", 60)))
        .max_lease(Duration::from_secs(env_or("CONSUMER_MAX_LEASE_SECS", 3600)))
        .batch_size(env_or("CONSUMER_BATCH_SIZE", 100))
        .build()?;

    let drain = ShutdownMode::drain(Duration::from_secs(env_or("CONSUMER_DRAIN_SECS", 30)));
    let shutdown = consumer.shutdown_handle();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("signal received; draining");
            shutdown.shutdown(drain).await;
        }
    });
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            every.tick().await;
            loop {
                every.tick().await;
                let s = shutdown.stats();
                tracing::info!(state = ?s.state, acked = s.acked, retried = s.retried, in_flight = s.in_flight, leases_extended = s.leases_extended, extension_active = s.extension_active, backlog = ?s.backlog, "stats");
            }
        }
    });

    tracing::info!(queue = queue.id(), "consuming; press Ctrl-C to stop");
    // `Ok` acks; `Err` is logged and retried after the consumer's retry delay.
    let report = consumer.run(process).await?;
    tracing::info!(?report, "stopped");
    Ok(())
}

/// Cloudflare when credentials are set; otherwise the emulator plus a small producer.
async fn connect() -> Result<(QueueHandle, Option<Emulator>), Box<dyn std::error::Error>> {
    if std::env::var("CLOUDFLARE_API_TOKEN").is_ok() {
        let client = Client::from_env()?;
        let id = std::env::var("QUEUE_ID")
            .map_err(|_| "set QUEUE_ID to a queue with an HTTP pull consumer")?;
        return Ok((client.queue(id), None));
    }
    let emulator = Emulator::start().await?;
    tracing::info!(base_url = %emulator.base_url(), "no CLOUDFLARE_API_TOKEN: using the local emulator");
    let client = emulator.client();
    let created = client.queues().create("jobs").await?;
    let queue = client.queue(created.queue_id.unwrap_or_default());
    queue.consumers().create_http_pull().max_retries(5).await?;
    let producer = queue.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let batch = (0..20).map(|i| Message::json_value(serde_json::json!({"job": n + i})));
            if let Err(e) = producer.send_batch(batch.collect::<Vec<_>>()).await {
                tracing::warn!(error = %e, "producer failed");
            }
            n += 20;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    Ok((queue, Some(emulator)))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
