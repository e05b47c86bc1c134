//! What the publisher's parts share: an accepted message ([`Item`]), the commands the
//! task takes, and the state of one publisher ([`Shared`]).

use super::Published;
use super::config::Config;
use super::flow::{Flow, Room};
use super::lane::Lane;
use super::pusher::Pusher;
use super::report::{self, Counters, PublisherReport, PublisherStats};
use crate::error::Result;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

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
