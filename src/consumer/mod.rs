//! [`PullConsumer`]: a long-running HTTP pull consumer with batched acks, backoff and
//! graceful shutdown.
//!
//! ```no_run
//! use cloudflare_queues::Client;
//! use cloudflare_queues::consumer::{Outcome, ShutdownMode};
//! use std::time::Duration;
//!
//! # async fn run() -> cloudflare_queues::Result<()> {
//! let client = Client::from_env()?;
//! let consumer = client
//!     .queue("023e105f4ecef8ad9ca31a8372d0c353")
//!     .pull_consumer()
//!     .visibility_timeout(Duration::from_secs(120))
//!     .max_in_flight(64)
//!     .build()?;
//!
//! // Stop on Ctrl-C: finish running handlers, flush every ack, release the rest.
//! let shutdown = consumer.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     shutdown.shutdown(ShutdownMode::drain(Duration::from_secs(30))).await;
//! });
//!
//! let report = consumer
//!     .run(|message| async move {
//!         match message.json::<serde_json::Value>() {
//!             Ok(job) => {
//!                 println!("{}: {job}", message.id());
//!                 Outcome::Ack
//!             }
//!             Err(_) => Outcome::retry_after(Duration::from_secs(60)),
//!         }
//!     })
//!     .await?;
//! println!("{report:?}");
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! * **Pull only what can start.** Cloudflare cannot extend a lease, so a message waiting
//!   in a local buffer spends its lease and, when it runs out, one of its attempts. The
//!   consumer holds at most `max_in_flight` undecided deliveries and pulls only for free
//!   slots, with up to `max_concurrent_pulls` pulls in flight. A delivery whose lease is
//!   nearly spent before it reaches the application is released, not handed out.
//! * **Batched settlement.** `ack`, `retry` and `release` only enqueue; one background
//!   flusher sends them in batches (100 entries or 100 ms by default, sooner when a lease
//!   is about to end), retries failed requests, and checks the counts Cloudflare returns.
//! * **Backoff.** Empty pulls back off exponentially (one puller keeps polling an idle
//!   queue); 429s throttle every puller until `Retry-After`; a paused queue (409) is a
//!   quiet state polled slowly; 5xx and network errors back off with jitter and are logged
//!   once per state change. Fatal errors (queue not found, bad token, no HTTP pull
//!   consumer) end the stream with that error.
//! * **Shutdown.** [`ShutdownHandle::shutdown`] stops pulling, lets running work finish
//!   (drain) or not (release now), settles everything, and returns a [`ShutdownReport`]
//!   whose counts add up to the deliveries pulled.
//! * **At least once.** Nothing is acknowledged unless the application said so. A
//!   delivery dropped undecided is released. Messages can still be delivered twice (a
//!   lease expiring, an ack response lost), so make processing idempotent with
//!   [`ReceivedMessage::id`].

mod delivery;
mod engine;
mod flusher;
mod puller;

pub use delivery::{Delivery, ReceivedMessage, SettleOutcome, Settled, SettledFuture};

use crate::api::QueueHandle;
use crate::error::{Error, Result};
use crate::limits;
use crate::retry::Backoff;
use engine::{Action, Item, Kind, Shared};
use futures::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// What a handler decided about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Done: acknowledge it.
    Ack,
    /// Deliver it again later: after `delay`, or after the consumer's configured
    /// `retry_delay` when `None`. Counts as an attempt toward `max_retries`.
    Retry {
        /// Delay before redelivery.
        delay: Option<Duration>,
    },
    /// Give the lease back now for another consumer (a retry with no delay).
    Release,
}

impl Outcome {
    /// Retry after `delay`.
    pub fn retry_after(delay: Duration) -> Self {
        Outcome::Retry { delay: Some(delay) }
    }

    /// Retry after the consumer's configured `retry_delay`.
    pub fn retry() -> Self {
        Outcome::Retry { delay: None }
    }

