//! The benchmark's phases, each run by `examples/bench.rs` in a fresh child process of
//! its own (the same executable, with `--phase NAME`), against the emulator in another.
//!
//! A phase builds its client first, then measures only its work: this process's CPU
//! time (user plus system, all threads, from `CLOCK_PROCESS_CPUTIME_ID`) and wall time,
//! from the first request to the last confirmed ack or stored message. It prints one line,
//! `PHASE {json}`, with what it measured; the parent adds what the emulator saw (lost,
//! duplicates, requests) from the control API. The process's peak memory is its whole
//! life's, which is the phase's: nothing else runs in it.
//!
//! * `baseline`: pull 100, check each body, ack them, repeat; one request at a time.
//! * `consumer`: the `PullConsumer` with README.md's settings for fast handlers; the
//!   handler checks the body (and with `--handler-ms` sleeps that long: a long job).
//! * `send_batch`: the messages in batches of 100 through `send_batch`, 16 batches in
//!   flight (the Publisher's default concurrency), as a user batching by hand would.
//! * `publisher`: the same messages through one `Publisher` with default settings, one
//!   `publish` each, keeping at most 5,000 results pending and awaiting them in order.
//!
//! Bodies for the publish phases are built before the clock starts, so both measure
//! publishing alone.

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN};
use cloudflare_queues::models::Message;
use cloudflare_queues::publisher::PublishFuture;
use cloudflare_queues::{Client, QueueHandle};
use cpu_time::ProcessTime;
use futures::StreamExt as _;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The flag that makes this process run one phase.
pub const PHASE_FLAG: &str = "--phase";

/// Line prefix of a phase's result.
pub const RESULT_PREFIX: &str = "PHASE ";

/// Results kept pending by the publisher phase before it awaits the oldest.
const PUBLISH_WINDOW: usize = 5_000;

/// What a phase needs to know.
#[derive(Debug, Clone)]
pub struct PhaseArgs {
    pub name: String,
    pub base_url: String,
    pub queue_id: String,
    pub messages: usize,
    pub handler_ms: Option<u64>,
    pub visibility_ms: u64,
    pub max_in_flight: u32,
    pub lease_extension: bool,
}

impl PhaseArgs {
    /// The command-line arguments that make a child run this phase.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            PHASE_FLAG.to_owned(),
            self.name.clone(),
            "--base-url".to_owned(),
            self.base_url.clone(),
            "--queue-id".to_owned(),
            self.queue_id.clone(),
            "--messages".to_owned(),
            self.messages.to_string(),
            "--visibility-ms".to_owned(),
            self.visibility_ms.to_string(),
            "--max-in-flight".to_owned(),
            self.max_in_flight.to_string(),
        ];
        if let Some(h) = self.handler_ms {
            args.extend(["--handler-ms".to_owned(), h.to_string()]);
        }
        if !self.lease_extension {
            args.push("--no-lease-extension".to_owned());
        }
        args
    }

    /// Reads a phase's arguments back (`None` when this process is not a phase).
    pub fn from_env() -> Result<Option<PhaseArgs>, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let Some(at) = args.iter().position(|a| a == PHASE_FLAG) else {
            return Ok(None);
        };
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let number = |name: &str| -> Result<Option<u64>, String> {
            value(name)
                .map(|v| v.parse::<u64>().map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let required = |name: &str| value(name).ok_or_else(|| format!("a phase needs {name}"));
        Ok(Some(PhaseArgs {
            name: args.get(at + 1).cloned().ok_or("--phase needs a name")?,
            base_url: required("--base-url")?,
            queue_id: required("--queue-id")?,
            messages: usize::try_from(number("--messages")?.unwrap_or(0))
                .map_err(|e| e.to_string())?,
            handler_ms: number("--handler-ms")?,
            visibility_ms: number("--visibility-ms")?.unwrap_or(60_000),
            max_in_flight: u32::try_from(number("--max-in-flight")?.unwrap_or(1000))
                .map_err(|e| e.to_string())?,
            lease_extension: !args.iter().any(|a| a == "--no-lease-extension"),
        }))
    }
}

/// What a phase measured, as printed after [`RESULT_PREFIX`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PhaseResult {
    /// CPU time of this process during the phase, in seconds.
    pub cpu_s: f64,
    /// Wall time of the phase, in seconds.
    pub elapsed_s: f64,
    /// Peak resident memory of this process, in MB of 2^20 bytes.
    pub peak_rss_mb: f64,
    /// Bodies that passed the check (pull phases), or messages stored (publish phases).
    pub done: u64,
    /// Bodies that failed the check, or publishes that returned an error.
    pub errors: u64,
    /// The consumer's counters, as one line of text (consumer phase).
    pub detail: String,
}

/// A 1 KB body that names its message, so that every delivery can be checked.
pub fn body(i: usize) -> String {
    let head = format!("message {i:08} ");
    format!("{head}{}", "x".repeat(1000 - head.len()))
}

/// The check every pulled body gets.
pub fn check(text: &str) -> bool {
    text.len() == 1000 && text.starts_with("message ")
}

/// Runs the phase and prints its result line.
pub async fn run(args: PhaseArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .api_token(DEFAULT_TOKEN)
        .account_id(DEFAULT_ACCOUNT_ID)
        .base_url(&args.base_url)
        .build()?;
    let queue = client.queue(&args.queue_id);
    let mut result = match args.name.as_str() {
        "baseline" => baseline(&queue, args.messages).await?,
        "consumer" => consumer(&queue, &args).await?,
        "send_batch" => send_batch(&queue, args.messages).await?,
        "publisher" => publisher(&queue, args.messages).await?,
        other => return Err(format!("no phase named {other}").into()),
    };
    result.peak_rss_mb = peak_rss_mb();
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&result)?);
    Ok(())
}

