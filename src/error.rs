//! The crate's one error type.
//!
//! [`Error`] separates what went wrong by who is at fault and whether a retry can help:
//! the API answered with an error ([`Error::Api`]), the network failed
//! ([`Error::Transport`], [`Error::Timeout`], [`Error::TotalTimeout`]), the response could
//! not be read ([`Error::Decode`]), the caller's input was refused before anything was
//! sent ([`Error::InvalidInput`], [`Error::Config`]), a message body could not be decoded
//! ([`Error::Body`]), or a multi-request batch stopped part way ([`Error::BatchIncomplete`]).
//!
//! **Causes.** Following the Rust API guidelines, a variant either shows its cause in its
//! own message or returns it from [`source()`](std::error::Error::source), never both, and
//! every wrapped cause is reachable through `source()`. A chain printer (anyhow, eyre,
//! tracing's error fields) therefore shows each cause exactly once.
//!
//! **Which request.** Errors from a request carry a [`RequestLabel`]: the method, the path
//! template and the ids in the path (queue, consumer, subscription), so a service with
//! several queues can tell which one failed. The account id is never part of it, and
//! nothing here ever holds a credential.
//!
//! This module also says what a failure means for retrying ([`Class`]), so that the
//! retry policy depends on the error type and not the other way round.

use crate::models::ContentType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error: a non-2xx status, or `success: false`.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The request could not be sent, or its response could not be received. The HTTP
    /// client's error is the [`source`](std::error::Error::source).
    #[error("transport error on {request} after {attempts} attempt(s)")]
    Transport {
        /// Method, path and ids of the failed request.
        request: RequestLabel,
        /// Attempts made, the failed one included.
        attempts: u32,
        /// The underlying HTTP client error (without the URL, which names the account).
        #[source]
        source: reqwest::Error,
    },

    /// One attempt took longer than the per-attempt timeout
    /// ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout), or a request builder's
    /// `timeout`), and the retry policy did not try again.
    #[error("{request} timed out after {attempts} attempt(s)")]
    Timeout {
        /// Method, path and ids of the failed request.
        request: RequestLabel,
        /// Attempts made, the failed one included.
        attempts: u32,
        /// The underlying HTTP client error (without the URL, which names the account).
        #[source]
        source: reqwest::Error,
    },

    /// The call's total timeout ran out
    /// ([`ClientBuilder::total_timeout`](crate::ClientBuilder::total_timeout), or a
    /// request builder's `total_timeout`): attempts, and the backoff sleeps between them,
    /// took longer than allowed. A retry whose backoff would end past the deadline is not
    /// started, so this can come before the deadline itself.
    #[error(
        "{request}: total timeout of {} ran out {}",
        DurationText(*.limit),
        timeout_moment(*.in_flight, *.attempts)
    )]
    TotalTimeout {
        /// Method, path and ids of the request.
        request: RequestLabel,
        /// Attempts made, one cut short by the deadline included.
        attempts: u32,
        /// The total timeout that ran out.
        limit: Duration,
        /// Whether an attempt was in flight when the deadline passed. If so, the server
        /// may have applied the request (a publish may be stored).
        in_flight: bool,
        /// The failure of the last attempt that ended before the deadline, if one did.
        #[source]
        last_error: Option<Box<Error>>,
    },

    /// A response arrived but did not have the expected shape. The parser's error is the
    /// [`source`](std::error::Error::source).
    #[error(transparent)]
    Decode(Box<DecodeError>),

    /// The caller's input was refused before any request was sent.
    #[error("invalid input `{field}`: {reason}")]
    InvalidInput {
        /// The offending field, such as `batch_size` or `messages[3]`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// The client could not be configured (missing account id, bad base URL, ...).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A message body could not be decoded as asked. The decoder's error, if any, is the
    /// [`source`](std::error::Error::source).
    #[error(transparent)]
    Body(Box<BodyError>),

    /// A batch that needed several requests stopped part way: the first `accepted`
    /// messages were stored, the rest were not sent or not confirmed. Why the next request
    /// failed is the [`source`](std::error::Error::source).
    #[error("batch stopped after {accepted} of {total} messages were accepted")]
    BatchIncomplete {
        /// Messages confirmed stored, in order from the start of the batch.
        accepted: usize,
        /// Messages in the batch.
        total: usize,
        /// Why the next request failed.
        #[source]
        source: Box<Error>,
    },

    /// A pull consumer could not settle (ack, retry or release) a delivery: the ack
    /// request failed for good (the [`source`](std::error::Error::source)). The message
    /// will be redelivered after its lease expires.
    #[error("could not settle the delivery")]
    Settle(#[source] std::sync::Arc<Error>),

    /// The pull consumer has shut down; the delivery was already released.
    #[error("the pull consumer has shut down; the delivery was already released")]
    ConsumerClosed,

    /// One of the pull consumer's background tasks ended unexpectedly (it panicked: a
    /// bug). The consumer stops pulling and its stream ends with this error; deliveries
    /// already handed out can still be settled, and the shutdown report accounts for
    /// every message.
    #[error("the pull consumer's {task} task failed: {reason}")]
    ConsumerFailed {
        /// Which task: `puller` or `flusher`.
        task: &'static str,
        /// The panic message, or what else ended it.
        reason: String,
    },

    /// [`Publisher::try_publish`](crate::publisher::Publisher::try_publish) found the
    /// publisher full: as many messages or bytes as its flow control allows await the
    /// server. Nothing was sent; `publish` would have waited for room.
    #[error(
        "the publisher is full (at most {max_messages} messages and {max_bytes} bytes may await the server); the message was not accepted"
    )]
    PublisherFull {
        /// The publisher's `max_outstanding_messages`.
        max_messages: usize,
        /// The publisher's `max_outstanding_bytes`.
        max_bytes: usize,
    },

    /// A published message may have been stored, but that could not be confirmed: its
    /// request's outcome was unknown (a timeout or a connection lost after sending), and
    /// it was not sent again (`at_most_once`) or every later attempt failed too. Check
    /// before publishing it again if duplicates matter.
    #[error("the message may have been stored, but this could not be confirmed")]
    MaybeStored {
        /// The failure that left the outcome unknown (shared by the batch's messages).
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// The publisher has shut down (or its task has stopped); the message was not
    /// accepted and nothing was sent.
    #[error("the publisher has shut down; the message was not accepted")]
    PublisherClosed,

    /// A published message failed for good with an error that is shared by the messages
    /// of its batch request and cannot be copied for each (a network failure). API
    /// errors are returned as [`Error::Api`] instead.
    #[error("could not publish the message")]
    Publish(#[source] std::sync::Arc<Error>),
}

/// `during attempt 3` or `after 2 attempt(s)`, for [`Error::TotalTimeout`].
fn timeout_moment(in_flight: bool, attempts: u32) -> String {
    if in_flight {
        format!("during attempt {attempts}")
    } else {
        format!("after {attempts} attempt(s)")
    }
}

/// A duration as people write it: `300ms`, `2s`, `1.5s`.
struct DurationText(Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            write!(f, "{}ms", d.as_millis())
        } else if d.subsec_millis() == 0 {
            write!(f, "{}s", d.as_secs())
        } else {
            write!(f, "{:.3}s", d.as_secs_f64())
        }
    }
}

