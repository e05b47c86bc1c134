//! A consumer's settings: the values [`PullConsumerBuilder`](super::PullConsumerBuilder)
//! checks and the parts of the consumer read.

use crate::retry::Backoff;
use std::time::Duration;

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

/// How settlements are batched into ack requests.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AckBatching {
    /// Most entries (acks + retries) per request. Default 100.
    pub max_entries: u32,
    /// Longest an entry waits before its batch is sent. Default 100 ms.
    pub max_delay: Duration,
    /// Most ack requests in flight. Default 8.
    pub max_concurrent_requests: u32,
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
    pub fn max_entries(mut self, n: u32) -> Self {
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
    pub fn max_concurrent_requests(mut self, n: u32) -> Self {
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

/// A consumer's settings, checked (see [`PullConsumerBuilder`](super::PullConsumerBuilder) for each).
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
    /// Lease extension; `None` when turned off.
    pub(crate) extension: Option<Extension>,
    /// Delay before a message whose handler failed (an error or a panic) is retried, by
    /// its attempts.
    pub(crate) handler_backoff: Backoff,
}

/// How handed-out deliveries' leases are extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extension {
    /// Extend when less than this is left of a lease.
    pub(crate) margin: Duration,
    /// Never hold a delivery longer than this from its first lease.
    pub(crate) max_lease: Duration,
}

impl Extension {
    /// Leases due this much after the first due one go in the same round, so that
    /// deliveries pulled at nearly the same time share requests.
    pub(crate) fn window(&self) -> Duration {
        self.margin / 2
    }
}
