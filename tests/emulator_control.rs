//! The emulator's control API (`/__emulator/…`): each route's answer and effect, its
//! credentials, refusals of bad input, and its absence unless turned on.

use base64::Engine as _;
use cloudflare_queues::QueueHandle;
use cloudflare_queues::emulator::{DEFAULT_TOKEN, Emulator, MessageState, QueueSummary};
use serde_json::{Value, json};
use std::time::Duration;

async fn control_emulator() -> Emulator {
    Emulator::builder()
        .token(DEFAULT_TOKEN)
        .control_api(true)
        .start()
        .await
        .unwrap()
}

async fn pull_queue(emu: &Emulator, name: &str) -> QueueHandle {
    let client = emu.client();
    let queue = client.queue(client.queues().create(name).await.unwrap().id());
    queue
        .consumers()
        .create_http_pull()
        .max_retries(5)
        .await
        .unwrap();
    queue
}

fn url(emu: &Emulator, path: &str) -> String {
    format!("http://{}/__emulator/{path}", emu.addr())
}

/// Sends a control request with the emulator's token: status and JSON body.
async fn call(emu: &Emulator, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let request = match method {
        "POST" => http.post(url(emu, path)),
        _ => http.get(url(emu, path)),
    }
    .bearer_auth(DEFAULT_TOKEN);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn error_code(body: &Value) -> Option<u64> {
    body["errors"][0]["code"].as_u64()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn seeding_stores_every_content_type_with_its_delay() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "seeded").await;
    let (status, body) = call(
        &emu,
        "POST",
        &format!("queues/{}/seed", queue.id()),
        Some(json!({"messages": [
            {"content_type": "text", "body": "hello"},
            {"content_type": "json", "body_base64": b64(br#"{"n":1}"#)},
            {"content_type": "bytes", "body_base64": b64(&[0, 1, 255])},
            {"content_type": "v8", "body_base64": b64(&[0xff, 0x0d]), "delay_ms": 60_000},
        ]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = serde_json::from_value(body["ids"].clone()).unwrap();
    let seen = emu.messages(queue.id());
    assert_eq!(ids, seen.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    let stored: Vec<(&str, &[u8], Duration, MessageState)> = seen
        .iter()
        .map(|m| (m.content_type.as_str(), &m.body[..], m.delay, m.state))
        .collect();
    assert_eq!(
        stored,
        [
            (
                "text",
                &b"hello"[..],
                Duration::ZERO,
                MessageState::Available
            ),
            (
                "json",
                br#"{"n":1}"#,
                Duration::ZERO,
                MessageState::Available
            ),
            (
                "bytes",
                &[0, 1, 255],
                Duration::ZERO,
                MessageState::Available
            ),
            (
                "v8",
                &[0xff, 0x0d],
                Duration::from_secs(60),
                MessageState::Delayed
            ),
        ]
    );
    // Seeded messages are delivered like published ones.
    let pulled = queue.pull().batch_size(10).await.unwrap();
    assert_eq!(pulled.messages.len(), 3);
    assert_eq!(pulled.messages[0].text().unwrap(), "hello");
    assert_eq!(pulled.messages[1].json::<Value>().unwrap(), json!({"n": 1}));
    assert_eq!(&pulled.messages[2].bytes().unwrap()[..], [0, 1, 255]);
}

#[tokio::test]
async fn the_summary_counts_states_acks_deliveries_expiries_and_extensions() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "counted").await;
    let texts: Vec<Value> = (0..5)
        .map(|i| json!({"content_type": "text", "body": format!("m{i}")}))
        .collect();
    let (status, _) = call(
        &emu,
        "POST",
        &format!("queues/{}/seed", queue.id()),
        Some(json!({ "messages": texts })),
    )
    .await;
    assert_eq!(status, 200);

    // m0 and m1 acked (m0 twice), m3 extended; the leases of m2 and m4 expire, and m2
    // is pulled again.
    let first = queue
        .pull()
        .batch_size(5)
        .visibility_timeout(Duration::from_secs(30))
        .await
        .unwrap();
    let lease = |i: usize| first.messages[i].lease_id.clone();
    queue.ack().ack(lease(0)).ack(lease(1)).await.unwrap();
    queue.ack().ack(lease(0)).await.unwrap();
    queue
        .extend_leases([lease(3)], Duration::from_secs(120))
        .await
        .unwrap();
    emu.advance(Duration::from_secs(31));
    let again = queue.pull().batch_size(1).await.unwrap();
    assert_eq!(again.messages[0].text().unwrap(), "m2");

    let (status, body) = call(&emu, "GET", &format!("queues/{}/summary", queue.id()), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "messages": 5,
            "by_state": {"available": 1, "delayed": 0, "leased": 2, "acked": 2,
                         "dead_lettered": 0, "dropped": 0, "purged": 0, "expired": 0},
            "acked_once": 2,
            "duplicate_acks": 1,
            "deliveries": 6,
            "redeliveries": 1,
            "retries": 0,
            "expiries": 2,
            "extensions": 1,
        })
    );
    // The same figures as the in-process handle, and as the full ledger says.
    let summary: QueueSummary = serde_json::from_value(body).unwrap();
    assert_eq!(Some(summary.clone()), emu.summary(queue.id()));
    let ledger = emu.messages(queue.id());
    let deliveries: u32 = ledger.iter().map(|m| m.deliveries).sum();
    assert_eq!(summary.deliveries, u64::from(deliveries));
    assert_eq!(emu.summary("0123abcd"), None);
}

#[tokio::test]
async fn bodies_are_prefixes_in_publish_order() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "bodies").await;
    queue.send("first message").await.unwrap();
    queue.send("second").await.unwrap();
    call(
        &emu,
        "POST",
        &format!("queues/{}/seed", queue.id()),
        Some(json!({"messages": [
            {"content_type": "bytes", "body_base64": b64(&[b'a', 0xff, b'b'])},
            {"content_type": "text", "body": "é€"},
        ]})),
    )
    .await;
    let bodies = |query: &'static str| {
        let path = format!("queues/{}/bodies{query}", queue.id());
        let emu = &emu;
        async move { call(emu, "GET", &path, None).await }
    };
    assert_eq!(
        bodies("?prefix=4").await,
        (
            200,
            json!({"bodies": ["firs", "seco", "a\u{fffd}b", "é\u{fffd}"]})
        )
    );
    assert_eq!(
        bodies("").await.1,
        json!({"bodies": ["first message", "second", "a\u{fffd}b", "é€"]})
    );
    assert_eq!(
        bodies("?prefix=0").await.1,
        json!({"bodies": ["", "", "", ""]})
    );
    let (status, body) = bodies("?prefix=lots").await;
    assert_eq!((status, error_code(&body)), (400, Some(10207)), "{body}");
}