impl Error {
    /// Whether retrying the same request may succeed (rate limits, overload, 5xx,
    /// network failures). Classification is by Queues error code first, then HTTP status;
    /// see [`RetryPolicy`](crate::RetryPolicy).
    pub fn is_retryable(&self) -> bool {
        classify(self).is_retryable()
    }

    /// The Queues error code of the first error entry, if the API sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.api().and_then(ApiError::code)
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|e| e.status)
    }

    /// The API error, if this is one (also inside [`Error::BatchIncomplete`],
    /// [`Error::Settle`], and [`Error::TotalTimeout`] when the last attempt before the
    /// deadline was answered with one).
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            Error::BatchIncomplete { source, .. } => source.api(),
            Error::Settle(source) => source.api(),
            Error::MaybeStored { source } | Error::Publish(source) => source.api(),
            Error::TotalTimeout { last_error, .. } => last_error.as_deref().and_then(Error::api),
            _ => None,
        }
    }

    /// The request that failed: method, path template and ids (see [`RequestLabel`]),
    /// for every error that comes from a request.
    pub fn request(&self) -> Option<&RequestLabel> {
        match self {
            Error::Api(e) => Some(&e.request),
            Error::Transport { request, .. }
            | Error::Timeout { request, .. }
            | Error::TotalTimeout { request, .. } => Some(request),
            Error::Decode(e) => Some(&e.request),
            Error::BatchIncomplete { source, .. } => source.request(),
            Error::Settle(source) | Error::MaybeStored { source } | Error::Publish(source) => {
                source.request()
            }
            _ => None,
        }
    }

    /// The id of the queue the failed request was about, if it named one.
    pub fn queue_id(&self) -> Option<&str> {
        self.request().and_then(RequestLabel::queue_id)
    }

    /// How long the server asked the client to wait, from `Retry-After` or `retry-after-ms`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    /// Attempts made before this error was returned, for errors from a request.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Api(e) => Some(e.attempts),
            Error::Transport { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::TotalTimeout { attempts, .. } => Some(*attempts),
            Error::Decode(e) => Some(e.attempts),
            Error::BatchIncomplete { source, .. } => source.attempts(),
            Error::Settle(source) => source.attempts(),
            Error::MaybeStored { source } | Error::Publish(source) => source.attempts(),
            _ => None,
        }
    }

    /// True for HTTP 404 and for code 10104 (queue not found).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.code() == Some(ErrorCode::QueueNotFound)
    }

    /// True for HTTP 429.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// True for HTTP 409 with `queue_delivery_paused`: the queue's delivery is paused.
    pub fn is_delivery_paused(&self) -> bool {
        self.status() == Some(409)
    }

    /// True for [`Error::Timeout`] (one attempt) and [`Error::TotalTimeout`] (the call).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::TotalTimeout { .. })
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn set_attempts(&mut self, n: u32) {
        match self {
            Error::Api(e) => e.attempts = n,
            Error::Transport { attempts, .. } | Error::Timeout { attempts, .. } => *attempts = n,
            Error::Decode(e) => e.attempts = n,
            _ => {}
        }
    }

    /// A short, stable name of the variant, for metric labels.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Error::Api(_) => "api",
            Error::Transport { .. } => "transport",
            Error::Timeout { .. } => "timeout",
            Error::TotalTimeout { .. } => "total_timeout",
            Error::Decode(_) => "decode",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Config(_) => "config",
            Error::Body(_) => "body",
            Error::BatchIncomplete { .. } => "batch_incomplete",
            Error::Settle(_) => "settle",
            Error::ConsumerClosed => "consumer_closed",
            Error::ConsumerFailed { .. } => "consumer_failed",
            Error::PublisherFull { .. } => "publisher_full",
            Error::MaybeStored { .. } => "maybe_stored",
            Error::PublisherClosed => "publisher_closed",
            Error::Publish(_) => "publish",
        }
    }
}

