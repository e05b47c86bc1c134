//! Helpers for the Publisher and redrive tests.
#![allow(dead_code)]

use cloudflare_queues::emulator::{Emulator, MessageInfo};
use cloudflare_queues::publisher::PublisherBuilder;
use cloudflare_queues::{Backoff, QueueHandle};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// A new queue, with an HTTP pull consumer when `pull` is set.
pub async fn queue(emu: &Emulator, name: &str, pull: bool) -> QueueHandle {
    let client = emu.client();
    let created = client.queues().create(name).await.unwrap();
    let q = client.queue(created.queue_id.unwrap());
    if pull {
        q.consumers().create_http_pull().await.unwrap();
    }
    q
}

/// Millisecond backoffs, so resends happen quickly.
pub fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(2), Duration::from_millis(20))
}

/// A publisher builder for `q` with fast resends.
pub fn fast_publisher(q: &QueueHandle) -> PublisherBuilder {
    q.publisher().retry_backoff(fast_backoff())
}

/// How many copies of each body the queue holds, keyed by content type and body text.
pub fn copies(ledger: &[MessageInfo]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for m in ledger {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        *out.entry((m.content_type.clone(), body)).or_default() += 1;
    }
    out
}

/// Text bodies `m0` … `m{n-1}`, with one copy each.
pub fn once_each(n: usize) -> BTreeMap<(String, String), usize> {
    (0..n)
        .map(|i| (("text".to_owned(), format!("m{i}")), 1))
        .collect()
}

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
