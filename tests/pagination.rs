//! List streams against wiremock: pages on demand, and every way a listing ends,
//! including servers that misbehave.

mod common;

use cloudflare_queues::Error;
use common::*;
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use wiremock::matchers::{method, path as path_is, query_param};
use wiremock::{Mock, MockServer};

fn queue(name: &str) -> Value {
    json!({"queue_id": format!("id-{name}"), "queue_name": name, "consumers": [], "producers": []})
}

fn subscription(id: &str) -> Value {
    json!({
        "id": id, "name": format!("sub-{id}"), "enabled": true,
        "source": {"type": "kv"}, "destination": {"type": "queues.queue", "queue_id": QUEUE},
        "events": ["namespace.created"],
        "created_at": "2025-05-12T14:30:00.000Z", "modified_at": "2025-05-12T14:30:00.000Z"
    })
}

/// Collects a stream, failing instead of hanging if it never ends.
async fn within_seconds<S: futures::Stream>(stream: S) -> Vec<S::Item> {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.collect::<Vec<_>>(),
    )
    .await
    .expect("the stream must end")
}

fn names(queues: &[cloudflare_queues::models::Queue]) -> Vec<&str> {
    queues
        .iter()
        .map(|q| q.queue_name.as_deref().unwrap_or("?"))
        .collect()
}

#[tokio::test]
async fn a_stream_walks_three_pages_in_order() {
    let server = MockServer::start().await;
    let pages = [["a", "b"], ["c", "d"], ["e", "f"]];
    for (i, page) in pages.iter().enumerate() {
        let n = i + 1;
        Mock::given(method("GET"))
            .and(path_is(path("/queues")))
            .and(query_param("page", n.to_string()))
            .respond_with(ok_page(
                json!(page.iter().map(|q| queue(q)).collect::<Vec<_>>()),
                json!({"page": n as f64, "per_page": 2.0, "count": 2.0, "total_count": 6.0, "total_pages": 3.0}),
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    let stream = client(&server).queues().list().per_page(2).into_stream();
    let all: Vec<_> = stream.try_collect().await.unwrap();
    assert_eq!(names(&all), ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(
        queries(&server, &path("/queues")).await,
        [
            Some("page=1&per_page=2".to_owned()),
            Some("page=2&per_page=2".to_owned()),
            Some("page=3&per_page=2".to_owned()),
        ]
    );
}

#[tokio::test]
async fn pages_are_fetched_only_when_the_stream_needs_them() {
    let server = MockServer::start().await;
    for n in 1..=2 {
        Mock::given(method("GET"))
            .and(query_param("page", n.to_string()))
            .respond_with(ok_page(
                json!([
                    subscription(&format!("s{n}a")),
                    subscription(&format!("s{n}b"))
                ]),
                json!({"page": n, "per_page": 2, "count": 2, "total_count": 4, "total_pages": 2}),
            ))
            .mount(&server)
            .await;
    }
    let mut stream = client(&server).event_subscriptions().list().into_stream();
    let path = path("/event_subscriptions/subscriptions");
    assert!(
        requests(&server, &path).await.is_empty(),
        "lazy until polled"
    );

    assert_eq!(stream.next().await.unwrap().unwrap().id, "s1a");
    assert_eq!(stream.next().await.unwrap().unwrap().id, "s1b");
    assert_eq!(requests(&server, &path).await.len(), 1);

    assert_eq!(stream.next().await.unwrap().unwrap().id, "s2a");
    assert_eq!(requests(&server, &path).await.len(), 2);
    assert_eq!(stream.next().await.unwrap().unwrap().id, "s2b");
    assert!(stream.next().await.is_none());
    assert_eq!(
        queries(&server, &path).await,
        [Some("page=1".to_owned()), Some("page=2".to_owned())]
    );
}

#[tokio::test]
async fn a_stream_can_start_at_a_later_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("page", "3"))
        .respond_with(ok_page(
            json!([queue("x")]),
            json!({"page": 3, "total_pages": 3}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let all: Vec<_> = client(&server)
        .queues()
        .list()
        .page(3)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names(&all), ["x"]);
}

#[tokio::test]
async fn without_result_info_one_request_is_made() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok(json!([queue("a"), queue("b")])))
        .expect(1)
        .mount(&server)
        .await;
    let all: Vec<_> = client(&server)
        .queues()
        .list()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names(&all), ["a", "b"]);
}

#[tokio::test]
async fn a_server_repeating_the_same_page_number_ends_the_stream() {
    let server = MockServer::start().await;
    // Ignores `page`: always page 1 of 3.
    Mock::given(method("GET"))
        .and(path_is(path("/queues")))
        .respond_with(ok_page(
            json!([queue("a"), queue("b")]),
            json!({"page": 1, "per_page": 2, "total_pages": 3, "total_count": 6}),
        ))
        .mount(&server)
        .await;
    let all: Vec<_> = within_seconds(client(&server).queues().list().into_stream())
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names(&all), ["a", "b"], "no duplicates");
    let made = requests(&server, &path("/queues")).await.len();
    assert!(made <= 3, "{made} requests for 3 pages");
    assert_eq!(made, 2, "the repeat is noticed on the first repeated page");
}

