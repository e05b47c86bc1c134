//! [`DeliveryStream`]: the consumer as a cancel-safe `Stream` of deliveries.

use super::config::ShutdownMode;
use super::delivery::Delivery;
use super::engine::Engine;
use super::handout::Next;
use super::report::{ConsumerState, Stats};
use super::shutdown::ShutdownHandle;
use crate::error::Result;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::watch;

/// The consumer as a [`Stream`] of [`Delivery`]s (see [`PullConsumer::stream`](super::PullConsumer::stream)).
#[derive(Debug)]
pub struct DeliveryStream {
    engine: Arc<Engine>,
    ended: bool,
    /// Whether this stream already started the engine (saves a lock per poll).
    started: bool,
}

impl DeliveryStream {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        DeliveryStream {
            engine,
            ended: false,
            started: false,
        }
    }

    /// A handle that can stop the consumer.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            engine: self.engine.clone(),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// Watches the consumer's state.
    pub fn state_changes(&self) -> watch::Receiver<ConsumerState> {
        self.engine.core.watch_state()
    }
}

impl DeliveryStream {
    fn start_once(&mut self) {
        if !self.started {
            self.engine.ensure_started();
            self.started = true;
        }
    }

    /// Up to `max` deliveries at once, in pull order: what [`PullConsumer::run`]
    /// takes, paying the hand-out queue's and the ledger's cost once per batch rather
    /// than once per message. `Ok` batches are never empty.
    ///
    /// [`PullConsumer::run`]: super::PullConsumer::run
    pub(crate) fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Option<Result<Vec<Delivery>>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        self.start_once();
        loop {
            let next = match self.engine.handout.poll_batch(cx, max) {
                Poll::Ready(next) => next,
                Poll::Pending => return Poll::Pending,
            };
            match next {
                Some(Next::Deliveries(batch)) => {
                    let now = tokio::time::Instant::now();
                    let batch: Vec<Delivery> = batch
                        .into_iter()
                        .filter_map(|d| self.engine.admissible(d, now))
                        .collect();
                    if batch.is_empty() {
                        continue;
                    }
                    self.engine.handed_out(&batch);
                    return Poll::Ready(Some(Ok(batch)));
                }
                Some(Next::Fatal(err)) => return Poll::Ready(Some(Err(err))),
                Some(Next::End) | None => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Stream for DeliveryStream {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        self.start_once();
        loop {
            let next = match self.engine.handout.poll_next(cx) {
                Poll::Ready(next) => next,
                Poll::Pending => return Poll::Pending,
            };
            match next {
                Some(Next::Deliveries(d)) => {
                    let Some(d) = self.engine.admissible(d, tokio::time::Instant::now()) else {
                        continue;
                    };
                    self.engine.handed_out([&d]);
                    return Poll::Ready(Some(Ok(d)));
                }
                Some(Next::Fatal(err)) => return Poll::Ready(Some(Err(err))),
                Some(Next::End) | None => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Drop for DeliveryStream {
    fn drop(&mut self) {
        if self.engine.core.is_shutting_down() || !self.engine.has_started() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                tracing::warn!(
                    "pull consumer stream dropped without shutdown; releasing its deliveries in the background"
                );
                let engine = self.engine.clone();
                rt.spawn(async move {
                    engine.shutdown(ShutdownMode::ReleaseNow).await;
                });
            }
            Err(_) => {
                tracing::warn!(
                    "pull consumer stream dropped outside a runtime; its leases will expire"
                );
            }
        }
    }
}
