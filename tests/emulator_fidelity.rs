//! The same client calls against wiremock (serving fixtures shaped like Cloudflare's API
//! reference examples) and against the emulator must decode to the same results, up to
//! ids and timestamps. This keeps the emulator's wire format honest: the emulator and the
//! client share models, so only an independent fixture can catch a wrong field name.

mod common;

use cloudflare_queues::emulator::{Emulator, SeedMessage};
use cloudflare_queues::models::{ContentType, EventSource};
use cloudflare_queues::{Client, QueueHandle};
use common::{fixture_response, path};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path as path_is};
use wiremock::{Mock, MockServer};

/// Fields whose values are ids or times, and so differ between any two servers.
const VOLATILE: &[&str] = &[
    "queue_id",
    "consumer_id",
    "created_on",
    "modified_on",
    "created_at",
    "modified_at",
    "id",
    "lease_id",
    "ref",
    "timestamp_ms",
    "oldest_message_timestamp_ms",
];

fn normalized<T: Serialize>(value: &T) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if VOLATILE.contains(&k.as_str()) {
                        *v = json!("<volatile>");
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(value).unwrap();
    walk(&mut v);
    v
}

/// The structure of a value: every scalar replaced by its JSON type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

async fn mock(fixture: &str, http_method: &str, rest: &str) -> (MockServer, Client) {
    let server = MockServer::start().await;
    Mock::given(method(http_method))
        .and(path_is(path(rest)))
        .respond_with(fixture_response(fixture))
        .mount(&server)
        .await;
    let client = common::client(&server);
    (server, client)
}

async fn emulated_queue(emu: &Emulator, name: &str) -> QueueHandle {
    let client = emu.client();
    let queue = client.queues().create(name).await.unwrap();
    client.queue(queue.queue_id.unwrap())
}

#[tokio::test]
async fn get_queue_with_a_worker_consumer() {
    let (_server, client) = mock("queue.json", "GET", &format!("/queues/{}", common::QUEUE)).await;
    let mut reference = normalized(&client.queue(common::QUEUE).get().await.unwrap());

    let emu = Emulator::start().await.unwrap();
    let q = emulated_queue(&emu, "example-queue").await;
    q.edit()
        .delivery_delay(Duration::from_secs(5))
        .delivery_paused(true)
        .message_retention_period(Duration::from_secs(345_600))
        .await
        .unwrap();
    q.consumers()
        .create_worker("my-consumer-worker")
        .batch_size(50)
        .max_concurrency(10)
        .max_retries(3)
        .max_wait_time(Duration::from_millis(5000))
        .retry_delay(Duration::from_secs(10))
        .await
        .unwrap();
    let mut emulated = normalized(&q.get().await.unwrap());

    // The emulator has no Workers, so no producers; everything else must match.
    for v in [&mut reference, &mut emulated] {
        let map = v.as_object_mut().unwrap();
        map.remove("producers");
        map.remove("producers_total_count");
    }
    assert_eq!(emulated, reference);
}

#[tokio::test]
async fn create_http_pull_consumer() {
    let (_server, client) = mock(
        "consumer_http_pull.json",
        "POST",
        &format!("/queues/{}/consumers", common::QUEUE),
    )
    .await;
    let build = |q: QueueHandle| {
        q.consumers()
            .create_http_pull()
            .batch_size(25)
            .max_retries(5)
            .retry_delay(Duration::from_secs(30))
            .visibility_timeout(Duration::from_secs(60))
            .dead_letter_queue("example-dlq")
    };
    let reference = normalized(&build(client.queue(common::QUEUE)).await.unwrap());
    let emu = Emulator::start().await.unwrap();
    let emulated = normalized(
        &build(emulated_queue(&emu, "example-queue").await)
            .await
            .unwrap(),
    );
    assert_eq!(emulated, reference);
}

#[tokio::test]
async fn pull_decodes_the_same_bodies() {
    let (_server, client) = mock(
        "pull.json",
        "POST",
        &format!("/queues/{}/messages/pull", common::QUEUE),
    )
    .await;
    let reference = client.queue(common::QUEUE).pull().await.unwrap();

    let emu = Emulator::start().await.unwrap();
    let q = emulated_queue(&emu, "example-queue").await;
    q.consumers().create_http_pull().await.unwrap();
    emu.seed(
        q.id(),
        [
            SeedMessage::text("hello world"),
            SeedMessage::json(&json!({"order": 42, "items": ["a", "b"]})).unwrap(),
            SeedMessage::bytes(vec![0u8, 1, 2, 255]),
        ],
    )
    .unwrap();
    let emulated = q.pull().batch_size(3).await.unwrap();

    assert_eq!(emulated.messages.len(), 3);
    for (r, e) in reference.messages.iter().zip(&emulated.messages) {
        assert_eq!(e.content_type(), r.content_type());
        if e.content_type() == ContentType::Json {
            // Same JSON; object key order is not significant.
            assert_eq!(e.json::<Value>().unwrap(), r.json::<Value>().unwrap());
        } else {
            assert_eq!(e.bytes().unwrap(), r.bytes().unwrap());
        }
        assert_eq!(
            e.metadata.to_map().keys().cloned().collect::<Vec<_>>(),
            r.metadata.to_map().keys().cloned().collect::<Vec<_>>()
        );
        assert_eq!(shape(&normalized(e)), shape(&normalized(r)));
    }
    assert_eq!(emulated.messages[1].content_type(), ContentType::Json);
    let mut r = serde_json::to_value(&reference).unwrap();
    let mut e = serde_json::to_value(&emulated).unwrap();
    for v in [&mut r, &mut e] {
        v.as_object_mut().unwrap().remove("messages");
    }
    assert_eq!(shape(&e), shape(&r), "backlog count and metrics");
}

