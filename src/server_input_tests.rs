//! Property tests: nothing a server can send (status, headers, body) makes the crate
//! panic. Each decoder that reads server input gets random input, from unstructured bytes
//! to well-formed envelopes whose every field holds a random JSON value; the properties
//! only demand that decoding returns (`Ok` or `Err`), and that what decodes can be used.
//!
//! Case counts are bounded so that `cargo test` stays quick in CI.

use crate::consumer::ReceivedMessage;
use crate::envelope::{self, ResponseMeta};
use crate::error::RequestLabel;
use crate::models::{AckResult, PullResult, Queue};
use crate::retry::{RetryPolicy, parse_retry_after};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Failures print their minimal input; nothing is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn meta(status: u16) -> ResponseMeta {
    ResponseMeta {
        request: RequestLabel::new(
            reqwest::Method::POST,
            "/accounts/{account_id}/queues/{queue_id}/messages/pull",
        ),
        status,
        ray_id: None,
        retry_after: None,
    }
}

/// Numbers at and past the edges every integer or duration codec must survive.
fn edge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        prop::sample::select(vec![
            json!(-1),
            json!(0),
            json!(-0.0),
            json!(0.5),
            json!(4_294_967_295u64),
            json!(4_294_967_296u64),
            json!(u64::MAX),
            json!(1.8446744073709552e19),
            json!(1e300),
            json!(-1e300),
        ]),
    ]
}

