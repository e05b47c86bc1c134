//! Handlers that fail: an `Err` or a panic is logged once and retried after a backoff
//! that grows with the message's attempts; an explicit retry keeps the server-side delay;
//! stream users settle with the same semantics.

use super::fake::Fake;
use super::test_support::{builder, consumer, take, within};
use super::{Outcome, ShutdownMode};
use crate::Backoff;
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The default: 10 s doubling to 10 min, 25 % jitter.
fn default_backoff() -> Backoff {
    Backoff::new(secs(10), secs(600))
}

#[tokio::test(start_paused = true)]
async fn a_failing_handler_backs_off_more_with_each_attempt() {
    let fake = Fake::with_messages(1);
    let c = consumer(&fake, builder().handler_backoff(default_backoff()));
    let handle = c.shutdown_handle();
    let run = tokio::spawn(
        c.run(|m| async move { Err::<(), _>(format!("attempt {} failed", m.attempts())) }),
    );
    // The fake redelivers a retried message at once; the delay asked for is what counts.
    within(secs(60), async {
        while fake.retried().len() < 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    handle.shutdown(ShutdownMode::drain(secs(1))).await;
    run.await.unwrap().unwrap();
    let delays: Vec<Duration> = fake
        .retried()
        .iter()
        .take(4)
        .map(|(_, d)| d.expect("a client-side delay, not the server's retry_delay"))
        .collect();
    for (i, d) in delays.iter().enumerate() {
        let attempt = u32::try_from(i).unwrap() + 1;
        let full = default_backoff().delay(attempt, 0.0);
        assert!(
            *d <= full && *d >= full.mul_f64(0.75),
            "attempt {attempt}: {d:?} not within 75-100 % of {full:?}"
        );
    }
    assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_retried_with_the_backoff_not_released() {
    let fake = Fake::with_messages(1);
    let c = consumer(&fake, builder().handler_backoff(default_backoff()));
    let handle = c.shutdown_handle();
    let run = tokio::spawn(c.run(|_m| async move {
        if true {
            panic!("handler bug");
        }
        Outcome::Ack
    }));
    within(secs(60), async {
        while fake.retried().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    run.await.unwrap().unwrap();
    let (_, delay) = fake.retried()[0].clone();
    assert!(delay.is_some_and(|d| d >= secs(7)), "{delay:?}");
    assert_eq!(report.released, 0, "{report:?}");
}

/// The handler is called when its worker queues it, outside any poll: a panic there
/// must be caught like one inside the future, not take the worker down.
#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_before_returning_its_future_is_retried() {
    let fake = Fake::with_messages(2);
    let c = consumer(&fake, builder().handler_backoff(default_backoff()));
    let handle = c.shutdown_handle();
    let run = tokio::spawn(c.run(|m| {
        assert!(m.attempts() > 1, "handler bug before the future");
        async { Outcome::Ack }
    }));
    within(secs(60), async {
        while fake.retried().len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    run.await.unwrap().unwrap();
    assert!(
        fake.retried()
            .iter()
            .all(|(_, d)| d.is_some_and(|d| d >= secs(7))),
        "{:?}",
        fake.retried()
    );
    assert_eq!((report.released, report.retried), (0, 2), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn an_explicit_retry_keeps_the_consumers_server_side_delay() {
    let fake = Fake::with_messages(1);
    let c = consumer(&fake, builder());
    let handle = c.shutdown_handle();
    let run = tokio::spawn(c.run(|_m| async { Outcome::retry() }));
    within(secs(60), async {
        while fake.retried().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    handle.shutdown(ShutdownMode::drain(secs(1))).await;
    run.await.unwrap().unwrap();
    assert_eq!(
        fake.retried()[0].1,
        None,
        "no delay: the server's retry_delay applies"
    );
}

#[tokio::test(start_paused = true)]
async fn stream_users_settle_with_an_outcome_or_an_error() {
    let fake = Fake::with_messages(3);
    let c = consumer(&fake, builder().handler_backoff(default_backoff()));
    let mut stream = c.stream();
    let mut got = take(&mut stream, 3).await;
    drop(got.remove(0).settle(Outcome::Release));
    drop(got.remove(0).settle(Ok::<(), String>(())));
    drop(got.remove(0).settle(Err::<(), _>("bad input")));
    let handle = stream.shutdown_handle();
    handle.flush().await;
    let retried = fake.retried();
    assert_eq!(retried.len(), 2, "{retried:?}");
    assert_eq!(retried[0].1, Some(Duration::ZERO), "release");
    assert!(
        retried[1]
            .1
            .is_some_and(|d| d >= Duration::from_millis(7500)),
        "backoff"
    );
    assert_eq!(fake.acked().len(), 1);
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    assert_eq!((report.acked, report.released, report.retried), (1, 1, 1));
}
