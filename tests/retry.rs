//! Retry behaviour through the one transport path.

mod common;

use cloudflare_queues::models::Message;
use cloudflare_queues::{Client, Error, ErrorCode, RetryPolicy};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path as path_is};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn pull_path() -> String {
    path(&format!("/queues/{QUEUE}/messages/pull"))
}

#[tokio::test]
async fn overloaded_429_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(429, 10250, "Queue is overloaded").insert_header("retry-after-ms", "300"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"messages": []})))
        .expect(1)
        .mount(&server)
        .await;

    let started = Instant::now();
    client(&server).queue(QUEUE).pull().await.unwrap();
    // The backoff alone would wait ~1 ms; only the server's hint explains 300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured_and_capped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(429, 10250, "Queue is overloaded").insert_header("retry-after", "3600"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"messages": []})))
        .mount(&server)
        .await;
    let policy = fast_retry(2).max_retry_after(Duration::from_millis(200));
    let started = Instant::now();
    client(&server)
        .queue(QUEUE)
        .pull()
        .retry_policy(policy)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(30),
        "waited {waited:?}"
    );
}

#[tokio::test]
async fn hard_429_limits_are_never_retried() {
    for code in [10251, 10252, 10253] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(err(429, code, "limit").insert_header("retry-after", "0"))
            .expect(1)
            .mount(&server)
            .await;
        let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
        assert_eq!(e.code().map(ErrorCode::as_u32), Some(code));
        assert_eq!(e.attempts(), Some(1));
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn server_errors_are_retried_up_to_the_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(pull_path()))
        .respond_with(err(500, 15000, "Unknown error"))
        .expect(4)
        .mount(&server)
        .await;
    let e = client(&server)
        .queue(QUEUE)
        .pull()
        .retry_policy(fast_retry(4))
        .await
        .unwrap_err();
    assert_eq!(e.attempts(), Some(4));
    assert_eq!(e.code(), Some(ErrorCode::UnknownInternalError));
    assert!(e.to_string().contains("4 attempts"), "{e}");
}

#[tokio::test]
async fn a_5xx_then_success_returns_the_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_raw("<html>unavailable</html>", "text/html"),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"messages": []})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).queue(QUEUE).pull().await.unwrap();
}

#[tokio::test]
async fn other_4xx_are_not_retried() {
    for status in [400, 401, 403, 404, 409] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(err(status, 7003, "no"))
            .expect(1)
            .mount(&server)
            .await;
        let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
        assert_eq!(e.status(), Some(status));
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_publish() {
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(closed_port_url())
        .retry_policy(fast_retry(3))
        .build()
        .unwrap();
    for e in [
        client.queue(QUEUE).pull().await.unwrap_err(),
        client.queue(QUEUE).send("x").await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::Transport { .. }), "{e:?}");
        assert_eq!(
            e.attempts(),
            Some(3),
            "connect failures are retried: nothing was sent"
        );
    }
}

#[tokio::test]
async fn a_publish_that_may_have_been_applied_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})).set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(server.uri())
        .retry_policy(fast_retry(3))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let e = client
        .queue(QUEUE)
        .send(Message::text("once"))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(e.attempts(), Some(1));
    // A pull is safe to repeat: the same timeout is retried.
    let e = client.queue(QUEUE).pull().await.unwrap_err();
    assert_eq!(e.attempts(), Some(3));
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 4, "one publish, three pulls");
}

#[tokio::test]
async fn a_publish_is_retried_when_the_server_refused_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(429, 10250, "Queue is overloaded"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(fixture_response("push.json"))
        .mount(&server)
        .await;
    client(&server).queue(QUEUE).send("x").await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_policy_can_be_set_per_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(500, 15000, "boom"))
        .mount(&server)
        .await;
    let none = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    assert_eq!(
        none.queue(QUEUE).pull().await.unwrap_err().attempts(),
        Some(1)
    );
    assert_eq!(
        none.queue(QUEUE)
            .pull()
            .retry_policy(fast_retry(5))
            .await
            .unwrap_err()
            .attempts(),
        Some(5)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}
