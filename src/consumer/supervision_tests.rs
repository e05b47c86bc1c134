//! A background task that dies never looks healthy: the stream ends with a typed error,
//! `flush` and `shutdown` return, and the report still adds up.

use super::fake::{Fake, Step};
use super::test_support::{builder, consumer, take, within};
use super::{ConsumerState, ShutdownMode};
use crate::error::Error;
use futures::StreamExt as _;
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn failed_task(item: Option<crate::Result<super::Delivery>>) -> &'static str {
    match item {
        Some(Err(Error::ConsumerFailed { task, reason })) => {
            assert!(reason.contains("fail point"), "{reason}");
            task
        }
        other => panic!("expected a task failure, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_puller_ends_the_stream_with_a_typed_error_and_the_report_balances() {
    let fake = Fake::with_messages(5);
    let c = consumer(&fake, builder());
    let core = c.engine.core.clone();
    let mut stream = c.stream();
    let held = take(&mut stream, 5).await;

    // The puller is polling the now-empty queue; its next turn panics.
    *core.fail_at.lock().unwrap() = Some("puller");
    let item = within(secs(60), stream.next()).await;
    assert_eq!(failed_task(item), "puller");
    assert!(
        within(secs(60), stream.next()).await.is_none(),
        "ends after the error"
    );
    assert_eq!(core.state(), ConsumerState::Failed, "never looks healthy");

    // What was handed out can still be settled.
    for d in held {
        drop(d.ack());
    }
    let handle = stream.shutdown_handle();
    within(secs(60), handle.flush()).await;
    let report = within(secs(60), handle.shutdown(ShutdownMode::drain(secs(1)))).await;
    assert_eq!((report.pulled, report.acked), (5, 5), "{report:?}");
    assert!(report.is_balanced());
    assert_eq!(fake.acked().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_flusher_counts_what_it_held_and_ends_the_stream() {
    let fake = Fake::with_messages(3);
    let c = consumer(&fake, builder());
    let core = c.engine.core.clone();
    let mut stream = c.stream();
    let mut held = take(&mut stream, 3).await;

    *core.fail_at.lock().unwrap() = Some("flusher");
    // The flusher wakes for this settlement and dies holding it.
    let first = held.remove(0).ack();
    assert!(matches!(
        within(secs(60), first.confirmed()).await,
        Err(Error::ConsumerClosed)
    ));
    assert_eq!(
        failed_task(within(secs(60), stream.next()).await),
        "flusher"
    );

    let handle = stream.shutdown_handle();
    within(secs(60), handle.flush()).await;
    // Settling after the flusher died fails at once instead of waiting forever.
    let second = held.remove(0).ack();
    assert!(within(secs(60), second.confirmed()).await.is_err());
    // The last one is still held: shutdown releases it, which cannot be sent either.
    let report = within(secs(60), handle.shutdown(ShutdownMode::drain(secs(1)))).await;
    assert_eq!(
        (report.pulled, report.acked, report.failed_to_settle),
        (3, 0, 3),
        "{report:?}"
    );
    assert!(report.is_balanced());
    assert_eq!(fake.ack_requests(), 0);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_ack_request_counts_its_entries_as_not_settled_and_the_rest_goes_on() {
    let fake = Fake::with_messages(2);
    fake.script_acks([Step::Panic]);
    let c = consumer(&fake, builder());
    let mut stream = c.stream();
    let mut held = take(&mut stream, 2).await;
    let handle = stream.shutdown_handle();

    let first = held.remove(0).ack();
    handle.flush().await;
    assert!(
        within(secs(60), first.confirmed()).await.is_err(),
        "not confirmed"
    );
    let second = held.remove(0).ack();
    handle.flush().await;
    assert!(
        within(secs(60), second.confirmed()).await.is_ok(),
        "the flusher lives on"
    );
    assert_ne!(handle.stats().state, ConsumerState::Failed);

    let report = within(secs(60), handle.shutdown(ShutdownMode::drain(secs(1)))).await;
    assert_eq!(
        (report.acked, report.failed_to_settle),
        (1, 1),
        "{report:?}"
    );
    assert!(report.is_balanced());
}

#[tokio::test(start_paused = true)]
async fn run_returns_the_task_failure_after_shutting_down() {
    let fake = Fake::with_messages(4);
    let c = consumer(&fake, builder().shutdown_mode(ShutdownMode::drain(secs(1))));
    let core = c.engine.core.clone();
    let handled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = handled.clone();
    let run = tokio::spawn(c.run(move |_m| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            super::Outcome::Ack
        }
    }));
    while handled.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    *core.fail_at.lock().unwrap() = Some("puller");
    let result = within(secs(60), run).await.unwrap();
    assert!(
        matches!(result, Err(Error::ConsumerFailed { task: "puller", .. })),
        "{result:?}"
    );
    assert_eq!(fake.acked().len(), 4, "handled work was still acknowledged");
    assert_eq!(core.state(), ConsumerState::Stopped);
}
