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
use super::{MessageEvent, MessageEventKind, MessageInfo, MessageState, SeedMessage};
use crate::limits::{self, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_PULL_BATCH};
use crate::models::{
    AckRequest, AckResult, AckWarning, Consumer, ConsumerRequest, ContentType, CreateQueueRequest,
    CreateSubscriptionRequest, EventSubscription, ExtendRequest, HttpPullConsumer,
    HttpPullConsumerSettings, Jurisdiction, Message, MessageMetadata, PeekResult, PeekedMessage,
    PullResult, PulledMessage, PurgeMessageError, PurgeMessagesResult, PurgeStatus,
    PushContentType, PushResult, Queue, QueueMetrics, QueueSettings, ResultInfo, ResultMetadata,
    SortDirection, SubscriptionOrder, UpdateQueueRequest, UpdateSubscriptionRequest,
    WorkerConsumer,
};
use base64::Engine as _;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
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

#[derive(Debug, Clone)]
enum Slot {
    /// Deliverable from `at` (a time in the future means delayed).
    Available { at: u64 },
    /// Leased for the `delivery`-th delivery. `lease` counts every lease the message was
    /// given (pulls and extensions), so that an extended lease's earlier expiry entry can
    /// be told apart from its current one; the deadline is in the expiry heap.
    Leased { delivery: u32, lease: u32 },
}

#[derive(Debug, Clone)]
struct Stored {
    seq: u64,
    id: String,
    /// The body as pulls return it: plain text, or base64 for json, bytes and v8.
    wire_body: String,
    content_type: String,
    timestamp_ms: u64,
    attempts: u32,
    size: usize,
    slot: Slot,
    /// Leases given so far (pulls and extensions); see `Slot::Leased`.
    leases_given: u32,
    lease_ids: Vec<String>,
    /// Peek refs issued for it, so they can be forgotten when it goes.
    refs: Vec<String>,
}

#[derive(Debug, Clone)]
struct ConsumerState {
    id: String,
    created_ms: u64,
    config: ConsumerRequest,
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
        match &self.config {
            ConsumerRequest::HttpPull(c) => c.dead_letter_queue.as_deref(),
            ConsumerRequest::Worker(c) => c.dead_letter_queue.as_deref(),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }
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
    live: HashMap<u64, Stored>,
    /// Deliverable order: (available at, seq).
    ready: BTreeSet<(u64, u64)>,
    /// Lease deadlines: (deadline, seq, lease number); see `Slot::Leased`.
    expiries: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Retention order: (published at, seq).
    by_age: BTreeSet<(u64, u64)>,
    /// Every lease id issued for a live message.
    leases: HashMap<String, (u64, u32)>,
    /// Lease ids of messages that are gone, for idempotent re-acks.
    settled_leases: HashMap<String, u64>,
    refs: HashMap<String, u64>,
    ledger: BTreeMap<u64, MessageInfo>,
    bytes: u64,
    purge: Option<(u64, bool)>,
    limiter_read: Option<TokenBucket>,
    limiter_write: Option<TokenBucket>,
    /// Messages past max_retries waiting to be moved to the dead-letter queue.
    dead: Vec<Stored>,
}

