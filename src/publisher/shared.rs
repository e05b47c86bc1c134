//! What the publisher's parts share: an accepted message ([`Item`]) and the batch it
//! travels in ([`Batch`]), the batch being filled ([`Open`]), the commands the task takes, and the state of one publisher
//! ([`Shared`]).

use super::Published;
use super::config::Config;
use super::flow::{Flow, Room};
use super::lane::Lane;
use super::outcome::Outcomes;
use super::pusher::Pusher;
use super::report::{self, Counters, PublisherReport, PublisherStats};
use crate::api::{BATCH_PREFIX, BATCH_SUFFIX, batch_request_len, encode_batch, starts_new_batch};
use crate::error::{Error, Result};
use crate::limits::MAX_BATCH_MESSAGES;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// One accepted message, as a batch carries it.
#[derive(Debug)]
pub(crate) struct Item {
    /// Its slot in the batch's [`Outcomes`].
    slot: usize,
    /// Where its encoding lies in the batch's body.
    start: usize,
    end: usize,
    /// Requests that carried it so far.
    pub(crate) attempts: u32,
    /// Whether a request carrying it had an unknown outcome.
    pub(crate) maybe_stored: bool,
}

/// Messages that make one batch request: consecutive arrival numbers from `first`. A
/// batch the server refuses as a whole is split, and the halves keep the body and the
/// outcomes of the batch they came from.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) first: u64,
    /// The request body of the batch as it was closed.
    body: Bytes,
    /// Whether `items` are all the messages in `body` (not a half of a split batch).
    whole: bool,
    pub(crate) items: Vec<Item>,
    outcomes: Arc<Outcomes>,
}

impl Batch {
    /// The arrival numbers it carries, `first..end`.
    pub(crate) fn seqs(&self) -> std::ops::Range<u64> {
        self.first..self.first + self.items.len() as u64
    }

    /// The request body for its messages.
    pub(crate) fn request_body(&self) -> Bytes {
        if self.whole {
            return self.body.clone();
        }
        encode_batch(
            self.items
                .iter()
                .map(|item| &self.body[item.start..item.end]),
        )
    }

    /// Splits off the messages from `at` on into a batch of their own.
    pub(crate) fn split_off(&mut self, at: usize) -> Batch {
        self.whole = false;
        Batch {
            first: self.first + at as u64,
            body: self.body.clone(),
            whole: false,
            items: self.items.split_off(at),
            outcomes: self.outcomes.clone(),
        }
    }

    /// Answers every message, each with the result `each` gives it.
    pub(crate) fn answer(mut self, mut each: impl FnMut(&Item) -> Result<Published>) {
        let items = std::mem::take(&mut self.items);
        self.outcomes
            .answer(items.iter().map(|item| (item.slot, each(item))));
    }
}

impl Drop for Batch {
    /// A batch dropped unanswered (its task torn down with it) tells its callers that
    /// the outcome is unknown: it may or may not have reached the server.
    fn drop(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let lost = Arc::new(Error::PublisherClosed);
        self.outcomes.answer(self.items.iter().map(|item| {
            (
                item.slot,
                Err(Error::MaybeStored {
                    source: lost.clone(),
                }),
            )
        }));
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
/// task (often on another thread) for nearly every message. Messages are copied into
/// the request body as they arrive, so closing a batch copies nothing.
#[derive(Debug)]
pub(crate) struct Open {
    /// `{"messages":[` and the messages so far, comma-separated.
    body: Vec<u8>,
    items: Vec<Item>,
    outcomes: Arc<Outcomes>,
    /// Encoded bytes of the messages (the request length without its frame).
    bytes: usize,
    /// When the first of `items` arrived.
    since: Instant,
    /// Arrival number of the next message accepted.
    next_seq: u64,
    /// Set when the task takes the last batch: nothing more is accepted.
    closed: bool,
    /// Messages per batch at most, for the buffers' sizes.
    max_messages: usize,
}

/// What [`Open::push`] did.
pub(crate) enum Pushed {
    /// The message joined the open batch, which it started if `opened`; its outcome
    /// will be in `outcomes` at `slot`.
    Added {
        outcomes: Arc<Outcomes>,
        slot: usize,
        opened: bool,
    },
    /// The publisher has shut down: the message was not accepted.
    Closed,
}

impl Open {
    fn new(max_messages: usize) -> Self {
        let max_messages = max_messages.clamp(1, MAX_BATCH_MESSAGES);
        Open {
            body: batch_prefix(0),
            items: Vec::with_capacity(max_messages),
            outcomes: Outcomes::new(max_messages),
            bytes: 0,
            since: Instant::now(),
            next_seq: 0,
            closed: false,
            max_messages,
        }
    }

    /// Adds an accepted message (`encoded` as the batch body carries it, holding
    /// `room`), first sending on the open batch if the message cannot join it, and
    /// after it if it is full. `send` gets each closed batch.
    pub(crate) fn push(
        &mut self,
        encoded: &[u8],
        room: Room,
        max_messages: usize,
        max_bytes: usize,
        mut send: impl FnMut(Batch),
    ) -> Pushed {
        if self.closed {
            return Pushed::Closed;
        }
        let size = encoded.len();
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
        let mut opened = self.items.is_empty();
        if opened {
            self.since = Instant::now();
        } else {
            self.body.push(b',');
        }
        let start = self.body.len();
        self.body.extend_from_slice(encoded);
        let slot = self.outcomes.add(room);
        self.items.push(Item {
            slot,
            start,
            end: self.body.len(),
            attempts: 0,
            maybe_stored: false,
        });
        self.bytes += size;
        self.next_seq += 1;
        let outcomes = self.outcomes.clone();
        if self.items.len() >= max_messages {
            if let Some(batch) = self.take() {
                send(batch);
            }
            opened = false;
        }
        Pushed::Added {
            outcomes,
            slot,
            opened,
        }
    }

    /// The open batch, if it holds anything.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        if self.items.is_empty() {
            return None;
        }
        let hint = self.body.len() + BATCH_SUFFIX.len();
        let mut body = std::mem::replace(&mut self.body, batch_prefix(hint));
        body.extend_from_slice(BATCH_SUFFIX);
        let items = std::mem::replace(&mut self.items, Vec::with_capacity(self.max_messages));
        let outcomes = std::mem::replace(&mut self.outcomes, Outcomes::new(self.max_messages));
        self.bytes = 0;
        Some(Batch {
            first: self.next_seq - items.len() as u64,
            body: Bytes::from(body),
            whole: true,
            items,
            outcomes,
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

/// A fresh batch body: the frame's opening, with room for `hint` bytes.
fn batch_prefix(hint: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(hint.max(BATCH_PREFIX.len() + BATCH_SUFFIX.len()));
    body.extend_from_slice(BATCH_PREFIX);
    body
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
            open: Mutex::new(Open::new(batch_cap)),
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
