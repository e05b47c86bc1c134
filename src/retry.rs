//! The retry policy: which failures are retried, how long to wait, and how often.
//!
//! This is the only place that decides whether a failed request is sent again.
//!
//! **Classification** looks at the Queues error code before the HTTP status, because
//! Cloudflare answers 429 both for a transient overload (10250, retry) and for hard
//! limits (10251 storage full, 10252 queue disabled, 10253 free-tier limit: never retry).
//! Retried: 10250, 10201 (client disconnected), 15000 (internal error), any 5xx, 408,
//! a 429 without a non-retryable code, timeouts and network failures. Everything else
//! (other 4xx, undecodable 2xx bodies, invalid input) is returned at once.
//!
//! **Duplicates.** Publishing (`send`, `send_batch`) and creating resources are not
//! idempotent. They are retried only when the server answered with a retryable error
//! (it says it did not apply the request) or when the connection could not even be
//! opened. A timeout or a connection dropped after the request left is returned to the
//! caller instead, because the message may already be stored: retrying could publish it
//! twice. Reads, updates, deletes, pulls and acks (keyed by lease id) are retried on
//! any retryable failure.
//!
//! **Timeouts** bound what the policy may do: see [`RetryPolicy`] and `transport.rs`,
//! which checks the total timeout's deadline before every sleep and around every attempt.
//!
//! **Delays** come from the server when it sends `retry-after-ms` or `Retry-After`
//! (seconds or an HTTP date), capped at [`RetryPolicy::max_retry_after`]; otherwise from
//! [`Backoff`]: exponential growth from `initial` by `multiplier`, capped at `max`, minus
//! a random fraction (`jitter`) so that many clients do not retry in lockstep.

// Classification lives with the error type; the policy only reads it, so the two
// modules depend on each other in one direction.
use crate::error::Error;
pub(crate) use crate::error::{Class, classify};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// Exponential backoff with jitter. The schedule is a pure function: see [`Backoff::delay`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
}

impl Backoff {
    /// Backoff starting at `initial` and capped at `max`, doubling each step, with 25 %
    /// jitter.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            multiplier: 2.0,
            jitter: 0.25,
        }
    }

    /// Growth factor per step (at least 1).
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Fraction of each delay that is randomised away, from 0 (none) to 1 ("full jitter":
    /// anywhere between zero and the computed delay).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// First delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// Largest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before step `step` (1 for the first retry), given `sample`, a uniform
    /// random number in `[0, 1)`: `min(initial * multiplier^(step-1), max)`, reduced by
    /// `jitter * sample` of itself. Pure: the same inputs always give the same delay.
    pub fn delay(&self, step: u32, sample: f64) -> Duration {
        let exponent = i32::try_from(step.saturating_sub(1)).unwrap_or(i32::MAX);
        let raw = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = if raw.is_finite() {
            raw.min(self.max.as_secs_f64())
        } else {
            self.max.as_secs_f64()
        };
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Duration::from_secs_f64((capped * (1.0 - self.jitter * sample)).max(0.0))
    }

    /// [`Backoff::delay`] with a fresh random sample.
    pub fn delay_random(&self, step: u32) -> Duration {
        self.delay(step, random_unit())
    }
}

/// How a client retries failed requests. Set per client with
/// [`ClientBuilder::retry_policy`](crate::ClientBuilder::retry_policy) and per request
/// with the `retry_policy` setter of any request builder.
///
/// The default makes up to 4 attempts, waiting about 0.2 s, 0.4 s and 0.8 s (25 % jitter,
/// capped at 8 s), and honours a server-sent `Retry-After` of up to 60 s.
///
/// **With timeouts.** The per-attempt timeout
/// ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout), default 60 s) applies to
/// each attempt anew; an attempt that times out counts as a failure like a lost
/// connection (retried for reads, pulls, acks, updates and deletes; not for publishes
/// and creates). So without a total timeout a call can last `max_attempts` ×
/// per-attempt timeout plus the delays. The total timeout
/// ([`ClientBuilder::total_timeout`](crate::ClientBuilder::total_timeout)) caps the
/// whole: the attempt in flight when it runs out is abandoned, and a retry whose delay
/// (backoff or `Retry-After`) would end at or past it is not waited for. Either way the
/// call fails with [`Error::TotalTimeout`](crate::Error::TotalTimeout), whose source is
/// the last attempt's error. The policy decides how often and how soon; the timeouts,
/// how long.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(8)),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Total attempts, the first included (1 disables retries; 0 is treated as 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff used when the server gives no `Retry-After`.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The longest server-requested wait that is honoured; longer requests are cut to it.
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Total attempts allowed.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff schedule.
    pub fn backoff_schedule(&self) -> &Backoff {
        &self.backoff
    }

    /// Delay before attempt `attempt + 1` after attempt `attempt` failed. A server hint
    /// wins over the backoff, capped at `max_retry_after`. Pure given `sample`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, sample: f64) -> Duration {
        match retry_after {
            Some(hint) => hint.min(self.max_retry_after),
            None => self.backoff.delay(attempt, sample),
        }
    }

    /// Whether attempt number `attempt` (1-based), which failed with `err`, may be
    /// followed by another for a request that is (or is not) idempotent.
    pub fn should_retry(&self, err: &Error, attempt: u32, idempotent: bool) -> bool {
        if attempt >= self.max_attempts {
            return false;
        }
        match classify(err) {
            Class::Fatal => false,
            Class::Answered => true,
            Class::NotSent => true,
            Class::MaybeApplied => idempotent,
        }
    }
}

