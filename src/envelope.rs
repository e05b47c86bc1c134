//! Decoding of the v4 response envelope into a typed result or an [`Error`].
//!
//! ```json
//! {"success": true, "errors": [], "messages": [], "result": {...}, "result_info": {...}}
//! ```
//!
//! A 2xx response with `success: false` is an API error, like a non-2xx one. A non-2xx
//! response whose body is not an envelope (an HTML 502 from the edge, say) keeps its
//! body in [`ApiError::raw_body`](crate::error::ApiError::raw_body). A body that is not
//! the expected JSON gives [`Error::Decode`] naming the JSON path of the failing field.

use crate::error::{ApiError, DecodeError, Error, ErrorDetail, RequestLabel, Result, snippet};
use crate::models::ResultInfo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::time::Duration;

/// Largest error body kept verbatim.
const RAW_BODY_LIMIT: usize = 64 * 1024;

/// A decoded success: the typed `result` and what came with it.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    pub(crate) result: T,
    /// The HTTP status of the response (a 2xx).
    pub(crate) status: u16,
    pub(crate) result_info: Option<ResultInfo>,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    errors: Vec<ErrorDetail>,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

thread_local! {
    /// Set while the strict first pass of [`decode`] runs on this thread.
    static STRICT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the decode running on this thread is the strict first pass: a result type
/// that is lenient at a cost (a pull, read entry by entry) may read the common,
/// well-formed case in one pass and fail on anything else, knowing that [`decode`] then
/// reads the body again, leniently.
pub(crate) fn strict_pass() -> bool {
    STRICT.with(std::cell::Cell::get)
}

/// Marks the strict pass for as long as it lives (a panic included).
struct StrictPass;

impl StrictPass {
    fn begin() -> Self {
        STRICT.with(|s| s.set(true));
        StrictPass
    }
}

impl Drop for StrictPass {
    fn drop(&mut self) {
        STRICT.with(|s| s.set(false));
    }
}

/// A success envelope read in one pass: the common case, tried first.
#[derive(Deserialize)]
struct FastEnvelope<T> {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    errors: Vec<serde::de::IgnoredAny>,
    result: Option<T>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

/// What the transport knows about a response besides its body.
pub(crate) struct ResponseMeta {
    pub(crate) request: RequestLabel,
    pub(crate) status: u16,
    pub(crate) ray_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

pub(crate) fn decode<T: DeserializeOwned>(meta: ResponseMeta, body: &[u8]) -> Result<Reply<T>> {
    let ok_status = (200..300).contains(&meta.status);
    let original = body;
    let repaired = mark_invalid_utf8(body);
    // The common case in one pass: a 2xx success envelope whose result decodes. Anything
    // else (an error, a missing result, a field that does not decode) takes the careful
    // path below, which finds the error, names the failing field and keeps the body.
    if ok_status {
        let strict = StrictPass::begin();
        let fast = serde_json::from_str::<FastEnvelope<T>>(&repaired);
        drop(strict);
        if let Ok(FastEnvelope {
            success: Some(true) | None,
            errors,
            result: Some(result),
            result_info,
        }) = fast
        {
            if errors.is_empty() {
                return Ok(Reply {
                    result,
                    status: meta.status,
                    result_info,
                });
            }
        }
    }
    let body = repaired.as_bytes();
    let envelope = match serde_json::from_slice::<RawEnvelope<'_>>(body) {
        Ok(env) => env,
        Err(_) if !ok_status => {
            return Err(api_error(meta, Vec::new(), Vec::new(), Some(original)));
        }
        Err(_) => {
            // Find out where it went wrong, for the error message.
            let mut de = serde_json::Deserializer::from_slice(body);
            let err = serde_path_to_error::deserialize::<_, RawEnvelope<'_>>(&mut de)
                .err()
                .map(|e| (e.path().to_string(), e.into_inner()));
            let (path, source) =
                err.unwrap_or_else(|| (".".into(), serde::de::Error::custom("invalid envelope")));
            return Err(decode_error(meta, path, source, original));
        }
    };

    let looks_like_envelope = envelope.success.is_some() || !envelope.errors.is_empty();
    if !ok_status {
        let raw = (!looks_like_envelope).then_some(original);
        return Err(api_error(meta, envelope.errors, envelope.messages, raw));
    }
    if envelope.success == Some(false)
        || (envelope.success.is_none() && !envelope.errors.is_empty())
    {
        return Err(api_error(meta, envelope.errors, envelope.messages, None));
    }

    let raw_result = envelope.result.map_or("null", RawValue::get);
    let result = match serde_json::from_str::<T>(raw_result) {
        Ok(result) => result,
        Err(first) => {
            // The fast path failed; decode again with path tracking to name the field.
            let mut de = serde_json::Deserializer::from_str(raw_result);
            let (path, source) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => (e.path().to_string(), e.into_inner()),
                Ok(_) => (".".to_owned(), first),
            };
            let path = if path == "." {
                "result".to_owned()
            } else {
                format!("result.{path}")
            };
            return Err(decode_error(meta, path, source, original));
        }
    };
    Ok(Reply {
        result,
        status: meta.status,
        result_info: envelope.result_info,
    })
}

/// The body as text, with every byte sequence that is not UTF-8 replaced by the escape
/// `\udfff` (a lone surrogate).
///
/// JSON must be UTF-8, but one bad message body must not make a whole pull unreadable.
/// The escape keeps the document parseable around the damage (raw JSON values skip
/// escapes without checking them) while any string that contained the bad bytes can no
/// longer be read as a Rust `String`, so exactly the entry that holds it fails to decode
/// (see `models/pull.rs`) instead of being delivered with altered bytes. A bad sequence
/// right after an escaping backslash first completes that escape the same way.
fn mark_invalid_utf8(body: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(body) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(body.len() + 16);
    for chunk in body.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            let backslashes = out.bytes().rev().take_while(|b| *b == b'\\').count();
            if backslashes % 2 == 1 {
                out.push_str("udfff");
            }
            out.push_str("\\udfff");
        }
    }
    Cow::Owned(out)
}

