//! Per-attempt and total timeouts, on the client and per call. Bounds are asserted
//! loosely (well above what the timeouts allow, well below what retries would take
//! without them); speed itself is never asserted.

mod common;

use cloudflare_queues::models::Message;
use cloudflare_queues::{Backoff, Client, Error, RetryPolicy};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path as path_is};
use wiremock::{Mock, MockServer};

const SLOW: Duration = Duration::from_secs(3);

/// A server whose every answer takes [`SLOW`].
async fn slow_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ok(json!({"messages": []})).set_delay(SLOW))
        .mount(&server)
        .await;
    server
}

/// The case: a 200 ms attempt timeout with the default 4 attempts took about
/// 1.9 s to fail. With a total timeout of 300 ms the call fails near 300 ms.
#[tokio::test]
async fn a_total_timeout_bounds_a_call_with_retries() {
    let server = slow_server().await;
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(client.retry_policy().attempts(), 4);
    let started = Instant::now();
    let e = client
        .queue(QUEUE)
        .pull()
        .total_timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(e, Error::TotalTimeout { limit, .. } if limit == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(e.is_timeout());
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(1),
        "failed after {waited:?}"
    );
    assert!(e.to_string().contains("total timeout of 300ms"), "{e}");
}

#[tokio::test]
async fn the_client_wide_total_timeout_cuts_an_attempt_in_flight() {
    let server = slow_server().await;
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .timeout(None)
        .total_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(client.total_timeout(), Some(Duration::from_millis(300)));
    let started = Instant::now();
    let e = client.queue(QUEUE).send("hello").await.unwrap_err();
    let waited = started.elapsed();
    let Error::TotalTimeout {
        in_flight,
        attempts,
        last_error,
        ..
    } = &e
    else {
        panic!("expected a total timeout, got {e:?}")
    };
    assert!(*in_flight, "the first attempt was still waiting");
    assert_eq!(*attempts, 1);
    assert!(last_error.is_none());
    assert!(
        e.is_retryable(),
        "in flight: it may or may not have been applied"
    );
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(1),
        "failed after {waited:?}"
    );
    assert!(e.to_string().contains("during attempt 1"), "{e}");
}

#[tokio::test]
async fn a_backoff_that_would_pass_the_deadline_is_not_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(429, 10250, "overloaded").insert_header("retry-after", "30"))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let e = client(&server)
        .queue(QUEUE)
        .pull()
        .total_timeout(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "it slept");
    assert!(
        matches!(
            e,
            Error::TotalTimeout {
                in_flight: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_rate_limited(), "the 429 is still visible: {e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn per_call_timeouts_override_the_clients() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"messages": []})).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_millis(100))
        .total_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let queue = client.queue(QUEUE);
    let e = queue.pull().await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    // Lifting both limits for one call lets the slow answer arrive.
    queue
        .pull()
        .timeout(None)
        .total_timeout(None)
        .await
        .expect("no limits for this call");
    // Only the per-attempt timeout lifted: the total one still applies.
    let e = queue.pull().timeout(None).await.unwrap_err();
    assert!(matches!(e, Error::TotalTimeout { .. }), "{e:?}");
    // Only the total lifted: the attempt timeout still applies.
    let e = queue.pull().total_timeout(None).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn a_batch_shares_one_deadline_across_its_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(path(&format!("/queues/{QUEUE}/messages/batch"))))
        .respond_with(ok(json!({})).set_delay(Duration::from_millis(200)))
        .mount(&server)
        .await;
    let messages = (0..250).map(|i| Message::text(format!("m{i}")));
    let started = Instant::now();
    let e = client(&server)
        .queue(QUEUE)
        .send_batch(messages)
        .total_timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let Error::BatchIncomplete {
        accepted,
        total,
        source,
    } = &e
    else {
        panic!("expected an incomplete batch, got {e:?}")
    };
    assert_eq!((*accepted, *total), (200, 250));
    assert!(matches!(**source, Error::TotalTimeout { .. }), "{source:?}");
}

/// Every request builder has `timeout` and `total_timeout`, and they take effect: each
/// call below fails at its 100 ms total timeout against a server that answers in 3 s.
#[tokio::test]
async fn every_request_builder_takes_both_timeouts() {
    let server = slow_server().await;
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .retry_policy(RetryPolicy::default().backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(1),
        )))
        .build()
        .unwrap();
    let queue = client.queue(QUEUE);
    let consumers = queue.consumers();
    let subs = client.event_subscriptions();
    let limit = Duration::from_millis(100);
    let attempt = Duration::from_secs(30);

    macro_rules! times_out {
        ($($call:expr),* $(,)?) => {{
            let mut checked = 0;
            $(
                let started = Instant::now();
                let e = $call
                    .timeout(attempt)
                    .total_timeout(limit)
                    .await
                    .expect_err(stringify!($call));
                assert!(e.is_timeout(), "{}: {e:?}", stringify!($call));
                assert!(started.elapsed() < Duration::from_secs(2), "{}", stringify!($call));
                checked += 1;
            )*
            checked
        }};
    }
    let worker = cloudflare_queues::models::WorkerConsumerRequest::new("w");
    let checked = times_out!(
        queue.send("x"),
        queue.send_batch(["x"]),
        queue.pull(),
        queue.ack().ack("lease"),
        queue.get(),
        queue.update("name"),
        queue.edit().name("name"),
        queue.delete(),
        queue.metrics(),
        queue.purge().delete_all_messages_permanently(),
        queue.purge_status(),
        queue.peek(),
        queue.purge_messages(["ref"]),
        client.queues().list(),
        client.queues().find_by_name("name"),
        client.queues().create("name"),
        consumers.list(),
        consumers.create_http_pull(),
        consumers.create_worker("w"),
        consumers.create(worker.clone()),
        consumers.get("c"),
        consumers.update("c", worker),
        consumers.delete("c"),
        subs.list(),
        subs.create(
            "s",
            cloudflare_queues::models::EventSource::R2,
            QUEUE,
            ["bucket.created"]
        ),
        subs.get("s"),
        subs.update("s").enabled(false),
        subs.delete("s"),
    );
    assert_eq!(checked, 28, "every request builder of src/api");
}
