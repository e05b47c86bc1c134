//! [`PullConsumer::run`]: each delivery's handler in its own task, at most
//! `max_in_flight` at once.

use super::decision::{Decision, IntoOutcome};
use super::delivery::{Delivery, ReceivedMessage};
use super::engine::Engine;
use super::handle::PullConsumer;
use super::report::ShutdownReport;
use crate::error::Result;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::Instrument as _;

impl PullConsumer {
    /// Runs `handler` on every message, at most `max_in_flight` at once, each in its own
    /// task, until shut down through a [`ShutdownHandle`](super::ShutdownHandle) (returning its report) or
    /// stopped by a fatal error (returned after draining).
    ///
    /// The handler returns an [`Outcome`](super::Outcome) (or a `Result<(), E>`: `Ok` acks, `Err` retries).
    /// A handler that panics, or is cancelled by shutdown, has its message released. No
    /// handler starts once shutdown has begun.
    pub async fn run<H, F, O>(self, handler: H) -> Result<ShutdownReport>
    where
        H: Fn(ReceivedMessage) -> F + Send + Sync + 'static,
        F: Future<Output = O> + Send + 'static,
        O: IntoOutcome + Send + 'static,
    {
        use futures::StreamExt as _;
        let engine = self.engine.clone();
        let handler = Arc::new(handler);
        let mut stream = self.stream();
        let mut tasks = JoinSet::new();
        let mut fatal = None;
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(delivery)) => {
                        tasks.spawn(run_handler(engine.clone(), handler.clone(), delivery));
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

async fn run_handler<H, F, O>(engine: Arc<Engine>, handler: Arc<H>, delivery: Delivery)
where
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
    let span = tracing::debug_span!(
        "cfq.handle",
        message_id = msg.id(),
        attempts = msg.attempts(),
        lease_remaining_ms = u64::try_from(msg.lease_remaining().as_millis()).unwrap_or(u64::MAX),
    );
    let work = handler(msg).instrument(span);
    tokio::select! {
        out = work => {
            drop(ticket.settle(Decision::from(out.into_outcome())));
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
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a message handler panicked; its message was released");
        }
    }
}