#[tokio::test]
async fn ack_counts_and_warnings() {
    let (_server, client) = mock(
        "ack.json",
        "POST",
        &format!("/queues/{}/messages/ack", common::QUEUE),
    )
    .await;
    let reference = client
        .queue(common::QUEUE)
        .ack()
        .acks(["l1", "l2", "lease-unknown"])
        .retry("l3", None)
        .await
        .unwrap();

    let emu = Emulator::start().await.unwrap();
    let q = emulated_queue(&emu, "example-queue").await;
    q.consumers().create_http_pull().await.unwrap();
    q.send_batch(["a", "b", "c"]).await.unwrap();
    let leases: Vec<String> = q
        .pull()
        .batch_size(3)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.lease_id)
        .collect();
    let emulated = q
        .ack()
        .acks([
            leases[0].clone(),
            leases[1].clone(),
            "lease-unknown".to_owned(),
        ])
        .retry(leases[2].clone(), None)
        .await
        .unwrap();

    assert_eq!(
        (emulated.ack_count, emulated.retry_count),
        (reference.ack_count, reference.retry_count)
    );
    let lease_ids = |w: &[cloudflare_queues::models::AckWarning]| {
        w.iter().map(|w| w.lease_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        lease_ids(&emulated.warnings),
        lease_ids(&reference.warnings)
    );
}

#[tokio::test]
async fn push_metrics_and_peek_have_the_reference_shape() {
    let emu = Emulator::start().await.unwrap();
    let q = emulated_queue(&emu, "example-queue").await;
    q.consumers().create_http_pull().await.unwrap();

    let (_s1, c1) = mock(
        "push.json",
        "POST",
        &format!("/queues/{}/messages", common::QUEUE),
    )
    .await;
    let reference = c1.queue(common::QUEUE).send("x").await.unwrap();
    let emulated = q.send("hello world").await.unwrap();
    assert_eq!(
        shape(&serde_json::to_value(&emulated).unwrap()),
        shape(&serde_json::to_value(&reference).unwrap())
    );

    let (_s2, c2) = mock(
        "metrics.json",
        "GET",
        &format!("/queues/{}/metrics", common::QUEUE),
    )
    .await;
    let reference = c2.queue(common::QUEUE).metrics().await.unwrap();
    let emulated = q.metrics().await.unwrap();
    assert_eq!(
        shape(&serde_json::to_value(&emulated).unwrap()),
        shape(&serde_json::to_value(&reference).unwrap())
    );

    let (_s3, c3) = mock(
        "peek.json",
        "POST",
        &format!("/queues/{}/messages/peek", common::QUEUE),
    )
    .await;
    let reference = c3.queue(common::QUEUE).peek().await.unwrap();
    let emulated = q.peek().await.unwrap();
    assert_eq!(
        emulated.messages[0].text().unwrap(),
        reference.messages[0].text().unwrap()
    );
    assert_eq!(
        shape(&serde_json::to_value(&emulated.messages[0]).unwrap()),
        shape(&serde_json::to_value(&reference.messages[0]).unwrap())
    );
}

#[tokio::test]
async fn create_event_subscription() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(path("/event_subscriptions/subscriptions")))
        .respond_with(fixture_response("subscription.json"))
        .mount(&server)
        .await;
    let create = |c: Client, queue_id: String| async move {
        c.event_subscriptions()
            .create(
                "checkout-failures",
                EventSource::workflow("checkout"),
                queue_id,
                ["instance.errored", "instance.terminated"],
            )
            .enabled(true)
            .await
            .unwrap()
    };
    let reference = normalized(&create(common::client(&server), common::QUEUE.to_owned()).await);
    let emu = Emulator::start().await.unwrap();
    let q = emulated_queue(&emu, "example-queue").await;
    let emulated = normalized(&create(emu.client(), q.id().to_owned()).await);
    assert_eq!(emulated, reference);
}