#[tokio::test]
async fn a_server_repeating_the_same_items_ends_the_stream() {
    let server = MockServer::start().await;
    // Ignores `page` and sends no page number, so only the items tell.
    Mock::given(method("GET"))
        .and(path_is(path("/event_subscriptions/subscriptions")))
        .respond_with(ok_page(
            json!([subscription("s1"), subscription("s2")]),
            json!({"per_page": 2, "total_count": 20}),
        ))
        .mount(&server)
        .await;
    let all: Vec<_> = within_seconds(client(&server).event_subscriptions().list().into_stream())
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let ids: Vec<_> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2"]);
    assert_eq!(
        requests(&server, &path("/event_subscriptions/subscriptions"))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn an_empty_page_ends_the_stream() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("page", "1"))
        .respond_with(ok_page(
            json!([subscription("s1")]),
            json!({"page": 1, "per_page": 1}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("page", "2"))
        .respond_with(ok_page(json!([]), json!({"page": 2, "per_page": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("page", "3"))
        .respond_with(ok_page(json!([subscription("never")]), json!({"page": 3})))
        .expect(0)
        .mount(&server)
        .await;
    let all: Vec<_> = client(&server)
        .event_subscriptions()
        .list()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);

    // An empty first page is an empty stream, and `result: null` reads as empty.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_page(Value::Null, json!({"page": 1, "total_pages": 0})))
        .expect(1)
        .mount(&server)
        .await;
    let none: Vec<_> = client(&server)
        .queues()
        .list()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_error_mid_stream_is_yielded_once_and_ends_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("page", "1"))
        .respond_with(ok_page(
            json!([queue("a"), queue("b")]),
            json!({"page": 1, "total_pages": 3}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("page", "2"))
        .respond_with(err(403, 10106, "Unauthorized"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("page", "3"))
        .respond_with(ok_page(
            json!([queue("c")]),
            json!({"page": 3, "total_pages": 3}),
        ))
        .expect(0)
        .mount(&server)
        .await;
    let items: Vec<_> = client(&server)
        .queues()
        .list()
        .into_stream()
        .collect()
        .await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().queue_name.as_deref(), Some("a"));
    assert_eq!(items[1].as_ref().unwrap().queue_name.as_deref(), Some("b"));
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
}

#[tokio::test]
async fn invalid_paging_is_reported_by_the_stream_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ok(json!([])))
        .expect(0)
        .mount(&server)
        .await;
    let items: Vec<_> = client(&server)
        .event_subscriptions()
        .list()
        .per_page(101)
        .into_stream()
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0], Err(Error::InvalidInput { field, .. }) if field == "per_page"),
        "{items:?}"
    );
}
