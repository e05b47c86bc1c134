//! How batch requests leave: the [`Pusher`] seam, over HTTP in production and a fake in
//! unit tests.

use crate::api::QueueHandle;
use crate::error::{Error, Result};
use bytes::Bytes;
use futures::future::BoxFuture;

/// How batch requests are sent: over HTTP, or to a fake in unit tests.
pub(crate) trait Pusher: Send + Sync + std::fmt::Debug + 'static {
    /// Sends one batch body to the queue at `lane`, once (no retries).
    fn push(&self, lane: usize, body: Bytes) -> BoxFuture<'static, Result<()>>;
}

/// The real [`Pusher`]: `POST …/messages/batch` through the client's one request path.
#[derive(Debug)]
pub(crate) struct HttpPusher {
    queues: Vec<QueueHandle>,
}

impl HttpPusher {
    pub(crate) fn new(queues: Vec<QueueHandle>) -> Self {
        HttpPusher { queues }
    }
}

impl Pusher for HttpPusher {
    fn push(&self, lane: usize, body: Bytes) -> BoxFuture<'static, Result<()>> {
        let queue = self.queues.get(lane).cloned();
        Box::pin(async move {
            let queue = queue.ok_or_else(|| Error::Config("no such publisher queue".into()))?;
            queue.push_encoded(body).await.map(|_| ())
        })
    }
}
