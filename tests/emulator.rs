//! The emulator's rules, exercised through the crate's own client.

use cloudflare_queues::emulator::{Emulator, Fault, FaultPlan, Latency, MessageState, SeedMessage};
use cloudflare_queues::models::{ContentType, EventSource, ExtensionOutcome, Message};
use cloudflare_queues::{BodyErrorKind, Client, Error, ErrorCode, QueueHandle, RetryPolicy, ops};
use serde_json::json;
use std::time::{Duration, Instant};

/// A queue with an HTTP pull consumer (`max_retries`, `retry_delay`, optional DLQ).
async fn pull_queue(
    client: &Client,
    name: &str,
    max_retries: u32,
    retry_delay: u64,
    dlq: Option<&str>,
) -> QueueHandle {
    let queue = client.queues().create(name).await.unwrap();
    let handle = client.queue(queue.queue_id.unwrap());
    let mut consumer = handle
        .consumers()
        .create_http_pull()
        .max_retries(max_retries)
        .retry_delay(Duration::from_secs(retry_delay));
    if let Some(dlq) = dlq {
        consumer = consumer.dead_letter_queue(dlq);
    }
    consumer.await.unwrap();
    handle
}

#[tokio::test]
async fn leases_expire_and_redeliver_with_attempts_counted_and_late_acks_accepted() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let q = pull_queue(&client, "leases", 5, 0, None).await;
    q.send("hello").await.unwrap();

    let first = q
        .pull()
        .visibility_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(first.messages.len(), 1);
    assert_eq!(first.messages[0].attempts, 1);
    assert!(
        q.pull().await.unwrap().messages.is_empty(),
        "leased messages are not delivered twice"
    );

    emu.advance(Duration::from_secs(11));
    let second = q
        .pull()
        .visibility_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(second.messages[0].id, first.messages[0].id);
    assert_eq!(second.messages[0].attempts, 2);
    assert_ne!(second.messages[0].lease_id, first.messages[0].lease_id);

    // The first lease has expired, and the message went to someone else: still accepted.
    let late = q
        .ack()
        .ack(first.messages[0].lease_id.clone())
        .await
        .unwrap();
    assert_eq!((late.ack_count, late.warnings.len()), (Some(1), 0));
    let info = &emu.messages(q.id())[0];
    assert_eq!(
        (info.state, info.acks, info.deliveries, info.expiries),
        (MessageState::Acked, 1, 2, 1)
    );
    // The second lease acks the same (gone) message: a harmless repeat.
    q.ack()
        .ack(second.messages[0].lease_id.clone())
        .await
        .unwrap();
    assert_eq!(emu.messages(q.id())[0].duplicate_acks, 1);
    assert_eq!(emu.acked_ids(q.id()), vec![first.messages[0].id.clone()]);
}

