//! HTTP glue: one axum route per operation of the generated table, so the emulator
//! serves exactly the paths the client calls. Every request goes through [`handle`]:
//! count, latency, auth, fault plan, dispatch to the [`World`](super::state::World),
//! envelope.

use super::respond::{credentials_ok, error_response, json_response, unauthorized};
use super::state::{Reject, code};
use super::{Fault, Shared, control, wire};
use crate::models::{
    AckRequest, BatchRequest, ConsumerRequest, CreateQueueRequest, CreateSubscriptionRequest,
    ExtendRequest, Message, PeekRequest, PullRequest, PurgeMessagesRequest, PurgeQueueRequest,
    ResultInfo, SortDirection, SubscriptionOrder, UpdateQueueRequest, UpdateSubscriptionRequest,
};
use crate::{Operation, ops};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

type Params = HashMap<String, String>;

/// The query string as sent, in order: a parameter may repeat (`name=a&name=b`).
type QueryPairs = Vec<(String, String)>;

/// The first value of query parameter `name`.
fn query_value<'q>(query: &'q QueryPairs, name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Every value of query parameter `name`, in order.
fn query_values(query: &QueryPairs, name: &str) -> Vec<String> {
    query
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .collect()
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<Shared>>> = BTreeMap::new();
    for (index, op) in ops::ALL.iter().enumerate() {
        let filter = match op.method.as_str() {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            _ => MethodFilter::DELETE,
        };
        let this = op.clone();
        let handler = move |State(s): State<Arc<Shared>>,
                            Path(params): Path<Params>,
                            Query(query): Query<QueryPairs>,
                            headers: HeaderMap,
                            body: Bytes| {
            let op = this.clone();
            async move { handle(s, index, op, params, query, headers, body).await }
        };
        let routes = by_path.remove(op.path).unwrap_or_default();
        by_path.insert(op.path, routes.on(filter, handler));
    }
    let mut api = Router::new();
    for (path, routes) in by_path {
        api = api.route(path, routes);
    }
    // Serve under the real API's prefix, and without it for convenience.
    let mut app = Router::new().nest("/client/v4", api.clone()).merge(api);
    if shared.control_api {
        app = app.merge(control::routes());
    }
    app.fallback(no_route).with_state(shared)
}

pub(crate) async fn no_route() -> Response {
    error_response(&Reject::new(404, code::NO_ROUTE, "No route for the URI"))
}

/// A successful result, already serialised, and its paging facts.
#[derive(Default)]
struct Success {
    result: Option<Vec<u8>>,
    info: Option<ResultInfo>,
    /// `result` is the whole response body, envelope included.
    whole: bool,
}

fn result<T: Serialize>(value: &T) -> Result<Success, Reject> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| Reject::new(500, code::INTERNAL, e.to_string()))?;
    Ok(Success {
        result: Some(bytes),
        ..Success::default()
    })
}

async fn handle(
    s: Arc<Shared>,
    index: usize,
    op: Operation,
    params: Params,
    query: QueryPairs,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.count_request(index);
    let now = s.clock.now_ms();
    let latency = *Shared::lock(&s.latency);
    // The generator is needed only for jitter and fault plans; without either the
    // world's lock is not taken here.
    let (latency, fault) = if latency.jitter.is_zero() && !s.has_faults() {
        (latency.fixed, None)
    } else {
        let mut world = s.world();
        let latency = latency.sample(&mut world.rng);
        let queue_id = params.get("queue_id").map(String::as_str);
        let fault = s.next_fault(op.id, queue_id, now, &mut world.rng);
        (latency, fault)
    };
    // Half the latency on the way in, half on the way out, like a network round trip.
    let half = latency / 2;
    if !half.is_zero() {
        tokio::time::sleep(half).await;
    }
    let response = respond(&s, &op, &params, &query, &headers, &body, fault).await;
    s.touched();
    if !(latency - half).is_zero() {
        tokio::time::sleep(latency - half).await;
    }
    response
}

async fn respond(
    s: &Shared,
    op: &Operation,
    params: &Params,
    query: &QueryPairs,
    headers: &HeaderMap,
    body: &Bytes,
    fault: Option<Fault>,
) -> Response {
    if let Err(reject) = authorize(s, params, headers) {
        return error_response(&reject);
    }
    let mut lose_response = false;
    match fault {
        Some(Fault::RateLimited { code, retry_after }) => {
            return error_response(&Reject {
                retry_after,
                ..Reject::new(429, code, "Too many requests")
            });
        }
        Some(Fault::Internal) => {
            return error_response(&Reject::new(500, code::INTERNAL, "Unknown error"));
        }
        Some(Fault::BadGateway) => return bad_gateway(),
        Some(Fault::Paused) => return error_response(&Reject::paused()),
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::LostResponse) => lose_response = true,
        None => {}
    }
    // Time is read again after any slow-down, so leases start when the work happens.
    let now = s.clock.now_ms();
    match dispatch(s, op, params, query, body, now) {
        Ok(_) if lose_response => lost_response(),
        Ok(success) => success_response(success),
        Err(reject) => error_response(&reject),
    }
}

