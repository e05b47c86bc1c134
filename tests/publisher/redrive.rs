//! Redrive against the emulator: refusals, lost responses, a crash midway, bounds,
//! content types and progress.

use super::support::*;
use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan, Latency, MessageState, SeedMessage};
use cloudflare_queues::publisher::RedriveProgress;
use cloudflare_queues::{QueueHandle, ops};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A dead-letter queue (with an HTTP pull consumer, so it can be pulled) holding `n`
/// text messages `m0` … and an empty target.
async fn dlq_and_target(emu: &Emulator, n: usize) -> (QueueHandle, QueueHandle) {
    let dlq = queue(emu, "jobs-dlq", true).await;
    let target = queue(emu, "jobs", false).await;
    emu.seed(dlq.id(), (0..n).map(|i| SeedMessage::text(format!("m{i}"))))
        .unwrap();
    (dlq, target)
}

fn all_acked(emu: &Emulator, q: &QueueHandle) -> bool {
    emu.messages(q.id())
        .iter()
        .all(|m| m.state == MessageState::Acked && m.acks == 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_refusals_every_message_moves_exactly_once() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let (dlq, target) = dlq_and_target(&emu, 600).await;
        let refusals = [
            Fault::RateLimited {
                code: 10250,
                retry_after: Some(Duration::from_millis(10)),
            },
            Fault::Internal,
            Fault::BadGateway,
        ];
        // Pushes: a script, so that refusals surely happen; pulls and acks: at random.
        let [overloaded, internal, bad_gateway] = refusals.clone();
        emu.set_faults(
            &ops::PUSH_BATCH,
            FaultPlan::script([
                Some(overloaded.clone()),
                Some(internal.clone()),
                None,
                Some(bad_gateway),
                Some(overloaded),
                None,
                Some(internal),
            ]),
        );
        emu.set_faults(
            &ops::PULL_MESSAGES,
            FaultPlan::random(0.2, refusals.clone()),
        );
        emu.set_faults(&ops::ACK_MESSAGES, FaultPlan::random(0.2, refusals));
        let report = dlq
            .redrive_to(&target)
            .backoff(fast_backoff())
            .publisher(|p| p.retry_backoff(fast_backoff()).max_messages(50))
            .await
            .unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert!(report.drained && report.is_balanced(), "{report:?}");
        assert_eq!((report.pulled, report.moved), (600, 600));
        assert_eq!(report.possibly_duplicated, 0);
        assert_eq!(report.publisher.rate_limited_responses, 2, "{report:?}");
        assert!(report.publisher.requests >= 12 + 5, "{report:?}");
        assert_eq!(emu.requests(&ops::PUSH_BATCH), report.publisher.requests);
        assert_eq!(copies(&emu.messages(target.id())), once_each(600));
        assert!(all_acked(&emu, &dlq));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_lost_responses_every_message_moves_and_duplicates_are_reported() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let (dlq, target) = dlq_and_target(&emu, 500).await;
        // Stored, then the response lost: the Publisher cannot know, so it resends.
        emu.set_faults(&ops::PUSH_BATCH, FaultPlan::first(3, Fault::LostResponse));
        let report = dlq
            .redrive_to(&target)
            .backoff(fast_backoff())
            .publisher(|p| p.retry_backoff(fast_backoff()))
            .await
            .unwrap();
        assert!(report.error.is_none() && report.is_balanced(), "{report:?}");
        assert_eq!(report.moved, 500);
        assert!(report.possibly_duplicated > 0, "{report:?}");
        let held = copies(&emu.messages(target.id()));
        assert_eq!(held.len(), 500, "every message arrived");
        // Every extra copy is a resend after a lost response, and is reported.
        let extra: usize = held.values().map(|n| n - 1).sum();
        assert_eq!(extra as u64, report.publisher.resent_after_ambiguous);
        let duplicated = held.values().filter(|n| **n > 1).count();
        assert_eq!(
            duplicated as u64, report.possibly_duplicated,
            "each duplicated message reported"
        );
        assert!(all_acked(&emu, &dlq));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_midway_then_a_second_redrive_leaves_nothing_behind() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let (dlq, target) = dlq_and_target(&emu, 1_000).await;
        // A little latency, so that the crash lands midway on any machine.
        emu.set_latency(Latency::fixed(Duration::from_millis(2)));
        let reached = Arc::new(tokio::sync::Notify::new());
        let first = {
            let reached = reached.clone();
            tokio::spawn(
                dlq.redrive_to(&target)
                    .concurrency(2)
                    .batch_size(50)
                    .visibility_timeout(Duration::from_secs(60))
                    .on_progress(move |p| {
                        if p.moved >= 200 {
                            reached.notify_one();
                        }
                    })
                    .into_future(),
            )
        };
        reached.notified().await;
        // The process dies: no more acks; what it leased comes back after its lease.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        // Requests already on the wire when it died are still handled by the server (a
        // pull among them leases messages nobody will see): let them land before
        // looking, so that the lease expiry below covers them too.
        let mut quiet = 0;
        while quiet < 3 {
            let before = emu.total_requests();
            tokio::time::sleep(Duration::from_millis(100)).await;
            quiet = if emu.total_requests() == before {
                quiet + 1
            } else {
                0
            };
        }
        let left_behind = emu
            .messages(dlq.id())
            .iter()
            .filter(|m| m.state != MessageState::Acked)
            .count();
        assert!(left_behind > 0 && left_behind < 1_000, "{left_behind}");
        emu.advance(Duration::from_secs(61));

        emu.set_latency(Latency::default());
        let report = dlq.redrive_to(&target).await.unwrap();
        assert!(report.drained && report.error.is_none(), "{report:?}");
        // What the first run left (an ack already on the wire may still have landed).
        let left_behind = left_behind as u64;
        assert!(
            report.moved <= left_behind && report.moved + 100 >= left_behind,
            "{report:?}"
        );
        assert!(all_acked(&emu, &dlq), "none left behind");
        let held = copies(&emu.messages(target.id()));
        assert_eq!(held.len(), 1_000, "every message arrived at least once");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounds_content_types_unsupported_bodies_and_progress() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let (dlq, target) = dlq_and_target(&emu, 300).await;
        let json = serde_json::json!({"order": 42, "tags": ["a", "b"]});
        emu.seed(
            dlq.id(),
            [
                SeedMessage::json(&json).unwrap(),
                SeedMessage::bytes(vec![1, 2, 3]),
                SeedMessage::v8(vec![0xff]),
            ],
        )
        .unwrap();

        let seen: Arc<Mutex<Vec<RedriveProgress>>> = Arc::default();
        let report = {
            let seen = seen.clone();
            dlq.redrive_to(&target)
                .max_messages(150)
                .on_progress(move |p| seen.lock().unwrap().push(p.clone()))
                .await
                .unwrap()
        };
        assert_eq!((report.pulled, report.moved), (150, 150));
        assert!(!report.drained, "stopped by the bound");
        assert_eq!(emu.messages(target.id()).len(), 150);
        let seen = seen.lock().unwrap().clone();
        assert!(!seen.is_empty());
        assert!(seen.windows(2).all(|w| w[0].moved <= w[1].moved));
        assert_eq!(seen.last().map(|p| p.moved), Some(150));

        let report = dlq.redrive_to(&target).await.unwrap();
        assert!(report.drained && report.is_balanced(), "{report:?}");
        assert_eq!((report.moved, report.skipped), (151, 2));
        let mut expected = once_each(300);
        expected.insert(("json".into(), serde_json::to_string(&json).unwrap()), 1);
        assert_eq!(copies(&emu.messages(target.id())), expected);
        // The bytes and v8 messages stay in the source, out of sight for a while.
        let states: BTreeMap<String, MessageState> = emu
            .messages(dlq.id())
            .into_iter()
            .filter(|m| m.state != MessageState::Acked)
            .map(|m| (m.content_type, m.state))
            .collect();
        assert_eq!(
            states,
            BTreeMap::from([
                ("bytes".into(), MessageState::Delayed),
                ("v8".into(), MessageState::Delayed)
            ])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_for_good_stops_the_redrive_and_releases_the_messages() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let (dlq, target) = dlq_and_target(&emu, 50).await;
        emu.set_faults(
            &ops::PUSH_BATCH,
            FaultPlan::first(
                100,
                Fault::RateLimited {
                    code: 10252,
                    retry_after: None,
                },
            ),
        );
        let report = dlq.redrive_to(&target).await.unwrap();
        assert_eq!(
            report
                .error
                .as_ref()
                .and_then(cloudflare_queues::Error::code),
            Some(cloudflare_queues::ErrorCode::QueueDisabled)
        );
        assert_eq!((report.moved, report.failed), (0, 50));
        assert!(report.is_balanced());
        assert!(emu.messages(target.id()).is_empty());
        // Released, not lost: available again in the source.
        assert!(
            emu.messages(dlq.id())
                .iter()
                .all(|m| m.state == MessageState::Available && m.acks == 0)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_checked_before_anything_is_sent() {
    bounded(async {
        let emu = Emulator::start().await.unwrap();
        let (dlq, target) = dlq_and_target(&emu, 5).await;
        for (redrive, field) in [
            (dlq.redrive_to(&dlq), "target"),
            (dlq.redrive_to(&target).batch_size(0), "batch_size"),
            (dlq.redrive_to(&target).batch_size(101), "batch_size"),
            (dlq.redrive_to(&target).concurrency(0), "concurrency"),
            (
                dlq.redrive_to(&target).visibility_timeout(Duration::ZERO),
                "visibility_timeout",
            ),
            (
                dlq.redrive_to(&target).publisher(|p| p.max_messages(0)),
                "max_messages",
            ),
        ] {
            match redrive.await {
                Err(cloudflare_queues::Error::InvalidInput { field: f, .. }) => {
                    assert_eq!(f, field)
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(emu.requests(&ops::PULL_MESSAGES), 0);
    })
    .await;
}
