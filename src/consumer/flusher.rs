//! The settlement flusher: one task that turns many acks, retries and releases into few
//! `/messages/ack` requests.
//!
//! A batch is sent on the first of: enough entries (`max_entries`), the oldest entry
//! waiting `max_delay`, a lease ending within the lease margin, an explicit flush (which
//! covers what was queued before it), or shutdown. Up to `max_concurrent_requests`
//! requests are in flight. A failed request is retried with the same entries (acks are
//! idempotent and Cloudflare accepts late acks) until it succeeds, fails for good, or
//! `give_up_after` passes; a batch the server refuses as a whole (400) is split in two
//! and each half sent alone, so one bad lease cannot sink the others.
//!
//! **One owner.** The flusher alone holds the settlements the server has not answered;
//! request tasks get copies of the lease ids and report back. So a request that panics
//! or is cancelled (shutdown's deadline) cannot lose an answer: its entries are answered
//! as not confirmed. If the flusher itself ends early, dropping its state answers what
//! it still held the same way. Every settlement is counted exactly once.
//!
//! **Closing** sends what is pending and waits for the answers until the close deadline;
//! then requests still in flight are cancelled and their entries counted under
//! `failed_to_settle` ("not confirmed": a cancelled ack may still have been applied; one
//! that was not comes back after its lease). An abandoning close sends nothing more.

use super::core::Core;
use super::decision::{Command, SettleOutcome, Settlement};
use super::report::Counters;
use crate::error::Error;
use crate::models::{AckEntry, AckRequest, AckResult, RetryEntry};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

/// Most commands taken from the channel per turn of the loop.
const RECEIVE_AT_ONCE: usize = 256;

/// How a request task reports on one entry.
#[derive(Debug)]
enum Answer {
    /// Applied; with the server's warning about this lease, if any.
    Confirmed(Option<String>),
    /// Not confirmed: the request failed for good.
    Failed(Arc<Error>),
}

/// One entry as a request task sees it: its number, lease id and wire form.
type Wire = (u64, String, Option<Option<Duration>>);

pub(crate) async fn run(core: Arc<Core>, rx: mpsc::UnboundedReceiver<Command>) {
    Flusher {
        core,
        rx,
        table: Table::default(),
        pending: VecDeque::new(),
        deadlines: BinaryHeap::new(),
        inflight: JoinSet::new(),
        inflight_ids: HashMap::new(),
        waiters: Vec::new(),
        next_id: 0,
        close: None,
        failing: Arc::new(AtomicBool::new(false)),
    }
    .run()
    .await;
}

struct Close {
    abandon: bool,
    deadline: Instant,
}

struct Flusher {
    core: Arc<Core>,
    rx: mpsc::UnboundedReceiver<Command>,
    /// Every settlement received and not yet answered, by number.
    table: Table,
    /// Numbers waiting to be sent, with when they arrived and when their lease ends.
    pending: VecDeque<(u64, Instant, Instant)>,
    /// Lease deadlines of what entered `pending`, earliest first. Entries already sent
    /// are dropped lazily: the numbers in `pending` are contiguous, so anything numbered
    /// below its front has left it. No wake-up scans `pending`.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    inflight: JoinSet<Vec<(u64, Answer)>>,
    inflight_ids: HashMap<Id, Vec<u64>>,
    /// Flush requests: answered once everything numbered below the mark is answered.
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    next_id: u64,
    close: Option<Close>,
    /// Whether ack requests are failing (for logging once per change).
    failing: Arc<AtomicBool>,
}

