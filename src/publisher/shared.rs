//! What the publisher's parts share: an accepted message ([`Item`]), the batch being
//! filled ([`Open`]), the commands the task takes, and the state of one publisher
//! ([`Shared`]).

use super::Published;
use super::config::Config;
use super::flow::{Flow, Room};
use super::lane::Lane;
use super::pusher::Pusher;
use super::report::{self, Counters, PublisherReport, PublisherStats};
use crate::error::Result;
use bytes::Bytes;
use crate::api::{batch_request_len, starts_new_batch};
use crate::limits::MAX_BATCH_MESSAGES;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// One accepted message.
#[derive(Debug)]
pub(crate) struct Item {
    /// The message as the batch body carries it.
    pub(crate) body: Bytes,
    /// Requests that carried it so far.
    pub(crate) attempts: u32,
    /// Whether a request carrying it had an unknown outcome.
    pub(crate) maybe_stored: bool,
    reply: oneshot::Sender<Result<Published>>,
    /// Flow-control room, given back when the item is dropped.
    _room: Room,
}

impl Item {
    pub(crate) fn new(body: Bytes, reply: oneshot::Sender<Result<Published>>, room: Room) -> Self {
        Item {
            body,
            attempts: 0,
            maybe_stored: false,
            reply,
            _room: room,
        }
    }

    /// Answers the publisher's caller (who may have stopped listening) and gives the room
    /// back.
    pub(crate) fn answer(self, result: Result<Published>) {
        let _ = self.reply.send(result);
    }
}

/// Messages that make one batch request: consecutive arrival numbers from `first`.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) first: u64,
    pub(crate) items: Vec<Item>,
}

impl Batch {
    /// The arrival numbers it carries, `first..end`.
    pub(crate) fn seqs(&self) -> std::ops::Range<u64> {
        self.first..self.first + self.items.len() as u64
    }
}

#[derive(Debug)]
pub(crate) enum Command {
    /// A batch that no further message can join, closed by `publish`.
    Batch(Batch),
    /// `publish` started a new open batch: its age now counts.
    Opened,
    /// Answer once everything accepted before it has its outcome.
    Flush(oneshot::Sender<()>),
    Close,
}

/// The batch being filled. `publish` adds to it under its lock and, when it is
/// complete, hands it to the task (still under the lock, so batches reach the task in
/// arrival order); the task takes it early when it is due (`max_delay`), on a flush and
/// on shutdown. One hand-over per batch, where a channel message per publish woke the
/// task (often on another thread) for nearly every message.
#[derive(Debug)]
pub(crate) struct Open {
    items: Vec<Item>,
    /// Encoded bytes of `items`.
    bytes: usize,
    /// When the first of `items` arrived.
    since: Instant,
    /// Arrival number of the next message accepted.
    next_seq: u64,
    /// Set when the task takes the last batch: nothing more is accepted.
    closed: bool,
}

/// What [`Open::push`] did.
pub(crate) enum Pushed {
    /// The message joined the open batch, which it started if `opened`.
    Added { opened: bool },
    /// The publisher has shut down: the message is handed back, unsent.
    Closed(Item),
}

impl Open {
    fn new() -> Self {
        Open {
            items: Vec::new(),
            bytes: 0,
            since: Instant::now(),
            next_seq: 0,
            closed: false,
        }
    }

    /// Adds an accepted message, first sending on the open batch if the message cannot
    /// join it, and after it if it is full. `send` gets each closed batch.
    pub(crate) fn push(
        &mut self,
        item: Item,
        max_messages: usize,
        max_bytes: usize,
        mut send: impl FnMut(Batch),
    ) -> Pushed {
        if self.closed {
            return Pushed::Closed(item);
        }
        let size = item.body.len();
        let len = self.items.len();
        if starts_new_batch(
            len,
            batch_request_len(len + 1, self.bytes + size),
            max_messages,
            max_bytes,
        ) {
            if let Some(batch) = self.take() {
                send(batch);
            }
        }
        let opened = self.items.is_empty();
        if opened {
            self.since = Instant::now();
            self.items.reserve(max_messages.min(MAX_BATCH_MESSAGES));
        }
        self.items.push(item);
        self.bytes += size;
        self.next_seq += 1;
        if self.items.len() >= max_messages {
            if let Some(batch) = self.take() {
                send(batch);
            }
            return Pushed::Added { opened: false };
        }
        Pushed::Added { opened }
    }