/// Strings with the characters that have broken parsers: escapes, surrogate-looking
/// text, control characters, non-ASCII, base64 alphabets.
fn edge_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+/=]{0,40}",
        prop::sample::select(vec![
            String::new(),
            " ".to_owned(),
            "text".to_owned(),
            "json".to_owned(),
            "bytes".to_owned(),
            "v8".to_owned(),
            "\u{fffd}".to_owned(),
            "\0".to_owned(),
            "e30=".to_owned(),
        ]),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        edge_number(),
        edge_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(edge_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A pulled message whose every field is either plausible or random.
fn any_pulled_message() -> impl Strategy<Value = Value> {
    let field = |plausible: BoxedStrategy<Value>| prop_oneof![plausible, any_json()];
    let metadata = prop_oneof![
        edge_string().prop_map(|ct| json!({ "CF-Content-Type": ct })),
        any_json(),
    ];
    (
        field(edge_string().prop_map(Value::String).boxed()),
        field(edge_string().prop_map(Value::String).boxed()),
        field(edge_number().boxed()),
        field(edge_string().prop_map(Value::String).boxed()),
        metadata,
        field(edge_number().boxed()),
    )
        .prop_map(|(id, lease_id, attempts, body, metadata, timestamp_ms)| {
            json!({
                "id": id, "lease_id": lease_id, "attempts": attempts, "body": body,
                "metadata": metadata, "timestamp_ms": timestamp_ms,
            })
        })
}

fn envelope_around(result: Value, success: Value) -> Vec<u8> {
    let mut env = Map::new();
    env.insert("success".into(), success);
    env.insert("errors".into(), json!([]));
    env.insert("messages".into(), json!([]));
    env.insert("result".into(), result);
    serde_json::to_vec(&Value::Object(env)).unwrap_or_default()
}

/// Uses everything a decoded pull offers, as the consumer and users do.
fn exercise_pull(result: &PullResult) {
    for m in &result.messages {
        let _ = m.text();
        let _ = m.bytes();
        let _ = m.json::<Value>();
        let _ = m.published_at();
        let _ = m.content_type();
        let (received, _problem) =
            ReceivedMessage::from_pulled(m.clone(), tokio::time::Instant::now());
        let _ = received.text();
        let _ = received.json::<Value>();
        let _ = received.raw_body();
        let _ = received.published_at();
        let _ = format!("{received:?}");
    }
    for r in &result.rejected {
        let _ = format!("{r:?}");
    }
    let _ = result.metrics();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(reply) = envelope::decode::<PullResult>(meta(status), &body) {
            exercise_pull(&reply.result);
        }
        let _ = envelope::decode::<AckResult>(meta(status), &body);
        let _ = envelope::decode::<Value>(meta(status), &body);
        let _ = envelope::decode::<Queue>(meta(status), &body);
    }

    #[test]
    fn random_json_envelopes_never_panic(
        status in prop::sample::select(vec![200u16, 201, 204, 400, 404, 409, 429, 500, 502]),
        success in any_json(),
        errors in any_json(),
        result in any_json(),
        result_info in any_json(),
    ) {
        let body = serde_json::to_vec(&json!({
            "success": success, "errors": errors, "messages": [], "result": result,
            "result_info": result_info,
        })).unwrap_or_default();
        if let Ok(reply) = envelope::decode::<PullResult>(meta(status), &body) {
            exercise_pull(&reply.result);
        }
        let _ = envelope::decode::<AckResult>(meta(status), &body);
        if let Err(e) = envelope::decode::<Queue>(meta(status), &body) {
            let _ = (e.to_string(), e.is_retryable(), e.retry_after(), e.code());
        }
    }

    #[test]
    fn valid_pull_envelopes_with_random_fields_never_panic(
        messages in prop::collection::vec(any_pulled_message(), 0..8),
        backlog in prop_oneof![edge_number(), any_json()],
        corrupt_at in any::<prop::sample::Index>(),
        corrupt in any::<bool>(),
    ) {
        let result = json!({ "message_backlog_count": backlog, "messages": messages.clone() });
        let mut body = envelope_around(result, json!(true));
        if corrupt && !body.is_empty() {
            // A byte that can never appear in UTF-8, somewhere in the document.
            let at = corrupt_at.index(body.len());
            body.insert(at, 0xff);
        }
        match envelope::decode::<PullResult>(meta(200), &body) {
            Ok(reply) => {
                exercise_pull(&reply.result);
                if !corrupt {
                    // Nothing is lost: every entry is either decoded or rejected.
                    prop_assert_eq!(
                        reply.result.messages.len() + reply.result.rejected.len(),
                        messages.len()
                    );
                }
            }
            Err(e) => prop_assert!(corrupt || !e.to_string().is_empty()),
        }
    }

    #[test]
    fn valid_ack_envelopes_with_random_fields_never_panic(
        ack_count in prop_oneof![edge_number(), any_json()],
        retry_count in prop_oneof![edge_number(), any_json()],
        warnings in any_json(),
    ) {
        let result = json!({ "ackCount": ack_count, "retryCount": retry_count, "warnings": warnings });
        if let Ok(reply) = envelope::decode::<AckResult>(meta(200), &envelope_around(result, json!(true))) {
            let _ = format!("{:?}", reply.result);
        }
    }

    #[test]
    fn random_retry_after_headers_never_panic(
        name in prop::sample::select(vec!["retry-after", "retry-after-ms"]),
        value in prop_oneof![
            any::<String>(),
            "[0-9.eE+-]{1,30}",
            (0u64..u64::MAX, 0u32..40, 0u64..u64::MAX, 0u64..100, 0u64..100, 0u64..100).prop_map(
                |(year, day, big, h, m, s)| format!("Sun, {day:02} Nov {year} {h:02}:{m:02}:{s:02} GMT {big}")
            ),
            (0u64..100_000_000_000_000, 0u32..40).prop_map(
                |(year, day)| format!("Sun, {day:02} Nov {year} 08:49:37 GMT")
            ),
        ],
        now_secs in any::<u64>(),
        attempt in any::<u32>(),
        sample in any::<f64>(),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
        let now = UNIX_EPOCH.checked_add(Duration::from_secs(now_secs)).unwrap_or_else(SystemTime::now);
        let hint = parse_retry_after(&headers, now);
        let policy = RetryPolicy::default();
        let delay = policy.delay(attempt, hint, sample);
        prop_assert!(delay <= Duration::from_secs(60));
        // What the callers do with a delay: schedule a wake-up.
        let _ = tokio::time::Instant::now().checked_add(delay);
    }
}
