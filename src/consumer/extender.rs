//! The extender: keeps the leases of handed-out, undecided deliveries alive.
//!
//! It sleeps until the next lease is due (less than `extension_margin` left), then runs
//! one **round**: every lease due within half a margin of now, in `ceil(n / 100)`
//! requests of up to 100 leases, at most [`CONCURRENT_REQUESTS`] at once. Leases due
//! close together (a pull's worth of deliveries) thus share requests. A lease is
//! extended until `max_lease` has passed since it was first leased; after that it is
//! left to run out. Buffered deliveries are not extended (the stream releases them when
//! too little lease is left), and neither are decided ones: they have left the ledger.
//!
//! **Failures.** A request that fails is retried with backoff (honouring
//! `Retry-After`) until the leases in it run out. A 400 splits a request in halves, as
//! the flusher does. Only when the server refuses the endpoint itself (404, 405, or a
//! 400 for a single lease) is extension turned off for the consumer's life, with one
//! warning; the consumer then goes on as if it had never been on.
//!
//! New lease ids are matched to their messages by [`match_extensions`]; the ledger takes
//! a new id only if the entry still holds the lease the request was sent for, and
//! settlements use whatever lease id the entry holds.

use super::core::Core;
use super::ledger::{Due, Extended};
use super::report::Counters;
use crate::error::Error;
use crate::models::{ExtendEntry, ExtendRequest, ExtensionOutcome, match_extensions};
use futures::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;
use tracing::Instrument as _;

/// Most extension requests of one round in flight at once.
pub(crate) const CONCURRENT_REQUESTS: usize = 8;

/// Most leases per extension request.
const PER_REQUEST: usize = crate::limits::MAX_EXTEND_BATCH;

/// Extends leases until told to stop. Returns only once stopped.
pub(crate) async fn run(core: Arc<Core>) -> Result<(), Error> {
    let Some(ext) = core.cfg.extension else {
        return Ok(());
    };
    let mut stop = core.extending_stopped();
    let mut failed_rounds = 0u32;
    loop {
        #[cfg(test)]
        core.fail_point("extender");
        let next = core.ledger.next_extension(ext.margin, ext.max_lease);
        tokio::select! {
            () = sleep_until(next) => {}
            () = core.ledger.extension_wakeup() => continue,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        let due = core
            .ledger
            .take_due(Instant::now(), ext.margin, ext.window(), ext.max_lease);
        if due.is_empty() {
            continue;
        }
        match round(&core, due).await {
            Round::Done => failed_rounds = 0,
            Round::Failed => {
                // The leases are due again at once: pace the next attempt.
                failed_rounds += 1;
                let wait = core.cfg.error_backoff.delay_random(failed_rounds);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
            Round::Refused(err) => {
                core.counters
                    .extension_active
                    .store(false, Ordering::Relaxed);
                tracing::warn!(error = %err, "the server refuses lease extension; leases will not be extended for the rest of this consumer's life");
                let _ = stop.wait_for(|s| *s).await;
                return Ok(());
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How a round ended.
enum Round {
    /// Every request got an answer.
    Done,
    /// Some leases could not be extended before they ran out, or a request failed in a
    /// way retrying now would not fix.
    Failed,
    /// The server refuses the endpoint itself.
    Refused(Error),
}

/// One round: the due leases in requests of up to 100, a bounded number at once.
async fn round(core: &Arc<Core>, due: Vec<Due>) -> Round {
    let chunks: Vec<Vec<Due>> = due.chunks(PER_REQUEST).map(<[Due]>::to_vec).collect();
    let span = tracing::debug_span!("cfq.extend", leases = due.len(), requests = chunks.len());
    let outcomes: Vec<Round> = futures::stream::iter(chunks)
        .map(|chunk| extend_chunk(core, chunk))
        .buffer_unordered(CONCURRENT_REQUESTS)
        .collect()
        .instrument(span)
        .await;
    let mut result = Round::Done;
    for outcome in outcomes {
        match outcome {
            Round::Refused(err) => return Round::Refused(err),
            Round::Failed => result = Round::Failed,
            Round::Done => {}
        }
    }
    result
}

/// One request's worth of leases: sent, retried until the leases run out, split on a
/// 400. Every lease in it is reported back to the ledger.
async fn extend_chunk(core: &Arc<Core>, chunk: Vec<Due>) -> Round {
    let vt = core.cfg.visibility_timeout;
    let mut work = vec![chunk];
    let mut result = Round::Done;
    while let Some(batch) = work.pop() {
        // Retrying past the earliest deadline in the batch could only extend leases that
        // already ran out.
        let give_up_at = batch
            .iter()
            .map(|d| d.deadline)
            .min()
            .unwrap_or_else(Instant::now);
        let mut step = 0u32;
        loop {
            Counters::add(&core.counters.extension_requests, 1);
            let request = ExtendRequest {
                extend: batch
                    .iter()
                    .map(|d| ExtendEntry {
                        lease_id: d.lease_id.clone(),
                    })
                    .collect(),
                visibility_timeout: Some(vt),
            };
            let sent_at = Instant::now();
            let err = match core.backend.extend(request).await {
                Ok(answer) => {
                    apply(core, &batch, &answer, sent_at + vt);
                    break;
                }
                Err(err) => err,
            };
            Counters::add(&core.counters.extension_failures, 1);
            let status = err.status();
            if matches!(status, Some(404 | 405)) || (status == Some(400) && batch.len() == 1) {
                release(core, &batch);
                return Round::Refused(err);
            }
            if status == Some(400) {
                tracing::warn!(error = %err, leases = batch.len(), "extension refused; splitting it to isolate the bad lease");
                let mut left = batch;
                let right = left.split_off(left.len() / 2);
                work.push(right);
                work.push(left);
                break;
            }
            let now = Instant::now();
            if !err.is_retryable() || now >= give_up_at {
                tracing::warn!(error = %err, leases = batch.len(), "could not extend leases; they may run out and be redelivered");
                release(core, &batch);
                result = Round::Failed;
                break;
            }
            step += 1;
            let wait = err
                .retry_after()
                .unwrap_or_else(|| core.cfg.ack.backoff.delay_random(step))
                .min(give_up_at.saturating_duration_since(now));
            tracing::debug!(error = %err, ?wait, "extension failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
    result
}

/// Records what the server did for each lease of a batch.
fn apply(core: &Core, batch: &[Due], answer: &crate::models::ExtendResult, deadline: Instant) {
    let sent: Vec<(String, Option<String>)> = batch
        .iter()
        .map(|d| {
            let id = (!d.message_id.is_empty()).then(|| d.message_id.to_string());
            (d.lease_id.clone(), id)
        })
        .collect();
    for (d, outcome) in batch.iter().zip(match_extensions(&sent, answer)) {
        let what = match outcome {
            ExtensionOutcome::Renewed { lease_id } => Extended::Until {
                deadline,
                lease_id: Some(lease_id),
            },
            ExtensionOutcome::ExtendedIdUnknown => Extended::Until {
                deadline,
                lease_id: None,
            },
            ExtensionOutcome::NotExtended { warning } => {
                tracing::debug!(message_id = %d.message_id, %warning, "lease not extended");
                Extended::Refused
            }
        };
        if matches!(what, Extended::Until { .. }) {
            Counters::add(&core.counters.leases_extended, 1);
        }
        core.ledger.extended(d.key, &d.lease_id, what);
    }
}

/// Hands a batch back to the ledger unextended.
fn release(core: &Core, batch: &[Due]) {
    for d in batch {
        core.ledger.extended(d.key, &d.lease_id, Extended::Failed);
    }
}
