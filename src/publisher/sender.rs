//! One batch request and what follows from its answer.
//!
//! The body is encoded once and the same bytes are sent on every attempt, with
//! `RetryPolicy::none()`: this loop is the only one that sends a batch again.
//!
//! | Answer | Then |
//! |---|---|
//! | 2xx | every message is stored |
//! | 429 (10250 or no code) | the queue's throttle pauses every batch for it until `Retry-After` (or backoff); sent again |
//! | 5xx, 408, 10201, 15000, connection refused | backoff, sent again (the server did not store it) |
//! | unknown outcome (timeout, connection lost after sending, unreadable 2xx) | at least once: backoff, sent again, results marked possibly duplicated; at most once: fail with `MaybeStored` |
//! | 400 / 413 with several messages | split in two, each half sent alone, to isolate a message the server refuses |
//! | anything else (10251-10253, 401, 404, a lone refused message) | fail each message with the error |
//!
//! Resending stops after `give_up_after`; the messages then fail with the last error
//! (`MaybeStored` for any that an earlier attempt may have stored).

use super::Published;
use super::lane::Lane;
use super::report::Counters;
use super::shared::{Batch, Shared};
use crate::error::Error;
use crate::retry::{Class, classify};
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument as _;

/// Sends `batch` to the queue at `lane`, splitting it if the server refuses it as a
/// whole, until every message has its outcome.
pub(crate) async fn send(shared: Arc<Shared>, lane: usize, batch: Batch, reason: &'static str) {
    let mut work = vec![batch];
    while let Some(batch) = work.pop() {
        if let Some((left, right)) = send_one(&shared, lane, batch, reason).await {
            work.push(right);
            work.push(left);
        }
    }
}

/// What an error says about the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// 429 that may pass later: pause the queue, send again.
    Throttled,
    /// Not stored, may pass later: back off, send again.
    Retry,
    /// Maybe stored.
    Ambiguous,
    /// Refused as a whole for its content: split it.
    Refused,
    /// Will not pass: fail it.
    Fatal,
}

fn judge(err: &Error) -> Verdict {
    if matches!(err, Error::Decode(_)) {
        // A success whose body cannot be read: the server may well have stored it.
        return Verdict::Ambiguous;
    }
    match classify(err) {
        Class::Answered if err.is_rate_limited() => Verdict::Throttled,
        Class::Answered | Class::NotSent => Verdict::Retry,
        Class::MaybeApplied => Verdict::Ambiguous,
        Class::Fatal if matches!(err.status(), Some(400 | 413)) => Verdict::Refused,
        Class::Fatal => Verdict::Fatal,
    }
}

type Halves = (Batch, Batch);