/// What a failure says about retrying. Decided here, next to the error, so that the
/// retry policy ([`RetryPolicy`](crate::RetryPolicy)) depends on errors and not the other
/// way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Retrying cannot help.
    Fatal,
    /// The server answered with a retryable error, so it did not apply the request.
    Answered,
    /// The request never reached the server (connection refused, DNS, TLS).
    NotSent,
    /// The request may have been applied (timeout, connection lost mid-flight).
    MaybeApplied,
}

impl Class {
    pub(crate) fn is_retryable(self) -> bool {
        self != Class::Fatal
    }
}

/// Classification by Queues error code before HTTP status: Cloudflare answers 429 both
/// for a transient overload (10250, retry) and for hard limits (10251 to 10253, never).
pub(crate) fn classify(err: &Error) -> Class {
    match err {
        Error::Api(api) => {
            for code in api.codes() {
                match code {
                    ErrorCode::QueueOverloaded
                    | ErrorCode::ClientDisconnected
                    | ErrorCode::UnknownInternalError => {
                        return Class::Answered;
                    }
                    ErrorCode::QueueStorageLimitExceeded
                    | ErrorCode::QueueDisabled
                    | ErrorCode::FreeTierLimitExceeded => return Class::Fatal,
                    _ => {}
                }
            }
            match api.status {
                408 | 429 | 500..=599 => Class::Answered,
                _ => Class::Fatal,
            }
        }
        Error::Transport { source, .. } | Error::Timeout { source, .. } => {
            if source.is_connect() {
                Class::NotSent
            } else {
                Class::MaybeApplied
            }
        }
        Error::TotalTimeout {
            in_flight: true, ..
        } => Class::MaybeApplied,
        Error::TotalTimeout {
            last_error: Some(last),
            ..
        } => classify(last),
        Error::TotalTimeout { .. } => Class::NotSent,
        Error::BatchIncomplete { source, .. } => classify(source),
        Error::Settle(source) => classify(source),
        _ => Class::Fatal,
    }
}

