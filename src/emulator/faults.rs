//! Fault and latency injection, and the per-queue message-rate ceiling. Everything
//! random here draws from one seeded generator, so a run with the same seed and the same
//! sequence of requests sees the same faults and delays.

use std::time::Duration;

/// A failure the emulator can answer a request with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 429 with the given Queues error code (10250 to 10253) and an optional
    /// `Retry-After` (sent as whole seconds and as `retry-after-ms`). Not applied.
    RateLimited {
        /// Error code to send.
        code: u32,
        /// Wait to advertise.
        retry_after: Option<Duration>,
    },
    /// HTTP 500 with code 15000. Not applied.
    Internal,
    /// HTTP 502 with an HTML body, as Cloudflare's edge sends when the origin fails. Not
    /// applied.
    BadGateway,
    /// HTTP 409 `queue_delivery_paused`, as for a paused queue. Not applied.
    Paused,
    /// Wait this long, then handle the request normally.
    Slow(Duration),
    /// Apply the request, then drop the connection before the body is sent: the client
    /// sees a transport failure although the server state changed.
    LostResponse,
}

/// When an endpoint fails.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultPlan {
    /// The n-th request gets the n-th entry (`None`: handled normally); requests past the
    /// end are handled normally.
    Script(Vec<Option<Fault>>),
    /// Each request fails with probability `rate` (0 to 1), with a fault picked uniformly
    /// from `faults`.
    Random {
        /// Probability of a fault per request.
        rate: f64,
        /// Faults to pick from.
        faults: Vec<Fault>,
    },
    /// Every request between `from` and `until` after the plan was installed (on the
    /// emulator's clock) gets `fault`.
    Window {
        /// Start of the window, from installation.
        from: Duration,
        /// End of the window, from installation.
        until: Duration,
        /// The fault inside the window.
        fault: Fault,
    },
}

impl FaultPlan {
    /// A script: the first requests get these faults, in order, then all succeed.
    pub fn script(faults: impl IntoIterator<Item = Option<Fault>>) -> Self {
        FaultPlan::Script(faults.into_iter().collect())
    }

    /// The first `n` requests fail with `fault`.
    pub fn first(n: usize, fault: Fault) -> Self {
        FaultPlan::Script(vec![Some(fault); n])
    }

    /// Every request fails with `fault`, until the plan is replaced or cleared.
    pub fn always(fault: Fault) -> Self {
        FaultPlan::Window {
            from: Duration::ZERO,
            until: Duration::MAX,
            fault,
        }
    }

    /// A random fault from `faults` with probability `rate` per request.
    pub fn random(rate: f64, faults: impl IntoIterator<Item = Fault>) -> Self {
        FaultPlan::Random {
            rate,
            faults: faults.into_iter().collect(),
        }
    }
}

/// An installed plan and its progress.
#[derive(Debug)]
pub(crate) struct ActivePlan {
    plan: FaultPlan,
    served: usize,
    installed_ms: u64,
}

impl ActivePlan {
    pub(crate) fn new(plan: FaultPlan, now_ms: u64) -> Self {
        ActivePlan {
            plan,
            served: 0,
            installed_ms: now_ms,
        }
    }

    /// The fault for the next request, if any.
    pub(crate) fn next(&mut self, now_ms: u64, rng: &mut Rng) -> Option<Fault> {
        let n = self.served;
        self.served += 1;
        match &self.plan {
            FaultPlan::Script(steps) => steps.get(n).cloned().flatten(),
            FaultPlan::Random { rate, faults } => {
                if faults.is_empty() || rng.unit() >= *rate {
                    return None;
                }
                let pick = usize::try_from(rng.next_u64() % faults.len() as u64).unwrap_or(0);
                faults.get(pick).cloned()
            }
            FaultPlan::Window { from, until, fault } => {
                let since = Duration::from_millis(now_ms.saturating_sub(self.installed_ms));
                (since >= *from && since < *until).then(|| fault.clone())
            }
        }
    }
}

/// Latency added to every request: `fixed` plus a uniform random part up to `jitter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Added to every request.
    pub fixed: Duration,
    /// Upper bound of the random part.
    pub jitter: Duration,
}

