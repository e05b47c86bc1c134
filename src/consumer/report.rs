//! What the consumer reports: its state, a snapshot of its counters, the shutdown
//! report, and the atomic counters behind them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where the consumer is. Serialises as its name in snake case (`"running"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// A background task failed (see [`Error::ConsumerFailed`](crate::Error::ConsumerFailed)):
    /// no more pulls; waiting for shutdown.
    Failed,
    /// Shutting down.
    Draining,
    /// Stopped.
    Stopped,
}

/// A snapshot of the consumer's counters. Cheap: a few atomic loads. Serialises to a JSON
/// object with the field names below, for a daemon's status endpoint or logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// Deliveries left to expire by [`ShutdownMode::Abandon`](super::ShutdownMode::Abandon).
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
    /// Messages whose body (or whole entry) could not be decoded; each went through the
    /// decode-error policy.
    pub decode_errors: u64,
    /// Pulled entries without a readable lease id: they could not be settled (counted
    /// under `failed_to_settle` too) and come back after their lease.
    pub unreadable: u64,
    /// Messages a pull returned beyond what was asked for; released at once (counted
    /// under `released` too).
    pub over_delivered: u64,
    /// Lease extension requests made (retries included).
    pub extension_requests: u64,
    /// Leases the server extended.
    pub leases_extended: u64,
    /// Extension requests that failed.
    pub extension_failures: u64,
    /// Whether leases are being extended: on by default, off if turned off on the
    /// builder or if the server refused the endpoint.
    pub extension_active: bool,
    /// Deliveries pulled and not yet settled.
    pub in_flight: u64,
    /// `message_backlog_count` from the last pull.
    pub backlog: Option<u64>,
}

/// What a shutdown settled. `pulled` equals the sum of the other counts. Serialises to a
/// JSON object with the field names below.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// Left to expire ([`ShutdownMode::Abandon`](super::ShutdownMode::Abandon)).
    pub abandoned: u64,
}

impl ShutdownReport {
    pub(crate) fn from_stats(s: &Stats) -> Self {
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

/// The consumer's counters: plain atomics, so counting never takes a lock. A snapshot
/// is a [`Stats`].
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) pulled: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) expired_before_dispatch: AtomicU64,
    pub(crate) failed_to_settle: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) pull_requests: AtomicU64,
    pub(crate) empty_pulls: AtomicU64,
    pub(crate) pull_errors: AtomicU64,
    pub(crate) ack_requests: AtomicU64,
    pub(crate) ack_request_failures: AtomicU64,
    pub(crate) settle_warnings: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) unreadable: AtomicU64,
    pub(crate) over_delivered: AtomicU64,
    pub(crate) extension_requests: AtomicU64,
    pub(crate) leases_extended: AtomicU64,
    pub(crate) extension_failures: AtomicU64,
    /// Whether lease extension is on (it turns off if the server refuses the endpoint).
    pub(crate) extension_active: AtomicBool,
    /// `message_backlog_count` of the last pull; `u64::MAX` until one arrives.
    pub(crate) backlog: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        let zero = || AtomicU64::new(0);
        Counters {
            pulled: zero(),
            acked: zero(),
            retried: zero(),
            released: zero(),
            expired_before_dispatch: zero(),
            failed_to_settle: zero(),
            abandoned: zero(),
            pull_requests: zero(),
            empty_pulls: zero(),
            pull_errors: zero(),
            ack_requests: zero(),
            ack_request_failures: zero(),
            settle_warnings: zero(),
            decode_errors: zero(),
            unreadable: zero(),
            over_delivered: zero(),
            extension_requests: zero(),
            leases_extended: zero(),
            extension_failures: zero(),
            extension_active: AtomicBool::new(false),
            backlog: AtomicU64::new(u64::MAX),
        }
    }
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot, with the state and the number of undecided deliveries filled in.
    pub(crate) fn snapshot(&self, state: ConsumerState, in_flight: usize) -> Stats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let backlog = get(&self.backlog);
        Stats {
            state,
            pulled: get(&self.pulled),
            acked: get(&self.acked),
            retried: get(&self.retried),
            released: get(&self.released),
            expired_before_dispatch: get(&self.expired_before_dispatch),
            failed_to_settle: get(&self.failed_to_settle),
            abandoned: get(&self.abandoned),
            pull_requests: get(&self.pull_requests),
            empty_pulls: get(&self.empty_pulls),
            pull_errors: get(&self.pull_errors),
            ack_requests: get(&self.ack_requests),
            ack_request_failures: get(&self.ack_request_failures),
            settle_warnings: get(&self.settle_warnings),
            decode_errors: get(&self.decode_errors),
            unreadable: get(&self.unreadable),
            over_delivered: get(&self.over_delivered),
            extension_requests: get(&self.extension_requests),
            leases_extended: get(&self.leases_extended),
            extension_failures: get(&self.extension_failures),
            extension_active: self.extension_active.load(Ordering::Relaxed),
            in_flight: in_flight as u64,
            backlog: (backlog != u64::MAX).then_some(backlog),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_reports_serialise_with_their_field_names() {
        let stats = Counters::default().snapshot(ConsumerState::BackingOff, 3);
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["state"], "backing_off");
        assert_eq!(json["in_flight"], 3);
        assert_eq!(json["backlog"], serde_json::Value::Null);
        assert_eq!(json["extension_active"], false);
        let report = ShutdownReport::from_stats(&stats);
        let json = serde_json::to_value(&report).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "abandoned",
                "acked",
                "expired_before_dispatch",
                "failed_to_settle",
                "pulled",
                "released",
                "retried"
            ]
        );
    }
}