/// Which request failed: its method, its path template, and the ids that filled the
/// template, except the account id.
///
/// Displayed as the path with those ids in place and the account left as a placeholder:
/// `POST /accounts/{account_id}/queues/b01b5594f784d0165c2985833f5660dd/messages`. The
/// account id and credentials are never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLabel {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path template from the OpenAPI description, such as
    /// `/accounts/{account_id}/queues/{queue_id}/messages` (the same for every queue, so
    /// it suits grouping; see [`RequestLabel::ids`] for which queue).
    pub path: &'static str,
    /// The ids in the path other than the account id, in template order, by placeholder
    /// name: `[("queue_id", "b01b…"), ("consumer_id", "…")]`.
    pub ids: Vec<(&'static str, String)>,
}

impl RequestLabel {
    /// A label without ids.
    pub(crate) fn new(method: reqwest::Method, path: &'static str) -> Self {
        RequestLabel {
            method,
            path,
            ids: Vec::new(),
        }
    }

    /// The value of the path placeholder `name` (`queue_id`, `consumer_id`,
    /// `subscription_id`), if the request had one. Never the account id.
    pub fn id(&self, name: &str) -> Option<&str> {
        self.ids
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The queue the request was about, if any.
    pub fn queue_id(&self) -> Option<&str> {
        self.id("queue_id")
    }

    /// The consumer the request was about, if any.
    pub fn consumer_id(&self) -> Option<&str> {
        self.id("consumer_id")
    }

    /// The event subscription the request was about, if any.
    pub fn subscription_id(&self) -> Option<&str> {
        self.id("subscription_id")
    }
}

impl fmt::Display for RequestLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.method)?;
        let mut rest = self.path;
        while let Some(open) = rest.find('{') {
            let Some(len) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + len];
            f.write_str(&rest[..open])?;
            match self.id(name) {
                // User-supplied text: control characters are escaped, and an absurdly
                // long value is cut, so that a message stays one readable line.
                Some(value) => write!(f, "{}", snippet(value, 64).escape_debug())?,
                None => f.write_str(&rest[open..=open + len])?,
            }
            rest = &rest[open + len + 1..];
        }
        f.write_str(rest)
    }
}

/// An error answer from the API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status (200 when the body said `success: false`).
    pub status: u16,
    /// Every entry of the envelope's `errors`.
    pub errors: Vec<ErrorDetail>,
    /// The envelope's `messages` (strings in the Queues API).
    pub messages: Vec<serde_json::Value>,
    /// The `cf-ray` header: quote it to Cloudflare support.
    pub ray_id: Option<String>,
    /// How long the server asked the client to wait.
    pub retry_after: Option<Duration>,
    /// The body, when it was not a JSON envelope (e.g. an HTML 502 from the edge); at
    /// most 64 KiB, lossily decoded as UTF-8.
    pub raw_body: Option<String>,
    /// The request that failed.
    pub request: RequestLabel,
    /// Attempts made, the failed one included.
    pub attempts: u32,
}

impl ApiError {
    /// The code of the first error entry.
    pub fn code(&self) -> Option<ErrorCode> {
        self.errors.first().map(|e| e.code)
    }