#[tokio::test]
async fn retry_delays_come_from_the_request_or_the_consumer() {
    let emu = Emulator::start().await.unwrap();
    let q = pull_queue(&emu.client(), "retries", 10, 30, None).await;
    q.send_batch(["a", "b"]).await.unwrap();
    let batch = q.pull().batch_size(2).await.unwrap();
    let result = q
        .ack()
        .retry(
            batch.messages[0].lease_id.clone(),
            Some(Duration::from_secs(60)),
        )
        .retry(batch.messages[1].lease_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(result.retry_count, Some(2));
    assert!(q.pull().await.unwrap().messages.is_empty());

    emu.advance(Duration::from_secs(30));
    let after_30 = q.pull().await.unwrap();
    assert_eq!(
        after_30.messages.len(),
        1,
        "the consumer's retry_delay (30 s) applies when none is given"
    );
    assert_eq!(
        (
            after_30.messages[0].text().unwrap().as_ref(),
            after_30.messages[0].attempts
        ),
        ("b", 2)
    );

    emu.advance(Duration::from_secs(30));
    let after_60 = q.pull().await.unwrap();
    assert_eq!(after_60.messages[0].text().unwrap(), "a");
    assert_eq!(after_60.messages[0].attempts, 2);
}

#[tokio::test]
async fn max_retries_moves_messages_to_the_dead_letter_queue_or_drops_them() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let q = pull_queue(&client, "poison", 2, 0, Some("poison-dlq")).await;
    let id = q
        .send("bad")
        .await
        .map(|_| emu.messages(q.id())[0].id.clone())
        .unwrap();
    for attempt in 1..=2 {
        let m = q.pull().await.unwrap().messages.remove(0);
        assert_eq!(m.attempts, attempt);
        q.ack()
            .retry(m.lease_id, Some(Duration::ZERO))
            .await
            .unwrap();
    }
    assert_eq!(emu.dead_lettered_ids(q.id()), vec![id.clone()]);
    assert!(q.pull().await.unwrap().messages.is_empty());
    let dlq = client
        .queues()
        .find_by_name("poison-dlq")
        .await
        .unwrap()
        .expect("created on first use");
    let peeked = client
        .queue(dlq.queue_id.unwrap())
        .peek()
        .batch_size(10)
        .await
        .unwrap();
    assert_eq!(peeked.messages.len(), 1);
    assert_eq!(
        (
            peeked.messages[0].id.as_str(),
            peeked.messages[0].text().unwrap().as_ref()
        ),
        (id.as_str(), "bad")
    );

    // Without a DLQ the message is dropped; an expired lease counts as an attempt too.
    let q = pull_queue(&client, "no-dlq", 1, 0, None).await;
    q.send("x").await.unwrap();
    q.pull()
        .visibility_timeout(Duration::from_secs(1))
        .await
        .unwrap();
    emu.advance(Duration::from_secs(2));
    assert!(q.pull().await.unwrap().messages.is_empty());
    assert_eq!(emu.messages(q.id())[0].state, MessageState::Dropped);
}

#[tokio::test]
async fn paused_delivery_answers_409_and_keeps_accepting_messages() {
    let emu = Emulator::start().await.unwrap();
    let q = pull_queue(&emu.client(), "paused", 3, 0, None).await;
    let paused = q.pause_delivery().await.unwrap();
    assert_eq!(paused.settings.unwrap().delivery_paused, Some(true));
    q.send("while paused").await.unwrap();
    let err = q.pull().await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.is_delivery_paused());
    assert_eq!(
        err.api().unwrap().errors[0].message,
        "queue_delivery_paused"
    );
    assert!(
        !err.is_retryable(),
        "the client returns it; the pull consumer treats it as a paused state"
    );
    q.resume_delivery().await.unwrap();
    assert_eq!(
        q.pull().await.unwrap().messages[0].text().unwrap(),
        "while paused"
    );
}

#[tokio::test]
async fn delays_and_retention() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let queue = client
        .queues()
        .create("delayed")
        .delivery_delay(Duration::from_secs(10))
        .message_retention_period(Duration::from_secs(120))
        .await
        .unwrap();
    let q = client.queue(queue.queue_id.unwrap());
    q.consumers().create_http_pull().await.unwrap();
    q.send("queue delay").await.unwrap();
    q.send("own delay")
        .delay(Duration::from_secs(20))
        .await
        .unwrap();
    q.send("no delay").delay(Duration::ZERO).await.unwrap();
    let states: Vec<_> = emu.messages(q.id()).into_iter().map(|m| m.state).collect();
    assert_eq!(
        states,
        vec![
            MessageState::Delayed,
            MessageState::Delayed,
            MessageState::Available
        ]
    );
    assert_eq!(q.pull().batch_size(10).await.unwrap().messages.len(), 1);
    emu.advance(Duration::from_secs(10));
    assert_eq!(
        q.pull().batch_size(10).await.unwrap().messages[0]
            .text()
            .unwrap(),
        "queue delay"
    );
    emu.advance(Duration::from_secs(10));
    assert_eq!(
        q.pull().batch_size(10).await.unwrap().messages[0]
            .text()
            .unwrap(),
        "own delay"
    );

    q.send("forgotten").await.unwrap();
    emu.advance(Duration::from_secs(121));
    assert_eq!(
        q.metrics().await.unwrap().backlog_count,
        0,
        "retention ran out"
    );
    assert_eq!(
        emu.messages(q.id()).last().unwrap().state,
        MessageState::Expired
    );
}

