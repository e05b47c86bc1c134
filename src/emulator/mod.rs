//! A local, stateful emulator of the Cloudflare Queues REST API (feature `emulator`).
//!
//! It serves the same paths (`/client/v4/accounts/{account_id}/queues/...`), the same v4
//! envelope, field names and status codes as Cloudflare, so this crate's [`Client`], curl
//! and the official SDKs pointed at [`Emulator::base_url`] all work unchanged. It binds
//! 127.0.0.1 on an ephemeral port and needs no account.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudflare_queues::emulator::Emulator;
//!
//! let emulator = Emulator::start().await?;
//! let client = emulator.client();
//! let queue = client.queues().create("jobs").await?;
//! # Ok(()) }
//! ```
//!
//! What it models: queues and their settings (delivery
//! delay, pause, retention); at most one consumer per queue, Worker or HTTP pull; push
//! and batch push with the documented limits and error codes; pulls with batch size,
//! visibility timeout, opaque lease ids and per-delivery `attempts`; acks and retries
//! (with a delay, or the consumer's `retry_delay`) with `ackCount` / `retryCount` /
//! `warnings`; late acks, even after redelivery; lease expiry; dead-lettering (or
//! dropping) once `attempts` reaches `max_retries`; 409 on pulls while delivery is
//! paused; purge and its status; peek and purge by ref; metrics; event subscriptions.
//!
//! # A testing toolkit
//!
//! For tests of a service that uses Queues, it adds:
//!
//! * **inspection**: every message a queue has held, with its decoded body, content
//!   type, delay, attempts, state and history ([`Emulator::messages`], [`MessageInfo`]),
//!   and the requests served ([`Emulator::requests`]);
//! * **waiting**: [`Emulator::wait_until_acked`], [`Emulator::wait_until_empty`],
//!   [`Emulator::wait_until_dead_lettered`] and [`Emulator::wait_until`], which fail with
//!   a [`WaitTimeout`] naming the queue and what it held;
//! * **faults**: seeded fault plans per operation ([`Emulator::set_faults`]) or per queue
//!   and operation ([`Emulator::set_queue_faults`]: "the results queue refuses
//!   publishes"), latency ([`Emulator::set_latency`]) and a per-queue message-rate
//!   ceiling ([`Emulator::set_rate_limit`]);
//! * **seeding** of `bytes` and `v8` messages, which the REST push refuses
//!   ([`Emulator::seed`]);
//! * **time**: [`Emulator::advance`], or Tokio's paused clock (below).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan};
//! use cloudflare_queues::ops;
//! use std::time::Duration;
//!
//! let emulator = Emulator::start().await?;
//! let client = emulator.client();
//! let jobs = client.queues().create("jobs").await?;
//! let results = client.queues().create("results").await?;
//! emulator.set_queue_faults(results.id(), &ops::PUSH_BATCH, FaultPlan::always(Fault::Internal));
//! // ... run the service under test against `emulator.base_url()` ...
//! let done = emulator.wait_until_acked(jobs.id(), 10, Duration::from_secs(5)).await?;
//! assert!(done.iter().any(|m| m.text() == Some("job 1")));
//! # Ok(()) }
//! ```
//!
//! # One clock
//!
//! The emulator's clock is Tokio's ([`tokio::time::Instant`]) plus what
//! [`Emulator::advance`] added. In a test under a paused clock
//! (`#[tokio::test(start_paused = true)]` or `tokio::time::pause()`),
//! `tokio::time::advance` moves the emulator and everything else that waits on Tokio's
//! timers (a client's backoff, a consumer's sleeps, the wait helpers' timeouts) together.
//! [`Emulator::advance`] keeps working for tests in real time; it moves the emulator
//! alone.
//!
//! Such a test needs a `current_thread` runtime with the emulator started on it (the
//! default of `#[tokio::test]`). A paused clock jumps ahead whenever the runtime has
//! nothing to run, even while a request is on its way over loopback; on one thread the
//! emulator's side of every request runs as soon as the bytes are written, so time moves
//! only when everything is truly waiting. On a multi-thread runtime, timeouts can fire
//! while the emulator is still answering.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // #[tokio::test(flavor = "current_thread", start_paused = true)]
//! use cloudflare_queues::emulator::{Emulator, MessageState};
//! use std::time::Duration;
//!
//! let emulator = Emulator::start().await?;
//! let client = emulator.client();
//! let queue = client.queue(client.queues().create("jobs").await?.id());
//! queue.consumers().create_http_pull().await?;
//! queue.send("job").await?;
//! queue.pull().visibility_timeout(Duration::from_secs(30)).await?;
//! tokio::time::advance(Duration::from_secs(31)).await; // the lease expires
//! assert_eq!(emulator.messages(queue.id())[0].state, MessageState::Available);
//! # Ok(()) }
//! ```
//!
//! # Codes
//! Where the docs describe a condition without a code the emulator picks one, in the
//! 11xxx range: 11010 queue already has a consumer, 11011 pull from a queue without an
//! HTTP pull consumer, 11012 delivery paused (status 409, message
//! `queue_delivery_paused`), 11013 unknown consumer or subscription. Clients should key
//! on the status, as the docs do.

