//! PullConsumer against the emulator: batching, policies, pause, fatal errors, shutdown.

mod support;

use cloudflare_queues::consumer::{DecodeErrorPolicy, Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, MessageState, SeedMessage};
use cloudflare_queues::{ErrorCode, ops};
use futures::StreamExt as _;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::*;

mod extension;
mod lifecycle;
mod paused_clock;
mod robustness;
mod wire;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_acked_once_with_about_one_ack_request_per_hundred() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "bulk", 3, None).await;
        let ids = emu
            .seed(
                q.id(),
                (0..2_000).map(|i| SeedMessage::text(format!("m{i}"))),
            )
            .unwrap();
        let consumer = fast_consumer(&q).max_in_flight(500).build().unwrap();
        let handle = consumer.shutdown_handle();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = {
            let seen = seen.clone();
            tokio::spawn(consumer.run(move |m| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(m.id().to_owned());
                    Outcome::Ack
                }
            }))
        };
        wait_until(|| handle.stats().acked == 2_000).await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!(task.await.unwrap().unwrap(), report);

        assert_eq!((report.pulled, report.acked), (2_000, 2_000));
        assert!(report.is_balanced(), "{report:?}");
        let ledger = emu.messages(q.id());
        assert!(
            ledger
                .iter()
                .all(|m| m.state == MessageState::Acked && m.acks == 1 && m.deliveries == 1),
            "each acked exactly once"
        );
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(seen, expected, "each message handled exactly once");
        let ack_requests = emu.requests(&ops::ACK_MESSAGES);
        assert!(
            (20..=30).contains(&ack_requests),
            "{ack_requests} ack requests for 2000 messages"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_come_back_after_their_delay_then_go_to_the_dead_letter_queue() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "retrying", 3, Some("retrying-dlq")).await;
        let id = emu
            .seed(q.id(), [SeedMessage::text("flaky")])
            .unwrap()
            .remove(0);
        let mut stream = fast_consumer(&q).build().unwrap().stream();

        for attempt in 1..=3 {
            let d = stream.next().await.unwrap().unwrap();
            assert_eq!((d.id(), d.attempts()), (id.as_str(), attempt));
            d.retry(Duration::from_secs(30)).confirmed().await.unwrap();
            if attempt < 3 {
                let info = &emu.messages(q.id())[0];
                assert_eq!(info.state, MessageState::Delayed, "not before the delay");
                emu.advance(Duration::from_secs(30));
            }
        }
        let handle = stream.shutdown_handle();
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!((report.pulled, report.retried), (3, 3));
        assert_eq!(emu.dead_lettered_ids(q.id()), vec![id.clone()]);
        let dlq = emu.queue_id("retrying-dlq").unwrap();
        assert_eq!(emu.messages(&dlq)[0].id, id);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bodies_follow_the_policy() {
    bounded(async {
        for policy in [
            DecodeErrorPolicy::Retry(Duration::from_secs(60)),
            DecodeErrorPolicy::Release,
            DecodeErrorPolicy::Discard,
            DecodeErrorPolicy::Deliver,
        ] {
            let emu = Emulator::start().await.unwrap();
            let q = http_pull_queue(&emu, "v8", 10, None).await;
            emu.seed(
                q.id(),
                [
                    SeedMessage::v8(vec![0xff, 0x0f, 0x6f]),
                    SeedMessage::text("fine"),
                ],
            )
            .unwrap();
            let consumer = fast_consumer(&q).on_decode_error(policy).build().unwrap();
            let mut stream = consumer.stream();
            let first = stream.next().await.unwrap().unwrap();
            if policy == DecodeErrorPolicy::Deliver {
                assert!(first.bytes().is_err(), "delivered with its decode error");
                drop(first.ack());
                let second = stream.next().await.unwrap().unwrap();
                assert_eq!(second.text().unwrap(), "fine");
                drop(second.ack());
            } else {
                assert_eq!(
                    first.text().unwrap(),
                    "fine",
                    "the v8 message never reaches the application"
                );
                drop(first.ack());
            }
            let handle = stream.shutdown_handle();
            let report = handle
                .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
                .await;
            assert!(report.is_balanced(), "{report:?}");
            assert_eq!(handle.stats().decode_errors, 1);
            let v8 = &emu.messages(q.id())[0];
            let expected = match policy {
                DecodeErrorPolicy::Retry(_) => MessageState::Delayed,
                DecodeErrorPolicy::Release => MessageState::Available,
                _ => MessageState::Acked,
            };
            assert_eq!(v8.state, expected, "{policy:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_is_a_quiet_state_and_consumption_resumes() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let client = emu.client();
        let q = http_pull_queue(&emu, "pausable", 3, None).await;
        q.pause_delivery().await.unwrap();
        q.send_batch((0..50).map(|i| i.to_string())).await.unwrap();
        let consumer = fast_consumer(&q).build().unwrap();
        let mut states = consumer.state_changes();
        let mut stream = consumer.stream();

        // While paused the stream yields nothing, not even errors.
        let nothing = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
        assert!(nothing.is_err(), "no item while paused: {nothing:?}");
        states
            .wait_for(|s| *s == cloudflare_queues::consumer::ConsumerState::Paused)
            .await
            .unwrap();
        let paused_pulls = emu.requests(&ops::PULL_MESSAGES);
        assert!(
            paused_pulls <= 30,
            "{paused_pulls} pulls in 300 ms: paused polling must be slow"
        );

        client.queue(q.id()).resume_delivery().await.unwrap();
        let mut got = 0;
        while got < 50 {
            let d = stream.next().await.unwrap().unwrap();
            drop(d.ack());
            got += 1;
        }
        let report = stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!(report.acked, 50);
        assert_eq!(emu.acked_ids(q.id()).len(), 50);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_queue_ends_the_stream_with_queue_not_found() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "doomed", 3, None).await;
        emu.seed(q.id(), [SeedMessage::text("last")]).unwrap();
        let mut stream = fast_consumer(&q).build().unwrap().stream();
        let d = stream.next().await.unwrap().unwrap();
        q.delete().await.unwrap();
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::QueueNotFound), "{err}");
        assert!(
            stream.next().await.is_none(),
            "the stream ends after the fatal error"
        );
        // The delivery still held cannot be settled on a deleted queue: reported, not lost.
        let settled = d.ack().confirmed().await;
        assert!(settled.is_err());
        let report = stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(Duration::from_secs(1)))
            .await;
        assert!(report.is_balanced(), "{report:?}");
        assert_eq!(report.failed_to_settle, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_the_fatal_error() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let client = emu.client();
        let queue = client.queues().create("no-consumer").await.unwrap();
        let q = client.queue(queue.queue_id.unwrap());
        let err = fast_consumer(&q)
            .build()
            .unwrap()
            .run(|_m| async { Outcome::Ack })
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            Some(400),
            "pulling without an HTTP pull consumer is fatal: {err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_delivery_is_released_and_never_acked() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "drops", 3, None).await;
        emu.seed(q.id(), [SeedMessage::text("undecided")]).unwrap();
        let mut stream = fast_consumer(&q).build().unwrap().stream();
        let d = stream.next().await.unwrap().unwrap();
        assert_eq!(d.attempts(), 1);
        drop(d);
        let again = stream.next().await.unwrap().unwrap();
        assert_eq!(again.attempts(), 2, "released at once, so redelivered");
        let handle = stream.shutdown_handle();
        drop(again.ack());
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!((report.released, report.acked), (1, 1));
        assert_eq!(emu.messages(q.id())[0].acks, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_batch_and_flush_on_demand() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "batching", 3, None).await;
        emu.seed(q.id(), (0..250).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        // A long age trigger, so only size and explicit flushes send.
        let consumer = fast_consumer(&q)
            .max_in_flight(300)
            .ack_batching(
                cloudflare_queues::consumer::AckBatching::default()
                    .max_delay(Duration::from_secs(30)),
            )
            .build()
            .unwrap();
        let mut stream = consumer.stream();
        let handle = stream.shutdown_handle();
        let mut last = None;
        for _ in 0..250 {
            last = Some(stream.next().await.unwrap().unwrap().ack());
        }
        // Requests are counted on arrival and applied after, so wait for the effect.
        wait_until(|| emu.acked_ids(q.id()).len() == 200).await;
        assert_eq!(
            emu.requests(&ops::ACK_MESSAGES),
            2,
            "two full batches of 100 went at once"
        );
        handle.flush().await;
        assert_eq!(emu.requests(&ops::ACK_MESSAGES), 3);
        let outcome = last.unwrap().confirmed().await.unwrap();
        assert_eq!(outcome.warning, None);
        assert_eq!(emu.acked_ids(q.id()).len(), 250);
        handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_nearly_spent_before_dispatch_is_released_not_handed_out() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "stale", 10, None).await;
        emu.seed(q.id(), (0..5).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let consumer = fast_consumer(&q)
            .visibility_timeout(Duration::from_secs(1))
            .lease_margin(Duration::from_millis(700))
            .build()
            .unwrap();
        let mut stream = consumer.stream();
        let first = stream.next().await.unwrap().unwrap();
        // The other four wait in the buffer while their leases run down.
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(first.ack());
        let next = stream.next().await.unwrap().unwrap();
        assert_eq!(
            next.attempts(),
            2,
            "the buffered ones were released; this is a redelivery"
        );
        let handle = stream.shutdown_handle();
        drop(next.ack());
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!(report.expired_before_dispatch, 4, "{report:?}");
        assert!(report.is_balanced());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_handlers_and_flushes_everything() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "drain", 3, None).await;
        emu.seed(q.id(), (0..100).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let consumer = fast_consumer(&q).max_in_flight(10).build().unwrap();
        let handle = consumer.shutdown_handle();
        let started = Arc::new(AtomicU64::new(0));
        let task = {
            let started = started.clone();
            tokio::spawn(consumer.run(move |m| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    // Alternate outcomes, so the drain must flush acks and retries alike.
                    if m.text().unwrap().parse::<u32>().unwrap() % 2 == 0 {
                        Outcome::Ack
                    } else {
                        Outcome::retry_after(Duration::from_secs(60))
                    }
                }
            }))
        };
        wait_until(|| started.load(Ordering::Relaxed) >= 10).await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        task.await.unwrap().unwrap();
        assert!(report.is_balanced(), "{report:?}");
        let handled = started.load(Ordering::Relaxed);
        assert_eq!(
            report.acked + report.retried,
            handled,
            "every started handler finished and was settled: {report:?}"
        );
        assert_eq!(report.released, report.pulled - handled);
        let ledger = emu.messages(q.id());
        assert!(
            ledger.iter().all(|m| m.state != MessageState::Leased),
            "nothing is left leased after a drain"
        );
        assert_eq!(
            ledger
                .iter()
                .filter(|m| m.state == MessageState::Acked)
                .count() as u64,
            report.acked
        );
        assert_eq!(
            ledger
                .iter()
                .filter(|m| m.state == MessageState::Delayed)
                .count() as u64,
            report.retried
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_now_cancels_handlers_and_releases() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "release-now", 3, None).await;
        emu.seed(q.id(), (0..20).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let consumer = fast_consumer(&q).max_in_flight(5).build().unwrap();
        let handle = consumer.shutdown_handle();
        let started = Arc::new(AtomicU64::new(0));
        let after_shutdown = Arc::new(AtomicBool::new(false));
        let late_starts = Arc::new(AtomicU64::new(0));
        let task = {
            let (started, after, late) =
                (started.clone(), after_shutdown.clone(), late_starts.clone());
            tokio::spawn(consumer.run(move |_m| {
                let (started, after, late) = (started.clone(), after.clone(), late.clone());
                async move {
                    if after.load(Ordering::SeqCst) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                    started.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Outcome::Ack
                }
            }))
        };
        wait_until(|| started.load(Ordering::Relaxed) == 5).await;
        let report = handle.shutdown(ShutdownMode::ReleaseNow).await;
        after_shutdown.store(true, Ordering::SeqCst);
        task.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            late_starts.load(Ordering::SeqCst),
            0,
            "no handler starts after shutdown returns"
        );
        assert_eq!(
            (report.acked, report.released, report.pulled),
            (0, 5, 5),
            "{report:?}"
        );
        let available = emu
            .messages(q.id())
            .iter()
            .filter(|m| m.state == MessageState::Available)
            .count();
        assert_eq!(available, 20, "released leases are available again at once");
    })
    .await;
}

