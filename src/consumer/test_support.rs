//! Tests: building a consumer over the in-memory fake, with millisecond settings.

use super::fake::Fake;
use super::{AckBatching, Delivery, DeliveryStream, PullConsumer, PullConsumerBuilder};
use crate::{Backoff, Client};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;

/// A builder with quick backoffs; the queue handle is never used for requests.
pub(crate) fn builder() -> PullConsumerBuilder {
    let client = Client::builder()
        .api_token("t")
        .account_id("a")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap_or_else(|e| panic!("test client: {e}"));
    let quick = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    client
        .queue("q")
        .pull_consumer()
        .max_in_flight(10)
        .max_concurrent_pulls(1)
        .visibility_timeout(Duration::from_secs(30))
        .idle_backoff(quick)
        .error_backoff(quick)
        .ack_batching(
            AckBatching::default()
                .max_delay(Duration::from_millis(20))
                .backoff(quick),
        )
}

pub(crate) fn consumer(fake: &Fake, builder: PullConsumerBuilder) -> PullConsumer {
    builder
        .build_with(Arc::new(fake.clone()))
        .unwrap_or_else(|e| panic!("consumer: {e}"))
}

/// The next `n` deliveries; fails the test if the stream ends or errs first.
pub(crate) async fn take(stream: &mut DeliveryStream, n: usize) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match stream.next().await {
            Some(Ok(d)) => out.push(d),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
    out
}

/// Runs `f` with a (virtual) time limit, so a hang fails instead of stalling.
pub(crate) async fn within<F: Future>(limit: Duration, f: F) -> F::Output {
    match tokio::time::timeout(limit, f).await {
        Ok(out) => out,
        Err(_) => panic!("did not finish within {limit:?}"),
    }
}