    /// The codes of all error entries.
    pub fn codes(&self) -> impl Iterator<Item = ErrorCode> + '_ {
        self.errors.iter().map(|e| e.code)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if self.errors.is_empty() {
            match &self.raw_body {
                Some(body) => write!(f, ": non-JSON body: {}", snippet(body, 200))?,
                None => f.write_str(": no error details")?,
            }
        }
        for (i, e) in self.errors.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(
                f,
                "{sep}[{} {}] {}",
                e.code.as_u32(),
                e.code.name(),
                e.message
            )?;
        }
        write!(f, " ({}", self.request)?;
        if let Some(ray) = &self.ray_id {
            write!(f, ", cf-ray {ray}")?;
        }
        if self.attempts > 1 {
            write!(f, ", {} attempts", self.attempts)?;
        }
        f.write_str(")")
    }
}

/// One entry of a v4 envelope's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// The numeric code, typed.
    #[serde(default)]
    pub code: ErrorCode,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Link to documentation, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// Which part of the request was at fault, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

/// `errors[].source` of a v4 envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorSource {
    /// JSON pointer to the offending request field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

impl ErrorDetail {
    /// An error entry with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            documentation_url: None,
            source: None,
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.as_u32())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Codes are integers, but tolerate `10250.0` like every other number of this API.
        crate::codec::flex_u32::deserialize(d).map(ErrorCode::from_u32)
    }
}

/// One table drives the enum, the number mapping, the names and the descriptions.
macro_rules! error_codes {
    ($($num:literal => $variant:ident, $name:literal, $what:literal;)*) => {
        /// Error codes documented by Cloudflare Queues (10104 to 15000), plus any other
        /// code the API sends, kept in [`ErrorCode::Unknown`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", stringify!($num), "` ", $name, ": ", $what, ".")]
                $variant,
            )*
            /// A code not in the Queues table (for example a general Cloudflare API code).
            Unknown(u32),
        }

        impl ErrorCode {
            /// Every documented Queues code.
            pub const DOCUMENTED: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The typed code for a number; undocumented numbers become `Unknown`.
            pub const fn from_u32(n: u32) -> Self {
                match n {
                    $($num => ErrorCode::$variant,)*
                    other => ErrorCode::Unknown(other),
                }
            }

            /// The number on the wire.
            pub const fn as_u32(self) -> u32 {
                match self {
                    $(ErrorCode::$variant => $num,)*
                    ErrorCode::Unknown(n) => n,
                }
            }

            /// The name Cloudflare's error-code table uses, or `"Unknown"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                    ErrorCode::Unknown(_) => "Unknown",
                }
            }

            /// What the code means, per Cloudflare's table.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $what,)*
                    ErrorCode::Unknown(_) => "not a documented Queues error code",
                }
            }
        }
    };
}

error_codes! {
    10104 => QueueNotFound, "QueueNotFound", "queue does not exist";
    10106 => Unauthorized, "Unauthorized", "unauthorized request";
    10107 => QueueIdMalformed, "QueueIDMalformed", "the queue id in the URL is not a valid queue identifier";
    10201 => ClientDisconnected, "ClientDisconnected", "client disconnected during request processing";
    10202 => BatchDelayInvalid, "BatchDelayInvalid", "invalid batch delay";
    10203 => MessageMetadataInvalid, "MessageMetadataInvalid", "invalid message metadata (content type or delay)";
    10204 => MessageSizeOutOfBounds, "MessageSizeOutOfBounds", "message size out of bounds (128 KB)";
    10205 => BatchSizeOutOfBounds, "BatchSizeOutOfBounds", "batch size out of bounds (256 KB)";
    10206 => BatchCountOutOfBounds, "BatchCountOutOfBounds", "batch count out of bounds (100 messages)";
    10207 => JsonRequestBodyInvalid, "JSONRequestBodyInvalid", "request JSON body does not match the expected schema";
    10208 => JsonRequestBodyMalformed, "JSONRequestBodyMalformed", "request body is not valid JSON";
    10250 => QueueOverloaded, "QueueOverloaded", "queue is overloaded; back off";
    10251 => QueueStorageLimitExceeded, "QueueStorageLimitExceeded", "queue storage limit exceeded";
    10252 => QueueDisabled, "QueueDisabled", "queue disabled";
    10253 => FreeTierLimitExceeded, "FreeTierLimitExceeded", "free tier limit exceeded";
    15000 => UnknownInternalError, "UnknownInternalError", "unknown internal error";
}

