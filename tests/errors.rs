//! Error mapping: every documented code, unknown codes, non-JSON bodies, decode paths.

mod common;

use cloudflare_queues::{Error, ErrorCode, RetryPolicy};
use common::*;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The documented table, written out here independently of the crate's own table.
const DOCUMENTED: &[(u32, &str, u16)] = &[
    (10104, "QueueNotFound", 404),
    (10106, "Unauthorized", 401),
    (10107, "QueueIDMalformed", 400),
    (10201, "ClientDisconnected", 400),
    (10202, "BatchDelayInvalid", 400),
    (10203, "MessageMetadataInvalid", 400),
    (10204, "MessageSizeOutOfBounds", 400),
    (10205, "BatchSizeOutOfBounds", 400),
    (10206, "BatchCountOutOfBounds", 400),
    (10207, "JSONRequestBodyInvalid", 400),
    (10208, "JSONRequestBodyMalformed", 400),
    (10250, "QueueOverloaded", 429),
    (10251, "QueueStorageLimitExceeded", 429),
    (10252, "QueueDisabled", 429),
    (10253, "FreeTierLimitExceeded", 429),
    (15000, "UnknownInternalError", 500),
];

#[tokio::test]
async fn every_documented_code_maps_to_its_error_code() {
    assert_eq!(ErrorCode::DOCUMENTED.len(), DOCUMENTED.len());
    for &(code, name, status) in DOCUMENTED {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(err(status, code, &format!("{name} happened")))
            .expect(1)
            .mount(&server)
            .await;
        let e = client(&server)
            .queue(QUEUE)
            .pull()
            .retry_policy(RetryPolicy::none())
            .await
            .unwrap_err();
        let typed = e.code().unwrap();
        assert_eq!(typed.as_u32(), code);
        assert_eq!(typed.name(), name);
        assert!(
            !matches!(typed, ErrorCode::Unknown(_)),
            "{code} must be a named variant"
        );
        assert_eq!(e.status(), Some(status));
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("HTTP {status} [{code} {name}] {name} happened")),
            "display of {code}: {shown}"
        );
    }
}

#[tokio::test]
async fn unknown_codes_and_every_entry_survive() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).insert_header("cf-ray", "8c1f2a3b4d5e6f70-SJC").set_body_json(json!({
            "success": false,
            "errors": [
                {"code": 7003, "message": "No route for the URI", "documentation_url": "https://example.invalid/7003",
                 "source": {"pointer": "/queue_id"}},
                {"code": 10107, "message": "bad id"}
            ],
            "messages": ["see docs"],
            "result": null
        })))
        .mount(&server)
        .await;
    let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
    let api = e.api().unwrap();
    assert_eq!(e.code(), Some(ErrorCode::Unknown(7003)));
    assert_eq!(api.errors.len(), 2);
    assert_eq!(
        api.errors[0].documentation_url.as_deref(),
        Some("https://example.invalid/7003")
    );
    assert_eq!(
        api.errors[0]
            .source
            .as_ref()
            .and_then(|s| s.pointer.as_deref()),
        Some("/queue_id")
    );
    assert_eq!(api.errors[1].code, ErrorCode::QueueIdMalformed);
    assert_eq!(api.messages, vec![json!("see docs")]);
    assert_eq!(api.ray_id.as_deref(), Some("8c1f2a3b4d5e6f70-SJC"));
    assert_eq!(
        e.to_string(),
        "HTTP 400 [7003 Unknown] No route for the URI; [10107 QueueIDMalformed] bad id \
         (POST /accounts/{account_id}/queues/{queue_id}/messages/pull, cf-ray 8c1f2a3b4d5e6f70-SJC)"
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn an_html_502_keeps_its_body() {
    let server = MockServer::start().await;
    let html = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>";
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_raw(html, "text/html"))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .queue(QUEUE)
        .pull()
        .retry_policy(RetryPolicy::none())
        .await
        .unwrap_err();
    let api = e.api().unwrap();
    assert_eq!(api.status, 502);
    assert!(api.errors.is_empty());
    assert_eq!(api.raw_body.as_deref(), Some(html));
    assert!(e.to_string().contains("non-JSON body: <html>"), "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn an_unexpected_body_is_a_decode_error_naming_the_field() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(
            json!({"messages": [{"id": "m", "attempts": 1, "body": "x", "lease_id": "l",
            "metadata": {}, "timestamp_ms": "yesterday"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
    let Error::Decode(d) = &e else {
        panic!("expected a decode error, got {e:?}")
    };
    assert_eq!(d.path, "result.messages[0].timestamp_ms");
    assert_eq!(d.status, 200);
    assert!(d.body_snippet.contains("yesterday"));
    assert!(
        e.to_string().contains("result.messages[0].timestamp_ms"),
        "{e}"
    );
    assert!(!e.is_retryable(), "a malformed success is not retried");

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
        )
        .mount(&server)
        .await;
    let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
    let Error::Decode(d) = &e else {
        panic!("expected a decode error, got {e:?}")
    };
    assert_eq!(d.path, ".");
    assert!(d.body_snippet.starts_with("<html>maintenance"));
}

#[tokio::test]
async fn success_false_with_status_200_is_an_api_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(err(200, 10104, "Queue does not exist"))
        .mount(&server)
        .await;
    let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::QueueNotFound));
    assert!(e.is_not_found());
}