#[tokio::test]
async fn limits_are_enforced_with_their_codes() {
    let emu = Emulator::builder()
        .token("right-token")
        .start()
        .await
        .unwrap();
    let client = emu.client();
    let q = pull_queue(&client, "limits", 3, 0, None).await;

    // Through the client: unknown queue, malformed id, bad token.
    let e = client
        .queue("0123456789abcdef0123456789abcdef")
        .get()
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(404), Some(ErrorCode::QueueNotFound))
    );
    let e = client.queue("not-alnum!").pull().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::QueueIdMalformed));
    let wrong = emu
        .client_builder()
        .api_token("wrong-token")
        .build()
        .unwrap();
    let e = wrong.queue(q.id()).pull().await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(401), Some(ErrorCode::Unauthorized))
    );

    // The client refuses oversize input before sending, so raw requests check the server.
    let raw = |path: &str| {
        cloudflare_queues::reqwest::Client::new()
            .post(format!(
                "{}/accounts/{}/queues/{}{path}",
                emu.base_url(),
                emu.account_id(),
                q.id()
            ))
            .bearer_auth("right-token")
    };
    let cases = [
        ("/messages", json!({"body": "x".repeat(128_001), "content_type": "text"}).to_string(), 10204),
        ("/messages", json!({"body": "x", "content_type": "v8"}).to_string(), 10203),
        ("/messages", json!({"body": "x", "content_type": "text", "delay_seconds": 86_401}).to_string(), 10203),
        ("/messages/batch", json!({"messages": (0..101).map(|_| json!({"body": "m", "content_type": "text"})).collect::<Vec<_>>()}).to_string(), 10206),
        ("/messages/batch", json!({"messages": (0..3).map(|_| json!({"body": "y".repeat(100_000), "content_type": "text"})).collect::<Vec<_>>()}).to_string(), 10205),
        ("/messages/batch", json!({"messages": [{"body": "m", "content_type": "text"}], "delay_seconds": 90_000}).to_string(), 10202),
        ("/messages", json!({"content_type": "text"}).to_string(), 10207),
        ("/messages/pull", json!({"batch_size": 101}).to_string(), 10207),
        ("/messages/pull", "{not json".to_owned(), 10208),
    ];
    for (path, body, code) in cases {
        let resp = raw(path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path} expecting {code}");
        let envelope: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(envelope["success"], false);
        assert_eq!(envelope["errors"][0]["code"], code, "{envelope}");
    }
    assert_eq!(
        q.metrics().await.unwrap().backlog_count,
        0,
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn the_pull_guides_curl_body_works() {
    let emu = Emulator::start().await.unwrap();
    let q = pull_queue(&emu.client(), "curl", 3, 0, None).await;
    q.send_batch(["a", "b", "c"]).await.unwrap();
    // Exactly what the pull-consumer guide's curl example sends.
    let resp: serde_json::Value = cloudflare_queues::reqwest::Client::new()
        .post(format!(
            "{}/accounts/{}/queues/{}/messages/pull",
            emu.base_url(),
            emu.account_id(),
            q.id()
        ))
        .header("Authorization", "Bearer any-token")
        .header("Content-Type", "application/json")
        .body(r#"{ "visibility_timeout": 10000, "batch_size": 2 }"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["success"], true);
    assert_eq!(resp["result"]["messages"].as_array().unwrap().len(), 2);
    emu.advance(Duration::from_secs(10));
    assert_eq!(
        q.pull().batch_size(10).await.unwrap().messages.len(),
        3,
        "the 10 s lease ran out"
    );
}

#[tokio::test]
async fn content_types_decode_as_over_http() {
    let emu = Emulator::start().await.unwrap();
    let q = pull_queue(&emu.client(), "types", 3, 0, None).await;
    q.send("plain").await.unwrap();
    q.send(Message::json(&json!({"n": 1})).unwrap())
        .await
        .unwrap();
    emu.seed(
        q.id(),
        [
            SeedMessage::bytes(vec![0u8, 159, 255]),
            SeedMessage::v8(vec![0xff, 0x0f]),
        ],
    )
    .unwrap();
    let batch = q.pull().batch_size(10).await.unwrap();
    let types: Vec<_> = batch.messages.iter().map(|m| m.content_type()).collect();
    assert_eq!(
        types,
        vec![
            ContentType::Text,
            ContentType::Json,
            ContentType::Bytes,
            ContentType::V8
        ]
    );
    assert_eq!(batch.messages[0].body, "plain", "text travels as is");
    assert_ne!(
        batch.messages[1].body, r#"{"n":1}"#,
        "json travels base64-encoded"
    );
    assert_eq!(
        batch.messages[1].json::<serde_json::Value>().unwrap(),
        json!({"n": 1})
    );
    assert_eq!(
        batch.messages[2].bytes().unwrap().as_ref(),
        &[0u8, 159, 255]
    );
    let e = batch.messages[3].bytes().unwrap_err();
    assert!(
        matches!(&e, Error::Body(b) if matches!(b.kind, BodyErrorKind::Unsupported)),
        "{e:?}"
    );
}

#[tokio::test]
async fn one_consumer_per_queue_and_pulls_need_http_pull() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let queue = client.queues().create("workers").await.unwrap();
    let q = client.queue(queue.queue_id.unwrap());
    let e = q.pull().await.unwrap_err();
    assert_eq!(e.status(), Some(400), "no consumer at all");
    let worker = q.consumers().create_worker("my-worker").await.unwrap();
    let e = q.consumers().create_http_pull().await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let e = q.pull().await.unwrap_err();
    assert_eq!(
        e.status(),
        Some(400),
        "a worker consumer does not serve pulls"
    );
    assert!(!e.is_retryable());
    q.consumers()
        .delete(worker.consumer_id().unwrap())
        .await
        .unwrap();
    q.consumers().create_http_pull().await.unwrap();
    assert!(q.pull().await.unwrap().messages.is_empty());
    let got = q.get().await.unwrap();
    assert_eq!(got.consumers.len(), 1);
    assert!(got.consumers[0].is_http_pull());
    assert_eq!(
        got.consumers[0].dead_letter_queue(),
        None,
        "sent as \"\", read as None"
    );
}

#[tokio::test]
async fn purge_peek_purge_by_ref_and_metrics() {
    let emu = Emulator::start().await.unwrap();
    let q = pull_queue(&emu.client(), "purging", 3, 0, None).await;
    q.send_batch((0..5).map(|i| format!("m{i}"))).await.unwrap();
    let m = q.metrics().await.unwrap();
    assert_eq!((m.backlog_count, m.backlog_bytes), (5, 10));
    assert!(m.oldest_message_at().is_some());

    let peeked = q.peek().batch_size(2).await.unwrap();
    assert_eq!(peeked.messages.len(), 2);
    assert_eq!(peeked.messages[0].attempts, 0, "peeking is not a delivery");
    let refs = peeked.messages.iter().map(|m| m.peek_ref.clone());
    let purged = q.purge_messages(refs).await.unwrap();
    assert!(purged.warnings.is_empty());
    assert_eq!(q.metrics().await.unwrap().backlog_count, 3);

    assert_eq!(
        q.purge_status().await.unwrap().completed,
        None,
        "never purged"
    );
    q.purge().delete_all_messages_permanently().await.unwrap();
    let status = q.purge_status().await.unwrap();
    assert_eq!(status.completed, Some(true));
    assert!(status.started_at.is_some());
    let m = q.metrics().await.unwrap();
    assert_eq!(
        (
            m.backlog_count,
            m.backlog_bytes,
            m.oldest_message_timestamp_ms
        ),
        (0, 0, 0)
    );
    let states: Vec<_> = emu.messages(q.id()).into_iter().map(|m| m.state).collect();
    assert_eq!(states, vec![MessageState::Purged; 5]);
}

#[tokio::test]
async fn queues_and_event_subscriptions_are_stored() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    for name in ["alpha", "beta", "gamma"] {
        client.queues().create(name).await.unwrap();
    }
    let e = client.queues().create("beta").await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let names: Vec<String> = client
        .queues()
        .list()
        .per_page(2)
        .into_stream()
        .map_ok(|q| q.queue_name.unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let beta = client.queues().find_by_name("beta").await.unwrap().unwrap();
    let renamed = client
        .queue(beta.queue_id.clone().unwrap())
        .edit()
        .name("beta2")
        .await
        .unwrap();
    assert_eq!(renamed.queue_name.as_deref(), Some("beta2"));

    let subs = client.event_subscriptions();
    let created = subs
        .create(
            "builds",
            EventSource::workers_builds_worker("api"),
            beta.queue_id.clone().unwrap(),
            ["build.failed"],
        )
        .await
        .unwrap();
    assert!(created.enabled);
    let updated = subs
        .update(&created.id)
        .enabled(false)
        .events(["build.failed", "build.succeeded"])
        .await
        .unwrap();
    assert_eq!((updated.enabled, updated.events.len()), (false, 2));
    assert_eq!(subs.get(&created.id).await.unwrap(), updated);
    assert_eq!(subs.list().await.unwrap().items.len(), 1);
    let e = subs
        .create(
            "x",
            EventSource::R2,
            "0123456789abcdef0123456789abcdef",
            ["bucket.created"],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "the destination queue must exist");
    assert_eq!(subs.delete(&created.id).await.unwrap().id, created.id);
    assert_eq!(subs.get(&created.id).await.unwrap_err().status(), Some(404));

    client.queue(beta.queue_id.unwrap()).delete().await.unwrap();
    assert_eq!(client.queues().list().await.unwrap().items.len(), 2);
}

use futures::TryStreamExt as _;

#[tokio::test]
async fn scripted_faults_exercise_the_retry_policy() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client_builder().retry_policy(fast(4)).build().unwrap();
    let q = pull_queue(&client, "faults", 3, 0, None).await;

    emu.set_faults(
        &ops::PULL_MESSAGES,
        FaultPlan::script([
            Some(Fault::RateLimited {
                code: 10250,
                retry_after: Some(Duration::from_millis(50)),
            }),
            Some(Fault::Internal),
            Some(Fault::BadGateway),
        ]),
    );
    let started = Instant::now();
    q.pull().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "Retry-After was honoured"
    );
    assert_eq!(
        emu.requests(&ops::PULL_MESSAGES),
        4,
        "three faults, then success"
    );

    emu.set_faults(&ops::PULL_MESSAGES, FaultPlan::first(1, Fault::BadGateway));
    let e = q
        .pull()
        .retry_policy(RetryPolicy::none())
        .await
        .unwrap_err();
    assert!(
        e.api()
            .unwrap()
            .raw_body
            .as_deref()
            .unwrap()
            .contains("502 Bad Gateway")
    );

    emu.set_faults(
        &ops::PUSH_MESSAGE,
        FaultPlan::first(
            1,
            Fault::RateLimited {
                code: 10253,
                retry_after: None,
            },
        ),
    );
    let e = q.send("x").await.unwrap_err();
    assert_eq!(
        (e.code(), e.attempts()),
        (Some(ErrorCode::FreeTierLimitExceeded), Some(1))
    );
}

