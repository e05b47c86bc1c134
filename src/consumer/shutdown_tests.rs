//! Shutdown is bounded by its timeout, whatever the server does: `Drain(t)` returns
//! within `t + 0.5 s`, `ReleaseNow` within 1.5 s, `Abandon` within 1 s, and what was not
//! confirmed by then counts under `failed_to_settle`. Measured on tokio's paused clock.

use super::fake::{Fake, Step, api_error};
use super::test_support::{builder, consumer, take, within};
use super::{ShutdownMode, ShutdownReport};
use std::time::Duration;
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Takes `n` deliveries, acks them, then shuts down with `mode`; returns the report and
/// how long the shutdown took.
async fn ack_then_shut_down(
    fake: &Fake,
    n: usize,
    mode: ShutdownMode,
) -> (ShutdownReport, Duration) {
    let mut stream = consumer(fake, builder()).stream();
    for d in take(&mut stream, n).await {
        drop(d.ack());
    }
    let handle = stream.shutdown_handle();
    let start = Instant::now();
    let report = within(secs(3600), handle.shutdown(mode)).await;
    (report, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn drain_is_bounded_when_acks_are_told_to_wait_an_hour() {
    for retry_after in [secs(20), secs(3600)] {
        let fake = Fake::with_messages(5);
        fake.script_acks([Step::Fail(api_error(429, 10250, Some(retry_after)))]);
        fake.acks_always(|| Step::Fail(api_error(429, 10250, Some(Duration::from_secs(3600)))));
        let (report, took) = ack_then_shut_down(&fake, 5, ShutdownMode::drain(secs(2))).await;
        assert!(
            took <= ms(2500),
            "Retry-After {retry_after:?}: took {took:?}"
        );
        assert_eq!(
            (report.acked, report.failed_to_settle),
            (0, 5),
            "not confirmed: {report:?}"
        );
        assert!(report.is_balanced());
    }
}

#[tokio::test(start_paused = true)]
async fn drain_cancels_a_hanging_ack_request_at_its_deadline() {
    let fake = Fake::with_messages(3);
    fake.acks_always(|| Step::Hang);
    let (report, took) = ack_then_shut_down(&fake, 3, ShutdownMode::drain(secs(1))).await;
    assert!(took <= ms(1500), "took {took:?}");
    assert_eq!(
        (report.acked, report.failed_to_settle),
        (0, 3),
        "{report:?}"
    );
    assert!(report.is_balanced());
}

#[tokio::test(start_paused = true)]
async fn drain_with_a_healthy_server_confirms_everything_well_within_its_time() {
    let fake = Fake::with_messages(3);
    fake.acks_always(|| Step::Delay(Duration::from_millis(50)));
    let (report, took) = ack_then_shut_down(&fake, 3, ShutdownMode::drain(secs(5))).await;
    assert!(took < secs(1), "took {took:?}");
    assert_eq!(
        (report.acked, report.failed_to_settle),
        (3, 0),
        "{report:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn drain_waits_for_held_work_only_until_its_timeout() {
    let fake = Fake::with_messages(2);
    let mut stream = consumer(&fake, builder()).stream();
    let held = take(&mut stream, 2).await;
    let handle = stream.shutdown_handle();
    let start = Instant::now();
    let report = within(secs(3600), handle.shutdown(ShutdownMode::drain(secs(3)))).await;
    let took = start.elapsed();
    assert!(took >= secs(3) && took <= ms(3500), "took {took:?}");
    assert_eq!(
        report.released, 2,
        "what was still held is released: {report:?}"
    );
    assert!(report.is_balanced());
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn release_now_returns_within_1_5_s_with_a_hanging_server() {
    let fake = Fake::with_messages(4);
    fake.acks_always(|| Step::Hang);
    let mut stream = consumer(&fake, builder()).stream();
    let mut held = take(&mut stream, 4).await;
    drop(held.remove(0).ack());
    // The next pull never answers either.
    fake.pulls_always(|| Step::Hang);
    fake.publish(1);
    tokio::time::sleep(ms(200)).await;
    let handle = stream.shutdown_handle();
    let start = Instant::now();
    let report = within(secs(3600), handle.shutdown(ShutdownMode::ReleaseNow)).await;
    let took = start.elapsed();
    assert!(took <= ms(1500), "took {took:?}");
    assert_eq!(
        (report.pulled, report.failed_to_settle),
        (4, 4),
        "{report:?}"
    );
    assert!(report.is_balanced());
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn abandon_returns_within_1_s_and_sends_nothing_once_it_starts() {
    let fake = Fake::with_messages(6);
    fake.acks_always(|| Step::Fail(api_error(503, 15000, Some(Duration::from_secs(20)))));
    let mut stream = consumer(&fake, builder()).stream();
    let mut held = take(&mut stream, 6).await;
    // Three acks are being retried (the server asked for 20 s), three are still held.
    for d in held.drain(..3) {
        drop(d.ack());
    }
    let handle = stream.shutdown_handle();
    handle.stats();
    tokio::time::sleep(ms(100)).await;
    let sent_before = fake.ack_requests();
    assert!(sent_before >= 1);
    let start = Instant::now();
    let report = within(secs(3600), handle.shutdown(ShutdownMode::Abandon)).await;
    assert!(start.elapsed() <= secs(1), "took {:?}", start.elapsed());
    // Long after: nothing more was sent.
    tokio::time::sleep(secs(60)).await;
    assert_eq!(
        fake.ack_requests(),
        sent_before,
        "no request after abandon began"
    );
    assert_eq!(report.pulled, 6);
    assert_eq!(report.abandoned + report.failed_to_settle, 6, "{report:?}");
    assert!(report.is_balanced());
    drop(held);
}