fn authorize(s: &Shared, params: &Params, headers: &HeaderMap) -> Result<(), Reject> {
    if !credentials_ok(s, headers)
        || params.get("account_id").map(String::as_str) != Some(s.account_id.as_str())
    {
        return Err(unauthorized());
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Reject> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Reject::new(
            400,
            code::BODY_MALFORMED,
            format!("Request body is not valid JSON: {e}"),
        )
    })?;
    serde_json::from_value(value).map_err(|e| {
        Reject::new(
            400,
            code::BODY_INVALID,
            format!("Request JSON body does not match the schema: {e}"),
        )
    })
}

fn param<'p>(params: &'p Params, name: &str) -> &'p str {
    params.get(name).map_or("", String::as_str)
}

fn page_query(query: &QueryPairs, default_per_page: u64) -> Result<(u64, u64), Reject> {
    let num = |name: &str, default: u64| -> Result<u64, Reject> {
        match query_value(query, name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Reject::invalid(format!("{name} must be a positive integer"))),
        }
    };
    Ok((num("page", 1)?, num("per_page", default_per_page)?))
}

fn dispatch(
    s: &Shared,
    op: &Operation,
    params: &Params,
    query: &QueryPairs,
    body: &Bytes,
    now: u64,
) -> Result<Success, Reject> {
    let queue_id = param(params, "queue_id");
    let id = op.id;
    // The hot requests: read without a JSON tree and outside the world's lock; the
    // pull's response is written outside it too. What the fast readers do not take
    // falls through to the general path below, which answers as it always has.
    if id == ops::PUSH_BATCH.id {
        if let Some((messages, delay)) = wire::read_batch(body) {
            return result(
                &s.world()
                    .push_incoming(queue_id, messages, delay, true, now)?,
            );
        }
    } else if id == ops::PUSH_MESSAGE.id {
        if let Some(message) = wire::read_message(body) {
            return result(
                &s.world()
                    .push_incoming(queue_id, vec![message], None, false, now)?,
            );
        }
    } else if id == ops::PULL_MESSAGES.id {
        let (batch, visibility) = read_pull(body)?;
        let pulled = s.world().lease(queue_id, batch, visibility, now)?;
        return Ok(Success {
            result: Some(wire::write_pull(&pulled)),
            whole: true,
            ..Success::default()
        });
    } else if id == ops::ACK_MESSAGES.id {
        if let Some((acks, retries)) = wire::read_ack(body) {
            return result(&s.world().settle(queue_id, &acks, &retries, now)?);
        }
    }
    let mut world = s.world();
    if id == ops::LIST_QUEUES.id {
        let (page, per_page) = page_query(query, 100)?;
        // `name` repeats for several names, as wrangler sends it; none means all queues.
        let names = query_values(query, "name");
        let (queues, info) = world.list_queues(page, per_page, &names, now);
        let mut out = result(&queues)?;
        out.info = Some(info);
        Ok(out)
    } else if id == ops::CREATE_QUEUE.id {
        result(&world.create_queue(parse::<CreateQueueRequest>(body)?, now)?)
    } else if id == ops::GET_QUEUE.id {
        result(&world.get_queue(queue_id, now)?)
    } else if id == ops::UPDATE_QUEUE.id || id == ops::EDIT_QUEUE.id {
        let replace = id == ops::UPDATE_QUEUE.id;
        result(&world.update_queue(queue_id, parse::<UpdateQueueRequest>(body)?, replace, now)?)
    } else if id == ops::DELETE_QUEUE.id {
        world.delete_queue(queue_id, now)?;
        Ok(Success::default())
    } else if id == ops::LIST_CONSUMERS.id {
        result(&world.list_consumers(queue_id, now)?)
    } else if id == ops::CREATE_CONSUMER.id {
        result(&world.create_consumer(queue_id, parse::<ConsumerRequest>(body)?, now)?)
    } else if id == ops::GET_CONSUMER.id {
        result(&world.get_consumer(queue_id, param(params, "consumer_id"), now)?)
    } else if id == ops::UPDATE_CONSUMER.id {
        result(&world.put_consumer(
            queue_id,
            param(params, "consumer_id"),
            parse::<ConsumerRequest>(body)?,
            now,
        )?)
    } else if id == ops::DELETE_CONSUMER.id {
        world.delete_consumer(queue_id, param(params, "consumer_id"), now)?;
        Ok(Success::default())
    } else if id == ops::PUSH_MESSAGE.id {
        result(&world.push(queue_id, vec![parse::<Message>(body)?], None, false, now)?)
    } else if id == ops::PUSH_BATCH.id {
        let batch = parse::<BatchRequest>(body)?;
        result(&world.push(queue_id, batch.messages, batch.delay, true, now)?)
    } else if id == ops::ACK_MESSAGES.id {
        result(&world.ack(queue_id, parse::<AckRequest>(body)?, now)?)
    } else if id == ops::EXTEND_LEASES.id {
        result(&world.extend(queue_id, parse::<ExtendRequest>(body)?, now)?)
    } else if id == ops::PEEK_MESSAGES.id {
        result(&world.peek(queue_id, parse::<PeekRequest>(body)?.batch_size, now)?)
    } else if id == ops::PURGE_MESSAGES.id {
        let refs = parse::<PurgeMessagesRequest>(body)?
            .refs
            .into_iter()
            .map(|r| r.peek_ref)
            .collect();
        result(&world.purge_refs(queue_id, refs, now)?)
    } else if id == ops::GET_METRICS.id {
        result(&world.metrics(queue_id, now)?)
    } else if id == ops::START_PURGE.id {
        result(&world.purge(
            queue_id,
            parse::<PurgeQueueRequest>(body)?.delete_messages_permanently,
            now,
        )?)
    } else if id == ops::PURGE_STATUS.id {
        result(&world.purge_status(queue_id, now)?)
    } else if id == ops::LIST_SUBSCRIPTIONS.id {
        let (page, per_page) = page_query(query, 20)?;
        let order = SubscriptionOrder::from(query_value(query, "order").unwrap_or("name"));
        let direction = SortDirection::from(query_value(query, "direction").unwrap_or("asc"));
        let (subs, info) = world.list_subscriptions(page, per_page, &order, &direction);
        let mut out = result(&subs)?;
        out.info = Some(info);
        Ok(out)
    } else if id == ops::CREATE_SUBSCRIPTION.id {
        result(&world.create_subscription(parse::<CreateSubscriptionRequest>(body)?, now)?)
    } else if id == ops::GET_SUBSCRIPTION.id {
        result(&world.get_subscription(param(params, "subscription_id"))?)
    } else if id == ops::UPDATE_SUBSCRIPTION.id {
        result(&world.update_subscription(
            param(params, "subscription_id"),
            parse::<UpdateSubscriptionRequest>(body)?,
            now,
        )?)
    } else if id == ops::DELETE_SUBSCRIPTION.id {
        result(&world.delete_subscription(param(params, "subscription_id"))?)
    } else {
        Err(Reject::new(404, code::NO_ROUTE, "No route for the URI"))
    }
}

