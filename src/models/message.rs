//! Handwritten additions to the message models: building messages to publish, and
//! decoding pulled and peeked bodies by their `CF-Content-Type`.

use super::{Message, PeekedMessage, PushContentType, PushResult, QueueMetrics};
use crate::error::{BodyError, BodyErrorKind, Error, Result};
use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a message body was published, from the `CF-Content-Type` metadata.
///
/// Over HTTP, `text` bodies arrive as plain UTF-8, `json` and `bytes` bodies as standard
/// base64 (RFC 4648). `v8` bodies (the Workers structured-clone format) cannot be
/// decoded outside Workers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentType {
    /// UTF-8 text, sent as is.
    Text,
    /// JSON, base64-encoded on the wire.
    Json,
    /// Raw bytes, base64-encoded on the wire.
    Bytes,
    /// V8 structured clone: readable only inside Workers.
    V8,
    /// Another value, or none (empty string), kept verbatim.
    Unknown(String),
}

impl ContentType {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ContentType::Text => "text",
            ContentType::Json => "json",
            ContentType::Bytes => "bytes",
            ContentType::V8 => "v8",
            ContentType::Unknown(s) => s,
        }
    }

    /// Reads `CF-Content-Type` from message metadata.
    pub fn from_metadata(metadata: &serde_json::Map<String, serde_json::Value>) -> Self {
        match metadata
            .get(super::CONTENT_TYPE_KEY)
            .and_then(serde_json::Value::as_str)
        {
            Some(s) => ContentType::from(s),
            None => ContentType::Unknown(String::new()),
        }
    }
}

impl From<&str> for ContentType {
    fn from(s: &str) -> Self {
        match s {
            "text" => ContentType::Text,
            "json" => ContentType::Json,
            "bytes" => ContentType::Bytes,
            "v8" => ContentType::V8,
            other => ContentType::Unknown(other.to_owned()),
        }
    }
}

impl std::fmt::Display for ContentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes a wire body to its payload bytes. Text borrows; base64 allocates once.
pub(crate) fn decode_payload<'a>(
    id: &str,
    content_type: &ContentType,
    body: &'a str,
) -> Result<Cow<'a, [u8]>> {
    match content_type {
        ContentType::Text => Ok(Cow::Borrowed(body.as_bytes())),
        ContentType::Json | ContentType::Bytes => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map(Cow::Owned)
            .map_err(|e| body_error(id, content_type, BodyErrorKind::Base64(e))),
        ContentType::V8 | ContentType::Unknown(_) => {
            Err(body_error(id, content_type, BodyErrorKind::Unsupported))
        }
    }
}

pub(crate) fn payload_text<'a>(
    id: &str,
    content_type: &ContentType,
    payload: Cow<'a, [u8]>,
) -> Result<Cow<'a, str>> {
    match payload {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|e| body_error(id, content_type, BodyErrorKind::Utf8(e)))
}

pub(crate) fn payload_json<T: DeserializeOwned>(
    id: &str,
    content_type: &ContentType,
    payload: &[u8],
) -> Result<T> {
    serde_json::from_slice(payload)
        .map_err(|e| body_error(id, content_type, BodyErrorKind::Json(e)))
}

pub(crate) fn body_error(id: &str, content_type: &ContentType, kind: BodyErrorKind) -> Error {
    Error::Body(Box::new(BodyError {
        message_id: id.to_owned(),
        content_type: content_type.clone(),
        kind,
    }))
}

