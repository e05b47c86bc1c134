//! Error chains and error context: every variant shows its cause or returns it from
//! `source()`, never both, so a chain printer shows each cause exactly once; every
//! wrapped cause is reachable; the failing request's queue (consumer, subscription) is in
//! the error and its message; the account id is in neither.

mod common;

use cloudflare_queues::models::{ContentType, Message};
use cloudflare_queues::reqwest;
use cloudflare_queues::{BodyErrorKind, Client, Error, RetryPolicy};
use common::*;
use serde_json::json;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path as path_is};
use wiremock::{Mock, MockServer};

/// The message of every level of the chain, outermost first.
fn chain(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut levels = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        levels.push(e.to_string());
        current = e.source();
    }
    levels
}

/// Asserts that no level repeats the message of a deeper one (each cause printed
/// exactly once by a chain printer), that the chain has at least `min_levels`, and that
/// the account id appears nowhere in it.
fn assert_each_cause_once(err: &Error, min_levels: usize) -> Vec<String> {
    let levels = chain(err);
    assert!(
        levels.len() >= min_levels,
        "expected at least {min_levels} levels, got {levels:#?}"
    );
    for (i, cause) in levels.iter().enumerate().skip(1) {
        assert!(!cause.is_empty(), "level {i} is empty: {levels:#?}");
        for outer in &levels[..i] {
            assert!(
                !outer.contains(cause.as_str()),
                "the cause `{cause}` (level {i}) is also printed by `{outer}`"
            );
        }
    }
    let printed = levels.join(": ");
    assert_eq!(
        printed.matches(levels.last().unwrap().as_str()).count(),
        1,
        "the root cause is printed once: {printed}"
    );
    assert!(!printed.contains(ACCOUNT), "account id leaked: {printed}");
    assert!(!format!("{err:?}").contains(TOKEN), "token leaked");
    levels
}

/// Whether a source of type `T` is reachable from `err`.
fn reaches<T: StdError + 'static>(err: &Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<T>().is_some() {
            return true;
        }
        current = e.source();
    }
    false
}

fn pull_path() -> String {
    path(&format!("/queues/{QUEUE}/messages/pull"))
}

fn client_for(base: String) -> Client {
    Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(base)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn transport_errors_chain_to_the_http_error_once_without_the_url() {
    let client = client_for(format!("{}{PREFIX}", closed_port_url()));
    let e = client.queue(QUEUE).pull().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let levels = assert_each_cause_once(&e, 2);
    assert!(reaches::<reqwest::Error>(&e), "{levels:#?}");
    assert!(levels[0].contains(QUEUE), "{}", levels[0]);
    assert_eq!(e.queue_id(), Some(QUEUE));
}

#[tokio::test]
async fn attempt_timeouts_chain_to_the_http_error_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"messages": []})).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let e = client(&server)
        .queue(QUEUE)
        .pull()
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    let levels = assert_each_cause_once(&e, 2);
    assert!(reaches::<reqwest::Error>(&e), "{levels:#?}");
    assert!(levels[0].contains(QUEUE), "{}", levels[0]);
}

#[tokio::test]
async fn a_total_timeout_chains_to_the_last_failure_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(503, 15000, "try later"))
        .mount(&server)
        .await;
    let long_backoff = RetryPolicy::default().backoff(cloudflare_queues::Backoff::new(
        Duration::from_secs(30),
        Duration::from_secs(30),
    ));
    let e = client(&server)
        .queue(QUEUE)
        .pull()
        .retry_policy(long_backoff)
        .total_timeout(Duration::from_secs(2))
        .await
        .unwrap_err();
    let Error::TotalTimeout {
        in_flight,
        last_error,
        attempts,
        ..
    } = &e
    else {
        panic!("expected a total timeout, got {e:?}")
    };
    assert!(!in_flight);
    assert_eq!(*attempts, 1);
    assert!(matches!(last_error.as_deref(), Some(Error::Api(_))));
    let levels = assert_each_cause_once(&e, 2);
    assert!(levels[1].contains("try later"), "{levels:#?}");
    assert_eq!(e.status(), Some(503), "the last answer stays reachable");
    assert_eq!(e.queue_id(), Some(QUEUE));
}

#[tokio::test]
async fn decode_errors_return_the_parser_error_as_their_source() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"message_backlog_count": "many", "messages": []})))
        .mount(&server)
        .await;
    let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
    let Error::Decode(decode) = &e else {
        panic!("expected a decode error, got {e:?}")
    };
    let levels = assert_each_cause_once(&e, 2);
    assert_eq!(levels[1], decode.source.to_string());
    assert!(reaches::<serde_json::Error>(&e));
    assert!(
        levels[0].contains("result.message_backlog_count"),
        "{levels:#?}"
    );
    assert!(levels[0].contains(QUEUE), "{levels:#?}");
}

