//! [`PullConsumer::run`]: each delivery's handler in its own task, at most
//! `max_in_flight` at once.

use super::decision::{self, Decision, Failure, IntoOutcome, panic_message};
use super::delivery::{Delivery, ReceivedMessage};
use super::engine::Engine;
use super::handle::PullConsumer;
use super::report::ShutdownReport;
use crate::error::Result;
use crate::metrics::HandlerTimes;
use futures::FutureExt as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument as _;

impl PullConsumer {
    /// Runs `handler` on every message, at most `max_in_flight` at once, until shut down
    /// through a [`ShutdownHandle`](super::ShutdownHandle) (returning its report) or
    /// stopped by a fatal error (returned after draining).
    ///
    /// The handler returns an [`Outcome`](super::Outcome), or a `Result` (see
    /// [`IntoOutcome`]): `Ok` acknowledges; an `Err`, like a panic, is logged once at
    /// WARN (message id, attempts, the error chain or panic message) and the message is
    /// retried after the handler backoff, which grows with its attempts. A handler
    /// cancelled by shutdown has its message released. No handler starts once shutdown
    /// has begun. Each handler runs in a `cfq.handle` span at INFO level carrying the
    /// message id and attempts.
    ///
    /// Handlers run concurrently on a few worker tasks, one per runtime worker thread,
    /// rather than a task each: spawning per message would cost more than many handlers
    /// do. Like any async code, a handler should not block its thread; move blocking or
    /// long CPU work to `tokio::task::spawn_blocking`.
    pub async fn run<H, F, O>(self, handler: H) -> Result<ShutdownReport>
    where
        H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
        F: Future<Output = O> + Send + 'static,
        O: IntoOutcome + Send + 'static,
    {
        let engine = self.engine.clone();
        let handler = Arc::new(handler);
        let times = Arc::new(HandlerTimes::new(&engine.core.queue_id));
        let mut stream = self.stream();
        let mut workers = JoinSet::new();
        let mut lanes = Vec::new();
        for _ in 0..worker_count() {
            let (tx, rx) = mpsc::unbounded_channel();
            lanes.push(tx);
            let (engine, handler, times) = (engine.clone(), handler.clone(), times.clone());
            workers.spawn(worker(rx, engine, handler, times));
        }
        let mut next = 0;
        let mut fatal = None;
        // Whole batches rather than one delivery at a time: the hand-out queue, the
        // ledger and the lanes are paid for once per pull.
        let max = engine.core.cfg.max_in_flight.max(1);
        while let Some(item) = futures::future::poll_fn(|cx| stream.poll_batch(cx, max)).await {
            match item {
                Ok(batch) => {
                    // The ledger's slots already bound how many run at once; the lanes
                    // only spread them over threads, in even shares.
                    let share = batch.len().div_ceil(lanes.len());
                    let mut batch = batch.into_iter();
                    loop {
                        let chunk: Vec<Delivery> = batch.by_ref().take(share).collect();
                        if chunk.is_empty() {
                            break;
                        }
                        // A closed lane (its worker gone) drops the chunk, which
                        // releases its messages.
                        let _ = lanes[next].send(chunk);
                        next = (next + 1) % lanes.len();
                    }
                }
                Err(err) => fatal = Some(err),
            }
        }
        drop(lanes);
        let wait_workers = async {
            while let Some(done) = workers.join_next().await {
                log_worker_end(done);
            }
        };
        let (report, ()) = tokio::join!(engine.shutdown(engine.core.cfg.shutdown), wait_workers);
        match fatal {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }
}

/// One worker per runtime thread (at least one, at most 16).
fn worker_count() -> usize {
    tokio::runtime::Handle::try_current()
        .map_or(1, |rt| rt.metrics().num_workers())
        .clamp(1, 16)
}

/// Runs the handlers of the deliveries it is given, all concurrently, until its lane
/// closes and they have finished.
async fn worker<H, F, O>(
    mut lane: mpsc::UnboundedReceiver<Vec<Delivery>>,
    engine: Arc<Engine>,
    handler: Arc<H>,
    times: Arc<HandlerTimes>,
) where
    H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: IntoOutcome + Send + 'static,
{
    use futures::StreamExt as _;
    let mut running = futures::stream::FuturesUnordered::new();
    // One watch per worker, not per handler: cancelling drops every running handler,
    // whose tickets then release their messages.
    let aborted = aborted(engine.core.abort_signal());
    tokio::pin!(aborted);
    loop {
        // Biased: no random draw per message; finishing handlers first frees slots.
        tokio::select! {
            biased;
            () = &mut aborted => {
                running.clear();
                // Whatever still arrives cannot start (shutdown closed the gate): it
                // is released as it is dropped.
                while let Some(chunk) = lane.recv().await {
                    drop(chunk);
                }
                return;
            }
            Some(()) = running.next(), if !running.is_empty() => {}
            chunk = lane.recv() => match chunk {
                Some(chunk) => {
                    for d in chunk {
                        running.push(run_handler(&engine, &*handler, &times, d));
                    }
                }
                None => break,
            },
        }
    }
    tokio::select! {
        () = &mut aborted => running.clear(),
        () = async { while running.next().await.is_some() {} } => {}
    }
}

/// Resolves once shutdown cancels the handlers (the watch's guard is not kept).
async fn aborted(mut abort: tokio::sync::watch::Receiver<bool>) {
    let _ = abort.wait_for(|a| *a).await.map(|_| ());
}

/// One handler run: borrows what every run shares from its worker, which outlives them,
/// so that starting a handler costs no reference counting.
///
/// The handler is called, and its future built, right here rather than at the first
/// poll: the returned future then holds the handler's future only, not also the
/// message and delivery it was built from (moving a large future costs per message).
fn run_handler<'a, H, F, O>(
    engine: &'a Engine,
    handler: &'a H,
    times: &'a HandlerTimes,
    delivery: Delivery,
) -> impl Future<Output = ()> + Send + 'a
where
    H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: IntoOutcome + Send + 'static,
{
    let (msg, ticket) = delivery.into_parts();
    // Without a ticket, or once shutdown has begun, nothing runs: the ticket is
    // dropped, which releases the message.
    let started = ticket.filter(|_| engine.enter_handler()).map(|ticket| {
        let running = HandlerGuard(engine);
        let (id, attempts) = (msg.shared_id(), msg.attempts());
        // At INFO, so that a handler's own events carry the message id and attempts.
        let span = tracing::info_span!("cfq.handle", message_id = %id, attempts);
        // A panic while building the future is a failure like an `Err`.
        let fut = span
            .in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| handler(msg))))
            .map_err(|p| Failure::Panic(panic_message(p.as_ref())));
        (running, id, attempts, span, fut, ticket)
    });
    async move {
        let Some((_running, id, attempts, span, fut, ticket)) = started else {
            return;
        };
        let started = tokio::time::Instant::now();
        // Cancelled by shutdown (the worker drops this future): dropping the ticket
        // releases the message.
        let result = match fut {
            Ok(fut) => match AssertUnwindSafe(fut)
                .catch_unwind()
                .instrument(span.clone())
                .await
            {
                Ok(out) => out.into_outcome().map_err(Failure::Error),
                Err(p) => Err(Failure::Panic(panic_message(p.as_ref()))),
            },
            Err(failure) => Err(failure),
        };
        times.record(result.as_ref().ok().copied(), started.elapsed());
        let decision = match result {
            Ok(outcome) => Decision::from(outcome),
            Err(failure) => span.in_scope(|| {
                decision::failed(&engine.core.cfg.handler_backoff, &id, attempts, &failure)
            }),
        };
        ticket.settle_detached(decision);
    }
}

struct HandlerGuard<'a>(&'a Engine);

impl Drop for HandlerGuard<'_> {
    fn drop(&mut self) {
        self.0.leave_handler();
    }
}

fn log_worker_end(done: std::result::Result<(), tokio::task::JoinError>) {
    // Handler panics are caught and retried in `run_handler`; this is the runner's own.
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a handler worker panicked outside its handlers (a bug)");
        }
    }
}