mod control;
mod faults;
mod ledger;
mod respond;
mod server;
mod state;
mod wire;

pub use faults::{Fault, FaultPlan, Latency};

use crate::{Client, ClientBuilder, Operation};
use faults::ActivePlan;
use serde::Serialize;
use state::World;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The account id the emulator serves unless told otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";

/// The token [`Emulator::client`] uses. An emulator started from this library accepts
/// any token unless one is configured ([`EmulatorBuilder::token`]); the
/// `cloudflare-queues-emulator` program requires this one unless started with
/// `--token` (another) or `--any-token`.
pub const DEFAULT_TOKEN: &str = "emulator-token";

/// Where a message is in its life, as the emulator's ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageState {
    /// Deliverable now.
    Available,
    /// Deliverable later (a send, retry or queue delay).
    Delayed,
    /// Leased to a consumer.
    Leased,
    /// Acknowledged: done.
    Acked,
    /// Moved to the dead-letter queue after `max_retries`.
    DeadLettered,
    /// Deleted after `max_retries`, there being no dead-letter queue.
    Dropped,
    /// Deleted by a purge.
    Purged,
    /// Deleted when it outlived the retention period.
    Expired,
}

/// One message in a queue: what it holds, where it is, and what happened to it. Kept
/// after the message is gone (acked, dead-lettered, purged), so tests can inspect what a
/// service published and what its consumer did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageInfo {
    /// The message id.
    pub id: String,
    /// Current state.
    pub state: MessageState,
    /// Its content type (`text`, `json`, `bytes`, `v8`).
    pub content_type: String,
    /// The payload, decoded: a `text` body's UTF-8, a `json` body's JSON text, `bytes`
    /// and `v8` bodies as published (on the wire all but `text` travel as base64).
    pub body: Vec<u8>,
    /// When it was published, in Unix milliseconds on the emulator's clock.
    pub published_ms: u64,
    /// How long after publishing it became deliverable: its own delay, its batch's, or
    /// the queue's delivery delay (zero for none).
    pub delay: Duration,
    /// The `attempts` count of its last delivery, as the consumer saw it (0 before the
    /// first). Counts deliveries in this queue: a dead-lettered message starts over.
    pub attempts: u32,
    /// Times it was leased (the same count as `attempts`).
    pub deliveries: u32,
    /// Acks that removed it: 0 or 1.
    pub acks: u32,
    /// Acks that arrived after it was already acknowledged (harmless repeats).
    pub duplicate_acks: u32,
    /// Explicit retries.
    pub retries: u32,
    /// Leases that expired without an ack or retry.
    pub expiries: u32,
    /// Lease extensions granted (`/messages/extend`).
    pub extensions: u32,
    /// Everything that happened to it, oldest first.
    pub history: Vec<MessageEvent>,
}

