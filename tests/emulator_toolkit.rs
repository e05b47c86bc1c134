//! The emulator as a testing toolkit: inspection with bodies, delays, attempts and
//! history; wait helpers and their failure messages; fault plans per queue; and one
//! clock, Tokio's, so a test under a paused clock drives the emulator with
//! `tokio::time::advance`.

use cloudflare_queues::emulator::{
    Emulator, Fault, FaultPlan, MessageEventKind, MessageState, SeedMessage,
};
use cloudflare_queues::models::Message;
use cloudflare_queues::{Error, QueueHandle, RetryPolicy, ops};
use serde_json::json;
use std::time::Duration;

async fn pull_queue(emu: &Emulator, name: &str, max_retries: u32) -> QueueHandle {
    let client = emu.client();
    let created = client.queues().create(name).await.unwrap();
    let queue = client.try_queue(created.id()).unwrap();
    queue
        .consumers()
        .create_http_pull()
        .max_retries(max_retries)
        .await
        .unwrap();
    queue
}

fn kinds(events: &[cloudflare_queues::emulator::MessageEvent]) -> Vec<&MessageEventKind> {
    events.iter().map(|e| &e.kind).collect()
}

#[tokio::test]
async fn inspection_returns_bodies_content_types_and_delays() {
    let emu = Emulator::start().await.unwrap();
    let queue = pull_queue(&emu, "published", 3).await;
    queue.send("plain text").await.unwrap();
    queue
        .send(Message::json(&json!({"order": 42})).unwrap())
        .delay(Duration::from_secs(30))
        .await
        .unwrap();
    queue
        .send_batch(["in a batch"])
        .delay(Duration::from_secs(5))
        .await
        .unwrap();
    emu.seed(
        queue.id(),
        [
            SeedMessage::bytes(vec![0, 1, 2, 255]),
            SeedMessage::v8(vec![0xff, 0x0d]).with_delay(Duration::from_secs(2)),
            SeedMessage::json(&json!(["a", 1])).unwrap(),
        ],
    )
    .unwrap();

    let seen = emu.messages(queue.id());
    let summary: Vec<(&str, &[u8], Duration, MessageState)> = seen
        .iter()
        .map(|m| (m.content_type.as_str(), &m.body[..], m.delay, m.state))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "text",
                &b"plain text"[..],
                Duration::ZERO,
                MessageState::Available
            ),
            (
                "json",
                br#"{"order":42}"#,
                Duration::from_secs(30),
                MessageState::Delayed
            ),
            (
                "text",
                b"in a batch",
                Duration::from_secs(5),
                MessageState::Delayed
            ),
            (
                "bytes",
                &[0, 1, 2, 255],
                Duration::ZERO,
                MessageState::Available
            ),
            (
                "v8",
                &[0xff, 0x0d],
                Duration::from_secs(2),
                MessageState::Delayed
            ),
            (
                "json",
                br#"["a",1]"#,
                Duration::ZERO,
                MessageState::Available
            ),
        ]
    );
    assert_eq!(seen[0].text(), Some("plain text"));
    assert_eq!(
        seen[1].json::<serde_json::Value>().unwrap(),
        json!({"order": 42})
    );
    assert!(seen.iter().all(|m| m.published_ms > 0 && m.attempts == 0));
    assert_eq!(
        kinds(&seen[1].history),
        vec![&MessageEventKind::Published {
            delay: Duration::from_secs(30)
        }]
    );
}

