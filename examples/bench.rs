//! Throughput benchmark: the PullConsumer against a sequential baseline, in one process,
//! against the local emulator.
//!
//! ```text
//! cargo run --release --example bench -- [--latency-ms 50] [--messages 20000] [--rate-limit 5000]
//!     [--handler-ms 3000 --visibility-ms 1000 --max-in-flight 500]
//! cargo run --release --example bench -- --publish [--rate-limit 5000] [--publisher-rate-limit 4900]
//! ```
//!
//! * `--latency-ms`: latency the emulator adds to every request (default 50).
//! * `--messages`: messages per phase, 1 KB each (default 20000).
//! * `--rate-limit`: the emulator's per-queue message-rate ceiling (default none;
//!   Cloudflare's is 5000 messages per second).
//! * `--handler-ms`: each handler sleeps this long (a long job). With it only the
//!   consumer phase runs (no sequential baseline), and what matters is lease extension:
//!   redeliveries, lease expiries and extension requests per message.
//! * `--visibility-ms`, `--max-in-flight`: the consumer's visibility timeout (default
//!   60000) and handler concurrency (default 1000).
//! * `--no-lease-extension`: turn lease extension off, to see what it saves.
//! * `--publish`: run the publish phases instead (`send` per message, then one
//!   `Publisher`; see `examples/support/publish_bench.rs`).
//! * `--publisher-rate-limit`: the Publisher's own rate limit in the publish phase.
//!
//! The baseline is the loop Cloudflare's pull-consumer guide describes, written with this
//! crate's low-level calls: pull 100, process, ack them, repeat. The consumer phase uses
//! the settings README.md recommends. Both decode and check every body. The last line
//! printed is one JSON object with the figures.

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, Latency, SeedMessage};
use cloudflare_queues::{QueueHandle, ops};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/publish_bench.rs"]
mod publish_bench;

struct Args {
    latency_ms: u64,
    messages: usize,
    rate_limit: Option<u32>,
    handler_ms: Option<u64>,
    visibility_ms: u64,
    max_in_flight: u32,
    lease_extension: bool,
    publish: bool,
    publisher_rate_limit: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        latency_ms: 50,
        messages: 20_000,
        rate_limit: None,
        handler_ms: None,
        visibility_ms: 60_000,
        max_in_flight: 1000,
        lease_extension: true,
        publish: false,
        publisher_rate_limit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--latency-ms" => {
                args.latency_ms = value()?.parse().map_err(|e| format!("--latency-ms: {e}"))?
            }
            "--messages" => {
                args.messages = value()?.parse().map_err(|e| format!("--messages: {e}"))?
            }
            "--rate-limit" => {
                let v = value()?;
                args.rate_limit = if v == "none" {
                    None
                } else {
                    Some(v.parse().map_err(|e| format!("--rate-limit: {e}"))?)
                };
            }
            "--handler-ms" => {
                args.handler_ms = Some(value()?.parse().map_err(|e| format!("--handler-ms: {e}"))?);
            }
            "--visibility-ms" => {
                args.visibility_ms = value()?
                    .parse()
                    .map_err(|e| format!("--visibility-ms: {e}"))?
            }
            "--no-lease-extension" => args.lease_extension = false,
            "--max-in-flight" => {
                args.max_in_flight = value()?
                    .parse()
                    .map_err(|e| format!("--max-in-flight: {e}"))?
            }
            "--publish" => args.publish = true,
            "--publisher-rate-limit" => {
                args.publisher_rate_limit = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--publisher-rate-limit: {e}"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown flag {other}; flags: --latency-ms N --messages N --rate-limit N|none --handler-ms N --visibility-ms N --max-in-flight N --no-lease-extension --publish --publisher-rate-limit N"
                ));
            }
        }
    }
    Ok(args)
}

/// A 1 KB body that names its message, so every delivery can be checked.
fn body(i: usize) -> String {
    let head = format!("message {i:08} ");
    format!("{head}{}", "x".repeat(1000 - head.len()))
}

fn check(text: &str) -> bool {
    text.len() == 1000 && text.starts_with("message ")
}

async fn fresh_queue(
    emu: &Emulator,
    name: &str,
    n: usize,
) -> Result<QueueHandle, Box<dyn std::error::Error>> {
    let client = emu.client();
    let created = client.queues().create(name).await?;
    let queue = client.queue(created.queue_id.unwrap_or_default());
    queue.consumers().create_http_pull().await?;
    // Seeded directly: publishing is not what is measured.
    emu.seed(queue.id(), (0..n).map(|i| SeedMessage::text(body(i))))?;
    Ok(queue)
}

