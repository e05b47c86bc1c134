//! Event subscriptions against wiremock: exact requests and decoded results.

mod common;

use cloudflare_queues::Error;
use cloudflare_queues::models::{EventSource, SortDirection, SubscriptionOrder};
use common::*;
use serde_json::json;
use wiremock::matchers::{body_json, method, path as path_is};
use wiremock::{Mock, MockServer};

const SUBSCRIPTION: &str = "3d4e5f60718293a4b5c6d7e8f90a1b2c";

fn subscriptions_path() -> String {
    path("/event_subscriptions/subscriptions")
}

fn subscription_path() -> String {
    format!("{}/{SUBSCRIPTION}", subscriptions_path())
}

#[tokio::test]
async fn list_sends_paging_and_sorting_and_decodes_every_source_kind() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(subscriptions_path()))
        .respond_with(fixture_response("subscriptions.json"))
        .expect(2)
        .mount(&server)
        .await;
    let subs = client(&server).event_subscriptions();
    let page = subs
        .list()
        .page(1)
        .per_page(20)
        .order(SubscriptionOrder::CreatedAt)
        .direction(SortDirection::Desc)
        .await
        .unwrap();
    subs.list().await.unwrap();
    assert_eq!(
        queries(&server, &subscriptions_path()).await,
        [
            Some("page=1&per_page=20&order=created_at&direction=desc".to_owned()),
            None
        ]
    );

    assert_eq!(page.total_count(), Some(3));
    assert_eq!(page.next_page(), None, "page 1 of 1");
    let [r2, builds, access] = &page.items[..] else {
        panic!("{:?}", page.items)
    };
    assert_eq!(r2.source, EventSource::R2);
    assert_eq!(r2.events, ["bucket.created", "bucket.deleted"]);
    assert!(r2.enabled);
    assert_eq!(r2.name, "r2-buckets");
    assert_eq!(r2.created_at, "2025-05-12T14:30:00.000Z");
    assert_eq!(
        r2.destination_queue_id(),
        Some("b01b5594f784d0165c2985833f5660dd")
    );

    assert_eq!(builds.source, EventSource::workers_builds_worker("api"));
    assert!(!builds.enabled);

    // A source kind this crate does not know is kept whole.
    let EventSource::Unknown(raw) = &access.source else {
        panic!("{:?}", access.source)
    };
    assert_eq!(access.source.kind(), Some("access"));
    assert_eq!(raw["application_id"], "app-123");
}

