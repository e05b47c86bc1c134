//! Purge (confirmed), purge status, peek and purge by ref against wiremock.

mod common;

use cloudflare_queues::Error;
use cloudflare_queues::models::ContentType;
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path as path_is};
use wiremock::{Mock, MockServer};

fn purge_path() -> String {
    path(&format!("/queues/{QUEUE}/purge"))
}

fn messages_path(suffix: &str) -> String {
    path(&format!("/queues/{QUEUE}/messages{suffix}"))
}

#[tokio::test]
async fn a_confirmed_purge_sends_the_confirmation_flag() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(purge_path()))
        .and(body_json(json!({"delete_messages_permanently": true})))
        .respond_with(fixture_response("queue.json"))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);

    // The confirmation step alone sends nothing.
    let step = queue.purge();
    assert!(server.received_requests().await.unwrap().is_empty());

    let purged = step.delete_all_messages_permanently().await.unwrap();
    assert_eq!(purged.queue_name.as_deref(), Some("example-queue"));
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn purge_status_reads_completed_as_string_or_bool() {
    let server = MockServer::start().await;
    for completed in [json!("true"), json!(false), json!("false"), json!(true)] {
        Mock::given(method("GET"))
            .and(path_is(purge_path()))
            .respond_with(ok(
                json!({"completed": completed, "started_at": "2024-03-20T16:09:14.154Z"}),
            ))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
    }
    let queue = client(&server).queue(QUEUE);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let status = queue.purge_status().await.unwrap();
        assert_eq!(
            status.started_at.as_deref(),
            Some("2024-03-20T16:09:14.154Z")
        );
        seen.push((status.completed, status.is_completed()));
    }
    assert_eq!(
        seen,
        [
            (Some(true), true),
            (Some(false), false),
            (Some(false), false),
            (Some(true), true)
        ]
    );
    assert!(
        requests(&server, &purge_path())
            .await
            .iter()
            .all(|r| r.method.as_str() == "GET" && r.body.is_empty())
    );
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn peek_sends_the_batch_size_and_decodes_refs_and_bodies() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("/peek")))
        .and(body_json(json!({"batch_size": 10})))
        .respond_with(fixture_response("peek.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("/peek")))
        .and(body_json(json!({})))
        .respond_with(ok(json!({"messages": []})))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    let peeked = queue.peek().batch_size(10).await.unwrap();
    assert_eq!(peeked.messages.len(), 2);

    let text = &peeked.messages[0];
    assert_eq!(text.id, "b01b5594f784d0165c2985833f5660dd");
    assert_eq!(text.peek_ref, "eyJzaGFyZCI6MywibWVzc2FnZSI6ImIwMWI1NTk0In0");
    assert_eq!(text.content_type(), ContentType::Text);
    assert_eq!(text.text().unwrap(), "hello world");
    assert_eq!(text.timestamp_ms, 1_710_950_954_154);

    let json_msg = &peeked.messages[1];
    assert_eq!(json_msg.attempts, 4);
    assert_eq!(
        json_msg.json::<Value>().unwrap(),
        json!({"order": 42, "items": ["a", "b"]})
    );

    assert!(queue.peek().await.unwrap().messages.is_empty());
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn purge_messages_sends_the_refs_and_decodes_errors_and_warnings() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(messages_path("/purge")))
        .and(body_json(
            json!({"refs": [{"ref": "ref-a"}, {"ref": "ref-b"}]}),
        ))
        .respond_with(ok(json!({
            "errors": [{"message": "ref-a could not be purged"}],
            "warnings": {"ref-b": "message already deleted"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let result = client(&server)
        .queue(QUEUE)
        .purge_messages(["ref-a", "ref-b"])
        .await
        .unwrap();
    assert_eq!(
        result.errors[0].message.as_deref(),
        Some("ref-a could not be purged")
    );
    assert_eq!(result.warnings["ref-b"], "message already deleted");
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn bad_input_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    let cases: Vec<(Error, &str)> = vec![
        (
            queue
                .purge_messages(Vec::<String>::new())
                .await
                .unwrap_err(),
            "refs",
        ),
        (
            queue.purge_messages(["a", ""]).await.unwrap_err(),
            "refs[1]",
        ),
        (queue.peek().batch_size(0).await.unwrap_err(), "batch_size"),
        (
            queue.peek().batch_size(101).await.unwrap_err(),
            "batch_size",
        ),
    ];
    for (e, field) in cases {
        assert!(
            matches!(&e, Error::InvalidInput { field: f, .. } if f == field),
            "expected `{field}`: {e}"
        );
    }
}
