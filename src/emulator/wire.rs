//! The hot requests' wire forms, read and written without intermediate JSON trees:
//! batch pushes and acks are decoded with borrowed strings, and a pull's response is
//! written straight from the leased records (bodies escaped or base64-encoded as they
//! are written, never stored in wire form).
//!
//! Each reader returns `None` for anything it does not take in stride (malformed JSON, a
//! field of the wrong type, a number JSON cannot hold): the server then falls back to
//! the general path, which produces the error the emulator has always answered with.

use super::ledger::{JSON, LeaseKey, TEXT};
use super::state::{Incoming, Pulled, Reject, text_needs_string, unknown_content_type};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// One message of a push, its body still in its JSON text.
#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
    #[serde(borrow)]
    content_type: Cow<'a, str>,
    #[serde(rename = "delay_seconds", default, with = "crate::codec::opt_secs")]
    delay: Option<Duration>,
}

#[derive(Deserialize)]
struct BatchIn<'a> {
    #[serde(default, borrow)]
    messages: Vec<MessageIn<'a>>,
    #[serde(rename = "delay_seconds", default, with = "crate::codec::opt_secs")]
    delay: Option<Duration>,
}

/// The messages of a batch push (each decoded, or why it is refused) and the batch's
/// delay.
pub(crate) type Batch = (Vec<Result<Incoming, Reject>>, Option<Duration>);

/// Reads a batch push's body.
pub(crate) fn read_batch(body: &[u8]) -> Option<Batch> {
    let batch: BatchIn<'_> = serde_json::from_slice(body).ok()?;
    let messages = batch
        .messages
        .into_iter()
        .map(incoming)
        .collect::<Option<Vec<_>>>()?;
    Some((messages, batch.delay))
}

/// Reads a single push's body.
pub(crate) fn read_message(body: &[u8]) -> Option<Result<Incoming, Reject>> {
    incoming(serde_json::from_slice(body).ok()?)
}

/// A pushed message's payload: a text body's string, a json body's JSON (written
/// compactly, as the general path writes it).
fn incoming(m: MessageIn<'_>) -> Option<Result<Incoming, Reject>> {
    let raw = m.body.map_or("null", RawValue::get);
    let (body, content_type): (Arc<[u8]>, u32) = match &*m.content_type {
        "text" => {
            if !raw.starts_with('"') {
                return Some(Err(text_needs_string()));
            }
            // Borrowed when the string has no escapes, the common case.
            let text: Cow<'_, str> = match serde_json::from_str::<&str>(raw) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(serde_json::from_str::<String>(raw).ok()?),
            };
            (Arc::from(text.as_bytes()), TEXT)
        }
        "json" => {
            let value: serde_json::Value = serde_json::from_str(raw).ok()?;
            (Arc::from(serde_json::to_vec(&value).ok()?), JSON)
        }
        other => return Some(Err(unknown_content_type(other))),
    };
    Some(Ok(Incoming {
        body,
        content_type,
        delay: m.delay,
    }))
}

#[derive(Deserialize)]
struct LeaseIn<'a> {
    #[serde(default, borrow)]
    lease_id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RetryIn<'a> {
    #[serde(default, borrow)]
    lease_id: Cow<'a, str>,
    #[serde(rename = "delay_seconds", default, with = "crate::codec::opt_secs")]
    delay: Option<Duration>,
}

#[derive(Deserialize)]
struct AckIn<'a> {
    #[serde(default, borrow)]
    acks: Vec<LeaseIn<'a>>,
    #[serde(default, borrow)]
    retries: Vec<RetryIn<'a>>,
}

/// Lease ids to ack, and lease ids to retry with their delays.
pub(crate) type Settlement<'a> = (Vec<Cow<'a, str>>, Vec<(Cow<'a, str>, Option<Duration>)>);

/// Reads an ack request's body.
pub(crate) fn read_ack(body: &[u8]) -> Option<Settlement<'_>> {
    let ack: AckIn<'_> = serde_json::from_slice(body).ok()?;
    Some((
        ack.acks.into_iter().map(|a| a.lease_id).collect(),
        ack.retries
            .into_iter()
            .map(|r| (r.lease_id, r.delay))
            .collect(),
    ))
}

