//! A puller: reserves free slots, leases that many messages, hands them out.
//!
//! Cloudflare only short-polls, so a message waiting in a local buffer spends its lease
//! (and, when the lease runs out, one of its attempts). A puller therefore pulls only as
//! many messages as there are free slots, and only once at least half a batch of slots
//! is free, which keeps pulls large without leaving slots idle. It also waits while too
//! many settlements await the server (an ack outage), so that no message is leased that
//! could not be acknowledged.
//!
//! Backoff per state: an empty queue backs off exponentially to `idle_backoff`'s cap, and
//! only the first puller keeps polling an idle queue (the others wait for it to find
//! work), so an idle consumer makes about one request per cap interval; a 429 throttles
//! every puller until `Retry-After` (at most the error backoff's cap); a 409 (delivery
//! paused) is a quiet paused state polled every `paused_poll_interval`; other retryable
//! failures back off with jitter and are logged once per state change; anything else
//! ends the puller with the error, which ends the stream.
//!
//! A pull in flight is not cancelled by a drain (its response may carry leases).

use super::config::DecodeErrorPolicy;
use super::core::{Core, later};
use super::decision::{Decision, Settlement};
use super::delivery::{Delivery, ReceivedMessage, Ticket};
use super::handout::{Handout, Item};
use super::report::{ConsumerState, Counters};
use crate::error::Error;
use crate::models::{PullResult, RejectedMessage};
use crate::retry::random_unit;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument as _;

/// What the pullers of one consumer share.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// Every puller waits until then (a 429 with `Retry-After`).
    throttle_until: Mutex<Option<Instant>>,
    /// A pull found messages: pullers waiting on an idle queue wake up.
    work: Notify,
}

impl Pool {
    fn throttle(&self, until: Instant) {
        let mut t = self
            .throttle_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if t.is_none_or(|current| current < until) {
            *t = Some(until);
        }
    }

    fn throttled_until(&self) -> Option<Instant> {
        let mut t = self
            .throttle_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *t {
            Some(until) if until > Instant::now() => Some(until),
            _ => {
                *t = None;
                None
            }
        }
    }

