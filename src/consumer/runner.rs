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
        use futures::StreamExt as _;
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
        while let Some(item) = stream.next().await {
            match item {
                Ok(delivery) => {
                    // The ledger's slots already bound how many run at once; the lanes
                    // only spread them over threads.
                    if let Err(mpsc::error::SendError(delivery)) = lanes[next].send(delivery) {
                        drop(delivery);
                    }
                    next = (next + 1) % lanes.len();
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
    mut lane: mpsc::UnboundedReceiver<Delivery>,
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
                while let Some(d) = lane.recv().await {
                    drop(d);
                }
                return;
            }
            Some(()) = running.next(), if !running.is_empty() => {}
            delivery = lane.recv() => match delivery {
                Some(d) => running.push(run_handler(engine.clone(), handler.clone(), times.clone(), d)),
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

async fn run_handler<H, F, O>(
    engine: Arc<Engine>,
    handler: Arc<H>,
    times: Arc<HandlerTimes>,
    delivery: Delivery,
) where
    H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: IntoOutcome + Send + 'static,
{
    let (msg, ticket) = delivery.into_parts();
    let Some(ticket) = ticket else { return };
    if !engine.enter_handler() {
        // Shutdown has begun: the ticket is dropped, which releases the message.
        return;
    }
    let _running = HandlerGuard(engine.clone());
    let (id, attempts) = (msg.id().to_owned(), msg.attempts());
    // At INFO, so that a handler's own events carry the message id and attempts.
    let span = tracing::info_span!("cfq.handle", message_id = %id, attempts);
    // A panic, whether building the future or running it, is a failure like an `Err`.
    let work = async move {
        let fut = std::panic::catch_unwind(AssertUnwindSafe(|| handler(msg)))
            .map_err(|p| Failure::Panic(panic_message(p.as_ref())))?;
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(out) => out.into_outcome().map_err(Failure::Error),
            Err(p) => Err(Failure::Panic(panic_message(p.as_ref()))),
        }
    };
    let started = tokio::time::Instant::now();
    // Cancelled by shutdown (the worker drops this future): dropping the ticket releases
    // the message.
    let result = work.instrument(span.clone()).await;
    times.record(result.as_ref().ok().copied(), started.elapsed());
    let decision = match result {
        Ok(outcome) => Decision::from(outcome),
        Err(failure) => span.in_scope(|| {
            decision::failed(&engine.core.cfg.handler_backoff, &id, attempts, &failure)
        }),
    };
    ticket.settle_detached(decision);
}

struct HandlerGuard(Arc<Engine>);

impl Drop for HandlerGuard {
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