impl Flusher {
    async fn run(&mut self) {
        loop {
            #[cfg(test)]
            self.core.fail_point("flusher");
            self.start_requests();
            self.answer_flushes();
            if self.close.is_some() && self.pending.is_empty() && self.inflight.is_empty() {
                break;
            }
            let wake = self.next_wake();
            let close_deadline = self.close.as_ref().map(|c| c.deadline);
            // Biased, in priority order: the close deadline, answers (they free the
            // unconfirmed budget), new commands, timers. It also spares a random draw
            // on every turn.
            tokio::select! {
                biased;
                () = sleep_until(close_deadline), if close_deadline.is_some() => {
                    self.cut_off();
                    break;
                }
                Some(done) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    match done {
                        Ok((id, answers)) => {
                            self.inflight_ids.remove(&id);
                            for (n, answer) in answers {
                                self.answer(n, answer);
                            }
                        }
                        // A request task panicked (a bug) or was cancelled: its entries
                        // were not confirmed.
                        Err(e) => {
                            if e.is_panic() {
                                tracing::error!("an ack request task panicked; its entries count as not settled");
                            }
                            for n in self.inflight_ids.remove(&e.id()).unwrap_or_default() {
                                self.not_confirmed(n, Error::ConsumerClosed);
                            }
                        }
                    }
                }
                cmd = self.rx.recv(), if self.close.is_none() => {
                    self.command(cmd);
                    // Take what else is waiting too, so the bookkeeping above runs once
                    // per burst of settlements rather than once per settlement.
                    for _ in 0..RECEIVE_AT_ONCE {
                        if self.close.is_some() {
                            break;
                        }
                        match self.rx.try_recv() {
                            Ok(cmd) => self.command(Some(cmd)),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep_until(wake), if wake.is_some() => {}
            }
        }
        for (_, w) in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }

    fn command(&mut self, cmd: Option<Command>) {
        match cmd {
            Some(Command::Settle(s)) => self.receive(s),
            Some(Command::Flush(w)) => self.waiters.push((self.next_id, w)),
            Some(Command::Close { abandon, deadline }) => self.begin_close(abandon, deadline),
            // Every sender is gone: nothing more can come.
            None => self.begin_close(false, Instant::now() + Duration::from_secs(1)),
        }
    }

    fn receive(&mut self, s: Settlement) {
        let n = self.next_id;
        self.next_id += 1;
        self.pending.push_back((n, Instant::now(), s.deadline));
        self.deadlines.push(Reverse((s.deadline, n)));
        self.table.push(n, s);
    }

    fn begin_close(&mut self, abandon: bool, deadline: Instant) {
        self.close = Some(Close { abandon, deadline });
        // Nothing can be queued after the close (it is sent under the ledger's lock);
        // take what is still in the channel, to its end.
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Settle(s) => self.receive(s),
                Command::Flush(w) => self.waiters.push((self.next_id, w)),
                Command::Close { .. } => {}
            }
        }
        if abandon {
            // No request may start from now on; what was sent is cut off.
            self.deadlines.clear();
            for (n, _, _) in std::mem::take(&mut self.pending) {
                self.abandoned(n);
            }
            self.cut_off();
        }
    }

    /// The close deadline passed (or abandon): cancel what is in flight and count what
    /// was never confirmed.
    fn cut_off(&mut self) {
        if !self.inflight.is_empty() || !self.pending.is_empty() {
            tracing::warn!(
                in_flight = self.inflight_ids.values().map(Vec::len).sum::<usize>(),
                unsent = self.pending.len(),
                "shutdown deadline: cancelling ack requests; their messages count as not settled"
            );
        }
        self.inflight.abort_all();
        self.inflight.detach_all();
        let ids: Vec<u64> = self.inflight_ids.drain().flat_map(|(_, ids)| ids).collect();
        for n in ids {
            self.not_confirmed(n, Error::ConsumerClosed);
        }
        self.deadlines.clear();
        for (n, _, _) in std::mem::take(&mut self.pending) {
            self.not_confirmed(n, Error::ConsumerClosed);
        }
    }

    /// Starts as many requests as the triggers and the concurrency limit allow.
    fn start_requests(&mut self) {
        let cfg = self.core.cfg.ack;
        let margin = self.core.cfg.lease_margin;
        if self.close.as_ref().is_some_and(|c| c.abandon) || self.core.is_abandoning() {
            return;
        }
        let (max_entries, max_requests) = (
            cfg.max_entries as usize,
            cfg.max_concurrent_requests as usize,
        );
        while self.inflight.len() < max_requests {
            let Some(&(front, arrived, _)) = self.pending.front() else {
                break;
            };
            let now = Instant::now();
            let reason = if self.pending.len() >= max_entries {
                "size"
            } else if self.close.is_some() {
                "shutdown"
            } else if self.waiters.iter().any(|(mark, _)| *mark > front) {
                "flush"
            } else if now >= arrived.checked_add(cfg.max_delay).unwrap_or(now) {
                "age"
            } else if self.earliest().is_some_and(|d| d <= now + margin) {
                "deadline"
            } else {
                break;
            };
            let take = self.pending.len().min(max_entries);
            let batch: Vec<Wire> = self
                .pending
                .drain(..take)
                .filter_map(|(n, _, _)| {
                    // The request carries the lease id from here on; the settlement
                    // keeps its decision and reply.
                    let s = self.table.get_mut(n)?;
                    Some((n, std::mem::take(&mut s.lease_id), s.decision.retry_delay()))
                })
                .collect();
            let ids = batch.iter().map(|(n, _, _)| *n).collect();
            let task =
                self.inflight
                    .spawn(send(self.core.clone(), batch, reason, self.failing.clone()));
            self.inflight_ids.insert(task.id(), ids);
        }
    }

