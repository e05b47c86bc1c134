//! Lifecycle edges: ack outages, flushes under load, cancelled and abandoned shutdowns,
//! absurd server hints, and what the stream does once shutdown begins.

use super::support::*;
use cloudflare_queues::consumer::{AckBatching, Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan, MessageState, SeedMessage};
use cloudflare_queues::ops;
use futures::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_outage_pauses_pulls_instead_of_burning_attempts() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "outage", 3, None).await;
        emu.seed(q.id(), (0..1_000).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        // Every ack fails for the first 1.5 s.
        emu.set_faults(
            &ops::ACK_MESSAGES,
            FaultPlan::Window {
                from: Duration::ZERO,
                until: Duration::from_millis(1_500),
                fault: Fault::Internal,
            },
        );
        // Budgets: 50 undecided, and room for 2 requests of 10 unconfirmed, so 50 in all.
        let consumer = fast_consumer(&q)
            .max_in_flight(50)
            .batch_size(10)
            .visibility_timeout(Duration::from_secs(2))
            .lease_margin(Duration::from_millis(500))
            .ack_batching(
                AckBatching::default()
                    .max_entries(10)
                    .max_concurrent_requests(2)
                    .max_delay(Duration::from_millis(10)),
            )
            .build()
            .unwrap();
        let handle = consumer.shutdown_handle();
        let task = tokio::spawn(consumer.run(|_m| async { Outcome::Ack }));

        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let during = handle.stats();
        assert!(
            during.pulled <= 100,
            "pulls must pause while acks fail: {during:?}"
        );
        assert_eq!(during.acked, 0);

        wait_until(|| {
            emu.messages(q.id())
                .iter()
                .all(|m| m.state == MessageState::Acked)
        })
        .await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        task.await.unwrap().unwrap();
        assert!(report.is_balanced(), "{report:?}");
        let ledger = emu.messages(q.id());
        assert!(
            ledger.iter().all(|m| m.acks == 1 && m.deliveries <= 2),
            "no message ran out of attempts"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_returns_under_load_and_batching_survives_it() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "flush-load", 3, None).await;
        emu.seed(q.id(), (0..3_000).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let mut stream = fast_consumer(&q)
            .max_in_flight(200)
            .ack_batching(AckBatching::default().max_delay(Duration::from_millis(200)))
            .build()
            .unwrap()
            .stream();
        let handle = stream.shutdown_handle();
        for _ in 0..500 {
            drop(stream.next().await.unwrap().unwrap().ack());
        }
        let flush = tokio::spawn({
            let handle = handle.clone();
            async move { handle.flush().await }
        });
        // Keep consuming while the flush is in progress.
        let mut acked = 500;
        while !flush.is_finished() && acked < 3_000 {
            drop(stream.next().await.unwrap().unwrap().ack());
            acked += 1;
        }
        tokio::time::timeout(Duration::from_secs(5), flush)
            .await
            .expect("flush returned")
            .unwrap();
        assert!(
            emu.acked_ids(q.id()).len() >= 500,
            "everything settled before the flush is confirmed"
        );
        while acked < 3_000 {
            drop(stream.next().await.unwrap().unwrap().ack());
            acked += 1;
        }
        handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        let requests = emu.requests(&ops::ACK_MESSAGES);
        assert!(
            requests <= 60,
            "{requests} ack requests for 3000 acks: batching must survive a flush"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_shutdown_call_still_completes_the_shutdown() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "cancelled", 3, None).await;
        emu.seed(q.id(), (0..50).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let mut stream = fast_consumer(&q).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        let held = stream.next().await.unwrap().unwrap();
        // The caller gives up at once; the shutdown goes on regardless.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(1),
            handle.shutdown(ShutdownMode::drain(Duration::from_millis(300))),
        )
        .await;
        assert!(gave_up.is_err());
        drop(held.ack());
        let report = handle.shutdown(ShutdownMode::ReleaseNow).await;
        assert!(report.is_balanced(), "{report:?}");
        assert_eq!(report.acked, 1);
        let again = handle.shutdown(ShutdownMode::ReleaseNow).await;
        assert_eq!(again, report, "every caller gets the same report");
        let ledger = emu.messages(q.id());
        assert!(
            ledger.iter().all(|m| m.state != MessageState::Leased),
            "everything was settled"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_is_capped() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "hint", 3, None).await;
        emu.seed(q.id(), [SeedMessage::text("still here")]).unwrap();
        let forever = Fault::RateLimited {
            code: 10250,
            retry_after: Some(Duration::from_secs(1_000_000_000_000)),
        };
        emu.set_faults(&ops::PULL_MESSAGES, FaultPlan::first(1, forever));
        let mut stream = fast_consumer(&q)
            .max_concurrent_pulls(1)
            .build()
            .unwrap()
            .stream();
        // The error backoff's cap (50 ms here) bounds the wait.
        let d = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("not stalled")
            .unwrap()
            .unwrap();
        assert_eq!(d.text().unwrap(), "still here");
        drop(d.ack());
        stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_hands_out_nothing_once_shutdown_begins() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "closing", 3, None).await;
        emu.seed(q.id(), (0..100).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let mut stream = fast_consumer(&q).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        let first = stream.next().await.unwrap().unwrap();
        wait_until(|| handle.stats().in_flight >= 50).await;
        let shutdown = tokio::spawn({
            let handle = handle.clone();
            async move { handle.shutdown(ShutdownMode::ReleaseNow).await }
        });
        // Shutdown begins when its future first runs; wait for that, not for its end.
        let mut states = stream.state_changes();
        states
            .wait_for(|s| {
                *s != cloudflare_queues::consumer::ConsumerState::Running
                    && *s != cloudflare_queues::consumer::ConsumerState::Idle
            })
            .await
            .unwrap();
        let mut after = 0;
        while let Some(item) = stream.next().await {
            drop(item.unwrap());
            after += 1;
        }
        assert_eq!(
            after, 0,
            "no delivery is handed out after shutdown was asked for"
        );
        let report = shutdown.await.unwrap();
        assert!(report.is_balanced(), "{report:?}");
        assert!(
            first.ack().confirmed().await.is_err(),
            "a delivery held across shutdown was released for us"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_before_the_first_poll_returns_at_once() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "early-flush", 3, None).await;
        let stream = fast_consumer(&q).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        tokio::time::timeout(Duration::from_secs(1), handle.flush())
            .await
            .expect("nothing to wait for");
        let report = handle.shutdown(ShutdownMode::ReleaseNow).await;
        assert_eq!(report.pulled, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandon_sends_nothing_more_and_accounts_for_everything() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "abandon", 3, None).await;
        emu.seed(q.id(), (0..30).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let mut stream = fast_consumer(&q)
            .max_in_flight(30)
            .build()
            .unwrap()
            .stream();
        let handle = stream.shutdown_handle();
        let mut kept = Vec::new();
        for _ in 0..5 {
            kept.push(stream.next().await.unwrap().unwrap());
        }
        wait_until(|| handle.stats().pulled == 30).await;
        let acks_before = emu.requests(&ops::ACK_MESSAGES);
        let report = handle.shutdown(ShutdownMode::Abandon).await;
        assert_eq!((report.pulled, report.abandoned), (30, 30), "{report:?}");
        assert!(report.is_balanced());
        for d in kept {
            assert!(d.ack().confirmed().await.is_err());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            emu.requests(&ops::ACK_MESSAGES),
            acks_before,
            "no settlement was sent"
        );
        assert!(
            emu.messages(q.id())
                .iter()
                .all(|m| m.state == MessageState::Leased),
            "the leases simply run out"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_releases_its_deliveries_in_the_background() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "dropped", 3, None).await;
        emu.seed(q.id(), (0..20).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let mut stream = fast_consumer(&q).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        let d = stream.next().await.unwrap().unwrap();
        drop(d.ack());
        wait_until(|| handle.stats().pulled == 20).await;
        drop(stream);
        wait_until(|| {
            emu.messages(q.id())
                .iter()
                .all(|m| m.state != MessageState::Leased)
        })
        .await;
        let report = handle.shutdown(ShutdownMode::ReleaseNow).await;
        assert_eq!((report.acked, report.released), (1, 19), "{report:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_about_to_end_flushes_its_settlement_early() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "deadline", 3, None).await;
        emu.seed(q.id(), [SeedMessage::text("hurry")]).unwrap();
        // Age and size would wait 30 s and 100 entries; only the lease can trigger.
        let mut stream = fast_consumer(&q)
            .visibility_timeout(Duration::from_secs(2))
            .lease_margin(Duration::from_secs(1))
            .ack_batching(AckBatching::default().max_delay(Duration::from_secs(30)))
            .build()
            .unwrap()
            .stream();
        let d = stream.next().await.unwrap().unwrap();
        let settled = d.retry(Duration::from_secs(60));
        let outcome = tokio::time::timeout(Duration::from_secs(5), settled.confirmed())
            .await
            .expect("sent before the lease ends");
        assert_eq!(
            outcome.unwrap().warning,
            None,
            "the retry arrived while the lease was live"
        );
        assert_eq!(emu.messages(q.id())[0].state, MessageState::Delayed);
        stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_racing_shutdown_are_all_accounted_for() {
    bounded(async {
        for round in 0..10 {
            let emu = Emulator::start().await.unwrap();
            let q = http_pull_queue(&emu, "race", 3, None).await;
            emu.seed(q.id(), (0..200).map(|i| SeedMessage::text(i.to_string())))
                .unwrap();
            let mut stream = fast_consumer(&q)
                .max_in_flight(200)
                .build()
                .unwrap()
                .stream();
            let handle = stream.shutdown_handle();
            let mut held = Vec::new();
            while held.len() < 100 {
                held.push(stream.next().await.unwrap().unwrap());
            }
            // Settle from many tasks while the shutdown runs.
            let settled = Arc::new(AtomicU64::new(0));
            let settlers: Vec<_> = held
                .into_iter()
                .map(|d| {
                    let settled = settled.clone();
                    tokio::spawn(async move {
                        tokio::task::yield_now().await;
                        if d.ack().confirmed().await.is_ok() {
                            settled.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            let report = handle.shutdown(ShutdownMode::ReleaseNow).await;
            for s in settlers {
                s.await.unwrap();
            }
            assert!(report.is_balanced(), "round {round}: {report:?}");
            assert_eq!(
                report.acked,
                settled.load(Ordering::Relaxed),
                "round {round}"
            );
            let ledger = emu.messages(q.id());
            assert!(
                ledger.iter().all(|m| m.state != MessageState::Leased),
                "round {round}: nothing left leased"
            );
            assert_eq!(
                ledger
                    .iter()
                    .filter(|m| m.state == MessageState::Acked)
                    .count() as u64,
                report.acked
            );
        }
    })
    .await;
}