impl MessageInfo {
    /// The body as text, if it is valid UTF-8 (a `text` or `json` body always is).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body decoded from JSON into `T`: a `json` message, or text that happens to be
    /// JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| crate::Error::invalid("body", e.to_string()))
    }
}

/// One event in a message's life, and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageEvent {
    /// When, in Unix milliseconds on the emulator's clock.
    pub at_ms: u64,
    /// What happened.
    pub kind: MessageEventKind,
}

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageEventKind {
    /// Published (through the REST API, or seeded), deliverable after `delay`.
    Published {
        /// Its delay: its own, its batch's, or the queue's delivery delay.
        delay: Duration,
    },
    /// Arrived here from another queue whose consumer ran out of retries.
    DeadLetterArrived {
        /// The queue it was dead-lettered from.
        from_queue_id: String,
    },
    /// Leased to a pull consumer.
    Leased {
        /// Its `attempts` count in that delivery (1 for the first).
        attempt: u32,
        /// How long the lease lasts.
        visibility_timeout: Duration,
    },
    /// Acknowledged: done.
    Acked,
    /// Acknowledged again, after it was done (a repeated ack; harmless).
    AckedAgain,
    /// Put back by an explicit retry, deliverable again after `delay`.
    Retried {
        /// The retry delay: the one asked for, or the consumer's `retry_delay`.
        delay: Duration,
    },
    /// Its lease ran out without an ack or retry.
    LeaseExpired,
    /// Moved to the dead-letter queue named `queue` after its last attempt.
    DeadLettered {
        /// The dead-letter queue's name.
        queue: String,
    },
    /// Deleted after its last attempt, there being no dead-letter queue.
    Dropped,
    /// Deleted by a purge.
    Purged,
    /// Deleted when it outlived the queue's retention period.
    Expired,
}

/// Counts over a queue's ledger ([`Emulator::summary`]): every message it has held,
/// by state, and what happened to them. Cheap to take even for a million messages: no
/// body is copied.
///
/// Serialised as the control API's `GET /__emulator/queues/{queue_id}/summary` answers
/// it (see [`EmulatorBuilder::control_api`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct QueueSummary {
    /// Messages the queue has held (its ledger's length).
    pub messages: u64,
    /// Messages in each state.
    pub by_state: StateCounts,
    /// Messages acknowledged (their `acks` is 1).
    pub acked_once: u64,
    /// Acks that arrived after their message was already acknowledged.
    pub duplicate_acks: u64,
    /// Leases given by pulls, summed over messages.
    pub deliveries: u64,
    /// Deliveries beyond the first, summed over messages delivered at least once.
    pub redeliveries: u64,
    /// Explicit retries.
    pub retries: u64,
    /// Leases that ran out without an ack or retry.
    pub expiries: u64,
    /// Lease extensions granted.
    pub extensions: u64,
}

/// Messages per [`MessageState`], as in a [`QueueSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StateCounts {
    /// Deliverable now.
    pub available: u64,
    /// Deliverable later.
    pub delayed: u64,
    /// Leased to a consumer.
    pub leased: u64,
    /// Acknowledged.
    pub acked: u64,
    /// Moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Deleted after `max_retries` without a dead-letter queue.
    pub dropped: u64,
    /// Deleted by a purge.
    pub purged: u64,
    /// Deleted when they outlived the retention period.
    pub expired: u64,
}