/// One batch until it is stored, fails, or is split (returned in two halves).
async fn send_one(
    shared: &Shared,
    index: usize,
    mut batch: Batch,
    reason: &'static str,
) -> Option<Halves> {
    let Some(lane) = shared.lanes.get(index) else {
        fail(
            shared,
            batch,
            Error::Config("no such publisher queue".into()),
        );
        return None;
    };
    let cfg = &shared.cfg;
    let n = batch.items.len();
    let body = batch.request_body();
    let give_up_at = Instant::now()
        .checked_add(cfg.give_up_after)
        .unwrap_or_else(Instant::now);
    let mut step = 0;
    loop {
        lane.wait_open().await;
        if let Some(rate) = &lane.rate {
            rate.take(n).await;
            // A pause that began while waiting for tokens holds this batch too.
            lane.wait_open().await;
        }
        for item in &mut batch.items {
            item.attempts += 1;
        }
        let attempt = batch
            .items
            .iter()
            .map(|item| item.attempts)
            .max()
            .unwrap_or(1);
        Counters::add(&shared.counters.requests, 1);
        Counters::add(&shared.counters.messages_sent, n);
        let span = tracing::debug_span!(
            "cfq.publish",
            queue = %lane.id,
            messages = n,
            bytes = body.len(),
            attempt,
            reason,
            outcome = tracing::field::Empty,
        );
        let result = shared
            .pusher
            .push(index, body.clone())
            .instrument(span.clone())
            .await;
        let err = match result {
            Ok(()) => {
                span.record("outcome", "stored");
                succeed(shared, lane, batch);
                return None;
            }
            Err(err) => err,
        };
        if err.is_rate_limited() {
            Counters::add(&shared.counters.rate_limited, 1);
        }
        let verdict = judge(&err);
        let now = Instant::now();
        let out_of_time = now >= give_up_at;
        match verdict {
            Verdict::Refused if n > 1 => {
                span.record("outcome", "split");
                tracing::warn!(parent: &span, error = %err, messages = n, "batch refused; sending each half alone to isolate the message at fault");
                let right = batch.split_off(n / 2);
                return Some((batch, right));
            }
            Verdict::Refused | Verdict::Fatal => {
                span.record("outcome", "failed");
                tracing::warn!(parent: &span, error = %err, messages = n, "batch failed; its messages get the error");
                fail(shared, batch, err);
                return None;
            }
            Verdict::Ambiguous => {
                Counters::add(&shared.counters.ambiguous, 1);
                for item in &mut batch.items {
                    item.maybe_stored = true;
                }
                if cfg.at_most_once || out_of_time {
                    span.record("outcome", "maybe stored");
                    tracing::warn!(parent: &span, error = %err, messages = n, "batch outcome unknown; not sent again");
                    fail(shared, batch, err);
                    return None;
                }
                span.record("outcome", "unknown; resending");
                tracing::debug!(parent: &span, error = %err, "batch outcome unknown; sending it again (at least once)");
                Counters::add(&shared.counters.resent_after_ambiguous, n);
            }
            _ if out_of_time => {
                span.record("outcome", "gave up");
                tracing::warn!(parent: &span, error = %err, messages = n, "batch still failing after give_up_after; its messages get the error");
                fail(shared, batch, err);
                return None;
            }
            Verdict::Throttled => {
                span.record("outcome", "throttled");
                step += 1;
                let wait = err
                    .retry_after()
                    .unwrap_or_else(|| cfg.retry_backoff.delay_random(step))
                    .min(cfg.max_retry_after);
                tracing::debug!(parent: &span, error = %err, ?wait, "queue throttled; every batch for it waits");
                lane.throttle(now.checked_add(wait).unwrap_or(now));
                continue;
            }
            Verdict::Retry => {
                span.record("outcome", "retrying");
                tracing::debug!(parent: &span, error = %err, "batch not stored; sending it again");
            }
        }
        step += 1;
        let delay = cfg
            .retry_backoff
            .delay_random(step)
            .min(give_up_at.saturating_duration_since(Instant::now()));
        tokio::time::sleep(delay).await;
    }
}

/// Every message of the batch is stored.
fn succeed(shared: &Shared, lane: &Lane, batch: Batch) {
    Counters::add(&shared.counters.published, batch.items.len());
    let duplicated = batch.items.iter().filter(|item| item.maybe_stored).count();
    Counters::add(&shared.counters.possibly_duplicated, duplicated);
    batch.answer(|item| {
        Ok(Published {
            queue_id: lane.id.clone(),
            attempts: item.attempts,
            possibly_duplicated: item.maybe_stored,
        })
    });
}

/// Every message of the batch fails with `err`: as [`Error::MaybeStored`] when a request
/// carrying it may have stored it, else as the error itself (an API error is copied for
/// each; anything else is shared through [`Error::Publish`]).
fn fail(shared: &Shared, batch: Batch, err: Error) {
    Counters::add(&shared.counters.failed, batch.items.len());
    let err = Arc::new(err);
    batch.answer(|item| {
        Err(if item.maybe_stored {
            Error::MaybeStored {
                source: err.clone(),
            }
        } else {
            match &*err {
                Error::Api(api) => Error::Api(api.clone()),
                _ => Error::Publish(err.clone()),
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let api = |status, code| {
            Error::Api(Box::new(crate::error::ApiError {
                status,
                errors: vec![crate::error::ErrorDetail::new(
                    crate::ErrorCode::from_u32(code),
                    "x",
                )],
                messages: Vec::new(),
                ray_id: None,
                retry_after: None,
                raw_body: None,
                request: crate::error::RequestLabel::new(
                    crate::ops::PUSH_BATCH.method.clone(),
                    crate::ops::PUSH_BATCH.path,
                ),
                attempts: 1,
            }))
        };
        assert_eq!(judge(&api(429, 10250)), Verdict::Throttled);
        assert_eq!(judge(&api(429, 0)), Verdict::Throttled);
        for code in [10251, 10252, 10253] {
            assert_eq!(judge(&api(429, code)), Verdict::Fatal, "{code}");
        }
        assert_eq!(judge(&api(500, 15000)), Verdict::Retry);
        assert_eq!(judge(&api(502, 0)), Verdict::Retry);
        assert_eq!(judge(&api(400, 10205)), Verdict::Refused);
        assert_eq!(judge(&api(404, 10104)), Verdict::Fatal);
        assert_eq!(judge(&api(401, 10106)), Verdict::Fatal);
    }
}