#[tokio::test]
async fn a_lost_response_leaves_the_operation_applied() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client_builder().retry_policy(fast(3)).build().unwrap();
    let q = pull_queue(&client, "lost", 3, 0, None).await;

    emu.set_faults(&ops::PUSH_MESSAGE, FaultPlan::first(1, Fault::LostResponse));
    let e = q.send("applied anyway").await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert_eq!(
        e.attempts(),
        Some(1),
        "a publish is not repeated after an ambiguous failure"
    );
    assert_eq!(emu.messages(q.id()).len(), 1, "but the server stored it");

    // A lost pull response is retried; the leases it carried expire on their own.
    emu.set_faults(
        &ops::PULL_MESSAGES,
        FaultPlan::first(1, Fault::LostResponse),
    );
    let got = q
        .pull()
        .visibility_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        got.messages.is_empty(),
        "the lost pull leased the only message"
    );
    emu.advance(Duration::from_secs(5));
    let again = q.pull().await.unwrap();
    assert_eq!(again.messages[0].attempts, 2);
}

#[tokio::test]
async fn latency_slowness_and_the_rate_ceiling() {
    let emu = Emulator::builder()
        .latency(Latency::fixed(Duration::from_millis(40)))
        .start()
        .await
        .unwrap();
    let client = emu
        .client_builder()
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let q = pull_queue(&client, "slow", 3, 0, None).await;
    let started = Instant::now();
    q.metrics().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40));

    emu.set_latency(Latency::default());
    emu.set_faults(
        &ops::GET_METRICS,
        FaultPlan::first(1, Fault::Slow(Duration::from_millis(300))),
    );
    let impatient = emu
        .client_builder()
        .timeout(Duration::from_millis(100))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    assert!(
        impatient
            .queue(q.id())
            .metrics()
            .await
            .unwrap_err()
            .is_timeout()
    );

    // 1000 messages/s: a bucket of 100, so the second full pull is refused.
    emu.set_rate_limit(Some(1000));
    q.send_batch((0..200).map(|i| i.to_string()))
        .await
        .unwrap_err();
    emu.set_rate_limit(None);
    q.send_batch((0..200).map(|i| i.to_string())).await.unwrap();
    emu.set_rate_limit(Some(1000));
    assert_eq!(q.pull().batch_size(100).await.unwrap().messages.len(), 100);
    let e = q.pull().batch_size(100).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(429), Some(ErrorCode::QueueOverloaded))
    );
    let wait = e.retry_after().expect("a Retry-After");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
    assert!(e.is_retryable());
}

fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .backoff(cloudflare_queues::Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
}

#[tokio::test]
async fn the_request_counters_and_every_operation_is_served() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    client.queues().list().await.unwrap();
    client.queues().list().await.unwrap();
    assert_eq!(emu.requests(&ops::LIST_QUEUES), 2);
    // Every operation of the spec has a route: none answers "no route" (7003).
    for op in ops::ALL {
        let path = op
            .path
            .replace("{account_id}", emu.account_id())
            .replace("{queue_id}", "0123456789abcdef0123456789abcdef")
            .replace("{consumer_id}", "c")
            .replace("{subscription_id}", "s");
        let resp = cloudflare_queues::reqwest::Client::new()
            .request(op.method.clone(), format!("{}{path}", emu.base_url()))
            .bearer_auth("t")
            .body("{}")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_ne!(
            body["errors"][0]["code"], 7003,
            "{} {} has no route",
            op.method, op.path
        );
    }
    assert_eq!(emu.total_requests(), 2 + ops::ALL.len() as u64);
}

#[tokio::test]
async fn extended_leases_get_new_ids_and_deadlines_without_an_attempt() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let q = pull_queue(&client, "extend", 5, 0, None).await;
    q.send_batch(["a", "b"]).await.unwrap();
    let pulled = q
        .pull()
        .batch_size(2)
        .visibility_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(pulled.messages.len(), 2);

    emu.advance(Duration::from_secs(8));
    let extended = q
        .extend_leases(&pulled.messages, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(extended.requests, 1);
    assert_eq!(extended.extend_count, Some(2));
    let mut new_leases = Vec::new();
    for (lease, m) in extended.leases.iter().zip(&pulled.messages) {
        assert_eq!(lease.lease_id, m.lease_id);
        match &lease.outcome {
            ExtensionOutcome::Renewed { lease_id } => {
                assert_ne!(lease_id, &m.lease_id, "a new lease id");
                new_leases.push(lease_id.clone());
            }
            other => panic!("expected a renewal, got {other:?}"),
        }
    }

    // Past the first deadline (10 s) but within the extended one (18 s): still leased.
    emu.advance(Duration::from_secs(5));
    assert!(
        q.pull().await.unwrap().messages.is_empty(),
        "nothing expired"
    );
    let info = emu.messages(q.id());
    assert!(
        info.iter()
            .all(|m| m.state == MessageState::Leased && m.extensions == 1 && m.expiries == 0)
    );

    // The old lease id still acknowledges (acks are permissive); the new one works too.
    q.ack()
        .ack(pulled.messages[0].lease_id.clone())
        .await
        .unwrap();
    q.ack().ack(new_leases[1].clone()).await.unwrap();
    let info = emu.messages(q.id());
    assert!(
        info.iter()
            .all(|m| m.state == MessageState::Acked && m.deliveries == 1)
    );
}