fn api_error(
    meta: ResponseMeta,
    errors: Vec<ErrorDetail>,
    messages: Vec<serde_json::Value>,
    raw_body: Option<&[u8]>,
) -> Error {
    let raw_body = raw_body.map(|b| {
        let cut = &b[..b.len().min(RAW_BODY_LIMIT)];
        String::from_utf8_lossy(cut).into_owned()
    });
    Error::Api(Box::new(ApiError {
        status: meta.status,
        errors,
        messages,
        ray_id: meta.ray_id,
        retry_after: meta.retry_after,
        raw_body,
        request: meta.request,
        attempts: 1,
    }))
}

pub(crate) fn decode_error(
    meta: ResponseMeta,
    path: String,
    source: serde_json::Error,
    body: &[u8],
) -> Error {
    let head = &body[..body.len().min(1024)];
    Error::Decode(Box::new(DecodeError {
        request: meta.request,
        status: meta.status,
        path,
        body_snippet: snippet(&String::from_utf8_lossy(head), 200),
        attempts: 1,
        source,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::models::{AckResult, PullResult};

    fn meta(status: u16) -> ResponseMeta {
        ResponseMeta {
            request: RequestLabel::new(reqwest::Method::POST, "/x"),
            status,
            ray_id: Some("ray-1".into()),
            retry_after: None,
        }
    }

    #[test]
    fn success_false_on_200_is_an_api_error() {
        let body = br#"{"success":false,"errors":[{"code":10104,"message":"Queue not found"}],"messages":[],"result":null}"#;
        let err = decode::<serde_json::Value>(meta(200), body).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::QueueNotFound));
        assert_eq!(err.status(), Some(200));
    }

    #[test]
    fn decode_errors_name_the_field() {
        let body = br#"{"success":true,"errors":[],"messages":[],"result":{"ackCount":"two"}}"#;
        let Error::Decode(e) = decode::<AckResult>(meta(200), body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.path, "result.ackCount");
        assert!(e.body_snippet.starts_with("{\"success\":true"));
        let Error::Decode(e) = decode::<PullResult>(meta(200), b"<html>oops</html>").unwrap_err()
        else {
            panic!()
        };
        assert_eq!(e.path, ".");
    }

    #[test]
    fn non_envelope_error_bodies_are_kept() {
        let html = b"<html><body>502 Bad Gateway</body></html>";
        let err = decode::<serde_json::Value>(meta(502), html).unwrap_err();
        let api = err.api().unwrap();
        assert_eq!(
            api.raw_body.as_deref(),
            Some("<html><body>502 Bad Gateway</body></html>")
        );
        assert!(api.errors.is_empty());
        let err = decode::<serde_json::Value>(meta(502), br#"{"not":"an envelope"}"#).unwrap_err();
        assert_eq!(
            err.api().unwrap().raw_body.as_deref(),
            Some(r#"{"not":"an envelope"}"#)
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_cost_only_their_own_message() {
        let mut body =
            br#"{"success":true,"errors":[],"messages":[],"result":{"messages":["#.to_vec();
        for i in 0..10 {
            if i > 0 {
                body.push(b',');
            }
            let text: &[u8] = if i == 3 {
                b"bad \xff\xfe body"
            } else {
                b"fine"
            };
            let head = format!(
                r#"{{"id":"m{i}","lease_id":"l{i}","attempts":1,"metadata":{{"CF-Content-Type":"text"}},"timestamp_ms":1,"body":""#
            );
            body.extend_from_slice(head.as_bytes());
            body.extend_from_slice(text);
            body.extend_from_slice(b"\"}");
        }
        body.extend_from_slice(b"]}}");
        let reply = decode::<PullResult>(meta(200), &body).unwrap();
        assert_eq!(reply.result.messages.len(), 9);
        assert!(reply.result.messages.iter().all(|m| m.body == "fine"));
        let bad = &reply.result.rejected;
        assert_eq!(bad.len(), 1);
        assert_eq!((bad[0].index, bad[0].lease_id.as_deref()), (3, Some("l3")));
        assert!(bad[0].reason.starts_with("body"), "{}", bad[0].reason);
    }

    #[test]
    fn a_bad_byte_after_a_backslash_is_still_caught() {
        let body = b"{\"success\":true,\"result\":{\"messages\":[{\"lease_id\":\"l\",\"body\":\"a\\\xff\"}]}}";
        let reply = decode::<PullResult>(meta(200), body).unwrap();
        assert!(reply.result.messages.is_empty());
        assert_eq!(reply.result.rejected[0].lease_id.as_deref(), Some("l"));
        // Elsewhere the damaged field is a decode error naming its path.
        let err = decode::<serde_json::Map<String, serde_json::Value>>(
            meta(200),
            b"{\"success\":true,\"result\":{\"name\":\"q\xff\"}}",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
    }

    #[test]
    fn missing_result_is_null() {
        let body = br#"{"success":true,"errors":[],"messages":[]}"#;
        decode::<()>(meta(200), body).unwrap();
        decode::<Option<PullResult>>(meta(200), body).unwrap();
    }
}