    fn to_action(self) -> (Action, Kind) {
        match self {
            Outcome::Ack => (Action::Ack, Kind::Acked),
            Outcome::Retry { delay } => (
                Action::Retry(delay.map(|d| d.min(limits::MAX_DELAY))),
                Kind::Retried,
            ),
            Outcome::Release => (Action::Retry(Some(Duration::ZERO)), Kind::Released),
        }
    }
}

/// What a handler may return: an [`Outcome`], or a `Result` where `Ok` acknowledges and
/// `Err` is logged and retried after the consumer's configured `retry_delay`.
pub trait IntoOutcome {
    /// The decision.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

impl<E: std::fmt::Display> IntoOutcome for std::result::Result<(), E> {
    fn into_outcome(self) -> Outcome {
        match self {
            Ok(()) => Outcome::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "handler failed; the message will be retried");
                Outcome::retry()
            }
        }
    }
}

/// What happens to a delivery dropped without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropPolicy {
    /// Give the lease back at once (the default).
    Release,
    /// Retry after this delay.
    Retry(Duration),
}

/// What happens to a message whose body cannot be decoded (`v8`, an unknown content
/// type, broken base64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorPolicy {
    /// Retry after this delay, so that `max_retries` eventually moves it to the
    /// dead-letter queue (the default, with 60 s).
    Retry(Duration),
    /// Give the lease back at once.
    Release,
    /// Acknowledge it: the message is dropped (logged). Only for bodies you never want.
    Discard,
    /// Hand it to the application anyway; its body decoders return the error.
    Deliver,
}

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownMode {
    /// Stop pulling; let deliveries already handed out be settled within `timeout`; then
    /// release what is left and flush every pending settlement.
    Drain {
        /// How long running work may take.
        timeout: Duration,
    },
    /// Stop pulling, stop handlers, release every undecided delivery, flush.
    ReleaseNow,
    /// Stop everything without another request, as if the process died: leases run out
    /// and the messages are redelivered after the visibility timeout. For tests.
    Abandon,
}

impl ShutdownMode {
    /// [`ShutdownMode::Drain`] with `timeout`.
    pub fn drain(timeout: Duration) -> Self {
        ShutdownMode::Drain { timeout }
    }
}

/// Where the consumer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsumerState {
    /// Built, not yet pulling.
    Starting,
    /// Pulling and finding messages.
    Running,
    /// The queue is empty; polling with backoff.
    Idle,
    /// The queue's delivery is paused (409); polling slowly.
    Paused,
    /// Pulls are failing; backing off.
    BackingOff,
    /// Shutting down.
    Draining,
    /// Stopped.
    Stopped,
}

/// A snapshot of the consumer's counters. Cheap: a few atomic loads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Current state.
    pub state: ConsumerState,
    /// Messages leased.
    pub pulled: u64,
    /// Acknowledgements confirmed by the server.
    pub acked: u64,
    /// Retries confirmed by the server.
    pub retried: u64,
    /// Releases confirmed by the server (drops, explicit releases, shutdown).
    pub released: u64,
    /// Deliveries released because their lease was nearly spent before dispatch.
    pub expired_before_dispatch: u64,
    /// Settlements that failed for good (the message comes back after its lease).
    pub failed_to_settle: u64,
    /// Deliveries left to expire by [`ShutdownMode::Abandon`].
    pub abandoned: u64,
    /// Pull requests made.
    pub pull_requests: u64,
    /// Pulls that returned no message.
    pub empty_pulls: u64,
    /// Pulls that failed.
    pub pull_errors: u64,
    /// Ack requests made (retries included).
    pub ack_requests: u64,
    /// Ack requests that failed.
    pub ack_request_failures: u64,
    /// Warnings the server returned with acks.
    pub settle_warnings: u64,
    /// Message bodies that could not be decoded.
    pub decode_errors: u64,
    /// Deliveries pulled and not yet settled.
    pub in_flight: u64,
    /// `message_backlog_count` from the last pull.
    pub backlog: Option<u64>,
}

