//! PullConsumer under seeded faults, rate limits, cancellation and an idle queue.

use super::support::*;
use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan, Latency, MessageState, SeedMessage};
use cloudflare_queues::{Backoff, ops};
use futures::StreamExt as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_on_pull_and_ack_lose_nothing_and_the_report_adds_up() {
    bounded(async {
        let emu = Emulator::builder().seed(7).start().await.unwrap();
        // Redelivery must not run into max_retries here: this test is about loss.
        let q = http_pull_queue(&emu, "faulty", 100, None).await;
        let ids = emu
            .seed(q.id(), (0..1_000).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let overloaded = Fault::RateLimited {
            code: 10250,
            retry_after: Some(Duration::from_millis(20)),
        };
        emu.set_faults(
            &ops::PULL_MESSAGES,
            FaultPlan::random(
                0.25,
                [
                    Fault::Internal,
                    overloaded.clone(),
                    Fault::BadGateway,
                    Fault::LostResponse,
                ],
            ),
        );
        emu.set_faults(
            &ops::ACK_MESSAGES,
            FaultPlan::random(0.25, [Fault::Internal, overloaded, Fault::LostResponse]),
        );

        // A short lease, so that leases lost with a pull response come back quickly.
        // Small batches, so there are many requests for the faults to hit.
        let consumer = fast_consumer(&q)
            .batch_size(20)
            .ack_batching(cloudflare_queues::consumer::AckBatching::default().max_entries(20))
            .visibility_timeout(Duration::from_secs(1))
            .lease_margin(Duration::from_millis(200))
            .build()
            .unwrap();
        let handle = consumer.shutdown_handle();
        let handled: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let task = {
            let handled = handled.clone();
            tokio::spawn(consumer.run(move |m| {
                let handled = handled.clone();
                async move {
                    *handled
                        .lock()
                        .unwrap()
                        .entry(m.id().to_owned())
                        .or_default() += 1;
                    Outcome::Ack
                }
            }))
        };
        wait_until(|| {
            emu.messages(q.id())
                .iter()
                .all(|m| m.state == MessageState::Acked)
        })
        .await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        task.await
            .unwrap()
            .expect("faults are absorbed, not surfaced");

        let stats = handle.stats();
        assert!(
            stats.pull_errors >= 5 && stats.ack_request_failures >= 5,
            "faults happened: {stats:?}"
        );
        assert!(report.is_balanced(), "{report:?}");
        let ledger = emu.messages(q.id());
        assert_eq!(ledger.len(), 1_000);
        assert!(
            ledger.iter().all(|m| m.acks == 1),
            "every message acked, none lost"
        );
        let handled = handled.lock().unwrap();
        assert!(
            ids.iter().all(|id| handled.contains_key(id)),
            "every message reached the handler"
        );
        let duplicates: u32 = handled.values().map(|n| n - 1).sum();
        // Lost pull responses redeliver after the lease: at-least-once, but bounded.
        assert!(duplicates < 500, "{duplicates} duplicate deliveries");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_absorbed() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "limited", 3, None).await;
        emu.seed(q.id(), (0..3_000).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        emu.set_rate_limit(Some(3_000));
        let consumer = fast_consumer(&q)
            .max_in_flight(800)
            .max_concurrent_pulls(8)
            .build()
            .unwrap();
        let handle = consumer.shutdown_handle();
        let task = tokio::spawn(consumer.run(|_m| async { Outcome::Ack }));
        wait_until(|| handle.stats().acked == 3_000).await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        task.await.unwrap().expect("429s never surface");
        assert!(handle.stats().pull_errors > 0, "the ceiling was hit");
        assert_eq!(report.acked, 3_000);
        assert!(
            emu.messages(q.id())
                .iter()
                .all(|m| m.acks == 1 && m.deliveries == 1)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_cancel_safe() {
    bounded(async {
        // A little latency, so that next() is often pending when the timer fires.
        let emu = Emulator::builder()
            .latency(Latency::fixed(Duration::from_millis(5)))
            .start()
            .await
            .unwrap();
        let q = http_pull_queue(&emu, "cancel", 3, None).await;
        let ids = emu
            .seed(q.id(), (0..4_000).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        // Small pulls and few slots keep next() pending often, so timers cancel it mid-wait.
        let mut stream = fast_consumer(&q)
            .max_in_flight(10)
            .batch_size(5)
            .build()
            .unwrap()
            .stream();
        let mut seen: HashMap<String, u32> = HashMap::new();
        let (mut rounds, mut cancelled) = (0u32, 0u32);
        while seen.len() < ids.len() {
            rounds += 1;

            tokio::select! {
                item = stream.next() => {
                    let d = item.expect("stream ended early").expect("no error");
                    *seen.entry(d.id().to_owned()).or_default() += 1;
                    drop(d.ack());
                }
                () = tokio::time::sleep(Duration::from_millis(1)) => cancelled += 1,
            }
        }
        assert!(rounds >= 4_000, "{rounds} rounds");
        assert!(
            cancelled >= 1_000,
            "only {cancelled} next() futures were cancelled; the test proves little"
        );
        assert!(
            seen.values().all(|n| *n == 1),
            "a cancelled next() neither lost nor duplicated a delivery"
        );
        let report = stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!((report.pulled, report.acked), (4_000, 4_000));
        assert!(
            emu.messages(q.id())
                .iter()
                .all(|m| m.acks == 1 && m.deliveries == 1)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_queue_is_polled_at_a_bounded_rate() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "idle", 3, None).await;
        let cap = Duration::from_millis(100);
        let consumer = fast_consumer(&q)
            .max_concurrent_pulls(4)
            .idle_backoff(Backoff::new(Duration::from_millis(5), cap).jitter(0.5))
            .build()
            .unwrap();
        let mut stream = consumer.stream();
        // The first second lets the backoff reach its cap; the second is measured.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), stream.next())
                .await
                .is_err(),
            "nothing to deliver"
        );
        let before = emu.requests(&ops::PULL_MESSAGES);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), stream.next())
                .await
                .is_err()
        );
        let in_one_second = emu.requests(&ops::PULL_MESSAGES) - before;
        // At the cap, one puller polls every 50-100 ms (≤ 20/s); the other three wait for
        // it to find work and look again only every 4 caps (≤ 3 × 3/s).
        assert!(
            in_one_second <= 30,
            "{in_one_second} pulls in one idle second"
        );
        assert!(in_one_second >= 5, "{in_one_second}: it must keep polling");
        assert_eq!(
            stream.stats().state,
            cloudflare_queues::consumer::ConsumerState::Idle
        );

        // And work is picked up again promptly.
        emu.seed(q.id(), [SeedMessage::text("finally")]).unwrap();
        let d = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.text().unwrap(), "finally");
        drop(d.ack());
        stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
    })
    .await;
}