struct Phase {
    msgs_per_s: f64,
    requests: u64,
    acked: usize,
    lost: usize,
    duplicates: u64,
    elapsed: Duration,
    /// Deliveries beyond the first, summed over messages (the emulator's ledger).
    redeliveries: u64,
    /// Leases that ran out (the emulator's ledger).
    lease_expiries: u64,
    /// Lease extension requests made during the phase.
    extend_requests: u64,
}

fn requests(emu: &Emulator) -> u64 {
    emu.requests(&ops::PULL_MESSAGES) + emu.requests(&ops::ACK_MESSAGES)
}

fn outcome(
    emu: &Emulator,
    queue: &QueueHandle,
    elapsed: Duration,
    requests: u64,
    duplicates: u64,
) -> Phase {
    let ledger = emu.messages(queue.id());
    let acked = ledger.iter().filter(|m| m.acks == 1).count();
    #[allow(clippy::cast_precision_loss)]
    let msgs_per_s = acked as f64 / elapsed.as_secs_f64();
    Phase {
        msgs_per_s,
        requests,
        acked,
        lost: ledger.len() - acked,
        duplicates,
        elapsed,
        redeliveries: ledger
            .iter()
            .map(|m| u64::from(m.deliveries.saturating_sub(1)))
            .sum(),
        lease_expiries: ledger.iter().map(|m| u64::from(m.expiries)).sum(),
        extend_requests: emu.requests(&ops::EXTEND_LEASES),
    }
}

/// Pull 100, process, ack, repeat: one request in flight at a time.
async fn baseline(emu: &Emulator, n: usize) -> Result<Phase, Box<dyn std::error::Error>> {
    let queue = fresh_queue(emu, "baseline", n).await?;
    let before = requests(emu);
    let started = Instant::now();
    let mut done = 0;
    let mut seen: HashMap<String, u32> = HashMap::with_capacity(n);
    while done < n {
        let batch = queue
            .pull()
            .batch_size(100)
            .visibility_timeout(Duration::from_secs(60))
            .await?;
        let mut ack = queue.ack();
        for m in &batch.messages {
            if !check(&m.text()?) {
                return Err(format!("bad body in {}", m.id).into());
            }
            *seen.entry(m.id.clone()).or_default() += 1;
            ack = ack.ack(m.lease_id.clone());
        }
        done += batch.messages.len();
        ack.await?;
    }
    let elapsed = started.elapsed();
    let duplicates = seen.values().map(|c| u64::from(c - 1)).sum();
    Ok(outcome(
        emu,
        &queue,
        elapsed,
        requests(emu) - before,
        duplicates,
    ))
}

