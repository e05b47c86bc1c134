//! [`PullConsumerBuilder`]: the settings, their defaults and their checks.

use super::backend::Backend;
use super::config::{AckBatching, Config, DecodeErrorPolicy, DropPolicy, Extension, ShutdownMode};
use super::core::Core;
use super::engine::Engine;
use super::handle::PullConsumer;
use crate::api::QueueHandle;
use crate::error::{Error, Result};
use crate::limits;
use crate::retry::Backoff;
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`PullConsumer`]; start with [`QueueHandle::pull_consumer`].
#[derive(Debug, Clone)]
#[must_use = "call build() to get the consumer"]
pub struct PullConsumerBuilder {
    queue: QueueHandle,
    batch_size: u32,
    visibility_timeout: Duration,
    max_in_flight: u32,
    max_concurrent_pulls: u32,
    ack: AckBatching,
    idle_backoff: Backoff,
    error_backoff: Backoff,
    paused_poll_interval: Duration,
    lease_margin: Option<Duration>,
    on_drop: DropPolicy,
    on_decode_error: DecodeErrorPolicy,
    shutdown: ShutdownMode,
    lease_extension: bool,
    max_lease: Duration,
    extension_margin: Option<Duration>,
    handler_backoff: Backoff,
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
            lease_extension: true,
            max_lease: Duration::from_secs(3600),
            extension_margin: None,
            handler_backoff: Backoff::new(Duration::from_secs(10), Duration::from_secs(600)),
        }
    }
}

impl PullConsumerBuilder {
    /// Most messages per pull, 1 to 100. Default 100.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n;
        self
    }

    /// Lease length of each pulled message, 1 s to 12 h. Default 60 s. With lease
    /// extension (the default) this is how long a crashed worker's messages stay
    /// invisible, not a bound on processing time: keep it short.
    pub fn visibility_timeout(mut self, d: Duration) -> Self {
        self.visibility_timeout = d;
        self
    }

    /// Most deliveries held undecided at once: the runner's handler concurrency, and the
    /// stream's look-ahead. Default 256.
    pub fn max_in_flight(mut self, n: u32) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Most pull requests in flight at once. Default 4.
    pub fn max_concurrent_pulls(mut self, n: u32) -> Self {
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

    /// Whether the leases of deliveries handed to the application are extended while they
    /// are undecided (`POST …/messages/extend`). Default: on.
    ///
    /// With it, a short visibility timeout (say 60 s) suits long jobs too: a running job's
    /// lease keeps being renewed up to [`max_lease`](Self::max_lease), while a crashed
    /// worker's messages come back after one visibility timeout. Extension requests batch
    /// up to 100 leases. If the server refuses the endpoint itself (404, 405, or a 400
    /// for a single lease), extension turns off for the consumer's life with one warning
    /// and the consumer goes on as without it. The endpoint is never probed: it is called
    /// only for real leases.
    pub fn lease_extension(mut self, on: bool) -> Self {
        self.lease_extension = on;
        self
    }

    /// The longest a delivery may be held, counted from when it was leased: its lease is
    /// no longer extended after that and runs out. Default 1 h. Set it above your
    /// slowest job.
    pub fn max_lease(mut self, d: Duration) -> Self {
        self.max_lease = d;
        self
    }

    /// A handed-out delivery's lease is extended when less than this is left of it.
    /// Default: a third of the visibility timeout.
    pub fn extension_margin(mut self, d: Duration) -> Self {
        self.extension_margin = Some(d);
        self
    }

    /// Delay before a message whose handler failed (returned `Err` or panicked) is
    /// retried: exponential in the message's `attempts()` with jitter. Default 10 s,
    /// doubling, capped at 10 min (Cloudflare allows up to 24 h). An explicit
    /// [`Outcome::retry`](super::Outcome::retry) still means the consumer's server-side
    /// `retry_delay`.
    pub fn handler_backoff(mut self, backoff: Backoff) -> Self {
        self.handler_backoff = backoff;
        self
    }

    /// Checks the settings and builds the consumer. Nothing is sent until it is used.
    pub fn build(self) -> Result<PullConsumer> {
        let backend = Arc::new(self.queue.clone());
        self.build_with(backend)
    }

    /// Builds the consumer over any [`Backend`] (tests give it an in-memory fake).
    pub(crate) fn build_with(self, backend: Arc<dyn Backend>) -> Result<PullConsumer> {
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
        let extension = if self.lease_extension {
            let margin = self.extension_margin.unwrap_or(self.visibility_timeout / 3);
            if margin.is_zero() || margin >= self.visibility_timeout {
                return Err(Error::invalid(
                    "extension_margin",
                    "must be more than zero and shorter than the visibility timeout",
                ));
            }
            if self.max_lease.is_zero() {
                return Err(Error::invalid("max_lease", "must be more than zero"));
            }
            Some(Extension {
                margin,
                max_lease: self.max_lease,
            })
        } else {
            None
        };
        let cfg = Config {
            batch_size: self.batch_size,
            visibility_timeout: self.visibility_timeout,
            max_in_flight: self.max_in_flight as usize,
            max_concurrent_pulls: self.max_concurrent_pulls as usize,
            ack: self.ack,
            idle_backoff: self.idle_backoff,
            error_backoff: self.error_backoff,
            paused_poll_interval: self.paused_poll_interval,
            lease_margin,
            on_drop: self.on_drop,
            on_decode_error: self.on_decode_error,
            shutdown: self.shutdown,
            extension,
            handler_backoff: self.handler_backoff,
        };
        let (core, settle_rx) = Core::new(self.queue.id(), backend, cfg);
        Ok(PullConsumer {
            engine: Engine::new(core, settle_rx),
        })
    }
}
