//! Server behaviours the emulator does not produce, scripted with wiremock: more
//! messages than asked for, an ack batch refused as a whole.

use super::support::*;
use cloudflare_queues::consumer::ShutdownMode;
use cloudflare_queues::{Client, RetryPolicy};
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT: &str = "acc";
const QUEUE: &str = "q1";

fn envelope(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"success": true, "errors": [], "messages": [], "result": result}))
}

fn pulled(lease: &str) -> Value {
    json!({"id": format!("id-{lease}"), "attempts": 1, "body": lease, "lease_id": lease,
           "metadata": {"CF-Content-Type": "text"}, "timestamp_ms": 1_700_000_000_000u64})
}

/// A mock queue: the first pull returns `first`, later pulls nothing; acks go to `ack`.
async fn mock_queue(
    first: Vec<Value>,
    ack: impl wiremock::Respond + 'static,
) -> (MockServer, Client) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/messages/pull$"))
        .respond_with(envelope(json!({"messages": first})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/messages/pull$"))
        .respond_with(envelope(json!({"messages": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/messages/ack$"))
        .respond_with(ack)
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_token("t")
        .account_id(ACCOUNT)
        .base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    (server, client)
}

fn ack_bodies(requests: &[Request]) -> Vec<Vec<String>> {
    requests
        .iter()
        .filter(|r| r.url.path().ends_with("/ack"))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["acks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["lease_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_messages_than_asked_for_are_all_handled() {
    bounded(async {
        let accept_all = |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            envelope(json!({"ackCount": body["acks"].as_array().unwrap().len(), "retryCount": 0}))
        };
        let (server, client) =
            mock_queue(vec![pulled("l1"), pulled("l2"), pulled("l3")], accept_all).await;
        // One slot, so the consumer asks for one message; the server sends three.
        let mut stream = fast_consumer(&client.queue(QUEUE))
            .max_in_flight(1)
            .build()
            .unwrap()
            .stream();
        let handle = stream.shutdown_handle();
        for _ in 0..3 {
            let d = stream.next().await.unwrap().unwrap();
            assert!(handle.stats().in_flight <= 3);
            drop(d.ack());
        }
        handle.flush().await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!((report.pulled, report.acked), (3, 3), "{report:?}");
        let requests = server.received_requests().await.unwrap();
        let first_pull: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(first_pull["batch_size"], 1);
        let mut acked: Vec<String> = ack_bodies(&requests).concat();
        acked.sort();
        assert_eq!(acked, ["l1", "l2", "l3"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_with_400_is_split_until_the_bad_entry_is_alone() {
    bounded(async {
        let refuse_bad = |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let leases = body["acks"].as_array().unwrap();
            if leases.iter().any(|a| a["lease_id"] == "bad") {
                return ResponseTemplate::new(400).set_body_json(json!({
                    "success": false, "errors": [{"code": 10207, "message": "malformed lease id"}], "messages": [], "result": null
                }));
            }
            envelope(json!({"ackCount": leases.len(), "retryCount": 0}))
        };
        let (server, client) = mock_queue(vec![pulled("a"), pulled("b"), pulled("bad"), pulled("c")], refuse_bad).await;
        let mut stream = fast_consumer(&client.queue(QUEUE)).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        let mut settled = Vec::new();
        for _ in 0..4 {
            let d = stream.next().await.unwrap().unwrap();
            let lease = d.lease_id().to_owned();
            settled.push((lease, d.ack()));
        }
        handle.flush().await;
        for (lease, s) in settled {
            let result = s.confirmed().await;
            assert_eq!(result.is_ok(), lease != "bad", "{lease}: {result:?}");
        }
        let report = handle.shutdown(ShutdownMode::drain(Duration::from_secs(5))).await;
        assert_eq!((report.acked, report.failed_to_settle), (3, 1), "{report:?}");
        assert!(report.is_balanced());
        // [a b bad c] refused; [a b] accepted; [bad c] refused; [bad] refused; [c] accepted.
        let bodies = ack_bodies(&server.received_requests().await.unwrap());
        assert_eq!(bodies, vec![vec!["a", "b", "bad", "c"], vec!["a", "b"], vec!["bad", "c"], vec!["bad"], vec!["c"]]);
    })
    .await;
}
