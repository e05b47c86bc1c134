//! [`Delivery`]: one leased message plus the right to decide its fate, once.

use super::core::Core;
use super::decision::{self, Decision, Failure, IntoOutcome, Settled};
use super::ledger::Key;
use crate::error::{BodyErrorKind, Error, Result};
use crate::models::{
    ContentType, MessageMetadata, PulledMessage, RejectedMessage, decode_payload, millis_to_time,
    payload_json, payload_text,
};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The data of a leased message: ids, timing and the decoded body.
///
/// `json` and `bytes` bodies are base64-decoded once, when the message arrives; `text`
/// bodies are kept as they are.
#[derive(Clone)]
pub struct ReceivedMessage {
    /// Shared with the ledger and the handler's log context rather than copied.
    id: Arc<str>,
    lease_id: String,
    attempts: u32,
    timestamp_ms: u64,
    content_type: ContentType,
    metadata: MessageMetadata,
    body: Body,
    lease_deadline: Instant,
    /// The ledger entry this delivery's lease lives in, while the consumer extends it.
    lease: Option<(Arc<Core>, Key)>,
}

#[derive(Clone)]
enum Body {
    /// A `text` body: already valid UTF-8, so `text()` need not check it again.
    Text(String),
    Decoded(Vec<u8>),
    /// Kept as received: the content type is unsupported or the base64 is broken.
    Undecodable {
        raw: String,
        why: Undecodable,
    },
}

#[derive(Clone)]
pub(crate) enum Undecodable {
    Unsupported,
    /// The entry was rejected by the pull decoder; the reason says which field.
    Malformed(String),
    Base64(base64::DecodeError),
}

impl ReceivedMessage {
    /// Decodes a pulled message. A body that cannot be decoded is kept raw, and the
    /// reason returned, so the consumer can apply its decode-error policy.
    pub(crate) fn from_pulled(m: PulledMessage, lease_deadline: Instant) -> (Self, Option<Error>) {
        let content_type = m.metadata.content_type();
        let (body, problem) = match decode_payload(&m.id, &content_type, &m.body) {
            Ok(Cow::Owned(bytes)) => (Body::Decoded(bytes), None),
            // Only text borrows: the body is its payload, as it arrived.
            Ok(Cow::Borrowed(_)) => (Body::Text(m.body), None),
            Err(err) => {
                let why = match &err {
                    Error::Body(b) => match &b.kind {
                        BodyErrorKind::Base64(e) => Undecodable::Base64(e.clone()),
                        _ => Undecodable::Unsupported,
                    },
                    _ => Undecodable::Unsupported,
                };
                (Body::Undecodable { raw: m.body, why }, Some(err))
            }
        };
        let msg = ReceivedMessage {
            id: m.id.into(),
            lease_id: m.lease_id,
            attempts: m.attempts,
            timestamp_ms: m.timestamp_ms,
            content_type,
            metadata: m.metadata,
            body,
            lease_deadline,
            lease: None,
        };
        (msg, problem)
    }

    /// A message whose entry could not be decoded but whose lease id could: it becomes a
    /// delivery whose body decoders all return the reason, so that the decode-error
    /// policy can retry or dead-letter it.
    pub(crate) fn from_rejected(r: RejectedMessage, lease_deadline: Instant) -> (Self, Error) {
        let id = r.id.unwrap_or_default();
        let content_type = ContentType::Unknown(String::new());
        let err = crate::models::body_error(
            &id,
            &content_type,
            BodyErrorKind::Malformed(r.reason.clone()),
        );
        let msg = ReceivedMessage {
            id: id.into(),
            lease_id: r.lease_id.unwrap_or_default(),
            attempts: r.attempts.unwrap_or(0),
            timestamp_ms: 0,
            content_type,
            metadata: MessageMetadata::default(),
            body: Body::Undecodable {
                raw: r.raw,
                why: Undecodable::Malformed(r.reason),
            },
            lease_deadline,
            lease: None,
        };
        (msg, err)
    }