#[tokio::test]
async fn body_errors_return_the_decoder_error_as_their_source() {
    let server = MockServer::start().await;
    let entry = |id: &str, body: &str, ct: &str| {
        json!({"id": id, "lease_id": format!("l-{id}"), "attempts": 1, "body": body,
               "metadata": {"CF-Content-Type": ct}, "timestamp_ms": 1})
    };
    Mock::given(method("POST"))
        .and(path_is(pull_path()))
        .respond_with(ok(json!({"messages": [
            // base64 of `[1,2]`, then not base64 at all, then a v8 body.
            entry("m-json", "WzEsMl0=", "json"),
            entry("m-b64", "***", "json"),
            entry("m-v8", "AAAA", "v8"),
        ]})))
        .mount(&server)
        .await;
    let batch = client(&server).queue(QUEUE).pull().await.unwrap();

    let e = batch.messages[0].json::<String>().unwrap_err();
    let Error::Body(body) = &e else {
        panic!("{e:?}")
    };
    let BodyErrorKind::Json(inner) = &body.kind else {
        panic!("{e:?}")
    };
    let levels = assert_each_cause_once(&e, 2);
    assert_eq!(levels[1], inner.to_string());
    assert!(levels[0].contains("m-json"), "{levels:#?}");
    assert!(reaches::<serde_json::Error>(&e));

    let e = batch.messages[1].bytes().unwrap_err();
    let Error::Body(body) = &e else {
        panic!("{e:?}")
    };
    let BodyErrorKind::Base64(inner) = &body.kind else {
        panic!("{e:?}")
    };
    let levels = assert_each_cause_once(&e, 2);
    assert_eq!(levels[1], inner.to_string());

    // Nothing underneath: the message says it all, and there is no source.
    let e = batch.messages[2].bytes().unwrap_err();
    assert_eq!(batch.messages[2].content_type(), ContentType::V8);
    assert_eq!(assert_each_cause_once(&e, 1).len(), 1);
}

#[tokio::test]
async fn batch_incomplete_and_settle_chain_to_the_request_error_once() {
    let server = MockServer::start().await;
    let batch_path = path(&format!("/queues/{QUEUE}/messages/batch"));
    Mock::given(method("POST"))
        .and(path_is(batch_path.clone()))
        .respond_with(ok(json!({})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_is(batch_path))
        .respond_with(err(400, 10207, "bad batch"))
        .mount(&server)
        .await;
    let messages = (0..150).map(|i| Message::text(format!("m{i}")));
    let e = client(&server)
        .queue(QUEUE)
        .send_batch(messages)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::BatchIncomplete {
                accepted: 100,
                total: 150,
                ..
            }
        ),
        "{e:?}"
    );
    let levels = assert_each_cause_once(&e, 2);
    assert!(levels[1].contains("bad batch"), "{levels:#?}");
    assert_eq!(
        e.queue_id(),
        Some(QUEUE),
        "the queue is found through the chain"
    );

    let shared = Arc::new(e);
    let settle = Error::Settle(shared.clone());
    let levels = assert_each_cause_once(&settle, 3);
    assert_eq!(levels[0], "could not settle the delivery");
    assert_eq!(settle.code().map(|c| c.as_u32()), Some(10207));

    // The publisher's wrappers follow the same rule, and reach the queue through it.
    for wrapped in [
        Error::MaybeStored {
            source: shared.clone(),
        },
        Error::Publish(shared.clone()),
    ] {
        let levels = assert_each_cause_once(&wrapped, 3);
        assert!(!levels[0].contains("bad batch"), "{levels:#?}");
        assert_eq!(wrapped.queue_id(), Some(QUEUE));
        assert_eq!(wrapped.code().map(|c| c.as_u32()), Some(10207));
    }
}

#[tokio::test]
async fn api_errors_name_the_queue_consumer_or_subscription_but_never_the_account() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(err(404, 11013, "not found"))
        .mount(&server)
        .await;
    let client = client(&server);
    let e = client.queue(QUEUE).get().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("HTTP 404 [11013 Unknown] not found (GET /accounts/{{account_id}}/queues/{QUEUE})")
    );
    assert_eq!(e.queue_id(), Some(QUEUE));
    let label = e.request().unwrap();
    assert_eq!(label.path, "/accounts/{account_id}/queues/{queue_id}");
    assert_eq!(label.ids, vec![("queue_id", QUEUE.to_owned())]);

    let e = client
        .queue(QUEUE)
        .consumers()
        .get("c0ffee")
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains(&format!("/queues/{QUEUE}/consumers/c0ffee")),
        "{shown}"
    );
    assert_eq!(e.request().and_then(|r| r.consumer_id()), Some("c0ffee"));

    let e = client
        .event_subscriptions()
        .get("5ub5cr1pt10n")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/subscriptions/5ub5cr1pt10n"), "{e}");
    assert_eq!(
        e.request().and_then(|r| r.subscription_id()),
        Some("5ub5cr1pt10n")
    );
    assert_eq!(e.queue_id(), None);

    assert!(!e.to_string().contains(ACCOUNT));
    assert!(!format!("{e:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_service_with_two_queues_can_tell_which_one_failed() {
    let emulator = cloudflare_queues::emulator::Emulator::start()
        .await
        .unwrap();
    let client = emulator.client();
    let jobs = client.queues().create("jobs").await.unwrap();
    let results = client.queues().create("results").await.unwrap();
    client.queue(results.id()).delete().await.unwrap();
    client.queue(jobs.id()).send("job").await.unwrap();
    let e = client
        .queue(results.id())
        .send("result")
        .retry_policy(RetryPolicy::none())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.queue_id(), Some(results.id()));
    assert!(e.to_string().contains(results.id()), "{e}");
    assert!(!e.to_string().contains(jobs.id()), "{e}");
    assert!(!e.to_string().contains(emulator.account_id()), "{e}");
}

#[test]
fn ids_in_messages_cannot_break_the_line() {
    // A caller-supplied id is shown escaped, so a log line stays one line.
    let client = client_for("http://127.0.0.1:9/client/v4".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = rt
        .block_on(client.queue("abc\ndef").get().send())
        .unwrap_err();
    let shown = e.to_string();
    assert!(!shown.contains('\n'), "{shown}");
    assert!(shown.contains("abc\\ndef"), "{shown}");
}
