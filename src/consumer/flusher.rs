//! The settlement flusher: one task that turns many acks, retries and releases into few
//! `/messages/ack` requests.
//!
//! A batch is sent on the first of: enough entries (`max_entries`), the oldest entry
//! waiting `max_delay`, a lease about to end, an explicit flush, or shutdown. Up to
//! `max_concurrent_requests` requests are in flight. A failed request is retried with the
//! same entries (acks are idempotent and Cloudflare accepts late acks) until it succeeds,
//! fails for good, or `give_up_after` passes. Every entry is answered exactly once.

use super::delivery::SettleOutcome;
use super::engine::{Action, Command, Counters, Settlement, Shared};
use crate::error::Error;
use crate::retry::RetryPolicy;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// Flush early when a lease ends within this margin: a retry sent after its lease expired
/// is refused (the message was already redelivered, spending an attempt).
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let cfg = shared.cfg.ack;
    let failing = Arc::new(AtomicBool::new(false));
    let mut pending: VecDeque<(Instant, Settlement)> = VecDeque::new();
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut closed = false;
    let mut abandon = false;

    loop {
        // Start as many requests as the triggers and the concurrency limit allow.
        while !pending.is_empty() && inflight.len() < cfg.max_concurrent_requests {
            let now = Instant::now();
            let reason = if pending.len() >= cfg.max_entries {
                "size"
            } else if closed {
                "shutdown"
            } else if !waiters.is_empty() {
                "flush"
            } else if pending
                .front()
                .is_some_and(|(at, _)| now >= *at + cfg.max_delay)
            {
                "age"
            } else if pending
                .iter()
                .any(|(_, s)| s.deadline <= now + DEADLINE_MARGIN)
            {
                "deadline"
            } else {
                break;
            };
            let n = pending.len().min(cfg.max_entries);
            let batch: Vec<Settlement> = pending.drain(..n).map(|(_, s)| s).collect();
            if abandon {
                abandon_all(&shared, batch);
                continue;
            }
            inflight.spawn(send(shared.clone(), batch, reason, failing.clone()));
        }

        if pending.is_empty() && inflight.is_empty() {
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            if closed {
                break;
            }
        }

        let wake = next_wake(
            &pending,
            cfg.max_delay,
            inflight.len() < cfg.max_concurrent_requests,
        );
        tokio::select! {
            cmd = rx.recv(), if !closed => match cmd {
                Some(Command::Settle(s)) => pending.push_back((Instant::now(), s)),
                Some(Command::Flush(w)) => waiters.push(w),
                close @ (Some(Command::Close { .. }) | None) => {
                    closed = true;
                    abandon = matches!(close, Some(Command::Close { abandon: true }));
                    // No settlement can be enqueued after this; take what already was.
                    rx.close();
                    while let Ok(cmd) = rx.try_recv() {
                        match cmd {
                            Command::Settle(s) => pending.push_back((Instant::now(), s)),
                            Command::Flush(w) => waiters.push(w),
                            Command::Close { .. } => {}
                        }
                    }
                    if abandon {
                        abandon_all(&shared, pending.drain(..).map(|(_, s)| s).collect());
                    }
                }
            },
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
}

fn next_wake(
    pending: &VecDeque<(Instant, Settlement)>,
    max_delay: Duration,
    can_send: bool,
) -> Option<Instant> {
    if !can_send {
        return None;
    }
    let by_age = pending.front().map(|(at, _)| *at + max_delay);
    let by_deadline = pending
        .iter()
        .map(|(_, s)| {
            s.deadline
                .checked_sub(DEADLINE_MARGIN)
                .unwrap_or(s.deadline)
        })
        .min();
    match (by_age, by_deadline) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn abandon_all(shared: &Shared, batch: Vec<Settlement>) {
    for s in batch {
        Counters::add(&shared.counters.abandoned, 1);
        if let Some(reply) = s.reply {
            let _ = reply.send(Err(Error::ConsumerClosed));
        }
    }
}

/// Sends one batch, retrying retryable failures, and answers every entry.
async fn send(
    shared: Arc<Shared>,
    batch: Vec<Settlement>,
    reason: &'static str,
    failing: Arc<AtomicBool>,
) {
    let acks = batch.iter().filter(|s| s.action == Action::Ack).count();
    let span = tracing::debug_span!("cfq.flush", acks, retries = batch.len() - acks, reason);
    async move {
        let cfg = shared.cfg.ack;
        let give_up_at = Instant::now() + cfg.give_up_after;
        let mut step = 0;
        loop {
            Counters::add(&shared.counters.ack_requests, 1);
            let mut req = shared.queue.ack().retry_policy(RetryPolicy::none());
            for s in &batch {
                req = match s.action {
                    Action::Ack => req.ack(s.lease_id.clone()),
                    Action::Retry(delay) => req.retry(s.lease_id.clone(), delay),
                };
            }
            let err = match req.send().await {
                Ok(result) => {
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("ack requests succeed again");
                    }
                    answer(&shared, batch, acks, &result);
                    return;
                }
                Err(err) => err,
            };
            Counters::add(&shared.counters.ack_request_failures, 1);
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
                tokio::time::sleep(delay.min(give_up_at.saturating_duration_since(Instant::now()))).await;
                continue;
            }
            tracing::error!(error = %err, entries = batch.len(), "giving up on an ack request; these messages will be redelivered");
            let err = Arc::new(err);
            for s in batch {
                let counter = if abandoning { &shared.counters.abandoned } else { &shared.counters.failed_to_settle };
                Counters::add(counter, 1);
                if let Some(reply) = s.reply {
                    let _ = reply.send(Err(Error::Settle(err.clone())));
                }
            }
            return;
        }
    }
    .instrument(span)
    .await;
}

/// Counts and answers a batch the server accepted, checking its counts.
fn answer(shared: &Shared, batch: Vec<Settlement>, acks: usize, result: &crate::models::AckResult) {
    let retries = batch.len() - acks;
    let warnings: HashMap<&str, &str> = result
        .warnings
        .iter()
        .filter_map(|w| w.lease_id.as_deref().map(|l| (l, w.message.as_str())))
        .collect();
    let unmatched = result
        .warnings
        .iter()
        .filter(|w| w.lease_id.is_none())
        .count();
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
    if unmatched > 0 {
        Counters::add(&shared.counters.settle_warnings, unmatched as u64);
        for w in result.warnings.iter().filter(|w| w.lease_id.is_none()) {
            tracing::warn!(warning = %w.message, "ack warning");
        }
    }
    for s in batch {
        let warning = warnings.get(s.lease_id.as_str()).map(|w| (*w).to_owned());
        if let Some(w) = &warning {
            Counters::add(&shared.counters.settle_warnings, 1);
            tracing::debug!(lease_id = %s.lease_id, warning = %w, "settlement warning");
        }
        shared.counters.count(s.kind);
        if let Some(reply) = s.reply {
            let _ = reply.send(Ok(SettleOutcome { warning }));
        }
    }
}
