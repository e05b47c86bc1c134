//! The publisher's batching, flow control, throttle and rate limit under Tokio's paused
//! clock, against an in-memory fake that records every batch request.

use super::pusher::Pusher;
use super::*;
use crate::error::{ApiError, ErrorCode, ErrorDetail};
use crate::retry::Backoff;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What the fake answers one request with.
#[derive(Debug, Clone)]
enum Answer {
    Stored,
    Api {
        status: u16,
        code: u32,
        retry_after: Option<Duration>,
    },
    /// A success whose body cannot be read: the outcome is unknown.
    Unreadable,
}

fn refused(status: u16, code: u32, retry_after: Option<Duration>) -> Answer {
    Answer::Api {
        status,
        code,
        retry_after,
    }
}

#[derive(Debug)]
struct Request {
    lane: usize,
    at: Instant,
    bytes: usize,
    bodies: Vec<serde_json::Value>,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    script: VecDeque<Answer>,
    /// Refuse (400) any batch holding a message with this text body.
    poison: Option<String>,
    in_flight: usize,
    max_in_flight: usize,
}

/// Records batches; answers from a script (then `Stored`) after `latency`.
#[derive(Debug)]
struct Fake {
    latency: Duration,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn new(latency: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            latency,
            state: Arc::default(),
        })
    }

    fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Messages per request, in order.
    fn sizes(&self) -> Vec<usize> {
        self.with(|s| s.requests.iter().map(|r| r.bodies.len()).collect())
    }

    /// Every message body sent, in order, resends included.
    fn bodies(&self) -> Vec<serde_json::Value> {
        self.with(|s| {
            s.requests
                .iter()
                .flat_map(|r| r.bodies.iter().map(|m| m["body"].clone()))
                .collect()
        })
    }
}

fn api_error(status: u16, code: u32, retry_after: Option<Duration>) -> Error {
    Error::Api(Box::new(ApiError {
        status,
        errors: vec![ErrorDetail::new(ErrorCode::from_u32(code), "fake")],
        messages: Vec::new(),
        ray_id: None,
        retry_after,
        raw_body: None,
        request: crate::error::RequestLabel::new(
            crate::ops::PUSH_BATCH.method.clone(),
            crate::ops::PUSH_BATCH.path,
        ),
        attempts: 1,
    }))
}

fn unreadable() -> Error {
    let source = serde_json::from_str::<u8>("x").unwrap_err();
    Error::Decode(Box::new(crate::error::DecodeError {
        request: crate::error::RequestLabel::new(
            crate::ops::PUSH_BATCH.method.clone(),
            crate::ops::PUSH_BATCH.path,
        ),
        status: 200,
        path: ".".into(),
        body_snippet: String::new(),
        attempts: 1,
        source,
    }))
}

impl Pusher for Fake {
    fn push(&self, lane: usize, body: Bytes) -> BoxFuture<'static, Result<()>> {
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let bodies = request["messages"].as_array().unwrap().clone();
        let answer = self.with(|s| {
            let poisoned = s
                .poison
                .as_ref()
                .is_some_and(|p| bodies.iter().any(|m| m["body"] == **p));
            s.requests.push(Request {
                lane,
                at: Instant::now(),
                bytes: body.len(),
                bodies,
            });
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            if poisoned {
                refused(400, 10204, None)
            } else {
                s.script.pop_front().unwrap_or(Answer::Stored)
            }
        });
        let (latency, state) = (self.latency, self.state.clone());
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            state.lock().unwrap().in_flight -= 1;
            match answer {
                Answer::Stored => Ok(()),
                Answer::Api {
                    status,
                    code,
                    retry_after,
                } => Err(api_error(status, code, retry_after)),
                Answer::Unreadable => Err(unreadable()),
            }
        })
    }
}

fn client() -> crate::Client {
    crate::Client::builder()
        .api_token("t")
        .account_id("a")
        .base_url("http://127.0.0.1:9/client/v4")
        .build()
        .unwrap()
}

/// A builder for `lanes` queues with test-sized backoffs.
fn builder(lanes: usize) -> PublisherBuilder {
    let ids: Vec<String> = (0..lanes).map(|i| format!("queue{i}")).collect();
    client().publisher_for(ids).retry_backoff(
        Backoff::new(Duration::from_millis(10), Duration::from_millis(100)).jitter(0.0),
    )
}