/// What a shutdown settled. `pulled` equals the sum of the other counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Messages leased over the consumer's life.
    pub pulled: u64,
    /// Acknowledged.
    pub acked: u64,
    /// Retried.
    pub retried: u64,
    /// Released (undecided, dropped, or at shutdown).
    pub released: u64,
    /// Released before dispatch because the lease was nearly spent.
    pub expired_before_dispatch: u64,
    /// Could not be settled (they come back after their lease).
    pub failed_to_settle: u64,
    /// Left to expire ([`ShutdownMode::Abandon`]).
    pub abandoned: u64,
}

impl ShutdownReport {
    fn from_stats(s: &Stats) -> Self {
        ShutdownReport {
            pulled: s.pulled,
            acked: s.acked,
            retried: s.retried,
            released: s.released,
            expired_before_dispatch: s.expired_before_dispatch,
            failed_to_settle: s.failed_to_settle,
            abandoned: s.abandoned,
        }
    }

    /// Whether every pulled message is accounted for exactly once.
    pub fn is_balanced(&self) -> bool {
        self.pulled
            == self.acked
                + self.retried
                + self.released
                + self.expired_before_dispatch
                + self.failed_to_settle
                + self.abandoned
    }
}

/// How settlements are batched into ack requests.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AckBatching {
    /// Most entries (acks + retries) per request. Default 100.
    pub max_entries: usize,
    /// Longest an entry waits before its batch is sent. Default 100 ms.
    pub max_delay: Duration,
    /// Most ack requests in flight. Default 8.
    pub max_concurrent_requests: usize,
    /// How long a failing ack request keeps being retried. Default 5 minutes.
    pub give_up_after: Duration,
    /// Backoff between retries of a failed ack request. Default 100 ms to 5 s.
    pub backoff: Backoff,
}

impl Default for AckBatching {
    fn default() -> Self {
        AckBatching {
            max_entries: 100,
            max_delay: Duration::from_millis(100),
            max_concurrent_requests: 8,
            give_up_after: Duration::from_secs(300),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).jitter(0.5),
        }
    }
}

impl AckBatching {
    /// Most entries per request.
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Longest wait before a batch is sent.
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Most ack requests in flight.
    #[must_use]
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n;
        self
    }

    /// How long a failing ack request is retried.
    #[must_use]
    pub fn give_up_after(mut self, d: Duration) -> Self {
        self.give_up_after = d;
        self
    }

    /// Backoff between retries of a failed ack request.
    #[must_use]
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }
}

/// A consumer's settings (see [`PullConsumerBuilder`] for each).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) batch_size: u32,
    pub(crate) visibility_timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) max_concurrent_pulls: usize,
    pub(crate) ack: AckBatching,
    pub(crate) idle_backoff: Backoff,
    pub(crate) error_backoff: Backoff,
    pub(crate) paused_poll_interval: Duration,
    pub(crate) lease_margin: Duration,
    pub(crate) on_drop: DropPolicy,
    pub(crate) on_decode_error: DecodeErrorPolicy,
    pub(crate) shutdown: ShutdownMode,
}

/// Builds a [`PullConsumer`]; start with [`QueueHandle::pull_consumer`].
#[derive(Debug, Clone)]
#[must_use = "call build() to get the consumer"]
pub struct PullConsumerBuilder {
    queue: QueueHandle,
    batch_size: u32,
    visibility_timeout: Duration,
    max_in_flight: usize,
    max_concurrent_pulls: usize,
    ack: AckBatching,
    idle_backoff: Backoff,
    error_backoff: Backoff,
    paused_poll_interval: Duration,
    lease_margin: Option<Duration>,
    on_drop: DropPolicy,
    on_decode_error: DecodeErrorPolicy,
    shutdown: ShutdownMode,
}

