//! Helpers for the consumer tests (also used by tests/spans.rs, which needs only some).
#![allow(dead_code)]

use cloudflare_queues::QueueHandle;
use cloudflare_queues::emulator::Emulator;
use std::future::Future;
use std::time::{Duration, Instant};

/// A queue with an HTTP pull consumer (no retry delay).
pub async fn http_pull_queue(
    emu: &Emulator,
    name: &str,
    max_retries: u32,
    dlq: Option<&str>,
) -> QueueHandle {
    let client = emu.client();
    let queue = client.queues().create(name).await.unwrap();
    let q = client.queue(queue.queue_id.unwrap());
    let mut consumer = q.consumers().create_http_pull().max_retries(max_retries);
    if let Some(dlq) = dlq {
        consumer = consumer.dead_letter_queue(dlq);
    }
    consumer.await.unwrap();
    q
}

/// Consumer settings scaled down for tests: millisecond backoffs and flushes (the
/// crate exports them for users' tests too).
pub use cloudflare_queues::testing::fast_consumer;

/// Polls `cond` until it holds; fails the test after 20 s.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not reached within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs a test body with an overall time limit, so a hang fails instead of stalling CI.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("test took over 60 s");
}
