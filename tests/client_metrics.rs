//! The client's metrics (feature `metrics`): counters and histograms move as requests
//! are made, retried and fail, labelled by operation, status class and error kind, and
//! every metric recorded is named in README.md.

mod common;

use cloudflare_queues::Client;
use common::recording::*;
use common::*;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

const PULL: &str = "queues-pull-messages";
const GET: &str = "queues-get";

#[test]
fn requests_retries_errors_and_latencies_are_counted() {
    let seen = recorded(|| async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(err(503, 15000, "busy"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ok(json!({"messages": []})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(err(404, 10104, "Queue does not exist"))
            .mount(&server)
            .await;
        let client: Client = client(&server);
        client
            .queue(QUEUE)
            .pull()
            .await
            .expect("retried to success");
        client.queue(QUEUE).get().await.expect_err("not found");
        client
            .try_queue("not a queue id")
            .expect_err("refused before any request");
    });

    let requests = "cloudflare_queues_client_requests_total";
    assert_eq!(
        counter(&seen, requests, &[("operation", PULL), ("status", "5xx")]),
        1
    );
    assert_eq!(
        counter(&seen, requests, &[("operation", PULL), ("status", "2xx")]),
        1
    );
    assert_eq!(
        counter(&seen, requests, &[("operation", GET), ("status", "4xx")]),
        1
    );
    assert_eq!(
        counter(
            &seen,
            "cloudflare_queues_client_retries_total",
            &[("operation", PULL)]
        ),
        1
    );
    assert_eq!(
        counter(
            &seen,
            "cloudflare_queues_client_retries_total",
            &[("operation", GET)]
        ),
        0,
        "a 404 is not retried"
    );
    let errors = "cloudflare_queues_client_errors_total";
    assert_eq!(
        counter(&seen, errors, &[("kind", "api"), ("operation", GET)]),
        1
    );
    assert_eq!(
        counter(&seen, errors, &[("kind", "api"), ("operation", PULL)]),
        0
    );
    let attempt = "cloudflare_queues_client_request_duration_seconds";
    assert_eq!(
        samples(&seen, attempt, &[("operation", PULL), ("status", "5xx")]),
        1
    );
    assert_eq!(
        samples(&seen, attempt, &[("operation", PULL), ("status", "2xx")]),
        1
    );
    let call = "cloudflare_queues_client_call_duration_seconds";
    assert_eq!(
        samples(&seen, call, &[("operation", PULL), ("outcome", "ok")]),
        1
    );
    assert_eq!(
        samples(&seen, call, &[("operation", GET), ("outcome", "error")]),
        1
    );

    // No series carries an id: label values come from small fixed sets.
    for series in seen.keys() {
        assert!(
            !series.contains(QUEUE) && !series.contains(ACCOUNT),
            "{series}"
        );
    }
}

#[test]
fn network_failures_and_timeouts_are_errors_by_kind() {
    let seen = recorded(|| async {
        let client = Client::builder()
            .api_token(TOKEN)
            .account_id(ACCOUNT)
            .base_url(format!("{}{PREFIX}", closed_port_url()))
            .retry_policy(fast_retry(2))
            .build()
            .unwrap();
        client.queue(QUEUE).pull().await.expect_err("refused");
    });
    let requests = "cloudflare_queues_client_requests_total";
    assert_eq!(
        counter(&seen, requests, &[("operation", PULL), ("status", "none")]),
        2
    );
    assert_eq!(
        counter(
            &seen,
            "cloudflare_queues_client_retries_total",
            &[("operation", PULL)]
        ),
        1
    );
    assert_eq!(
        counter(
            &seen,
            "cloudflare_queues_client_errors_total",
            &[("kind", "transport"), ("operation", PULL)]
        ),
        1
    );
}

#[test]
fn every_metric_recorded_is_named_in_the_readme() {
    let readme = include_str!("../README.md");
    let seen = recorded(|| async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(err(500, 15000, "boom"))
            .mount(&server)
            .await;
        client(&server)
            .queue(QUEUE)
            .pull()
            .await
            .expect_err("fails");
    });
    let names: std::collections::BTreeSet<&str> =
        seen.keys().filter_map(|k| k.split('{').next()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README does not name `{name}`"
        );
    }
}