impl QueueHandle {
    /// A pull consumer for this queue (which needs an HTTP pull consumer configured, see
    /// `consumers().create_http_pull()`).
    pub fn pull_consumer(&self) -> PullConsumerBuilder {
        PullConsumerBuilder {
            queue: self.clone(),
            batch_size: 100,
            visibility_timeout: Duration::from_secs(60),
            max_in_flight: 256,
            max_concurrent_pulls: 4,
            ack: AckBatching::default(),
            idle_backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2))
                .jitter(0.5),
            error_backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
                .jitter(0.5),
            paused_poll_interval: Duration::from_secs(10),
            lease_margin: None,
            on_drop: DropPolicy::Release,
            on_decode_error: DecodeErrorPolicy::Retry(Duration::from_secs(60)),
            shutdown: ShutdownMode::Drain {
                timeout: Duration::from_secs(30),
            },
        }
    }
}

impl PullConsumerBuilder {
    /// Most messages per pull, 1 to 100. Default 100.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n;
        self
    }

    /// Lease length of each pulled message, 1 s to 12 h. Default 60 s. Keep it above your
    /// slowest processing time: Cloudflare cannot extend a lease.
    pub fn visibility_timeout(mut self, d: Duration) -> Self {
        self.visibility_timeout = d;
        self
    }

    /// Most deliveries held undecided at once: the runner's handler concurrency, and the
    /// stream's look-ahead. Default 256.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Most pull requests in flight at once. Default 4.
    pub fn max_concurrent_pulls(mut self, n: usize) -> Self {
        self.max_concurrent_pulls = n;
        self
    }

    /// How settlements are batched.
    pub fn ack_batching(mut self, ack: AckBatching) -> Self {
        self.ack = ack;
        self
    }

    /// Backoff while the queue is empty. Default 50 ms to 2 s, 50 % jitter.
    pub fn idle_backoff(mut self, b: Backoff) -> Self {
        self.idle_backoff = b;
        self
    }

    /// Backoff while pulls fail (5xx, network, 429 without `Retry-After`). Default 200 ms
    /// to 30 s, 50 % jitter.
    pub fn error_backoff(mut self, b: Backoff) -> Self {
        self.error_backoff = b;
        self
    }

    /// How often a paused queue is polled. Default 10 s.
    pub fn paused_poll_interval(mut self, d: Duration) -> Self {
        self.paused_poll_interval = d;
        self
    }

    /// A delivery with less lease than this left when it would be handed out is released
    /// instead. Default: a tenth of the visibility timeout, between 250 ms and 10 s.
    pub fn lease_margin(mut self, d: Duration) -> Self {
        self.lease_margin = Some(d);
        self
    }

    /// What happens to a delivery dropped undecided. Default: release.
    pub fn on_drop(mut self, policy: DropPolicy) -> Self {
        self.on_drop = policy;
        self
    }

    /// What happens to a message whose body cannot be decoded. Default: retry after 60 s.
    pub fn on_decode_error(mut self, policy: DecodeErrorPolicy) -> Self {
        self.on_decode_error = policy;
        self
    }

    /// The mode [`PullConsumer::run`] shuts down with when the stream ends by itself (a
    /// fatal error). Default: drain with a 30 s timeout.
    pub fn shutdown_mode(mut self, mode: ShutdownMode) -> Self {
        self.shutdown = mode;
        self
    }

    /// Checks the settings and builds the consumer. Nothing is sent until it is used.
    pub fn build(self) -> Result<PullConsumer> {
        limits::check_count("batch_size", self.batch_size, 1, limits::MAX_PULL_BATCH)?;
        limits::check_duration(
            "visibility_timeout",
            self.visibility_timeout,
            Duration::from_secs(1),
            limits::MAX_VISIBILITY_TIMEOUT,
        )?;
        if self.max_in_flight == 0 {
            return Err(Error::invalid("max_in_flight", "must be at least 1"));
        }
        if self.max_concurrent_pulls == 0 {
            return Err(Error::invalid("max_concurrent_pulls", "must be at least 1"));
        }
        if self.ack.max_entries == 0 || self.ack.max_concurrent_requests == 0 {
            return Err(Error::invalid(
                "ack_batching",
                "max_entries and max_concurrent_requests must be at least 1",
            ));
        }
        let lease_margin = self.lease_margin.unwrap_or_else(|| {
            (self.visibility_timeout / 10)
                .clamp(Duration::from_millis(250), Duration::from_secs(10))
        });
        if lease_margin >= self.visibility_timeout {
            return Err(Error::invalid(
                "lease_margin",
                "must be shorter than the visibility timeout",
            ));
        }
        let cfg = Config {
            batch_size: self.batch_size,
            visibility_timeout: self.visibility_timeout,
            max_in_flight: self.max_in_flight,
            max_concurrent_pulls: self.max_concurrent_pulls,
            ack: self.ack,
            idle_backoff: self.idle_backoff,
            error_backoff: self.error_backoff,
            paused_poll_interval: self.paused_poll_interval,
            lease_margin,
            on_drop: self.on_drop,
            on_decode_error: self.on_decode_error,
            shutdown: self.shutdown,
        };
        Ok(PullConsumer {
            shared: Shared::new(self.queue, cfg),
        })
    }
}

