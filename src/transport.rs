//! The one path every request takes: URL from the operation's path template, auth and
//! standard headers, send, read the body (bounded), decode the envelope, classify the
//! failure, retry per [`RetryPolicy`] within the timeouts, a `tracing` span per attempt,
//! and the client's metrics.

use crate::client::Client;
use crate::envelope::{self, Reply, ResponseMeta};
use crate::error::{Error, RequestLabel, Result};
use crate::metrics;
use crate::retry::{RetryPolicy, parse_retry_after, random_unit};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tracing::Instrument as _;
use url::Url;

/// Largest response body read. A pull of 100 messages of 128 KB is about 17 MB of JSON.
const MAX_RESPONSE_BYTES: usize = 48 * 1024 * 1024;

/// One API operation: the generated table in [`ops`](crate::ops) has them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The operation's id in the OpenAPI description, such as `queues-pull-messages`
    /// (also the `operation` label of the client's metrics).
    pub id: &'static str,
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path template below the base URL, e.g. `/accounts/{account_id}/queues/{queue_id}`.
    pub path: &'static str,
    /// Whether sending it twice has the same effect as sending it once. Operations that
    /// are not idempotent are retried only when the server surely did not apply them.
    pub idempotent: bool,
}

impl Operation {
    /// The placeholders of the path template after `{account_id}`, in order.
    fn placeholders(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .filter(|name| *name != "account_id")
    }
}

/// When a call's total timeout runs out: fixed once per call, shared by all its
/// attempts (and by all the requests of a call that makes several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) limit: Duration,
}

impl Deadline {
    /// The deadline `limit` from now; `None` without a limit, or when it is too far
    /// ahead for the clock to represent (no deadline, in effect).
    pub(crate) fn after(limit: Option<Duration>) -> Option<Deadline> {
        let limit = limit?;
        Instant::now()
            .checked_add(limit)
            .map(|at| Deadline { at, limit })
    }

    fn expired(
        self,
        request: RequestLabel,
        attempts: u32,
        in_flight: bool,
        last_error: Option<Error>,
    ) -> Error {
        Error::TotalTimeout {
            request,
            attempts,
            limit: self.limit,
            in_flight,
            last_error: last_error.map(Box::new),
        }
    }
}

/// A request about to be made.
pub(crate) struct Call<'a> {
    pub(crate) op: Operation,
    /// Values of the path placeholders after `{account_id}`, in template order.
    pub(crate) params: &'a [&'a str],
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Bytes>,
    pub(crate) retry: Option<&'a RetryPolicy>,
    /// Per-attempt timeout: `None` for the client's, `Some(None)` for none.
    pub(crate) timeout: Option<Option<Duration>>,
    /// Total timeout: `None` for the client's, `Some(None)` for none.
    pub(crate) total_timeout: Option<Option<Duration>>,
    /// A deadline already fixed by a call that makes several requests.
    pub(crate) deadline: Option<Deadline>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(op: Operation, params: &'a [&'a str]) -> Self {
        Call {
            op,
            params,
            query: Vec::new(),
            body: None,
            retry: None,
            timeout: None,
            total_timeout: None,
            deadline: None,
        }
    }

    /// Serialises `body` once; every attempt sends the same bytes.
    pub(crate) fn json<B: Serialize>(mut self, body: &B) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::invalid("body", e.to_string()))?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    pub(crate) fn query(mut self, name: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((name, v.to_string()));
        }
        self
    }

    pub(crate) fn retry(mut self, policy: Option<&'a RetryPolicy>) -> Self {
        self.retry = policy;
        self
    }

    /// The label errors carry: method, path template, and the ids that fill it (the
    /// account id excepted).
    pub(crate) fn label(&self) -> RequestLabel {
        let mut label = RequestLabel::new(self.op.method.clone(), self.op.path);
        label.ids = self
            .op
            .placeholders()
            .zip(self.params.iter())
            .map(|(name, value)| (name, (*value).to_owned()))
            .collect();
        label
    }
}

impl Client {
    /// Sends `call`, retrying per policy within the timeouts, and decodes the envelope's
    /// `result` as `T`.
    pub(crate) async fn execute<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<Reply<T>> {
        let started = Instant::now();
        let result = self.run(&call).await;
        let kind = result.as_ref().err().map(Error::kind_name);
        metrics::client_call(call.op.id, kind, started.elapsed());
        result
    }