impl Default for ErrorCode {
    fn default() -> Self {
        ErrorCode::Unknown(0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.as_u32(), self.name())
    }
}

impl From<u32> for ErrorCode {
    fn from(n: u32) -> Self {
        ErrorCode::from_u32(n)
    }
}

/// A response body that did not have the expected shape.
#[derive(Debug)]
#[non_exhaustive]
pub struct DecodeError {
    /// The request whose response failed to decode.
    pub request: RequestLabel,
    /// HTTP status of the response.
    pub status: u16,
    /// JSON path of the failing field, such as `result.messages[0].attempts`, or `.`
    /// when the body as a whole was not JSON.
    pub path: String,
    /// The first 200 characters of the body.
    pub body_snippet: String,
    /// Attempts made.
    pub attempts: u32,
    /// The parser's error; also the [`source`](std::error::Error::source), so the
    /// message does not repeat it.
    pub source: serde_json::Error,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not decode the response to {} (HTTP {}) at `{}`; body starts: {}",
            self.request, self.status, self.path, self.body_snippet
        )
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A message body that could not be decoded as asked.
#[derive(Debug)]
#[non_exhaustive]
pub struct BodyError {
    /// The message's id.
    pub message_id: String,
    /// Its content type, from the `CF-Content-Type` metadata.
    pub content_type: ContentType,
    /// What failed.
    pub kind: BodyErrorKind,
}

/// Why a message body could not be decoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyErrorKind {
    /// The content type cannot be read outside Workers (`v8`) or is not known.
    Unsupported,
    /// A `json` or `bytes` body was not valid standard base64 (RFC 4648).
    Base64(base64::DecodeError),
    /// The body is not valid UTF-8 but text was asked for.
    Utf8(std::str::Utf8Error),
    /// The body is not JSON of the requested type.
    Json(serde_json::Error),
    /// The pulled entry itself could not be read (a field of the wrong type, text that
    /// is not valid Unicode): see [`RejectedMessage`](crate::models::RejectedMessage).
    Malformed(String),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message {} ({} body): ",
            self.message_id,
            self.content_type.as_str()
        )?;
        match &self.kind {
            BodyErrorKind::Unsupported => match self.content_type {
                ContentType::V8 => {
                    f.write_str("v8-serialised bodies can only be read inside Workers")
                }
                _ => f.write_str("unsupported content type"),
            },
            // The decoder's own error is the source, so it is not repeated here.
            BodyErrorKind::Base64(_) => f.write_str("invalid base64"),
            BodyErrorKind::Utf8(_) => f.write_str("not valid UTF-8"),
            BodyErrorKind::Json(_) => f.write_str("not the expected JSON"),
            BodyErrorKind::Malformed(why) => write!(f, "the pulled entry could not be read: {why}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BodyErrorKind::Unsupported | BodyErrorKind::Malformed(_) => None,
            BodyErrorKind::Base64(e) => Some(e),
            BodyErrorKind::Utf8(e) => Some(e),
            BodyErrorKind::Json(e) => Some(e),
        }
    }
}

/// The first `max` characters of `s`, with an ellipsis when cut.
pub(crate) fn snippet(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_round_trips() {
        assert_eq!(ErrorCode::DOCUMENTED.len(), 16);
        for code in ErrorCode::DOCUMENTED {
            let n = code.as_u32();
            assert!((10104..=15000).contains(&n));
            assert_eq!(ErrorCode::from_u32(n), *code);
            assert_ne!(code.name(), "Unknown");
        }
        assert_eq!(ErrorCode::from_u32(7003), ErrorCode::Unknown(7003));
        assert_eq!(ErrorCode::Unknown(7003).as_u32(), 7003);
    }

    #[test]
    fn snippet_cuts_on_char_boundaries() {
        assert_eq!(snippet("héllo", 2), "hé…");
        assert_eq!(snippet("hi", 5), "hi");
    }
}
