//! The emulator as a load-test tool: how many messages it holds in how much memory, and
//! how fast it serves push, pull and ack, with the emulator in a process of its own
//! (`examples/support/emulator_process.rs`) and this crate's `Publisher` and
//! `PullConsumer` as its clients.
//!
//! ```text
//! cargo run --release --example emulator_load -- [--messages 1000000] [--flow-messages 1000000]
//!     [--body-bytes 1000] [--latency-ms 0] [--only hold|flow]
//! ```
//!
//! * **hold**: a fresh emulator; `--messages` text messages of `--body-bytes` are
//!   published through one `Publisher` and left queued. Reports the emulator's peak
//!   resident memory and its ratio to the bytes of the bodies it holds.
//! * **flow**: a fresh emulator; a `Publisher` and a `PullConsumer` run at once on one
//!   queue, and each of `--flow-messages` messages is pushed, pulled, decoded, checked
//!   and acked. Reports messages per second (from the first publish to the last
//!   confirmed ack) and the CPU time per message of the emulator and of this process.
//!
//! Both check the emulator's ledger: every message stored once, and (flow) acked once.
//! The last line printed is one JSON object with the figures.

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::{Client, QueueHandle};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[path = "support/emulator_process.rs"]
mod emulator_process;

use emulator_process::EmulatorProcess;

struct Args {
    messages: usize,
    flow_messages: usize,
    body_bytes: usize,
    latency_ms: u64,
    hold: bool,
    flow: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        messages: 1_000_000,
        flow_messages: 1_000_000,
        body_bytes: 1000,
        latency_ms: 0,
        hold: true,
        flow: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--messages" => args.messages = number(value()?)?,
            "--flow-messages" => args.flow_messages = number(value()?)?,
            "--body-bytes" => args.body_bytes = number(value()?)?.clamp(16, 128_000),
            "--latency-ms" => args.latency_ms = number(value()?)? as u64,
            "--only" => match value()?.as_str() {
                "hold" => args.flow = false,
                "flow" => args.hold = false,
                other => return Err(format!("--only {other}: hold or flow")),
            },
            other => {
                return Err(format!(
                    "unknown flag {other}; flags: --messages N --flow-messages N --body-bytes N --latency-ms N --only hold|flow"
                ));
            }
        }
    }
    Ok(args)
}

/// A text body of `len` bytes that names its message: `load 00000042 xxxx…`.
fn body(i: usize, len: usize, filler: &str) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(len);
    let _ = write!(text, "load {i:08} ");
    text.push_str(
        filler
            .get(..len.saturating_sub(text.len()))
            .unwrap_or_default(),
    );
    text
}

fn check(text: &str, len: usize) -> bool {
    text.len() == len && text.starts_with("load ")
}

async fn fresh_queue(
    client: &Client,
    name: &str,
) -> Result<QueueHandle, Box<dyn std::error::Error>> {
    let created = client.queues().create(name).await?;
    let queue = client.queue(created.id());
    queue.consumers().create_http_pull().await?;
    Ok(queue)
}

/// Publishes `n` bodies through one `Publisher`, keeping up to 5,000 outcomes pending
/// (under the Publisher's flow-control limit, so that no publish waits for room) and
/// awaiting them in order. Returns how many failed.
async fn publish_all(
    queue: &QueueHandle,
    n: usize,
    len: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let publisher = queue.publisher().build()?;
    let filler = "x".repeat(len);
    let mut pending = VecDeque::with_capacity(5_000);
    let mut failed = 0;
    for i in 0..n {
        // Accepted at once (there is room); the future only reports the outcome.
        pending.push_back(publisher.publish(body(i, len, &filler)));
        if pending.len() >= 5_000 {
            if let Some(outcome) = pending.pop_front() {
                failed += usize::from(outcome.await.is_err());
            }
        }
    }
    while let Some(outcome) = pending.pop_front() {
        failed += usize::from(outcome.await.is_err());
    }
    let report = publisher.shutdown().await;
    println!(
        "  publisher: {} published, {} failed, {} requests ({:.1} messages each)",
        report.published, report.failed, report.requests, report.mean_batch_size
    );
    Ok(failed)
}

