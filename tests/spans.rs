//! The pull consumer's tracing spans. A test binary of its own: tracing caches
//! callsite interest process-wide, so a subscriber must not share the process with
//! tests running without one.

#[path = "consumer/support.rs"]
mod support;

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, SeedMessage};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Records the names of the spans created.
#[derive(Clone, Default)]
struct SpanNames(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanNames {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(attrs.metadata().name().to_owned());
    }
}

#[test]
fn pull_handle_flush_and_request_spans_are_emitted() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let names = SpanNames::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(names.clone()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "traced", 3, None).await;
        emu.seed(q.id(), (0..5).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let consumer = fast_consumer(&q).build().unwrap();
        let handle = consumer.shutdown_handle();
        let task = tokio::spawn(consumer.run(|_m| async { Outcome::Ack }));
        wait_until(|| handle.stats().acked == 5).await;
        handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        task.await.unwrap().unwrap();
    });
    let names = names.0.lock().unwrap();
    for expected in ["cfq.pull", "cfq.handle", "cfq.flush", "cfq.request"] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected} span in {names:?}"
        );
    }
    assert_eq!(
        names.iter().filter(|n| *n == "cfq.handle").count(),
        5,
        "one handle span per message"
    );
}
