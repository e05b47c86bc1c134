//! Server behaviours the emulator does not produce, scripted with wiremock: more
//! messages than asked for, an ack batch refused as a whole, malformed entries.

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

fn retry_bodies(requests: &[Request]) -> Vec<Vec<(String, Value)>> {
    requests
        .iter()
        .filter(|r| r.url.path().ends_with("/ack"))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["retries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["lease_id"].as_str().unwrap().to_owned(),
                        a["delay_seconds"].clone(),
                    )
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_messages_than_asked_for_are_released_at_once_and_never_exceed_max_in_flight() {
    bounded(async {
        let accept_all = |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            envelope(json!({"ackCount": body["acks"].as_array().unwrap().len(),
                            "retryCount": body["retries"].as_array().unwrap().len()}))
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
        let d = stream.next().await.unwrap().unwrap();
        assert_eq!(d.lease_id(), "l1");
        assert_eq!(handle.stats().in_flight, 1, "never more than max_in_flight");
        // Nothing else is handed out while the one slot is taken.
        let next = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
        assert!(next.is_err(), "a second delivery was handed out: {next:?}");
        drop(d.ack());
        handle.flush().await;
        let report = handle
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        assert_eq!(
            (report.pulled, report.acked, report.released),
            (3, 1, 2),
            "{report:?}"
        );
        assert!(report.is_balanced());
        assert_eq!(handle.stats().over_delivered, 2);
        let requests = server.received_requests().await.unwrap();
        let first_pull: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(first_pull["batch_size"], 1);
        assert_eq!(ack_bodies(&requests).concat(), ["l1"]);
        let mut released: Vec<(String, Value)> = retry_bodies(&requests).concat();
        released.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            released,
            [("l2".to_owned(), json!(0)), ("l3".to_owned(), json!(0))],
            "the extras go straight back, with no delay"
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_cost_only_themselves_in_a_full_consumer_run() {
    bounded(async {
        // Seven good entries, one with bytes that are not UTF-8, one with a negative
        // attempts count, one without a lease id: raw bytes, as a broken server sends.
        let mut entries: Vec<Vec<u8>> = (0..7)
            .map(|i| serde_json::to_vec(&pulled(&format!("g{i}"))).unwrap())
            .collect();
        entries.push(
            b"{\"id\":\"utf\",\"lease_id\":\"l-utf\",\"attempts\":1,\"body\":\"\xff\xfe\",\"metadata\":{\"CF-Content-Type\":\"text\"},\"timestamp_ms\":1}".to_vec(),
        );
        entries.push(br#"{"id":"neg","lease_id":"l-neg","attempts":-1,"body":"x","metadata":{},"timestamp_ms":1}"#.to_vec());
        entries.push(br#"{"id":"nolease","attempts":1,"body":"x","metadata":{},"timestamp_ms":1}"#.to_vec());
        let mut body = br#"{"success":true,"errors":[],"messages":[],"result":{"messages":["#.to_vec();
        body.extend_from_slice(&entries.join(&b","[..]));
        body.extend_from_slice(b"]}}");

        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex("/messages/pull$"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
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
            .respond_with(|req: &Request| {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                envelope(json!({"ackCount": body["acks"].as_array().unwrap().len(),
                                "retryCount": body["retries"].as_array().unwrap().len()}))
            })
            .mount(&server)
            .await;
        let client = Client::builder()
            .api_token("t")
            .account_id(ACCOUNT)
            .base_url(server.uri())
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let mut stream = fast_consumer(&client.queue(QUEUE)).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        let mut seen = Vec::new();
        for _ in 0..7 {
            let d = stream.next().await.unwrap().unwrap();
            seen.push(d.text().unwrap().into_owned());
            drop(d.ack());
        }
        seen.sort();
        assert_eq!(seen, ["g0", "g1", "g2", "g3", "g4", "g5", "g6"]);
        handle.flush().await;
        let report = handle.shutdown(ShutdownMode::drain(Duration::from_secs(5))).await;
        let stats = handle.stats();
        assert_eq!((stats.decode_errors, stats.unreadable), (2, 1), "{stats:?}");
        assert_eq!(
            (report.pulled, report.acked, report.retried, report.failed_to_settle),
            (10, 7, 2, 1),
            "{report:?}"
        );
        assert!(report.is_balanced());
        // The two with a lease were retried (the default decode policy: after 60 s).
        let requests = server.received_requests().await.unwrap();
        let mut retried: Vec<(String, Value)> = retry_bodies(&requests).concat();
        retried.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            retried,
            [("l-neg".to_owned(), json!(60)), ("l-utf".to_owned(), json!(60))]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_date_past_any_clock_neither_panics_nor_stops_the_consumer() {
    bounded(async {
        let server = MockServer::start().await;
        let absurd = "Sun, 06 Nov 300000000000 08:49:37 GMT";
        for route in ["/messages/pull$", "/messages/ack$"] {
            Mock::given(method("POST"))
                .and(path_regex(route))
                .respond_with(
                    ResponseTemplate::new(429)
                        .insert_header("retry-after", absurd)
                        .set_body_json(json!({"success": false, "errors": [{"code": 10250, "message": "overloaded"}],
                                              "messages": [], "result": null})),
                )
                .up_to_n_times(1)
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path_regex("/messages/pull$"))
            .respond_with(envelope(json!({"messages": [pulled("a")]})))
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
            .respond_with(envelope(json!({"ackCount": 1, "retryCount": 0})))
            .mount(&server)
            .await;
        let client = Client::builder()
            .api_token("t")
            .account_id(ACCOUNT)
            .base_url(server.uri())
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let mut stream = fast_consumer(&client.queue(QUEUE)).build().unwrap().stream();
        let handle = stream.shutdown_handle();
        let d = stream.next().await.unwrap().unwrap();
        let settled = d.ack();
        handle.flush().await;
        settled.confirmed().await.unwrap();
        let report = handle.shutdown(ShutdownMode::drain(Duration::from_secs(5))).await;
        assert_eq!((report.pulled, report.acked), (1, 1), "{report:?}");
        assert!(handle.stats().pull_errors >= 1);
        assert!(handle.stats().ack_request_failures >= 1);
    })
    .await;
}