#[tokio::test]
async fn inspection_records_attempts_and_history() {
    let emu = Emulator::start().await.unwrap();
    let queue = pull_queue(&emu, "lifecycle", 2).await;
    emu.seed(
        queue.id(),
        (0..3).map(|i| SeedMessage::text(format!("m{i}"))),
    )
    .unwrap();
    let visibility = Duration::from_secs(10);
    let first = queue
        .pull()
        .batch_size(3)
        .visibility_timeout(visibility)
        .await
        .unwrap();
    let lease = |i: usize| first.messages[i].lease_id.clone();
    queue
        .ack()
        .ack(lease(0))
        .retry(lease(1), Some(Duration::ZERO))
        .await
        .unwrap();
    queue.ack().ack(lease(0)).await.unwrap(); // a repeat
    emu.advance(Duration::from_secs(11)); // m2's lease expires
    let second = queue
        .pull()
        .batch_size(3)
        .visibility_timeout(visibility)
        .await
        .unwrap();
    assert_eq!(second.messages.len(), 2);
    emu.advance(Duration::from_secs(11)); // both expire again: out of retries
    let seen = emu.messages(queue.id());

    let leased = |attempt| MessageEventKind::Leased {
        attempt,
        visibility_timeout: visibility,
    };
    let published = MessageEventKind::Published {
        delay: Duration::ZERO,
    };
    assert_eq!(seen[0].state, MessageState::Acked);
    assert_eq!(
        kinds(&seen[0].history),
        vec![
            &published,
            &leased(1),
            &MessageEventKind::Acked,
            &MessageEventKind::AckedAgain
        ]
    );
    assert_eq!(seen[1].attempts, 2);
    assert_eq!(
        kinds(&seen[1].history),
        vec![
            &published,
            &leased(1),
            &MessageEventKind::Retried {
                delay: Duration::ZERO
            },
            &leased(2),
            &MessageEventKind::LeaseExpired,
            &MessageEventKind::Dropped,
        ]
    );
    assert_eq!(
        kinds(&seen[2].history),
        vec![
            &published,
            &leased(1),
            &MessageEventKind::LeaseExpired,
            &leased(2),
            &MessageEventKind::LeaseExpired,
            &MessageEventKind::Dropped,
        ]
    );
    // Times follow the emulator's clock, in order.
    let times: Vec<u64> = seen[2].history.iter().map(|e| e.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[2] - times[1] >= 10_000, "{times:?}");
}

#[tokio::test]
async fn wait_helpers_return_once_the_condition_holds() {
    let emu = Emulator::start().await.unwrap();
    let queue = pull_queue(&emu, "waited", 3).await;
    emu.seed(queue.id(), (0..3).map(|i| SeedMessage::text(i.to_string())))
        .unwrap();
    let worker = {
        let queue = queue.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let batch = queue.pull().batch_size(1).await.unwrap();
                let leases = batch.messages.iter().map(|m| m.lease_id.clone());
                queue.ack().acks(leases).await.unwrap();
            }
        })
    };
    let seen = emu
        .wait_until_acked(queue.id(), 2, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        seen.iter()
            .filter(|m| m.state == MessageState::Acked)
            .count()
            >= 2
    );
    let seen = emu
        .wait_until_empty(queue.id(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(seen.iter().all(|m| m.state == MessageState::Acked));
    worker.await.unwrap();
    let bodies = emu
        .wait_until(queue.id(), Duration::from_secs(1), "three messages", |m| {
            m.len() == 3
        })
        .await
        .unwrap();
    assert_eq!(bodies.len(), 3);
}

#[tokio::test]
async fn a_wait_that_times_out_says_which_queue_and_what_it_saw() {
    let emu = Emulator::start().await.unwrap();
    let queue = pull_queue(&emu, "results", 3).await;
    emu.seed(queue.id(), (0..3).map(|i| SeedMessage::text(i.to_string())))
        .unwrap();
    let leased = queue.pull().batch_size(1).await.unwrap();
    assert_eq!(leased.messages.len(), 1);

    let e = emu
        .wait_until_acked(queue.id(), 5, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(e.queue_id, queue.id());
    assert_eq!(e.queue_name.as_deref(), Some("results"));
    assert_eq!(e.seen.len(), 3);
    assert_eq!(
        e.to_string(),
        format!(
            "timed out after 100ms waiting for 5 acknowledged message(s) in queue `results` ({}): \
             3 message(s), 2 available, 1 leased",
            queue.id()
        )
    );
    let e = emu
        .wait_until_empty(
            "0123456789abcdef0123456789abcdef",
            Duration::from_millis(20),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().ends_with("which does not exist"), "{e}");
    // It is an ordinary error, for `?` in a test returning a `Result`.
    let _: Box<dyn std::error::Error> = Box::new(e);
}

#[tokio::test]
async fn fault_plans_can_target_one_queue() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let jobs = client.queue(client.queues().create("jobs").await.unwrap().id());
    let results = client.queue(client.queues().create("results").await.unwrap().id());
    emu.set_queue_faults(
        results.id(),
        &ops::PUSH_BATCH,
        FaultPlan::always(Fault::Internal),
    );
    // One failure for every queue's batch publish, to see it is not consumed by the
    // requests the results queue's own plan answers.
    emu.set_faults(&ops::PUSH_BATCH, FaultPlan::first(1, Fault::BadGateway));
    let once = RetryPolicy::none();

    for _ in 0..3 {
        let e = results
            .send_batch(["r"])
            .retry_policy(once.clone())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(500), "{e}");
        assert_eq!(e.queue_id(), Some(results.id()));
    }
    results
        .send("single publishes are another operation")
        .await
        .unwrap();
    let e = jobs
        .send_batch(["j"])
        .retry_policy(once.clone())
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(502),
        "the operation-wide plan applies to jobs"
    );
    jobs.send_batch(["j"])
        .retry_policy(once.clone())
        .await
        .unwrap();

    emu.clear_queue_faults(results.id());
    results.send_batch(["r"]).retry_policy(once).await.unwrap();
    assert_eq!(emu.messages(results.id()).len(), 2);
    assert_eq!(emu.messages(jobs.id()).len(), 1);
}