#[tokio::test]
async fn create_sends_source_destination_and_events() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(subscriptions_path()))
        .and(body_json(json!({
            "name": "checkout-failures",
            "enabled": true,
            "source": {"type": "workflows.workflow", "workflow_name": "checkout"},
            "destination": {"type": "queues.queue", "queue_id": QUEUE},
            "events": ["instance.errored", "instance.terminated"]
        })))
        .respond_with(fixture_response("subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_is(subscriptions_path()))
        .and(body_json(json!({
            "name": "buckets",
            "source": {"type": "r2"},
            "destination": {"type": "queues.queue", "queue_id": QUEUE},
            "events": ["bucket.created"]
        })))
        .respond_with(fixture_response("subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    let subs = client(&server).event_subscriptions();
    let sub = subs
        .create(
            "checkout-failures",
            EventSource::workflow("checkout"),
            QUEUE,
            ["instance.errored", "instance.terminated"],
        )
        .enabled(true)
        .await
        .unwrap();
    assert_eq!(sub.id, SUBSCRIPTION);
    assert_eq!(sub.source, EventSource::workflow("checkout"));
    assert_eq!(sub.modified_at, "2025-08-01T10:00:00.000Z");

    subs.create(
        "buckets",
        EventSource::R2,
        QUEUE,
        vec!["bucket.created".to_owned()],
    )
    .await
    .unwrap();
    assert_no_query_and_bodyless_reads(&server).await;
}

/// A subscription as the server answers, with `source` as given.
fn subscription_json(source: serde_json::Value, events: &[&str]) -> serde_json::Value {
    json!({
        "id": SUBSCRIPTION, "name": "s", "enabled": true, "source": source,
        "destination": {"type": "queues.queue", "queue_id": QUEUE}, "events": events,
        "created_at": "2026-07-20T09:00:00.000Z", "modified_at": "2026-07-20T09:00:00.000Z"
    })
}

#[tokio::test]
async fn the_newer_sources_have_their_wire_shapes() {
    let cases = [
        (
            EventSource::Artifacts,
            json!({"type": "artifacts"}),
            vec![
                "repo.created",
                "repo.deleted",
                "repo.forked",
                "repo.imported",
            ],
        ),
        (
            EventSource::artifacts_repo("my-namespace", "my-repo"),
            json!({"type": "artifacts.repo", "namespace": "my-namespace", "repo_name": "my-repo"}),
            vec![
                "pushed",
                "cloned",
                "fetched",
                "token.created",
                "token.revoked",
            ],
        ),
        (
            EventSource::email_sending("023e105f4ecef8ad9ca31a8372d0c353", "mail.example.com"),
            json!({
                "type": "email.sending",
                "zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
                "domain": "mail.example.com"
            }),
            vec!["message.delivered", "message.bounced", "message.complained"],
        ),
    ];
    for (source, wire, events) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_is(subscriptions_path()))
            .and(body_json(json!({
                "name": "s",
                "source": wire,
                "destination": {"type": "queues.queue", "queue_id": QUEUE},
                "events": events
            })))
            .respond_with(ok(subscription_json(wire.clone(), &events)))
            .expect(1)
            .mount(&server)
            .await;
        let sub = client(&server)
            .event_subscriptions()
            .create("s", source.clone(), QUEUE, events.clone())
            .await
            .unwrap();
        assert_eq!(sub.source, source, "{wire}");
        assert!(!matches!(sub.source, EventSource::Unknown(_)), "{wire}");
        assert_eq!(sub.source.kind(), wire["type"].as_str());
    }
}

#[tokio::test]
async fn documented_sources_without_request_fields_stay_unknown() {
    let server = MockServer::start().await;
    let sources = [
        json!({"type": "access"}),
        json!({"type": "browserRun"}),
        json!({"type": "stream"}),
        json!({"type": "stream.liveInput", "live_input_id": "li-1"}),
    ];
    let items: Vec<_> = sources
        .iter()
        .map(|s| subscription_json(s.clone(), &["x.happened"]))
        .collect();
    Mock::given(method("GET"))
        .and(path_is(subscriptions_path()))
        .respond_with(ok_page(
            json!(items),
            json!({"count": 4, "page": 1, "per_page": 20, "total_count": 4, "total_pages": 1}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server).event_subscriptions().list().await.unwrap();
    let kinds: Vec<_> = page.items.iter().map(|s| s.source.kind()).collect();
    assert_eq!(
        kinds,
        cloudflare_queues::models::UNPUBLISHED_SOURCE_KINDS
            .iter()
            .map(|k| Some(*k))
            .collect::<Vec<_>>()
    );
    for (sub, wire) in page.items.iter().zip(&sources) {
        assert_eq!(sub.source, EventSource::Unknown(wire.clone()));
    }
}

#[tokio::test]
async fn get_fetches_one_subscription() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(subscription_path()))
        .respond_with(fixture_response("subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    let sub = client(&server)
        .event_subscriptions()
        .get(SUBSCRIPTION)
        .await
        .unwrap();
    assert_eq!(sub.name, "checkout-failures");
    assert_eq!(sub.events, ["instance.errored", "instance.terminated"]);
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn update_patches_only_the_fields_given() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path_is(subscription_path()))
        .and(body_json(json!({
            "name": "renamed",
            "enabled": false,
            "destination": {"type": "queues.queue", "queue_id": "00000000000000000000000000000abc"},
            "events": ["instance.errored"]
        })))
        .respond_with(fixture_response("subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_is(subscription_path()))
        .and(body_json(json!({"enabled": true})))
        .respond_with(fixture_response("subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    let subs = client(&server).event_subscriptions();
    subs.update(SUBSCRIPTION)
        .name("renamed")
        .enabled(false)
        .destination_queue("00000000000000000000000000000abc")
        .events(["instance.errored"])
        .await
        .unwrap();
    let sub = subs.update(SUBSCRIPTION).enabled(true).await.unwrap();
    assert_eq!(sub.id, SUBSCRIPTION);
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn delete_returns_the_deleted_subscription() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path_is(subscription_path()))
        .respond_with(fixture_response("subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    let deleted = client(&server)
        .event_subscriptions()
        .delete(SUBSCRIPTION)
        .await
        .unwrap();
    assert_eq!(deleted.id, SUBSCRIPTION);
    assert_eq!(deleted.source.kind(), Some("workflows.workflow"));
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
    let subs = client(&server).event_subscriptions();
    let no_events: [&str; 0] = [];
    let cases: Vec<(Error, &str)> = vec![
        (subs.list().per_page(101).await.unwrap_err(), "per_page"),
        (subs.list().per_page(0).await.unwrap_err(), "per_page"),
        (subs.list().page(0).await.unwrap_err(), "page"),
        (
            subs.create("n", EventSource::Kv, QUEUE, no_events)
                .await
                .unwrap_err(),
            "events",
        ),
        (
            subs.create("n", EventSource::Kv, QUEUE, ["namespace.created", ""])
                .await
                .unwrap_err(),
            "events[1]",
        ),
        (
            subs.create("", EventSource::Kv, QUEUE, ["namespace.created"])
                .await
                .unwrap_err(),
            "name",
        ),
        (
            subs.create("n", EventSource::Kv, "", ["namespace.created"])
                .await
                .unwrap_err(),
            "destination_queue_id",
        ),
        (
            subs.update(SUBSCRIPTION)
                .events(no_events)
                .await
                .unwrap_err(),
            "events",
        ),
        (
            subs.update("").enabled(true).await.unwrap_err(),
            "subscription_id",
        ),
        (subs.get("").await.unwrap_err(), "subscription_id"),
        (subs.delete("").await.unwrap_err(), "subscription_id"),
    ];
    for (e, field) in cases {
        assert!(
            matches!(&e, Error::InvalidInput { field: f, .. } if f == field),
            "expected `{field}`: {e}"
        );
    }
    let e = subs.list().per_page(101).await.unwrap_err();
    assert!(e.to_string().contains("allowed 1 to 100"), "{e}");
}