#[tokio::test]
async fn an_extended_lease_expires_at_its_new_deadline_with_attempts_unchanged() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let q = pull_queue(&client, "extend-expiry", 5, 0, None).await;
    q.send("slow job").await.unwrap();
    let first = q
        .pull()
        .visibility_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    emu.advance(Duration::from_secs(9));
    q.extend_leases(&first.messages, Duration::from_secs(10))
        .await
        .unwrap();
    // The original expiry (at 10 s) passes without effect...
    emu.advance(Duration::from_secs(5));
    assert!(q.pull().await.unwrap().messages.is_empty());
    // ...the new one (at 19 s) redelivers, as the second attempt, not a third.
    emu.advance(Duration::from_secs(6));
    let again = q.pull().await.unwrap();
    assert_eq!(again.messages.len(), 1);
    assert_eq!(again.messages[0].attempts, 2);
    let info = &emu.messages(q.id())[0];
    assert_eq!((info.deliveries, info.extensions, info.expiries), (2, 1, 1));
}

#[tokio::test]
async fn expired_settled_and_unknown_leases_are_not_extended_and_are_named() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let q = pull_queue(&client, "extend-late", 5, 0, None).await;
    q.send_batch(["expires", "acked", "live"]).await.unwrap();
    let pulled = q
        .pull()
        .batch_size(3)
        .visibility_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    let lease = |body: &str| {
        pulled
            .messages
            .iter()
            .find(|m| m.text().unwrap() == body)
            .unwrap()
            .clone()
    };
    let (expires, acked, live) = (lease("expires"), lease("acked"), lease("live"));
    q.ack().ack(acked.lease_id.clone()).await.unwrap();
    // Let the first lease run out, then take a fresh lease on `live` alone.
    emu.advance(Duration::from_secs(5));
    q.extend_leases([&live], Duration::from_secs(10))
        .await
        .unwrap();
    emu.advance(Duration::from_secs(6));
    let out = q
        .extend_leases([&expires, &acked, &live], Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        matches!(&out.leases[0].outcome, ExtensionOutcome::NotExtended { warning } if warning.contains("expired")),
        "{out:?}"
    );
    assert!(
        matches!(&out.leases[1].outcome, ExtensionOutcome::NotExtended { warning } if warning.contains("acknowledged")),
        "{out:?}"
    );
    assert!(
        matches!(&out.leases[2].outcome, ExtensionOutcome::Renewed { .. }),
        "old ids of a live lease still extend: {out:?}"
    );
    let unknown = q
        .extend_leases(["lease-nope"], Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        matches!(&unknown.leases[0].outcome, ExtensionOutcome::NotExtended { warning } if warning.contains("unknown"))
    );
    assert_eq!(emu.requests(&ops::EXTEND_LEASES), 3);
}