/// A wait helper ([`Emulator::wait_until_acked`], [`Emulator::wait_until_empty`],
/// [`Emulator::wait_until`]) ran out of time. Its message names the queue, what was
/// awaited and what the queue held, e.g. ``timed out after 2s waiting for 5
/// acknowledged message(s) in queue `results` (9d6e…): 7 messages, 3 acked, 2 leased,
/// 2 available``.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WaitTimeout {
    /// The queue waited on.
    pub queue_id: String,
    /// Its name; `None` when no queue has that id.
    pub queue_name: Option<String>,
    /// What was awaited, such as `5 acknowledged message(s)`.
    pub waited_for: String,
    /// How long it waited.
    pub timeout: Duration,
    /// The queue's messages when time ran out, in publish order.
    pub seen: Vec<MessageInfo>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {} in ",
            self.timeout, self.waited_for
        )?;
        let Some(name) = &self.queue_name else {
            return write!(f, "queue {}, which does not exist", self.queue_id);
        };
        write!(
            f,
            "queue `{name}` ({}): {} message(s)",
            self.queue_id,
            self.seen.len()
        )?;
        let states = [
            (MessageState::Available, "available"),
            (MessageState::Delayed, "delayed"),
            (MessageState::Leased, "leased"),
            (MessageState::Acked, "acked"),
            (MessageState::DeadLettered, "dead-lettered"),
            (MessageState::Dropped, "dropped"),
            (MessageState::Purged, "purged"),
            (MessageState::Expired, "expired"),
        ];
        for (state, label) in states {
            let n = self.seen.iter().filter(|m| m.state == state).count();
            if n > 0 {
                write!(f, ", {n} {label}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

/// A message inserted directly, as a Worker producer would publish it. Unlike the REST
/// push, any content type is allowed, including `bytes` and `v8`.
#[derive(Debug, Clone)]
pub struct SeedMessage {
    pub(crate) content_type: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) delay: Duration,
}

impl SeedMessage {
    /// A `text` message.
    pub fn text(body: impl Into<String>) -> Self {
        Self::raw("text", body.into().into_bytes())
    }

    /// A `json` message. A value that cannot be serialised is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), as for
    /// [`Message::json`](crate::models::Message::json).
    pub fn json<T: Serialize + ?Sized>(body: &T) -> crate::Result<Self> {
        let payload =
            serde_json::to_vec(body).map_err(|e| crate::Error::invalid("body", e.to_string()))?;
        Ok(Self::raw("json", payload))
    }

    /// A `bytes` message.
    pub fn bytes(body: impl Into<Vec<u8>>) -> Self {
        Self::raw("bytes", body.into())
    }

    /// A `v8` message (opaque bytes; HTTP consumers cannot decode it).
    pub fn v8(body: impl Into<Vec<u8>>) -> Self {
        Self::raw("v8", body.into())
    }

    /// Any content type with a raw payload.
    pub fn raw(content_type: impl Into<String>, payload: Vec<u8>) -> Self {
        SeedMessage {
            content_type: content_type.into(),
            payload,
            delay: Duration::ZERO,
        }
    }

    /// Makes the message deliverable only after `delay`.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Its content type (`text`, `json`, `bytes`, `v8`, or whatever [`raw`](Self::raw)
    /// was given).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Its payload: a `text` body's UTF-8, a `json` body's JSON text, other bodies as
    /// given.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Its delay (zero unless [`with_delay`](Self::with_delay) set one).
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

/// The emulator's clock: Tokio's clock (real time, or a paused test clock moved by
/// `tokio::time::advance`) plus whatever [`Emulator::advance`] added.
#[derive(Debug)]
struct Clock {
    origin: Instant,
    origin_unix_ms: u64,
    offset_ms: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        let origin_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4));
        Clock {
            origin: Instant::now(),
            origin_unix_ms,
            offset_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX / 4);
        self.origin_unix_ms + elapsed + self.offset_ms.load(Ordering::Relaxed)
    }
}

