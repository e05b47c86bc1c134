//! The benchmark's publish phase (`--publish`), included by `examples/bench.rs`.
//!
//! 1,000 tasks publish 20,000 messages of 1 KB: each task publishes its 20 messages, then
//! awaits their results together. First with `send`, one request per message, as the
//! official SDKs publish; then through one `Publisher` with default settings (plus
//! `--publisher-rate-limit`). Each phase has a queue of its own, so the emulator's
//! per-queue ceiling (`--rate-limit`) applies to each alone. Lost and duplicated
//! messages are counted from the emulator's ledger, by body.
//!
//! The baseline's tasks send their messages one after another: 20,000 requests at once
//! would need 40,000 sockets in this one process (client and emulator), over the usual
//! file limit. That is 1,000 requests in flight, as many as there are tasks.

use cloudflare_queues::emulator::Emulator;
use cloudflare_queues::models::Message;
use cloudflare_queues::{QueueHandle, ops};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const TASKS: usize = 1_000;

/// The publish phase's settings.
pub struct PublishArgs {
    pub latency_ms: u64,
    pub rate_limit: Option<u32>,
    pub publisher_rate_limit: Option<u32>,
    pub messages: usize,
}

/// A 1 KB body that names its message.
fn body(i: usize) -> String {
    let head = format!("publish {i:08} ");
    format!("{head}{}", "x".repeat(1000 - head.len()))
}

struct Phase {
    msgs_per_s: f64,
    requests: u64,
    errors: usize,
    lost: usize,
    duplicates: usize,
    elapsed: Duration,
}

/// Lost and duplicated messages, by body, from the ledger.
fn ledger_check(emu: &Emulator, queue: &QueueHandle, n: usize) -> (usize, usize) {
    let mut copies: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for m in emu.messages(queue.id()) {
        *copies.entry(m.body).or_default() += 1;
    }
    let expected: HashSet<Vec<u8>> = (0..n).map(|i| body(i).into_bytes()).collect();
    let lost = expected.iter().filter(|b| !copies.contains_key(*b)).count();
    let duplicates = copies.values().map(|c| c - 1).sum();
    (lost, duplicates)
}

async fn fresh_queue(
    emu: &Emulator,
    name: &str,
) -> Result<QueueHandle, Box<dyn std::error::Error>> {
    let client = emu.client();
    let created = client.queues().create(name).await?;
    Ok(client.queue(created.queue_id.unwrap_or_default()))
}

#[allow(clippy::cast_precision_loss)]
fn phase(
    emu: &Emulator,
    queue: &QueueHandle,
    n: usize,
    errors: usize,
    requests: u64,
    elapsed: Duration,
) -> Phase {
    let (lost, duplicates) = ledger_check(emu, queue, n);
    let stored = n - lost;
    Phase {
        msgs_per_s: stored as f64 / elapsed.as_secs_f64(),
        requests,
        errors,
        lost,
        duplicates,
        elapsed,
    }
}

/// One `send` per message; each task sends its messages one after another.
async fn baseline(emu: &Emulator, n: usize) -> Result<Phase, Box<dyn std::error::Error>> {
    let queue = fresh_queue(emu, "publish-baseline").await?;
    let per_task = n.div_ceil(TASKS);
    let before = emu.requests(&ops::PUSH_MESSAGE);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = 0;
            for i in (t * per_task..(t + 1) * per_task).filter(|i| *i < n) {
                if queue.send(body(i)).await.is_err() {
                    errors += 1;
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await?;
    }
    let elapsed = started.elapsed();
    let requests = emu.requests(&ops::PUSH_MESSAGE) - before;
    Ok(phase(emu, &queue, n, errors, requests, elapsed))
}

/// One Publisher with default settings; each task publishes its messages, then awaits
/// their results together.
async fn publisher(
    emu: &Emulator,
    n: usize,
    rate_limit: Option<u32>,
) -> Result<(Phase, f64), Box<dyn std::error::Error>> {
    let queue = fresh_queue(emu, "publish-publisher").await?;
    let mut builder = queue.publisher();
    if let Some(r) = rate_limit {
        builder = builder.rate_limit(r);
    }
    let publisher = builder.build()?;
    let per_task = n.div_ceil(TASKS);
    let before = emu.requests(&ops::PUSH_BATCH);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let pending: Vec<_> = (t * per_task..(t + 1) * per_task)
                .filter(|i| *i < n)
                .map(|i| publisher.publish(Message::text(body(i))))
                .collect();
            futures::future::join_all(pending)
                .await
                .iter()
                .filter(|r| r.is_err())
                .count()
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await?;
    }
    let elapsed = started.elapsed();
    let report = publisher.shutdown().await;
    let requests = emu.requests(&ops::PUSH_BATCH) - before;
    println!(
        "  publisher: {} requests ({} answered 429), mean batch {:.1}, throttled {:.2?}, {} possibly duplicated",
        report.requests,
        report.rate_limited_responses,
        report.mean_batch_size,
        report.time_throttled,
        report.possibly_duplicated
    );
    #[allow(clippy::cast_precision_loss)]
    let share_429 = if report.requests == 0 {
        0.0
    } else {
        report.rate_limited_responses as f64 / report.requests as f64
    };
    Ok((phase(emu, &queue, n, errors, requests, elapsed), share_429))
}

/// Runs both publish phases and prints their figures, the JSON line last.
pub async fn run(emu: &Emulator, args: &PublishArgs) -> Result<(), Box<dyn std::error::Error>> {
    let n = args.messages;
    println!(
        "publish: {TASKS} tasks, {n} messages of 1 KB, publisher rate limit {}",
        args.publisher_rate_limit
            .map_or("none".to_owned(), |r| format!("{r} msg/s"))
    );
    let base = baseline(emu, n).await?;
    println!(
        "  baseline (one send per message): {:.0} msg/s, {} requests, {} errors, lost {}, duplicates {}, {:.2?}",
        base.msgs_per_s, base.requests, base.errors, base.lost, base.duplicates, base.elapsed
    );
    let (publ, share_429) = publisher(emu, n, args.publisher_rate_limit).await?;
    #[allow(clippy::cast_precision_loss)]
    let per_message = publ.requests as f64 / n as f64;
    println!(
        "  Publisher: {:.0} msg/s, {} requests ({per_message:.4} per message), {} errors, lost {}, duplicates {}, 429 share {share_429:.4}, {:.2?}",
        publ.msgs_per_s, publ.requests, publ.errors, publ.lost, publ.duplicates, publ.elapsed
    );
    let json = format!(
        concat!(
            r#"{{"latency_ms":{},"rate_limit":{},"publisher_rate_limit":{},"messages":{},"#,
            r#""publish_baseline_msgs_per_s":{:.0},"publisher_msgs_per_s":{:.0},"#,
            r#""publish_requests_per_message":{:.4},"publish_errors":{},"publish_lost":{},"#,
            r#""publish_duplicates":{},"publish_429_share":{:.4}}}"#
        ),
        args.latency_ms,
        args.rate_limit.map_or("null".to_owned(), |r| r.to_string()),
        args.publisher_rate_limit
            .map_or("null".to_owned(), |r| r.to_string()),
        n,
        base.msgs_per_s,
        publ.msgs_per_s,
        per_message,
        publ.errors,
        publ.lost,
        publ.duplicates,
        share_429,
    );
    debug_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    println!("{json}");
    Ok(())
}
