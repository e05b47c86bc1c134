//! The Publisher against the emulator (and wiremock where the wire matters): the rate
//! ceiling, faults on batch push, flush, shutdown, drop, sharding.

mod support;

mod redrive;
mod wire;

use cloudflare_queues::consumer::ShutdownMode;
use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan, SeedMessage};
use cloudflare_queues::models::Message;
use cloudflare_queues::{Error, ErrorCode, ops};
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

fn text(i: usize) -> Message {
    Message::text(format!("m{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_against_the_rate_ceiling_stores_every_message_exactly_once() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "storm", false).await;
        // 2,000 messages per second, bursts of 200: sixteen batches of 100 at once are
        // far over it.
        emu.set_queue_rate_limit(q.id(), Some(2_000));
        let publisher = fast_publisher(&q).build().unwrap();
        let futures: Vec<_> = (0..3_000).map(|i| publisher.publish(text(i))).collect();
        for r in futures::future::join_all(futures).await {
            assert!(!r.unwrap().possibly_duplicated());
        }
        let report = publisher.shutdown().await;
        assert!(
            report.rate_limited_responses > 0,
            "the ceiling was hit: {report:?}"
        );
        assert!(report.time_throttled > Duration::ZERO);
        assert_eq!((report.published, report.failed), (3_000, 0));
        assert!(report.is_balanced());
        assert_eq!(copies(&emu.messages(q.id())), once_each(3_000));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_429s_and_5xx_on_batch_push_are_absorbed() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "faulty", false).await;
        emu.set_faults(
            &ops::PUSH_BATCH,
            FaultPlan::random(
                0.5,
                [
                    Fault::RateLimited {
                        code: 10250,
                        retry_after: Some(Duration::from_millis(20)),
                    },
                    Fault::Internal,
                    Fault::BadGateway,
                ],
            ),
        );
        let publisher = fast_publisher(&q).max_messages(10).build().unwrap();
        let futures: Vec<_> = (0..500).map(|i| publisher.publish(text(i))).collect();
        for r in futures::future::join_all(futures).await {
            assert!(!r.unwrap().possibly_duplicated());
        }
        let report = publisher.shutdown().await;
        assert!(
            report.requests > 60,
            "about half the requests failed: {report:?}"
        );
        assert!(report.rate_limited_responses > 0);
        assert_eq!(emu.requests(&ops::PUSH_BATCH), report.requests);
        assert_eq!(copies(&emu.messages(q.id())), once_each(500));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_is_sent_again_and_the_duplicates_are_counted() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "lossy", false).await;
        // The first two batch requests are stored, then their responses lost.
        emu.set_faults(&ops::PUSH_BATCH, FaultPlan::first(2, Fault::LostResponse));
        // Three full batches; no partial one however slow the machine.
        let publisher = fast_publisher(&q)
            .max_delay(Duration::from_secs(5))
            .build()
            .unwrap();
        let futures: Vec<_> = (0..300).map(|i| publisher.publish(text(i))).collect();
        let results = futures::future::join_all(futures).await;
        let flagged = results
            .iter()
            .filter(|r| r.as_ref().unwrap().possibly_duplicated())
            .count();
        assert_eq!(flagged, 200);
        let stats = publisher.stats();
        assert_eq!(stats.resent_after_ambiguous, 200);
        assert_eq!(stats.ambiguous_responses, 2);
        // Every message is there; the two lost batches twice: exactly the resends.
        let held = copies(&emu.messages(q.id()));
        assert_eq!(held.len(), 300);
        let extra: usize = held.values().map(|n| n - 1).sum();
        assert_eq!(extra as u64, stats.resent_after_ambiguous);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_fails_a_lost_response_instead_of_resending() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "once", false).await;
        emu.set_faults(&ops::PUSH_BATCH, FaultPlan::first(1, Fault::LostResponse));
        let publisher = fast_publisher(&q)
            .at_most_once()
            .max_delay(Duration::from_secs(5))
            .build()
            .unwrap();
        let futures: Vec<_> = (0..200).map(|i| publisher.publish(text(i))).collect();
        let results = futures::future::join_all(futures).await;
        let maybe: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(maybe.len(), 100);
        for err in maybe {
            assert!(matches!(err, Error::MaybeStored { .. }), "{err}");
        }
        let report = publisher.shutdown().await;
        assert_eq!(
            (report.published, report.failed, report.requests),
            (100, 100, 2)
        );
        // They were in fact stored (the response was lost after), and only once.
        assert_eq!(copies(&emu.messages(q.id())), once_each(200));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_queue_fails_the_batch_with_its_code() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "disabled", false).await;
        emu.set_faults(
            &ops::PUSH_BATCH,
            FaultPlan::first(
                1,
                Fault::RateLimited {
                    code: 10252,
                    retry_after: Some(Duration::from_secs(1)),
                },
            ),
        );
        let publisher = fast_publisher(&q).build().unwrap();
        let first: Vec<_> = (0..5).map(|i| publisher.publish(text(i))).collect();
        for r in futures::future::join_all(first).await {
            assert_eq!(r.unwrap_err().code(), Some(ErrorCode::QueueDisabled));
        }
        publisher.publish("after").await.unwrap();
        assert_eq!(
            emu.messages(q.id()).len(),
            1,
            "the refused batch stored nothing"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_shutdown_deliver_everything() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "flushed", false).await;
        let publisher = fast_publisher(&q)
            .max_delay(Duration::from_secs(3600))
            .build()
            .unwrap();
        let first: Vec<_> = (0..50).map(|i| publisher.publish(text(i))).collect();
        publisher.flush().await;
        assert_eq!(
            emu.messages(q.id()).len(),
            50,
            "flush waited for the server"
        );
        drop(first);
        let second: Vec<_> = (50..80).map(|i| publisher.publish(text(i))).collect();
        let report = publisher.shutdown().await;
        assert_eq!(copies(&emu.messages(q.id())), once_each(80));
        assert_eq!(
            (report.accepted, report.published, report.requests),
            (80, 80, 2)
        );
        for r in futures::future::join_all(second).await {
            r.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_publisher_still_sends_what_it_accepted() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "dropped", false).await;
        let publisher = fast_publisher(&q)
            .max_delay(Duration::from_secs(3600))
            .build()
            .unwrap();
        let futures: Vec<_> = (0..40).map(|i| publisher.publish(text(i))).collect();
        drop(futures);
        drop(publisher);
        wait_until(|| emu.messages(q.id()).len() == 40).await;
        assert_eq!(copies(&emu.messages(q.id())), once_each(40));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_publisher_spreads_batches_and_select_all_consumes_them() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let mut queues = Vec::new();
        for name in ["shard-a", "shard-b", "shard-c"] {
            queues.push(queue(&emu, name, true).await);
        }
        let client = emu.client();
        let publisher = client
            .publisher_for(queues.iter().map(|q| q.id().to_owned()))
            .rate_limit(10_000)
            .max_delay(Duration::from_secs(5))
            .retry_backoff(fast_backoff())
            .build()
            .unwrap();
        let futures: Vec<_> = (0..900).map(|i| publisher.publish(text(i))).collect();
        let mut per_queue: BTreeMap<String, usize> = BTreeMap::new();
        for r in futures::future::join_all(futures).await {
            *per_queue
                .entry(r.unwrap().queue_id().to_owned())
                .or_default() += 1;
        }
        assert_eq!(
            per_queue.values().copied().collect::<Vec<_>>(),
            vec![300; 3]
        );

        // The consumer side: one PullConsumer per queue, their streams merged.
        let mut handles = Vec::new();
        let streams: Vec<_> = queues
            .iter()
            .map(|q| {
                let consumer = q.pull_consumer().build().unwrap();
                handles.push(consumer.shutdown_handle());
                consumer.stream()
            })
            .collect();
        let mut merged = futures::stream::select_all(streams);
        let mut seen = BTreeMap::new();
        while seen.len() < 900 {
            let delivery = merged.next().await.unwrap().unwrap();
            *seen
                .entry(delivery.text().unwrap().into_owned())
                .or_insert(0) += 1;
            drop(delivery.ack());
        }
        for h in &handles {
            h.shutdown(ShutdownMode::drain(Duration::from_secs(5)))
                .await;
        }
        assert!(seen.values().all(|n| *n == 1));
        for q in &queues {
            assert_eq!(emu.acked_ids(q.id()).len(), 300);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_keeps_decoded_bodies() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = queue(&emu, "bodies", false).await;
        q.send_batch([
            Message::text("plain"),
            Message::json(&serde_json::json!({"a": [1, 2]})).unwrap(),
        ])
        .await
        .unwrap();
        emu.seed(q.id(), [SeedMessage::bytes(vec![0, 255])])
            .unwrap();
        let ledger = emu.messages(q.id());
        let bodies: Vec<(&str, &[u8])> = ledger
            .iter()
            .map(|m| (m.content_type.as_str(), m.body.as_slice()))
            .collect();
        assert_eq!(
            bodies,
            vec![
                ("text", &b"plain"[..]),
                ("json", &br#"{"a":[1,2]}"#[..]),
                ("bytes", &[0u8, 255][..])
            ]
        );
    })
    .await;
}
