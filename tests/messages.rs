//! The message data plane against wiremock: exact requests and decoded results.

mod common;

use cloudflare_queues::models::{ContentType, ExtensionOutcome, Message};
use cloudflare_queues::requests::LeaseToExtend;
use cloudflare_queues::{BodyErrorKind, Error};
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};
use wiremock::matchers::{body_json, method, path as path_is};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn messages_path(suffix: &str) -> String {
    path(&format!("/queues/{QUEUE}/messages{suffix}"))
}

#[tokio::test]
async fn send_posts_one_text_or_json_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("")))
        .and(body_json(json!({"body": "hello", "content_type": "text"})))
        .respond_with(fixture_response("push.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("")))
        .and(body_json(
            json!({"body": {"order": 42}, "content_type": "json", "delay_seconds": 90}),
        ))
        .respond_with(fixture_response("push.json"))
        .expect(1)
        .mount(&server)
        .await;

    let queue = client(&server).queue(QUEUE);
    let receipt = queue.send("hello").await.unwrap();
    let metrics = receipt.metrics().unwrap();
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes), (7, 2048));
    assert_eq!(
        metrics.oldest_message_at(),
        Some(UNIX_EPOCH + Duration::from_millis(1_710_950_954_154))
    );

    queue
        .send(Message::json(&json!({"order": 42})).unwrap())
        .delay(Duration::from_secs(90))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn send_rejects_bad_input_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    let e = queue.send("x".repeat(128_001)).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "message"),
        "{e}"
    );
    let e = queue
        .send("x")
        .delay(Duration::from_secs(25 * 3600))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("allowed 0 ms to 1d"), "{e}");
}

#[tokio::test]
async fn send_batch_of_250_makes_three_requests_in_order() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("/batch")))
        .respond_with(fixture_response("push.json"))
        .expect(3)
        .mount(&server)
        .await;
    let messages: Vec<Message> = (0..250).map(|i| Message::text(format!("m{i}"))).collect();
    let receipt = client(&server)
        .queue(QUEUE)
        .send_batch(messages)
        .delay(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((receipt.messages, receipt.requests), (250, 3));
    assert_eq!(receipt.metrics.unwrap().backlog_count, 7);

    let bodies = bodies(&server, &messages_path("/batch")).await;
    let counts: Vec<usize> = bodies
        .iter()
        .map(|b| b["messages"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, vec![100, 100, 50]);
    assert_eq!(
        bodies[0]["messages"][0],
        json!({"body": "m0", "content_type": "text"})
    );
    assert_eq!(bodies[2]["messages"][49]["body"], "m249");
    assert!(bodies.iter().all(|b| b["delay_seconds"] == 5));
}

#[tokio::test]
async fn send_batch_splits_by_bytes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(fixture_response("push.json"))
        .expect(3)
        .mount(&server)
        .await;
    // Five 100 KB messages: two fit in 256 KB, the third would not.
    let messages: Vec<Message> = (0..5)
        .map(|i| Message::text(format!("{i}").repeat(100_000)))
        .collect();
    let receipt = client(&server)
        .queue(QUEUE)
        .send_batch(messages)
        .await
        .unwrap();
    assert_eq!(receipt.requests, 3);
    let bodies = bodies(&server, &messages_path("/batch")).await;
    let counts: Vec<usize> = bodies
        .iter()
        .map(|b| b["messages"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, vec![2, 2, 1]);
    for b in &bodies {
        let bytes: usize = b["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().len())
            .sum();
        assert!(bytes <= 256_000, "{bytes}");
    }
}

#[tokio::test]
async fn an_oversize_message_fails_the_batch_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let mut messages: Vec<Message> = (0..150).map(|i| Message::text(format!("{i}"))).collect();
    messages[120] = Message::json_value(json!({"blob": "y".repeat(130_000)}));
    let e = client(&server)
        .queue(QUEUE)
        .send_batch(messages)
        .await
        .unwrap_err();
    let Error::InvalidInput { field, reason } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(field, "messages[120]");
    assert!(reason.contains("128000"), "{reason}");
}

#[tokio::test]
async fn a_batch_failing_part_way_reports_what_was_stored() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(fixture_response("push.json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(err(400, 10206, "Batch count out of bounds"))
        .mount(&server)
        .await;
    let messages: Vec<Message> = (0..150).map(|i| Message::text(format!("{i}"))).collect();
    let e = client(&server)
        .queue(QUEUE)
        .send_batch(messages)
        .await
        .unwrap_err();
    let Error::BatchIncomplete {
        accepted,
        total,
        source,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*accepted, *total), (100, 150));
    assert_eq!(source.status(), Some(400));
    assert_eq!(e.status(), Some(400), "helpers look through to the cause");
}

#[tokio::test]
async fn pull_sends_the_documented_body_and_decodes_the_reference_example() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("/pull")))
        .and(body_json(
            json!({"batch_size": 10, "visibility_timeout_ms": 30000}),
        ))
        .respond_with(fixture_response("pull.json"))
        .expect(1)
        .mount(&server)
        .await;
    let batch = client(&server)
        .queue(QUEUE)
        .pull()
        .batch_size(10)
        .visibility_timeout(Duration::from_secs(30))
        .await
        .unwrap();

    assert_eq!(batch.message_backlog_count, Some(5));
    let metrics = batch.metrics().unwrap();
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes), (5, 1024));
    assert_eq!(batch.messages.len(), 5);

    let text = &batch.messages[0];
    assert_eq!(text.id, "b01b5594f784d0165c2985833f5660dd");
    assert_eq!(text.attempts, 1);
    assert!(text.lease_id.starts_with("eyJhbGciOiJkaXIi"));
    assert_eq!(text.timestamp_ms, 1_710_950_954_154);
    assert_eq!(
        text.published_at(),
        UNIX_EPOCH + Duration::from_millis(1_710_950_954_154)
    );
    assert_eq!(text.metadata.source(), Some("dash"));
    assert_eq!(text.content_type(), ContentType::Text);
    assert_eq!(text.text().unwrap(), "hello world");

    let json_msg = &batch.messages[1];
    assert_eq!(json_msg.attempts, 2, "2.0 on the wire reads as 2");
    assert_eq!(json_msg.content_type(), ContentType::Json);
    assert_eq!(
        json_msg.json::<Value>().unwrap(),
        json!({"order": 42, "items": ["a", "b"]})
    );
    #[derive(serde::Deserialize)]
    struct Order {
        order: u32,
        items: Vec<String>,
    }
    let order: Order = json_msg.json().unwrap();
    assert_eq!((order.order, order.items.len()), (42, 2));

    let bytes = &batch.messages[2];
    assert_eq!(bytes.content_type(), ContentType::Bytes);
    assert_eq!(bytes.bytes().unwrap().as_ref(), &[0u8, 1, 2, 255]);

    let v8 = &batch.messages[3];
    assert_eq!(v8.content_type(), ContentType::V8);
    let e = v8.json::<Value>().unwrap_err();
    assert!(
        matches!(&e, Error::Body(b) if matches!(b.kind, BodyErrorKind::Unsupported) && b.message_id == v8.id),
        "{e:?}"
    );

    let broken = &batch.messages[4];
    let e = broken.bytes().unwrap_err();
    assert!(
        matches!(&e, Error::Body(b) if matches!(b.kind, BodyErrorKind::Base64(_))),
        "{e:?}"
    );
}

