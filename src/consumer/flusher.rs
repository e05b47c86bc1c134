//! The settlement flusher: one task that turns many acks, retries and releases into few
//! `/messages/ack` requests.
//!
//! A batch is sent on the first of: enough entries (`max_entries`), the oldest entry
//! waiting `max_delay`, a lease ending within the lease margin, an explicit flush (which
//! covers what was queued before it), or shutdown. Up to `max_concurrent_requests`
//! requests are in flight. A failed request is retried with the same entries (acks are
//! idempotent and Cloudflare accepts late acks) until it succeeds, fails for good, or
//! `give_up_after` passes; a batch the server refuses as a whole (400) is split in two
//! and each half sent alone, so one bad lease cannot sink the others. Every entry is
//! answered exactly once, and the engine is told, so it can bound unanswered work.

use super::core::{Core, later};
use super::decision::{Command, SettleOutcome, Settlement};
use super::report::Counters;
use crate::error::Error;
use crate::models::{AckEntry, AckRequest, RetryEntry};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

/// A queued settlement: its number (for flush marks), when it arrived, and itself.
type Entry = (u64, Instant, Settlement);

pub(crate) async fn run(shared: Arc<Core>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let cfg = shared.cfg.ack;
    let margin = shared.cfg.lease_margin;
    let failing = Arc::new(AtomicBool::new(false));
    let mut pending: VecDeque<Entry> = VecDeque::new();
    // Numbers of every settlement received and not yet answered.
    let mut unanswered: BTreeSet<u64> = BTreeSet::new();
    let mut next_id: u64 = 0;
    let mut inflight: JoinSet<Vec<u64>> = JoinSet::new();
    // Flush requests: answered once everything numbered below the mark is answered.
    let mut waiters: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut closed = false;

    loop {
        // Start as many requests as the triggers and the concurrency limit allow.
        while inflight.len() < cfg.max_concurrent_requests {
            let Some((front_id, front_at, _)) = pending.front() else {
                break;
            };
            let now = Instant::now();
            let reason = if pending.len() >= cfg.max_entries {
                "size"
            } else if closed {
                "shutdown"
            } else if waiters.iter().any(|(mark, _)| mark > front_id) {
                "flush"
            } else if now >= front_at.checked_add(cfg.max_delay).unwrap_or(now) {
                "age"
            } else if pending.iter().any(|(_, _, s)| s.deadline <= now + margin) {
                "deadline"
            } else {
                break;
            };
            let n = pending.len().min(cfg.max_entries);
            let batch: Vec<(u64, Settlement)> =
                pending.drain(..n).map(|(id, _, s)| (id, s)).collect();
            inflight.spawn(send(shared.clone(), batch, reason, failing.clone()));
        }

        // A flush is done once everything queued before it has been answered.
        let oldest_unanswered = unanswered.first().copied().unwrap_or(u64::MAX);
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= oldest_unanswered {
                let _ = waiters.swap_remove(i).1.send(());
            } else {
                i += 1;
            }
        }
        if closed && pending.is_empty() && inflight.is_empty() {
            for (_, w) in waiters.drain(..) {
                let _ = w.send(());
            }
            break;
        }

        let wake = next_wake(
            &pending,
            cfg.max_delay,
            margin,
            inflight.len() < cfg.max_concurrent_requests,
        );
        tokio::select! {
            cmd = rx.recv(), if !closed => match cmd {
                Some(Command::Settle(s)) => {
                    unanswered.insert(next_id);
                    pending.push_back((next_id, Instant::now(), s));
                    next_id += 1;
                }
                Some(Command::Flush(w)) => waiters.push((next_id, w)),
                close @ (Some(Command::Close { .. }) | None) => {
                    closed = true;
                    let abandon = matches!(close, Some(Command::Close { abandon: true }));
                    // Nothing can be queued after the close (the engine sends it under the
                    // outstanding lock); take what is still in the channel, to its end.
                    rx.close();
                    while let Some(cmd) = rx.recv().await {
                        match cmd {
                            Command::Settle(s) => {
                                unanswered.insert(next_id);
                                pending.push_back((next_id, Instant::now(), s));
                                next_id += 1;
                            }
                            Command::Flush(w) => waiters.push((next_id, w)),
                            Command::Close { .. } => {}
                        }
                    }
                    if abandon {
                        for (id, _, s) in pending.drain(..) {
                            unanswered.remove(&id);
                            abandon_one(&shared, s);
                        }
                    }
                }
            },
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok(ids) = done {
                    for id in ids {
                        unanswered.remove(&id);
                    }
                }
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
}

fn next_wake(
    pending: &VecDeque<Entry>,
    max_delay: std::time::Duration,
    margin: std::time::Duration,
    can_send: bool,
) -> Option<Instant> {
    if !can_send {
        return None;
    }
    let by_age = pending
        .front()
        .map(|(_, at, _)| at.checked_add(max_delay).unwrap_or(*at));
    let by_deadline = pending
        .iter()
        .map(|(_, _, s)| s.deadline.checked_sub(margin).unwrap_or(s.deadline))
        .min();
    match (by_age, by_deadline) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn abandon_one(shared: &Core, s: Settlement) {
    Counters::add(&shared.counters.abandoned, 1);
    shared.answered(1);
    if let Some(reply) = s.reply {
        let _ = reply.send(Err(Error::ConsumerClosed));
    }
}

/// Sends one batch, retrying retryable failures and splitting one the server refuses,
/// and answers every entry. Returns the numbers of the entries it answered.
async fn send(
    shared: Arc<Core>,
    batch: Vec<(u64, Settlement)>,
    reason: &'static str,
    failing: Arc<AtomicBool>,
) -> Vec<u64> {
    let ids = batch.iter().map(|(id, _)| *id).collect();
    let mut work = vec![batch.into_iter().map(|(_, s)| s).collect::<Vec<_>>()];
    while let Some(batch) = work.pop() {
        if let Some((left, right)) = send_one(&shared, batch, reason, &failing).await {
            // Refused as a whole: try each half alone.
            work.push(right);
            work.push(left);
        }
    }
    ids
}

type Halves = (Vec<Settlement>, Vec<Settlement>);

/// One request (with its retries). Returns the batch split in two when the server
/// refused it with a 400 and it has more than one entry.
async fn send_one(
    shared: &Core,
    batch: Vec<Settlement>,
    reason: &'static str,
    failing: &AtomicBool,
) -> Option<Halves> {
    let acks = batch
        .iter()
        .filter(|s| s.decision.retry_delay().is_none())
        .count();
    let span = tracing::debug_span!("cfq.flush", acks, retries = batch.len() - acks, reason);
    async move {
        let cfg = shared.cfg.ack;
        let give_up_at = later(cfg.give_up_after);
        let mut step = 0;
        loop {
            Counters::add(&shared.counters.ack_requests, 1);
            let mut request = AckRequest::default();
            for s in &batch {
                let lease_id = s.lease_id.clone();
                match s.decision.retry_delay() {
                    None => request.acks.push(AckEntry { lease_id }),
                    Some(delay) => request.retries.push(RetryEntry { lease_id, delay }),
                }
            }
            let err = match shared.backend.ack(request).await {
                Ok(result) => {
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("ack requests succeed again");
                    }
                    answer(shared, batch, acks, &result);
                    return None;
                }
                Err(err) => err,
            };
            Counters::add(&shared.counters.ack_request_failures, 1);
            if err.status() == Some(400) && batch.len() > 1 {
                tracing::warn!(error = %err, entries = batch.len(), "ack batch refused; splitting it to isolate the bad entry");
                let mut batch = batch;
                let right = batch.split_off(batch.len() / 2);
                return Some((batch, right));
            }
            // Abandoning means no more network calls: stop retrying.
            let abandoning = shared.is_abandoning();
            if err.is_retryable() && Instant::now() < give_up_at && !abandoning {
                if !failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "ack request failed; retrying with backoff");
                } else {
                    tracing::debug!(error = %err, "ack request failed again");
                }
                step += 1;
                let delay = err.retry_after().unwrap_or_else(|| cfg.backoff.delay_random(step));
                // Never past the give-up time, however long the server asks to wait.
                tokio::time::sleep(delay.min(give_up_at.saturating_duration_since(Instant::now()))).await;
                continue;
            }
            tracing::error!(error = %err, entries = batch.len(), "giving up on an ack request; these messages will be redelivered");
            let err = Arc::new(err);
            shared.answered(batch.len());
            for s in batch {
                let counter = if abandoning { &shared.counters.abandoned } else { &shared.counters.failed_to_settle };
                Counters::add(counter, 1);
                if let Some(reply) = s.reply {
                    let _ = reply.send(Err(Error::Settle(err.clone())));
                }
            }
            return None;
        }
    }
    .instrument(span)
    .await
}

/// Counts and answers a batch the server accepted, checking its counts.
fn answer(shared: &Core, batch: Vec<Settlement>, acks: usize, result: &crate::models::AckResult) {
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
        Counters::add(&shared.counters.settle_warnings, 1);
        tracing::warn!(warning = %w.message, "ack warning");
    }
    shared.answered(batch.len());
    for s in batch {
        let warning = warnings.get(s.lease_id.as_str()).map(|w| (*w).to_owned());
        if let Some(w) = &warning {
            Counters::add(&shared.counters.settle_warnings, 1);
            tracing::debug!(lease_id = %s.lease_id, warning = %w, "settlement warning");
        }
        Counters::add(s.decision.counter(&shared.counters), 1);
        if let Some(reply) = s.reply {
            let _ = reply.send(Ok(SettleOutcome { warning }));
        }
    }
}
