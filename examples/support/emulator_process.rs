//! The emulator in a child process, so that an example can measure its own CPU and
//! memory apart from the emulator's (and the emulator's apart from its own).
//!
//! Include it with `#[path = "support/emulator_process.rs"] mod emulator_process;` and
//! call [`serve_if_asked`] first in `main`:
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     if emulator_process::serve_if_asked().await {
//!         return Ok(()); // this process was the emulator
//!     }
//!     let emulator = emulator_process::EmulatorProcess::spawn(0, None)?;
//!     let client = emulator.client();
//!     // ... create queues, seed them, run the workload ...
//!     println!("emulator CPU {:?}, peak RSS {:.1} MB", emulator.cpu_time(), emulator.peak_rss_mb());
//!     Ok(())
//! }
//! ```
//!
//! [`EmulatorProcess::spawn`] re-runs the current executable with a hidden
//! `--serve-emulator` flag; that process starts an [`Emulator`] with the control API on
//! 127.0.0.1, prints its port and serves until its standard input closes, which happens
//! when the parent drops the handle or dies. The handle talks to it through the control
//! API (`/__emulator/…`, see `EmulatorBuilder::control_api`) and reads its CPU time and
//! peak memory from `/proc` (Linux).

// Each example uses part of this module.
#![allow(dead_code)]

use cloudflare_queues::Client;
use cloudflare_queues::emulator::{
    DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN, Emulator, Latency, QueueSummary, SeedMessage,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A control request that failed: no answer, an error status, or an answer that did
/// not read. Converts with `?` into `Box<dyn Error>` (and `+ Send + Sync`).
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "emulator control API: {}", self.0)
    }
}

impl std::error::Error for Error {}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(e.to_string())
    }
}

const SERVE_FLAG: &str = "--serve-emulator";

/// Messages per seed request (the control API takes 10,000 of 1 KB in one).
const SEED_CHUNK: usize = 10_000;

/// If this process was started by [`EmulatorProcess::spawn`], serves the emulator until
/// standard input reaches its end, then returns `true` (`main` should then return);
/// otherwise returns `false` at once.
///
/// # Panics
///
/// If the emulator cannot bind a port: the parent then sees the child end without
/// printing one.
pub async fn serve_if_asked() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == SERVE_FLAG) {
        return false;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let latency = Duration::from_millis(value("--latency-ms").unwrap_or(0));
    let rate_limit = value("--rate-limit").and_then(|r| u32::try_from(r).ok());
    // One thread: the emulator's work is short and serial (one lock), and a second
    // worker would mostly hand requests back and forth.
    let serve = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime");
        runtime.block_on(async move {
            let emulator = Emulator::builder()
                .token(DEFAULT_TOKEN)
                .control_api(true)
                .latency(Latency::fixed(latency))
                .rate_limit(rate_limit)
                .start()
                .await
                .expect("the emulator binds a port on 127.0.0.1");
            println!("{}", emulator.addr().port());
            // Standard input ends when the parent closes it or exits, however it exits.
            let _ = tokio::task::spawn_blocking(|| {
                std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
            })
            .await;
            emulator.shutdown().await;
        });
    });
    let _ = tokio::task::spawn_blocking(move || serve.join()).await;
    true
}

/// Request counts, as the control API reports them.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Requests {
    /// Requests per operation id (such as `queues-pull-messages`).
    pub by_operation: BTreeMap<String, u64>,
    /// All requests.
    pub total: u64,
}

/// An emulator running in a child process; dropping the handle ends it.
pub struct EmulatorProcess {
    child: Child,
    /// Closed on drop, which tells the child to stop.
    stdin: Option<ChildStdin>,
    /// Kept open, so the child never writes into a closed pipe.
    _stdout: ChildStdout,
    port: u16,
    http: reqwest::Client,
    /// Clock ticks per second, for `/proc/<pid>/stat`.
    ticks_per_second: f64,
}