/// The whole response to a pull, envelope included: the same JSON as the model types
/// serialise to (`PullResult`), written directly.
pub(crate) fn write_pull(pulled: &Pulled) -> Vec<u8> {
    let bodies: usize = pulled.messages.iter().map(|d| d.body.len()).sum();
    let mut out = Vec::with_capacity(bodies + bodies / 3 + 256 * pulled.messages.len() + 256);
    out.extend_from_slice(
        br#"{"success":true,"errors":[],"messages":[],"result":{"message_backlog_count":"#,
    );
    write_u64(&mut out, pulled.metrics.backlog_count);
    if !pulled.messages.is_empty() {
        out.extend_from_slice(br#","messages":["#);
        for (i, d) in pulled.messages.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"attempts":"#);
            write_u64(&mut out, u64::from(d.attempts));
            out.extend_from_slice(br#","body":"#);
            let content_type = d.content_type.as_str();
            if content_type == "text" {
                write_json_str(&mut out, &d.body);
            } else {
                write_base64(&mut out, &d.body);
            }
            out.extend_from_slice(br#","id":""#);
            d.id.write(&mut out);
            out.extend_from_slice(br#"","lease_id":""#);
            LeaseKey::write(d.lease, &mut out);
            out.extend_from_slice(br#"","metadata":{"CF-Content-Type":"#);
            write_json_str(&mut out, content_type.as_bytes());
            out.extend_from_slice(br#","CF-sourceMessageSource":"api"},"timestamp_ms":"#);
            write_u64(&mut out, d.timestamp_ms);
            out.push(b'}');
        }
        out.push(b']');
    }
    let m = &pulled.metrics;
    out.extend_from_slice(br#","metadata":{"metrics":{"backlog_bytes":"#);
    write_u64(&mut out, m.backlog_bytes);
    out.extend_from_slice(br#","backlog_count":"#);
    write_u64(&mut out, m.backlog_count);
    out.extend_from_slice(br#","oldest_message_timestamp_ms":"#);
    write_u64(&mut out, m.oldest_message_timestamp_ms);
    out.extend_from_slice(b"}}}}");
    out
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10` is below 10.
        digits[i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes UTF-8 `text` as a JSON string, escaped as `serde_json` escapes it.
pub(crate) fn write_json_str(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// Writes `bytes` base64-encoded (standard alphabet, padded), as a JSON string.
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    let len = bytes.len().div_ceil(3) * 4;
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let samples = [
            "plain",
            "",
            "quote \" backslash \\ slash /",
            "lines\n\r\ttabs \u{8}\u{c} and \u{1} \u{1f} \u{7f}",
            "unicode é 日本 😀 \u{2028}",
        ];
        for s in samples {
            let mut out = Vec::new();
            write_json_str(&mut out, s.as_bytes());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn base64_is_standard_and_padded() {
        for len in 0..8 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
            let mut out = Vec::new();
            write_base64(&mut out, &bytes);
            let expected = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert_eq!(String::from_utf8(out).unwrap(), format!("\"{expected}\""));
        }
    }

    #[test]
    fn numbers_are_written_in_full() {
        for n in [0, 7, 10, 99, 1_700_000_000_000, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn pushes_decode_text_with_and_without_escapes_and_json_compactly() {
        let body = br#"{"delay_seconds": 2, "messages": [
            {"content_type": "text", "body": "plain"},
            {"content_type": "text", "body": "esc\"aped\n", "delay_seconds": 1},
            {"content_type": "json", "body": {"b": [1, 2], "a": null}},
            {"content_type": "json"},
            {"content_type": "text", "body": 5},
            {"content_type": "bytes", "body": "AA=="}
        ]}"#;
        let (messages, delay) = read_batch(body).unwrap();
        assert_eq!(delay, Some(Duration::from_secs(2)));
        let ok: Vec<(&[u8], u32, Option<Duration>)> = messages[..4]
            .iter()
            .map(|m| {
                let m = m.as_ref().unwrap();
                (&m.body[..], m.content_type, m.delay)
            })
            .collect();
        assert_eq!(
            ok,
            [
                (&b"plain"[..], TEXT, None),
                (&b"esc\"aped\n"[..], TEXT, Some(Duration::from_secs(1))),
                (&br#"{"a":null,"b":[1,2]}"#[..], JSON, None),
                (&b"null"[..], JSON, None),
            ]
        );
        assert_eq!(messages[4].as_ref().unwrap_err().code, 10207);
        assert_eq!(messages[5].as_ref().unwrap_err().code, 10203);
    }

    #[test]
    fn what_the_fast_readers_do_not_take_goes_to_the_general_path() {
        for body in [
            &b""[..],
            b"   ",
            b"{",
            br#"{"messages": [{"body": "no content type"}]}"#,
            br#"{"messages": [{"content_type": 1, "body": "x"}]}"#,
            br#"{"messages": {"content_type": "text"}}"#,
            br#"{"messages": [{"content_type": "json", "body": 1e400}]}"#,
            br#"{"delay_seconds": "soon", "messages": []}"#,
        ] {
            assert!(
                read_batch(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(read_ack(br#"{"acks": [{"lease_id": 5}]}"#).is_none());
        assert!(read_ack(b"not json").is_none());
        let (acks, retries) =
            read_ack(br#"{"acks": [{"lease_id": "a"}, {}], "retries": [{"lease_id": "b\u0041", "delay_seconds": 3}]}"#)
                .unwrap();
        assert_eq!(acks, ["a", ""]);
        assert_eq!(retries, [(Cow::from("bA"), Some(Duration::from_secs(3)))]);
    }
}
