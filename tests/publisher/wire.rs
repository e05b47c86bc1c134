//! What the Publisher puts on the wire, against wiremock.

use cloudflare_queues::Client;
use cloudflare_queues::models::Message;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const QUEUE: &str = "b01b5594f784d0165c2985833f5660dd";

fn batch_path() -> String {
    format!("/client/v4/accounts/{ACCOUNT}/queues/{QUEUE}/messages/batch")
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(batch_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": true, "errors": [], "messages": [], "result": {}
        })))
        .mount(&server)
        .await;
    server
}

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_token("token")
        .account_id(ACCOUNT)
        .base_url(format!("{}/client/v4", server.uri()))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Bodies that JSON must escape: quotes, backslashes, newlines, control characters.
fn awkward(i: usize) -> Message {
    let unit = ["\"", "\\", "\n", "\u{1}", "é", "x"][i % 6];
    Message::text(unit.repeat(20 + (i * 37) % 200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_never_exceed_max_bytes_as_encoded_and_are_filled_greedily() {
    let server = server().await;
    let max_bytes = 2_000;
    let publisher = client(&server)
        .queue(QUEUE)
        .publisher()
        .max_bytes(max_bytes)
        // One request at a time, so they arrive in the order they were formed.
        .max_concurrent_requests(1)
        // Batches leave only when full or flushed, so the split is by bytes alone.
        .max_delay(Duration::from_secs(5))
        .build()
        .unwrap();
    let messages: Vec<Message> = (0..120).map(awkward).collect();
    let futures: Vec<_> = messages
        .iter()
        .cloned()
        .map(|m| publisher.publish(m))
        .collect();
    publisher.flush().await;
    for r in futures::future::join_all(futures).await {
        r.unwrap();
    }
    publisher.shutdown().await;

    // The split a greedy packer makes over the encoded sizes: `{"messages":[` + the
    // messages joined by commas + `]}` within max_bytes.
    let encoded: Vec<usize> = messages
        .iter()
        .map(|m| serde_json::to_vec(m).unwrap().len())
        .collect();
    let mut expected = Vec::new();
    let (mut len, mut bytes) = (0, 15);
    for size in &encoded {
        let with = bytes + size + usize::from(len > 0);
        if len > 0 && with > max_bytes {
            expected.push(len);
            (len, bytes) = (0, 15);
        }
        bytes += size + usize::from(len > 0);
        len += 1;
    }
    expected.push(len);

    let received = server.received_requests().await.unwrap();
    let mut sizes = Vec::new();
    let mut bodies = Vec::new();
    for request in &received {
        assert!(
            request.body.len() <= max_bytes,
            "{} bytes",
            request.body.len()
        );
        let value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let batch = value["messages"].as_array().unwrap();
        sizes.push(batch.len());
        bodies.extend(batch.iter().cloned());
    }
    assert_eq!(sizes, expected);
    // Counting raw body sizes instead would have packed fewer, larger requests.
    let raw: usize = messages.iter().map(Message::size).sum();
    assert!(raw / max_bytes + 1 < expected.len(), "the contrast holds");
    let sent: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    assert_eq!(bodies, sent, "every message, once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_moves_good_entries_and_leaves_malformed_ones_in_the_source() {
    const SOURCE: &str = "0000000000000000000000000000dead";
    let server = server().await;
    let source_path =
        |rest: &str| format!("/client/v4/accounts/{ACCOUNT}/queues/{SOURCE}/messages/{rest}");
    let body = br#"{"success":true,"errors":[],"messages":[],"result":{"messages":[
        {"id":"good","lease_id":"l-good","attempts":1,"body":"payload","metadata":{"CF-Content-Type":"text"},"timestamp_ms":1},
        {"id":"bad","lease_id":"l-bad","attempts":-1,"body":"x","metadata":{},"timestamp_ms":1},
        {"id":"nolease","attempts":1,"body":"x","metadata":{},"timestamp_ms":1}
    ]}}"#;
    Mock::given(method("POST"))
        .and(path(source_path("pull")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), "application/json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(source_path("pull")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": true, "errors": [], "messages": [], "result": {"messages": []}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(source_path("ack")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": true, "errors": [], "messages": [], "result": {"ackCount": 1, "retryCount": 1}
        })))
        .mount(&server)
        .await;
    let c = client(&server);
    let report = c
        .queue(SOURCE)
        .redrive_to(&c.queue(QUEUE))
        .concurrency(1)
        .await
        .unwrap();
    assert_eq!(
        (report.pulled, report.moved, report.skipped),
        (3, 1, 2),
        "{report:?}"
    );
    assert!(report.is_balanced());
    let requests = server.received_requests().await.unwrap();
    let ack: serde_json::Value = requests
        .iter()
        .find(|r| r.url.path().ends_with("/ack"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .unwrap();
    assert_eq!(ack["acks"], serde_json::json!([{"lease_id": "l-good"}]));
    assert_eq!(
        ack["retries"][0]["lease_id"], "l-bad",
        "left in the source, delayed"
    );
}
