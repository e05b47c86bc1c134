//! The pull consumer's metrics (feature `metrics`): its counters as absolute values per
//! queue, gauges, and handler durations by outcome; every one is named in README.md.

mod common;

use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, SeedMessage};
use cloudflare_queues::testing::fast_consumer;
use common::recording::*;
use metrics_util::debugging::DebugValue;
use std::time::Duration;

const MESSAGES: &str = "cloudflare_queues_consumer_messages_total";
const HANDLER: &str = "cloudflare_queues_consumer_handler_duration_seconds";

/// Consumes five messages (four acked, one failing once) and returns the queue id and
/// what was recorded.
fn consume() -> (String, Seen) {
    let mut queue_id = String::new();
    let seen = recorded(|| async {
        let emu = Emulator::start().await.unwrap();
        let client = emu.client();
        let created = client.queues().create("metered").await.unwrap();
        let q = client.queue(created.id());
        q.consumers().create_http_pull().await.unwrap();
        emu.seed(q.id(), (0..5).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        queue_id = q.id().to_owned();
        let consumer = fast_consumer(&q).build().unwrap();
        let handle = consumer.shutdown_handle();
        let run = tokio::spawn(consumer.run(|m| async move {
            if m.text()? == "3" && m.attempts() == 1 {
                return Err::<Outcome, cloudflare_queues::consumer::HandlerError>("not yet".into());
            }
            Ok(Outcome::Ack)
        }));
        emu.wait_until_acked(q.id(), 5, Duration::from_secs(20))
            .await
            .unwrap();
        handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        run.await.unwrap().unwrap();
    });
    (queue_id, seen)
}

#[test]
fn the_consumers_counters_and_handler_durations_are_recorded_per_queue() {
    let (queue, seen) = consume();
    let q = queue.as_str();
    assert_eq!(
        counter(&seen, MESSAGES, &[("outcome", "pulled"), ("queue", q)]),
        6
    );
    assert_eq!(
        counter(&seen, MESSAGES, &[("outcome", "acked"), ("queue", q)]),
        5
    );
    assert_eq!(
        counter(&seen, MESSAGES, &[("outcome", "retried"), ("queue", q)]),
        1
    );
    assert!(
        counter(
            &seen,
            "cloudflare_queues_consumer_requests_total",
            &[("kind", "pull"), ("queue", q)]
        ) >= 2
    );
    assert_eq!(
        samples(&seen, HANDLER, &[("outcome", "ack"), ("queue", q)]),
        5
    );
    assert_eq!(
        samples(&seen, HANDLER, &[("outcome", "failed"), ("queue", q)]),
        1
    );
    match seen.get(&key(
        "cloudflare_queues_consumer_in_flight",
        &[("queue", q)],
    )) {
        Some(DebugValue::Gauge(v)) => {
            assert_eq!(v.into_inner(), 0.0, "nothing held after shutdown")
        }
        other => panic!("in-flight gauge: {other:?}"),
    }
}

#[test]
fn every_consumer_metric_recorded_is_named_in_the_readme() {
    let readme = include_str!("../README.md");
    let (_, seen) = consume();
    let names: std::collections::BTreeSet<&str> = seen
        .keys()
        .filter_map(|k| k.split('{').next())
        .filter(|n| n.starts_with("cloudflare_queues_consumer_"))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README does not name `{name}`"
        );
    }
}
