//! The publisher's background task: takes accepted messages in order, forms batch
//! requests, and starts at most `max_concurrent_requests` of them at once.
//!
//! A batch is taken from the front of the queue of waiting messages when one of these
//! holds, checked in this order: it is complete (the next message would exceed
//! `max_messages` or `max_bytes`), the publisher is closing, a flush covers its first
//! message, or its first message has waited `max_delay`. Each message is numbered as it
//! arrives; a flush waits for every number below the count at the time it arrived. The
//! task ends once closing (a shutdown, or every handle dropped) and nothing is left.

use super::config::Config;
use super::flow::{Flow, Room};
use super::lane::Lane;
use super::report::{self, Counters, PublisherReport, PublisherStats};
use super::{Published, sender};
use crate::api::{QueueHandle, batch_request_len, starts_new_batch};
use crate::error::{Error, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How batch requests are sent: over HTTP, or to a fake in unit tests.
pub(crate) trait Pusher: Send + Sync + std::fmt::Debug + 'static {
    /// Sends one batch body to the queue at `lane`, once (no retries).
    fn push(&self, lane: usize, body: Bytes) -> BoxFuture<'static, Result<()>>;
}

/// The real [`Pusher`]: `POST …/messages/batch` through the client's one request path.
#[derive(Debug)]
pub(crate) struct HttpPusher {
    queues: Vec<QueueHandle>,
}

impl HttpPusher {
    pub(crate) fn new(queues: Vec<QueueHandle>) -> Self {
        HttpPusher { queues }
    }
}

impl Pusher for HttpPusher {
    fn push(&self, lane: usize, body: Bytes) -> BoxFuture<'static, Result<()>> {
        let queue = self.queues.get(lane).cloned();
        Box::pin(async move {
            let queue = queue.ok_or_else(|| Error::Config("no such publisher queue".into()))?;
            queue.push_encoded(body).await.map(|_| ())
        })
    }
}

/// Most commands taken from the channel per pass of the task's loop.
const RECEIVE_AT_ONCE: usize = 1024;

/// One accepted message.
#[derive(Debug)]
pub(crate) struct Item {
    /// Arrival number, given by the task.
    pub(crate) seq: u64,
    pub(crate) at: Instant,
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
            seq: 0,
            at: Instant::now(),
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

#[derive(Debug)]
pub(crate) enum Command {
    Publish(Item),
    /// Answer once everything accepted before it has its outcome.
    Flush(oneshot::Sender<()>),
    Close,
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
    fn pick_lane(&self, next: &mut usize) -> usize {
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

/// How many messages from the front of `pending` make the next batch, and whether that
/// batch is complete (no further message could join it).
fn next_batch(pending: &VecDeque<Item>, max_messages: usize, max_bytes: usize) -> (usize, bool) {
    let (mut len, mut bytes) = (0, 0);
    for item in pending {
        let size = item.body.len();
        if starts_new_batch(
            len,
            batch_request_len(len + 1, bytes + size),
            max_messages,
            max_bytes,
        ) {
            return (len, true);
        }
        len += 1;
        bytes += size;
    }
    (len, len >= max_messages)
}

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let cfg = shared.cfg.clone();
    let mut queue = Waiting::default();
    // The numbers each running batch request carries, by task.
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut carried: HashMap<tokio::task::Id, Vec<u64>> = HashMap::new();
    let mut waiters: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut closed = false;
    let mut next_lane = 0;

    loop {
        while inflight.len() < cfg.max_concurrent_requests {
            let Some(front) = queue.pending.front() else {
                break;
            };
            let (len, complete) = next_batch(&queue.pending, shared.batch_cap, cfg.max_bytes);
            let due = front.at.checked_add(cfg.max_delay).unwrap_or(front.at);
            let reason = if complete {
                "full"
            } else if closed {
                "shutdown"
            } else if waiters.iter().any(|(mark, _)| *mark > front.seq) {
                "flush"
            } else if Instant::now() >= due {
                "age"
            } else {
                break;
            };
            let batch: Vec<Item> = queue.pending.drain(..len.max(1)).collect();
            let seqs = batch.iter().map(|item| item.seq).collect();
            let lane = shared.pick_lane(&mut next_lane);
            let task = inflight.spawn(sender::send(shared.clone(), lane, batch, reason));
            carried.insert(task.id(), seqs);
        }

        // A flush is done once everything accepted before it has its outcome.
        let oldest = queue.unanswered.first().copied().unwrap_or(u64::MAX);
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= oldest {
                let (_, w) = waiters.swap_remove(i);
                let _ = w.send(());
            } else {
                i += 1;
            }
        }
        if closed && queue.pending.is_empty() && inflight.is_empty() {
            for (_, w) in waiters.drain(..) {
                let _ = w.send(());
            }
            break;
        }

        let can_send = inflight.len() < cfg.max_concurrent_requests;
        let wake = queue
            .pending
            .front()
            .filter(|_| can_send)
            .map(|f| f.at.checked_add(cfg.max_delay).unwrap_or(f.at));
        tokio::select! {
            cmd = rx.recv(), if !closed => {
                // Take whatever else is already queued too (a bounded amount), so that a
                // burst of publishes costs one pass of this loop, not one each.
                let mut cmd = cmd;
                let mut taken = 0;
                loop {
                    taken += 1;
                    match cmd {
                        Some(Command::Publish(item)) => queue.accept(item, &shared.counters),
                        Some(Command::Flush(w)) => waiters.push((queue.next_seq, w)),
                        Some(Command::Close) | None => {
                            closed = true;
                            shared.begin_close();
                            // Take what is still in the channel: accepted before the close.
                            rx.close();
                            while let Some(cmd) = rx.recv().await {
                                match cmd {
                                    Command::Publish(item) => queue.accept(item, &shared.counters),
                                    Command::Flush(w) => waiters.push((queue.next_seq, w)),
                                    Command::Close => {}
                                }
                            }
                            break;
                        }
                    }
                    if taken >= RECEIVE_AT_ONCE {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(next) => cmd = Some(next),
                        Err(_) => break,
                    }
                }
            },
            Some(done) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                // A sender that panicked dropped its items, whose callers were told the
                // outcome is unknown; either way its numbers are done.
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                for seq in carried.remove(&id).unwrap_or_default() {
                    queue.unanswered.remove(&seq);
                }
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
    let report = shared.report_now();
    tracing::debug!(?report, "publisher stopped");
    shared.report.send_replace(Some(report));
}

/// Accepted messages not yet sent, and the numbers of those without an outcome.
#[derive(Default)]
struct Waiting {
    pending: VecDeque<Item>,
    unanswered: BTreeSet<u64>,
    next_seq: u64,
}

impl Waiting {
    fn accept(&mut self, mut item: Item, counters: &Counters) {
        item.seq = self.next_seq;
        item.at = Instant::now();
        self.next_seq += 1;
        self.unanswered.insert(item.seq);
        Counters::add(&counters.accepted, 1);
        self.pending.push_back(item);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
