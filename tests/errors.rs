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
         (POST /accounts/{account_id}/queues/b01b5594f784d0165c2985833f5660dd/messages/pull, cf-ray 8c1f2a3b4d5e6f70-SJC)"
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
            json!({"message_backlog_count": "yesterday", "messages": []}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server).queue(QUEUE).pull().await.unwrap_err();
    let Error::Decode(d) = &e else {
        panic!("expected a decode error, got {e:?}")
    };
    assert_eq!(d.path, "result.message_backlog_count");
    assert_eq!(d.status, 200);
    assert!(d.body_snippet.contains("yesterday"));
    assert!(
        e.to_string().contains("result.message_backlog_count"),
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
async fn one_malformed_message_is_rejected_alone_and_its_batch_mates_are_delivered() {
    // Three kinds of damage seen from servers: a lone surrogate escape, raw bytes that
    // are not UTF-8, and a negative count. Each sits among nine good messages.
    let good = |i: usize| {
        format!(
            r#"{{"id":"m{i}","lease_id":"l{i}","attempts":1,"body":"ok {i}","metadata":{{"CF-Content-Type":"text"}},"timestamp_ms":1}}"#
        )
        .into_bytes()
    };
    let bad: [&[u8]; 3] = [
        br#"{"id":"bad","lease_id":"lbad","attempts":1,"body":"\ud800","metadata":{},"timestamp_ms":1}"#,
        b"{\"id\":\"bad\",\"lease_id\":\"lbad\",\"attempts\":1,\"body\":\"\xff\xff\",\"metadata\":{},\"timestamp_ms\":1}",
        br#"{"id":"bad","lease_id":"lbad","attempts":-1,"body":"x","metadata":{},"timestamp_ms":1}"#,
    ];
    for bad in bad {
        let mut body =
            br#"{"success":true,"errors":[],"messages":[],"result":{"messages":["#.to_vec();
        for i in 0..10 {
            if i > 0 {
                body.push(b',');
            }
            if i == 6 {
                body.extend_from_slice(bad);
            } else {
                body.extend_from_slice(&good(i));
            }
        }
        body.extend_from_slice(b"]}}");
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let batch = client(&server).queue(QUEUE).pull().await.unwrap();
        let ids: Vec<&str> = batch.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["m0", "m1", "m2", "m3", "m4", "m5", "m7", "m8", "m9"]);
        assert!(
            batch
                .messages
                .iter()
                .all(|m| m.text().unwrap().starts_with("ok "))
        );
        assert_eq!(batch.rejected.len(), 1);
        let rejected = &batch.rejected[0];
        assert_eq!(rejected.index, 6);
        assert_eq!(rejected.id.as_deref(), Some("bad"));
        assert_eq!(rejected.lease_id.as_deref(), Some("lbad"), "settleable");
    }
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