impl EmulatorProcess {
    /// Starts the emulator in a child process (this executable again, with a hidden
    /// flag) with `latency_ms` added to every request and a per-queue message-rate
    /// ceiling, and waits (milliseconds) until it listens.
    pub fn spawn(latency_ms: u64, rate_limit: Option<u32>) -> std::io::Result<EmulatorProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args([SERVE_FLAG, "--latency-ms", &latency_ms.to_string()]);
        if let Some(rate) = rate_limit {
            command.args(["--rate-limit", &rate.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| std::io::Error::other("no stdout"))?,
        );
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "the emulator process printed {line:?}, not a port"
            )));
        };
        Ok(EmulatorProcess {
            child,
            stdin,
            _stdout: stdout.into_inner(),
            port,
            http: reqwest::Client::new(),
            ticks_per_second: clock_ticks_per_second(),
        })
    }

    /// The REST API root, e.g. `http://127.0.0.1:40123/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/client/v4", self.port)
    }

    /// A client pointed at the emulator.
    ///
    /// # Panics
    ///
    /// Never in practice: the URL, account and token are valid.
    pub fn client(&self) -> Client {
        Client::builder()
            .api_token(DEFAULT_TOKEN)
            .account_id(DEFAULT_ACCOUNT_ID)
            .base_url(self.base_url())
            .build()
            .expect("a valid client configuration")
    }

    fn control_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/__emulator/{path}", self.port)
    }

    async fn control(&self, request: reqwest::RequestBuilder) -> Result<Value, Error> {
        let response = request.bearer_auth(DEFAULT_TOKEN).send().await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            return Err(Error(format!("{status}: {body}")));
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Inserts messages into a queue, as [`Emulator::seed`] does, 10,000 to a request.
    /// Returns their ids.
    pub async fn seed(
        &self,
        queue_id: &str,
        messages: impl IntoIterator<Item = SeedMessage>,
    ) -> Result<Vec<String>, Error> {
        use base64::Engine as _;
        let mut ids = Vec::new();
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            let chunk: Vec<Value> = messages
                .by_ref()
                .take(SEED_CHUNK)
                .map(|m| {
                    let mut entry = match m.content_type() {
                        "text" => json!({"content_type": "text", "body": String::from_utf8_lossy(m.payload())}),
                        other => json!({
                            "content_type": other,
                            "body_base64": base64::engine::general_purpose::STANDARD.encode(m.payload()),
                        }),
                    };
                    if !m.delay().is_zero() {
                        entry["delay_ms"] = json!(m.delay().as_millis());
                    }
                    entry
                })
                .collect();
            let url = self.control_url(&format!("queues/{queue_id}/seed"));
            let answer = self
                .control(self.http.post(url).json(&json!({ "messages": chunk })))
                .await?;
            ids.extend(serde_json::from_value::<Vec<String>>(
                answer["ids"].clone(),
            )?);
        }
        Ok(ids)
    }

    /// Counts over everything the queue has held ([`QueueSummary`]).
    pub async fn summary(&self, queue_id: &str) -> Result<QueueSummary, Error> {
        let url = self.control_url(&format!("queues/{queue_id}/summary"));
        Ok(serde_json::from_value(
            self.control(self.http.get(url)).await?,
        )?)
    }

    /// The first `prefix` bytes of every payload the queue has held, in publish order.
    pub async fn bodies(&self, queue_id: &str, prefix: usize) -> Result<Vec<String>, Error> {
        let url = self.control_url(&format!("queues/{queue_id}/bodies?prefix={prefix}"));
        let answer = self.control(self.http.get(url)).await?;
        Ok(serde_json::from_value(answer["bodies"].clone())?)
    }

    /// Requests the emulator has served, per operation.
    pub async fn requests(&self) -> Result<Requests, Error> {
        let url = self.control_url("requests");
        Ok(serde_json::from_value(
            self.control(self.http.get(url)).await?,
        )?)
    }

    /// The child's CPU time so far, user plus system (zero if `/proc` cannot say).
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(&self.child.id().to_string(), self.ticks_per_second)
    }

    /// The child's peak resident memory so far (`VmHWM`), in MB of 2^20 bytes (zero if
    /// `/proc` cannot say).
    pub fn peak_rss_mb(&self) -> f64 {
        peak_rss_mb_of(&self.child.id().to_string())
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        // Closing standard input stops the child; kill it if it does not stop soon.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `CLK_TCK`, from `getconf` (100 on the usual Linux systems).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system CPU time of process `pid` (`self` for this one), from
/// `/proc/<pid>/stat`.
pub fn cpu_time_of(pid: &str, ticks_per_second: f64) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Duration::from_secs_f64((ticks(11) + ticks(12)) / ticks_per_second)
}

/// This process's CPU time so far, user plus system.
pub fn own_cpu_time() -> Duration {
    cpu_time_of("self", clock_ticks_per_second())
}

/// Peak resident memory (`VmHWM`) of process `pid` (`self` for this one), in MB of
/// 2^20 bytes.
pub fn peak_rss_mb_of(pid: &str) -> f64 {
    let mut status = String::new();
    let read = std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut f| f.read_to_string(&mut status));
    if read.is_err() {
        return 0.0;
    }
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
