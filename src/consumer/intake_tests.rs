//! What a pull hands out: never more than `max_in_flight`, and one malformed entry
//! costs only itself.

use super::fake::Fake;
use super::test_support::{builder, consumer, take, within};
use super::{Outcome, ShutdownMode};
use crate::models::RejectedMessage;
use futures::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn rejected(index: usize, lease_id: Option<&str>) -> RejectedMessage {
    RejectedMessage {
        index,
        id: Some(format!("bad{index}")),
        lease_id: lease_id.map(str::to_owned),
        attempts: Some(2),
        reason: "attempts: invalid value: integer `-1`".into(),
        raw: "{}".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn over_delivery_never_runs_more_handlers_than_max_in_flight() {
    let fake = Fake::with_messages(40);
    fake.over_deliver(5);
    let c = consumer(&fake, builder().max_in_flight(3));
    let handle = c.shutdown_handle();
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let done = Arc::new(AtomicUsize::new(0));
    let run = {
        let (running, most, done) = (running.clone(), most.clone(), done.clone());
        tokio::spawn(c.run(move |_m| {
            let (running, most, done) = (running.clone(), most.clone(), done.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                Outcome::Ack
            }
        }))
    };
    within(secs(600), async {
        while fake.acked().len() < 40 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    within(secs(60), run).await.unwrap().unwrap();
    assert!(
        most.load(Ordering::SeqCst) <= 3,
        "{} handlers at once",
        most.load(Ordering::SeqCst)
    );
    assert_eq!(done.load(Ordering::SeqCst), 40, "each message handled once");
    let stats = handle.stats();
    assert!(stats.over_delivered > 0, "{stats:?}");
    assert_eq!(report.released, stats.over_delivered, "extras are released");
    assert!(report.is_balanced(), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_malformed_entry_with_a_lease_goes_through_the_decode_policy() {
    let fake = Fake::with_messages(3);
    fake.reject_next(rejected(1, Some("lease-bad")));
    fake.reject_next(rejected(4, None));
    let c = consumer(&fake, builder());
    let mut stream = c.stream();
    let good = take(&mut stream, 3).await;
    let bodies: Vec<String> = good
        .iter()
        .map(|d| d.text().unwrap().into_owned())
        .collect();
    assert_eq!(bodies, ["body 0", "body 1", "body 2"]);
    for d in good {
        drop(d.ack());
    }
    let handle = stream.shutdown_handle();
    handle.flush().await;
    // The default policy retries an undecodable message after 60 s, so that
    // `max_retries` eventually dead-letters it: never silently lost.
    assert_eq!(fake.retried(), [("lease-bad".to_owned(), Some(secs(60)))]);
    let stats = handle.stats();
    assert_eq!((stats.decode_errors, stats.unreadable), (1, 1), "{stats:?}");
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    assert_eq!(
        (
            report.pulled,
            report.acked,
            report.retried,
            report.failed_to_settle
        ),
        (5, 3, 1, 1),
        "{report:?}"
    );
    assert!(report.is_balanced());
}

#[tokio::test(start_paused = true)]
async fn a_malformed_entry_can_be_delivered_with_its_error() {
    let fake = Fake::default();
    fake.reject_next(rejected(0, Some("lease-bad")));
    fake.publish(1);
    let c = consumer(
        &fake,
        builder().on_decode_error(super::DecodeErrorPolicy::Deliver),
    );
    let mut stream = c.stream();
    let mut got = take(&mut stream, 2).await;
    let bad = got.remove(1);
    assert_eq!(
        (bad.id(), bad.lease_id(), bad.attempts()),
        ("bad0", "lease-bad", 2)
    );
    let err = bad.text().unwrap_err();
    assert!(err.to_string().contains("attempts: invalid value"), "{err}");
    drop(bad.retry(secs(5)));
    drop(got);
    let handle = stream.shutdown_handle();
    let report = handle.shutdown(ShutdownMode::drain(secs(1))).await;
    assert!(report.is_balanced(), "{report:?}");
    assert!(stream.next().await.is_none());
}