#[tokio::test]
async fn requests_are_counted_per_operation_without_the_control_requests() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "busy").await;
    queue.send("a").await.unwrap();
    queue.send("b").await.unwrap();
    queue.pull().await.unwrap();
    call(&emu, "GET", &format!("queues/{}/summary", queue.id()), None).await;
    let (status, body) = call(&emu, "GET", "requests", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "by_operation": {
                "queues-create": 1,
                "queues-create-consumer": 1,
                "queues-push-message": 2,
                "queues-pull-messages": 1,
            },
            "total": 5,
        })
    );
    let by_operation: Value = serde_json::to_value(emu.requests_by_operation()).unwrap();
    assert_eq!(body["by_operation"], by_operation);
}

#[tokio::test]
async fn every_route_requires_the_emulators_credentials() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "guarded").await;
    let routes = [
        ("POST", format!("queues/{}/seed", queue.id())),
        ("GET", format!("queues/{}/summary", queue.id())),
        ("GET", format!("queues/{}/bodies?prefix=4", queue.id())),
        ("GET", "requests".to_owned()),
    ];
    let http = reqwest::Client::new();
    for (method, path) in &routes {
        for token in [None, Some("not-the-token")] {
            let request = match *method {
                "POST" => http.post(url(&emu, path)).json(&json!({"messages": [
                    {"content_type": "text", "body": "sneaked in"}
                ]})),
                _ => http.get(url(&emu, path)),
            };
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                (status, error_code(&body)),
                (401, Some(10106)),
                "{method} {path}"
            );
        }
    }
    assert!(emu.messages(queue.id()).is_empty(), "nothing was seeded");
}