#[test]
fn an_aborted_consumer_leaves_its_messages_to_come_back_after_the_visibility_timeout() {
    let outer = tokio::runtime::Runtime::new().unwrap();
    let emu = outer.block_on(Emulator::start()).unwrap();
    let q = outer.block_on(http_pull_queue(&emu, "crash", 3, None));
    emu.seed(q.id(), (0..10).map(|i| SeedMessage::text(i.to_string())))
        .unwrap();

    // The consumer lives in its own runtime, which is dropped mid-flight: a crash.
    let inner = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    {
        let consumer = fast_consumer(&q)
            .visibility_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let handled = handled.clone();
        inner.spawn(consumer.run(move |_m| {
            let handled = handled.clone();
            async move {
                handled.fetch_add(1, Ordering::Relaxed);
                std::future::pending::<Outcome>().await
            }
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handled.load(Ordering::Relaxed) < 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(handled.load(Ordering::Relaxed), 10);
    inner.shutdown_background();
    // A pull the crashed consumer had already sent may still reach the emulator; let it
    // land before time moves, or it would lease what the check below expects to find.
    let mut pulls = emu.requests(&ops::PULL_MESSAGES);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = emu.requests(&ops::PULL_MESSAGES);
        if now == pulls {
            break;
        }
        pulls = now;
    }

    let leased = emu
        .messages(q.id())
        .iter()
        .filter(|m| m.state == MessageState::Leased)
        .count();
    assert_eq!(
        leased, 10,
        "nothing was settled: the leases are simply held"
    );
    emu.advance(Duration::from_secs(31));
    let again = outer.block_on(q.pull().batch_size(10).send()).unwrap();
    assert_eq!(
        again.messages.len(),
        10,
        "{:#?} {:?}",
        emu.messages(q.id()),
        emu.requests_by_operation()
    );
    assert!(again.messages.iter().all(|m| m.attempts == 2));
    let ids: HashSet<_> = again.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), 10);
}