    async fn run<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<Reply<T>> {
        let label = call.label();
        let url = self.url_for(call)?;
        let policy = call.retry.unwrap_or(&self.inner.retry);
        let attempt_timeout = call.timeout.unwrap_or(self.inner.timeout);
        let deadline = call
            .deadline
            .or_else(|| Deadline::after(call.total_timeout.unwrap_or(self.inner.total_timeout)));
        let mut last_error = None;
        let mut attempt = 1;
        loop {
            if let Some(d) = deadline.filter(|d| Instant::now() >= d.at) {
                // Already over (a later request of a call that makes several).
                return Err(d.expired(label, attempt - 1, false, last_error));
            }
            let span = tracing::debug_span!(
                "cfq.request",
                method = %call.op.method,
                path = call.op.path,
                attempt,
                status = tracing::field::Empty,
            );
            let sent = Instant::now();
            let request = self
                .attempt::<T>(call, &url, &label, attempt_timeout)
                .instrument(span.clone());
            let outcome = match deadline {
                None => request.await,
                Some(d) => match tokio::time::timeout_at(d.at, request).await {
                    Ok(outcome) => outcome,
                    Err(_elapsed) => {
                        metrics::client_attempt(call.op.id, None, sent.elapsed());
                        return Err(d.expired(label, attempt, true, last_error));
                    }
                },
            };
            metrics::client_attempt(call.op.id, status_of(&outcome), sent.elapsed());
            let mut err = match outcome {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            err.set_attempts(attempt);
            if !policy.should_retry(&err, attempt, call.op.idempotent) {
                return Err(err);
            }
            let delay = policy.delay(attempt, err.retry_after(), random_unit());
            if let Some(d) = deadline {
                // A retry that could only start at or after the deadline is not waited for.
                if Instant::now().checked_add(delay).is_none_or(|t| t >= d.at) {
                    return Err(d.expired(label, attempt, false, Some(err)));
                }
            }
            span.in_scope(|| {
                tracing::debug!(error = %err, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "retrying");
            });
            metrics::client_retry(call.op.id);
            tokio::time::sleep(delay).await;
            last_error = Some(err);
            attempt += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        url: &Url,
        label: &RequestLabel,
        timeout: Option<Duration>,
    ) -> Result<Reply<T>> {
        let inner = &self.inner;
        let mut req = inner
            .http
            .request(call.op.method.clone(), url.clone())
            .headers(inner.auth_headers.clone())
            .header(USER_AGENT, inner.user_agent.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = &call.body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(timeout) = timeout {
            req = req.timeout(timeout);
        }
        let mut resp = req.send().await.map_err(|e| network_error(e, label))?;

        let status = resp.status().as_u16();
        tracing::Span::current().record("status", status);
        let headers = resp.headers();
        let meta = ResponseMeta {
            request: label.clone(),
            status,
            ray_id: headers
                .get("cf-ray")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            retry_after: parse_retry_after(headers, SystemTime::now()),
        };

        let capacity = resp
            .content_length()
            .map_or(8 * 1024, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut body = Vec::with_capacity(capacity.min(MAX_RESPONSE_BYTES));
        while let Some(chunk) = resp.chunk().await.map_err(|e| network_error(e, label))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                let source = serde::de::Error::custom(format!(
                    "response larger than {MAX_RESPONSE_BYTES} bytes"
                ));
                return Err(envelope::decode_error(meta, ".".into(), source, &body));
            }
            body.extend_from_slice(&chunk);
        }
        envelope::decode(meta, &body)
    }

    /// Base URL + the operation's path template with placeholders filled in. Each value
    /// is percent-encoded as one path segment, so ids cannot change the path.
    fn url_for(&self, call: &Call<'_>) -> Result<Url> {
        let mut url = self.inner.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::Config("the base URL cannot take a path".into()))?;
            segments.pop_if_empty();
            let mut params = call.params.iter();
            for part in call.op.path.split('/').filter(|p| !p.is_empty()) {
                let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
                    segments.push(part);
                    continue;
                };
                let value = if name == "account_id" {
                    self.inner.account_id.as_str()
                } else {
                    params
                        .next()
                        .copied()
                        .ok_or_else(|| Error::invalid(name, "missing"))?
                };
                if value.trim().is_empty() {
                    return Err(Error::invalid(name, "must not be empty"));
                }
                segments.push(value);
            }
        }
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &call.query {
                pairs.append_pair(name, value);
            }
        }
        Ok(url)
    }
}

/// The status of an attempt's response, when one arrived.
fn status_of<T>(outcome: &Result<Reply<T>>) -> Option<u16> {
    match outcome {
        Ok(reply) => Some(reply.status),
        Err(Error::Api(api)) => Some(api.status),
        Err(Error::Decode(decode)) => Some(decode.status),
        Err(_) => None,
    }
}

fn network_error(source: reqwest::Error, label: &RequestLabel) -> Error {
    let request = label.clone();
    // reqwest's message names the URL, and the URL names the account.
    let source = source.without_url();
    if source.is_timeout() {
        Error::Timeout {
            request,
            attempts: 1,
            source,
        }
    } else {
        Error::Transport {
            request,
            attempts: 1,
            source,
        }
    }
}
