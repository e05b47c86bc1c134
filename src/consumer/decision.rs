//! Decisions: what a handler returns ([`Outcome`]), what the consumer tells the server
//! about a lease ([`Decision`]), how each is counted, and how a settlement travels to
//! the flusher.

use super::report::Counters;
use crate::error::{Error, Result};
use crate::limits;
use crate::retry::Backoff;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a handler decided about a message.
///
/// Deliberately *not* `#[non_exhaustive]`: these are the three things the Queues API can
/// do with a lease (acknowledge it, retry it with a delay, give it back), so a `match`
/// over an `Outcome` needs no wildcard arm. A fourth would be a new API capability and a
/// breaking release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// Retry after the consumer's server-side `retry_delay` (the HTTP pull consumer's
    /// setting), not the client-side handler backoff that failures get.
    pub fn retry() -> Self {
        Outcome::Retry { delay: None }
    }
}

/// What code under test decided about a message (see
/// [`testing`](crate::testing)).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decided {
    /// Acknowledged.
    Ack,
    /// Retried explicitly, after `delay` (`None`: the consumer's server-side
    /// `retry_delay`).
    Retry {
        /// The delay asked for.
        delay: Option<Duration>,
    },
    /// Released (given back at once).
    Release,
    /// The handler failed (an `Err`, or a panic): the consumer would log it and retry
    /// after its handler backoff.
    Failed {
        /// The error chain (`outer: cause`), or `panicked: <message>`.
        error: String,
    },
    /// Dropped undecided: the consumer's drop policy applies (release, by default).
    Dropped,
}

/// Where a test delivery records its decision.
#[cfg(feature = "testing")]
pub(crate) type ProbeSlot = std::sync::Arc<std::sync::Mutex<Option<Decided>>>;

#[cfg(feature = "testing")]
impl Decided {
    pub(crate) fn of(decision: Decision) -> Self {
        match decision {
            Decision::Ack => Decided::Ack,
            Decision::Retry(delay) => Decided::Retry { delay },
            Decision::Release | Decision::ExpiredBeforeDispatch => Decided::Release,
        }
    }

    pub(crate) fn failure(failure: &Failure) -> Self {
        Decided::Failed {
            error: match failure {
                Failure::Error(err) => chain(err.as_ref()),
                Failure::Panic(message) => format!("panicked: {message}"),
            },
        }
    }

    /// Records `self` in `slot`; what the test delivery's settlement resolves to.
    pub(crate) fn record(self, slot: &ProbeSlot) -> Settled {
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(self);
        Settled::ready(Ok(SettleOutcome { warning: None }))
    }
}

/// A handler's failure: any error, boxed. Its whole `source()` chain is logged.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a handler did not decide.
#[derive(Debug)]
pub(crate) enum Failure {
    /// It returned an error.
    Error(HandlerError),
    /// It panicked, with this message.
    Panic(String),
}

/// Turns a failure into a retry after the handler backoff (exponential in the message's
/// attempts, with jitter), and logs it once at WARN with the message id, the attempts and
/// the whole error chain (or the panic message).
pub(crate) fn failed(
    backoff: &Backoff,
    message_id: &str,
    attempts: u32,
    failure: &Failure,
) -> Decision {
    let delay = backoff.delay_random(attempts.max(1)).min(limits::MAX_DELAY);
    let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    match failure {
        Failure::Error(err) => tracing::warn!(
            %message_id,
            attempts,
            retry_in_ms,
            error = %chain(err.as_ref()),
            "handler failed; the message will be retried"
        ),
        Failure::Panic(panic) => tracing::warn!(
            %message_id,
            attempts,
            retry_in_ms,
            panic = %panic,
            "handler panicked; the message will be retried"
        ),
    }
    Decision::Retry(Some(delay))
}

/// An error and its causes, `outer: cause: root`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

/// What a handler may return: an [`Outcome`], a `Result<(), E>` (`Ok` acknowledges), or
/// a `Result<Outcome, E>`. An `Err` is a failure: the consumer logs it once (message id,
/// attempts, the whole error chain) and retries the message after its handler backoff
/// ([`PullConsumerBuilder::handler_backoff`](super::PullConsumerBuilder::handler_backoff)),
/// which grows with the message's attempts, so a failing message does not spin into the
/// dead-letter queue. `E` is anything that converts into a boxed error: your error
/// types, `anyhow::Error`, `String`.
pub trait IntoOutcome {
    /// The decision, or the failure.
    fn into_outcome(self) -> std::result::Result<Outcome, HandlerError>;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> std::result::Result<Outcome, HandlerError> {
        Ok(self)
    }
}

impl<E: Into<HandlerError>> IntoOutcome for std::result::Result<(), E> {
    fn into_outcome(self) -> std::result::Result<Outcome, HandlerError> {
        self.map(|()| Outcome::Ack).map_err(Into::into)
    }
}

impl<E: Into<HandlerError>> IntoOutcome for std::result::Result<Outcome, E> {
    fn into_outcome(self) -> std::result::Result<Outcome, HandlerError> {
        self.map_err(Into::into)
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