    /// The open batch, if it holds anything.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        if self.items.is_empty() {
            return None;
        }
        let items = std::mem::take(&mut self.items);
        self.bytes = 0;
        Some(Batch {
            first: self.next_seq - items.len() as u64,
            items,
        })
    }

    /// When the open batch is due, if it holds anything.
    pub(crate) fn due(&self, max_delay: Duration) -> Option<Instant> {
        (!self.items.is_empty()).then(|| self.since.checked_add(max_delay).unwrap_or(self.since))
    }

    /// The arrival number the next message will get: a flush waits for those below it.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Accepts nothing more and returns what is open.
    pub(crate) fn close(&mut self) -> Option<Batch> {
        self.closed = true;
        self.take()
    }
}

/// State shared by the handles, the task and the batch senders.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) lanes: Vec<Lane>,
    pub(crate) pusher: Arc<dyn Pusher>,
    pub(crate) counters: Counters,
    pub(crate) flow: Flow,
    /// Most messages per request: `max_messages`, or less under a small rate limit.
    pub(crate) batch_cap: usize,
    /// The batch being filled.
    open: Mutex<Open>,
    closing: AtomicBool,
    pub(crate) report: watch::Sender<Option<PublisherReport>>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Config,
        lanes: Vec<Lane>,
        pusher: Arc<dyn Pusher>,
    ) -> (
        Arc<Shared>,
        mpsc::UnboundedSender<Command>,
        mpsc::UnboundedReceiver<Command>,
    ) {
        let batch_cap = lanes
            .iter()
            .filter_map(|l| l.rate.as_ref().map(super::lane::RateLimit::burst))
            .fold(cfg.max_messages, usize::min)
            .max(1);
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            flow: Flow::new(cfg.max_outstanding_messages, cfg.max_outstanding_bytes),
            cfg,
            lanes,
            pusher,
            counters: Counters::default(),
            batch_cap,
            open: Mutex::new(Open::new()),
            closing: AtomicBool::new(false),
            report: watch::Sender::new(None),
        });
        (shared, tx, rx)
    }

    /// Refuses new messages from now on, and wakes those waiting for room.
    pub(crate) fn begin_close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.flow.close();
    }

    /// The open batch. Nothing panics while holding it, but a poisoned lock would still
    /// hold consistent state, so it is taken anyway.
    pub(crate) fn open(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn stats(&self) -> PublisherStats {
        let throttled = self.lanes.iter().map(Lane::time_throttled).sum();
        report::stats(&self.counters, self.flow.outstanding(), throttled)
    }

    pub(crate) fn report_now(&self) -> PublisherReport {
        report::report(&self.stats())
    }

    /// The lane for the next batch: round-robin from `next`, skipping throttled lanes;
    /// when all are throttled, the one that opens first.
    pub(crate) fn pick_lane(&self, next: &mut usize) -> usize {
        let n = self.lanes.len().max(1);
        let now = Instant::now();
        let mut soonest: Option<(usize, Instant)> = None;
        for k in 0..n {
            let i = (*next + k) % n;
            match self.lanes.get(i).and_then(|l| l.throttled_until(now)) {
                None => {
                    *next = i + 1;
                    return i;
                }
                Some(until) => {
                    if soonest.is_none_or(|(_, s)| until < s) {
                        soonest = Some((i, until));
                    }
                }
            }
        }
        let i = soonest.map_or(0, |(i, _)| i);
        *next = i + 1;
        i
    }
}