/// A message's length as a batch body carries it.
fn encoded_len(message: &Message) -> usize {
    let mut out = Vec::new();
    crate::api::encode_message_into(message, &mut out).unwrap();
    out.len()
}

fn text(i: usize) -> Message {
    Message::text(format!("m{i}"))
}

async fn publish_all(p: &Publisher, n: usize) -> Vec<Result<Published>> {
    let futures: Vec<_> = (0..n).map(|i| p.publish(text(i))).collect();
    futures::future::join_all(futures).await
}

#[tokio::test(start_paused = true)]
async fn batches_split_by_count_and_the_remainder_by_delay() {
    let fake = Fake::new(Duration::from_millis(50));
    let p = builder(1).build_with(fake.clone()).unwrap();
    let started = Instant::now();
    let results = publish_all(&p, 250).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fake.sizes(), vec![100, 100, 50]);
    let times: Vec<Duration> = fake.with(|s| s.requests.iter().map(|r| r.at - started).collect());
    assert_eq!(times[0], Duration::ZERO, "a full batch goes at once");
    assert_eq!(times[1], Duration::ZERO);
    assert_eq!(
        times[2],
        Duration::from_millis(10),
        "the rest waits max_delay"
    );
    // Order is kept.
    let expected: Vec<serde_json::Value> = (0..250).map(|i| format!("m{i}").into()).collect();
    assert_eq!(fake.bodies(), expected);
    let report = p.shutdown().await;
    assert_eq!(
        (report.accepted, report.published, report.failed),
        (250, 250, 0)
    );
    assert_eq!(report.requests, 3);
    assert!((report.mean_batch_size - 250.0 / 3.0).abs() < 1e-9);
    assert!(report.is_balanced());
}

