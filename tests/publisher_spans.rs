//! The Publisher's tracing spans. A test binary of its own: tracing caches callsite
//! interest process-wide, so a subscriber must not share the process with tests running
//! without one.

use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan};
use cloudflare_queues::ops;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};

/// One span's fields, as (name, value).
type SpanFields = Vec<(String, String)>;

/// Records each `cfq.publish` span's fields, and the names of every span.
#[derive(Clone, Default)]
struct Recorder {
    names: Arc<Mutex<Vec<String>>>,
    publish: Arc<Mutex<Vec<SpanFields>>>,
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = attrs.metadata().name();
        self.names.lock().unwrap().push(name.to_owned());
        if name == "cfq.publish" {
            let mut fields = Fields(Vec::new());
            attrs.record(&mut fields);
            self.publish.lock().unwrap().push(fields.0);
        }
    }
}

#[test]
fn one_publish_span_per_batch_request_with_its_size_and_attempt() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let emu = Emulator::start().await.unwrap();
        let client = emu.client();
        let created = client.queues().create("traced").await.unwrap();
        let q = client.queue(created.queue_id.unwrap());
        emu.set_faults(&ops::PUSH_BATCH, FaultPlan::first(1, Fault::Internal));
        let publisher = q
            .publisher()
            // Long enough that the 150 messages are all in before the 50 leave by age.
            .max_delay(Duration::from_millis(200))
            .retry_backoff(cloudflare_queues::Backoff::new(
                Duration::from_millis(1),
                Duration::from_millis(5),
            ))
            .build()
            .unwrap();
        let futures: Vec<_> = (0..150)
            .map(|i| publisher.publish(format!("m{i}")))
            .collect();
        for r in futures::future::join_all(futures).await {
            r.unwrap();
        }
        publisher.shutdown().await;
    });
    let publish = recorder.publish.lock().unwrap().clone();
    // Two batches (100 full, 50 after max_delay); the first failed once and was resent.
    assert_eq!(publish.len(), 3, "{publish:?}");
    let field = |span: &SpanFields, name: &str| {
        span.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut seen: Vec<(String, String, String)> = publish
        .iter()
        .map(|s| {
            (
                field(s, "messages"),
                field(s, "attempt"),
                field(s, "reason"),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("100".into(), "1".into(), "\"full\"".into()),
            ("100".into(), "2".into(), "\"full\"".into()),
            ("50".into(), "1".into(), "\"age\"".into()),
        ]
    );
    let names = recorder.names.lock().unwrap();
    assert!(
        names.iter().any(|n| n == "cfq.request"),
        "the transport's span nests inside"
    );
}