    fn answer(&mut self, n: u64, answer: Answer) {
        let Some(s) = self.table.remove(n) else {
            return;
        };
        let counters = &self.core.counters;
        self.core.answered(1);
        match answer {
            Answer::Confirmed(warning) => {
                if let Some(w) = &warning {
                    Counters::add(&counters.settle_warnings, 1);
                    tracing::debug!(warning = %w, "settlement warning");
                }
                Counters::add(s.decision.counter(counters), 1);
                s.answer(Ok(SettleOutcome { warning }));
            }
            Answer::Failed(err) => {
                Counters::add(&counters.failed_to_settle, 1);
                s.answer(Err(Error::Settle(err)));
            }
        }
    }

    fn not_confirmed(&mut self, n: u64, err: Error) {
        self.answer(n, Answer::Failed(Arc::new(err)));
    }

    fn abandoned(&mut self, n: u64) {
        if let Some(s) = self.table.remove(n) {
            self.core.answered(1);
            Counters::add(&self.core.counters.abandoned, 1);
            s.closed();
        }
    }

    /// A flush is done once everything queued before it has been answered.
    fn answer_flushes(&mut self) {
        let oldest = self.table.oldest().unwrap_or(u64::MAX);
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].0 <= oldest {
                let _ = self.waiters.swap_remove(i).1.send(());
            } else {
                i += 1;
            }
        }
    }

    /// The earliest lease deadline among pending settlements.
    fn earliest(&mut self) -> Option<Instant> {
        let front = self.pending.front()?.0;
        while let Some(Reverse((deadline, n))) = self.deadlines.peek().copied() {
            if n >= front {
                return Some(deadline);
            }
            self.deadlines.pop();
        }
        None
    }

    fn next_wake(&mut self) -> Option<Instant> {
        if self.inflight.len() >= self.core.cfg.ack.max_concurrent_requests as usize {
            return None;
        }
        let (max_delay, margin) = (self.core.cfg.ack.max_delay, self.core.cfg.lease_margin);
        let by_age = self
            .pending
            .front()
            .map(|(_, at, _)| at.checked_add(max_delay).unwrap_or(*at));
        let by_deadline = self
            .earliest()
            .map(|deadline| deadline.checked_sub(margin).unwrap_or(deadline));
        match (by_age, by_deadline) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        }
    }
}

impl Drop for Flusher {
    /// The flusher ended early (it panicked, or its task was cancelled): whatever it
    /// still held, or was still in its channel, was not settled. Counted once, here.
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            if let Command::Settle(s) = cmd {
                self.receive(s);
            }
        }
        self.inflight.abort_all();
        let abandoning = self.core.is_abandoning();
        for s in std::mem::take(&mut self.table).into_unanswered() {
            self.core.answered(1);
            let counter = if abandoning {
                &self.core.counters.abandoned
            } else {
                &self.core.counters.failed_to_settle
            };
            Counters::add(counter, 1);
            s.closed();
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends one batch, retrying retryable failures and splitting one the server refuses,
/// and answers every entry.
async fn send(
    core: Arc<Core>,
    batch: Vec<Wire>,
    reason: &'static str,
    failing: Arc<AtomicBool>,
) -> Vec<(u64, Answer)> {
    let mut answers = Vec::with_capacity(batch.len());
    let mut work = vec![batch];
    while let Some(batch) = work.pop() {
        if let Some((left, right)) = send_one(&core, batch, reason, &failing, &mut answers).await {
            // Refused as a whole: try each half alone.
            work.push(right);
            work.push(left);
        }
    }
    answers
}

type Halves = (Vec<Wire>, Vec<Wire>);

/// One request (with its retries). Returns the batch split in two when the server
/// refused it with a 400 and it has more than one entry.
async fn send_one(
    core: &Core,
    batch: Vec<Wire>,
    reason: &'static str,
    failing: &AtomicBool,
    answers: &mut Vec<(u64, Answer)>,
) -> Option<Halves> {
    let acks = batch.iter().filter(|(_, _, wire)| wire.is_none()).count();
    let span = tracing::debug_span!("cfq.flush", acks, retries = batch.len() - acks, reason);
    async move {
        let cfg = core.cfg.ack;
        let give_up_at = Instant::now()
            .checked_add(cfg.give_up_after)
            .unwrap_or_else(Instant::now);
        let mut step = 0;
        loop {
            if core.is_abandoning() {
                // Abandoning means no more network calls.
                let err = Arc::new(Error::ConsumerClosed);
                answers.extend(batch.iter().map(|(n, _, _)| (*n, Answer::Failed(err.clone()))));
                return None;
            }
            Counters::add(&core.counters.ack_requests, 1);
            let mut request = AckRequest::default();
            for (_, lease_id, wire) in &batch {
                let lease_id = lease_id.clone();
                match wire {
                    None => request.acks.push(AckEntry { lease_id }),
                    Some(delay) => request.retries.push(RetryEntry {
                        lease_id,
                        delay: *delay,
                    }),
                }
            }
            let err = match core.backend.ack(request).await {
                Ok(result) => {
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("ack requests succeed again");
                    }
                    confirmed(core, &batch, acks, &result, answers);
                    return None;
                }
                Err(err) => err,
            };
            Counters::add(&core.counters.ack_request_failures, 1);
            if err.status() == Some(400) && batch.len() > 1 {
                tracing::warn!(error = %err, entries = batch.len(), "ack batch refused; splitting it to isolate the bad entry");
                let mut batch = batch;
                let right = batch.split_off(batch.len() / 2);
                return Some((batch, right));
            }
            let now = Instant::now();
            if err.is_retryable() && now < give_up_at {
                if !failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "ack request failed; retrying with backoff");
                } else {
                    tracing::debug!(error = %err, "ack request failed again");
                }
                step += 1;
                let delay = err.retry_after().unwrap_or_else(|| cfg.backoff.delay_random(step));
                // Never past the give-up time, however long the server asks to wait (a
                // shutdown deadline cancels this task outright).
                tokio::time::sleep(delay.min(give_up_at.saturating_duration_since(now))).await;
                continue;
            }
            tracing::error!(error = %err, entries = batch.len(), "giving up on an ack request; these messages will be redelivered");
            let err = Arc::new(err);
            answers.extend(batch.iter().map(|(n, _, _)| (*n, Answer::Failed(err.clone()))));
            return None;
        }
    }
    .instrument(span)
    .await
}

