//! A consumer test that runs entirely on tokio's paused clock against the emulator:
//! backoffs, leases and redeliveries take virtual time, so minutes pass in milliseconds.
//!
//! The emulator must run on the same `current_thread` runtime: a paused clock advances
//! by itself only when every task of the runtime is idle, and the emulator's loopback I/O
//! must be one of those tasks for that to be decided correctly.

use cloudflare_queues::Backoff;
use cloudflare_queues::consumer::ShutdownMode;
use cloudflare_queues::emulator::{Emulator, MessageState, SeedMessage};
use cloudflare_queues::testing::fast_consumer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_job_backs_off_for_minutes_of_virtual_time_then_succeeds() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let created = client.queues().create("virtual").await.unwrap();
    let q = client.queue(created.id());
    q.consumers()
        .create_http_pull()
        .max_retries(10)
        .await
        .unwrap();
    emu.seed(q.id(), [SeedMessage::text("flaky job")]).unwrap();

    // Real settings: a 60 s lease and the default 10 s doubling handler backoff.
    let consumer = fast_consumer(&q)
        // An idle queue polled at the default pace: fewer loopback round trips.
        .idle_backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_secs(2),
        ))
        .visibility_timeout(Duration::from_secs(60))
        .handler_backoff(
            Backoff::new(Duration::from_secs(10), Duration::from_secs(600)).jitter(0.0),
        )
        .build()
        .unwrap();
    let handle = consumer.shutdown_handle();
    let runs = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let run = tokio::spawn({
        let runs = runs.clone();
        consumer.run(move |m| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                // A slow step, longer than the lease: extension keeps it.
                tokio::time::sleep(Duration::from_secs(90)).await;
                if m.attempts() < 3 {
                    return Err::<(), _>("upstream unavailable");
                }
                Ok(())
            }
        })
    });
    emu.wait_until_acked(q.id(), 1, Duration::from_secs(3600))
        .await
        .unwrap();
    let took = started.elapsed();
    let report = handle
        .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
        .await;
    run.await.unwrap().unwrap();

    // Three runs of 90 s, with 10 s and 20 s of handler backoff between them.
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(
        took >= Duration::from_secs(300) && took < Duration::from_secs(330),
        "{took:?} of virtual time"
    );
    let info = &emu.messages(q.id())[0];
    assert_eq!(
        (info.state, info.deliveries, info.expiries),
        (MessageState::Acked, 3, 0)
    );
    assert!(
        info.extensions >= 3,
        "each 90 s run outlived its 60 s lease: {info:?}"
    );
    assert_eq!((report.acked, report.retried), (1, 2), "{report:?}");
}