/// One clock: under Tokio's paused clock the emulator's time is Tokio's time, so
/// `tokio::time::advance` expires a lease. A current-thread runtime keeps the emulator's
/// loopback I/O on the test's thread (see the emulator's module docs).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_paused_clock_drives_the_emulator() {
    let emu = Emulator::start().await.unwrap();
    let queue = pull_queue(&emu, "paused", 3).await;
    queue.send("lease me").await.unwrap();
    let visibility = Duration::from_secs(30);
    let first = queue.pull().visibility_timeout(visibility).await.unwrap();
    assert_eq!(first.messages.len(), 1);
    let leased_at = emu.now_ms();

    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(emu.messages(queue.id())[0].state, MessageState::Leased);
    tokio::time::advance(Duration::from_secs(2)).await;
    let seen = emu.messages(queue.id());
    assert_eq!(seen[0].state, MessageState::Available, "{seen:?}");
    assert_eq!(seen[0].expiries, 1);
    let expired_at = seen[0]
        .history
        .iter()
        .find(|e| e.kind == MessageEventKind::LeaseExpired)
        .map(|e| e.at_ms)
        .unwrap();
    assert!(
        expired_at >= leased_at + 30_000,
        "{expired_at} vs {leased_at}"
    );

    let again = queue.pull().await.unwrap();
    assert_eq!(again.messages[0].attempts, 2);
    assert_eq!(again.messages[0].id, first.messages[0].id);

    // The emulator's own advance still works on top.
    let before = emu.now_ms();
    emu.advance(Duration::from_secs(3600));
    assert!(emu.now_ms() >= before + 3_600_000);
}

/// Under a paused clock a wait helper's timeout is virtual time too: a delay of 10
/// minutes elapses at once, in real time.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn wait_helpers_follow_a_paused_clock() {
    let emu = Emulator::start().await.unwrap();
    let queue = pull_queue(&emu, "delayed", 3).await;
    emu.seed(
        queue.id(),
        [SeedMessage::text("later").with_delay(Duration::from_secs(600))],
    )
    .unwrap();
    let real = std::time::Instant::now();
    let virtual_start = tokio::time::Instant::now();
    emu.wait_until(
        queue.id(),
        Duration::from_secs(3600),
        "an available message",
        |m| m.iter().any(|m| m.state == MessageState::Available),
    )
    .await
    .unwrap();
    assert!(virtual_start.elapsed() >= Duration::from_secs(600));
    assert!(
        real.elapsed() < Duration::from_secs(30),
        "{:?}",
        real.elapsed()
    );
}

#[test]
fn seeding_json_that_cannot_be_serialised_is_invalid_input() {
    let mut map = std::collections::HashMap::new();
    map.insert((1, 2), "tuple keys are not JSON");
    let e = SeedMessage::json(&map).unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { ref field, .. } if field == "body"),
        "{e:?}"
    );
}
