//! The control API (`/__emulator/…`, see [`EmulatorBuilder::control_api`]): what the
//! [`Emulator`](super::Emulator) handle does in-process, over HTTP for a test or
//! benchmark in another process. Same credentials as the REST routes; JSON in and out;
//! errors in the REST API's envelope.
//!
//! [`EmulatorBuilder::control_api`]: super::EmulatorBuilder::control_api

use super::respond::{credentials_ok, error_response, json_response, unauthorized};
use super::state::{Reject, code};
use super::{SeedMessage, Shared};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Largest seed request: 10,000 messages of 1 KB base64-encoded take about 14 MB.
const MAX_SEED_BODY: usize = 64 * 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__emulator/queues/{queue_id}/seed", post(seed))
        .route("/__emulator/queues/{queue_id}/summary", get(summary))
        .route("/__emulator/queues/{queue_id}/bodies", get(bodies))
        .route("/__emulator/requests", get(requests))
        .layer(DefaultBodyLimit::max(MAX_SEED_BODY))
}

/// The answer to a control request: a JSON body, or a refusal.
fn answer<T: Serialize>(value: Result<T, Reject>) -> Response {
    match value.and_then(|v| {
        serde_json::to_vec(&v).map_err(|e| Reject::new(500, code::INTERNAL, e.to_string()))
    }) {
        Ok(body) => json_response(body),
        Err(reject) => error_response(&reject),
    }
}

fn check(s: &Shared, headers: &HeaderMap) -> Result<(), Reject> {
    if credentials_ok(s, headers) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

fn no_queue() -> Reject {
    Reject::new(404, code::QUEUE_NOT_FOUND, "Queue does not exist")
}

#[derive(Deserialize)]
struct SeedRequest {
    messages: Vec<SeedEntry>,
}

#[derive(Deserialize)]
struct SeedEntry {
    content_type: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

impl SeedEntry {
    fn into_seed(self, i: usize) -> Result<SeedMessage, Reject> {
        let bad = |what: &str| Reject::invalid(format!("messages[{i}]: {what}"));
        if !matches!(self.content_type.as_str(), "text" | "json" | "bytes" | "v8") {
            return Err(bad("content_type must be text, json, bytes or v8"));
        }
        let payload = match (self.body, self.body_base64) {
            (Some(body), None) => body.into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| bad(&format!("body_base64 is not base64: {e}")))?,
            _ => return Err(bad("give exactly one of body and body_base64")),
        };
        let message = SeedMessage::raw(self.content_type, payload);
        Ok(match self.delay_ms {
            Some(ms) => message.with_delay(Duration::from_millis(ms)),
            None => message,
        })
    }
}

#[derive(Serialize)]
struct Seeded {
    ids: Vec<String>,
}

async fn seed(
    State(s): State<Arc<Shared>>,
    Path(queue_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seeded = (|| {
        check(&s, &headers)?;
        let request: SeedRequest = serde_json::from_slice(&body).map_err(|e| {
            let status = if e.is_data() {
                code::BODY_INVALID
            } else {
                code::BODY_MALFORMED
            };
            Reject::new(400, status, format!("Request body: {e}"))
        })?;
        let messages = request
            .messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.into_seed(i))
            .collect::<Result<Vec<_>, _>>()?;
        let now = s.clock.now_ms();
        let ids = s.world().seed(&queue_id, messages, now)?;
        s.touched();
        Ok(Seeded { ids })
    })();
    answer(seeded)
}

async fn summary(
    State(s): State<Arc<Shared>>,
    Path(queue_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(check(&s, &headers).and_then(|()| {
        let now = s.clock.now_ms();
        s.world().summary(&queue_id, now).ok_or_else(no_queue)
    }))
}

#[derive(Serialize)]
struct Bodies {
    bodies: Vec<String>,
}

async fn bodies(
    State(s): State<Arc<Shared>>,
    Path(queue_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    answer(check(&s, &headers).and_then(|()| {
        let prefix = match query.iter().find(|(k, _)| k == "prefix") {
            None => usize::MAX,
            Some((_, v)) => v
                .parse()
                .map_err(|_| Reject::invalid("prefix must be a number of bytes"))?,
        };
        let bodies = s
            .world()
            .body_prefixes(&queue_id, prefix)
            .ok_or_else(no_queue)?;
        Ok(Bodies { bodies })
    }))
}

#[derive(Serialize)]
struct Requests {
    by_operation: std::collections::BTreeMap<&'static str, u64>,
    total: u64,
}

async fn requests(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    answer(check(&s, &headers).map(|()| {
        let by_operation = s.requests_by_operation();
        let total = by_operation.values().sum();
        Requests {
            by_operation,
            total,
        }
    }))
}