    /// A message made up by a test (see [`crate::testing`]); `v8` and unknown content
    /// types are undecodable, as over HTTP.
    #[cfg(feature = "testing")]
    pub(crate) fn synthetic(
        id: String,
        attempts: u32,
        timestamp_ms: u64,
        content_type: ContentType,
        metadata: MessageMetadata,
        payload: Vec<u8>,
        lease_deadline: Instant,
    ) -> Self {
        let body = match content_type {
            ContentType::Text => match String::from_utf8(payload) {
                Ok(text) => Body::Text(text),
                Err(e) => Body::Decoded(e.into_bytes()),
            },
            ContentType::Json | ContentType::Bytes => Body::Decoded(payload),
            ContentType::V8 | ContentType::Unknown(_) => {
                use base64::Engine as _;
                Body::Undecodable {
                    raw: base64::engine::general_purpose::STANDARD.encode(payload),
                    why: Undecodable::Unsupported,
                }
            }
        };
        ReceivedMessage {
            lease_id: format!("test-lease-{id}"),
            id: id.into(),
            attempts,
            timestamp_ms,
            content_type,
            metadata,
            body,
            lease_deadline,
            lease: None,
        }
    }

    /// The message id: stable across redeliveries, so use it to make processing idempotent.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id, shared rather than copied.
    pub(crate) fn shared_id(&self) -> Arc<str> {
        self.id.clone()
    }

    /// The lease id this delivery arrived with (see also
    /// [`current_lease_id`](Self::current_lease_id)).
    pub fn lease_id(&self) -> &str {
        &self.lease_id
    }

    /// Deliveries so far, this one included (1 on the first delivery).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the message was published.
    pub fn published_at(&self) -> SystemTime {
        millis_to_time(self.timestamp_ms)
    }

    /// How the body was published (`CF-Content-Type`). A value, as on
    /// [`PulledMessage::content_type`](crate::models::PulledMessage::content_type).
    pub fn content_type(&self) -> ContentType {
        self.content_type.clone()
    }

    /// Message metadata (`CF-Content-Type`, `CF-sourceMessageSource`, ...).
    pub fn metadata(&self) -> &MessageMetadata {
        &self.metadata
    }

    /// When the lease ends, following the consumer's lease extensions while the delivery
    /// is undecided. Without extension (turned off, or refused by the server), finish and
    /// settle before then, or the message is delivered again.
    pub fn lease_deadline(&self) -> Instant {
        self.lease
            .as_ref()
            .and_then(|(core, key)| core.ledger.deadline(*key))
            .unwrap_or(self.lease_deadline)
    }

    /// Time left on the lease (zero once it has passed); follows extensions like
    /// [`lease_deadline`](Self::lease_deadline).
    pub fn lease_remaining(&self) -> Duration {
        self.lease_deadline()
            .saturating_duration_since(Instant::now())
    }

    /// The lease id the consumer would settle this delivery with now: the newest one,
    /// after extensions (each extension gives the message a new lease id). Falls back to
    /// [`lease_id`](Self::lease_id) once the delivery is decided.
    pub fn current_lease_id(&self) -> String {
        self.lease
            .as_ref()
            .and_then(|(core, key)| core.ledger.lease_id(*key))
            .unwrap_or_else(|| self.lease_id.clone())
    }

    /// The deadline the message arrived with, before any extension.
    pub(crate) fn first_deadline(&self) -> Instant {
        self.lease_deadline
    }

    /// Makes [`lease_deadline`](Self::lease_deadline) and
    /// [`current_lease_id`](Self::current_lease_id) follow the ledger's entry.
    pub(crate) fn follow_lease(&mut self, core: Arc<Core>, key: Key) {
        self.lease = Some((core, key));
    }

    /// The decoded payload bytes.
    ///
    /// Returns a `Cow`, like [`PulledMessage::bytes`](crate::models::PulledMessage::bytes),
    /// so that code works on either; here it always borrows (bodies are decoded once, on
    /// arrival).
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>> {
        match &self.body {
            Body::Text(text) => Ok(Cow::Borrowed(text.as_bytes())),
            Body::Decoded(bytes) => Ok(Cow::Borrowed(bytes)),
            Body::Undecodable { why, .. } => Err(self.undecodable(why)),
        }
    }

