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
use tokio::task::JoinSet;
use tracing::Instrument as _;

impl PullConsumer {
    /// Runs `handler` on every message, at most `max_in_flight` at once, each in its own
    /// task, until shut down through a [`ShutdownHandle`](super::ShutdownHandle) (returning its report) or
    /// stopped by a fatal error (returned after draining).
    ///
    /// The handler returns an [`Outcome`](super::Outcome), or a `Result` (see [`IntoOutcome`]): `Ok`
    /// acknowledges; an `Err`, like a panic, is logged once at WARN (message id,
    /// attempts, the error chain or panic message) and the message is retried after the
    /// handler backoff, which grows with its attempts. A handler cancelled by shutdown
    /// has its message released. No handler starts once shutdown has begun. Each handler
    /// runs in a `cfq.handle` span at INFO level carrying the message id and attempts.
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
        let mut tasks = JoinSet::new();
        let mut fatal = None;
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(delivery)) => {
                        tasks.spawn(run_handler(engine.clone(), handler.clone(), times.clone(), delivery));
                    }
                    Some(Err(err)) => fatal = Some(err),
                    None => break,
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_handler_end(done),
            }
        }
        let wait_handlers = async {
            while let Some(done) = tasks.join_next().await {
                log_handler_end(done);
            }
        };
        let (report, ()) = tokio::join!(engine.shutdown(engine.core.cfg.shutdown), wait_handlers);
        match fatal {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }
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
    let mut abort = engine.core.abort_signal();
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
    tokio::select! {
        result = work.instrument(span.clone()) => {
            times.record(result.as_ref().ok().copied(), started.elapsed());
            let decision = match result {
                Ok(outcome) => Decision::from(outcome),
                Err(failure) => span.in_scope(|| {
                    decision::failed(&engine.core.cfg.handler_backoff, &id, attempts, &failure)
                }),
            };
            drop(ticket.settle(decision));
        }
        // Cancelled by shutdown: dropping the ticket releases the message.
        _ = abort.wait_for(|a| *a) => {}
    }
}

struct HandlerGuard(Arc<Engine>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        self.0.leave_handler();
    }
}

fn log_handler_end(done: std::result::Result<(), tokio::task::JoinError>) {
    // Handler panics are caught and retried in `run_handler`; this is the runner's own.
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a message handler task panicked outside its handler (a bug)");
        }
    }
}
