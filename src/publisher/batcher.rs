//! The publisher's background task: takes batches in order and starts at most
//! `max_concurrent_requests` batch requests at once.
//!
//! `publish` fills the open batch ([`Open`](super::shared::Open)) and hands it over
//! when no further message can join it (by count or by bytes). The task takes the open
//! batch itself when its first message has waited `max_delay`, on a flush, and on
//! shutdown. Complete batches go first, then a due open batch. Every message gets an
//! arrival number; a batch carries consecutive numbers, and a flush waits until every
//! number below the count at the time it arrived has its outcome. The task ends once
//! closing (a shutdown, or every handle dropped) and nothing is left.

use super::sender;
use super::shared::{Batch, Command, Shared};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Most commands taken from the channel per pass of the task's loop.
const RECEIVE_AT_ONCE: usize = 1024;

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let cfg = shared.cfg.clone();
    // By first arrival number: a batch the task took itself may be newer than complete
    // batches still in the channel; it waits for them.
    let mut ready: BTreeMap<u64, (Batch, &'static str)> = BTreeMap::new();
    let mut next_first: u64 = 0;
    let mut inflight: JoinSet<()> = JoinSet::new();
    // The arrival numbers each running batch request carries, by task.
    let mut carried: HashMap<tokio::task::Id, Range<u64>> = HashMap::new();
    let mut answered = Answered::default();
    let mut waiters: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut closed = false;
    // When the open batch is due, once `publish` said it opened one.
    let mut due: Option<Instant> = None;
    let mut next_lane = 0;

    loop {
        if inflight.len() < cfg.max_concurrent_requests
            && ready.is_empty()
            && due.is_some_and(|at| Instant::now() >= at)
        {
            // The open batch may be a newer one than the deadline was set for.
            let mut open = shared.open();
            due = open.due(cfg.max_delay);
            if due.is_some_and(|at| Instant::now() >= at) {
                if let Some(b) = open.take() {
                    ready.insert(b.first, (b, "age"));
                }
                due = None;
            }
        }
        while inflight.len() < cfg.max_concurrent_requests {
            let Some(entry) = ready.first_entry().filter(|e| *e.key() == next_first) else {
                break;
            };
            let (batch, reason) = entry.remove();
            next_first = batch.seqs().end;
            let seqs = batch.seqs();
            let lane = shared.pick_lane(&mut next_lane);
            let task = inflight.spawn(sender::send(shared.clone(), lane, batch, reason));
            carried.insert(task.id(), seqs);
        }

        // A flush is done once everything accepted before it has its outcome.
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= answered.below {
                let (_, w) = waiters.swap_remove(i);
                let _ = w.send(());
            } else {
                i += 1;
            }
        }
        if closed && ready.is_empty() && inflight.is_empty() {
            for (_, w) in waiters.drain(..) {
                let _ = w.send(());
            }
            break;
        }

        let can_send = inflight.len() < cfg.max_concurrent_requests;
        let wake = due.filter(|_| can_send && ready.is_empty());
        tokio::select! {
            cmd = rx.recv(), if !closed => {
                // Take whatever else is already queued too (a bounded amount), so that a
                // burst of commands costs one pass of this loop, not one each.
                let mut cmd = cmd;
                let mut taken = 0;
                loop {
                    taken += 1;
                    match cmd {
                        Some(Command::Batch(batch)) => { ready.insert(batch.first, (batch, "full")); }
                        Some(Command::Opened) => due = shared.open().due(cfg.max_delay),
                        Some(Command::Flush(w)) => {
                            let mut open = shared.open();
                            waiters.push((open.next_seq(), w));
                            if let Some(b) = open.take() { ready.insert(b.first, (b, "flush")); }
                            due = None;
                        }
                        Some(Command::Close) | None => {
                            closed = true;
                            shared.begin_close();
                            if let Some(b) = shared.open().close() { ready.insert(b.first, (b, "shutdown")); }
                            due = None;
                            // Take what is still in the channel: sent before the close.
                            rx.close();
                            while let Some(cmd) = rx.recv().await {
                                match cmd {
                                    Command::Batch(batch) => { ready.insert(batch.first, (batch, "shutdown")); }
                                    Command::Flush(w) => waiters.push((u64::MAX, w)),
                                    Command::Opened | Command::Close => {}
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
                if let Some(seqs) = carried.remove(&id) {
                    answered.add(seqs);
                }
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
    let report = shared.report_now();
    tracing::debug!(?report, "publisher stopped");
    shared.report.send_replace(Some(report));
}

/// Which arrival numbers have their outcome: all below `below`, and the ranges beyond
/// it that finished early (batches finish out of order).
#[derive(Default)]
struct Answered {
    below: u64,
    /// Finished ranges above `below`, by start.
    ahead: BTreeMap<u64, u64>,
}

impl Answered {
    fn add(&mut self, seqs: Range<u64>) {
        if seqs.start != self.below {
            self.ahead.insert(seqs.start, seqs.end);
            return;
        }
        self.below = seqs.end;
        while let Some(end) = self.ahead.remove(&self.below) {
            self.below = end;
        }
    }
}

/// Closes the open batch when dropped; what it held is dropped with it, unsent, and its
/// callers learn that the task went away. The task's future owns one from the moment it
/// is spawned, so however the task ends (a panic, or its runtime dropping it, even
/// before its first poll) no caller waits on a message nobody will send.
pub(crate) struct CloseOpen(pub(crate) Arc<Shared>);

impl Drop for CloseOpen {
    fn drop(&mut self) {
        self.0.begin_close();
        let left = self.0.open().close();
        drop(left);
        let shared = &self.0;
        shared.report.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(shared.report_now());
                true
            } else {
                false
            }
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::Answered;

    #[test]
    fn answered_numbers_advance_only_when_contiguous() {
        let mut a = Answered::default();
        a.add(100..200);
        a.add(300..350);
        assert_eq!(a.below, 0, "0..100 is still out");
        a.add(0..100);
        assert_eq!(a.below, 200);
        a.add(200..300);
        assert_eq!(a.below, 350);
        assert!(a.ahead.is_empty());
    }
}