/// Reads `retry-after-ms` (milliseconds, may be fractional) or `Retry-After` (seconds or
/// an HTTP date, relative to `now`). Pure given `now`. Any value a server can send is
/// either understood or ignored: negative, non-finite, out-of-range and malformed values
/// give `None`, and a date too far ahead for the platform's clock gives `Duration::MAX`
/// (the caller caps it), so nothing here can panic or overflow.
pub(crate) fn parse_retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0) {
            return Some(d);
        }
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    // `httpdate` accepts the three date formats RFC 9110 allows and refuses years past
    // 9999, so the conversion to `SystemTime` cannot overflow.
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A uniform random number in `[0, 1)` for jitter. Not cryptographic; seeded per call
/// from the standard library's randomly keyed hasher, so no extra dependency is needed.
pub(crate) fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    #[allow(clippy::cast_precision_loss)]
    let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use std::time::UNIX_EPOCH;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_grows_exponentially_and_caps() {
        let b = Backoff::new(ms(100), ms(1000)).jitter(0.0);
        let steps: Vec<_> = (1..=6).map(|n| b.delay(n, 0.5)).collect();
        assert_eq!(
            steps,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(
            b.delay(u32::MAX, 0.0),
            ms(1000),
            "huge steps stay at the cap"
        );
    }

    #[test]
    fn jitter_only_shortens_by_at_most_its_fraction() {
        let b = Backoff::new(ms(1000), ms(10_000)).jitter(0.25);
        assert_eq!(b.delay(1, 0.0), ms(1000));
        assert_eq!(b.delay(1, 1.0), ms(750));
        assert_eq!(b.delay(2, 0.5), ms(1750));
        let full = Backoff::new(ms(1000), ms(10_000)).jitter(1.0);
        assert_eq!(full.delay(1, 1.0), Duration::ZERO);
        for _ in 0..1000 {
            let d = b.delay_random(3);
            assert!(d > ms(2999) && d <= ms(4000), "{d:?}");
        }
    }

    #[test]
    fn server_hint_wins_and_is_capped() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(5));
        assert_eq!(p.delay(1, Some(ms(1500)), 0.9), ms(1500));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600)), 0.9),
            Duration::from_secs(5)
        );
        assert_eq!(p.delay(1, None, 0.0), ms(200));
        assert_eq!(p.delay(3, None, 0.0), ms(800));
    }

    #[test]
    fn retry_after_headers_are_parsed() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250.5"));
        assert_eq!(
            parse_retry_after(&h, now),
            Some(Duration::from_micros(250_500))
        );
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:47 GMT"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(10)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:00 GMT"),
        );
        assert_eq!(
            parse_retry_after(&h, now),
            Some(Duration::ZERO),
            "a past date means now"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
        // The obsolete formats RFC 9110 still asks recipients to accept.
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sunday, 06-Nov-94 08:49:57 GMT"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(20)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun Nov  6 08:50:37 1994"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(60)));
    }

    #[test]
    fn absurd_retry_after_values_are_ignored_not_a_panic() {
        // The year that once overflowed the hand-written date parser, and its friends.
        let now = SystemTime::now();
        for value in [
            "Sun, 06 Nov 300000000000 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun, 06 Nov -1 08:49:37 GMT",
            "Sun, 32 Nov 2026 08:49:37 GMT",
            "-5",
            "NaN",
            "inf",
            "1e300",
        ] {
            let mut h = HeaderMap::new();
            h.insert("retry-after", HeaderValue::from_str(value).unwrap());
            assert_eq!(parse_retry_after(&h, now), None, "{value}");
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", HeaderValue::from_str(value).unwrap());
            assert_eq!(parse_retry_after(&h, now), None, "ms {value}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("18446744073709551616"),
        );
        assert_eq!(parse_retry_after(&h, now), None, "past u64 seconds");
        // The largest date httpdate accepts is far ahead but representable.
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"),
        );
        let wait = parse_retry_after(&h, now).unwrap();
        assert!(wait > Duration::from_secs(200 * 365 * 86_400));
        assert_eq!(
            RetryPolicy::default().delay(1, Some(wait), 0.5),
            Duration::from_secs(60),
            "capped by the policy"
        );
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy::default().max_attempts(2);
        let err = Error::invalid("x", "y");
        assert!(
            !p.should_retry(&err, 1, true),
            "invalid input is never retried"
        );
        assert_eq!(RetryPolicy::none().attempts(), 1);
        assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
    }
}