#[tokio::test]
async fn the_routes_are_absent_unless_turned_on() {
    let emu = Emulator::builder()
        .token(DEFAULT_TOKEN)
        .start()
        .await
        .unwrap();
    let queue = pull_queue(&emu, "plain").await;
    for (method, path) in [
        ("POST", format!("queues/{}/seed", queue.id())),
        ("GET", format!("queues/{}/summary", queue.id())),
        ("GET", format!("queues/{}/bodies", queue.id())),
        ("GET", "requests".to_owned()),
    ] {
        let body = (method == "POST")
            .then(|| json!({"messages": [{"content_type": "text", "body": "x"}]}));
        let (status, answer) = call(&emu, method, &path, body).await;
        assert_eq!((status, error_code(&answer)), (404, Some(7003)), "{path}");
    }
    assert!(emu.messages(queue.id()).is_empty());
}

#[tokio::test]
async fn bad_seed_requests_are_refused_and_store_nothing() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "strict").await;
    let seed = format!("queues/{}/seed", queue.id());
    let raw = |body: &'static str| {
        let emu = &emu;
        let seed = seed.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url(emu, &seed))
                .bearer_auth(DEFAULT_TOKEN)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, error_code(&body))
        }
    };
    assert_eq!(raw("{ not json").await, (400, Some(10208)));
    assert_eq!(raw("").await, (400, Some(10208)));
    assert_eq!(raw(r#"{"messages": "none"}"#).await, (400, Some(10207)));
    assert_eq!(
        raw(r#"{"messages": [{"body": "x"}]}"#).await,
        (400, Some(10207))
    );
    let good = json!({"content_type": "text", "body": "fine"});
    for (bad, says) in [
        (
            json!({"content_type": "xml", "body": "<a/>"}),
            "content_type",
        ),
        (
            json!({"content_type": "bytes", "body_base64": "***"}),
            "not base64",
        ),
        (
            json!({"content_type": "text", "body": "a", "body_base64": "YQ=="}),
            "exactly one",
        ),
        (json!({"content_type": "json"}), "exactly one"),
    ] {
        let (status, body) =
            call(&emu, "POST", &seed, Some(json!({"messages": [good, bad]}))).await;
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert_eq!((status, error_code(&body)), (400, Some(10207)), "{body}");
        assert!(
            message.contains("messages[1]") && message.contains(says),
            "{message}"
        );
    }
    let one = json!({"messages": [good]});
    let (status, body) = call(&emu, "POST", "queues/0123abcd/seed", Some(one.clone())).await;
    assert_eq!((status, error_code(&body)), (404, Some(10104)));
    let (status, body) = call(&emu, "POST", "queues/not-an-id!/seed", Some(one)).await;
    assert_eq!((status, error_code(&body)), (400, Some(10107)));
    let (status, body) = call(&emu, "GET", "queues/0123abcd/summary", None).await;
    assert_eq!((status, error_code(&body)), (404, Some(10104)));
    let (status, body) = call(&emu, "GET", "queues/0123abcd/bodies", None).await;
    assert_eq!((status, error_code(&body)), (404, Some(10104)));
    assert!(
        emu.messages(queue.id()).is_empty(),
        "a refused request stores nothing"
    );
}

#[tokio::test]
async fn one_request_seeds_ten_thousand_messages_of_1_kb() {
    let emu = control_emulator().await;
    let queue = pull_queue(&emu, "bulk").await;
    let body = |i: usize| format!("{i:08} {}", "x".repeat(1000 - 9));
    let messages: Vec<Value> = (0..10_000)
        .map(|i| json!({"content_type": "text", "body": body(i)}))
        .collect();
    let (status, answer) = call(
        &emu,
        "POST",
        &format!("queues/{}/seed", queue.id()),
        Some(json!({ "messages": messages })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["ids"].as_array().map(Vec::len), Some(10_000));
    let summary = emu.summary(queue.id()).unwrap();
    assert_eq!(
        (summary.messages, summary.by_state.available),
        (10_000, 10_000)
    );
    let (_, bodies) = call(
        &emu,
        "GET",
        &format!("queues/{}/bodies?prefix=8", queue.id()),
        None,
    )
    .await;
    assert_eq!(bodies["bodies"][9_999], "00009999");
    assert_eq!(queue.metrics().await.unwrap().backlog_bytes, 10_000_000);
}
