//! Unit tests of `message.rs`.

use super::*;
use crate::models::PulledMessage;
use serde_json::json;

fn pulled(content_type: &str, body: &str) -> PulledMessage {
    serde_json::from_value(json!({
        "id": "m1", "attempts": 1, "body": body, "lease_id": "l1", "timestamp_ms": 1000,
        "metadata": {"CF-Content-Type": content_type}
    }))
    .unwrap()
}

#[test]
fn each_content_type_decodes() {
    let text = pulled("text", "hello world");
    assert_eq!(text.content_type(), ContentType::Text);
    assert_eq!(text.text().unwrap(), "hello world");
    assert!(matches!(
        text.bytes().unwrap(),
        Cow::Borrowed(b"hello world")
    ));

    let json_msg = pulled("json", "eyJhIjoxfQ=="); // {"a":1}
    assert_eq!(
        json_msg.json::<serde_json::Value>().unwrap(),
        json!({"a": 1})
    );
    assert_eq!(json_msg.text().unwrap(), r#"{"a":1}"#);

    let bytes = pulled("bytes", "AAH/"); // 00 01 ff
    assert_eq!(bytes.bytes().unwrap().as_ref(), &[0u8, 1, 255]);
    assert!(
        matches!(bytes.text().unwrap_err(), Error::Body(b) if matches!(b.kind, BodyErrorKind::Utf8(_)))
    );
    assert_eq!(text.published_at(), UNIX_EPOCH + Duration::from_secs(1));
}

#[test]
fn v8_unknown_and_bad_base64_are_typed_errors() {
    let v8 = pulled("v8", "/w9vIgFh");
    let Error::Body(e) = v8.bytes().unwrap_err() else {
        panic!()
    };
    assert!(matches!(e.kind, BodyErrorKind::Unsupported));
    assert_eq!(e.message_id, "m1");
    assert!(e.to_string().contains("inside Workers"));

    let mut none = pulled("text", "x");
    none.metadata = crate::models::MessageMetadata::default();
    assert!(
        matches!(none.text().unwrap_err(), Error::Body(b) if matches!(b.kind, BodyErrorKind::Unsupported))
    );

    let bad = pulled("json", "not base64!");
    assert!(
        matches!(bad.json::<serde_json::Value>().unwrap_err(), Error::Body(b) if matches!(b.kind, BodyErrorKind::Base64(_)))
    );
    let wrong_type = pulled("json", "eyJhIjoxfQ==");
    assert!(
        matches!(wrong_type.json::<Vec<u8>>().unwrap_err(), Error::Body(b) if matches!(b.kind, BodyErrorKind::Json(_)))
    );
}

#[test]
fn message_sizes_and_limits() {
    assert_eq!(Message::text("héllo").size(), 6);
    assert_eq!(
        Message::json(&json!({"a": [1, 2]})).unwrap().size(),
        r#"{"a":[1,2]}"#.len()
    );
    let big = Message::text("x".repeat(128_001));
    let err = big.validate("messages[7]").unwrap_err().to_string();
    assert!(
        err.contains("messages[7]") && err.contains("128001"),
        "{err}"
    );
    assert!(Message::text("x".repeat(128_000)).validate("m").is_ok());
    let late = Message::text("x").with_delay(Duration::from_secs(86_401));
    assert!(
        late.validate("m")
            .unwrap_err()
            .to_string()
            .contains("m.delay")
    );
}

#[test]
fn messages_serialise_to_the_documented_shape() {
    let m = Message::text("hi").with_delay(Duration::from_secs(600));
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({"body": "hi", "content_type": "text", "delay_seconds": 600})
    );
    let j = Message::json(&json!({"k": true})).unwrap();
    assert_eq!(
        serde_json::to_value(&j).unwrap(),
        json!({"body": {"k": true}, "content_type": "json"})
    );
}
