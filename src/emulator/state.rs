//! The emulated account: queues, consumers, messages, leases, event subscriptions. Pure
//! logic over an explicit clock (`now` in Unix milliseconds): no I/O, no waiting, so the
//! rules can be tested directly and time can be advanced at will.
//!
//! Message lifecycle, after the pull-consumer guide:
//!
//! ```text
//! push ──► available (after any delay) ──pull──► leased ──ack──► acked (gone)
//!                ▲                                 │
//!                └──── retry(delay) / lease expiry ┘  once attempts ≥ max_retries:
//!                                                     dead-lettered (or dropped)
//! ```
//!
//! Every lease id ever issued for a message stays valid for acking it, so late acks and
//! acks of a message since redelivered to someone else are accepted, as the docs promise.

use super::faults::{Rng, TokenBucket};
use super::ledger::{
    BYTES, Event, JSON, LeaseKey, MessageId, Names, Record, TEXT, V8, open_peek_ref, peek_ref,
};
use super::{MessageInfo, MessageState, SeedMessage};
use crate::limits::{self, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_PULL_BATCH};
use crate::models::{
    AckRequest, AckResult, AckWarning, Consumer, ConsumerRequest, ContentType, CreateQueueRequest,
    CreateSubscriptionRequest, EventSubscription, ExtendRequest, HttpPullConsumer,
    HttpPullConsumerSettings, Jurisdiction, Message, MessageMetadata, PeekResult, PeekedMessage,
    PurgeMessageError, PurgeMessagesResult, PurgeStatus, PushContentType, PushResult, Queue,
    QueueMetrics, QueueSettings, ResultInfo, ResultMetadata, SortDirection, SubscriptionOrder,
    UpdateQueueRequest, UpdateSubscriptionRequest, WorkerConsumer,
};
use base64::Engine as _;
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Error codes the emulator answers with. The Queues codes are Cloudflare's; the 11xxx
/// ones are the emulator's own choices where the docs name a condition but no code.
pub(crate) mod code {
    pub(crate) const QUEUE_NOT_FOUND: u32 = 10104;
    pub(crate) const UNAUTHORIZED: u32 = 10106;
    pub(crate) const QUEUE_ID_MALFORMED: u32 = 10107;
    pub(crate) const BATCH_DELAY_INVALID: u32 = 10202;
    pub(crate) const MESSAGE_METADATA_INVALID: u32 = 10203;
    pub(crate) const MESSAGE_SIZE: u32 = 10204;
    pub(crate) const BATCH_SIZE: u32 = 10205;
    pub(crate) const BATCH_COUNT: u32 = 10206;
    pub(crate) const BODY_INVALID: u32 = 10207;
    pub(crate) const BODY_MALFORMED: u32 = 10208;
    pub(crate) const OVERLOADED: u32 = 10250;
    pub(crate) const INTERNAL: u32 = 15000;
    /// Seen in the wild for a malformed queue name.
    pub(crate) const INVALID_QUEUE_NAME: u32 = 11003;
    /// Seen in the wild for a queue name already taken.
    pub(crate) const QUEUE_NAME_TAKEN: u32 = 11009;
    /// Emulator's choice: the queue already has a consumer.
    pub(crate) const CONSUMER_EXISTS: u32 = 11010;
    /// Emulator's choice: pulled from a queue without an HTTP pull consumer.
    pub(crate) const NOT_HTTP_PULL: u32 = 11011;
    /// Emulator's choice: delivery paused (the docs promise only 409 + `queue_delivery_paused`).
    pub(crate) const DELIVERY_PAUSED: u32 = 11012;
    /// Emulator's choice: unknown consumer or subscription.
    pub(crate) const NOT_FOUND: u32 = 11013;
    /// Cloudflare's generic "no route" code.
    pub(crate) const NO_ROUTE: u32 = 7003;
}

/// A refused request: HTTP status, Queues error code, message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reject {
    pub(crate) status: u16,
    pub(crate) code: u32,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
}

impl Reject {
    pub(crate) fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Reject {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Reject::new(400, code::BODY_INVALID, message)
    }

    pub(crate) fn paused() -> Self {
        Reject::new(409, code::DELIVERY_PAUSED, "queue_delivery_paused")
    }
}

type Outcome<T> = Result<T, Reject>;

const DEFAULT_PULL_BATCH: u32 = 5;
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RETRIES: u32 = 3;

/// A message past `max_retries`, on its way to the dead-letter queue.
#[derive(Debug)]
struct DeadLetter {
    id: MessageId,
    body: Bytes,
    content_type: u32,
    published_ms: u64,
}

/// A message as published, ready to store: the payload decoded from its wire form.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) body: Bytes,
    /// `TEXT` or `JSON`.
    pub(crate) content_type: u32,
    pub(crate) delay: Option<Duration>,
}

impl Incoming {
    /// The stored form of a REST message, or why it is refused.
    pub(crate) fn from_message(m: &Message) -> Outcome<Incoming> {
        let (body, content_type): (Bytes, u32) = match (&m.content_type, &m.body) {
            (PushContentType::Text, serde_json::Value::String(s)) => {
                (Bytes::copy_from_slice(s.as_bytes()), TEXT)
            }
            (PushContentType::Text, _) => return Err(text_needs_string()),
            (PushContentType::Json, body) => {
                let raw = serde_json::to_vec(body).map_err(|e| Reject::invalid(e.to_string()))?;
                (Bytes::from(raw), JSON)
            }
            (other, _) => return Err(unknown_content_type(other.as_str())),
        };
        Ok(Incoming {
            body,
            content_type,
            delay: m.delay,
        })
    }
}

/// 10207 for a text message whose body is not a string.
pub(crate) fn text_needs_string() -> Reject {
    Reject::new(
        400,
        code::BODY_INVALID,
        "a text message must have a string body",
    )
}

/// 10203 for a content type the REST push does not take.
pub(crate) fn unknown_content_type(name: &str) -> Reject {
    Reject::new(
        400,
        code::MESSAGE_METADATA_INVALID,
        format!(
            "Invalid message metadata: content type `{name}`; the REST API takes text and json"
        ),
    )
}

/// A content type's name, without a reference count for the built-in ones.
#[derive(Debug, Clone)]
pub(crate) enum TypeName {
    Builtin(&'static str),
    Other(Arc<str>),
}

impl TypeName {
    fn of(index: u32, names: &Names) -> Self {
        match index {
            TEXT => TypeName::Builtin("text"),
            JSON => TypeName::Builtin("json"),
            BYTES => TypeName::Builtin("bytes"),
            V8 => TypeName::Builtin("v8"),
            other => TypeName::Other(names.shared(other)),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            TypeName::Builtin(s) => s,
            TypeName::Other(s) => s,
        }
    }
}

/// One message of a pull, with what its wire form needs; the lease id is sealed but
/// not yet written, so that the response can be written outside the world's lock.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) id: MessageId,
    pub(crate) lease: [u64; 3],
    pub(crate) attempts: u32,
    pub(crate) timestamp_ms: u64,
    pub(crate) body: Bytes,
    pub(crate) content_type: TypeName,
}