#[tokio::test]
async fn pull_with_defaults_sends_an_empty_object() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(json!({})))
        .respond_with(ok(json!({"message_backlog_count": 0, "messages": []})))
        .expect(1)
        .mount(&server)
        .await;
    let batch = client(&server).queue(QUEUE).pull().await.unwrap();
    assert!(batch.messages.is_empty());
    assert_eq!(batch.metrics(), None);
}

#[tokio::test]
async fn pull_validates_batch_size_and_visibility() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let q = client(&server).queue(QUEUE);
    for (e, field) in [
        (q.pull().batch_size(0).await.unwrap_err(), "batch_size"),
        (q.pull().batch_size(101).await.unwrap_err(), "batch_size"),
        (
            q.pull()
                .visibility_timeout(Duration::from_secs(12 * 3600 + 1))
                .await
                .unwrap_err(),
            "visibility_timeout",
        ),
        (
            q.pull()
                .visibility_timeout(Duration::ZERO)
                .await
                .unwrap_err(),
            "visibility_timeout",
        ),
    ] {
        assert!(
            matches!(&e, Error::InvalidInput { field: f, .. } if f == field),
            "{e}"
        );
    }
}

#[tokio::test]
async fn ack_sends_acks_and_retries_in_one_documented_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("/ack")))
        .and(body_json(json!({
            "acks": [{"lease_id": "lease-1"}, {"lease_id": "lease-2"}],
            "retries": [{"lease_id": "lease-3", "delay_seconds": 600}, {"lease_id": "lease-4"}]
        })))
        .respond_with(fixture_response("ack.json"))
        .expect(1)
        .mount(&server)
        .await;
    let result = client(&server)
        .queue(QUEUE)
        .ack()
        .acks(["lease-1", "lease-2"])
        .retry("lease-3", Some(Duration::from_secs(600)))
        .retry("lease-4", None)
        .await
        .unwrap();
    assert_eq!(result.ack_count, Some(2));
    assert_eq!(result.retry_count, Some(1));
    assert_eq!(result.warnings.len(), 1);
    assert_eq!(
        result.warnings[0].lease_id.as_deref(),
        Some("lease-unknown")
    );
}