/// State shared by the server task and the [`Emulator`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    world: Mutex<World>,
    clock: Clock,
    account_id: String,
    /// Wrapped so that `Debug` of the emulator never prints it.
    token: Option<crate::Secret>,
    faults: Mutex<HashMap<&'static str, ActivePlan>>,
    /// Plans for one queue and operation, which win over `faults` for that queue.
    queue_faults: Mutex<HashMap<(String, &'static str), ActivePlan>>,
    /// Woken whenever the state may have changed, for the wait helpers.
    changed: tokio::sync::Notify,
    latency: Mutex<Latency>,
    /// Whether a fault plan may be installed: without one, requests skip the plans.
    faults_installed: AtomicBool,
    /// Requests per operation, in the order of `ops::ALL`.
    requests: Vec<AtomicU64>,
    /// Serve the control routes (`/__emulator/…`).
    control_api: bool,
}

impl Shared {
    /// Locks the world. A panic while holding the lock (a bug) must not wedge every
    /// later request, so a poisoned lock is taken over.
    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes whoever waits for a change of state.
    fn touched(&self) {
        self.changed.notify_waiters();
    }

    /// Counts a request of `ops::ALL[index]`.
    fn count_request(&self, index: usize) {
        if let Some(n) = self.requests.get(index) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests per operation id, those never requested left out.
    fn requests_by_operation(&self) -> BTreeMap<&'static str, u64> {
        crate::ops::ALL
            .iter()
            .zip(&self.requests)
            .map(|(op, n)| (op.id, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn has_faults(&self) -> bool {
        self.faults_installed.load(Ordering::Relaxed)
    }

    /// The fault, if any, for the next request of `op` about `queue_id`: the queue's own
    /// plan for the operation when it has one, otherwise the operation's plan.
    fn next_fault(
        &self,
        op: &'static str,
        queue_id: Option<&str>,
        now: u64,
        rng: &mut faults::Rng,
    ) -> Option<Fault> {
        if let Some(queue_id) = queue_id {
            let mut per_queue = Self::lock(&self.queue_faults);
            if let Some(plan) = per_queue.get_mut(&(queue_id.to_owned(), op)) {
                return plan.next(now, rng);
            }
        }
        Self::lock(&self.faults)
            .get_mut(op)
            .and_then(|plan| plan.next(now, rng))
    }
}

/// Configures an [`Emulator`].
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    account_id: String,
    token: Option<crate::Secret>,
    seed: u64,
    latency: Latency,
    rate_limit: Option<u32>,
    port: u16,
    control_api: bool,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            token: None,
            seed: 0x5eed,
            latency: Latency::default(),
            rate_limit: None,
            port: 0,
            control_api: false,
        }
    }
}

impl EmulatorBuilder {
    /// The account id to serve (requests for others get 401 / 10106).
    #[must_use]
    pub fn account_id(mut self, id: impl Into<String>) -> Self {
        self.account_id = id.into();
        self
    }