    /// Waits until another puller finds work, `at_most` passes, or pulling stops.
    /// Returns false if it stopped.
    async fn wait_for_work(&self, core: &Core, at_most: Duration) -> bool {
        let mut stop = core.stop_signal();
        tokio::select! {
            () = self.work.notified() => !core.stopping(),
            () = tokio::time::sleep(at_most) => !core.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }
}

/// Pulls until pulling stops (`Ok`) or an error that retrying cannot fix (`Err`).
pub(crate) async fn run(
    core: Arc<Core>,
    handout: Arc<Handout>,
    pool: Arc<Pool>,
    index: usize,
) -> Result<(), Error> {
    let cfg = &core.cfg;
    let want = (cfg.batch_size as usize).min(cfg.max_in_flight).max(1);
    let min_pull = want.div_ceil(2);
    let (mut idle_step, mut error_step) = (0u32, 0u32);
    let mut stop = core.stop_signal();

    while !core.stopping() {
        #[cfg(test)]
        core.fail_point("puller");
        if let Some(until) = pool.throttled_until() {
            // Spread the pullers a little so they do not all retry at the same instant.
            let spread = until
                .saturating_duration_since(Instant::now())
                .mul_f64(0.2 * random_unit());
            if !core
                .sleep_until(until.checked_add(spread).unwrap_or(until))
                .await
            {
                break;
            }
            continue;
        }
        if !core.wait_for_settle_budget().await {
            break;
        }

        let n = tokio::select! {
            n = core.ledger.reserve(min_pull, want) => match n {
                Some(n) => n,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };

        let started = Instant::now();
        let span = tracing::debug_span!(
            "cfq.pull",
            puller = index,
            requested = n,
            returned = tracing::field::Empty,
            backlog = tracing::field::Empty,
        );
        let result = core
            .backend
            .pull(
                u32::try_from(n).unwrap_or(crate::limits::MAX_PULL_BATCH),
                cfg.visibility_timeout,
            )
            .instrument(span.clone())
            .await;
        Counters::add(&core.counters.pull_requests, 1);

        let batch = match result {
            Ok(batch) => batch,
            Err(err) => {
                core.ledger.unreserve(n);
                Counters::add(&core.counters.pull_errors, 1);
                if err.is_delivery_paused() {
                    if core.set_state(ConsumerState::Paused) != ConsumerState::Paused {
                        tracing::info!(poll_every = ?cfg.paused_poll_interval, "queue delivery is paused; waiting for it to resume");
                    }
                    if !core.sleep_until(later(cfg.paused_poll_interval)).await {
                        break;
                    }
                    continue;
                }
                // A success whose body does not decode may be a proxy's doing: back off
                // and try again rather than stop a long-running consumer.
                let transient = err.is_retryable() || matches!(err, Error::Decode(_));
                if !transient {
                    return Err(err);
                }
                error_step += 1;
                if err.is_rate_limited() {
                    // Honour Retry-After, but never beyond the error backoff's cap: the
                    // value comes from the server and may be absurd. Every puller shares
                    // the queue's budget, so every puller waits.
                    let wait = err
                        .retry_after()
                        .map(|hint| hint.min(cfg.error_backoff.max()))
                        .unwrap_or_else(|| cfg.error_backoff.delay_random(error_step));
                    pool.throttle(later(wait));
                    tracing::debug!(error = %err, ?wait, "rate limited");
                    continue;
                }
                if core.set_state(ConsumerState::BackingOff) != ConsumerState::BackingOff {
                    tracing::warn!(error = %err, "pulls are failing; backing off");
                } else {
                    tracing::debug!(error = %err, attempt = error_step, "pull failed again");
                }
                if !core
                    .sleep_until(later(cfg.error_backoff.delay_random(error_step)))
                    .await
                {
                    break;
                }
                continue;
            }
        };

        let returned = batch.messages.len() + batch.rejected.len();
        span.record("returned", returned);
        if let Some(backlog) = batch
            .message_backlog_count
            .or_else(|| batch.metrics().map(|m| m.backlog_count))
        {
            span.record("backlog", backlog);
            core.counters
                .backlog
                .store(backlog, std::sync::atomic::Ordering::Relaxed);
        }
        if returned == 0 {
            core.ledger.unreserve(n);
            Counters::add(&core.counters.empty_pulls, 1);
            core.set_state(ConsumerState::Idle);
            idle_step += 1;
            let keep_going = if index == 0 {
                core.sleep_until(later(cfg.idle_backoff.delay_random(idle_step)))
                    .await
            } else {
                // Only the first puller polls an idle queue; the others wait until it
                // finds work (or, in case it is stuck, for a few of its intervals).
                pool.wait_for_work(&core, cfg.idle_backoff.max().saturating_mul(4))
                    .await
            };
            if !keep_going {
                break;
            }
            continue;
        }

        if error_step > 0 || core.state() == ConsumerState::Paused {
            tracing::info!(failed_attempts = error_step, "pulls are succeeding again");
        }
        idle_step = 0;
        error_step = 0;
        core.set_state(ConsumerState::Running);
        pool.work.notify_waiters();

        // The lease runs from when the request left, which is never later than when the
        // server started it.
        let deadline = started
            .checked_add(cfg.visibility_timeout)
            .unwrap_or(started);
        intake(&core, &handout, batch, n, started, deadline);
    }
    Ok(())
}

/// Admits what a pull returned onto the `reserved` slots and hands it out.
///
/// * An entry that could not be decoded but has a lease id is a delivery like any other,
///   whose body is an error: the decode-error policy settles it.
/// * An entry without a readable lease id cannot be settled (it comes back after its
///   lease): it is counted as unreadable and as not settled, and logged once per pull.
/// * Entries beyond the reserved slots (a server that sent more than asked) are released
///   at once: holding them would exceed `max_in_flight`, and a lease that waits for a
///   slot only burns. They count as pulled and released.
fn intake(
    core: &Arc<Core>,
    handout: &Handout,
    batch: PullResult,
    reserved: usize,
    leased_at: Instant,
    deadline: Instant,
) {
    let PullResult {
        messages, rejected, ..
    } = batch;
    let counters = &core.counters;
    let (settleable, unreadable): (Vec<RejectedMessage>, Vec<RejectedMessage>) =
        rejected.into_iter().partition(|r| r.lease_id.is_some());
    if !unreadable.is_empty() {
        let n = unreadable.len() as u64;
        Counters::add(&counters.pulled, n);
        Counters::add(&counters.unreadable, n);
        Counters::add(&counters.failed_to_settle, n);
        let entries: Vec<usize> = unreadable.iter().map(|r| r.index).collect();
        tracing::error!(
            ?entries,
            reason = %unreadable[0].reason,
            "pulled entries without a readable lease id; they cannot be settled and will come back after their lease"
        );
    }

    let deliverable = messages.len() + settleable.len();
    if deliverable < reserved {
        core.ledger.unreserve(reserved - deliverable);
    }
    let mut slots = reserved;
    let mut extra = 0u64;
    let mut take_slot = |lease_id: &str| {
        if slots > 0 {
            slots -= 1;
            return true;
        }
        // Over what was asked for: straight back to the queue.
        extra += 1;
        Counters::add(&counters.pulled, 1);
        Counters::add(&counters.over_delivered, 1);
        core.enqueue(Settlement {
            lease_id: lease_id.to_owned(),
            decision: Decision::Release,
            deadline,
            reply: None,
        });
        false
    };
    let mut admitted = Vec::with_capacity(deliverable.min(reserved));
    for m in messages {
        if take_slot(&m.lease_id) {
            admitted.push(ReceivedMessage::from_pulled(m, deadline));
        }
    }
    for r in settleable {
        if take_slot(r.lease_id.as_deref().unwrap_or_default()) {
            let (msg, problem) = ReceivedMessage::from_rejected(r, deadline);
            admitted.push((msg, Some(problem)));
        }
    }
    admit(core, handout, admitted, leased_at, deadline);
    if extra > 0 {
        tracing::warn!(
            asked = reserved,
            extra,
            "the server returned more messages than asked for; releasing the extra ones"
        );
    }
}

/// Enters a pull's messages in the ledger (on slots the caller holds; one lock for the
/// lot) and hands them out together, except those whose body is undecodable and that the
/// decode-error policy settles on the spot.
fn admit(
    core: &Arc<Core>,
    handout: &Handout,
    messages: Vec<(ReceivedMessage, Option<Error>)>,
    leased_at: Instant,
    deadline: Instant,
) {
    if messages.is_empty() {
        return;
    }
    Counters::add(&core.counters.pulled, messages.len() as u64);
    // The message id matches new lease ids to messages after an extension.
    let keys = core.ledger.enter_many(
        messages
            .iter()
            .map(|(msg, _)| (msg.lease_id().to_owned(), msg.shared_id())),
        leased_at,
        deadline,
    );
    let stopping = core.stopping();
    let mut out = Vec::with_capacity(messages.len());
    for ((mut msg, problem), key) in messages.into_iter().zip(keys) {
        msg.follow_lease(core.clone(), key);
        let delivery = Delivery::new(msg, Ticket::new(core.clone(), key));
        if let Some(problem) = problem {
            Counters::add(&core.counters.decode_errors, 1);
            tracing::warn!(message_id = delivery.id(), error = %problem, policy = ?core.cfg.on_decode_error, "undecodable message");
            let decision = match core.cfg.on_decode_error {
                DecodeErrorPolicy::Deliver => None,
                DecodeErrorPolicy::Retry(delay) => Some(Decision::retry(Some(delay))),
                DecodeErrorPolicy::Release => Some(Decision::Release),
                DecodeErrorPolicy::Discard => Some(Decision::Ack),
            };
            if let Some(decision) = decision {
                delivery.decide_detached(decision);
                continue;
            }
        }
        if stopping {
            delivery.decide_detached(Decision::Release);
        } else {
            out.push(delivery);
        }
    }
    if !out.is_empty() {
        handout.push(Item::Deliveries(out));
    }
}
