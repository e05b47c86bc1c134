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
use std::time::Duration;

/// Largest error body kept verbatim.
const RAW_BODY_LIMIT: usize = 64 * 1024;

/// A decoded success: the typed `result` and what came with it.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    pub(crate) result: T,
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

/// What the transport knows about a response besides its body.
pub(crate) struct ResponseMeta {
    pub(crate) request: RequestLabel,
    pub(crate) status: u16,
    pub(crate) ray_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

pub(crate) fn decode<T: DeserializeOwned>(meta: ResponseMeta, body: &[u8]) -> Result<Reply<T>> {
    let ok_status = (200..300).contains(&meta.status);
    let envelope = match serde_json::from_slice::<RawEnvelope<'_>>(body) {
        Ok(env) => env,
        Err(_) if !ok_status => return Err(api_error(meta, Vec::new(), Vec::new(), Some(body))),
        Err(_) => {
            // Find out where it went wrong, for the error message.
            let mut de = serde_json::Deserializer::from_slice(body);
            let err = serde_path_to_error::deserialize::<_, RawEnvelope<'_>>(&mut de)
                .err()
                .map(|e| (e.path().to_string(), e.into_inner()));
            let (path, source) =
                err.unwrap_or_else(|| (".".into(), serde::de::Error::custom("invalid envelope")));
            return Err(decode_error(meta, path, source, body));
        }
    };

    let looks_like_envelope = envelope.success.is_some() || !envelope.errors.is_empty();
    if !ok_status {
        let raw = (!looks_like_envelope).then_some(body);
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
            return Err(decode_error(meta, path, source, body));
        }
    };
    Ok(Reply {
        result,
        result_info: envelope.result_info,
    })
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
    use crate::models::PullResult;

    fn meta(status: u16) -> ResponseMeta {
        ResponseMeta {
            request: RequestLabel {
                method: reqwest::Method::POST,
                path: "/x",
            },
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
        let body = br#"{"success":true,"errors":[],"messages":[],"result":{"messages":[{"id":"a","attempts":"two"}]}}"#;
        let Error::Decode(e) = decode::<PullResult>(meta(200), body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.path, "result.messages[0].attempts");
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
    fn missing_result_is_null() {
        let body = br#"{"success":true,"errors":[],"messages":[]}"#;
        decode::<()>(meta(200), body).unwrap();
        decode::<Option<PullResult>>(meta(200), body).unwrap();
    }
}