#[tokio::test]
async fn ack_with_only_acks_still_sends_an_empty_retries_list() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"acks": [{"lease_id": "a"}], "retries": []}),
        ))
        .respond_with(ok(
            json!({"ackCount": 1.0, "retryCount": 0, "warnings": ["old-style warning"]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let result = client(&server).queue(QUEUE).ack().ack("a").await.unwrap();
    assert_eq!(result.ack_count, Some(1));
    assert_eq!(result.warnings[0].message, "old-style warning");
}

#[tokio::test]
async fn ack_checks_input_and_skips_empty_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let q = client(&server).queue(QUEUE);
    let nothing = q.ack().await.unwrap();
    assert_eq!(nothing.ack_count, None);
    assert!(q.ack().ack("").await.is_err());
    let e = q
        .ack()
        .retry("l", Some(Duration::from_secs(90_000)))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "retries[0].delay"),
        "{e}"
    );
}

#[tokio::test]
async fn extend_leases_sends_lease_items_and_the_timeout_in_milliseconds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(path(&format!("/queues/{QUEUE}/messages/extend"))))
        .and(body_json(json!({
            "extend": [{"lease_id": "l1"}, {"lease_id": "l2"}],
            "visibility_timeout_ms": 90_000
        })))
        .respond_with(ok(json!({"messages": [
            {"id": "m2", "lease_id": "n2"}, {"id": "m1", "lease_id": "n1"}
        ], "extendCount": 2})))
        .expect(1)
        .mount(&server)
        .await;
    let out = client(&server)
        .queue(QUEUE)
        .extend_leases(
            [
                LeaseToExtend::new("l1", "m1"),
                LeaseToExtend::new("l2", "m2"),
            ],
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    let outcomes: Vec<_> = out.leases.iter().map(|l| l.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            ExtensionOutcome::Renewed {
                lease_id: "n1".into()
            },
            ExtensionOutcome::Renewed {
                lease_id: "n2".into()
            }
        ],
        "matched by message id, not by order"
    );
    assert_eq!((out.requests, out.extend_count), (1, Some(2)));
}

#[tokio::test]
async fn extend_leases_splits_at_100_and_keeps_old_ids_when_new_ones_cannot_be_matched() {
    let server = MockServer::start().await;
    // A response this crate cannot read: every lease counts as extended, id unknown.
    Mock::given(method("POST"))
        .and(path_is(path(&format!("/queues/{QUEUE}/messages/extend"))))
        .respond_with(ok(json!({"ok": true})))
        .expect(3)
        .mount(&server)
        .await;
    let leases: Vec<String> = (0..250).map(|i| format!("l{i}")).collect();
    let out = client(&server)
        .queue(QUEUE)
        .extend_leases(leases.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(out.requests, 3);
    assert_eq!(out.leases.len(), 250);
    assert!(
        out.leases
            .iter()
            .all(|l| l.outcome == ExtensionOutcome::ExtendedIdUnknown)
    );
    let sizes: Vec<usize> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["extend"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
}

#[tokio::test]
async fn extend_leases_checks_input_and_skips_empty_requests() {
    let server = MockServer::start().await;
    let q = client(&server).queue(QUEUE);
    let out = q
        .extend_leases(Vec::<String>::new(), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(out.requests, 0);
    for (leases, timeout) in [
        (vec!["l".to_owned()], Duration::ZERO),
        (vec!["l".to_owned()], Duration::from_secs(13 * 3600)),
        (vec![" ".to_owned()], Duration::from_secs(1)),
    ] {
        let e = q.extend_leases(leases, timeout).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_extension_is_not_repeated_after_a_timeout_but_is_after_a_refusal() {
    // A refusal (503) says nothing was applied: retried. A timeout may have issued new
    // lease ids: returned, not repeated.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(503, 15000, "internal"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    client(&server)
        .queue(QUEUE)
        .extend_leases(["l"], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})).set_delay(Duration::from_secs(2)))
        .mount(&slow)
        .await;
    let c = cloudflare_queues::Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", slow.uri()))
        .retry_policy(fast_retry(3))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = c
        .queue(QUEUE)
        .extend_leases(["l"], Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(
        slow.received_requests().await.unwrap().len(),
        1,
        "not repeated"
    );
}
