//! Decisions: what a handler returns ([`Outcome`]), what the consumer tells the server
//! about a lease ([`Decision`]), how each is counted, and how a settlement travels to
//! the flusher.

use super::report::Counters;
use crate::error::{Error, Result};
use crate::limits;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

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

/// What the consumer tells the server about one lease, and which outcome it counts as
/// once the server confirms it. One enum, so that a meaningless pair (an ack counted as a
/// release) cannot be written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Acknowledge.
    Ack,
    /// Retry after the delay (`None`: the consumer's configured `retry_delay`).
    Retry(Option<Duration>),
    /// Give the lease back now (a retry with no delay).
    Release,
    /// Given back before dispatch: too little lease was left to start it.
    ExpiredBeforeDispatch,
}

impl Decision {
    /// A retry, its delay cut to the documented maximum.
    pub(crate) fn retry(delay: Option<Duration>) -> Self {
        Decision::Retry(delay.map(|d| d.min(limits::MAX_DELAY)))
    }

    /// How it goes on the wire: `None` for an ack, else a retry with this delay.
    pub(crate) fn retry_delay(self) -> Option<Option<Duration>> {
        match self {
            Decision::Ack => None,
            Decision::Retry(delay) => Some(delay),
            Decision::Release | Decision::ExpiredBeforeDispatch => Some(Some(Duration::ZERO)),
        }
    }

    /// The counter a confirmed settlement adds to.
    pub(crate) fn counter(self, c: &Counters) -> &AtomicU64 {
        match self {
            Decision::Ack => &c.acked,
            Decision::Retry(_) => &c.retried,
            Decision::Release => &c.released,
            Decision::ExpiredBeforeDispatch => &c.expired_before_dispatch,
        }
    }
}

impl From<Outcome> for Decision {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ack => Decision::Ack,
            Outcome::Retry { delay } => Decision::retry(delay),
            Outcome::Release => Decision::Release,
        }
    }
}

/// What the server said about a settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettleOutcome {
    /// A warning the server returned for this lease, if any (e.g. a retry of a lease
    /// that had already expired).
    pub warning: Option<String>,
}

/// One settlement on its way to the flusher.
#[derive(Debug)]
pub(crate) struct Settlement {
    pub(crate) lease_id: String,
    pub(crate) decision: Decision,
    /// When its lease ends: the flusher sends it before then.
    pub(crate) deadline: Instant,
    pub(crate) reply: Option<oneshot::Sender<Result<SettleOutcome>>>,
}

impl Settlement {
    /// Tells whoever awaits it how it ended (nobody may be listening).
    pub(crate) fn answer(self, result: Result<SettleOutcome>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }

    /// Answers that the consumer could not settle it.
    pub(crate) fn closed(self) {
        self.answer(Err(Error::ConsumerClosed));
    }
}

/// What the flusher is told, in order.
#[derive(Debug)]
pub(crate) enum Command {
    Settle(Settlement),
    /// Send everything queued before this now; answer once all of it is answered.
    Flush(oneshot::Sender<()>),
    /// Send what is pending and stop; cancel what is not answered by `deadline`
    /// (`abandon`: stop without sending anything more).
    Close {
        abandon: bool,
        deadline: Instant,
    },
}

/// The pending result of a settlement. Await it for the server's confirmation, or drop
/// it: the settlement goes ahead either way.
#[must_use = "dropping is fine (the settlement still happens), but then its result is unknown"]
pub struct Settled {
    inner: SettledInner,
}

enum SettledInner {
    Ready(Option<Result<SettleOutcome>>),
    Waiting(oneshot::Receiver<Result<SettleOutcome>>),
}

impl Settled {
    pub(crate) fn ready(result: Result<SettleOutcome>) -> Self {
        Settled {
            inner: SettledInner::Ready(Some(result)),
        }
    }

    pub(crate) fn waiting(rx: oneshot::Receiver<Result<SettleOutcome>>) -> Self {
        Settled {
            inner: SettledInner::Waiting(rx),
        }
    }

    /// Waits for the ack request carrying this settlement to be answered.
    pub async fn confirmed(self) -> Result<SettleOutcome> {
        self.await
    }
}

impl fmt::Debug for Settled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Settled")
    }
}

impl IntoFuture for Settled {
    type Output = Result<SettleOutcome>;
    type IntoFuture = SettledFuture;
    fn into_future(self) -> SettledFuture {
        SettledFuture { inner: self.inner }
    }
}

/// Future of [`Settled`].
pub struct SettledFuture {
    inner: SettledInner,
}

impl fmt::Debug for SettledFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SettledFuture")
    }
}

impl Future for SettledFuture {
    type Output = Result<SettleOutcome>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            SettledInner::Ready(result) => {
                Poll::Ready(result.take().unwrap_or(Err(Error::ConsumerClosed)))
            }
            // The flusher answers every settlement; a dropped sender means it stopped.
            SettledInner::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(Error::ConsumerClosed))),
        }
    }
}
