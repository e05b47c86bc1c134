//! [`PullConsumer`]: the consumer before it is used as a stream or given a handler.

use super::engine::Engine;
use super::report::{ConsumerState, Stats};
use super::shutdown::ShutdownHandle;
use super::stream::DeliveryStream;
use std::sync::Arc;
use tokio::sync::watch;

/// A pull consumer for one queue. Use it as a [`Stream`](futures::Stream) of deliveries
/// ([`PullConsumer::stream`]) or give it a handler ([`PullConsumer::run`]).
#[derive(Debug)]
pub struct PullConsumer {
    pub(crate) engine: Arc<Engine>,
}

impl PullConsumer {
    /// A handle that can stop the consumer from anywhere (e.g. a signal task).
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

    /// The deliveries, as a `Stream`. Pulling starts on the first poll.
    ///
    /// **Cancel safe:** `next()` only takes an already-received delivery from a channel,
    /// so dropping the future (in a `select!`, say) loses nothing; the delivery stays for
    /// the next call. The stream yields `Err` once, for a fatal error, and ends after it
    /// or once shutdown begins. Dropping the stream without a shutdown releases what it
    /// holds in the background.
    pub fn stream(self) -> DeliveryStream {
        DeliveryStream::new(self.engine)
    }
}
