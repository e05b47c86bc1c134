//! Queue management against wiremock: exact requests and decoded results.

mod common;

use cloudflare_queues::Error;
use cloudflare_queues::models::{Consumer, Jurisdiction, MaxConcurrency, Producer};
use common::*;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};
use wiremock::matchers::{body_json, header, method, path as path_is};
use wiremock::{Mock, MockServer};

fn queue_path() -> String {
    path(&format!("/queues/{QUEUE}"))
}

fn queue_json(id: &str, name: &str) -> serde_json::Value {
    json!({
        "queue_id": id, "queue_name": name,
        "created_on": "2024-03-20T16:09:14.154Z", "modified_on": "2024-03-20T16:09:14.154Z",
        "consumers": [], "consumers_total_count": 0, "producers": [], "producers_total_count": 0,
        "settings": {"delivery_delay": 0, "delivery_paused": false, "message_retention_period": 345600}
    })
}

#[tokio::test]
async fn list_fetches_one_page_with_its_paging_facts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok_page(
            json!([queue_json("q1", "orders"), queue_json("q2", "emails")]),
            json!({"count": 2.0, "page": 2.0, "per_page": 2.0, "total_count": 6.0, "total_pages": 3.0}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    let queues = client(&server).queues();

    let page = queues.list().page(2).per_page(2).await.unwrap();
    let names: Vec<_> = page
        .items
        .iter()
        .map(|q| q.queue_name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["orders", "emails"]);
    let info = page.result_info.as_ref().unwrap();
    assert_eq!((info.page, info.total_pages), (Some(2), Some(3)));
    assert_eq!(page.total_count(), Some(6));
    assert_eq!(page.next_page(), Some(3));
    assert_eq!(
        page.items[0].message_retention_period(),
        Some(Duration::from_secs(345_600))
    );

    // Without setters no paging parameters are sent: the server's defaults apply.
    queues.list().send().await.unwrap();
    let sent = queries(&server, &path("/queues")).await;
    assert_eq!(sent, [Some("page=2&per_page=2".to_owned()), None]);
    assert!(
        requests(&server, &path("/queues"))
            .await
            .iter()
            .all(|r| r.body.is_empty())
    );
}

#[tokio::test]
async fn create_sends_the_name_settings_and_jurisdiction() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(path("/queues")))
        .and(body_json(json!({
            "queue_name": "example-queue",
            "jurisdiction": "eu",
            "settings": {"delivery_delay": 5, "message_retention_period": 345600}
        })))
        .respond_with(fixture_response("queue.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_is(path("/queues")))
        .and(body_json(json!({"queue_name": "bare"})))
        .respond_with(ok(queue_json("q9", "bare")))
        .expect(1)
        .mount(&server)
        .await;

    let queues = client(&server).queues();
    let queue = queues
        .create("example-queue")
        .delivery_delay(Duration::from_secs(5))
        .message_retention_period(Duration::from_secs(4 * 24 * 3600))
        .jurisdiction(Jurisdiction::Eu)
        .await
        .unwrap();
    assert_eq!(
        queue.queue_id.as_deref(),
        Some("b01b5594f784d0165c2985833f5660dd")
    );
    assert_eq!(queue.delivery_delay(), Some(Duration::from_secs(5)));

    let bare = queues.create("bare").await.unwrap();
    assert_eq!(bare.queue_name.as_deref(), Some("bare"));
    assert!(!bare.delivery_paused());
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn get_decodes_settings_consumers_and_producers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(queue_path()))
        .respond_with(fixture_response("queue.json"))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE).get().await.unwrap();

    assert_eq!(queue.queue_name.as_deref(), Some("example-queue"));
    assert_eq!(
        queue.created_on.as_deref(),
        Some("2024-03-20T16:09:14.154Z")
    );
    let settings = queue.settings.as_ref().unwrap();
    assert_eq!(settings.delivery_delay, Some(Duration::from_secs(5)));
    assert_eq!(
        settings.message_retention_period,
        Some(Duration::from_secs(345_600))
    );
    assert!(queue.delivery_paused());

    assert_eq!(
        queue.consumers_total_count,
        Some(1),
        "1.0 on the wire reads as 1"
    );
    let Consumer::Worker(worker) = &queue.consumers[0] else {
        panic!("{:?}", queue.consumers[0])
    };
    assert_eq!(worker.script_name.as_deref(), Some("my-consumer-worker"));
    assert_eq!(
        worker.dead_letter_queue, None,
        "an empty string means no DLQ"
    );
    let ws = worker.settings.as_ref().unwrap();
    assert_eq!(ws.max_wait_time, Some(Duration::from_millis(5000)));
    assert_eq!(ws.retry_delay, Some(Duration::from_secs(10)));
    assert_eq!(
        (ws.batch_size, ws.max_concurrency, ws.max_retries),
        (Some(50), Some(MaxConcurrency::Limit(10)), Some(3))
    );
    assert_eq!(
        queue.consumers[0].consumer_id(),
        Some("023e105f4ecef8ad9ca31a8372d0c353")
    );

    assert_eq!(queue.producers_total_count, Some(2));
    match &queue.producers[..] {
        [Producer::Worker(w), Producer::R2Bucket(b)] => {
            assert_eq!(w.script.as_deref(), Some("my-producer-worker"));
            assert_eq!(b.bucket_name.as_deref(), Some("uploads"));
        }
        other => panic!("{other:?}"),
    }
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn update_puts_a_full_replacement() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_is(queue_path()))
        .and(body_json(json!({
            "queue_name": "renamed",
            "settings": {"delivery_delay": 0, "delivery_paused": false, "message_retention_period": 1209600}
        })))
        .respond_with(ok(queue_json(QUEUE, "renamed")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_is(queue_path()))
        .and(body_json(json!({"queue_name": "plain"})))
        .respond_with(ok(queue_json(QUEUE, "plain")))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    let updated = queue
        .update("renamed")
        .delivery_delay(Duration::ZERO)
        .delivery_paused(false)
        .message_retention_period(Duration::from_secs(14 * 24 * 3600))
        .await
        .unwrap();
    assert_eq!(updated.queue_name.as_deref(), Some("renamed"));
    let plain = queue.update("plain").await.unwrap();
    assert_eq!(plain.queue_name.as_deref(), Some("plain"));
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn edit_patches_only_the_fields_given() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path_is(queue_path()))
        .and(body_json(
            json!({"settings": {"message_retention_period": 3600}}),
        ))
        .respond_with(fixture_response("queue.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_is(queue_path()))
        .and(body_json(
            json!({"queue_name": "new-name", "settings": {"delivery_delay": 30}}),
        ))
        .respond_with(ok(queue_json(QUEUE, "new-name")))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    let edited = queue
        .edit()
        .message_retention_period(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(edited.queue_name.as_deref(), Some("example-queue"));
    let renamed = queue
        .edit()
        .name("new-name")
        .delivery_delay(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(renamed.queue_name.as_deref(), Some("new-name"));
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn pause_and_resume_patch_delivery_paused() {
    let server = MockServer::start().await;
    let mut paused = queue_json(QUEUE, "orders");
    paused["settings"]["delivery_paused"] = json!(true);
    Mock::given(method("PATCH"))
        .and(path_is(queue_path()))
        .and(body_json(json!({"settings": {"delivery_paused": true}})))
        .respond_with(ok(paused))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_is(queue_path()))
        .and(body_json(json!({"settings": {"delivery_paused": false}})))
        .respond_with(ok(queue_json(QUEUE, "orders")))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    assert!(queue.pause_delivery().await.unwrap().delivery_paused());
    assert!(!queue.resume_delivery().await.unwrap().delivery_paused());
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn delete_accepts_an_envelope_without_result() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path_is(queue_path()))
        .respond_with(ok_bare())
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path_is(queue_path()))
        .respond_with(err(404, 10104, "Queue not found"))
        .expect(1)
        .mount(&server)
        .await;
    let queue = client(&server).queue(QUEUE);
    queue.delete().await.unwrap();
    let e = queue.delete().await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        requests(&server, &queue_path())
            .await
            .iter()
            .all(|r| r.body.is_empty())
    );
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn metrics_ask_for_json_and_decode() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path(&format!("/queues/{QUEUE}/metrics"))))
        .and(header("accept", "application/json"))
        .respond_with(fixture_response("metrics.json"))
        .expect(1)
        .mount(&server)
        .await;
    let metrics = client(&server).queue(QUEUE).metrics().await.unwrap();
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes), (5, 1024));
    assert_eq!(
        metrics.oldest_message_at(),
        Some(UNIX_EPOCH + Duration::from_millis(1_710_950_954_154))
    );
    assert_no_query_and_bodyless_reads(&server).await;
}