/// The PullConsumer with README.md's recommended settings for fast handlers (or, with
/// `--handler-ms`, for long jobs: each handler sleeps that long).
async fn consumer(emu: &Emulator, args: &Args) -> Result<Phase, Box<dyn std::error::Error>> {
    let n = args.messages;
    let queue = fresh_queue(emu, "consumer", n).await?;
    let before = requests(emu);
    let consumer = queue
        .pull_consumer()
        .batch_size(100)
        .visibility_timeout(Duration::from_millis(args.visibility_ms))
        .max_in_flight(args.max_in_flight)
        .max_concurrent_pulls(8)
        .lease_extension(args.lease_extension)
        .build()?;
    let job = args.handler_ms.map(Duration::from_millis);
    let handle = consumer.shutdown_handle();
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::new(Mutex::new(HashMap::with_capacity(n)));
    let started = Instant::now();
    let task = {
        let seen = seen.clone();
        tokio::spawn(consumer.run(move |m| {
            let seen = seen.clone();
            async move {
                if !m.text().is_ok_and(|t| check(&t)) {
                    return Outcome::Release;
                }
                if let Some(job) = job {
                    tokio::time::sleep(job).await;
                }
                if let Ok(mut seen) = seen.lock() {
                    *seen.entry(m.id().to_owned()).or_default() += 1;
                }
                Outcome::Ack
            }
        }))
    };
    // Done when the server has confirmed every ack.
    while handle.stats().acked < n as u64 {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("consumer phase took over 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let used = requests(emu) - before;
    let report = handle
        .shutdown(ShutdownMode::drain(Duration::from_secs(10)))
        .await;
    task.await??;
    if !report.is_balanced() {
        return Err(format!("unbalanced report: {report:?}").into());
    }
    let stats = handle.stats();
    println!(
        "  consumer: {} pulls ({} empty, {} failed), {} ack requests ({} failed), {} extension requests ({} leases extended)",
        stats.pull_requests,
        stats.empty_pulls,
        stats.pull_errors,
        stats.ack_requests,
        stats.ack_request_failures,
        stats.extension_requests,
        stats.leases_extended
    );
    let duplicates = seen
        .lock()
        .map(|s| s.values().map(|c| u64::from(c - 1)).sum())
        .unwrap_or(0);
    Ok(outcome(emu, &queue, elapsed, used, duplicates))
}

/// Peak resident set size of this process (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let n = args.messages;
    let emu = Emulator::builder()
        .latency(Latency::fixed(Duration::from_millis(args.latency_ms)))
        .rate_limit(args.rate_limit)
        .start()
        .await?;
    println!(
        "bench: {n} messages of 1 KB per phase, {} ms added latency, rate limit {}",
        args.latency_ms,
        args.rate_limit
            .map_or("none".to_owned(), |r| format!("{r} msg/s"))
    );
    if args.publish {
        let publish = publish_bench::PublishArgs {
            latency_ms: args.latency_ms,
            rate_limit: args.rate_limit,
            publisher_rate_limit: args.publisher_rate_limit,
            messages: n,
        };
        return publish_bench::run(&emu, &publish).await;
    }

    // With long handlers only the consumer runs: the sequential loop would take hours.
    let base = match args.handler_ms {
        Some(_) => None,
        None => {
            let base = baseline(&emu, n).await?;
            println!(
                "  baseline (pull 100 / process / ack, sequential): {:.0} msg/s, {} requests, {:.2?}",
                base.msgs_per_s, base.requests, base.elapsed
            );
            Some(base)
        }
    };
    let cons = consumer(&emu, &args).await?;
    #[allow(clippy::cast_precision_loss)]
    let per_message = cons.requests as f64 / n as f64;
    #[allow(clippy::cast_precision_loss)]
    let extend_per_message = cons.extend_requests as f64 / n as f64;
    println!(
        "  PullConsumer: {:.0} msg/s, {} requests ({per_message:.4} per message), {:.2?}",
        cons.msgs_per_s, cons.requests, cons.elapsed
    );
    println!(
        "  leases: {} redeliveries, {} expiries, {} extension requests ({extend_per_message:.4} per message)",
        cons.redeliveries, cons.lease_expiries, cons.extend_requests
    );
    let speedup = base.as_ref().map(|b| cons.msgs_per_s / b.msgs_per_s);
    let rss = peak_rss_mb().unwrap_or(-1.0);
    println!(
        "  speedup {}; acked {}, lost {}, duplicates {}; peak RSS {rss:.1} MB",
        speedup.map_or("n/a".to_owned(), |s| format!("{s:.1}x")),
        cons.acked,
        cons.lost,
        cons.duplicates
    );
    let num =
        |v: Option<f64>, digits: usize| v.map_or("null".to_owned(), |v| format!("{v:.digits$}"));
    // Keys in the documented order (serde_json would sort them). Keys are only ever
    // added, never renamed.
    let json = format!(
        concat!(
            r#"{{"latency_ms":{},"rate_limit":{},"messages":{},"baseline_msgs_per_s":{},"#,
            r#""consumer_msgs_per_s":{:.0},"speedup":{},"requests_per_message":{:.4},"#,
            r#""acked":{},"lost":{},"duplicates":{},"peak_rss_mb":{:.1},"#,
            r#""handler_ms":{},"visibility_ms":{},"max_in_flight":{},"#,
            r#""redeliveries":{},"lease_expiries":{},"extend_requests_per_message":{:.4}}}"#
        ),
        args.latency_ms,
        args.rate_limit.map_or("null".to_owned(), |r| r.to_string()),
        n,
        num(base.as_ref().map(|b| b.msgs_per_s), 0),
        cons.msgs_per_s,
        num(speedup, 1),
        per_message,
        cons.acked,
        cons.lost,
        cons.duplicates,
        rss,
        args.handler_ms.map_or("null".to_owned(), |h| h.to_string()),
        args.visibility_ms,
        args.max_in_flight,
        cons.redeliveries,
        cons.lease_expiries,
        extend_per_message,
    );
    // The line must stay valid JSON.
    debug_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    println!("{json}");
    Ok(())
}