    /// The payload as UTF-8 text (a json body gives its JSON text). A `Cow`, like
    /// [`PulledMessage::text`](crate::models::PulledMessage::text); here it always
    /// borrows.
    pub fn text(&self) -> Result<Cow<'_, str>> {
        match &self.body {
            Body::Text(text) => Ok(Cow::Borrowed(text)),
            _ => payload_text(&self.id, &self.content_type, self.bytes()?),
        }
    }

    /// The payload parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        payload_json(&self.id, &self.content_type, &self.bytes()?)
    }

    /// The body exactly as it arrived (base64 for json and bytes).
    pub fn raw_body(&self) -> Cow<'_, str> {
        match &self.body {
            Body::Text(text) => Cow::Borrowed(text),
            Body::Decoded(bytes) if self.content_type == ContentType::Text => {
                String::from_utf8_lossy(bytes)
            }
            Body::Decoded(bytes) => {
                use base64::Engine as _;
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Body::Undecodable { raw, .. } => Cow::Borrowed(raw),
        }
    }

    fn undecodable(&self, why: &Undecodable) -> Error {
        let kind = match why {
            Undecodable::Unsupported => BodyErrorKind::Unsupported,
            Undecodable::Malformed(why) => BodyErrorKind::Malformed(why.clone()),
            Undecodable::Base64(e) => BodyErrorKind::Base64(e.clone()),
        };
        crate::models::body_error(&self.id, &self.content_type, kind)
    }
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("content_type", &self.content_type)
            .field("lease_remaining", &self.lease_remaining())
            .finish_non_exhaustive()
    }
}

/// A leased message and the obligation to settle it.
///
/// Settle it exactly once with [`ack`](Delivery::ack), [`retry`](Delivery::retry) or
/// [`release`](Delivery::release): each takes the delivery by value, so a second decision
/// does not compile. Settling only enqueues (synchronously, nothing to cancel half-way);
/// the consumer batches settlements into few ack requests. Await the returned
/// [`Settled`] to learn the server's answer, or drop it.
///
/// A delivery dropped undecided is released (or retried, per
/// [`DropPolicy`](super::DropPolicy)); it is never acknowledged.
///
/// `Delivery` dereferences to its [`ReceivedMessage`] for the id, attempts, timing and
/// body decoders.
pub struct Delivery {
    msg: ReceivedMessage,
    ticket: Option<Ticket>,
}

/// The right to settle one delivery; settles per the drop policy when dropped unused.
pub(crate) struct Ticket {
    target: Target,
    used: bool,
}

/// Where a decision goes.
enum Target {
    /// The consumer's ledger entry.
    Consumer { core: Arc<Core>, key: Key },
    /// A test's probe (see [`crate::testing`]): the decision is recorded, nothing sent.
    #[cfg(feature = "testing")]
    Probe(decision::ProbeSlot),
}

impl Ticket {
    pub(crate) fn new(core: Arc<Core>, key: Key) -> Self {
        Ticket {
            target: Target::Consumer { core, key },
            used: false,
        }
    }

    #[cfg(feature = "testing")]
    pub(crate) fn probe(probe: decision::ProbeSlot) -> Self {
        Ticket {
            target: Target::Probe(probe),
            used: false,
        }
    }

    pub(crate) fn settle(mut self, decision: Decision) -> Settled {
        self.used = true;
        match &self.target {
            Target::Consumer { core, key } => core.settle(*key, decision),
            #[cfg(feature = "testing")]
            Target::Probe(slot) => decision::Decided::of(decision).record(slot),
        }
    }

    /// Settles without a way to learn the server's answer (nobody could await it): no
    /// reply channel is made.
    pub(crate) fn settle_detached(mut self, decision: Decision) {
        self.used = true;
        match &self.target {
            Target::Consumer { core, key } => core.settle_detached(*key, decision),
            #[cfg(feature = "testing")]
            Target::Probe(slot) => drop(decision::Decided::of(decision).record(slot)),
        }
    }