/// CPU and wall time since the phase began.
struct Clock {
    cpu: ProcessTime,
    wall: Instant,
}

impl Clock {
    fn start() -> Self {
        Clock {
            cpu: ProcessTime::now(),
            wall: Instant::now(),
        }
    }

    fn stop(&self, done: u64, errors: u64) -> PhaseResult {
        PhaseResult {
            cpu_s: self.cpu.elapsed().as_secs_f64(),
            elapsed_s: self.wall.elapsed().as_secs_f64(),
            done,
            errors,
            ..PhaseResult::default()
        }
    }
}

/// Pull 100, process, ack, repeat: one request in flight at a time.
async fn baseline(
    queue: &QueueHandle,
    n: usize,
) -> Result<PhaseResult, Box<dyn std::error::Error>> {
    let clock = Clock::start();
    let (mut done, mut bad) = (0u64, 0u64);
    while done + bad < n as u64 {
        let batch = queue
            .pull()
            .batch_size(100)
            .visibility_timeout(Duration::from_secs(60))
            .await?;
        let mut ack = queue.ack();
        for m in &batch.messages {
            if m.text().is_ok_and(|t| check(&t)) {
                done += 1;
                ack = ack.ack(m.lease_id.clone());
            } else {
                bad += 1;
            }
        }
        ack.await?;
    }
    Ok(clock.stop(done, bad))
}

/// The PullConsumer with README.md's settings for fast handlers (or, with
/// `--handler-ms`, for long jobs: each handler sleeps that long).
async fn consumer(
    queue: &QueueHandle,
    args: &PhaseArgs,
) -> Result<PhaseResult, Box<dyn std::error::Error>> {
    let n = args.messages as u64;
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
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let clock = Clock::start();
    let task = {
        let counts = counts.clone();
        tokio::spawn(consumer.run(move |m| {
            let counts = counts.clone();
            async move {
                if !m.text().is_ok_and(|t| check(&t)) {
                    counts.1.fetch_add(1, Ordering::Relaxed);
                    return Outcome::Release;
                }
                if let Some(job) = job {
                    tokio::time::sleep(job).await;
                }
                counts.0.fetch_add(1, Ordering::Relaxed);
                Outcome::Ack
            }
        }))
    };
    // Done when the server has confirmed every ack.
    while handle.stats().acked < n {
        if clock.wall.elapsed() > Duration::from_secs(600) {
            return Err("the consumer phase took over 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Measured up to the last confirmed ack; the shutdown that follows is not work.
    let mut result = clock.stop(
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    );
    let report = handle
        .shutdown(ShutdownMode::drain(Duration::from_secs(10)))
        .await;
    task.await??;
    if !report.is_balanced() {
        return Err(format!("unbalanced report: {report:?}").into());
    }
    let stats = handle.stats();
    result.detail = format!(
        "{} pulls ({} empty, {} failed), {} ack requests ({} failed), {} extension requests ({} leases extended)",
        stats.pull_requests,
        stats.empty_pulls,
        stats.pull_errors,
        stats.ack_requests,
        stats.ack_request_failures,
        stats.extension_requests,
        stats.leases_extended
    );
    Ok(result)
}

/// Batches of 100 through `send_batch`, 16 in flight.
async fn send_batch(
    queue: &QueueHandle,
    n: usize,
) -> Result<PhaseResult, Box<dyn std::error::Error>> {
    let bodies: Vec<String> = (0..n).map(body).collect();
    let mut batches = Vec::with_capacity(n.div_ceil(100));
    let mut bodies = bodies.into_iter();
    loop {
        let batch: Vec<Message> = bodies.by_ref().take(100).map(Message::text).collect();
        if batch.is_empty() {
            break;
        }
        batches.push(batch);
    }
    let clock = Clock::start();
    let results: Vec<(usize, bool)> = futures::stream::iter(batches)
        .map(|batch| async move {
            let len = batch.len();
            (len, queue.send_batch(batch).await.is_ok())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let stored = results.iter().filter(|r| r.1).map(|r| r.0 as u64).sum();
    let failed = results.iter().filter(|r| !r.1).map(|r| r.0 as u64).sum();
    Ok(clock.stop(stored, failed))
}

/// One `publish` per message through one Publisher.
async fn publisher(
    queue: &QueueHandle,
    n: usize,
) -> Result<PhaseResult, Box<dyn std::error::Error>> {
    let bodies: Vec<String> = (0..n).map(body).collect();
    let publisher = queue.publisher().build()?;
    let clock = Clock::start();
    let (mut stored, mut failed) = (0u64, 0u64);
    let mut tally = |ok: bool| {
        if ok {
            stored += 1;
        } else {
            failed += 1;
        }
    };
    let mut pending: VecDeque<PublishFuture> = VecDeque::with_capacity(PUBLISH_WINDOW);
    for b in bodies {
        if pending.len() == PUBLISH_WINDOW {
            if let Some(oldest) = pending.pop_front() {
                tally(oldest.await.is_ok());
            }
        }
        pending.push_back(publisher.publish(Message::text(b)));
    }
    for p in pending {
        tally(p.await.is_ok());
    }
    publisher.shutdown().await;
    Ok(clock.stop(stored, failed))
}

/// Peak resident memory of this process (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(-1.0, |kb| kb / 1024.0)
}