/// Unix milliseconds from the server as a `SystemTime`; a value the platform's clock
/// cannot hold (some platforms stop in year 30828) reads as the epoch, never a panic.
pub(crate) fn millis_to_time(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

/// Decoders shared by pulled and peeked messages.
macro_rules! body_decoders {
    ($ty:ty) => {
        impl $ty {
            /// How the body was published (`CF-Content-Type`).
            pub fn content_type(&self) -> ContentType {
                self.metadata.content_type()
            }

            /// When the message was published.
            pub fn published_at(&self) -> SystemTime {
                millis_to_time(self.timestamp_ms)
            }

            /// The payload bytes: text as is, json and bytes base64-decoded.
            /// `v8` and unknown content types are [`Error::Body`].
            pub fn bytes(&self) -> Result<Cow<'_, [u8]>> {
                decode_payload(&self.id, &self.content_type(), &self.body)
            }

            /// The payload as UTF-8 text (a json body gives its JSON text).
            pub fn text(&self) -> Result<Cow<'_, str>> {
                let ct = self.content_type();
                payload_text(&self.id, &ct, decode_payload(&self.id, &ct, &self.body)?)
            }

            /// The payload parsed as JSON into `T` (for any content type but v8).
            pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
                let ct = self.content_type();
                payload_json(&self.id, &ct, &decode_payload(&self.id, &ct, &self.body)?)
            }
        }
    };
}
body_decoders!(super::PulledMessage);
body_decoders!(PeekedMessage);

impl PushResult {
    /// Best-effort queue metrics carried by the response, if any.
    pub fn metrics(&self) -> Option<&QueueMetrics> {
        self.metadata.as_ref().and_then(|m| m.metrics.as_ref())
    }
}

impl QueueMetrics {
    /// Publish time of the oldest unacknowledged message; `None` when the server does not
    /// know (it sends 0).
    pub fn oldest_message_at(&self) -> Option<SystemTime> {
        (self.oldest_message_timestamp_ms > 0)
            .then(|| millis_to_time(self.oldest_message_timestamp_ms))
    }
}

impl Message {
    /// A text message: consumers receive the string as is.
    pub fn text(body: impl Into<String>) -> Self {
        Message {
            body: serde_json::Value::String(body.into()),
            content_type: PushContentType::Text,
            delay: None,
        }
    }

    /// A JSON message from any serialisable value. Pull consumers receive it
    /// base64-encoded and decode it with [`PulledMessage::json`](super::PulledMessage::json).
    pub fn json<T: Serialize + ?Sized>(body: &T) -> Result<Self> {
        let value =
            serde_json::to_value(body).map_err(|e| Error::invalid("body", e.to_string()))?;
        Ok(Self::json_value(value))
    }

    /// A JSON message from a `serde_json::Value`.
    pub fn json_value(body: serde_json::Value) -> Self {
        Message {
            body,
            content_type: PushContentType::Json,
            delay: None,
        }
    }

    /// Delays delivery by `delay` (up to 24 h). Zero overrides the queue's delivery delay.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// The body size the limits apply to: UTF-8 length of a text body, serialised
    /// length of a JSON body.
    pub fn size(&self) -> usize {
        match (&self.content_type, &self.body) {
            (PushContentType::Text, serde_json::Value::String(s)) => s.len(),
            (_, body) => {
                let mut counter = ByteCounter(0);
                // Writing a Value into a counter cannot fail.
                let _ = serde_json::to_writer(&mut counter, body);
                counter.0
            }
        }
    }

    /// Checks the body size and delay against the documented limits.
    pub(crate) fn validate(&self, field: &str) -> Result<()> {
        if matches!(self.content_type, PushContentType::Text) && !self.body.is_string() {
            return Err(Error::invalid(
                field,
                "a text message must have a string body",
            ));
        }
        let size = self.size();
        if size > crate::limits::MAX_MESSAGE_BYTES {
            return Err(Error::invalid(
                field,
                format!(
                    "body is {size} bytes; a message may be at most {} bytes (128 KB)",
                    crate::limits::MAX_MESSAGE_BYTES
                ),
            ));
        }
        if let Some(delay) = self.delay {
            crate::limits::check_duration(
                &format!("{field}.delay"),
                delay,
                Duration::ZERO,
                crate::limits::MAX_DELAY,
            )?;
        }
        Ok(())
    }
}

impl From<&str> for Message {
    fn from(body: &str) -> Self {
        Message::text(body)
    }
}

impl From<String> for Message {
    fn from(body: String) -> Self {
        Message::text(body)
    }
}

impl From<serde_json::Value> for Message {
    fn from(body: serde_json::Value) -> Self {
        Message::json_value(body)
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