#[cfg(test)]
impl Delivery {
    /// The lease id's text.
    pub(crate) fn lease_id(&self) -> String {
        let mut out = Vec::with_capacity(54);
        LeaseKey::write(self.lease, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The body as pulls carry it: a `text` body as it is, any other base64-encoded.
    pub(crate) fn wire_body(&self) -> String {
        wire_body(&self.body, self.content_type.as_str())
    }
}

/// The body as pulls and peeks carry it: a `text` body as it is (its payload is always
/// UTF-8), any other base64-encoded.
fn wire_body(body: &[u8], content_type: &str) -> String {
    if content_type == "text" {
        String::from_utf8_lossy(body).into_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(body)
    }
}

/// What a pull leased, and the queue's figures after it.
#[derive(Debug)]
pub(crate) struct Pulled {
    pub(crate) messages: Vec<Delivery>,
    pub(crate) metrics: QueueMetrics,
}

#[cfg(test)]
impl Pulled {
    /// The response as the model types describe it.
    pub(crate) fn to_model(&self) -> crate::models::PullResult {
        use crate::models::PulledMessage;
        let messages = self
            .messages
            .iter()
            .map(|d| PulledMessage {
                id: d.id.text(),
                attempts: d.attempts,
                body: d.wire_body(),
                lease_id: d.lease_id(),
                metadata: message_metadata(d.content_type.as_str()),
                timestamp_ms: d.timestamp_ms,
            })
            .collect();
        crate::models::PullResult {
            message_backlog_count: Some(self.metrics.backlog_count),
            messages,
            metadata: Some(ResultMetadata {
                metrics: Some(self.metrics.clone()),
            }),
            rejected: Vec::new(),
        }
    }
}

/// Counts over a queue's ledger; see [`QueueSummary`](super::QueueSummary).
pub(crate) fn summarize(records: &[Record], now: u64) -> super::QueueSummary {
    let mut s = super::QueueSummary::default();
    for r in records {
        s.messages += 1;
        let by_state = &mut s.by_state;
        *match r.state_at(now) {
            MessageState::Available => &mut by_state.available,
            MessageState::Delayed => &mut by_state.delayed,
            MessageState::Leased => &mut by_state.leased,
            MessageState::Acked => &mut by_state.acked,
            MessageState::DeadLettered => &mut by_state.dead_lettered,
            MessageState::Dropped => &mut by_state.dropped,
            MessageState::Purged => &mut by_state.purged,
            MessageState::Expired => &mut by_state.expired,
        } += 1;
        s.acked_once += u64::from(r.acks() == 1);
        s.duplicate_acks += u64::from(r.duplicate_acks);
        s.deliveries += u64::from(r.deliveries);
        s.redeliveries += u64::from(r.deliveries.saturating_sub(1));
        s.retries += u64::from(r.retries);
        s.expiries += u64::from(r.expiries);
        s.extensions += u64::from(r.extensions);
    }
    s
}

#[derive(Debug, Clone)]
struct ConsumerState {
    id: String,
    created_ms: u64,
    config: ConsumerRequest,
    /// Its dead-letter queue's name, as an index into the world's names.
    dead_letter_name: Option<u32>,
}

impl ConsumerState {
    fn http_settings(&self) -> Option<&HttpPullConsumerSettings> {
        match &self.config {
            ConsumerRequest::HttpPull(c) => {
                Some(c.settings.as_ref().unwrap_or(&DEFAULT_HTTP_SETTINGS))
            }
            _ => None,
        }
    }

    fn max_retries(&self) -> u32 {
        match &self.config {
            ConsumerRequest::HttpPull(c) => c.settings.as_ref().and_then(|s| s.max_retries),
            ConsumerRequest::Worker(c) => c.settings.as_ref().and_then(|s| s.max_retries),
            _ => None,
        }
        .unwrap_or(DEFAULT_MAX_RETRIES)
    }

    fn retry_delay(&self) -> Duration {
        match &self.config {
            ConsumerRequest::HttpPull(c) => c.settings.as_ref().and_then(|s| s.retry_delay),
            ConsumerRequest::Worker(c) => c.settings.as_ref().and_then(|s| s.retry_delay),
            _ => None,
        }
        .unwrap_or_default()
    }

    fn dead_letter_queue(&self) -> Option<&str> {
        dead_letter_queue(&self.config)
    }
}

/// A consumer's dead-letter queue, if it names one.
fn dead_letter_queue(config: &ConsumerRequest) -> Option<&str> {
    match config {
        ConsumerRequest::HttpPull(c) => c.dead_letter_queue.as_deref(),
        ConsumerRequest::Worker(c) => c.dead_letter_queue.as_deref(),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

static DEFAULT_HTTP_SETTINGS: HttpPullConsumerSettings = HttpPullConsumerSettings {
    batch_size: None,
    max_retries: None,
    retry_delay: None,
    visibility_timeout: None,
};

#[derive(Debug, Clone)]
struct Settings {
    delivery_delay: Duration,
    delivery_paused: bool,
    retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delivery_delay: Duration::ZERO,
            delivery_paused: false,
            retention: limits::DEFAULT_RETENTION,
        }
    }
}

#[derive(Debug)]
pub(crate) struct QueueState {
    id: String,
    name: String,
    created_ms: u64,
    modified_ms: u64,
    settings: Settings,
    /// Where the queue's data is kept; set at create only, returned on every read.
    jurisdiction: Option<Jurisdiction>,
    consumer: Option<ConsumerState>,
    /// Keys the queue's lease ids and peek refs (see [`LeaseKey`]).
    secret: u64,
    /// Every message the queue has held, in order of arrival: the ledger. A record's
    /// index is its key everywhere below.
    records: Vec<Record>,
    /// Available messages in delivery order: (deliverable from, index).
    ready: BTreeSet<(u64, u64)>,
    /// Leased messages by deadline: (deadline, index).
    leased: BTreeSet<(u64, u64)>,
    /// Live messages in retention order: (published at, index).
    by_age: BTreeSet<(u64, u64)>,
    /// Live messages (available, delayed or leased) and their payload bytes.
    live: u64,
    bytes: u64,
    purge: Option<(u64, bool)>,
    limiter_read: Option<TokenBucket>,
    limiter_write: Option<TokenBucket>,
    /// Messages past max_retries waiting to be moved to the dead-letter queue.
    dead: Vec<DeadLetter>,
}

impl QueueState {
    fn new(
        id: String,
        name: String,
        now: u64,
        settings: Settings,
        rate: Option<u32>,
        secret: u64,
    ) -> Self {
        QueueState {
            id,
            name,
            created_ms: now,
            modified_ms: now,
            settings,
            jurisdiction: None,
            consumer: None,
            secret,
            records: Vec::new(),
            ready: BTreeSet::new(),
            leased: BTreeSet::new(),
            by_age: BTreeSet::new(),
            live: 0,
            bytes: 0,
            purge: None,
            limiter_read: rate.map(|r| TokenBucket::new(r, now)),
            limiter_write: rate.map(|r| TokenBucket::new(r, now)),
            dead: Vec::new(),
        }
    }

    fn set_rate_limit(&mut self, rate: Option<u32>, now: u64) {
        self.limiter_read = rate.map(|r| TokenBucket::new(r, now));
        self.limiter_write = rate.map(|r| TokenBucket::new(r, now));
    }

    fn record(&self, idx: u64) -> Option<&Record> {
        usize::try_from(idx).ok().and_then(|i| self.records.get(i))
    }

    fn record_mut(&mut self, idx: u64) -> Option<&mut Record> {
        usize::try_from(idx)
            .ok()
            .and_then(|i| self.records.get_mut(i))
    }

    /// The live record a lease id of this queue names, with the lease's delivery.
    fn lease(&self, lease_id: &str) -> Option<(LeaseKey, &Record)> {
        let key = LeaseKey::open(lease_id, self.secret)?;
        let rec = self.record(key.idx)?;
        (key.lease <= rec.leases_given).then_some((key, rec))
    }

    /// The record a lease names, if the lease is the message's current one: it is leased
    /// now, in the delivery the lease was given for.
    fn current_lease(&self, lease_id: &str) -> Option<u64> {
        self.lease(lease_id)
            .filter(|(key, rec)| rec.state == MessageState::Leased && rec.attempts == key.delivery)
            .map(|(key, _)| key.idx)
    }

    /// Applies everything time has done since the last call: expired leases and
    /// messages past their retention.
    fn tick(&mut self, now: u64) {
        while let Some(&(deadline, idx)) = self.leased.first() {
            if deadline > now {
                break;
            }
            self.leased.remove(&(deadline, idx));
            if let Some(rec) = self.record_mut(idx) {
                rec.expiries += 1;
                rec.history.push(Event::lease_expired(now));
            }
            self.redeliver_or_dead_letter(idx, now);
        }
        let retention = millis(self.settings.retention);
        while let Some(&(published, idx)) = self.by_age.first() {
            if published.saturating_add(retention) > now {
                break;
            }
            self.finish(idx, MessageState::Expired, now);
        }
    }

    /// Whether a lease expires or a message outlives its retention by `now`.
    fn due(&self, now: u64) -> bool {
        let retention = millis(self.settings.retention);
        self.leased
            .first()
            .is_some_and(|(deadline, _)| *deadline <= now)
            || self
                .by_age
                .first()
                .is_some_and(|(published, _)| published.saturating_add(retention) <= now)
            || !self.dead.is_empty()
    }

    /// Stores a message (published, seeded or dead-lettered here), available from
    /// `rec.at`. Returns its index.
    fn insert(&mut self, mut rec: Record) -> u64 {
        let idx = self.records.len() as u64;
        rec.state = MessageState::Available;
        self.ready.insert((rec.at, idx));
        self.by_age.insert((rec.published_ms, idx));
        self.bytes += rec.body.len() as u64;
        self.live += 1;
        self.records.push(rec);
        idx
    }

    /// Ends a failed delivery (explicit retry or lease expiry): back in the queue after
    /// the consumer's retry delay, or to the dead-letter queue (or dropped) once attempts
    /// reach max_retries.
    fn redeliver_or_dead_letter(&mut self, idx: u64, now: u64) -> bool {
        let delay = self
            .consumer
            .as_ref()
            .map(ConsumerState::retry_delay)
            .unwrap_or_default();
        self.fail_delivery(idx, now, delay)
    }

    fn fail_delivery(&mut self, idx: u64, now: u64, delay: Duration) -> bool {
        let max_retries = self
            .consumer
            .as_ref()
            .map_or(DEFAULT_MAX_RETRIES, ConsumerState::max_retries);
        let Some(rec) = self.record(idx).filter(|r| r.is_live()) else {
            return false;
        };
        if rec.attempts >= max_retries {
            let has_dlq = self
                .consumer
                .as_ref()
                .and_then(ConsumerState::dead_letter_queue)
                .is_some();
            let state = if has_dlq {
                MessageState::DeadLettered
            } else {
                MessageState::Dropped
            };
            if let Some(dead) = self.finish(idx, state, now) {
                if has_dlq {
                    self.dead.push(dead);
                }
            }
            return true;
        }
        self.unslot(idx);
        let at = now.saturating_add(millis(delay));
        if let Some(rec) = self.record_mut(idx) {
            rec.state = MessageState::Available;
            rec.at = at;
        }
        self.ready.insert((at, idx));
        true
    }

    /// Takes a live message out of the ready or the leased set, whichever holds it.
    fn unslot(&mut self, idx: u64) {
        let Some(rec) = self.record(idx) else { return };
        let entry = (rec.at, idx);
        match rec.state {
            MessageState::Available => {
                self.ready.remove(&entry);
            }
            MessageState::Leased => {
                self.leased.remove(&entry);
            }
            _ => {}
        }
    }

    /// Removes a live message for good, recording why; returns what a dead-letter queue
    /// needs of it.
    fn finish(&mut self, idx: u64, state: MessageState, now: u64) -> Option<DeadLetter> {
        if !self.record(idx).is_some_and(Record::is_live) {
            return None;
        }
        self.unslot(idx);
        let dead_letter_queue = self
            .consumer
            .as_ref()
            .and_then(|c| c.dead_letter_name)
            .unwrap_or(u32::MAX);
        let rec = self.record_mut(idx)?;
        rec.state = state;
        if let Some(event) = Event::ended(now, state, dead_letter_queue) {
            rec.history.push(event);
        }
        let dead = DeadLetter {
            id: rec.id,
            body: rec.body.clone(),
            content_type: rec.content_type,
            published_ms: rec.published_ms,
        };
        self.by_age.remove(&(dead.published_ms, idx));
        self.bytes -= dead.body.len() as u64;
        self.live -= 1;
        Some(dead)
    }

    fn metrics(&self) -> QueueMetrics {
        QueueMetrics {
            backlog_count: self.live,
            backlog_bytes: self.bytes,
            oldest_message_timestamp_ms: self.by_age.first().map_or(0, |(t, _)| *t),
        }
    }

    fn available_now(&self, now: u64, n: usize) -> Vec<u64> {
        self.ready
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(n)
            .map(|(_, idx)| *idx)
            .collect()
    }

    fn to_model(&self) -> Queue {
        let consumers: Vec<Consumer> = self
            .consumer
            .iter()
            .map(|c| consumer_model(c, &self.name))
            .collect();
        Queue {
            queue_id: Some(self.id.clone()),
            queue_name: Some(self.name.clone()),
            created_on: Some(rfc3339(self.created_ms)),
            modified_on: Some(rfc3339(self.modified_ms)),
            settings: Some(QueueSettings {
                delivery_delay: Some(self.settings.delivery_delay),
                delivery_paused: Some(self.settings.delivery_paused),
                message_retention_period: Some(self.settings.retention),
            }),
            consumers_total_count: Some(consumers.len() as u64),
            consumers,
            producers: Vec::new(),
            producers_total_count: Some(0),
            jurisdiction: self.jurisdiction.clone(),
        }
    }
}

fn consumer_model(c: &ConsumerState, queue_name: &str) -> Consumer {
    match &c.config {
        ConsumerRequest::Worker(w) => Consumer::Worker(WorkerConsumer {
            consumer_id: Some(c.id.clone()),
            created_on: Some(rfc3339(c.created_ms)),
            queue_name: Some(queue_name.to_owned()),
            script_name: Some(w.script_name.clone()),
            dead_letter_queue: w.dead_letter_queue.clone().filter(|s| !s.is_empty()),
            settings: w.settings.clone(),
        }),
        ConsumerRequest::HttpPull(h) => Consumer::HttpPull(HttpPullConsumer {
            consumer_id: Some(c.id.clone()),
            created_on: Some(rfc3339(c.created_ms)),
            queue_name: Some(queue_name.to_owned()),
            dead_letter_queue: h.dead_letter_queue.clone().filter(|s| !s.is_empty()),
            settings: Some(h.settings.clone().unwrap_or_default()),
        }),
        other => Consumer::Unknown(serde_json::to_value(other).unwrap_or_default()),
    }
}

/// The whole emulated account.
#[derive(Debug)]
pub(crate) struct World {
    queues: HashMap<String, QueueState>,
    by_name: HashMap<String, String>,
    subscriptions: BTreeMap<String, (u64, EventSubscription)>,
    pub(crate) rng: Rng,
    rate_limit: Option<u32>,
    /// Content types and queue names the ledgers refer to by index.
    names: Names,
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        World {
            queues: HashMap::new(),
            by_name: HashMap::new(),
            subscriptions: BTreeMap::new(),
            rng: Rng::new(seed),
            rate_limit: None,
            names: Names::new(),
        }
    }

    /// The queue with `id` after applying elapsed time, or 10107 / 10104.
    fn queue(&mut self, id: &str, now: u64) -> Outcome<&mut QueueState> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Reject::new(
                400,
                code::QUEUE_ID_MALFORMED,
                "queue_id must be alphanumeric",
            ));
        }
        self.tick_all(now);
        let q = self
            .queues
            .get_mut(id)
            .ok_or_else(|| Reject::new(404, code::QUEUE_NOT_FOUND, "Queue does not exist"))?;
        Ok(q)
    }

    /// [`queue`](Self::queue), with the names its records refer to.
    fn queue_and_names(&mut self, id: &str, now: u64) -> Outcome<(&mut QueueState, &Names)> {
        self.queue(id, now)?;
        let q = self
            .queues
            .get_mut(id)
            .ok_or_else(|| Reject::new(404, code::QUEUE_NOT_FOUND, "Queue does not exist"))?;
        Ok((q, &self.names))
    }

    /// Applies elapsed time to every queue that has something due, so that expired leases
    /// reach their dead-letter queue even when only the dead-letter queue is being read.
    fn tick_all(&mut self, now: u64) {
        let due: Vec<String> = self
            .queues
            .values()
            .filter(|q| q.due(now))
            .map(|q| q.id.clone())
            .collect();
        for id in due {
            self.route_dead_letters(&id, now);
        }
    }

    /// Ticks `id` and moves its dead letters into the dead-letter queue (created on
    /// first use, as Cloudflare does).
    fn route_dead_letters(&mut self, id: &str, now: u64) {
        let Some(q) = self.queues.get_mut(id) else {
            return;
        };
        q.tick(now);
        if q.dead.is_empty() {
            return;
        }
        let dead = std::mem::take(&mut q.dead);
        let Some(dlq_name) = q
            .consumer
            .as_ref()
            .and_then(ConsumerState::dead_letter_queue)
            .map(str::to_owned)
        else {
            return;
        };
        let dlq_id = match self.by_name.get(&dlq_name) {
            Some(id) => id.clone(),
            None => {
                let new_id = self.rng.hex(16);
                let secret = self.rng.next_u64();
                let rate = self.rate_limit;
                self.queues.insert(
                    new_id.clone(),
                    QueueState::new(
                        new_id.clone(),
                        dlq_name.clone(),
                        now,
                        Settings::default(),
                        rate,
                        secret,
                    ),
                );
                self.by_name.insert(dlq_name, new_id.clone());
                new_id
            }
        };
        let from = self.names.intern(id);
        if let Some(dlq) = self.queues.get_mut(&dlq_id) {
            for m in dead {
                // A dead-lettered message starts over in its new queue.
                let mut rec = Record::new(
                    m.id,
                    m.body,
                    m.content_type,
                    m.published_ms,
                    Duration::ZERO,
                    now,
                );
                rec.dead_letter_arrival = true;
                rec.history.push(Event::dead_letter_arrived(now, from));
                dlq.insert(rec);
            }
        }
    }

    pub(crate) fn set_rate_limit(&mut self, queue: Option<&str>, rate: Option<u32>, now: u64) {
        match queue {
            Some(id) => {
                if let Some(q) = self.queues.get_mut(id) {
                    q.set_rate_limit(rate, now);
                }
            }
            None => {
                self.rate_limit = rate;
                for q in self.queues.values_mut() {
                    q.set_rate_limit(rate, now);
                }
            }
        }
    }

    // ---- queues -------------------------------------------------------------------

    pub(crate) fn create_queue(&mut self, req: CreateQueueRequest, now: u64) -> Outcome<Queue> {
        validate_queue_name(&req.queue_name)?;
        if self.by_name.contains_key(&req.queue_name) {
            return Err(Reject::new(
                409,
                code::QUEUE_NAME_TAKEN,
                format!("queue name `{}` is already taken", req.queue_name),
            ));
        }
        let settings = apply_settings(Settings::default(), req.settings.as_ref())?;
        let id = self.rng.hex(16);
        let secret = self.rng.next_u64();
        let mut q = QueueState::new(
            id.clone(),
            req.queue_name.clone(),
            now,
            settings,
            self.rate_limit,
            secret,
        );
        q.jurisdiction = req.jurisdiction;
        let model = q.to_model();
        self.queues.insert(id.clone(), q);
        self.by_name.insert(req.queue_name, id);
        Ok(model)
    }

    /// Queues sorted by name, only those named in `names` when it is not empty.
    pub(crate) fn list_queues(
        &mut self,
        page: u64,
        per_page: u64,
        names: &[String],
        now: u64,
    ) -> (Vec<Queue>, ResultInfo) {
        let mut all: Vec<&String> = self
            .by_name
            .keys()
            .filter(|name| names.is_empty() || names.contains(name))
            .collect();
        all.sort();
        let ids: Vec<String> = all
            .iter()
            .filter_map(|n| self.by_name.get(*n).cloned())
            .collect();
        for id in &ids {
            self.route_dead_letters(id, now);
        }
        let models: Vec<Queue> = ids
            .iter()
            .filter_map(|id| self.queues.get(id))
            .map(QueueState::to_model)
            .collect();
        paginate(models, page, per_page)
    }

    pub(crate) fn get_queue(&mut self, id: &str, now: u64) -> Outcome<Queue> {
        Ok(self.queue(id, now)?.to_model())
    }

    /// PUT (`replace`: omitted settings fall back to defaults) or PATCH.
    pub(crate) fn update_queue(
        &mut self,
        id: &str,
        req: UpdateQueueRequest,
        replace: bool,
        now: u64,
    ) -> Outcome<Queue> {
        let current_name = self.queue(id, now)?.name.clone();
        if let Some(name) = &req.queue_name {
            validate_queue_name(name)?;
            if name != &current_name && self.by_name.contains_key(name) {
                return Err(Reject::new(
                    409,
                    code::QUEUE_NAME_TAKEN,
                    format!("queue name `{name}` is already taken"),
                ));
            }
        }
        let q = self.queue(id, now)?;
        let base = if replace {
            Settings::default()
        } else {
            q.settings.clone()
        };
        q.settings = apply_settings(base, req.settings.as_ref())?;
        q.modified_ms = now;
        if let Some(name) = req.queue_name {
            q.name = name.clone();
            let model = q.to_model();
            self.by_name.remove(&current_name);
            self.by_name.insert(name, id.to_owned());
            return Ok(model);
        }
        Ok(q.to_model())
    }

    pub(crate) fn delete_queue(&mut self, id: &str, now: u64) -> Outcome<()> {
        let name = self.queue(id, now)?.name.clone();
        self.queues.remove(id);
        self.by_name.remove(&name);
        Ok(())
    }

    // ---- consumers ----------------------------------------------------------------

    pub(crate) fn list_consumers(&mut self, qid: &str, now: u64) -> Outcome<Vec<Consumer>> {
        let q = self.queue(qid, now)?;
        Ok(q.consumer
            .iter()
            .map(|c| consumer_model(c, &q.name))
            .collect())
    }

    pub(crate) fn create_consumer(
        &mut self,
        qid: &str,
        req: ConsumerRequest,
        now: u64,
    ) -> Outcome<Consumer> {
        validate_consumer(&req)?;
        let id = self.rng.hex(16);
        let dead_letter_name = self.dead_letter_name(&req);
        let q = self.queue(qid, now)?;
        if q.consumer.is_some() {
            return Err(Reject::new(
                409,
                code::CONSUMER_EXISTS,
                "the queue already has a consumer; remove it first",
            ));
        }
        let c = ConsumerState {
            id,
            created_ms: now,
            config: req,
            dead_letter_name,
        };
        let model = consumer_model(&c, &q.name);
        q.consumer = Some(c);
        Ok(model)
    }

    /// The index of a consumer's dead-letter queue name, for the events that name it.
    fn dead_letter_name(&mut self, req: &ConsumerRequest) -> Option<u32> {
        dead_letter_queue(req).map(|name| self.names.intern(name))
    }

    pub(crate) fn get_consumer(&mut self, qid: &str, cid: &str, now: u64) -> Outcome<Consumer> {
        let q = self.queue(qid, now)?;
        match &q.consumer {
            Some(c) if c.id == cid => Ok(consumer_model(c, &q.name)),
            _ => Err(Reject::new(404, code::NOT_FOUND, "consumer not found")),
        }
    }

    /// PUT: replaces the consumer, or creates it under this id when the queue has none.
    pub(crate) fn put_consumer(
        &mut self,
        qid: &str,
        cid: &str,
        req: ConsumerRequest,
        now: u64,
    ) -> Outcome<Consumer> {
        validate_consumer(&req)?;
        let dead_letter_name = self.dead_letter_name(&req);
        let q = self.queue(qid, now)?;
        match &mut q.consumer {
            Some(c) if c.id == cid => {
                c.config = req;
                c.dead_letter_name = dead_letter_name;
            }
            Some(_) => {
                return Err(Reject::new(
                    409,
                    code::CONSUMER_EXISTS,
                    "the queue already has another consumer",
                ));
            }
            None => {
                q.consumer = Some(ConsumerState {
                    id: cid.to_owned(),
                    created_ms: now,
                    config: req,
                    dead_letter_name,
                });
            }
        }
        let q = self.queue(qid, now)?;
        let c = q
            .consumer
            .as_ref()
            .ok_or_else(|| Reject::new(500, code::INTERNAL, "consumer vanished"))?;
        Ok(consumer_model(c, &q.name))
    }

    pub(crate) fn delete_consumer(&mut self, qid: &str, cid: &str, now: u64) -> Outcome<()> {
        let q = self.queue(qid, now)?;
        match &q.consumer {
            Some(c) if c.id == cid => {
                q.consumer = None;
                Ok(())
            }
            _ => Err(Reject::new(404, code::NOT_FOUND, "consumer not found")),
        }
    }

    // ---- messages -----------------------------------------------------------------

    /// Stores published messages, after checking every documented limit.
    pub(crate) fn push(
        &mut self,
        qid: &str,
        messages: Vec<Message>,
        batch_delay: Option<Duration>,
        is_batch: bool,
        now: u64,
    ) -> Outcome<PushResult> {
        let incoming = messages.iter().map(Incoming::from_message).collect();
        self.push_incoming(qid, incoming, batch_delay, is_batch, now)
    }

    /// Stores published messages already decoded from the request (each one, or why it
    /// is refused), after checking every documented limit in the order Cloudflare
    /// does: the batch's count and delay, then each message, then the batch's size.
    pub(crate) fn push_incoming(
        &mut self,
        qid: &str,
        messages: Vec<Outcome<Incoming>>,
        batch_delay: Option<Duration>,
        is_batch: bool,
        now: u64,
    ) -> Outcome<PushResult> {
        if is_batch {
            if messages.len() > MAX_BATCH_MESSAGES {
                return Err(Reject::new(
                    400,
                    code::BATCH_COUNT,
                    "Batch count out of bounds: at most 100 messages",
                ));
            }
            if batch_delay.is_some_and(|d| d > limits::MAX_DELAY) {
                return Err(Reject::new(
                    400,
                    code::BATCH_DELAY_INVALID,
                    "Invalid batch delay: at most 86400 seconds",
                ));
            }
        }
        let mut prepared = Vec::with_capacity(messages.len());
        let mut total = 0;
        for m in messages {
            let m = m?;
            if m.body.len() > MAX_MESSAGE_BYTES {
                return Err(Reject::new(
                    400,
                    code::MESSAGE_SIZE,
                    "Message size out of bounds: at most 128 KB",
                ));
            }
            if m.delay.is_some_and(|d| d > limits::MAX_DELAY) {
                return Err(Reject::new(
                    400,
                    code::MESSAGE_METADATA_INVALID,
                    "Invalid message metadata: delay over 24 hours",
                ));
            }
            total += m.body.len();
            prepared.push(m);
        }
        if is_batch && total > MAX_BATCH_BYTES {
            return Err(Reject::new(
                400,
                code::BATCH_SIZE,
                "Batch size out of bounds: at most 256 KB",
            ));
        }
        let ids: Vec<MessageId> = prepared
            .iter()
            .map(|_| MessageId::random(&mut self.rng))
            .collect();
        let q = self.queue(qid, now)?;
        if let Some(bucket) = &mut q.limiter_write {
            bucket.take(prepared.len(), now).map_err(overloaded)?;
        }
        for (m, id) in prepared.into_iter().zip(ids) {
            let delay = m.delay.or(batch_delay).unwrap_or(q.settings.delivery_delay);
            let at = now.saturating_add(millis(delay));
            q.insert(Record::new(id, m.body, m.content_type, now, delay, at));
        }
        Ok(PushResult {
            metadata: Some(ResultMetadata {
                metrics: Some(q.metrics()),
            }),
        })
    }

    /// Inserts messages as a Worker producer would, with any content type, bypassing
    /// the REST limits and the rate ceiling.
    pub(crate) fn seed(
        &mut self,
        qid: &str,
        messages: Vec<SeedMessage>,
        now: u64,
    ) -> Outcome<Vec<String>> {
        let ids: Vec<MessageId> = messages
            .iter()
            .map(|_| MessageId::random(&mut self.rng))
            .collect();
        let types: Vec<u32> = messages
            .iter()
            .map(|m| self.names.intern(&m.content_type))
            .collect();
        let q = self.queue(qid, now)?;
        for ((m, id), content_type) in messages.into_iter().zip(&ids).zip(types) {
            // A text body is UTF-8 on the wire: invalid sequences become U+FFFD.
            let body = match String::from_utf8_lossy(&m.payload) {
                Cow::Owned(fixed) if content_type == TEXT => Bytes::from(fixed.into_bytes()),
                _ => Bytes::from(m.payload),
            };
            let at = now.saturating_add(millis(m.delay));
            q.insert(Record::new(*id, body, content_type, now, m.delay, at));
        }
        Ok(ids.iter().map(MessageId::text).collect())
    }

    /// Leases up to `batch` available messages (a pull).
    pub(crate) fn lease(
        &mut self,
        qid: &str,
        batch: Option<u32>,
        visibility: Option<Duration>,
        now: u64,
    ) -> Outcome<Pulled> {
        let (q, names) = self.queue_and_names(qid, now)?;
        let settings = match &q.consumer {
            Some(c) => c.http_settings().cloned(),
            None => None,
        }
        .ok_or_else(|| {
            Reject::new(
                400,
                code::NOT_HTTP_PULL,
                "this queue has no http_pull consumer; add one before pulling",
            )
        })?;
        if q.settings.delivery_paused {
            return Err(Reject::paused());
        }
        let batch = batch.or(settings.batch_size).unwrap_or(DEFAULT_PULL_BATCH);
        let visibility = visibility
            .or(settings.visibility_timeout)
            .unwrap_or(DEFAULT_VISIBILITY);
        if batch == 0 || batch > MAX_PULL_BATCH {
            return Err(Reject::invalid("batch_size must be between 1 and 100"));
        }
        if visibility.is_zero() || visibility > limits::MAX_VISIBILITY_TIMEOUT {
            return Err(Reject::invalid(
                "visibility_timeout_ms must be between 1 and 43200000",
            ));
        }
        let picked = q.available_now(now, batch as usize);
        if let Some(bucket) = &mut q.limiter_read {
            if !picked.is_empty() {
                bucket.take(picked.len(), now).map_err(overloaded)?;
            }
        }
        let deadline = now.saturating_add(millis(visibility));
        let secret = q.secret;
        let mut messages = Vec::with_capacity(picked.len());
        for idx in picked {
            q.unslot(idx);
            let Some(rec) = q.record_mut(idx) else {
                continue;
            };
            rec.attempts += 1;
            rec.deliveries += 1;
            rec.leases_given += 1;
            rec.state = MessageState::Leased;
            rec.at = deadline;
            rec.history
                .push(Event::leased(now, rec.attempts, visibility));
            let key = LeaseKey {
                idx,
                delivery: rec.attempts,
                lease: rec.leases_given,
            };
            messages.push(Delivery {
                id: rec.id,
                lease: key.seal(secret),
                attempts: rec.attempts,
                timestamp_ms: rec.published_ms,
                body: rec.body.clone(),
                content_type: TypeName::of(rec.content_type, names),
            });
            q.leased.insert((deadline, idx));
        }
        Ok(Pulled {
            messages,
            metrics: q.metrics(),
        })
    }

    /// A pull, answered with the model types.
    #[cfg(test)]
    pub(crate) fn pull(
        &mut self,
        qid: &str,
        batch: Option<u32>,
        visibility: Option<Duration>,
        now: u64,
    ) -> Outcome<crate::models::PullResult> {
        Ok(self.lease(qid, batch, visibility, now)?.to_model())
    }

    /// An ack request given as the model type; see [`settle`](Self::settle).
    pub(crate) fn ack(&mut self, qid: &str, req: AckRequest, now: u64) -> Outcome<AckResult> {
        let acks: Vec<String> = req.acks.into_iter().map(|a| a.lease_id).collect();
        let retries: Vec<(String, Option<Duration>)> = req
            .retries
            .into_iter()
            .map(|r| (r.lease_id, r.delay))
            .collect();
        self.settle(qid, &acks, &retries, now)
    }

    /// Acks and retries leases. Every lease ever issued for a message acks it while it
    /// is in the queue, and repeats an ack harmlessly once it is acknowledged; only the
    /// current delivery's leases retry it.
    pub(crate) fn settle<S: AsRef<str>>(
        &mut self,
        qid: &str,
        acks: &[S],
        retries: &[(S, Option<Duration>)],
        now: u64,
    ) -> Outcome<AckResult> {
        if retries
            .iter()
            .any(|(_, delay)| delay.is_some_and(|d| d > limits::MAX_DELAY))
        {
            return Err(Reject::new(
                400,
                code::MESSAGE_METADATA_INVALID,
                "Invalid retry delay: at most 24 hours",
            ));
        }
        let q = self.queue(qid, now)?;
        let (mut acked, mut retried) = (0u64, 0u64);
        let mut warnings = Vec::new();
        for lease in acks {
            let lease = lease.as_ref();
            match q.lease(lease).map(|(key, rec)| (key.idx, rec.state)) {
                Some((idx, MessageState::Available | MessageState::Leased)) => {
                    q.finish(idx, MessageState::Acked, now);
                    acked += 1;
                }
                // Already acknowledged: an idempotent repeat (a retried request, say).
                Some((idx, MessageState::Acked)) => {
                    if let Some(rec) = q.record_mut(idx) {
                        rec.duplicate_acks += 1;
                        rec.history.push(Event::acked_again(now));
                    }
                    acked += 1;
                }
                Some((_, state)) => warnings.push(AckWarning::new(
                    lease,
                    format!("message is no longer in the queue ({state:?})").to_lowercase(),
                )),
                None => warnings.push(AckWarning::new(lease, "unknown lease id")),
            }
        }
        for (lease, delay) in retries {
            let lease = lease.as_ref();
            let Some(idx) = q.current_lease(lease) else {
                warnings.push(AckWarning::new(lease, stale_lease(q, lease)));
                continue;
            };
            let delay = delay.unwrap_or_else(|| {
                q.consumer
                    .as_ref()
                    .map(ConsumerState::retry_delay)
                    .unwrap_or_default()
            });
            if let Some(rec) = q.record_mut(idx) {
                rec.retries += 1;
                rec.history.push(Event::retried(now, delay));
            }
            q.fail_delivery(idx, now, delay);
            retried += 1;
        }
        self.route_dead_letters(qid, now);
        Ok(AckResult {
            ack_count: Some(acked),
            retry_count: Some(retried),
            warnings,
        })
    }

    /// Extends the named leases that are still current: each gets a new lease id and a
    /// deadline of `now + visibility`; attempts do not change. A lease that expired, was
    /// settled or is unknown is not extended and is named in `warnings`. Earlier lease
    /// ids stay valid for acks and retries (Cloudflare accepts late acks).
    ///
    /// The response shape is the emulator's own (Cloudflare has not published one):
    /// `{"messages": [{"id", "lease_id"}], "extendCount": n, "warnings": {lease: text}}`,
    /// the entries shaped like pulled messages.
    pub(crate) fn extend(
        &mut self,
        qid: &str,
        req: ExtendRequest,
        now: u64,
    ) -> Outcome<serde_json::Value> {
        let visibility = req.visibility_timeout.unwrap_or(DEFAULT_VISIBILITY);
        if visibility.is_zero() || visibility > limits::MAX_VISIBILITY_TIMEOUT {
            return Err(Reject::invalid(
                "visibility_timeout_ms must be between 1 and 43200000",
            ));
        }
        if req.extend.len() > limits::MAX_EXTEND_BATCH {
            return Err(Reject::invalid("at most 100 leases per extension"));
        }
        let q = self.queue(qid, now)?;
        let deadline = now.saturating_add(millis(visibility));
        let mut extended = Vec::new();
        let mut warnings = serde_json::Map::new();
        for entry in req.extend {
            let lease = entry.lease_id;
            let Some(idx) = q.current_lease(&lease) else {
                let why = stale_lease(q, &lease);
                warnings.insert(lease, serde_json::Value::String(why.to_owned()));
                continue;
            };
            q.unslot(idx);
            let secret = q.secret;
            let Some(rec) = q.record_mut(idx) else {
                continue;
            };
            rec.leases_given += 1;
            rec.extensions += 1;
            rec.at = deadline;
            let new_id = LeaseKey {
                idx,
                delivery: rec.attempts,
                lease: rec.leases_given,
            }
            .text(secret);
            extended.push(serde_json::json!({"id": rec.id.text(), "lease_id": new_id}));
            q.leased.insert((deadline, idx));
        }
        Ok(serde_json::json!({
            "messages": extended,
            "extendCount": extended.len(),
            "warnings": warnings,
        }))
    }

    pub(crate) fn peek(&mut self, qid: &str, batch: Option<u32>, now: u64) -> Outcome<PeekResult> {
        let batch = batch.unwrap_or(DEFAULT_PULL_BATCH);
        if batch == 0 || batch > MAX_PULL_BATCH {
            return Err(Reject::invalid("batch_size must be between 1 and 100"));
        }
        let (q, names) = self.queue_and_names(qid, now)?;
        let messages = q
            .available_now(now, batch as usize)
            .into_iter()
            .filter_map(|idx| {
                let rec = q.record(idx)?;
                let content_type = names.get(rec.content_type);
                Some(PeekedMessage {
                    id: rec.id.text(),
                    attempts: rec.attempts,
                    body: wire_body(&rec.body, content_type),
                    metadata: message_metadata(content_type),
                    peek_ref: peek_ref(idx, q.secret),
                    timestamp_ms: rec.published_ms,
                })
            })
            .collect();
        Ok(PeekResult { messages })
    }

    pub(crate) fn purge_refs(
        &mut self,
        qid: &str,
        refs: Vec<String>,
        now: u64,
    ) -> Outcome<PurgeMessagesResult> {
        if refs.is_empty() {
            return Err(Reject::invalid("refs must not be empty"));
        }
        let q = self.queue(qid, now)?;
        let mut warnings = BTreeMap::new();
        let errors: Vec<PurgeMessageError> = Vec::new();
        for r in refs {
            let live = open_peek_ref(&r, q.secret)
                .filter(|&idx| q.record(idx).is_some_and(Record::is_live));
            match live {
                Some(idx) => {
                    q.finish(idx, MessageState::Purged, now);
                }
                None => {
                    warnings.insert(r, "unknown or already removed ref".to_owned());
                }
            }
        }
        Ok(PurgeMessagesResult { errors, warnings })
    }

    pub(crate) fn metrics(&mut self, qid: &str, now: u64) -> Outcome<QueueMetrics> {
        Ok(self.queue(qid, now)?.metrics())
    }

    pub(crate) fn purge(&mut self, qid: &str, confirmed: bool, now: u64) -> Outcome<Queue> {
        if !confirmed {
            return Err(Reject::invalid(
                "delete_messages_permanently must be true to purge a queue",
            ));
        }
        let q = self.queue(qid, now)?;
        for idx in 0..q.records.len() as u64 {
            q.finish(idx, MessageState::Purged, now);
        }
        q.purge = Some((now, true));
        Ok(q.to_model())
    }

    pub(crate) fn purge_status(&mut self, qid: &str, now: u64) -> Outcome<PurgeStatus> {
        let q = self.queue(qid, now)?;
        Ok(match q.purge {
            Some((started, completed)) => PurgeStatus {
                completed: Some(completed),
                started_at: Some(rfc3339(started)),
            },
            None => PurgeStatus {
                completed: None,
                started_at: None,
            },
        })
    }

    // ---- event subscriptions ------------------------------------------------------

    pub(crate) fn create_subscription(
        &mut self,
        req: CreateSubscriptionRequest,
        now: u64,
    ) -> Outcome<EventSubscription> {
        if req.name.trim().is_empty() {
            return Err(Reject::invalid("name must not be empty"));
        }
        if req.events.is_empty() {
            return Err(Reject::invalid("events must list at least one event type"));
        }
        self.check_destination(&req.destination, now)?;
        let id = self.rng.hex(16);
        let sub = EventSubscription {
            id: id.clone(),
            name: req.name,
            enabled: req.enabled.unwrap_or(true),
            source: req.source,
            destination: req.destination,
            events: req.events,
            created_at: rfc3339(now),
            modified_at: rfc3339(now),
        };
        self.subscriptions.insert(id, (now, sub.clone()));
        Ok(sub)
    }

    fn check_destination(
        &mut self,
        dest: &crate::models::EventDestination,
        now: u64,
    ) -> Outcome<()> {
        match dest {
            crate::models::EventDestination::Queue(q) => {
                self.queue(&q.queue_id, now)
                    .map_err(|_| Reject::new(404, code::QUEUE_NOT_FOUND, "Queue does not exist"))?;
                Ok(())
            }
            _ => Err(Reject::invalid("destination type must be queues.queue")),
        }
    }

    pub(crate) fn list_subscriptions(
        &self,
        page: u64,
        per_page: u64,
        order: &SubscriptionOrder,
        direction: &SortDirection,
    ) -> (Vec<EventSubscription>, ResultInfo) {
        let mut subs: Vec<&(u64, EventSubscription)> = self.subscriptions.values().collect();
        subs.sort_by(|(ca, a), (cb, b)| match order {
            SubscriptionOrder::CreatedAt => ca.cmp(cb).then(a.id.cmp(&b.id)),
            SubscriptionOrder::Enabled => a.enabled.cmp(&b.enabled).then(a.name.cmp(&b.name)),
            SubscriptionOrder::Source => {
                let kind = |s: &EventSubscription| s.source.kind().map(str::to_owned);
                kind(a).cmp(&kind(b)).then(a.name.cmp(&b.name))
            }
            _ => a.name.cmp(&b.name).then(a.id.cmp(&b.id)),
        });
        if matches!(direction, SortDirection::Desc) {
            subs.reverse();
        }
        paginate(
            subs.into_iter().map(|(_, s)| s.clone()).collect(),
            page,
            per_page,
        )
    }

    pub(crate) fn get_subscription(&self, id: &str) -> Outcome<EventSubscription> {
        self.subscriptions
            .get(id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| Reject::new(404, code::NOT_FOUND, "event subscription not found"))
    }

    pub(crate) fn update_subscription(
        &mut self,
        id: &str,
        req: UpdateSubscriptionRequest,
        now: u64,
    ) -> Outcome<EventSubscription> {
        if let Some(dest) = &req.destination {
            self.check_destination(dest, now)?;
        }
        let (_, sub) = self
            .subscriptions
            .get_mut(id)
            .ok_or_else(|| Reject::new(404, code::NOT_FOUND, "event subscription not found"))?;
        if let Some(name) = req.name {
            sub.name = name;
        }
        if let Some(enabled) = req.enabled {
            sub.enabled = enabled;
        }
        if let Some(dest) = req.destination {
            sub.destination = dest;
        }
        // An empty list means "not given": the API requires at least one event type.
        if !req.events.is_empty() {
            sub.events = req.events;
        }
        sub.modified_at = rfc3339(now);
        Ok(sub.clone())
    }

    pub(crate) fn delete_subscription(&mut self, id: &str) -> Outcome<EventSubscription> {
        self.subscriptions
            .remove(id)
            .map(|(_, s)| s)
            .ok_or_else(|| Reject::new(404, code::NOT_FOUND, "event subscription not found"))
    }

    // ---- inspection ---------------------------------------------------------------

    /// Every message the queue has held, in order of arrival, as the public type.
    pub(crate) fn ledger(&mut self, qid: &str, now: u64) -> Vec<MessageInfo> {
        self.tick_all(now);
        let names = &self.names;
        self.queues
            .get(qid)
            .map(|q| q.records.iter().map(|r| r.info(names, now)).collect())
            .unwrap_or_default()
    }

    /// Counts over the queue's ledger; `None` when no queue has that id.
    pub(crate) fn summary(&mut self, qid: &str, now: u64) -> Option<super::QueueSummary> {
        self.tick_all(now);
        self.queues.get(qid).map(|q| summarize(&q.records, now))
    }

    /// The first `prefix` bytes of every payload the queue has held, in order of
    /// arrival, as lossy UTF-8; `None` when no queue has that id.
    pub(crate) fn body_prefixes(&mut self, qid: &str, prefix: usize) -> Option<Vec<String>> {
        self.queues.get(qid).map(|q| {
            q.records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body[..prefix.min(r.body.len())]).into_owned())
                .collect()
        })
    }

    pub(crate) fn queue_id_by_name(&self, name: &str) -> Option<String> {
        self.by_name.get(name).cloned()
    }

    pub(crate) fn queue_name(&self, id: &str) -> Option<String> {
        self.queues.get(id).map(|q| q.name.clone())
    }
}

