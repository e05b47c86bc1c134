//! [`DeliveryStream`]: the consumer as a cancel-safe `Stream` of deliveries.

use super::config::ShutdownMode;
use super::decision::Decision;
use super::delivery::Delivery;
use super::engine::Engine;
use super::handout::Item;
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

impl Stream for DeliveryStream {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if !self.started {
            self.engine.ensure_started();
            self.started = true;
        }
        loop {
            let item = match self.engine.handout.poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => return Poll::Pending,
            };
            match item {
                Some(Item::Delivery(d)) if self.engine.core.is_shutting_down() => {
                    // Shutdown has begun: nothing more is handed out.
                    drop(d.release());
                }
                Some(Item::Delivery(d)) => {
                    let core = &self.engine.core;
                    // Not yet extended: the deadline it arrived with is current.
                    let remaining = d
                        .first_deadline()
                        .saturating_duration_since(tokio::time::Instant::now());
                    if remaining < core.cfg.lease_margin {
                        tracing::debug!(
                            message_id = d.id(),
                            "lease nearly spent before dispatch; releasing"
                        );
                        drop(d.decide(Decision::ExpiredBeforeDispatch));
                        continue;
                    }
                    if let (Some(ext), Some(key)) = (core.cfg.extension, d.key()) {
                        core.ledger.hand_out(key, ext.margin);
                    }
                    return Poll::Ready(Some(Ok(d)));
                }
                Some(Item::Fatal(err)) => return Poll::Ready(Some(Err(err))),
                Some(Item::End) | None => {
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
