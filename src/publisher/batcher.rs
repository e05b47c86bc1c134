//! The publisher's background task: takes accepted messages in order, forms batch
//! requests, and starts at most `max_concurrent_requests` of them at once.
//!
//! A batch is taken from the front of the queue of waiting messages when one of these
//! holds, checked in this order: it is complete (the next message would exceed
//! `max_messages` or `max_bytes`), the publisher is closing, a flush covers its first
//! message, or its first message has waited `max_delay`. Each message is numbered as it
//! arrives; a flush waits for every number below the count at the time it arrived. The
//! task ends once closing (a shutdown, or every handle dropped) and nothing is left.

use super::report::Counters;
use super::sender;
use super::shared::{Command, Item, Shared};
use crate::api::{batch_request_len, starts_new_batch};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Most commands taken from the channel per pass of the task's loop.
const RECEIVE_AT_ONCE: usize = 1024;

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