impl Latency {
    /// `fixed` latency with no jitter.
    pub fn fixed(fixed: Duration) -> Self {
        Latency {
            fixed,
            jitter: Duration::ZERO,
        }
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.fixed;
        }
        self.fixed + self.jitter.mul_f64(rng.unit())
    }
}

/// SplitMix64: small, fast, good enough to pick faults and jitter reproducibly.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }

    /// `n` random bytes as lowercase hex.
    pub(crate) fn hex(&mut self, bytes: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes * 2);
        while out.len() < bytes * 2 {
            for b in self.next_u64().to_le_bytes() {
                if out.len() < bytes * 2 {
                    out.push(char::from(DIGITS[usize::from(b >> 4)]));
                    out.push(char::from(DIGITS[usize::from(b & 0xf)]));
                }
            }
        }
        out
    }
}

/// Token bucket for a per-queue message-rate ceiling. Holds at most a tenth of a second's
/// worth of messages (and never less than one full batch), so that the ceiling is
/// measured over short windows rather than allowing a large initial burst.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    pub(crate) fn new(per_second: u32, now_ms: u64) -> Self {
        let per_second = f64::from(per_second.max(1));
        let capacity = (per_second / 10.0).max(100.0);
        TokenBucket {
            per_second,
            capacity,
            tokens: capacity,
            last_ms: now_ms,
        }
    }

    /// Takes `n` tokens, or says how long until they are available.
    pub(crate) fn take(&mut self, n: usize, now_ms: u64) -> Result<(), Duration> {
        #[allow(clippy::cast_precision_loss)]
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        #[allow(clippy::cast_precision_loss)]
        let need = n as f64;
        if need <= self.tokens {
            self.tokens -= need;
            return Ok(());
        }
        let missing = need.min(self.capacity) - self.tokens;
        Err(Duration::from_secs_f64(
            (missing / self.per_second).max(0.001),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(8).next_u64(), xs[0]);
        assert_eq!(Rng::new(1).hex(16).len(), 32);
    }

    #[test]
    fn scripts_then_normal() {
        let mut rng = Rng::new(1);
        let mut plan = ActivePlan::new(
            FaultPlan::script([Some(Fault::Internal), None, Some(Fault::Paused)]),
            0,
        );
        let got: Vec<_> = (0..5).map(|_| plan.next(0, &mut rng)).collect();
        assert_eq!(
            got,
            vec![Some(Fault::Internal), None, Some(Fault::Paused), None, None]
        );
    }

    #[test]
    fn random_rate_is_roughly_respected_and_seeded() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut plan = ActivePlan::new(
                FaultPlan::random(0.2, [Fault::Internal, Fault::BadGateway]),
                0,
            );
            (0..10_000)
                .filter(|_| plan.next(0, &mut rng).is_some())
                .count()
        };
        let n = run(42);
        assert!((1_700..2_300).contains(&n), "{n}");
        assert_eq!(n, run(42));
    }

    #[test]
    fn windows_are_time_based() {
        let mut rng = Rng::new(1);
        let plan = FaultPlan::Window {
            from: Duration::from_secs(1),
            until: Duration::from_secs(2),
            fault: Fault::Paused,
        };
        let mut plan = ActivePlan::new(plan, 10_000);
        assert_eq!(plan.next(10_500, &mut rng), None);
        assert_eq!(plan.next(11_000, &mut rng), Some(Fault::Paused));
        assert_eq!(plan.next(12_000, &mut rng), None);
    }

    #[test]
    fn bucket_enforces_the_rate() {
        let mut b = TokenBucket::new(1000, 0);
        // Capacity is 100 (a tenth of a second, at least one batch).
        assert!(b.take(100, 0).is_ok());
        let wait = b.take(50, 0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        assert!(b.take(50, 50).is_ok());
        // Over one simulated second at most capacity + rate messages pass.
        let mut b = TokenBucket::new(5000, 0);
        let passed: usize = (0..=1000)
            .map(|ms| if b.take(10, ms).is_ok() { 10 } else { 0 })
            .sum();
        assert!(passed <= 5000 + 500, "{passed}");
        assert!(passed >= 4900, "{passed}");
    }
}
