//! One queue of a publisher: its id, its throttle (shared by every batch for it) and its
//! optional client-side rate limit.
//!
//! The rate limit is [`governor`]'s GCRA (a token bucket, in effect) on a clock that
//! reads Tokio's time, so it follows `tokio::time::pause()` in tests. Its burst is a
//! twentieth of a second's worth of messages (at least one batch, at most one second's
//! worth): the rate stays even over short windows, and a server that measures over a
//! tenth of a second (as the emulator does) sees at most half its window's worth at once,
//! which leaves room for requests that arrive closer together than they were sent.

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Tokio's clock, as nanoseconds since the lane was made.
#[derive(Debug, Clone, Copy)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// A token bucket of `per_second` messages.
pub(crate) struct RateLimit {
    limiter: Limiter,
    clock: TokioClock,
    burst: u32,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// `per_second` messages per second; bursts of `per_second / 20`, but at least
    /// `min_burst` (one full batch) and at most `per_second`.
    pub(crate) fn new(per_second: NonZeroU32, min_burst: u32) -> Self {
        let rate = per_second.get();
        let burst = (rate / 20).max(min_burst).min(rate).max(1);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let clock = TokioClock {
            origin: Instant::now(),
        };
        RateLimit {
            limiter: RateLimiter::direct_with_clock(
                Quota::per_second(per_second).allow_burst(burst),
                clock,
            ),
            clock,
            burst: burst.get(),
        }
    }

    /// Most messages one request may carry under this limit.
    pub(crate) fn burst(&self) -> usize {
        self.burst as usize
    }

    /// Waits until `n` messages may be sent, and takes them. Returns the time waited.
    pub(crate) async fn take(&self, n: usize) -> Duration {
        let n = u32::try_from(n.clamp(1, self.burst())).unwrap_or(self.burst);
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let started = Instant::now();
        loop {
            match self.limiter.check_n(n) {
                Ok(Ok(())) => return started.elapsed(),
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
                }
                // `n` is capped at the burst, so this cannot happen; never block on it.
                Err(_) => return started.elapsed(),
            }
        }
    }
}

/// A publisher's view of one queue.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) id: Arc<str>,
    pub(crate) rate: Option<RateLimit>,
    throttle: Mutex<Option<Instant>>,
    /// Time this lane spent throttled, in nanoseconds.
    throttled_nanos: AtomicU64,
}

impl Lane {
    pub(crate) fn new(id: &str, rate: Option<RateLimit>) -> Self {
        Lane {
            id: Arc::from(id),
            rate,
            throttle: Mutex::new(None),
            throttled_nanos: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the throttle lifts, if it is on.
    pub(crate) fn throttled_until(&self, now: Instant) -> Option<Instant> {
        (*self.lock()).filter(|until| *until > now)
    }

    /// Pauses every batch for this queue until `until` (never shortens a pause).
    pub(crate) fn throttle(&self, until: Instant) {
        let now = Instant::now();
        let mut current = self.lock();
        let from = current.filter(|c| *c > now).unwrap_or(now);
        if until > from {
            let added = until.duration_since(from);
            let nanos = u64::try_from(added.as_nanos()).unwrap_or(u64::MAX);
            self.throttled_nanos.fetch_add(nanos, Ordering::Relaxed);
            *current = Some(until);
        }
    }

    /// Total time throttled so far (including a pause still running).
    pub(crate) fn time_throttled(&self) -> Duration {
        let total = Duration::from_nanos(self.throttled_nanos.load(Ordering::Relaxed));
        let now = Instant::now();
        match self.throttled_until(now) {
            Some(until) => total.saturating_sub(until.duration_since(now)),
            None => total,
        }
    }

    /// Waits while the throttle is on. Batches resume spread over a fifth of the pause
    /// so that they do not all hit the server at the same instant.
    pub(crate) async fn wait_open(&self) {
        while let Some(until) = self.throttled_until(Instant::now()) {
            let pause = until.saturating_duration_since(Instant::now());
            let spread = pause.mul_f64(0.2 * crate::retry::random_unit());
            let at = until.checked_add(spread).unwrap_or(until);
            tokio::time::sleep_until(at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_holds_under_the_paused_clock() {
        let limit = RateLimit::new(NonZeroU32::new(1000).unwrap(), 100);
        assert_eq!(limit.burst(), 100);
        let started = Instant::now();
        let mut sent = 0;
        // Take batches of 50 for one simulated second.
        while started.elapsed() < Duration::from_secs(1) {
            limit.take(50).await;
            if started.elapsed() < Duration::from_secs(1) {
                sent += 50;
            }
        }
        // A burst of 100, then 1000 per second.
        assert!((1000..=1100).contains(&sent), "{sent}");
        let small = RateLimit::new(NonZeroU32::new(20).unwrap(), 100);
        assert_eq!(small.burst(), 20, "never more than one second's worth");
        assert_eq!(
            RateLimit::new(NonZeroU32::new(4900).unwrap(), 100).burst(),
            245
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_batches_pass_then_the_rate_applies() {
        let limit = RateLimit::new(NonZeroU32::new(1000).unwrap(), 100);
        assert_eq!(
            limit.take(100).await,
            Duration::ZERO,
            "the burst passes at once"
        );
        let waited = limit.take(100).await;
        assert!(
            (Duration::from_millis(99)..=Duration::from_millis(101)).contains(&waited),
            "{waited:?}"
        );
    }

    #[test]
    fn throttle_time_counts_overlaps_once() {
        let lane = Lane::new("q", None);
        let now = Instant::now();
        lane.throttle(now + Duration::from_secs(10));
        lane.throttle(now + Duration::from_secs(5));
        lane.throttle(now + Duration::from_secs(12));
        let total = Duration::from_nanos(lane.throttled_nanos.load(Ordering::Relaxed));
        assert!(total <= Duration::from_secs(12), "{total:?}");
        assert!(total >= Duration::from_millis(11_900), "{total:?}");
        assert!(lane.throttled_until(Instant::now()).is_some());
        assert!(lane.time_throttled() < Duration::from_secs(1));
    }
}