/// A pull consumer for one queue. Use it as a [`Stream`] of deliveries
/// ([`PullConsumer::stream`]) or give it a handler ([`PullConsumer::run`]).
#[derive(Debug)]
pub struct PullConsumer {
    shared: Arc<Shared>,
}

impl PullConsumer {
    /// A handle that can stop the consumer from anywhere (e.g. a signal task).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Watches the consumer's state.
    pub fn state_changes(&self) -> watch::Receiver<ConsumerState> {
        self.shared.watch_state()
    }

    /// The deliveries, as a `Stream`. Pulling starts on the first poll.
    ///
    /// **Cancel safe:** `next()` only takes an already-received delivery from a channel,
    /// so dropping the future (in a `select!`, say) loses nothing; the delivery stays for
    /// the next call. The stream yields `Err` once, for a fatal error, and ends after it
    /// or once shutdown begins. Dropping the stream without a shutdown releases what it
    /// holds in the background.
    pub fn stream(self) -> DeliveryStream {
        DeliveryStream {
            shared: self.shared.clone(),
            ended: false,
            started: false,
        }
    }

    /// Runs `handler` on every message, at most `max_in_flight` at once, each in its own
    /// task, until shut down through a [`ShutdownHandle`] (returning its report) or
    /// stopped by a fatal error (returned after draining).
    ///
    /// The handler returns an [`Outcome`] (or a `Result<(), E>`: `Ok` acks, `Err` retries).
    /// A handler that panics, or is cancelled by shutdown, has its message released. No
    /// handler starts once shutdown has begun.
    pub async fn run<H, F, O>(self, handler: H) -> Result<ShutdownReport>
    where
        H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
        F: Future<Output = O> + Send + 'static,
        O: IntoOutcome + Send + 'static,
    {
        use futures::StreamExt as _;
        let shared = self.shared.clone();
        let handler = Arc::new(handler);
        let mut stream = self.stream();
        let mut tasks = JoinSet::new();
        let mut fatal = None;
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(delivery)) => {
                        tasks.spawn(run_handler(shared.clone(), handler.clone(), delivery));
                    }
                    Some(Err(err)) => fatal = Some(err),
                    None => break,
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_handler_end(done),
            }
        }
        let wait_handlers = async {
            while let Some(done) = tasks.join_next().await {
                log_handler_end(done);
            }
        };
        let (report, ()) = tokio::join!(shared.shutdown(shared.cfg.shutdown), wait_handlers);
        match fatal {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }
}

