//! Benchmark: what the PullConsumer and the Publisher cost per message, against a
//! sequential loop and `send_batch`, with the emulator in a process of its own.
//!
//! ```text
//! cargo run --release --example bench -- [--latency-ms 50] [--messages 20000] [--rate-limit 5000]
//!     [--handler-ms 3000 --visibility-ms 1000 --max-in-flight 500] [--repeat 3]
//! cargo run --release --example bench -- --publish [--rate-limit 5000] [--publisher-rate-limit 4900]
//! ```
//!
//! * `--latency-ms`: latency the emulator adds to every request (default 50).
//! * `--messages`: messages per phase, 1 KB each (default 20000).
//! * `--rate-limit`: the emulator's per-queue message-rate ceiling (default none;
//!   Cloudflare's is 5000 messages per second).
//! * `--handler-ms`: each handler sleeps this long (a long job). With it only the
//!   consumer phase runs, and what matters is lease extension: redeliveries, lease
//!   expiries and extension requests per message.
//! * `--visibility-ms`, `--max-in-flight`: the consumer's visibility timeout (default
//!   60000) and handler concurrency (default 1000).
//! * `--no-lease-extension`: turn lease extension off, to see what it saves.
//! * `--repeat`: runs of each phase, each in a fresh process on a fresh queue (default
//!   3); CPU and wall times are medians, lost and duplicated messages the worst run's.
//! * `--publish`: run the publish throughput phases instead (`send` per message from
//!   1,000 tasks, then one `Publisher`), in one process with the emulator; see
//!   `examples/support/publish_bench.rs`.
//! * `--publisher-rate-limit`: the Publisher's own rate limit in `--publish`.
//!
//! Without `--publish`, this process only orchestrates: it starts the emulator program in
//! a child process (`examples/support/emulator_process.rs`), creates and seeds a queue
//! per phase through the emulator's control API, and runs each phase in a fresh child
//! process of its own (`examples/support/bench_phases.rs`), which reports its CPU time,
//! wall time and peak memory. Lost messages, duplicates and request counts come from the
//! emulator's ledger. The phases: the sequential loop Cloudflare's pull-consumer guide
//! describes (pull 100, process, ack, repeat), the `PullConsumer` with README.md's
//! settings, `send_batch` in batches of 100, and one `Publisher`. Every body is 1 KB of
//! text, decoded and checked. The last line printed is one JSON object with the figures.

use cloudflare_queues::emulator::{Emulator, Latency, SeedMessage};
use cloudflare_queues::{QueueHandle, ops};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt as _;

#[path = "support/bench_phases.rs"]
mod bench_phases;
#[path = "support/emulator_process.rs"]
mod emulator_process;
#[path = "support/publish_bench.rs"]
mod publish_bench;

use bench_phases::{PhaseArgs, PhaseResult};
use emulator_process::{EmulatorProcess, Requests};

type BoxError = Box<dyn std::error::Error>;

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
    /// Runs of each phase; the figures are their medians.
    repeat: usize,
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
        repeat: 0,
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
            "--repeat" => {
                args.repeat = value()?.parse().map_err(|e| format!("--repeat: {e}"))?;
                if args.repeat == 0 {
                    return Err("--repeat: at least 1".into());
                }
            }
            "--publisher-rate-limit" => {
                args.publisher_rate_limit = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--publisher-rate-limit: {e}"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown flag {other}; flags: --latency-ms N --messages N --rate-limit N|none --handler-ms N --visibility-ms N --max-in-flight N --no-lease-extension --repeat N --publish --publisher-rate-limit N"
                ));
            }
        }
    }
    if args.repeat == 0 {
        args.repeat = 3;
    }
    Ok(args)
}

/// One phase's figures: the child's own and the emulator's.
struct Phase {
    /// What the child measured.
    own: PhaseResult,
    /// Emulator CPU time while the child ran.
    emulator_cpu: Duration,
    /// Requests the emulator served for the phase, per operation.
    requests: Requests,
    /// Messages the queue held, acked exactly once (pull phases) or stored (publish).
    settled: u64,
    /// Messages that never made it: not acked exactly once, or not stored.
    lost: u64,
    /// Handler runs beyond one per message, or copies stored beyond one per body.
    duplicates: u64,
    redeliveries: u64,
    lease_expiries: u64,
}

impl Phase {
    #[allow(clippy::cast_precision_loss)]
    fn msgs_per_s(&self) -> f64 {
        self.settled as f64 / self.own.elapsed_s
    }

    #[allow(clippy::cast_precision_loss)]
    fn cpu_us_per_msg(&self, n: usize) -> f64 {
        self.own.cpu_s * 1e6 / n as f64
    }