    /// Accept only this bearer token (others get 401 / 10106). By default any non-empty
    /// token or email + key pair is accepted.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(crate::Secret::new(token));
        self
    }

    /// Seed of the generator behind ids, faults and jitter.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Latency added to every request.
    #[must_use]
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Per-queue message-rate ceiling (messages per second) for every queue; see
    /// [`Emulator::set_rate_limit`].
    #[must_use]
    pub fn rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.rate_limit = per_second;
        self
    }

    /// Port to listen on (default 0: an ephemeral port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Serves the control API as well (off by default): routes under `/__emulator/` that
    /// let another process do what the [`Emulator`] handle does in this one, with the
    /// same credentials as the REST routes. The bodies are JSON:
    ///
    /// * `POST /__emulator/queues/{queue_id}/seed` with `{"messages": [{"content_type":
    ///   "text", "body": "…"}, {"content_type": "json" | "bytes" | "v8", "body_base64":
    ///   "…"}, …]}` (each may add `"delay_ms": n`) seeds them, as [`Emulator::seed`]
    ///   does, and answers `{"ids": […]}`;
    /// * `GET /__emulator/queues/{queue_id}/summary` answers the queue's
    ///   [`QueueSummary`];
    /// * `GET /__emulator/queues/{queue_id}/bodies?prefix=N` answers `{"bodies": […]}`:
    ///   the first `N` bytes of every payload the queue has held (all of it without
    ///   `prefix`), as UTF-8 (invalid sequences replaced), in the order of
    ///   [`Emulator::messages`];
    /// * `GET /__emulator/requests` answers `{"by_operation": {"<operation id>": n, …},
    ///   "total": n}`, as [`Emulator::requests_by_operation`] counts them.
    ///
    /// Errors come in the REST API's envelope: 401 / 10106 without valid credentials,
    /// 404 / 10104 for an unknown queue, 400 for a body it cannot read. Control requests
    /// are not counted among the requests, and take no latency or faults. The
    /// `cloudflare-queues-emulator` program turns this on with `--control`.
    #[must_use]
    pub fn control_api(mut self, on: bool) -> Self {
        self.control_api = on;
        self
    }

    /// Binds 127.0.0.1 and starts serving on the current Tokio runtime.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let clock = Clock::new();
        let mut world = World::new(self.seed);
        world.set_rate_limit(None, self.rate_limit, clock.now_ms());
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            clock,
            account_id: self.account_id,
            token: self.token,
            faults: Mutex::new(HashMap::new()),
            queue_faults: Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
            latency: Mutex::new(self.latency),
            faults_installed: AtomicBool::new(false),
            requests: crate::ops::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            control_api: self.control_api,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        Ok(Emulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Starts an emulator with default settings on an ephemeral port.
    pub async fn start() -> std::io::Result<Emulator> {
        EmulatorBuilder::default().start().await
    }

    /// Configures an emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The API root to give a client, e.g. `http://127.0.0.1:40123/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The account id served.
    pub fn account_id(&self) -> &str {
        &self.shared.account_id
    }

    /// A token the emulator accepts.
    pub fn token(&self) -> &str {
        self.shared
            .token
            .as_ref()
            .map_or(DEFAULT_TOKEN, crate::Secret::expose_secret)
    }

    /// A client builder already pointed at this emulator, for further settings.
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder()
            .api_token(self.token())
            .account_id(self.account_id())
            .base_url(self.base_url())
    }

    /// A client pointed at this emulator.
    ///
    /// # Panics
    ///
    /// Never in practice: the emulator's own URL, account and token are always valid.
    #[allow(clippy::missing_panics_doc)]
    pub fn client(&self) -> Client {
        #[allow(clippy::expect_used)]
        self.client_builder()
            .build()
            .expect("the emulator's own configuration is valid")
    }

    /// Moves the emulator's clock forward: leases expire, delays elapse and retention
    /// runs out as if that much time had passed. Nothing sleeps.
    ///
    /// Only the emulator's clock moves; a client or consumer waiting on a timer still
    /// waits in real time. To move everything at once, run the test under Tokio's
    /// paused clock and use `tokio::time::advance` (see [One clock](crate::emulator#one-clock)).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX / 4);
        self.shared.clock.offset_ms.fetch_add(ms, Ordering::Relaxed);
        self.shared.touched();
    }

    /// The emulator's current time, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// Inserts messages directly, as a Worker producer would (any content type, no
    /// limits, no rate ceiling). Returns their ids.
    pub fn seed(
        &self,
        queue_id: &str,
        messages: impl IntoIterator<Item = SeedMessage>,
    ) -> crate::Result<Vec<String>> {
        let now = self.now_ms();
        let ids = self
            .shared
            .world()
            .seed(queue_id, messages.into_iter().collect(), now)
            .map_err(|r| crate::Error::invalid("queue_id", r.message))?;
        self.shared.touched();
        Ok(ids)
    }

    /// Installs a fault plan for one operation (e.g. `&ops::PULL_MESSAGES`) on every
    /// queue, replacing any previous one. A queue's own plan for the operation
    /// ([`set_queue_faults`](Self::set_queue_faults)) wins over it.
    pub fn set_faults(&self, operation: &Operation, plan: FaultPlan) {
        let now = self.now_ms();
        Shared::lock(&self.shared.faults).insert(operation.id, ActivePlan::new(plan, now));
        self.shared.faults_installed.store(true, Ordering::Relaxed);
    }

    /// Installs a fault plan for one operation on one queue, replacing any previous
    /// plan for that pair: "the results queue refuses publishes" is
    /// `set_queue_faults(results_id, &ops::PUSH_BATCH, FaultPlan::always(Fault::Internal))`.
    ///
    /// Requests of that operation for that queue follow this plan alone (they do not
    /// advance the operation's plan for every queue); other queues are unaffected. Only
    /// operations whose path names a queue (`…/queues/{queue_id}/…`) are matched.
    pub fn set_queue_faults(&self, queue_id: &str, operation: &Operation, plan: FaultPlan) {
        let now = self.now_ms();
        Shared::lock(&self.shared.queue_faults).insert(
            (queue_id.to_owned(), operation.id),
            ActivePlan::new(plan, now),
        );
        self.shared.faults_installed.store(true, Ordering::Relaxed);
    }

    /// Removes the fault plans of one queue (those of [`set_queue_faults`](Self::set_queue_faults)).
    pub fn clear_queue_faults(&self, queue_id: &str) {
        Shared::lock(&self.shared.queue_faults).retain(|(queue, _), _| queue != queue_id);
    }

    /// Removes every fault plan, for every operation and every queue.
    pub fn clear_faults(&self) {
        Shared::lock(&self.shared.faults).clear();
        Shared::lock(&self.shared.queue_faults).clear();
        self.shared.faults_installed.store(false, Ordering::Relaxed);
    }

    /// Latency added to every request from now on.
    pub fn set_latency(&self, latency: Latency) {
        *Shared::lock(&self.shared.latency) = latency;
    }

    /// Message-rate ceiling (messages per second) of every queue, existing and future;
    /// `None` removes it. Pulls count messages delivered and pushes messages published,
    /// each against its own budget; acks are free. Past the ceiling the emulator answers
    /// 429 with code 10250 and a `Retry-After` (also as `retry-after-ms`). Cloudflare's
    /// ceiling is 5,000 messages per second per queue.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        let now = self.now_ms();
        self.shared.world().set_rate_limit(None, per_second, now);
    }

    /// Message-rate ceiling of one queue.
    pub fn set_queue_rate_limit(&self, queue_id: &str, per_second: Option<u32>) {
        let now = self.now_ms();
        self.shared
            .world()
            .set_rate_limit(Some(queue_id), per_second, now);
    }

    /// Every message the queue has held, in publish order, with its state and history.
    pub fn messages(&self, queue_id: &str) -> Vec<MessageInfo> {
        let now = self.now_ms();
        self.shared.world().ledger(queue_id, now)
    }

    /// Counts over every message the queue has held, by state and by what happened to
    /// them (deliveries, acks, expiries, …), without copying any body: the cheap way
    /// to check a large run. `None` when no queue has that id.
    pub fn summary(&self, queue_id: &str) -> Option<QueueSummary> {
        let now = self.now_ms();
        self.shared.world().summary(queue_id, now)
    }

    /// Ids of acknowledged messages, in publish order.
    pub fn acked_ids(&self, queue_id: &str) -> Vec<String> {
        self.ids_in(queue_id, MessageState::Acked)
    }

    /// Ids of messages moved to the dead-letter queue, in publish order.
    pub fn dead_lettered_ids(&self, queue_id: &str) -> Vec<String> {
        self.ids_in(queue_id, MessageState::DeadLettered)
    }

    fn ids_in(&self, queue_id: &str, state: MessageState) -> Vec<String> {
        self.messages(queue_id)
            .into_iter()
            .filter(|m| m.state == state)
            .map(|m| m.id)
            .collect()
    }

    /// The id of the queue with this name.
    pub fn queue_id(&self, name: &str) -> Option<String> {
        self.shared.world().queue_id_by_name(name)
    }

    /// Waits until at least `n` messages of the queue are acknowledged, and returns the
    /// queue's messages as they were then. Fails after `timeout` (on Tokio's clock) with
    /// a [`WaitTimeout`] naming the queue and what it held.
    pub async fn wait_until_acked(
        &self,
        queue_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MessageInfo>, WaitTimeout> {
        let what = format!("{n} acknowledged message(s)");
        self.wait_until(queue_id, timeout, &what, |messages| {
            messages
                .iter()
                .filter(|m| m.state == MessageState::Acked)
                .count()
                >= n
        })
        .await
    }

    /// Waits until at least `n` messages of the queue are dead-lettered (see
    /// [`wait_until_acked`](Self::wait_until_acked)).
    pub async fn wait_until_dead_lettered(
        &self,
        queue_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MessageInfo>, WaitTimeout> {
        let what = format!("{n} dead-lettered message(s)");
        self.wait_until(queue_id, timeout, &what, |messages| {
            messages
                .iter()
                .filter(|m| m.state == MessageState::DeadLettered)
                .count()
                >= n
        })
        .await
    }

    /// Waits until the queue holds no message: none available, delayed or leased (every
    /// message it had is acknowledged, dead-lettered, dropped, purged or expired). See
    /// [`wait_until_acked`](Self::wait_until_acked).
    pub async fn wait_until_empty(
        &self,
        queue_id: &str,
        timeout: Duration,
    ) -> Result<Vec<MessageInfo>, WaitTimeout> {
        self.wait_until(queue_id, timeout, "an empty queue", |messages| {
            messages.iter().all(|m| {
                !matches!(
                    m.state,
                    MessageState::Available | MessageState::Delayed | MessageState::Leased
                )
            })
        })
        .await
    }

    /// Waits until `done` holds for the queue's messages (in publish order, as
    /// [`messages`](Self::messages) returns them), and returns them. `what` says what is
    /// awaited, for the error: after `timeout` (on Tokio's clock) it fails with a
    /// [`WaitTimeout`] naming the queue, `what`, and the messages' states.
    ///
    /// The condition is checked again after every request the emulator serves, every
    /// seed and advance, and every 10 ms (for what time alone changes: lease expiry,
    /// delays). A queue that does not exist (yet) never satisfies it.
    pub async fn wait_until<F>(
        &self,
        queue_id: &str,
        timeout: Duration,
        what: &str,
        mut done: F,
    ) -> Result<Vec<MessageInfo>, WaitTimeout>
    where
        F: FnMut(&[MessageInfo]) -> bool,
    {
        const RECHECK: Duration = Duration::from_millis(10);
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let exists = self.shared.world().queue_name(queue_id).is_some();
            let messages = self.messages(queue_id);
            if exists && done(&messages) {
                return Ok(messages);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.wait_timeout(queue_id, what, timeout, messages));
            }
            let recheck = match deadline {
                Some(d) => (Instant::now() + RECHECK).min(d),
                None => Instant::now() + RECHECK,
            };
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(recheck) => {}
            }
        }
    }

    fn wait_timeout(
        &self,
        queue_id: &str,
        what: &str,
        timeout: Duration,
        seen: Vec<MessageInfo>,
    ) -> WaitTimeout {
        let world = self.shared.world();
        WaitTimeout {
            queue_id: queue_id.to_owned(),
            queue_name: world.queue_name(queue_id),
            waited_for: what.to_owned(),
            timeout,
            seen,
        }
    }

    /// Requests received for one operation, faulted ones included.
    pub fn requests(&self, operation: &Operation) -> u64 {
        self.shared
            .requests_by_operation()
            .get(operation.id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received per operation id (operations never requested are left out).
    pub fn requests_by_operation(&self) -> BTreeMap<&'static str, u64> {
        self.shared.requests_by_operation()
    }

    /// Total requests received.
    pub fn total_requests(&self) -> u64 {
        self.shared.requests_by_operation().values().sum()
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