async fn run_handler<H, F, O>(shared: Arc<Shared>, handler: Arc<H>, delivery: Delivery)
where
    H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: IntoOutcome + Send + 'static,
{
    let (msg, ticket) = delivery.into_parts();
    let Some(ticket) = ticket else { return };
    if !shared.enter_handler() {
        // Shutdown has begun: the ticket is dropped, which releases the message.
        return;
    }
    let _running = HandlerGuard(shared.clone());
    let mut abort = shared.abort_signal();
    let span = tracing::debug_span!(
        "cfq.handle",
        message_id = msg.id(),
        attempts = msg.attempts(),
        lease_remaining_ms = u64::try_from(msg.lease_remaining().as_millis()).unwrap_or(u64::MAX),
    );
    let work = handler(msg).instrument(span);
    tokio::select! {
        out = work => {
            let (action, kind) = out.into_outcome().to_action();
            drop(ticket.settle(action, kind));
        }
        // Cancelled by shutdown: dropping the ticket releases the message.
        _ = abort.wait_for(|a| *a) => {}
    }
}

struct HandlerGuard(Arc<Shared>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        self.0.leave_handler();
    }
}

fn log_handler_end(done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a message handler panicked; its message was released");
        }
    }
}

/// The consumer as a [`Stream`] of [`Delivery`]s (see [`PullConsumer::stream`]).
#[derive(Debug)]
pub struct DeliveryStream {
    shared: Arc<Shared>,
    ended: bool,
    /// Whether this stream already started the engine (saves a lock per poll).
    started: bool,
}

impl DeliveryStream {
    /// A handle that can stop the consumer.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Watches the consumer's state.
    pub fn state_changes(&self) -> watch::Receiver<ConsumerState> {
        self.shared.watch_state()
    }
}

impl Stream for DeliveryStream {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if !self.started {
            self.shared.ensure_started();
            self.started = true;
        }
        loop {
            let item = {
                let mut rx = engine::lock(&self.shared.items_rx);
                match rx.poll_recv(cx) {
                    Poll::Ready(item) => item,
                    Poll::Pending => return Poll::Pending,
                }
            };
            match item {
                Some(Item::Delivery(d)) if self.shared.is_shutting_down() => {
                    // Shutdown has begun: nothing more is handed out.
                    drop(d.release());
                }
                Some(Item::Delivery(d)) => {
                    if d.lease_remaining() < self.shared.cfg.lease_margin {
                        tracing::debug!(
                            message_id = d.id(),
                            "lease nearly spent before dispatch; releasing"
                        );
                        drop(d.decide(
                            Action::Retry(Some(Duration::ZERO)),
                            Kind::ExpiredBeforeDispatch,
                        ));
                        continue;
                    }
                    return Poll::Ready(Some(Ok(d)));
                }
                Some(Item::Fatal(err)) => return Poll::Ready(Some(Err(err))),
                Some(Item::End) | None => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Drop for DeliveryStream {
    fn drop(&mut self) {
        if self.shared.is_shutting_down() || !self.shared.has_started() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                tracing::warn!(
                    "pull consumer stream dropped without shutdown; releasing its deliveries in the background"
                );
                let shared = self.shared.clone();
                rt.spawn(async move {
                    shared.shutdown(ShutdownMode::ReleaseNow).await;
                });
            }
            Err(_) => {
                tracing::warn!(
                    "pull consumer stream dropped outside a runtime; its leases will expire"
                );
            }
        }
    }
}

/// Stops a consumer; cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Shuts down and waits until it is done. Calling it again (from anywhere) waits for
    /// the same shutdown and returns the same report.
    pub async fn shutdown(&self, mode: ShutdownMode) -> ShutdownReport {
        self.shared.shutdown(mode).await
    }

    /// Sends every pending settlement now and waits for the server's answers.
    pub async fn flush(&self) {
        self.shared.flush().await;
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}
