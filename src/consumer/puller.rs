//! A puller: reserves free slots, leases that many messages, hands them out.
//!
//! Cloudflare only short-polls and cannot extend a lease, so a message waiting in a local
//! buffer spends its lease (and, when the lease runs out, one of its attempts). A puller
//! therefore pulls only as many messages as there are free slots, and only once at least
//! half a batch of slots is free, which keeps pulls large without leaving slots idle. It
//! also waits while too many settlements await the server (an ack outage), so that no
//! message is leased that could not be acknowledged.
//!
//! Backoff per state: an empty queue backs off exponentially to `idle_backoff`'s cap, and
//! only the first puller keeps polling an idle queue (the others wait for it to find
//! work), so an idle consumer makes about one request per cap interval; a 429 throttles
//! every puller until `Retry-After` (at most the error backoff's cap); a 409 (delivery
//! paused) is a quiet paused state polled every `paused_poll_interval`; other retryable
//! failures back off with jitter and are logged once per state change; anything else ends
//! the stream with the error.
//!
//! A pull in flight is never cancelled (its response may carry leases); shutdown waits
//! for it, except in abandon mode.

use super::ConsumerState;
use super::engine::{Counters, Item, Shared, later};
use crate::retry::{RetryPolicy, random_unit};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

pub(crate) async fn run(shared: Arc<Shared>, index: usize) {
    let cfg = &shared.cfg;
    let want = (cfg.batch_size as usize).min(cfg.max_in_flight).max(1);
    let min_pull = want.div_ceil(2);
    let (mut idle_step, mut error_step) = (0u32, 0u32);
    let mut stop = shared.stop_signal();

    while !shared.stopping() {
        if let Some(until) = shared.throttled_until() {
            // Spread the pullers a little so they do not all retry at the same instant.
            let spread = until
                .saturating_duration_since(Instant::now())
                .mul_f64(0.2 * random_unit());
            if !shared
                .sleep_until(until.checked_add(spread).unwrap_or(until))
                .await
            {
                break;
            }
            continue;
        }
        if !shared.wait_for_settle_budget().await {
            break;
        }

        let permit = tokio::select! {
            p = shared.slots.acquire_many(u32::try_from(min_pull).unwrap_or(u32::MAX)) => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        permit.forget();
        let mut n = min_pull;
        while n < want {
            match shared.slots.try_acquire() {
                Ok(p) => {
                    p.forget();
                    n += 1;
                }
                Err(_) => break,
            }
        }

        let started = Instant::now();
        let span = tracing::debug_span!(
            "cfq.pull",
            puller = index,
            requested = n,
            returned = tracing::field::Empty,
            backlog = tracing::field::Empty,
        );
        let result = shared
            .queue
            .pull()
            .batch_size(u32::try_from(n).unwrap_or(crate::limits::MAX_PULL_BATCH))
            .visibility_timeout(cfg.visibility_timeout)
            .retry_policy(RetryPolicy::none())
            .send()
            .instrument(span.clone())
            .await;
        Counters::add(&shared.counters.pull_requests, 1);

        let batch = match result {
            Ok(batch) => batch,
            Err(err) => {
                shared.slots.add_permits(n);
                Counters::add(&shared.counters.pull_errors, 1);
                if err.is_delivery_paused() {
                    if shared.set_state(ConsumerState::Paused) != ConsumerState::Paused {
                        tracing::info!(poll_every = ?cfg.paused_poll_interval, "queue delivery is paused; waiting for it to resume");
                    }
                    if !shared.sleep_until(later(cfg.paused_poll_interval)).await {
                        break;
                    }
                    continue;
                }
                // A success whose body does not decode may be a proxy's doing: back off
                // and try again rather than stop a long-running consumer.
                let transient = err.is_retryable() || matches!(err, crate::Error::Decode(_));
                if !transient {
                    shared.fail(err);
                    break;
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
                    shared.throttle(later(wait));
                    tracing::debug!(error = %err, ?wait, "rate limited");
                    continue;
                }
                if shared.set_state(ConsumerState::BackingOff) != ConsumerState::BackingOff {
                    tracing::warn!(error = %err, "pulls are failing; backing off");
                } else {
                    tracing::debug!(error = %err, attempt = error_step, "pull failed again");
                }
                if !shared
                    .sleep_until(later(cfg.error_backoff.delay_random(error_step)))
                    .await
                {
                    break;
                }
                continue;
            }
        };

        let returned = batch.messages.len();
        span.record("returned", returned);
        if let Some(backlog) = batch
            .message_backlog_count
            .or_else(|| batch.metrics().map(|m| m.backlog_count))
        {
            span.record("backlog", backlog);
            shared
                .counters
                .backlog
                .store(backlog, std::sync::atomic::Ordering::Relaxed);
        }
        if returned < n {
            shared.slots.add_permits(n - returned);
        } else if returned > n {
            // More than asked for: they are leased, so they must be handled too.
            shared.owe_slots(returned - n);
        }

        if returned == 0 {
            Counters::add(&shared.counters.empty_pulls, 1);
            shared.set_state(ConsumerState::Idle);
            idle_step += 1;
            let keep_going = if index == 0 {
                shared
                    .sleep_until(later(cfg.idle_backoff.delay_random(idle_step)))
                    .await
            } else {
                // Only the first puller polls an idle queue; the others wait until it
                // finds work (or, in case it is stuck, for a few of its intervals).
                shared
                    .wait_for_work(cfg.idle_backoff.max().saturating_mul(4))
                    .await
            };
            if !keep_going {
                break;
            }
            continue;
        }

        if error_step > 0 || shared.state() == ConsumerState::Paused {
            tracing::info!(failed_attempts = error_step, "pulls are succeeding again");
        }
        idle_step = 0;
        error_step = 0;
        shared.set_state(ConsumerState::Running);
        shared.work_found();

        // The lease runs from when the request left, which is never later than when the
        // server started it.
        let deadline = started
            .checked_add(cfg.visibility_timeout)
            .unwrap_or(started);
        for m in batch.messages {
            if let Some(delivery) = shared.admit(m, deadline) {
                if shared.stopping() {
                    drop(delivery.release());
                } else {
                    shared.dispatch(Item::Delivery(delivery));
                }
            }
        }
    }
}