#[tokio::test(start_paused = true)]
async fn max_delay_counts_from_a_batch_first_message() {
    let fake = Fake::new(Duration::from_millis(1));
    let p = builder(1)
        .max_delay(Duration::from_millis(20))
        .build_with(fake.clone())
        .unwrap();
    let started = Instant::now();
    let first: Vec<_> = (0..3).map(|i| p.publish(text(i))).collect();
    tokio::time::sleep(Duration::from_millis(15)).await;
    let second: Vec<_> = (3..5).map(|i| p.publish(text(i))).collect();
    tokio::time::sleep(Duration::from_millis(15)).await;
    let third = p.publish(text(5));
    futures::future::join_all(first.into_iter().chain(second).chain([third])).await;
    let log: Vec<(usize, Duration)> = fake.with(|s| {
        s.requests
            .iter()
            .map(|r| (r.bodies.len(), r.at - started))
            .collect()
    });
    assert_eq!(
        log,
        vec![
            (5, Duration::from_millis(20)),
            (1, Duration::from_millis(50))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn batches_split_by_encoded_bytes_escapes_included() {
    let fake = Fake::new(Duration::from_millis(1));
    let max_bytes = 1_000;
    let p = builder(1)
        .max_bytes(max_bytes)
        .build_with(fake.clone())
        .unwrap();
    // 150 quote characters: 150 bytes of body, 300 once escaped in JSON.
    let quoted = || Message::text("\"".repeat(150));
    let futures: Vec<_> = (0..10).map(|_| p.publish(quoted())).collect();
    for r in futures::future::join_all(futures).await {
        r.unwrap();
    }
    let one = encoded_len(&quoted());
    assert_eq!(one, 300 + 2 + r#"{"body":,"content_type":"text"}"#.len());
    // 15 + 3 * 334 + 2 = 1019 > 1000: two messages per request, although raw sizes
    // (150 each) would have allowed six.
    let per_request = (max_bytes - 15 + 1) / (one + 1);
    assert_eq!(per_request, 2);
    assert_eq!(fake.sizes(), vec![2; 5]);
    fake.with(|s| {
        for r in &s.requests {
            assert_eq!(r.bytes, crate::api::batch_request_len(2, 2 * one));
            assert!(r.bytes <= max_bytes);
        }
    });
}

#[tokio::test(start_paused = true)]
async fn oversized_messages_are_refused_before_anything_is_sent() {
    let fake = Fake::new(Duration::from_millis(1));
    let p = builder(1)
        .max_bytes(1_000)
        .build_with(fake.clone())
        .unwrap();
    let err = p
        .publish(Message::text("x".repeat(128_001)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, reason } if field == "message" && reason.contains("128000")),
        "{err}"
    );
    // Within 128 KB, but its encoding alone exceeds this publisher's max_bytes.
    let err = p
        .publish(Message::text("\n".repeat(600)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { reason, .. } if reason.contains("max_bytes")),
        "{err}"
    );
    let err = p
        .try_publish(Message::text("ok").with_delay(Duration::from_secs(86_401)))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    p.flush().await;
    assert!(fake.sizes().is_empty(), "nothing was sent");
    assert_eq!(p.stats().accepted, 0);
}

#[tokio::test(start_paused = true)]
async fn content_types_and_delays_are_kept_per_message() {
    let fake = Fake::new(Duration::from_millis(1));
    let p = builder(1).build_with(fake.clone()).unwrap();
    let a = p.publish(Message::text("plain"));
    let b = p.publish(
        Message::json_value(serde_json::json!({"order": 7})).with_delay(Duration::from_secs(30)),
    );
    let c = p.publish(Message::text("later").with_delay(Duration::from_secs(5)));
    for r in futures::future::join_all([a, b, c]).await {
        r.unwrap();
    }
    let sent = fake.with(|s| s.requests[0].bodies.clone());
    assert_eq!(
        sent,
        vec![
            serde_json::json!({"body": "plain", "content_type": "text"}),
            serde_json::json!({"body": {"order": 7}, "content_type": "json", "delay_seconds": 30}),
            serde_json::json!({"body": "later", "content_type": "text", "delay_seconds": 5}),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn requests_in_flight_are_capped() {
    let fake = Fake::new(Duration::from_millis(100));
    let p = builder(1)
        .max_concurrent_requests(4)
        .build_with(fake.clone())
        .unwrap();
    let started = Instant::now();
    assert!(publish_all(&p, 2_000).await.iter().all(Result::is_ok));
    assert_eq!(fake.sizes(), vec![100; 20]);
    assert_eq!(fake.with(|s| s.max_in_flight), 4);
    // Five waves of four requests, 100 ms each.
    assert_eq!(started.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn publish_waits_and_try_publish_is_refused_at_the_message_limit() {
    let fake = Fake::new(Duration::from_millis(100));
    let p = builder(1)
        .max_outstanding_messages(150)
        .build_with(fake.clone())
        .unwrap();
    let held: Vec<_> = (0..150).map(|i| p.publish(text(i))).collect();
    assert_eq!(p.stats().outstanding_messages, 150);
    let err = p.try_publish(text(150)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PublisherFull {
                max_messages: 150,
                ..
            }
        ),
        "{err}"
    );
    // `publish` waits instead, and goes once the first batch (100) is answered.
    let started = Instant::now();
    let waiting = p.publish(text(151));
    let (late, early) = tokio::join!(waiting, futures::future::join_all(held));
    assert!(early.iter().all(Result::is_ok));
    late.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    // The refused message was never sent; the waiting one was, after the first 150.
    let bodies = fake.bodies();
    assert_eq!(bodies.len(), 151);
    assert_eq!(bodies[150], "m151");
    assert!(!bodies.contains(&"m150".into()));
    assert_eq!(p.stats().outstanding_messages, 0);
}

#[tokio::test(start_paused = true)]
async fn flow_control_counts_encoded_bytes() {
    let fake = Fake::new(Duration::from_millis(100));
    let p = builder(1)
        .max_bytes(1_000)
        .max_outstanding_bytes(1_000)
        .build_with(fake.clone())
        .unwrap();
    let big = || Message::text("x".repeat(400));
    let size = encoded_len(&big()) as u64;
    let a = p.try_publish(big()).unwrap();
    let b = p.try_publish(big()).unwrap();
    assert_eq!(p.stats().outstanding_bytes, 2 * size);
    assert!(matches!(
        p.try_publish(big()),
        Err(Error::PublisherFull {
            max_bytes: 1_000,
            ..
        })
    ));
    // A small one still fits in what is left.
    let c = p.try_publish(Message::text("small")).unwrap();
    for r in futures::future::join_all([a, b, c]).await {
        r.unwrap();
    }
    assert_eq!(p.stats().outstanding_bytes, 0);
    assert!(p.try_publish(big()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_pauses_every_batch_until_retry_after_and_loses_nothing() {
    let fake = Fake::new(Duration::from_millis(10));
    // The first two requests are refused with 10250 and a 1 s Retry-After.
    let storm = refused(429, 10250, Some(Duration::from_secs(1)));
    fake.script([storm.clone(), storm]);
    let p = builder(1)
        .max_concurrent_requests(2)
        .build_with(fake.clone())
        .unwrap();
    let started = Instant::now();
    let results = publish_all(&p, 400).await;
    assert!(results.iter().all(Result::is_ok));
    let log: Vec<Duration> = fake.with(|s| s.requests.iter().map(|r| r.at - started).collect());
    // Two refused at 0; nothing at all is sent while the throttle holds (1 s from the
    // 429 at 10 ms, plus at most a fifth of it as spread).
    assert_eq!(&log[..2], &[Duration::ZERO, Duration::ZERO]);
    assert!(log[2] >= Duration::from_millis(1_010), "{log:?}");
    assert!(log[2] <= Duration::from_millis(1_210), "{log:?}");
    // Each message stored exactly once: 200 refused + 400 accepted sends.
    let bodies = fake.bodies();
    assert_eq!(bodies.len(), 600);
    let mut accepted: Vec<_> = fake.with(|s| {
        s.requests[2..]
            .iter()
            .flat_map(|r| r.bodies.iter().map(|m| m["body"].to_string()))
            .collect()
    });
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), 400);
    let report = p.shutdown().await;
    assert_eq!(report.published, 400);
    assert_eq!(report.possibly_duplicated, 0, "a 429 stored nothing");
    assert_eq!(report.rate_limited_responses, 2);
    assert!(
        report.time_throttled >= Duration::from_secs(1),
        "{report:?}"
    );
    assert!(
        report.time_throttled < Duration::from_millis(1_100),
        "{report:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn hard_limits_fail_the_batch_with_their_typed_errors() {
    for (code, expected) in [
        (10251, ErrorCode::QueueStorageLimitExceeded),
        (10252, ErrorCode::QueueDisabled),
        (10253, ErrorCode::FreeTierLimitExceeded),
    ] {
        let fake = Fake::new(Duration::from_millis(1));
        fake.script([refused(429, code, Some(Duration::from_secs(1)))]);
        let p = builder(1).build_with(fake.clone()).unwrap();
        for r in publish_all(&p, 3).await {
            let err = r.unwrap_err();
            assert!(matches!(err, Error::Api(_)), "{err}");
            assert_eq!(err.code(), Some(expected));
        }
        let report = p.shutdown().await;
        assert_eq!((report.failed, report.requests), (3, 1), "never sent again");
        assert!(report.is_balanced());
    }
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_sent_again_and_said_possibly_duplicated() {
    let fake = Fake::new(Duration::from_millis(1));
    fake.script([Answer::Unreadable]);
    let p = builder(1).build_with(fake.clone()).unwrap();
    for r in publish_all(&p, 3).await {
        let published = r.unwrap();
        assert!(published.possibly_duplicated());
        assert_eq!(published.attempts(), 2);
        assert_eq!(published.queue_id(), "queue0");
    }
    assert_eq!(fake.sizes(), vec![3, 3]);
    let stats = p.stats();
    assert_eq!(stats.ambiguous_responses, 1);
    assert_eq!(stats.resent_after_ambiguous, 3);
    assert_eq!(stats.possibly_duplicated, 3);
}

#[tokio::test(start_paused = true)]
async fn at_most_once_reports_an_unknown_outcome_instead() {
    let fake = Fake::new(Duration::from_millis(1));
    fake.script([Answer::Unreadable]);
    let p = builder(1).at_most_once().build_with(fake.clone()).unwrap();
    for r in publish_all(&p, 3).await {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::MaybeStored { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("the message may have been stored")
        );
    }
    assert_eq!(fake.sizes(), vec![3], "not sent again");
    let report = p.shutdown().await;
    assert_eq!((report.published, report.failed), (0, 3));
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_is_split_to_isolate_the_bad_message() {
    let fake = Fake::new(Duration::from_millis(1));
    fake.with(|s| s.poison = Some("m5".into()));
    let p = builder(1).build_with(fake.clone()).unwrap();
    let results = publish_all(&p, 8).await;
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert_eq!(
                r.as_ref().unwrap_err().code(),
                Some(ErrorCode::MessageSizeOutOfBounds)
            );
        } else {
            assert!(r.is_ok(), "m{i}: {r:?}");
        }
    }
    // Depth first: 8 refused → m0-3 stored, m4-7 refused → m4-5 refused → m4 stored,
    // m5 refused alone (fails) → m6-7 stored.
    assert_eq!(fake.sizes(), vec![8, 4, 4, 2, 1, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_until_give_up_after() {
    let fake = Fake::new(Duration::from_millis(1));
    fake.script(std::iter::repeat_n(refused(500, 15000, None), 1_000));
    let p = builder(1)
        .give_up_after(Duration::from_secs(2))
        .build_with(fake.clone())
        .unwrap();
    let started = Instant::now();
    let err = p.publish("x").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownInternalError));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2_200),
        "{waited:?}"
    );
    // 100 ms backoff cap: about 20 attempts.
    let attempts = fake.sizes().len();
    assert!((18..=25).contains(&attempts), "{attempts}");
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_batches() {
    let fake = Fake::new(Duration::from_millis(1));
    let p = builder(1)
        .rate_limit(1_000)
        .build_with(fake.clone())
        .unwrap();
    let started = Instant::now();
    assert!(publish_all(&p, 3_000).await.iter().all(Result::is_ok));
    let log: Vec<(usize, Duration)> = fake.with(|s| {
        s.requests
            .iter()
            .map(|r| (r.bodies.len(), r.at - started))
            .collect()
    });
    // Over any prefix, messages sent by time t stay within the burst (100) + 1000 t.
    let mut sent = 0;
    for (n, at) in &log {
        sent += n;
        let allowed = 100.0 + 1000.0 * at.as_secs_f64() + 1e-6;
        #[allow(clippy::cast_precision_loss)]
        let sent_f = sent as f64;
        assert!(sent_f <= allowed, "{sent} sent by {at:?}");
    }
    assert_eq!(sent, 3_000);
    assert!(started.elapsed() >= Duration::from_millis(2_900));
    // Contrast: without the limit, the same work takes one request round.
    let fast = Fake::new(Duration::from_millis(1));
    let q = builder(1).build_with(fast.clone()).unwrap();
    let started = Instant::now();
    publish_all(&q, 3_000).await;
    assert!(started.elapsed() < Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_small_rate_limit_caps_the_batch_size() {
    let fake = Fake::new(Duration::from_millis(1));
    let p = builder(1).rate_limit(20).build_with(fake.clone()).unwrap();
    publish_all(&p, 50).await;
    let mut sizes = fake.sizes();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![10, 20, 20]);
}

#[tokio::test(start_paused = true)]
async fn flush_sends_partial_batches_at_once_and_waits_for_them() {
    let fake = Fake::new(Duration::from_millis(30));
    let p = builder(1)
        .max_delay(Duration::from_secs(3600))
        .build_with(fake.clone())
        .unwrap();
    let started = Instant::now();
    let pending: Vec<_> = (0..5).map(|i| p.publish(text(i))).collect();
    p.flush().await;
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    assert_eq!(p.stats().published, 5);
    // Their futures are already resolved.
    for r in futures::future::join_all(pending).await {
        r.unwrap();
    }
    // A flush with nothing pending returns at once.
    let started = Instant::now();
    p.flush().await;
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn shutdown_delivers_everything_then_refuses_new_messages() {
    let fake = Fake::new(Duration::from_millis(20));
    let p = builder(1)
        .max_delay(Duration::from_secs(3600))
        .max_outstanding_messages(10)
        .build_with(fake.clone())
        .unwrap();
    let accepted: Vec<_> = (0..10).map(|i| p.publish(text(i))).collect();
    // This one waits for room; shutdown tells it the publisher closed.
    let waiting = tokio::spawn(p.publish(text(10)));
    tokio::task::yield_now().await;
    let other = p.clone();
    let report = p.shutdown().await;
    assert_eq!(
        (report.accepted, report.published, report.failed),
        (10, 10, 0)
    );
    assert!(report.is_balanced());
    assert_eq!(
        other.shutdown().await,
        report,
        "every caller gets the same report"
    );
    for r in futures::future::join_all(accepted).await {
        r.unwrap();
    }
    assert!(matches!(
        waiting.await.unwrap(),
        Err(Error::PublisherClosed)
    ));
    assert!(matches!(
        p.publish("late").await,
        Err(Error::PublisherClosed)
    ));
    assert!(matches!(p.try_publish("late"), Err(Error::PublisherClosed)));
    assert_eq!(fake.bodies().len(), 10);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_still_sends_what_was_accepted() {
    let fake = Fake::new(Duration::from_millis(20));
    let p = builder(1)
        .max_delay(Duration::from_secs(3600))
        .build_with(fake.clone())
        .unwrap();
    let results: Vec<_> = (0..7).map(|i| p.publish(text(i))).collect();
    drop(results);
    drop(p);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.sizes(), vec![7]);
}

#[tokio::test(start_paused = true)]
async fn sharded_batches_go_round_robin_skipping_a_throttled_queue() {
    let fake = Fake::new(Duration::from_millis(10));
    let p = builder(3).build_with(fake.clone()).unwrap();
    assert_eq!(p.queue_ids(), vec!["queue0", "queue1", "queue2"]);
    publish_all(&p, 600).await;
    let lanes: Vec<usize> = fake.with(|s| s.requests.iter().map(|r| r.lane).collect());
    assert_eq!(lanes, vec![0, 1, 2, 0, 1, 2]);
    // Queue 1 answers 429 with a 1 s Retry-After: its batch waits and goes to it again,
    // while the next batches go to the open queues (2, 0, then 2 again, skipping 1).
    fake.script([
        Answer::Stored,
        refused(429, 10250, Some(Duration::from_secs(1))),
    ]);
    let second: Vec<_> = (0..200).map(|i| p.publish(text(i))).collect();
    let second = tokio::spawn(futures::future::join_all(second));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    publish_all(&p, 300).await;
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "not held by queue 1"
    );
    let lanes: Vec<usize> = fake.with(|s| s.requests[6..].iter().map(|r| r.lane).collect());
    assert_eq!(lanes, vec![0, 1, 2, 0, 2]);
    let stored_in: Vec<String> = second
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().queue_id().to_owned())
        .collect();
    assert!(stored_in[..100].iter().all(|q| q == "queue0"));
    assert!(
        stored_in[100..].iter().all(|q| q == "queue1"),
        "resent to its own queue"
    );
    assert_eq!(fake.with(|s| s.requests.last().map(|r| r.lane)), Some(1));
}

#[tokio::test]
async fn settings_are_checked() {
    let q = client().queue("q");
    for (b, field) in [
        (q.publisher().max_messages(0), "max_messages"),
        (q.publisher().max_messages(101), "max_messages"),
        (q.publisher().max_bytes(256_001), "max_bytes"),
        (q.publisher().max_bytes(99), "max_bytes"),
        (
            q.publisher().max_concurrent_requests(0),
            "max_concurrent_requests",
        ),
        (
            q.publisher().max_outstanding_messages(0),
            "max_outstanding_messages",
        ),
        (
            q.publisher().max_outstanding_bytes(1_000),
            "max_outstanding_bytes",
        ),
        (q.publisher().rate_limit(0), "rate_limit"),
        (q.publisher().give_up_after(Duration::ZERO), "give_up_after"),
        (client().publisher_for(Vec::<String>::new()), "queues"),
        (client().publisher_for([" "]), "queues[0]"),
    ] {
        match b.build() {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    let err = client().queue("q").publisher().build().unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// Publishes one message in a runtime that is then dropped, the task having run once
/// (`let_task_run`) or never; returns how the caller's future ends.
fn outcome_when_the_runtime_goes_away(let_task_run: bool) -> (Result<Published>, Publisher) {
    let fake = Fake::new(Duration::from_millis(1));
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (p, pending) = first.block_on(async {
        let p = builder(1)
            .max_delay(Duration::from_secs(3600))
            .build_with(fake.clone())
            .unwrap();
        let pending = p.publish(text(0));
        if let_task_run {
            // The task starts and learns of the open batch, not due for an hour.
            tokio::task::yield_now().await;
        }
        (p, pending)
    });
    // The runtime takes the task with it while the message waits in the open batch.
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome =
        second.block_on(async { tokio::time::timeout(Duration::from_secs(5), pending).await });
    assert!(fake.sizes().is_empty(), "nothing was sent");
    (
        outcome.expect("the caller is answered, not left waiting"),
        p,
    )
}

#[test]
fn a_message_in_the_open_batch_is_answered_when_the_runtime_goes_away() {
    for let_task_run in [true, false] {
        let (result, p) = outcome_when_the_runtime_goes_away(let_task_run);
        assert!(
            matches!(&result, Err(Error::MaybeStored { source }) if matches!(**source, Error::PublisherClosed)),
            "task ran: {let_task_run}: {result:?}"
        );
        assert!(matches!(
            p.try_publish(text(1)),
            Err(Error::PublisherClosed)
        ));
        assert_eq!(p.stats().outstanding_messages, 0, "the room is given back");
    }
}

#[test]
fn review_shutdown_after_the_runtime_goes_away() {
    let fake = Fake::new(Duration::from_millis(1));
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = first.block_on(async {
        let p = builder(1).build_with(fake.clone()).unwrap();
        tokio::task::yield_now().await;
        p
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r =
        second.block_on(async { tokio::time::timeout(Duration::from_secs(2), p.shutdown()).await });
    assert!(
        r.is_ok(),
        "shutdown hangs after the task's runtime went away"
    );
}

#[tokio::test(start_paused = true)]
async fn review_flush_during_shutdown_returns_before_outcomes() {
    let fake = Fake::new(Duration::from_millis(100));
    let p = builder(1)
        .max_delay(Duration::from_secs(3600))
        .build_with(fake.clone())
        .unwrap();
    let f = p.publish(text(0));
    let q = p.clone();
    let sd = tokio::spawn(async move { q.shutdown().await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let started = Instant::now();
    p.flush().await;
    let flushed_after = started.elapsed();
    let mut f = Box::pin(f);
    let done = futures::poll!(f.as_mut()).is_ready();
    sd.await.unwrap();
    assert!(
        done,
        "flush returned after {flushed_after:?} with the accepted message unanswered"
    );
}

#[tokio::test(start_paused = true)]
async fn review_a_due_open_batch_overtakes_complete_batches_still_in_the_channel() {
    let mut bad = 0;
    for _ in 0..20 {
        let fake = Fake::new(Duration::ZERO);
        let p = builder(1)
            .max_messages(2)
            .max_delay(Duration::ZERO)
            .max_concurrent_requests(100_000)
            .max_outstanding_messages(1_000_000)
            .build_with(fake.clone())
            .unwrap();
        let n = 2101;
        let futs: Vec<_> = (0..n).map(|i| p.publish(text(i))).collect();
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
        p.shutdown().await;
        let bodies: Vec<usize> = fake
            .bodies()
            .into_iter()
            .map(|b| b.as_str().unwrap()[1..].parse().unwrap())
            .collect();
        if let Some(at) = bodies.windows(2).position(|w| w[0] > w[1]) {
            bad += 1;
            eprintln!(
                "out of order at request body {at}: {:?}",
                &bodies[at.saturating_sub(2)..at + 3]
            );
        }
    }
    assert_eq!(bad, 0, "runs with batches out of publish order");
}

#[tokio::test(start_paused = true)]
async fn review_flush_lets_the_open_batch_overtake_an_older_complete_one() {
    let fake = Fake::new(Duration::ZERO);
    let p = builder(1)
        .max_messages(2)
        .max_delay(Duration::from_secs(3600))
        .max_concurrent_requests(1)
        .build_with(fake.clone())
        .unwrap();
    let mut futs = vec![p.publish(text(0))];
    let mut flush = Box::pin(p.flush());
    assert!(futures::poll!(flush.as_mut()).is_pending()); // Flush is in the channel
    futs.push(p.publish(text(1))); // fills batch [0,1]: Batch sent after Flush
    futs.push(p.publish(text(2))); // opens [2]
    flush.await;
    for r in futures::future::join_all(futs).await {
        r.unwrap();
    }
    let bodies: Vec<usize> = fake
        .bodies()
        .into_iter()
        .map(|b| b.as_str().unwrap()[1..].parse().unwrap())
        .collect();
    assert_eq!(bodies, vec![0, 1, 2]);
}