#[allow(clippy::cast_precision_loss)]
fn per_message_us(cpu: Duration, n: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / n.max(1) as f64
}

struct Hold {
    peak_rss_mb: f64,
    ratio: f64,
    fill_msgs_per_s: f64,
    fill_cpu_us: f64,
    stored: u64,
}

/// Fills a fresh emulator with `n` messages and reads its peak memory.
async fn hold(args: &Args) -> Result<Hold, Box<dyn std::error::Error>> {
    let (n, len) = (args.messages, args.body_bytes);
    let emulator = EmulatorProcess::spawn(args.latency_ms, None)?;
    let queue = fresh_queue(&emulator.client(), "hold").await?;
    let idle_rss = emulator.peak_rss_mb();
    let cpu_before = emulator.cpu_time();
    let started = Instant::now();
    let failed = publish_all(&queue, n, len).await?;
    let elapsed = started.elapsed();
    let cpu = emulator.cpu_time() - cpu_before;
    let summary = emulator.summary(queue.id()).await?;
    if failed > 0 || summary.by_state.available != n as u64 || summary.messages != n as u64 {
        return Err(format!("{failed} publishes failed; the emulator holds {summary:?}").into());
    }
    let peak_rss_mb = emulator.peak_rss_mb();
    #[allow(clippy::cast_precision_loss)]
    let ratio = peak_rss_mb * 1_048_576.0 / (n as f64 * len as f64);
    #[allow(clippy::cast_precision_loss)]
    let fill_msgs_per_s = n as f64 / elapsed.as_secs_f64();
    println!(
        "  hold: {n} messages of {len} bytes queued in {elapsed:.2?} ({fill_msgs_per_s:.0} msg/s); emulator peak RSS {peak_rss_mb:.1} MB (idle {idle_rss:.1} MB), {ratio:.2}x the body bytes"
    );
    Ok(Hold {
        peak_rss_mb,
        ratio,
        fill_msgs_per_s,
        fill_cpu_us: per_message_us(cpu, n),
        stored: summary.messages,
    })
}

struct Flow {
    msgs_per_s: f64,
    emulator_cpu_us: f64,
    client_cpu_us: f64,
    acked_once: u64,
    lost: u64,
    duplicates: u64,
    redeliveries: u64,
    requests_per_message: f64,
    peak_rss_mb: f64,
}