/// A pull's batch size and visibility timeout.
fn read_pull(body: &Bytes) -> Result<(Option<u32>, Option<Duration>), Reject> {
    let raw: serde_json::Value = parse(body)?;
    // The pull-consumer guide's examples spell the field `visibility_timeout`.
    let legacy = raw
        .get("visibility_timeout")
        .and_then(serde_json::Value::as_f64);
    let req: PullRequest = serde_json::from_value(raw).map_err(|e| {
        Reject::new(
            400,
            code::BODY_INVALID,
            format!("Request JSON body does not match the schema: {e}"),
        )
    })?;
    let visibility = req
        .visibility_timeout
        .or_else(|| legacy.and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()));
    Ok((req.batch_size, visibility))
}

fn success_response(success: Success) -> Response {
    if success.whole {
        return json_response(success.result.unwrap_or_default());
    }
    let mut body = Vec::with_capacity(success.result.as_ref().map_or(0, Vec::len) + 128);
    body.extend_from_slice(br#"{"success":true,"errors":[],"messages":[]"#);
    if let Some(result) = success.result {
        body.extend_from_slice(br#","result":"#);
        body.extend_from_slice(&fix_dead_letter_queues(result));
    }
    if let Some(info) = success.info {
        body.extend_from_slice(br#","result_info":"#);
        body.extend_from_slice(&serde_json::to_vec(&info).unwrap_or_else(|_| b"null".to_vec()));
    }
    body.push(b'}');
    json_response(body)
}

/// Cloudflare sends `"dead_letter_queue": ""` for a consumer without one; the models
/// skip a `None`, so put the empty string back wherever a consumer object lacks it.
fn fix_dead_letter_queues(result: Vec<u8>) -> Vec<u8> {
    if !result.windows(10).any(|w| w == b"\"consumer_") {
        return result;
    }
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if map.contains_key("consumer_id") && !map.contains_key("dead_letter_queue") {
                    map.insert("dead_letter_queue".into(), "".into());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(&result) {
        Ok(mut v) => {
            walk(&mut v);
            serde_json::to_vec(&v).unwrap_or(result)
        }
        Err(_) => result,
    }
}

fn bad_gateway() -> Response {
    let html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        html,
    )
        .into_response()
}

/// Headers go out, then the body fails: hyper drops the connection, and the client sees
/// a transport error for a request the server applied.
fn lost_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("response lost"))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
