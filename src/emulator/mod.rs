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
//! What it models (see `state.rs` for the rules): queues and their settings (delivery
//! delay, pause, retention); at most one consumer per queue, Worker or HTTP pull; push
//! and batch push with the documented limits and error codes; pulls with batch size,
//! visibility timeout, opaque lease ids and per-delivery `attempts`; acks and retries
//! (with a delay, or the consumer's `retry_delay`) with `ackCount` / `retryCount` /
//! `warnings`; late acks, even after redelivery; lease expiry; dead-lettering (or
//! dropping) once `attempts` reaches `max_retries`; 409 on pulls while delivery is
//! paused; purge and its status; peek and purge by ref; metrics; event subscriptions.
//!
//! For tests it adds: an injectable clock ([`Emulator::advance`]), direct seeding of
//! `bytes` and `v8` messages ([`Emulator::seed`]), seeded fault and latency injection
//! ([`Emulator::set_faults`], [`Emulator::set_latency`]), a per-queue message-rate
//! ceiling ([`Emulator::set_rate_limit`]), and inspection of every message's state and
//! the requests served ([`Emulator::messages`], [`Emulator::requests`]).
//!
//! Where the docs describe a condition without a code the emulator picks one, in the
//! 11xxx range: 11010 queue already has a consumer, 11011 pull from a queue without an
//! HTTP pull consumer, 11012 delivery paused (status 409, message
//! `queue_delivery_paused`), 11013 unknown consumer or subscription. Clients should key
//! on the status, as the docs do.

mod faults;
mod server;
mod state;

pub use faults::{Fault, FaultPlan, Latency};

use crate::{Client, ClientBuilder, Operation};
use faults::ActivePlan;
use serde::Serialize;
use state::World;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The account id the emulator serves unless told otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";

/// The token [`Emulator::client`] uses; any token is accepted unless one is configured.
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

/// One message's history in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageInfo {
    /// The message id.
    pub id: String,
    /// Current state.
    pub state: MessageState,
    /// Its content type (`text`, `json`, `bytes`, `v8`).
    pub content_type: String,
    /// Times it was leased.
    pub deliveries: u32,
    /// Acks that removed it: 0 or 1.
    pub acks: u32,
    /// Acks that arrived after it was already acknowledged (harmless repeats).
    pub duplicate_acks: u32,
    /// Explicit retries.
    pub retries: u32,
    /// Leases that expired without an ack or retry.
    pub expiries: u32,
}

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
}

/// The emulator's clock: real time plus whatever [`Emulator::advance`] added.
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
    latency: Mutex<Latency>,
    requests: Mutex<BTreeMap<&'static str, u64>>,
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
            latency: Mutex::new(self.latency),
            requests: Mutex::new(BTreeMap::new()),
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
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX / 4);
        self.shared.clock.offset_ms.fetch_add(ms, Ordering::Relaxed);
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
        self.shared
            .world()
            .seed(queue_id, messages.into_iter().collect(), now)
            .map_err(|r| crate::Error::invalid("queue_id", r.message))
    }

    /// Installs a fault plan for one operation (e.g. `&ops::PULL_MESSAGES`), replacing
    /// any previous one.
    pub fn set_faults(&self, operation: &Operation, plan: FaultPlan) {
        let now = self.now_ms();
        Shared::lock(&self.shared.faults).insert(operation.id, ActivePlan::new(plan, now));
    }

    /// Removes every fault plan.
    pub fn clear_faults(&self) {
        Shared::lock(&self.shared.faults).clear();
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

    /// Requests received for one operation, faulted ones included.
    pub fn requests(&self, operation: &Operation) -> u64 {
        Shared::lock(&self.shared.requests)
            .get(operation.id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received per operation id.
    pub fn requests_by_operation(&self) -> BTreeMap<&'static str, u64> {
        Shared::lock(&self.shared.requests).clone()
    }

    /// Total requests received.
    pub fn total_requests(&self) -> u64 {
        Shared::lock(&self.shared.requests).values().sum()
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
