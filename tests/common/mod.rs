//! Shared helpers for the wiremock tests.
#![allow(dead_code)]

pub mod recording;

use cloudflare_queues::{Backoff, Client, RetryPolicy};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::{MockServer, ResponseTemplate};

pub const TOKEN: &str = "test-token-do-not-leak-4f1c";
pub const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const QUEUE: &str = "b01b5594f784d0165c2985833f5660dd";

/// Path prefix every test client uses, so that prefix handling is exercised everywhere.
pub const PREFIX: &str = "/client/v4";

/// The account-scoped path of `rest`, as the server sees it.
pub fn path(rest: &str) -> String {
    format!("{PREFIX}/accounts/{ACCOUNT}{rest}")
}

/// A retry policy with millisecond delays, so retry tests finish quickly.
pub fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
}

/// A client for `server`, authenticated with [`TOKEN`], retrying up to 3 times quickly.
pub fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .retry_policy(fast_retry(3))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("test client")
}

/// A successful v4 envelope around `result`.
pub fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": true, "errors": [], "messages": [], "result": result
    }))
}

/// A failed v4 envelope with one error.
pub fn err(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "success": false,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": null
    }))
}

/// A fixture file from `tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A response with a fixture file as its body.
pub fn fixture_response(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(name))
}

/// The JSON bodies of the requests `server` received for `path`, in order.
pub async fn bodies(server: &MockServer, path: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).expect("JSON request body"))
        .collect()
}

/// A loopback URL on which nothing listens (connections are refused).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A successful v4 list envelope: `result` and `result_info`.
pub fn ok_page(result: Value, result_info: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": true, "errors": [], "messages": [], "result": result, "result_info": result_info
    }))
}

/// A successful v4 envelope with no `result` at all, as queue and consumer deletes send.
pub fn ok_bare() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": true, "errors": [], "messages": []
    }))
}

/// The requests `server` received for `path`, in order.
pub async fn requests(server: &MockServer, path: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// The query strings of the requests `server` received for `path`, in order.
pub async fn queries(server: &MockServer, path: &str) -> Vec<Option<String>> {
    requests(server, path)
        .await
        .into_iter()
        .map(|r| r.url.query().map(str::to_owned))
        .collect()
}

/// Asserts that every request `server` received came without a query string, and every
/// GET and DELETE without a body: for the calls that take neither.
pub async fn assert_no_query_and_bodyless_reads(server: &MockServer) {
    let received = server.received_requests().await.unwrap_or_default();
    assert!(!received.is_empty(), "no request was made");
    for r in received {
        assert_eq!(r.url.query(), None, "{} {}", r.method, r.url);
        if matches!(r.method.as_str(), "GET" | "DELETE") {
            assert!(r.body.is_empty(), "{} {} sent a body", r.method, r.url);
        }
    }
}
