//! The consumer's only contact with the server: pull, ack and extend, behind a small
//! trait.
//!
//! The loops (puller, flusher, extender) talk to a [`Backend`], never to the client directly. The
//! real one is a [`QueueHandle`]; unit tests give them an in-memory fake and drive them
//! under tokio's paused clock, so timing rules are tested without sockets or sleeping.
//!
//! Requests go out with [`RetryPolicy::none`]: the consumer owns its retry loops
//! (backoff by cause, a shared 429 throttle), so nothing is retried twice.

use crate::api::QueueHandle;
use crate::error::Result;
use crate::models::{AckRequest, AckResult, ExtendRequest, ExtendResult, PullResult};
use crate::retry::RetryPolicy;
use futures::future::BoxFuture;
use std::time::Duration;

/// Pull, ack and extend, as the consumer needs them.
pub(crate) trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Leases up to `batch_size` messages for `visibility_timeout`.
    fn pull(
        &self,
        batch_size: u32,
        visibility_timeout: Duration,
    ) -> BoxFuture<'static, Result<PullResult>>;

    /// Sends one ack request (acks and retries).
    fn ack(&self, request: AckRequest) -> BoxFuture<'static, Result<AckResult>>;

    /// Sends one lease extension request.
    fn extend(&self, request: ExtendRequest) -> BoxFuture<'static, Result<ExtendResult>>;
}

impl Backend for QueueHandle {
    fn pull(
        &self,
        batch_size: u32,
        visibility_timeout: Duration,
    ) -> BoxFuture<'static, Result<PullResult>> {
        let request = self
            .pull()
            .batch_size(batch_size)
            .visibility_timeout(visibility_timeout)
            .retry_policy(RetryPolicy::none());
        Box::pin(request.send())
    }

    fn ack(&self, request: AckRequest) -> BoxFuture<'static, Result<AckResult>> {
        Box::pin(
            self.ack_request(request)
                .retry_policy(RetryPolicy::none())
                .send(),
        )
    }
    fn extend(&self, request: ExtendRequest) -> BoxFuture<'static, Result<ExtendResult>> {
        Box::pin(self.extend_request(request).send())
    }
}
