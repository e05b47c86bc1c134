//! The emulator's HTTP answers (a JSON success, an error in Cloudflare's envelope) and
//! its credential check, shared by the REST routes (`server.rs`) and the control API
//! (`control.rs`).

use super::Shared;
use super::state::{Reject, code};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) fn unauthorized() -> Reject {
    Reject::new(401, code::UNAUTHORIZED, "Unauthorized")
}

/// Whether the request carries credentials the emulator accepts: its token, or (with
/// none configured) any bearer token or email and key pair.
pub(crate) fn credentials_ok(s: &Shared, headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let bearer = text(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let key_pair = matches!(
        (text(header::HeaderName::from_static("x-auth-email")), text(header::HeaderName::from_static("x-auth-key"))),
        (Some(e), Some(k)) if !e.is_empty() && !k.is_empty()
    );
    match (&s.token, bearer) {
        (Some(expected), Some(given)) => given == expected.expose_secret(),
        (Some(_), None) => false,
        (None, Some(given)) => !given.is_empty(),
        (None, None) => key_pair,
    }
}

/// A 200 with a JSON body.
pub(crate) fn json_response(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(crate) fn error_response(reject: &Reject) -> Response {
    let body = serde_json::json!({
        "success": false,
        "errors": [{"code": reject.code, "message": reject.message}],
        "messages": [],
        "result": null,
    });
    let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(wait) = reject.retry_after {
        let headers = response.headers_mut();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&wait.as_millis().to_string()) {
            headers.insert("retry-after-ms", v);
        }
    }
    response
}
