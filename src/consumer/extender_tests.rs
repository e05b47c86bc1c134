//! Lease extension, on tokio's paused clock against the in-memory fake. The test
//! builder's visibility timeout is 30 s, so the default margin is 10 s: a held lease is
//! extended 20 s after it was leased, and every 30 s after that.

use super::fake::{Fake, Step, api_error};
use super::test_support::{builder, consumer, take, within};
use super::{Outcome, ShutdownMode};
use std::time::Duration;
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Sleeps on the paused clock (the consumer's tasks run meanwhile).
async fn wait(d: Duration) {
    tokio::time::sleep(d).await;
}

fn sizes(extends: &[Vec<String>]) -> Vec<usize> {
    extends.iter().map(Vec::len).collect()
}

#[tokio::test(start_paused = true)]
async fn held_leases_are_extended_before_they_run_out_in_batched_rounds() {
    let fake = Fake::with_messages(150);
    let start = Instant::now();
    let mut stream = consumer(&fake, builder().max_in_flight(200)).stream();
    let held = take(&mut stream, 150).await;
    let first = held[0].lease_deadline();
    assert!(first <= start + secs(30));

    wait(secs(19)).await;
    assert!(
        fake.extends().is_empty(),
        "nothing is due before the margin"
    );
    wait(secs(2)).await;
    // One round: ceil(150 / 100) requests, every held lease in it once.
    let mut round = sizes(&fake.extends());
    round.sort_unstable();
    assert_eq!(round, [50, 100], "{round:?}");
    assert!(held.iter().all(|d| d.lease_deadline() >= start + secs(49)));
    assert!(held[0].lease_remaining() > secs(25));

    // And again 30 s later, for as long as they are held.
    wait(secs(30)).await;
    assert_eq!(fake.extends().len(), 4);
    let stats = stream.stats();
    assert_eq!(
        (
            stats.extension_requests,
            stats.leases_extended,
            stats.extension_failures
        ),
        (4, 300, 0),
        "{stats:?}"
    );
    assert!(stats.extension_active);
    drop(held);
    stream
        .shutdown_handle()
        .shutdown(ShutdownMode::drain(secs(1)))
        .await;
}

#[tokio::test(start_paused = true)]
async fn settlements_use_the_newest_lease_id() {
    let fake = Fake::with_messages(1);
    let mut stream = consumer(&fake, builder()).stream();
    let d = take(&mut stream, 1).await.remove(0);
    let original = d.lease_id().to_owned();
    wait(secs(21)).await;
    let current = d.current_lease_id();
    assert_ne!(current, original, "the extension gave it a new lease id");
    assert_eq!(fake.extends(), [vec![original.clone()]]);
    drop(d.ack());
    let handle = stream.shutdown_handle();
    handle.flush().await;
    assert_eq!(fake.acked(), [current], "acked with the newest lease id");
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    assert_eq!(report.acked, 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_readable_new_id_the_old_lease_stays_in_use() {
    let fake = Fake::with_messages(1);
    fake.extend_without_ids();
    let start = Instant::now();
    let mut stream = consumer(&fake, builder()).stream();
    let d = take(&mut stream, 1).await.remove(0);
    wait(secs(21)).await;
    assert_eq!(fake.extends().len(), 1);
    assert_eq!(d.current_lease_id(), d.lease_id(), "old id kept");
    assert!(
        d.lease_deadline() >= start + secs(49),
        "but the deadline moved"
    );
    drop(d.ack());
    stream.shutdown_handle().flush().await;
    assert_eq!(fake.acked(), ["lease-1"]);
}

#[tokio::test(start_paused = true)]
async fn max_lease_caps_how_long_a_delivery_is_held() {
    let fake = Fake::with_messages(1);
    let mut stream = consumer(&fake, builder().max_lease(secs(50))).stream();
    let d = take(&mut stream, 1).await.remove(0);
    // Due at 20 s (extended to ~50 s) and at ~40 s (to ~70 s); at ~60 s it is past
    // max_lease, so it is left to run out.
    wait(secs(120)).await;
    assert_eq!(fake.extends().len(), 2, "{:?}", fake.extends());
    assert_eq!(d.lease_remaining(), Duration::ZERO);
    drop(d);
    stream
        .shutdown_handle()
        .shutdown(ShutdownMode::drain(secs(1)))
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_endpoint_turns_extension_off_and_the_consumer_goes_on() {
    for refusal in [404u16, 405] {
        let fake = Fake::with_messages(3);
        fake.extends_always(move || Step::Fail(api_error(refusal, 0, None)));
        let mut stream = consumer(&fake, builder()).stream();
        let mut held = take(&mut stream, 3).await;
        wait(secs(60)).await;
        let stats = stream.stats();
        assert!(!stats.extension_active, "{refusal}: {stats:?}");
        assert_eq!(
            fake.extends().len(),
            1,
            "{refusal}: tried once, never again"
        );
        // Without extension it works exactly as before.
        drop(held.remove(0).ack());
        fake.publish(1);
        let more = take(&mut stream, 1).await;
        drop(more.into_iter().map(|d| d.ack()).collect::<Vec<_>>());
        let report = stream
            .shutdown_handle()
            .shutdown(ShutdownMode::drain(secs(1)))
            .await;
        assert_eq!(report.acked, 2, "{report:?}");
        drop(held);
    }
}

#[tokio::test(start_paused = true)]
async fn a_400_splits_the_request_and_turns_extension_off_only_for_a_single_lease() {
    // Refuse every request with more than... every request: the batch of two is split,
    // then the single leases are refused, which turns extension off.
    let fake = Fake::with_messages(2);
    fake.extends_always(|| Step::Fail(api_error(400, 10207, None)));
    let mut stream = consumer(&fake, builder()).stream();
    let held = take(&mut stream, 2).await;
    wait(secs(21)).await;
    assert_eq!(sizes(&fake.extends()), [2, 1], "{:?}", fake.extends());
    assert!(!stream.stats().extension_active);
    drop(held);
    stream
        .shutdown_handle()
        .shutdown(ShutdownMode::drain(secs(1)))
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_round_is_retried_with_backoff_until_it_succeeds() {
    let fake = Fake::with_messages(1);
    fake.script_extends([
        Step::Fail(api_error(503, 15000, None)),
        Step::Fail(api_error(429, 10250, Some(secs(1)))),
    ]);
    let start = Instant::now();
    let mut stream = consumer(&fake, builder()).stream();
    let d = take(&mut stream, 1).await.remove(0);
    wait(secs(25)).await;
    assert_eq!(fake.extends().len(), 3);
    let stats = stream.stats();
    assert_eq!(
        (stats.extension_failures, stats.leases_extended),
        (2, 1),
        "{stats:?}"
    );
    assert!(stats.extension_active, "failures are not refusals");
    assert!(d.lease_deadline() > start + secs(50));
    drop(d);
    stream
        .shutdown_handle()
        .shutdown(ShutdownMode::drain(secs(1)))
        .await;
}

#[tokio::test(start_paused = true)]
async fn decided_and_buffered_deliveries_are_not_extended() {
    let fake = Fake::with_messages(3);
    let mut stream = consumer(&fake, builder()).stream();
    let mut held = take(&mut stream, 2).await;
    // The third is pulled but never handed out; the first is decided.
    drop(held.remove(0).ack());
    let kept = held.remove(0);
    wait(secs(21)).await;
    assert_eq!(fake.extends(), [vec![kept.lease_id().to_owned()]]);
    drop(kept);
    stream
        .shutdown_handle()
        .shutdown(ShutdownMode::drain(secs(1)))
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_drain_keeps_extending_running_work_until_its_deadline() {
    let fake = Fake::with_messages(1);
    let c = consumer(
        &fake,
        builder().shutdown_mode(ShutdownMode::drain(secs(90))),
    );
    let handle = c.shutdown_handle();
    // A 70 s job: more than twice the visibility timeout.
    let run = tokio::spawn(c.run(|_m| async {
        tokio::time::sleep(secs(70)).await;
        Outcome::Ack
    }));
    wait(secs(5)).await;
    let report = handle.shutdown(ShutdownMode::drain(secs(90))).await;
    assert_eq!((report.acked, report.released), (1, 0), "{report:?}");
    assert_eq!(
        fake.extends().len(),
        3,
        "extended at ~20, ~40 and ~60 s, the last two mid-drain"
    );
    assert_eq!(fake.acked(), ["lease-4"], "acked with the newest lease");
    within(secs(10), run).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn release_now_and_abandon_stop_extending_at_once() {
    for mode in [ShutdownMode::ReleaseNow, ShutdownMode::Abandon] {
        let fake = Fake::with_messages(1);
        // Slow answers: a request is in flight when shutdown begins.
        fake.extends_always(|| Step::Delay(Duration::from_secs(5)));
        let mut stream = consumer(&fake, builder()).stream();
        let held = take(&mut stream, 1).await;
        wait(secs(21)).await;
        assert_eq!(fake.extends().len(), 1);
        let start = Instant::now();
        let handle = stream.shutdown_handle();
        let shutdown = tokio::spawn(async move { handle.shutdown(mode).await });
        wait(secs(120)).await;
        let report = shutdown.await.unwrap();
        assert_eq!(
            fake.extends().len(),
            1,
            "{mode:?}: nothing more after it began"
        );
        assert!(start.elapsed() >= secs(120));
        assert!(report.is_balanced(), "{report:?}");
        drop(held);
    }
}

#[tokio::test(start_paused = true)]
async fn extension_can_be_turned_off() {
    let fake = Fake::with_messages(1);
    let mut stream = consumer(&fake, builder().lease_extension(false)).stream();
    let d = take(&mut stream, 1).await.remove(0);
    wait(secs(60)).await;
    assert!(fake.extends().is_empty());
    assert!(!stream.stats().extension_active);
    assert_eq!(d.lease_remaining(), Duration::ZERO);
    drop(d);
    stream
        .shutdown_handle()
        .shutdown(ShutdownMode::drain(secs(1)))
        .await;
}