    #[allow(clippy::cast_precision_loss)]
    fn emulator_us_per_msg(&self, n: usize) -> f64 {
        self.emulator_cpu.as_secs_f64() * 1e6 / n as f64
    }

    fn requests_for(&self, operations: &[&str]) -> u64 {
        operations
            .iter()
            .map(|op| self.requests.by_operation.get(*op).copied().unwrap_or(0))
            .sum()
    }
}

/// Request counts of a phase: what the emulator served between two snapshots.
fn requests_between(before: &Requests, after: &Requests) -> Requests {
    Requests {
        by_operation: after
            .by_operation
            .iter()
            .map(|(op, n)| {
                let earlier = before.by_operation.get(op).copied().unwrap_or(0);
                (op.clone(), n.saturating_sub(earlier))
            })
            .collect(),
        total: after.total.saturating_sub(before.total),
    }
}

/// Runs one phase in a fresh child process, forwarding what it prints, and returns what
/// it measured with the emulator's CPU time and requests over the same span.
async fn run_phase(emulator: &EmulatorProcess, args: &PhaseArgs) -> Result<Phase, BoxError> {
    let requests_before = emulator.requests().await?;
    let cpu_before = emulator.cpu_time();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("the phase has no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut result = None;
    while let Some(line) = lines.next_line().await? {
        match line.strip_prefix(bench_phases::RESULT_PREFIX) {
            Some(json) => result = Some(serde_json::from_str::<PhaseResult>(json)?),
            None => println!("{line}"),
        }
    }
    let status = child.wait().await?;
    let emulator_cpu = emulator.cpu_time().saturating_sub(cpu_before);
    let requests = requests_between(&requests_before, &emulator.requests().await?);
    let own = match (status.success(), result) {
        (true, Some(own)) => own,
        _ => return Err(format!("the {} phase failed ({status})", args.name).into()),
    };
    Ok(Phase {
        own,
        emulator_cpu,
        requests,
        settled: 0,
        lost: 0,
        duplicates: 0,
        redeliveries: 0,
        lease_expiries: 0,
    })
}

/// A queue of its own for one run of a phase.
async fn fresh_queue(
    emulator: &EmulatorProcess,
    name: &str,
    run: usize,
) -> Result<QueueHandle, BoxError> {
    let client = emulator.client();
    let created = client
        .queues()
        .create(format!("bench-{name}-{run}"))
        .await?;
    Ok(client.queue(created.queue_id.unwrap_or_default()))
}

/// A pull phase: a queue with an HTTP pull consumer, seeded with `n` bodies through the
/// control API (publishing is not what it measures), consumed by the child.
async fn pull_phase(
    emulator: &EmulatorProcess,
    args: &Args,
    name: &str,
    run: usize,
) -> Result<Phase, BoxError> {
    let queue = fresh_queue(emulator, name, run).await?;
    queue.consumers().create_http_pull().await?;
    emulator
        .seed(
            queue.id(),
            (0..args.messages).map(|i| SeedMessage::text(bench_phases::body(i))),
        )
        .await?;
    let mut phase = run_phase(emulator, &phase_args(emulator, args, name, queue.id())).await?;
    if phase.own.errors > 0 {
        return Err(format!("the {name} phase read {} bad bodies", phase.own.errors).into());
    }
    let summary = emulator.summary(queue.id()).await?;
    phase.settled = summary.acked_once;
    phase.lost = summary.messages.saturating_sub(summary.acked_once);
    phase.duplicates = phase.own.done.saturating_sub(summary.messages);
    phase.redeliveries = summary.redeliveries;
    phase.lease_expiries = summary.expiries;
    Ok(phase)
}

/// A publish phase: an empty queue the child publishes `n` bodies to; lost and
/// duplicated bodies are counted from what the queue holds.
async fn publish_phase(
    emulator: &EmulatorProcess,
    args: &Args,
    name: &str,
    run: usize,
) -> Result<Phase, BoxError> {
    let queue = fresh_queue(emulator, name, run).await?;
    let mut phase = run_phase(emulator, &phase_args(emulator, args, name, queue.id())).await?;
    // The first 16 bytes of a body ("message 00000042") name its message.
    let held = emulator.bodies(queue.id(), 16).await?;
    let distinct: BTreeSet<&str> = held.iter().map(String::as_str).collect();
    let expected: BTreeSet<String> = (0..args.messages)
        .map(|i| bench_phases::body(i)[..16].to_owned())
        .collect();
    phase.settled = expected
        .iter()
        .filter(|b| distinct.contains(b.as_str()))
        .count() as u64;
    phase.lost = args.messages as u64 - phase.settled;
    phase.duplicates = (held.len() - distinct.len()) as u64;
    Ok(phase)
}

/// Runs a phase `--repeat` times, each in a fresh process on a fresh queue, and
/// combines the runs: the median CPU time, wall time and emulator CPU time (the machine
/// is shared, so one run can be unlucky), the worst of lost, duplicates, redeliveries,
/// expiries and peak memory, and the request counts of the run with the median CPU.
async fn repeated(emulator: &EmulatorProcess, args: &Args, name: &str) -> Result<Phase, BoxError> {
    let mut runs = Vec::with_capacity(args.repeat);
    for run in 0..args.repeat {
        let phase = if name == "send_batch" || name == "publisher" {
            publish_phase(emulator, args, name, run).await?
        } else {
            pull_phase(emulator, args, name, run).await?
        };
        runs.push(phase);
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let elapsed_s = median(runs.iter().map(|r| r.own.elapsed_s).collect());
    let emulator_s = median(runs.iter().map(|r| r.emulator_cpu.as_secs_f64()).collect());
    let peak_rss_mb = runs.iter().map(|r| r.own.peak_rss_mb).fold(0.0, f64::max);
    let worst = |f: fn(&Phase) -> u64| runs.iter().map(f).max().unwrap_or(0);
    let (lost, duplicates) = (worst(|r| r.lost), worst(|r| r.duplicates));
    let (redeliveries, lease_expiries) = (worst(|r| r.redeliveries), worst(|r| r.lease_expiries));
    let settled = runs.iter().map(|r| r.settled).min().unwrap_or(0);
    runs.sort_by(|a, b| a.own.cpu_s.total_cmp(&b.own.cpu_s));
    let mut phase = runs.swap_remove(runs.len() / 2);
    phase.own.elapsed_s = elapsed_s;
    phase.own.peak_rss_mb = peak_rss_mb;
    phase.emulator_cpu = Duration::from_secs_f64(emulator_s);
    phase.settled = settled;
    phase.lost = lost;
    phase.duplicates = duplicates;
    phase.redeliveries = redeliveries;
    phase.lease_expiries = lease_expiries;
    Ok(phase)
}

fn phase_args(emulator: &EmulatorProcess, args: &Args, name: &str, queue_id: &str) -> PhaseArgs {
    PhaseArgs {
        name: name.to_owned(),
        base_url: emulator.base_url(),
        queue_id: queue_id.to_owned(),
        messages: args.messages,
        handler_ms: args.handler_ms,
        visibility_ms: args.visibility_ms,
        max_in_flight: args.max_in_flight,
        lease_extension: args.lease_extension,
    }
}

const PULL: &str = ops::PULL_MESSAGES.id;
const ACK: &str = ops::ACK_MESSAGES.id;
const EXTEND: &str = ops::EXTEND_LEASES.id;
const SEND_BATCH: &str = ops::PUSH_BATCH.id;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // This executable is also the emulator program and each phase's process.
    if emulator_process::serve_if_asked().await {
        return Ok(());
    }
    if let Some(phase) = PhaseArgs::from_env()? {
        return bench_phases::run(phase).await;
    }
    let args = parse_args()?;
    let n = args.messages;
    println!(
        "bench: {n} messages of 1 KB per phase, {} ms added latency, rate limit {}, medians of {} runs",
        args.latency_ms,
        args.rate_limit
            .map_or("none".to_owned(), |r| format!("{r} msg/s")),
        args.repeat
    );
    if args.publish {
        // Throughput only: one process, the emulator in it.
        let emu = Emulator::builder()
            .latency(Latency::fixed(Duration::from_millis(args.latency_ms)))
            .rate_limit(args.rate_limit)
            .start()
            .await?;
        let publish = publish_bench::PublishArgs {
            latency_ms: args.latency_ms,
            rate_limit: args.rate_limit,
            publisher_rate_limit: args.publisher_rate_limit,
            messages: n,
        };
        return publish_bench::run(&emu, &publish).await;
    }

    let emulator = EmulatorProcess::spawn(args.latency_ms, args.rate_limit)?;
    // With long handlers only the consumer runs: the sequential loop would take hours.
    let base = match args.handler_ms {
        Some(_) => None,
        None => {
            let base = repeated(&emulator, &args, "baseline").await?;
            println!(
                "  baseline (pull 100 / process / ack, sequential): {:.0} msg/s, {:.2} us CPU per message, {} requests, {:.2} s",
                base.msgs_per_s(),
                base.cpu_us_per_msg(n),
                base.requests_for(&[PULL, ACK]),
                base.own.elapsed_s
            );
            Some(base)
        }
    };
    let cons = repeated(&emulator, &args, "consumer").await?;
    let cons_requests = cons.requests_for(&[PULL, ACK]);
    let extend_requests = cons.requests_for(&[EXTEND]);
    #[allow(clippy::cast_precision_loss)]
    let per_message = cons_requests as f64 / n as f64;
    #[allow(clippy::cast_precision_loss)]
    let extend_per_message = extend_requests as f64 / n as f64;
    println!(
        "  PullConsumer: {:.0} msg/s, {:.2} us CPU per message, {cons_requests} requests ({per_message:.4} per message), peak RSS {:.1} MB, {:.2} s",
        cons.msgs_per_s(),
        cons.cpu_us_per_msg(n),
        cons.own.peak_rss_mb,
        cons.own.elapsed_s
    );
    println!("  consumer: {}", cons.own.detail);
    println!(
        "  leases: {} redeliveries, {} expiries, {extend_requests} extension requests ({extend_per_message:.4} per message)",
        cons.redeliveries, cons.lease_expiries
    );
    println!(
        "  emulator: {:.2} us CPU per message during the consumer phase",
        cons.emulator_us_per_msg(n)
    );
    let speedup = base.as_ref().map(|b| cons.msgs_per_s() / b.msgs_per_s());
    println!(
        "  speedup {}; acked {}, lost {}, duplicates {}",
        speedup.map_or("n/a".to_owned(), |s| format!("{s:.1}x")),
        cons.settled,
        cons.lost,
        cons.duplicates
    );

    // The publish phases, on the same messages (not with long handlers: nothing to add).
    let publish = match args.handler_ms {
        Some(_) => None,
        None => {
            let batch = repeated(&emulator, &args, "send_batch").await?;
            println!(
                "  send_batch (100 per request, 16 in flight): {:.0} msg/s, {:.2} us CPU per message, {} requests, {} not stored ({} returned as errors), duplicates {}",
                batch.msgs_per_s(),
                batch.cpu_us_per_msg(n),
                batch.requests_for(&[SEND_BATCH]),
                batch.lost,
                batch.own.errors,
                batch.duplicates
            );
            let publisher = repeated(&emulator, &args, "publisher").await?;
            println!(
                "  Publisher (one publish per message): {:.0} msg/s, {:.2} us CPU per message, {} requests, lost {}, duplicates {}",
                publisher.msgs_per_s(),
                publisher.cpu_us_per_msg(n),
                publisher.requests_for(&[SEND_BATCH]),
                publisher.lost,
                publisher.duplicates
            );
            Some((batch, publisher))
        }
    };

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
            r#""redeliveries":{},"lease_expiries":{},"extend_requests_per_message":{:.4},"#,
            r#""baseline_cpu_us_per_msg":{},"consumer_cpu_us_per_msg":{:.2},"#,
            r#""send_batch_cpu_us_per_msg":{},"publisher_cpu_us_per_msg":{},"#,
            r#""emulator_cpu_us_per_msg":{:.2},"consumer_peak_rss_mb":{:.1},"#,
            r#""emulator_peak_rss_mb":{:.1},"send_batch_lost":{},"publisher_lost":{}}}"#
        ),
        args.latency_ms,
        args.rate_limit.map_or("null".to_owned(), |r| r.to_string()),
        n,
        num(base.as_ref().map(Phase::msgs_per_s), 0),
        cons.msgs_per_s(),
        num(speedup, 1),
        per_message,
        cons.settled,
        cons.lost,
        cons.duplicates,
        cons.own.peak_rss_mb,
        args.handler_ms.map_or("null".to_owned(), |h| h.to_string()),
        args.visibility_ms,
        args.max_in_flight,
        cons.redeliveries,
        cons.lease_expiries,
        extend_per_message,
        num(base.as_ref().map(|b| b.cpu_us_per_msg(n)), 2),
        cons.cpu_us_per_msg(n),
        num(publish.as_ref().map(|p| p.0.cpu_us_per_msg(n)), 2),
        num(publish.as_ref().map(|p| p.1.cpu_us_per_msg(n)), 2),
        cons.emulator_us_per_msg(n),
        cons.own.peak_rss_mb,
        emulator.peak_rss_mb(),
        publish
            .as_ref()
            .map_or("null".to_owned(), |p| p.0.lost.to_string()),
        publish
            .as_ref()
            .map_or("null".to_owned(), |p| p.1.lost.to_string()),
    );
    // The line must stay valid JSON.
    debug_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    println!("{json}");
    // Figures are only worth reading if nothing went missing. (`send_batch` returns its
    // failures to the caller, as 429s under a ceiling: not stored, but not lost.)
    let lost =
        cons.lost + base.as_ref().map_or(0, |b| b.lost) + publish.as_ref().map_or(0, |p| p.1.lost);
    if lost > 0 {
        return Err(format!("{lost} messages lost").into());
    }
    Ok(())
}
