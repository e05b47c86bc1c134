//! The publisher's counters, and the two views of them: [`PublisherStats`] (any time)
//! and [`PublisherReport`] (at shutdown).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Plain counters, shared by the task and the batch senders.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) possibly_duplicated: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) ambiguous: AtomicU64,
    pub(crate) resent_after_ambiguous: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A snapshot of a publisher's counters. Cheap: a few atomic loads.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Messages accepted by `publish` / `try_publish`.
    pub accepted: u64,
    /// Messages the server confirmed stored.
    pub published: u64,
    /// Messages that failed for good.
    pub failed: u64,
    /// Of `published`, those that may be stored twice (sent again after an unknown
    /// outcome).
    pub possibly_duplicated: u64,
    /// Accepted messages without an outcome yet.
    pub outstanding_messages: u64,
    /// Their encoded size, in bytes.
    pub outstanding_bytes: u64,
    /// Batch requests made, resends included.
    pub requests: u64,
    /// Requests answered 429 (throttled and sent again, or failed for 10251-10253).
    pub rate_limited_responses: u64,
    /// Requests whose outcome was unknown (timeouts, connections lost after sending).
    pub ambiguous_responses: u64,
    /// Messages sent again after an unknown outcome: at most this many extra copies.
    pub resent_after_ambiguous: u64,
    /// Messages carried per request, resends included (0 before the first request).
    pub mean_batch_size: f64,
    /// Time the throttle held batches back, summed over the publisher's queues.
    pub time_throttled: Duration,
}

/// What a publisher did over its life, returned by
/// [`Publisher::shutdown`](super::Publisher::shutdown). Once every accepted message
/// has its outcome, `accepted == published + failed`
/// ([`PublisherReport::is_balanced`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PublisherReport {
    /// Messages accepted.
    pub accepted: u64,
    /// Messages the server confirmed stored.
    pub published: u64,
    /// Messages that failed for good (each got its error).
    pub failed: u64,
    /// Of `published`, those that may be stored twice.
    pub possibly_duplicated: u64,
    /// Messages sent again after an unknown outcome: at most this many extra copies
    /// (exactly this many when every unknown outcome was in fact a stored batch).
    pub resent_after_ambiguous: u64,
    /// Batch requests made, resends included.
    pub requests: u64,
    /// Requests answered 429.
    pub rate_limited_responses: u64,
    /// Messages carried per request, resends included.
    pub mean_batch_size: f64,
    /// Time the throttle held batches back, summed over the publisher's queues.
    pub time_throttled: Duration,
}

impl PublisherReport {
    /// Whether every accepted message is counted once, as published or failed.
    pub fn is_balanced(&self) -> bool {
        self.accepted == self.published + self.failed
    }
}

pub(crate) fn stats(
    c: &Counters,
    outstanding: (usize, usize),
    time_throttled: Duration,
) -> PublisherStats {
    let requests = Counters::get(&c.requests);
    PublisherStats {
        accepted: Counters::get(&c.accepted),
        published: Counters::get(&c.published),
        failed: Counters::get(&c.failed),
        possibly_duplicated: Counters::get(&c.possibly_duplicated),
        outstanding_messages: outstanding.0 as u64,
        outstanding_bytes: outstanding.1 as u64,
        requests,
        rate_limited_responses: Counters::get(&c.rate_limited),
        ambiguous_responses: Counters::get(&c.ambiguous),
        resent_after_ambiguous: Counters::get(&c.resent_after_ambiguous),
        mean_batch_size: mean(Counters::get(&c.messages_sent), requests),
        time_throttled,
    }
}

pub(crate) fn report(s: &PublisherStats) -> PublisherReport {
    PublisherReport {
        accepted: s.accepted,
        published: s.published,
        failed: s.failed,
        possibly_duplicated: s.possibly_duplicated,
        resent_after_ambiguous: s.resent_after_ambiguous,
        requests: s.requests,
        rate_limited_responses: s.rate_limited_responses,
        mean_batch_size: s.mean_batch_size,
        time_throttled: s.time_throttled,
    }
}

#[allow(clippy::cast_precision_loss)]
fn mean(total: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}