#[tokio::test]
async fn list_filters_by_name_with_the_parameter_repeated() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok_page(
            json!([queue_json("q1", "emails"), queue_json("q2", "orders")]),
            json!({"page": 1, "per_page": 20, "total_pages": 1, "total_count": 2}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    let queues = client(&server).queues();
    let page = queues.list().name("orders").name("emails").await.unwrap();
    assert_eq!(page.items.len(), 2);
    queues.list().page(2).name("orders").await.unwrap();
    assert_eq!(
        queries(&server, &path("/queues")).await,
        [
            Some("name=orders&name=emails".to_owned()),
            Some("page=2&name=orders".to_owned()),
        ]
    );
    assert!(matches!(
        queues.list().name(" ").await.unwrap_err(),
        Error::InvalidInput { field, .. } if field == "name"
    ));
}

#[tokio::test]
async fn find_by_name_is_one_filtered_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .and(wiremock::matchers::query_param("name", "orders"))
        .respond_with(ok_page(
            json!([queue_json("id-orders", "orders")]),
            json!({"page": 1, "per_page": 20, "total_pages": 1, "total_count": 1}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let found = client(&server)
        .queues()
        .find_by_name("orders")
        .await
        .unwrap();
    assert_eq!(found.unwrap().queue_id.as_deref(), Some("id-orders"));
    assert_eq!(
        queries(&server, &path("/queues")).await,
        [Some("page=1&name=orders".to_owned())]
    );
}

#[tokio::test]
async fn find_by_name_with_a_filtered_empty_answer_stops_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok_page(
            json!([]),
            json!({"page": 1, "per_page": 20, "total_pages": 0, "total_count": 0}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let found = client(&server)
        .queues()
        .find_by_name("orders")
        .await
        .unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn find_by_name_walks_pages_when_the_server_ignores_the_filter() {
    let server = MockServer::start().await;
    let info = |page: u32| json!({"page": page, "per_page": 2, "total_pages": 3, "total_count": 6});
    for (page, names) in [(1, ["a", "b"]), (2, ["c", "orders"])] {
        let items: Vec<_> = names
            .iter()
            .map(|n| queue_json(&format!("id-{n}"), n))
            .collect();
        Mock::given(method("GET"))
            .and(path_is(path("/queues")))
            .and(wiremock::matchers::query_param("page", page.to_string()))
            .respond_with(ok_page(json!(items), info(page)))
            .expect(1)
            .mount(&server)
            .await;
    }
    // The match is on page 2, so page 3 is never fetched.
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("page", "3"))
        .respond_with(ok_page(json!([]), info(3)))
        .expect(0)
        .mount(&server)
        .await;
    let found = client(&server)
        .queues()
        .find_by_name("orders")
        .await
        .unwrap();
    assert_eq!(found.unwrap().queue_id.as_deref(), Some("id-orders"));
    // Every page still asks for the name: a server may honour it on later pages.
    assert_eq!(
        queries(&server, &path("/queues")).await,
        [
            Some("page=1&name=orders".to_owned()),
            Some("page=2&name=orders".to_owned())
        ]
    );
}

#[tokio::test]
async fn find_by_name_stops_when_the_server_ignores_filter_and_page() {
    let server = MockServer::start().await;
    // The same page whatever is asked, and no total to stop on.
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok_page(
            json!([queue_json("q1", "a"), queue_json("q2", "b")]),
            json!({"per_page": 2}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    let found = client(&server)
        .queues()
        .find_by_name("orders")
        .await
        .unwrap();
    assert_eq!(found, None, "the repeated page ends the walk");
}

#[tokio::test]
async fn find_by_name_resolves_to_none_when_no_queue_has_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok_page(
            json!([queue_json("q1", "orders-dlq"), queue_json("q2", "Orders")]),
            json!({"page": 1, "per_page": 20, "total_pages": 1, "total_count": 2}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let found = client(&server)
        .queues()
        .find_by_name("orders")
        .await
        .unwrap();
    assert_eq!(found, None, "names match exactly, not by prefix or case");
}

#[tokio::test]
async fn out_of_range_settings_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server);
    let q = c.queue(QUEUE);
    let day = Duration::from_secs(24 * 3600);
    let cases: Vec<(Error, &str, &str)> = vec![
        (
            c.queues()
                .create("q")
                .delivery_delay(day + Duration::from_secs(1))
                .await
                .unwrap_err(),
            "delivery_delay",
            "allowed 0 ms to 1d",
        ),
        (
            c.queues()
                .create("q")
                .message_retention_period(Duration::from_secs(59))
                .await
                .unwrap_err(),
            "message_retention_period",
            "allowed 1m to 14d",
        ),
        (
            q.update("q")
                .message_retention_period(14 * day + Duration::from_secs(1))
                .await
                .unwrap_err(),
            "message_retention_period",
            "allowed 1m to 14d",
        ),
        (
            q.edit().delivery_delay(2 * day).await.unwrap_err(),
            "delivery_delay",
            "allowed 0 ms to 1d",
        ),
        (
            c.queues().create("").await.unwrap_err(),
            "queue_name",
            "empty",
        ),
        (q.update(" ").await.unwrap_err(), "queue_name", "empty"),
        (q.edit().name("").await.unwrap_err(), "queue_name", "empty"),
        (
            c.queues().list().page(0).await.unwrap_err(),
            "page",
            "from 1",
        ),
        (
            c.queues().list().per_page(0).await.unwrap_err(),
            "per_page",
            "at least 1",
        ),
        (
            c.queues().find_by_name("").await.unwrap_err(),
            "name",
            "empty",
        ),
    ];
    for (e, field, reason_part) in cases {
        match &e {
            Error::InvalidInput { field: f, reason } => {
                assert_eq!(f, field, "{e}");
                assert!(reason.contains(reason_part), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_edges_of_the_ranges_are_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(json!({
            "queue_name": "edges",
            "settings": {"delivery_delay": 86400, "message_retention_period": 60}
        })))
        .respond_with(ok(queue_json("q1", "edges")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(body_json(
            json!({"settings": {"delivery_delay": 0, "message_retention_period": 1209600}}),
        ))
        .respond_with(ok(queue_json("q1", "edges")))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    c.queues()
        .create("edges")
        .delivery_delay(Duration::from_secs(24 * 3600))
        .message_retention_period(Duration::from_secs(60))
        .await
        .unwrap();
    c.queue(QUEUE)
        .edit()
        .delivery_delay(Duration::ZERO)
        .message_retention_period(Duration::from_secs(14 * 24 * 3600))
        .await
        .unwrap();
}

#[test]
fn accessors_return_what_is_always_present() {
    use cloudflare_queues::models::{EventSubscription, Queue};
    let queue: Queue = serde_json::from_value(fixture("queue.json")["result"].clone()).unwrap();
    assert_eq!(queue.id(), queue.queue_id.as_deref().unwrap());
    assert_eq!(queue.name(), queue.queue_name.as_deref().unwrap());
    assert!(!queue.id().is_empty() && !queue.name().is_empty());
    let consumer: Consumer =
        serde_json::from_value(fixture("consumer_http_pull.json")["result"].clone()).unwrap();
    assert_eq!(consumer.id(), "9f2c1d5e8a7b4c3d2e1f0a9b8c7d6e5f");
    assert_eq!(Some(consumer.id()), consumer.consumer_id());
    let sub: EventSubscription =
        serde_json::from_value(fixture("subscription.json")["result"].clone()).unwrap();
    assert_eq!((sub.id(), sub.name()), (sub.id.as_str(), sub.name.as_str()));
    assert!(!sub.id().is_empty());
    // A response that lacks the id: the accessor is empty, the field says it was absent.
    let bare: Queue = serde_json::from_value(json!({})).unwrap();
    assert_eq!((bare.id(), bare.queue_id.as_deref()), ("", None));
}
