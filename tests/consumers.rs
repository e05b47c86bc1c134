//! Consumers against wiremock: exact requests and decoded results of both kinds.

mod common;

use cloudflare_queues::Error;
use cloudflare_queues::models::{
    Consumer, HttpPullConsumerRequest, MaxConcurrency, WorkerConsumerRequest,
};
use common::*;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_json, method, path as path_is};
use wiremock::{Mock, MockServer};

const CONSUMER: &str = "9f2c1d5e8a7b4c3d2e1f0a9b8c7d6e5f";

fn consumers_path() -> String {
    path(&format!("/queues/{QUEUE}/consumers"))
}

fn consumer_path() -> String {
    format!("{}/{CONSUMER}", consumers_path())
}

fn worker_json() -> serde_json::Value {
    json!({
        "consumer_id": "023e105f4ecef8ad9ca31a8372d0c353",
        "created_on": "2019-12-27T18:11:19.117Z",
        "dead_letter_queue": "",
        "queue_name": "example-queue",
        "script_name": "my-consumer-worker",
        "settings": {"batch_size": 50, "max_concurrency": 10, "max_retries": 3, "max_wait_time_ms": 5000, "retry_delay": 10},
        "type": "worker"
    })
}

#[tokio::test]
async fn list_decodes_worker_and_http_pull_consumers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(consumers_path()))
        .respond_with(fixture_response("consumers.json"))
        .expect(1)
        .mount(&server)
        .await;
    let consumers = client(&server)
        .queue(QUEUE)
        .consumers()
        .list()
        .await
        .unwrap();
    assert_eq!(consumers.len(), 2);

    let Consumer::Worker(worker) = &consumers[0] else {
        panic!("{:?}", consumers[0])
    };
    assert_eq!(worker.script_name.as_deref(), Some("my-consumer-worker"));
    assert_eq!(worker.dead_letter_queue, None);
    assert_eq!(consumers[0].dead_letter_queue(), None);
    assert_eq!(consumers[0].script_name(), Some("my-consumer-worker"));
    assert_eq!(consumers[0].batch_size(), Some(50));
    let ws = worker.settings.as_ref().unwrap();
    assert_eq!(ws.max_concurrency, Some(MaxConcurrency::Limit(10)));
    assert_eq!(
        consumers[0].max_concurrency(),
        Some(MaxConcurrency::Limit(10))
    );
    assert_eq!(ws.max_wait_time, Some(Duration::from_secs(5)));

    let Consumer::HttpPull(pull) = &consumers[1] else {
        panic!("{:?}", consumers[1])
    };
    assert!(consumers[1].is_http_pull());
    assert_eq!(consumers[1].consumer_id(), Some(CONSUMER));
    assert_eq!(pull.dead_letter_queue.as_deref(), Some("example-dlq"));
    assert_eq!(consumers[1].dead_letter_queue(), Some("example-dlq"));
    assert_eq!(consumers[1].queue_name(), Some("example-queue"));
    assert_eq!(consumers[1].created_on(), Some("2024-03-20T16:09:14.154Z"));
    let ps = pull.settings.as_ref().unwrap();
    assert_eq!(ps.batch_size, Some(100), "100.0 on the wire reads as 100");
    assert_eq!(ps.max_retries, Some(5));
    assert_eq!(ps.retry_delay, Some(Duration::from_secs(30)));
    assert_eq!(ps.visibility_timeout, Some(Duration::from_secs(60)));
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn create_http_pull_is_one_call_with_every_setting() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(consumers_path()))
        .and(body_json(json!({
            "type": "http_pull",
            "dead_letter_queue": "example-dlq",
            "settings": {"batch_size": 25, "max_retries": 5, "retry_delay": 30, "visibility_timeout_ms": 60000}
        })))
        .respond_with(fixture_response("consumer_http_pull.json"))
        .expect(1)
        .mount(&server)
        .await;
    let consumer = client(&server)
        .queue(QUEUE)
        .consumers()
        .create_http_pull()
        .batch_size(25)
        .max_retries(5)
        .retry_delay(Duration::from_secs(30))
        .visibility_timeout(Duration::from_secs(60))
        .dead_letter_queue("example-dlq")
        .await
        .unwrap();
    assert!(consumer.is_http_pull());
    assert_eq!(consumer.consumer_id(), Some(CONSUMER));
    assert_eq!(consumer.dead_letter_queue(), Some("example-dlq"));
    assert_eq!(consumer.max_retries(), Some(5));
    assert_eq!(consumer.retry_delay(), Some(Duration::from_secs(30)));
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn create_http_pull_with_defaults_sends_only_the_type() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(consumers_path()))
        .and(body_json(json!({"type": "http_pull"})))
        .respond_with(fixture_response("consumer_http_pull.json"))
        .expect(1)
        .mount(&server)
        .await;
    let consumer = client(&server)
        .queue(QUEUE)
        .consumers()
        .create_http_pull()
        .await
        .unwrap();
    assert!(consumer.is_http_pull());
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn create_worker_sends_the_script_and_settings() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(consumers_path()))
        .and(body_json(json!({
            "type": "worker",
            "script_name": "my-consumer-worker",
            "dead_letter_queue": "example-dlq",
            "settings": {"batch_size": 50, "max_concurrency": 10, "max_retries": 3, "max_wait_time_ms": 5000, "retry_delay": 10}
        })))
        .respond_with(ok(worker_json()))
        .expect(1)
        .mount(&server)
        .await;
    let consumer = client(&server)
        .queue(QUEUE)
        .consumers()
        .create_worker("my-consumer-worker")
        .batch_size(50)
        .max_concurrency(10)
        .max_retries(3)
        .max_wait_time(Duration::from_secs(5))
        .retry_delay(Duration::from_secs(10))
        .dead_letter_queue("example-dlq")
        .await
        .unwrap();
    assert!(consumer.is_worker());
    assert_eq!(
        consumer.consumer_id(),
        Some("023e105f4ecef8ad9ca31a8372d0c353")
    );
    assert_eq!(consumer.dead_letter_queue(), None);
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn worker_max_concurrency_null_is_sent_apart_from_absent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(consumers_path()))
        .respond_with(ok(worker_json()))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_is(consumer_path()))
        .respond_with(ok(worker_json()))
        .expect(1)
        .mount(&server)
        .await;
    let consumers = client(&server).queue(QUEUE).consumers();

    consumers
        .create_worker("w")
        .max_concurrency(MaxConcurrency::PlatformMaximum)
        .await
        .unwrap();
    consumers
        .create_worker("w")
        .max_concurrency(4)
        .await
        .unwrap();
    consumers.create_worker("w").batch_size(5).await.unwrap();
    consumers
        .update(
            CONSUMER,
            WorkerConsumerRequest::new("w").with_max_concurrency(MaxConcurrency::PlatformMaximum),
        )
        .await
        .unwrap();

    let created = bodies(&server, &consumers_path()).await;
    assert_eq!(
        created,
        [
            json!({"type": "worker", "script_name": "w", "settings": {"max_concurrency": null}}),
            json!({"type": "worker", "script_name": "w", "settings": {"max_concurrency": 4}}),
            json!({"type": "worker", "script_name": "w", "settings": {"batch_size": 5}}),
        ]
    );
    // `null` is really on the wire, not merely equal to an absent key after parsing.
    let raw = &requests(&server, &consumers_path()).await[0].body;
    assert!(
        std::str::from_utf8(raw)
            .unwrap()
            .contains(r#""max_concurrency":null"#),
        "{}",
        String::from_utf8_lossy(raw)
    );
    assert!(
        !created[2]["settings"]
            .as_object()
            .unwrap()
            .contains_key("max_concurrency"),
        "unset means the key is absent"
    );
    assert_eq!(
        bodies(&server, &consumer_path()).await,
        [json!({"type": "worker", "script_name": "w", "settings": {"max_concurrency": null}})]
    );
}