/// Metadata as Cloudflare attaches it to pulled and peeked messages.
fn message_metadata(content_type: &str) -> MessageMetadata {
    MessageMetadata::new(ContentType::from(content_type)).with(crate::models::SOURCE_KEY, "api")
}

/// Why a lease that is not the message's current one cannot be retried or extended.
fn stale_lease(q: &QueueState, lease: &str) -> &'static str {
    match q.lease(lease) {
        Some((_, rec)) if rec.is_live() => {
            "lease expired; the message was already returned to the queue"
        }
        Some(_) => "message already acknowledged or removed",
        None => "unknown lease id",
    }
}

fn overloaded(wait: Duration) -> Reject {
    Reject {
        retry_after: Some(wait),
        ..Reject::new(429, code::OVERLOADED, "Queue is overloaded")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

fn validate_queue_name(name: &str) -> Outcome<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Reject::new(
            400,
            code::INVALID_QUEUE_NAME,
            "queue names are 1 to 63 lowercase letters, digits, dashes or underscores",
        ))
    }
}

/// Applies given settings over `s`, checked by the same rules the client uses.
fn apply_settings(mut s: Settings, given: Option<&QueueSettings>) -> Outcome<Settings> {
    let Some(given) = given else { return Ok(s) };
    given
        .validate()
        .map_err(|e| Reject::invalid(format!("settings: {e}")))?;
    if let Some(d) = given.delivery_delay {
        s.delivery_delay = d;
    }
    if let Some(p) = given.delivery_paused {
        s.delivery_paused = p;
    }
    if let Some(r) = given.message_retention_period {
        s.retention = r;
    }
    Ok(s)
}

/// Checks a consumer by the same rules the client uses; refuses kinds it cannot run.
fn validate_consumer(req: &ConsumerRequest) -> Outcome<()> {
    if matches!(req, ConsumerRequest::Unknown(_)) {
        return Err(Reject::invalid("type must be worker or http_pull"));
    }
    req.validate().map_err(|e| Reject::invalid(e.to_string()))
}

fn paginate<T>(items: Vec<T>, page: u64, per_page: u64) -> (Vec<T>, ResultInfo) {
    let per_page = per_page.clamp(1, 100);
    let page = page.max(1);
    let total = items.len() as u64;
    let total_pages = total.div_ceil(per_page).max(1);
    let start = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let items: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(usize::try_from(per_page).unwrap_or(100))
        .collect();
    let info = ResultInfo {
        count: Some(items.len() as u64),
        page: Some(page),
        per_page: Some(per_page),
        total_count: Some(total),
        total_pages: Some(total_pages),
    };
    (items, info)
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T08:15:30.250Z`.
pub(crate) fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01, after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