/// Answers a batch the server accepted, checking its counts and matching warnings.
fn confirmed(
    core: &Core,
    batch: &[Wire],
    acks: usize,
    result: &AckResult,
    answers: &mut Vec<(u64, Answer)>,
) {
    let retries = batch.len() - acks;
    let warnings: HashMap<&str, &str> = result
        .warnings
        .iter()
        .filter_map(|w| w.lease_id.as_deref().map(|l| (l, w.message.as_str())))
        .collect();
    if let (Some(a), Some(r)) = (result.ack_count, result.retry_count) {
        if a < acks as u64 || r < retries as u64 {
            tracing::warn!(
                sent_acks = acks,
                sent_retries = retries,
                ack_count = a,
                retry_count = r,
                warnings = result.warnings.len(),
                "the server applied fewer settlements than were sent"
            );
        }
    }
    for w in result.warnings.iter().filter(|w| w.lease_id.is_none()) {
        Counters::add(&core.counters.settle_warnings, 1);
        tracing::warn!(warning = %w.message, "ack warning");
    }
    answers.extend(batch.iter().map(|(n, lease_id, _)| {
        let warning = warnings.get(lease_id.as_str()).map(|w| (*w).to_owned());
        (*n, Answer::Confirmed(warning))
    }));
}

/// The settlements the flusher holds, by number. Numbers are handed out in order and
/// answered in roughly that order, so a deque indexed from the oldest unanswered number
/// does in O(1) what a map would do in O(log n).
#[derive(Default)]
struct Table {
    /// The number of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<Settlement>>,
}

impl Table {
    fn push(&mut self, n: u64, s: Settlement) {
        if self.slots.is_empty() {
            self.base = n;
        }
        // Numbers arrive in order, one each.
        debug_assert_eq!(n, self.base + self.slots.len() as u64);
        self.slots.push_back(Some(s));
    }

    fn slot(&mut self, n: u64) -> Option<&mut Option<Settlement>> {
        let i = usize::try_from(n.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(i)
    }

    fn get_mut(&mut self, n: u64) -> Option<&mut Settlement> {
        self.slot(n)?.as_mut()
    }

    fn remove(&mut self, n: u64) -> Option<Settlement> {
        let s = self.slot(n)?.take();
        // Answered ones at the front leave, so `oldest` stays O(1).
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        s
    }

    /// The number of the oldest settlement not yet answered.
    fn oldest(&self) -> Option<u64> {
        (!self.slots.is_empty()).then_some(self.base)
    }

    fn into_unanswered(self) -> impl Iterator<Item = Settlement> {
        self.slots.into_iter().flatten()
    }
}
