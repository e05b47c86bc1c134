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
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
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

/// Reads a batch push's body. The payloads are copied into one buffer, each message's
/// body a slice of it: one allocation per request rather than one per message.
pub(crate) fn read_batch(body: &[u8]) -> Option<Batch> {
    let batch: BatchIn<'_> = serde_json::from_slice(body).ok()?;
    let decoded = batch
        .messages
        .into_iter()
        .map(decode)
        .collect::<Option<Vec<_>>>()?;
    Some((into_incoming(decoded), batch.delay))
}

/// Reads a single push's body.
pub(crate) fn read_message(body: &[u8]) -> Option<Result<Incoming, Reject>> {
    let decoded = decode(serde_json::from_slice(body).ok()?)?;
    into_incoming(vec![decoded]).pop()
}

/// A message's payload, content type and delay, the payload still borrowed from the
/// request where it can be.
type Decoded<'a> = Result<(Cow<'a, [u8]>, u32, Option<Duration>), Reject>;

fn into_incoming(decoded: Vec<Decoded<'_>>) -> Vec<Result<Incoming, Reject>> {
    let total = decoded
        .iter()
        .map(|d| d.as_ref().map_or(0, |(body, _, _)| body.len()))
        .sum();
    let mut buffer = BytesMut::with_capacity(total);
    for (body, _, _) in decoded.iter().flatten() {
        buffer.extend_from_slice(body);
    }
    let buffer = buffer.freeze();
    let mut start = 0;
    decoded
        .into_iter()
        .map(|d| {
            d.map(|(body, content_type, delay)| {
                let end = start + body.len();
                let body = buffer.slice(start..end);
                start = end;
                Incoming {
                    body,
                    content_type,
                    delay,
                }
            })
        })
        .collect()
}

/// A pushed message's payload: a text body's string, a json body's JSON (written
/// compactly, as the general path writes it).
fn decode(m: MessageIn<'_>) -> Option<Decoded<'_>> {
    let raw = m.body.map_or("null", RawValue::get);
    let (body, content_type): (Cow<'_, [u8]>, u32) = match &*m.content_type {
        "text" => {
            if !raw.starts_with('"') {
                return Some(Err(text_needs_string()));
            }
            // A JSON string without a backslash has no escapes: its text is what lies
            // between the quotes, and the parser (which checked it) need not run again.
            let text: Cow<'_, [u8]> = match raw.get(1..raw.len() - 1) {
                Some(inner) if raw.ends_with('"') && !inner.as_bytes().contains(&b'\\') => {
                    Cow::Borrowed(inner.as_bytes())
                }
                _ => Cow::Owned(serde_json::from_str::<String>(raw).ok()?.into_bytes()),
            };
            (text, TEXT)
        }
        "json" => {
            let value: serde_json::Value = serde_json::from_str(raw).ok()?;
            (Cow::Owned(serde_json::to_vec(&value).ok()?), JSON)
        }
        other => return Some(Err(unknown_content_type(other))),
    };
    Some(Ok((body, content_type, m.delay)))
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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `w` is below 0x20, a `"` or a `\\`: a byte JSON
/// escapes. Exact (no false answer either way), after the "has a zero byte" trick.
fn needs_escape(w: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    has_zero(w ^ (ONES * u64::from(b'"')))
        || has_zero(w ^ (ONES * u64::from(b'\\')))
        || w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0
}

/// Writes UTF-8 `text` as a JSON string, escaped as `serde_json` escapes it. Runs with
/// nothing to escape are found eight bytes at a time and copied whole.
pub(crate) fn write_json_str(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if let Some(word) = text.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        i += 1;
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
        out.extend_from_slice(&text[start..i - 1]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i;
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
            "long run without escapes, then one at the very end of it all\"",
            "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
            "0123456\u{1f}89abcdef\\\\ghijklm~\u{7f}\u{80}",
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

    fn escaped_by_hand(w: [u8; 8]) -> bool {
        w.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
    }

    #[test]
    fn the_word_check_is_exact_for_every_byte_in_every_position() {
        for position in 0..8 {
            for b in 0..=255u8 {
                for fill in [b'a', 0x7f, 0xff, b'!'] {
                    let mut w = [fill; 8];
                    w[position] = b;
                    assert_eq!(
                        needs_escape(u64::from_le_bytes(w)),
                        escaped_by_hand(w),
                        "{w:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_word_is_checked_exactly(w in proptest::prelude::any::<[u8; 8]>()) {
            proptest::prop_assert_eq!(needs_escape(u64::from_le_bytes(w)), escaped_by_hand(w));
        }

        #[test]
        fn any_text_is_escaped_as_serde_json_escapes_it(s in "\\PC*|[\\x00-\\x7f]*") {
            let mut out = Vec::new();
            write_json_str(&mut out, s.as_bytes());
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
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