/// Publishes and consumes `n` messages at once on a fresh emulator.
async fn flow(args: &Args) -> Result<Flow, Box<dyn std::error::Error>> {
    let (n, len) = (args.flow_messages, args.body_bytes);
    let emulator = EmulatorProcess::spawn(args.latency_ms, None)?;
    let queue = fresh_queue(&emulator.client(), "flow").await?;
    let consumer = queue
        .pull_consumer()
        .batch_size(100)
        .visibility_timeout(Duration::from_secs(60))
        .max_in_flight(1000)
        .max_concurrent_pulls(8)
        .build()?;
    let handle = consumer.shutdown_handle();
    let requests_before = emulator.requests().await?.total;
    let (emulator_before, client_before) = (emulator.cpu_time(), emulator_process::own_cpu_time());
    let started = Instant::now();
    let consuming = tokio::spawn(consumer.run(move |m| async move {
        if m.text().is_ok_and(|t| check(&t, len)) {
            Outcome::Ack
        } else {
            Outcome::Release
        }
    }));
    let publishing = {
        let queue = queue.clone();
        tokio::spawn(async move { publish_all(&queue, n, len).await.map_err(|e| e.to_string()) })
    };
    // Done when the server has confirmed every ack.
    while handle.stats().acked < n as u64 {
        if started.elapsed() > Duration::from_secs(600) || consuming.is_finished() {
            return Err(format!("the flow stopped at {} acks", handle.stats().acked).into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let emulator_cpu = emulator.cpu_time() - emulator_before;
    let client_cpu = emulator_process::own_cpu_time() - client_before;
    let failed = publishing.await??;
    let report = handle
        .shutdown(ShutdownMode::drain(Duration::from_secs(10)))
        .await;
    consuming.await??;
    let requests = emulator.requests().await?.total - requests_before;
    let summary = emulator.summary(queue.id()).await?;
    if failed > 0 || !report.is_balanced() {
        return Err(format!("{failed} publishes failed; report {report:?}").into());
    }
    #[allow(clippy::cast_precision_loss)]
    let (msgs_per_s, requests_per_message) =
        (n as f64 / elapsed.as_secs_f64(), requests as f64 / n as f64);
    let flow = Flow {
        msgs_per_s,
        emulator_cpu_us: per_message_us(emulator_cpu, n),
        client_cpu_us: per_message_us(client_cpu, n),
        acked_once: summary.acked_once,
        lost: (n as u64).saturating_sub(summary.acked_once),
        duplicates: summary.messages.saturating_sub(n as u64) + summary.duplicate_acks,
        redeliveries: summary.redeliveries,
        requests_per_message,
        peak_rss_mb: emulator.peak_rss_mb(),
    };
    println!(
        "  flow: {n} messages pushed, pulled and acked in {elapsed:.2?}: {msgs_per_s:.0} msg/s; CPU per message: emulator {:.2} us, this process {:.2} us; {requests} requests ({requests_per_message:.4} per message)",
        flow.emulator_cpu_us, flow.client_cpu_us
    );
    println!(
        "  ledger: {} acked once, {} lost, {} duplicates, {} redeliveries; emulator peak RSS {:.1} MB",
        flow.acked_once, flow.lost, flow.duplicates, flow.redeliveries, flow.peak_rss_mb
    );
    Ok(flow)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if emulator_process::serve_if_asked().await {
        return Ok(());
    }
    let args = parse_args()?;
    println!(
        "emulator_load: bodies of {} bytes, {} ms latency, emulator in its own process",
        args.body_bytes, args.latency_ms
    );
    let hold = if args.hold {
        Some(hold(&args).await?)
    } else {
        None
    };
    let flow = if args.flow {
        Some(flow(&args).await?)
    } else {
        None
    };
    let num =
        |v: Option<f64>, digits: usize| v.map_or("null".to_owned(), |v| format!("{v:.digits$}"));
    let int = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
    // Keys in a fixed order (serde_json would sort them); keys are only ever added.
    let json = format!(
        concat!(
            r#"{{"messages":{},"body_bytes":{},"latency_ms":{},"stored":{},"emulator_peak_rss_mb":{},"#,
            r#""rss_to_body_ratio":{},"fill_msgs_per_s":{},"fill_emulator_cpu_us_per_msg":{},"#,
            r#""flow_messages":{},"push_pull_ack_msgs_per_s":{},"emulator_cpu_us_per_msg":{},"#,
            r#""client_cpu_us_per_msg":{},"acked_once":{},"lost":{},"duplicates":{},"#,
            r#""redeliveries":{},"requests_per_message":{},"flow_emulator_peak_rss_mb":{}}}"#
        ),
        if args.hold {
            args.messages.to_string()
        } else {
            "null".to_owned()
        },
        args.body_bytes,
        args.latency_ms,
        int(hold.as_ref().map(|h| h.stored)),
        num(hold.as_ref().map(|h| h.peak_rss_mb), 1),
        num(hold.as_ref().map(|h| h.ratio), 3),
        num(hold.as_ref().map(|h| h.fill_msgs_per_s), 0),
        num(hold.as_ref().map(|h| h.fill_cpu_us), 2),
        if args.flow {
            args.flow_messages.to_string()
        } else {
            "null".to_owned()
        },
        num(flow.as_ref().map(|f| f.msgs_per_s), 0),
        num(flow.as_ref().map(|f| f.emulator_cpu_us), 2),
        num(flow.as_ref().map(|f| f.client_cpu_us), 2),
        int(flow.as_ref().map(|f| f.acked_once)),
        int(flow.as_ref().map(|f| f.lost)),
        int(flow.as_ref().map(|f| f.duplicates)),
        int(flow.as_ref().map(|f| f.redeliveries)),
        num(flow.as_ref().map(|f| f.requests_per_message), 4),
        num(flow.as_ref().map(|f| f.peak_rss_mb), 1),
    );
    debug_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    println!("{json}");
    Ok(())
}