impl QueueState {
    fn new(id: String, name: String, now: u64, settings: Settings, rate: Option<u32>) -> Self {
        QueueState {
            id,
            name,
            created_ms: now,
            modified_ms: now,
            settings,
            jurisdiction: None,
            consumer: None,
            live: HashMap::new(),
            ready: BTreeSet::new(),
            expiries: BinaryHeap::new(),
            by_age: BTreeSet::new(),
            leases: HashMap::new(),
            settled_leases: HashMap::new(),
            refs: HashMap::new(),
            ledger: BTreeMap::new(),
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

    /// Applies everything time has done since the last call: expired leases and
    /// messages past their retention.
    fn tick(&mut self, now: u64) {
        while let Some(Reverse((deadline, seq, lease))) = self.expiries.peek().copied() {
            if deadline > now {
                break;
            }
            self.expiries.pop();
            // An entry of a lease since extended (or of an earlier delivery) is stale.
            let current = matches!(
                self.live.get(&seq).map(|m| &m.slot),
                Some(Slot::Leased { lease: l, .. }) if *l == lease
            );
            if current {
                if let Some(rec) = self.ledger.get_mut(&seq) {
                    rec.expiries += 1;
                }
                self.record(seq, now, MessageEventKind::LeaseExpired);
                self.redeliver_or_dead_letter(seq, now);
            }
        }
        let retention = millis(self.settings.retention);
        while let Some(&(published, seq)) = self.by_age.first() {
            if published.saturating_add(retention) > now {
                break;
            }
            self.finish(seq, MessageState::Expired, now);
        }
    }

    /// Whether a lease expires or a message outlives its retention by `now`.
    fn due(&self, now: u64) -> bool {
        let retention = millis(self.settings.retention);
        self.expiries
            .peek()
            .is_some_and(|Reverse((deadline, _, _))| *deadline <= now)
            || self
                .by_age
                .first()
                .is_some_and(|(published, _)| published.saturating_add(retention) <= now)
            || !self.dead.is_empty()
    }

    /// Stores a message that arrives at `now` (published, seeded or dead-lettered here),
    /// deliverable from `available_at`; `arrival` opens its history.
    fn insert(
        &mut self,
        mut stored: Stored,
        now: u64,
        available_at: u64,
        arrival: MessageEventKind,
    ) {
        let seq = stored.seq;
        stored.slot = Slot::Available { at: available_at };
        self.ready.insert((available_at, seq));
        self.by_age.insert((stored.timestamp_ms, seq));
        self.bytes += stored.size as u64;
        self.ledger.insert(
            seq,
            MessageInfo {
                id: stored.id.clone(),
                state: MessageState::Available,
                content_type: stored.content_type.clone(),
                body: payload(&stored.content_type, &stored.wire_body),
                published_ms: stored.timestamp_ms,
                delay: Duration::from_millis(available_at.saturating_sub(now)),
                attempts: 0,
                deliveries: 0,
                acks: 0,
                duplicate_acks: 0,
                retries: 0,
                expiries: 0,
                extensions: 0,
                history: vec![MessageEvent {
                    at_ms: now,
                    kind: arrival,
                }],
            },
        );
        self.live.insert(seq, stored);
    }

    /// Adds an event to a message's history.
    fn record(&mut self, seq: u64, now: u64, kind: MessageEventKind) {
        if let Some(rec) = self.ledger.get_mut(&seq) {
            rec.history.push(MessageEvent { at_ms: now, kind });
        }
    }

    /// Ends a failed delivery (explicit retry or lease expiry): back in the queue after
    /// `delay`, or to the dead-letter queue (or dropped) once attempts reach max_retries.
    fn redeliver_or_dead_letter(&mut self, seq: u64, now: u64) -> bool {
        let delay = self
            .consumer
            .as_ref()
            .map(ConsumerState::retry_delay)
            .unwrap_or_default();
        self.fail_delivery(seq, now, delay)
    }

    fn fail_delivery(&mut self, seq: u64, now: u64, delay: Duration) -> bool {
        let max_retries = self
            .consumer
            .as_ref()
            .map_or(DEFAULT_MAX_RETRIES, ConsumerState::max_retries);
        let Some(m) = self.live.get_mut(&seq) else {
            return false;
        };
        if m.attempts >= max_retries {
            let has_dlq = self
                .consumer
                .as_ref()
                .and_then(ConsumerState::dead_letter_queue)
                .is_some();
            if let Some(stored) = self.finish(
                seq,
                if has_dlq {
                    MessageState::DeadLettered
                } else {
                    MessageState::Dropped
                },
                now,
            ) {
                if has_dlq {
                    self.dead.push(stored);
                }
            }
            return true;
        }
        let at = now.saturating_add(millis(delay));
        m.slot = Slot::Available { at };
        self.ready.insert((at, seq));
        if let Some(rec) = self.ledger.get_mut(&seq) {
            rec.state = MessageState::Available;
        }
        true
    }

    /// Removes a live message for good, recording why.
    fn finish(&mut self, seq: u64, state: MessageState, now: u64) -> Option<Stored> {
        let m = self.live.remove(&seq)?;
        if let Slot::Available { at } = m.slot {
            self.ready.remove(&(at, seq));
        }
        self.by_age.remove(&(m.timestamp_ms, seq));
        self.bytes -= m.size as u64;
        for lease in &m.lease_ids {
            self.leases.remove(lease);
            self.settled_leases.insert(lease.clone(), seq);
        }
        for peek_ref in &m.refs {
            self.refs.remove(peek_ref);
        }
        if let Some(rec) = self.ledger.get_mut(&seq) {
            rec.state = state;
        }
        let event = match state {
            MessageState::Acked => Some(MessageEventKind::Acked),
            MessageState::DeadLettered => Some(MessageEventKind::DeadLettered {
                queue: self
                    .consumer
                    .as_ref()
                    .and_then(ConsumerState::dead_letter_queue)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            MessageState::Dropped => Some(MessageEventKind::Dropped),
            MessageState::Purged => Some(MessageEventKind::Purged),
            MessageState::Expired => Some(MessageEventKind::Expired),
            _ => None,
        };
        if let Some(kind) = event {
            self.record(seq, now, kind);
        }
        Some(m)
    }

    fn metrics(&self) -> QueueMetrics {
        QueueMetrics {
            backlog_count: self.live.len() as u64,
            backlog_bytes: self.bytes,
            oldest_message_timestamp_ms: self.by_age.first().map_or(0, |(t, _)| *t),
        }
    }

    fn available_now(&self, now: u64, n: usize) -> Vec<u64> {
        self.ready
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(n)
            .map(|(_, seq)| *seq)
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
    next_seq: u64,
    rate_limit: Option<u32>,
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        World {
            queues: HashMap::new(),
            by_name: HashMap::new(),
            subscriptions: BTreeMap::new(),
            rng: Rng::new(seed),
            next_seq: 0,
            rate_limit: None,
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
                let rate = self.rate_limit;
                self.queues.insert(
                    new_id.clone(),
                    QueueState::new(
                        new_id.clone(),
                        dlq_name.clone(),
                        now,
                        Settings::default(),
                        rate,
                    ),
                );
                self.by_name.insert(dlq_name, new_id.clone());
                new_id
            }
        };
        if let Some(dlq) = self.queues.get_mut(&dlq_id) {
            for mut m in dead {
                // A dead-lettered message starts over in its new queue.
                m.attempts = 0;
                m.lease_ids.clear();
                let from = MessageEventKind::DeadLetterArrived {
                    from_queue_id: id.to_owned(),
                };
                dlq.insert(m, now, now, from);
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
        let mut q = QueueState::new(
            id.clone(),
            req.queue_name.clone(),
            now,
            settings,
            self.rate_limit,
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
        };
        let model = consumer_model(&c, &q.name);
        q.consumer = Some(c);
        Ok(model)
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
        let q = self.queue(qid, now)?;
        match &mut q.consumer {
            Some(c) if c.id == cid => c.config = req,
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
                })
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
            let (wire_body, size, content_type) = encode_body(&m)?;
            if size > MAX_MESSAGE_BYTES {
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
            total += size;
            prepared.push((wire_body, size, content_type, m.delay.or(batch_delay)));
        }
        if is_batch && total > MAX_BATCH_BYTES {
            return Err(Reject::new(
                400,
                code::BATCH_SIZE,
                "Batch size out of bounds: at most 256 KB",
            ));
        }
        let first_seq = self.next_seq;
        self.next_seq += prepared.len() as u64;
        let ids: Vec<String> = prepared.iter().map(|_| self.rng.hex(16)).collect();
        let q = self.queue(qid, now)?;
        if let Some(bucket) = &mut q.limiter_write {
            bucket.take(prepared.len(), now).map_err(overloaded)?;
        }
        for (i, ((wire_body, size, content_type, delay), id)) in
            prepared.into_iter().zip(ids).enumerate()
        {
            let delay = delay.unwrap_or(q.settings.delivery_delay);
            let stored = Stored {
                seq: first_seq + i as u64,
                id,
                wire_body,
                content_type: content_type.to_owned(),
                timestamp_ms: now,
                attempts: 0,
                size,
                slot: Slot::Available { at: now },
                leases_given: 0,
                lease_ids: Vec::new(),
                refs: Vec::new(),
            };
            let available_at = now.saturating_add(millis(delay));
            q.insert(
                stored,
                now,
                available_at,
                MessageEventKind::Published { delay },
            );
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
        let first_seq = self.next_seq;
        self.next_seq += messages.len() as u64;
        let ids: Vec<String> = messages.iter().map(|_| self.rng.hex(16)).collect();
        let q = self.queue(qid, now)?;
        for (i, (m, id)) in messages.into_iter().zip(ids.iter()).enumerate() {
            let size = m.payload.len();
            let wire_body = match m.content_type.as_str() {
                "text" => String::from_utf8_lossy(&m.payload).into_owned(),
                _ => base64::engine::general_purpose::STANDARD.encode(&m.payload),
            };
            let stored = Stored {
                seq: first_seq + i as u64,
                id: id.clone(),
                wire_body,
                content_type: m.content_type,
                timestamp_ms: now,
                attempts: 0,
                size,
                slot: Slot::Available { at: now },
                leases_given: 0,
                lease_ids: Vec::new(),
                refs: Vec::new(),
            };
            let available_at = now.saturating_add(millis(m.delay));
            let published = MessageEventKind::Published { delay: m.delay };
            q.insert(stored, now, available_at, published);
        }
        Ok(ids)
    }

    pub(crate) fn pull(
        &mut self,
        qid: &str,
        batch: Option<u32>,
        visibility: Option<Duration>,
        now: u64,
    ) -> Outcome<PullResult> {
        let q = self.queue(qid, now)?;
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
        let mut out = Vec::with_capacity(picked.len());
        let mut lease_ids = Vec::with_capacity(picked.len());
        for _ in &picked {
            lease_ids.push(format!("lease-{}", self.rng.hex(24)));
        }
        let q = self.queue(qid, now)?;
        for (seq, lease_id) in picked.into_iter().zip(lease_ids) {
            let Some(m) = q.live.get_mut(&seq) else {
                continue;
            };
            if let Slot::Available { at } = m.slot {
                q.ready.remove(&(at, seq));
            }
            m.attempts += 1;
            m.leases_given += 1;
            m.slot = Slot::Leased {
                delivery: m.attempts,
                lease: m.leases_given,
            };
            m.lease_ids.push(lease_id.clone());
            q.expiries.push(Reverse((deadline, seq, m.leases_given)));
            q.leases.insert(lease_id.clone(), (seq, m.attempts));
            if let Some(rec) = q.ledger.get_mut(&seq) {
                rec.deliveries += 1;
                rec.attempts = m.attempts;
                rec.state = MessageState::Leased;
                rec.history.push(MessageEvent {
                    at_ms: now,
                    kind: MessageEventKind::Leased {
                        attempt: m.attempts,
                        visibility_timeout: visibility,
                    },
                });
            }
            let metadata = message_metadata(&m.content_type);
            out.push(PulledMessage {
                id: m.id.clone(),
                attempts: m.attempts,
                body: m.wire_body.clone(),
                lease_id,
                metadata,
                timestamp_ms: m.timestamp_ms,
            });
        }
        let metrics = q.metrics();
        Ok(PullResult {
            message_backlog_count: Some(metrics.backlog_count),
            messages: out,
            metadata: Some(ResultMetadata {
                metrics: Some(metrics),
            }),
            rejected: Vec::new(),
        })
    }

    pub(crate) fn ack(&mut self, qid: &str, req: AckRequest, now: u64) -> Outcome<AckResult> {
        if req
            .retries
            .iter()
            .any(|r| r.delay.is_some_and(|d| d > limits::MAX_DELAY))
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
        for entry in req.acks {
            let lease = entry.lease_id;
            if let Some(&(seq, _)) = q.leases.get(&lease) {
                if let Some(rec) = q.ledger.get_mut(&seq) {
                    rec.acks += 1;
                }
                q.finish(seq, MessageState::Acked, now);
                acked += 1;
            } else if let Some(&seq) = q.settled_leases.get(&lease) {
                match q.ledger.get_mut(&seq) {
                    // Already acknowledged: an idempotent repeat (a retried request, say).
                    Some(rec) if rec.state == MessageState::Acked => {
                        rec.duplicate_acks += 1;
                        rec.history.push(MessageEvent {
                            at_ms: now,
                            kind: MessageEventKind::AckedAgain,
                        });
                        acked += 1;
                    }
                    Some(rec) => warnings.push(AckWarning::new(
                        lease,
                        format!("message is no longer in the queue ({:?})", rec.state)
                            .to_lowercase(),
                    )),
                    None => warnings.push(AckWarning::new(lease, "unknown lease id")),
                }
            } else {
                warnings.push(AckWarning::new(lease, "unknown lease id"));
            }
        }
        for entry in req.retries {
            let lease = entry.lease_id;
            let current = q.leases.get(&lease).copied().filter(|&(seq, delivery)| {
                matches!(q.live.get(&seq).map(|m| &m.slot), Some(Slot::Leased { delivery: d, .. }) if *d == delivery)
            });
            match current {
                Some((seq, _)) => {
                    let delay = entry.delay.unwrap_or_else(|| {
                        q.consumer
                            .as_ref()
                            .map(ConsumerState::retry_delay)
                            .unwrap_or_default()
                    });
                    if let Some(rec) = q.ledger.get_mut(&seq) {
                        rec.retries += 1;
                    }
                    q.record(seq, now, MessageEventKind::Retried { delay });
                    q.fail_delivery(seq, now, delay);
                    retried += 1;
                }
                None if q.leases.contains_key(&lease) => {
                    warnings.push(AckWarning::new(
                        lease,
                        "lease expired; the message was already returned to the queue",
                    ));
                }
                None if q.settled_leases.contains_key(&lease) => {
                    warnings.push(AckWarning::new(
                        lease,
                        "message already acknowledged or removed",
                    ));
                }
                None => warnings.push(AckWarning::new(lease, "unknown lease id")),
            }
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
        let new_ids: Vec<String> = req
            .extend
            .iter()
            .map(|_| format!("lease-{}", self.rng.hex(24)))
            .collect();
        let q = self.queue(qid, now)?;
        let deadline = now.saturating_add(millis(visibility));
        let mut extended = Vec::new();
        let mut warnings = serde_json::Map::new();
        for (entry, new_id) in req.extend.into_iter().zip(new_ids) {
            let lease = entry.lease_id;
            let current = q.leases.get(&lease).copied().filter(|&(seq, delivery)| {
                matches!(q.live.get(&seq).map(|m| &m.slot), Some(Slot::Leased { delivery: d, .. }) if *d == delivery)
            });
            let Some((seq, delivery)) = current else {
                let why = if q.leases.contains_key(&lease) {
                    "lease expired; the message was already returned to the queue"
                } else if q.settled_leases.contains_key(&lease) {
                    "message already acknowledged or removed"
                } else {
                    "unknown lease id"
                };
                warnings.insert(lease, serde_json::Value::String(why.to_owned()));
                continue;
            };
            let Some(m) = q.live.get_mut(&seq) else {
                continue;
            };
            m.leases_given += 1;
            m.slot = Slot::Leased {
                delivery,
                lease: m.leases_given,
            };
            m.lease_ids.push(new_id.clone());
            q.expiries.push(Reverse((deadline, seq, m.leases_given)));
            q.leases.insert(new_id.clone(), (seq, delivery));
            if let Some(rec) = q.ledger.get_mut(&seq) {
                rec.extensions += 1;
            }
            extended.push(serde_json::json!({"id": m.id, "lease_id": new_id}));
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
        let refs: Vec<String> = (0..batch)
            .map(|_| format!("ref-{}", self.rng.hex(16)))
            .collect();
        let q = self.queue(qid, now)?;
        let picked = q.available_now(now, batch as usize);
        let mut messages = Vec::with_capacity(picked.len());
        for (seq, peek_ref) in picked.into_iter().zip(refs) {
            let Some(m) = q.live.get(&seq) else { continue };
            let metadata = message_metadata(&m.content_type);
            messages.push(PeekedMessage {
                id: m.id.clone(),
                attempts: m.attempts,
                body: m.wire_body.clone(),
                metadata,
                peek_ref: peek_ref.clone(),
                timestamp_ms: m.timestamp_ms,
            });
            if let Some(m) = q.live.get_mut(&seq) {
                m.refs.push(peek_ref.clone());
            }
            q.refs.insert(peek_ref, seq);
        }
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
            match q.refs.get(&r).copied() {
                Some(seq) => {
                    q.finish(seq, MessageState::Purged, now);
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
        let all: Vec<u64> = q.live.keys().copied().collect();
        for seq in all {
            q.finish(seq, MessageState::Purged, now);
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

    pub(crate) fn ledger(&mut self, qid: &str, now: u64) -> Vec<MessageInfo> {
        self.tick_all(now);
        self.queues
            .get(qid)
            .map(|q| {
                q.ledger
                    .iter()
                    .map(|(seq, rec)| {
                        let mut rec = rec.clone();
                        if let Some(Stored {
                            slot: Slot::Available { at },
                            ..
                        }) = q.live.get(seq)
                        {
                            if *at > now {
                                rec.state = MessageState::Delayed;
                            }
                        }
                        rec
                    })
                    .collect()
            })
            .unwrap_or_default()
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

fn overloaded(wait: Duration) -> Reject {
    Reject {
        retry_after: Some(wait),
        ..Reject::new(429, code::OVERLOADED, "Queue is overloaded")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

/// The payload of a stored body: a text body's UTF-8 as it is, anything else decoded
/// from the base64 it travels in.
fn payload(content_type: &str, wire_body: &str) -> Vec<u8> {
    if content_type == "text" {
        return wire_body.as_bytes().to_vec();
    }
    base64::engine::general_purpose::STANDARD
        .decode(wire_body)
        .unwrap_or_else(|_| wire_body.as_bytes().to_vec())
}

/// The stored form of a published body: (wire body, size for limits, content type).
fn encode_body(m: &Message) -> Outcome<(String, usize, &'static str)> {
    match (&m.content_type, &m.body) {
        (PushContentType::Text, serde_json::Value::String(s)) => Ok((s.clone(), s.len(), "text")),
        (PushContentType::Text, _) => Err(Reject::new(
            400,
            code::BODY_INVALID,
            "a text message must have a string body",
        )),
        (PushContentType::Json, body) => {
            let raw = serde_json::to_vec(body).map_err(|e| Reject::invalid(e.to_string()))?;
            Ok((
                base64::engine::general_purpose::STANDARD.encode(&raw),
                raw.len(),
                "json",
            ))
        }
        (other, _) => Err(Reject::new(
            400,
            code::MESSAGE_METADATA_INVALID,
            format!(
                "Invalid message metadata: content type `{other}`; the REST API takes text and json"
            ),
        )),
    }
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