#[tokio::test]
async fn worker_environment_name_is_sent_when_given() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(consumers_path()))
        .and(body_json(json!({
            "type": "worker",
            "script_name": "my-consumer-worker",
            "environment_name": "production",
            "settings": {"max_concurrency": null}
        })))
        .respond_with(ok(worker_json()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_is(consumer_path()))
        .and(body_json(json!({
            "type": "worker",
            "script_name": "my-consumer-worker",
            "environment_name": ""
        })))
        .respond_with(ok(worker_json()))
        .expect(1)
        .mount(&server)
        .await;
    let consumers = client(&server).queue(QUEUE).consumers();
    consumers
        .create_worker("my-consumer-worker")
        .environment_name("production")
        .max_concurrency(MaxConcurrency::PlatformMaximum)
        .await
        .unwrap();
    // The empty string is what wrangler sends for the default environment.
    consumers
        .update(
            CONSUMER,
            WorkerConsumerRequest::new("my-consumer-worker").with_environment_name(""),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn worker_responses_with_null_concurrency_and_unmodelled_fields_decode() {
    let server = MockServer::start().await;
    let mut worker = worker_json();
    worker["settings"]["max_concurrency"] = json!(null);
    worker["environment_name"] = json!("staging");
    worker["settings"]["some_future_setting"] = json!({"on": true});
    let notification = json!({
        "type": "notification", "consumer_id": "c-notify", "queue_name": "example-queue",
        "destination": {"kind": "webhook", "url": "https://example.com/hook"}
    });
    Mock::given(method("GET"))
        .and(path_is(consumers_path()))
        .respond_with(ok(json!([worker, notification])))
        .expect(1)
        .mount(&server)
        .await;
    let consumers = client(&server)
        .queue(QUEUE)
        .consumers()
        .list()
        .await
        .unwrap();
    assert_eq!(
        consumers[0].max_concurrency(),
        Some(MaxConcurrency::PlatformMaximum)
    );
    assert_eq!(consumers[0].batch_size(), Some(50));
    let Consumer::Unknown(raw) = &consumers[1] else {
        panic!("{:?}", consumers[1])
    };
    assert_eq!(raw["destination"]["kind"], "webhook");
    assert_eq!(consumers[1].consumer_id(), Some("c-notify"));
}

#[tokio::test]
async fn create_takes_a_request_value() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(consumers_path()))
        .and(body_json(
            json!({"type": "http_pull", "settings": {"batch_size": 10}}),
        ))
        .respond_with(fixture_response("consumer_http_pull.json"))
        .expect(1)
        .mount(&server)
        .await;
    let consumer = client(&server)
        .queue(QUEUE)
        .consumers()
        .create(HttpPullConsumerRequest::new().with_batch_size(10))
        .await
        .unwrap();
    assert_eq!(
        consumer.batch_size(),
        Some(25),
        "the server's answer is returned"
    );
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn get_fetches_one_consumer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(consumer_path()))
        .respond_with(fixture_response("consumer_http_pull.json"))
        .expect(1)
        .mount(&server)
        .await;
    let consumer = client(&server)
        .queue(QUEUE)
        .consumers()
        .get(CONSUMER)
        .await
        .unwrap();
    let Consumer::HttpPull(pull) = consumer else {
        panic!("{consumer:?}")
    };
    assert_eq!(
        pull.settings.unwrap().visibility_timeout,
        Some(Duration::from_millis(60_000))
    );
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn update_puts_the_whole_configuration() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_is(consumer_path()))
        .and(body_json(json!({
            "type": "worker",
            "script_name": "my-consumer-worker",
            "settings": {"max_retries": 10, "max_wait_time_ms": 500}
        })))
        .respond_with(ok(worker_json()))
        .expect(1)
        .mount(&server)
        .await;
    let consumer = client(&server)
        .queue(QUEUE)
        .consumers()
        .update(
            CONSUMER,
            WorkerConsumerRequest::new("my-consumer-worker")
                .with_max_retries(10)
                .with_max_wait_time(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert_eq!(consumer.script_name(), Some("my-consumer-worker"));
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn delete_accepts_an_envelope_without_result() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path_is(consumer_path()))
        .respond_with(ok_bare())
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path_is(consumer_path()))
        .respond_with(ok(serde_json::Value::Null))
        .expect(1)
        .mount(&server)
        .await;
    let consumers = client(&server).queue(QUEUE).consumers();
    consumers.delete(CONSUMER).await.unwrap();
    consumers.delete(CONSUMER).await.unwrap();
    assert_eq!(requests(&server, &consumer_path()).await.len(), 2);
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn out_of_range_settings_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let consumers = client(&server).queue(QUEUE).consumers();
    let cases: Vec<(Error, &str)> = vec![
        (
            consumers
                .create_http_pull()
                .batch_size(0)
                .await
                .unwrap_err(),
            "batch_size",
        ),
        (
            consumers
                .create_http_pull()
                .batch_size(101)
                .await
                .unwrap_err(),
            "batch_size",
        ),
        (
            consumers
                .create_http_pull()
                .visibility_timeout(Duration::ZERO)
                .await
                .unwrap_err(),
            "visibility_timeout",
        ),
        (
            consumers
                .create_http_pull()
                .visibility_timeout(Duration::from_secs(13 * 3600))
                .await
                .unwrap_err(),
            "visibility_timeout",
        ),
        (
            consumers
                .create_http_pull()
                .max_retries(101)
                .await
                .unwrap_err(),
            "max_retries",
        ),
        (
            consumers
                .create_http_pull()
                .retry_delay(Duration::from_secs(24 * 3600 + 1))
                .await
                .unwrap_err(),
            "retry_delay",
        ),
        (
            consumers
                .create_http_pull()
                .dead_letter_queue("")
                .await
                .unwrap_err(),
            "dead_letter_queue",
        ),
        (
            consumers
                .create_worker("w")
                .batch_size(101)
                .await
                .unwrap_err(),
            "batch_size",
        ),
        (
            consumers
                .create_worker("w")
                .max_wait_time(Duration::from_secs(61))
                .await
                .unwrap_err(),
            "max_wait_time",
        ),
        (
            consumers
                .create_worker("w")
                .max_concurrency(0)
                .await
                .unwrap_err(),
            "max_concurrency",
        ),
        (
            consumers.create_worker("").await.unwrap_err(),
            "script_name",
        ),
        (
            consumers
                .update(CONSUMER, HttpPullConsumerRequest::new().with_batch_size(0))
                .await
                .unwrap_err(),
            "batch_size",
        ),
        (
            consumers
                .update("", HttpPullConsumerRequest::new())
                .await
                .unwrap_err(),
            "consumer_id",
        ),
        (consumers.get("").await.unwrap_err(), "consumer_id"),
        (consumers.delete(" ").await.unwrap_err(), "consumer_id"),
    ];
    for (e, field) in cases {
        assert!(
            matches!(&e, Error::InvalidInput { field: f, .. } if f == field),
            "expected `{field}`: {e}"
        );
    }
    let e = consumers
        .create_http_pull()
        .visibility_timeout(Duration::from_secs(13 * 3600))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("allowed 1 ms to 12h"), "{e}");
}
