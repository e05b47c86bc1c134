//! Lease extension end to end, against the emulator: handlers much slower than the
//! visibility timeout finish without redeliveries; with extension off the same run is
//! redelivered; a crashed consumer's messages come back after one visibility timeout.

use super::support::*;
use cloudflare_queues::consumer::{Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, MessageState, SeedMessage};
use cloudflare_queues::ops;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const VISIBILITY: Duration = Duration::from_secs(1);
const JOB: Duration = Duration::from_secs(4);

/// Runs 20 jobs of 4 s with a 1 s visibility timeout; returns the emulator's ledger.
async fn slow_jobs(extension: bool) -> (Vec<cloudflare_queues::emulator::MessageInfo>, u64, u64) {
    let emu = Emulator::start().await.unwrap();
    let q = http_pull_queue(&emu, "slow", 10, None).await;
    emu.seed(
        q.id(),
        (0..20).map(|i| SeedMessage::text(format!("job {i}"))),
    )
    .unwrap();
    let consumer = fast_consumer(&q)
        .visibility_timeout(VISIBILITY)
        .lease_margin(Duration::from_millis(100))
        .lease_extension(extension)
        // Room for more than the 20 jobs, so that expired leases are pulled again.
        .max_in_flight(60)
        .build()
        .unwrap();
    let handle = consumer.shutdown_handle();
    let handled = Arc::new(AtomicU64::new(0));
    let task = {
        let handled = handled.clone();
        tokio::spawn(consumer.run(move |_m| {
            let handled = handled.clone();
            async move {
                tokio::time::sleep(JOB).await;
                handled.fetch_add(1, Ordering::SeqCst);
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
        .shutdown(ShutdownMode::drain(Duration::from_secs(10)))
        .await;
    task.await.unwrap().unwrap();
    assert!(report.is_balanced(), "{report:?}");
    (
        emu.messages(q.id()),
        handled.load(Ordering::SeqCst),
        emu.requests(&ops::EXTEND_LEASES),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_four_times_longer_than_the_lease_finish_without_redelivery() {
    bounded(async {
        let (ledger, handled, extend_requests) = slow_jobs(true).await;
        assert_eq!(handled, 20, "each job ran once");
        for m in &ledger {
            assert_eq!(
                (m.state, m.deliveries, m.acks, m.expiries),
                (MessageState::Acked, 1, 1, 0),
                "{m:?}"
            );
            assert!(m.extensions >= 3, "kept alive by extensions: {m:?}");
        }
        // About four extensions per message, batched into few requests.
        assert!(
            extend_requests <= 20,
            "{extend_requests} extension requests for 20 messages"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_extension_the_same_jobs_are_redelivered() {
    bounded(async {
        let (ledger, handled, extend_requests) = slow_jobs(false).await;
        assert_eq!(extend_requests, 0);
        let redeliveries: u32 = ledger.iter().map(|m| m.deliveries - 1).sum();
        let expiries: u32 = ledger.iter().map(|m| m.expiries).sum();
        assert!(redeliveries >= 20, "{redeliveries} redeliveries");
        assert!(expiries >= 20, "{expiries} lease expiries");
        assert!(handled > 20, "jobs ran twice: {handled}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumer_lets_its_messages_come_back_after_one_visibility_timeout() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let q = http_pull_queue(&emu, "crash-mid-job", 5, None).await;
        emu.seed(q.id(), (0..5).map(|i| SeedMessage::text(i.to_string())))
            .unwrap();
        let consumer = fast_consumer(&q)
            .visibility_timeout(Duration::from_secs(2))
            .max_lease(Duration::from_secs(3600))
            .build()
            .unwrap();
        let handle = consumer.shutdown_handle();
        let started = Arc::new(AtomicU64::new(0));
        let task = {
            let started = started.clone();
            tokio::spawn(consumer.run(move |_m| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<Outcome>().await
                }
            }))
        };
        wait_until(|| started.load(Ordering::SeqCst) == 5).await;
        // Long enough for extensions to happen: the jobs outlive their first lease.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            emu.messages(q.id())
                .iter()
                .all(|m| m.extensions >= 1 && m.state == MessageState::Leased)
        );
        // The process dies: no release, no more extensions.
        handle.shutdown(ShutdownMode::Abandon).await;
        task.abort();
        assert!(
            q.pull().batch_size(10).await.unwrap().messages.is_empty(),
            "still leased"
        );
        // One visibility timeout later (not max_lease), they are back.
        emu.advance(Duration::from_millis(2100));
        let again = q.pull().batch_size(10).await.unwrap();
        assert_eq!(again.messages.len(), 5);
        assert!(again.messages.iter().all(|m| m.attempts == 2));
    })
    .await;
}
