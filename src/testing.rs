//! Building blocks for testing your own code that uses this crate (feature `testing`;
//! the `emulator` feature turns it on too).
//!
//! * [`TestMessage`] makes a [`ReceivedMessage`] (what a [`PullConsumer::run`](crate::consumer::PullConsumer::run) handler
//!   gets) or a [`Delivery`] (what the stream yields) from a body, with no server. A
//!   test delivery records what your code decided in a [`DecisionProbe`]; nothing is
//!   sent anywhere.
//! * [`decide`] runs a handler on a message and says what the consumer would do with its
//!   result, panics included.
//! * [`fast_consumer`] gives a consumer builder with millisecond backoffs and flushes, as
//!   the crate's own tests use against the emulator.
//!
//! ```
//! use cloudflare_queues::consumer::Outcome;
//! use cloudflare_queues::testing::{Decided, TestMessage, decide};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // The handler under test: jobs are JSON, and `id: 0` is invalid.
//! async fn handle(m: cloudflare_queues::consumer::ReceivedMessage) -> Result<(), String> {
//!     let job: serde_json::Value = m.json().map_err(|e| e.to_string())?;
//!     if job["id"] == 0 { return Err("id 0 is not a job".into()) }
//!     Ok(())
//! }
//!
//! let good = TestMessage::json(&serde_json::json!({"id": 7})).unwrap();
//! assert_eq!(decide(handle, good.received()).await, Decided::Ack);
//! let bad = TestMessage::json(&serde_json::json!({"id": 0})).unwrap().with_attempts(3);
//! assert_eq!(
//!     decide(handle, bad.received()).await,
//!     Decided::Failed { error: "id 0 is not a job".into() }
//! );
//!
//! // Code that works on the stream's deliveries:
//! let (delivery, probe) = TestMessage::text("hello").delivery();
//! drop(delivery.settle(Outcome::Release));
//! assert_eq!(probe.decided(), Some(Decided::Release));
//! # }
//! ```

use crate::consumer::{
    Decision, Delivery, Failure, IntoOutcome, ProbeSlot, PullConsumerBuilder, ReceivedMessage,
    Ticket, panic_message,
};
use crate::models::{ContentType, MessageMetadata};
use crate::{Backoff, QueueHandle};
use futures::FutureExt as _;
use serde::Serialize;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::PoisonError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::consumer::Decided;

/// Records what happened to one test [`Delivery`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DecisionProbe(ProbeSlot);

impl DecisionProbe {
    /// The decision, once one was made.
    pub fn decided(&self) -> Option<Decided> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A message for tests: a body and the fields a pulled message has.
#[derive(Debug, Clone)]
pub struct TestMessage {
    id: String,
    attempts: u32,
    content_type: ContentType,
    payload: Vec<u8>,
    published_ms: u64,
    metadata: MessageMetadata,
}

impl TestMessage {
    fn new(content_type: ContentType, payload: Vec<u8>) -> Self {
        let published_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        TestMessage {
            id: "test-message".to_owned(),
            attempts: 1,
            content_type,
            payload,
            published_ms,
            metadata: MessageMetadata::default(),
        }
    }

    /// A `text` message.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(ContentType::Text, body.into().into_bytes())
    }

    /// A `json` message from any serialisable value.
    pub fn json<T: Serialize + ?Sized>(body: &T) -> crate::Result<Self> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| crate::Error::invalid("body", e.to_string()))?;
        Ok(Self::new(ContentType::Json, bytes))
    }

    /// A `bytes` message.
    pub fn bytes(body: impl Into<Vec<u8>>) -> Self {
        Self::new(ContentType::Bytes, body.into())
    }

    /// A `v8` message: its body decoders return an error, as over HTTP.
    pub fn v8(body: impl Into<Vec<u8>>) -> Self {
        Self::new(ContentType::V8, body.into())
    }

    /// Sets the message id (default `test-message`).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the delivery count (default 1).
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets when it was published (default: now).
    #[must_use]
    pub fn with_published_at(mut self, at: SystemTime) -> Self {
        self.published_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Adds a metadata entry (`CF-Content-Type` is set from the constructor).
    #[must_use]
    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata = std::mem::take(&mut self.metadata).with(key, value);
        self
    }

    /// The message as a [`PullConsumer::run`](crate::consumer::PullConsumer::run)
    /// handler receives it, with a lease of 60 s from now.
    pub fn received(&self) -> ReceivedMessage {
        let metadata = self
            .metadata
            .clone()
            .with(crate::models::CONTENT_TYPE_KEY, self.content_type.as_str());
        ReceivedMessage::synthetic(
            self.id.clone(),
            self.attempts,
            self.published_ms,
            self.content_type.clone(),
            metadata,
            self.payload.clone(),
            tokio::time::Instant::now() + Duration::from_secs(60),
        )
    }

    /// The message as the stream yields it, and a probe that records what was decided:
    /// `ack`, `retry`, `release`, `settle` (an `Err` becomes [`Decided::Failed`]) or a
    /// drop.
    pub fn delivery(&self) -> (Delivery, DecisionProbe) {
        let probe = DecisionProbe::default();
        let delivery = Delivery::new(self.received(), Ticket::probe(probe.0.clone()));
        (delivery, probe)
    }
}

/// Runs `handler` on `message` and says what the consumer would do with the result: the
/// same mapping [`PullConsumer::run`](crate::consumer::PullConsumer::run) applies, panics
/// included (they are caught and reported as [`Decided::Failed`]).
pub async fn decide<H, F, O>(handler: H, message: ReceivedMessage) -> Decided
where
    H: FnOnce(ReceivedMessage) -> F,
    F: Future<Output = O>,
    O: IntoOutcome,
{
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(message))) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    let failure = match outcome {
        Ok(out) => match out.into_outcome() {
            Ok(outcome) => return Decided::of(Decision::from(outcome)),
            Err(err) => Failure::Error(err),
        },
        Err(panic) => Failure::Panic(panic_message(panic.as_ref())),
    };
    Decided::failure(&failure)
}

/// A consumer builder with millisecond backoffs, quick ack flushes and a fast paused-queue
/// poll, for tests against the emulator (the settings this crate's own tests use).
pub fn fast_consumer(queue: &QueueHandle) -> PullConsumerBuilder {
    let quick = Backoff::new(Duration::from_millis(5), Duration::from_millis(50));
    queue
        .pull_consumer()
        .max_in_flight(100)
        .max_concurrent_pulls(2)
        .idle_backoff(quick)
        .error_backoff(quick)
        .handler_backoff(quick)
        .paused_poll_interval(Duration::from_millis(50))
        .ack_batching(
            crate::consumer::AckBatching::default()
                .max_delay(Duration::from_millis(20))
                .backoff(quick),
        )
}