    /// Settles a failed handler's message: a retry after the handler backoff (logged).
    pub(crate) fn fail(self, message: &ReceivedMessage, failure: &Failure) -> Settled {
        match &self.target {
            Target::Consumer { core, .. } => {
                let backoff = core.cfg.handler_backoff;
                let decision =
                    decision::failed(&backoff, message.id(), message.attempts(), failure);
                self.settle(decision)
            }
            #[cfg(feature = "testing")]
            Target::Probe(slot) => {
                let settled = decision::Decided::failure(failure).record(slot);
                let mut this = self;
                this.used = true;
                settled
            }
        }
    }

    pub(crate) fn key(&self) -> Option<Key> {
        match &self.target {
            Target::Consumer { key, .. } => Some(*key),
            #[cfg(feature = "testing")]
            Target::Probe(_) => None,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        match &self.target {
            // The lease id lives in the ledger, so Drop needs nothing else.
            Target::Consumer { core, key } => core.settle_dropped(*key),
            #[cfg(feature = "testing")]
            Target::Probe(slot) => drop(decision::Decided::Dropped.record(slot)),
        }
    }
}

impl Delivery {
    pub(crate) fn new(msg: ReceivedMessage, ticket: Ticket) -> Self {
        Delivery {
            msg,
            ticket: Some(ticket),
        }
    }

    /// The message data.
    pub fn message(&self) -> &ReceivedMessage {
        &self.msg
    }

    /// Acknowledges: the message is done and will not be delivered again.
    pub fn ack(self) -> Settled {
        self.decide(Decision::Ack)
    }

    /// Puts the message back for another delivery after `delay` (at most 24 h, longer is
    /// cut to 24 h). The next delivery counts as another attempt; past `max_retries` the
    /// message goes to the dead-letter queue.
    pub fn retry(self, delay: Duration) -> Settled {
        self.decide(Decision::retry(Some(delay)))
    }

    /// Puts the message back for another delivery after the consumer's configured
    /// `retry_delay`.
    pub fn retry_with_default_delay(self) -> Settled {
        self.decide(Decision::Retry(None))
    }

    /// Gives the lease back now, so another consumer can take the message at once. This
    /// is a retry with no delay: it counts as an attempt.
    pub fn release(self) -> Settled {
        self.decide(Decision::Release)
    }

    /// Settles with what a handler returned ([`IntoOutcome`]): an [`Outcome`](super::Outcome)
    /// as the matching method would, and an `Err` as the runner does: logged once (message
    /// id, attempts, error chain) and retried after the consumer's handler backoff.
    /// Stream users get the same semantics as [`PullConsumer::run`](super::PullConsumer::run).
    pub fn settle(self, outcome: impl IntoOutcome) -> Settled {
        match outcome.into_outcome() {
            Ok(outcome) => self.decide(Decision::from(outcome)),
            Err(err) => self.fail(&Failure::Error(err)),
        }
    }

    pub(crate) fn fail(mut self, failure: &Failure) -> Settled {
        match self.ticket.take() {
            Some(ticket) => ticket.fail(&self.msg, failure),
            None => Settled::ready(Err(Error::ConsumerClosed)),
        }
    }

    /// [`decide`](Self::decide) when nobody will await the answer.
    pub(crate) fn decide_detached(mut self, decision: Decision) {
        if let Some(ticket) = self.ticket.take() {
            ticket.settle_detached(decision);
        }
    }

    pub(crate) fn decide(mut self, decision: Decision) -> Settled {
        match self.ticket.take() {
            Some(ticket) => ticket.settle(decision),
            None => Settled::ready(Err(Error::ConsumerClosed)),
        }
    }

    /// Splits the data from the settling right, for the runner.
    pub(crate) fn into_parts(self) -> (ReceivedMessage, Option<Ticket>) {
        (self.msg, self.ticket)
    }

    /// The ledger key of an undecided delivery of a consumer.
    pub(crate) fn key(&self) -> Option<Key> {
        self.ticket.as_ref().and_then(Ticket::key)
    }
}

impl std::ops::Deref for Delivery {
    type Target = ReceivedMessage;
    fn deref(&self) -> &ReceivedMessage {
        &self.msg
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.msg)
            .field("settled", &self.ticket.is_none())
            .finish()
    }
}
