//! Handwritten additions to the consumer models: accessors that work across consumer
//! kinds, request constructors, and the checks of consumer settings against the limits.

use super::{
    Consumer, ConsumerRequest, HttpPullConsumerRequest, HttpPullConsumerSettings,
    WorkerConsumerRequest, WorkerConsumerSettings,
};
use crate::error::{Error, Result};
use crate::limits;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// How many invocations of a Worker consumer may run at once.
///
/// In [`WorkerConsumerSettings::max_concurrency`], `None` leaves the field out of the
/// request (the server keeps its current value or default) while
/// `Some(MaxConcurrency::PlatformMaximum)` sends `null`, which asks for the platform's
/// maximum, the setting Cloudflare recommends. A `u32` converts into a
/// [`Limit`](Self::Limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxConcurrency {
    /// Scale up to the platform's maximum (`null` on the wire).
    PlatformMaximum,
    /// At most this many concurrent invocations, at least 1.
    Limit(u32),
}

impl From<u32> for MaxConcurrency {
    fn from(limit: u32) -> Self {
        MaxConcurrency::Limit(limit)
    }
}

impl Serialize for MaxConcurrency {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            MaxConcurrency::PlatformMaximum => serializer.serialize_none(),
            MaxConcurrency::Limit(n) => serializer.serialize_u64(u64::from(*n)),
        }
    }
}

impl<'de> Deserialize<'de> for MaxConcurrency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Null => Ok(MaxConcurrency::PlatformMaximum),
            number => crate::codec::flex_u32::deserialize(number)
                .map(MaxConcurrency::Limit)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Consumer {
    /// The consumer's id, needed to update or delete it.
    ///
    /// Cloudflare sends it with every consumer; should a response lack it, this is
    /// empty, and [`consumer_id`](Self::consumer_id) says so.
    pub fn id(&self) -> &str {
        self.consumer_id().unwrap_or_default()
    }

    /// The consumer's id, or `None` if the response lacked it; see [`id`](Self::id).
    pub fn consumer_id(&self) -> Option<&str> {
        match self {
            Consumer::Worker(c) => c.consumer_id.as_deref(),
            Consumer::HttpPull(c) => c.consumer_id.as_deref(),
            Consumer::Unknown(raw) => raw_str(raw, "consumer_id"),
        }
    }

    /// Name of the queue consumed.
    pub fn queue_name(&self) -> Option<&str> {
        match self {
            Consumer::Worker(c) => c.queue_name.as_deref(),
            Consumer::HttpPull(c) => c.queue_name.as_deref(),
            Consumer::Unknown(raw) => raw_str(raw, "queue_name"),
        }
    }

    /// Creation time, as the server formats it (RFC 3339).
    pub fn created_on(&self) -> Option<&str> {
        match self {
            Consumer::Worker(c) => c.created_on.as_deref(),
            Consumer::HttpPull(c) => c.created_on.as_deref(),
            Consumer::Unknown(raw) => raw_str(raw, "created_on"),
        }
    }

    /// Name of the queue that receives messages past `max_retries`; `None` when there
    /// is none (the API sends an empty string then).
    pub fn dead_letter_queue(&self) -> Option<&str> {
        match self {
            Consumer::Worker(c) => c.dead_letter_queue.as_deref(),
            Consumer::HttpPull(c) => c.dead_letter_queue.as_deref(),
            Consumer::Unknown(raw) => raw_str(raw, "dead_letter_queue"),
        }
        .filter(|name| !name.is_empty())
    }

    /// The consuming Worker's script name (Worker consumers only).
    pub fn script_name(&self) -> Option<&str> {
        match self {
            Consumer::Worker(c) => c.script_name.as_deref(),
            Consumer::HttpPull(_) => None,
            Consumer::Unknown(raw) => raw_str(raw, "script_name"),
        }
    }

    /// Whether this is an HTTP pull consumer (messages are pulled over the REST API).
    pub fn is_http_pull(&self) -> bool {
        matches!(self, Consumer::HttpPull(_))
    }

    /// Whether this is a Worker consumer (messages are pushed to a Worker).
    pub fn is_worker(&self) -> bool {
        matches!(self, Consumer::Worker(_))
    }

    /// Configured batch size, when the server reported one (known kinds only).
    pub fn batch_size(&self) -> Option<u32> {
        match self {
            Consumer::Worker(c) => c.settings.as_ref()?.batch_size,
            Consumer::HttpPull(c) => c.settings.as_ref()?.batch_size,
            Consumer::Unknown(_) => None,
        }
    }

    /// Configured concurrency of a Worker consumer, when the server reported one
    /// (`null` reads as [`MaxConcurrency::PlatformMaximum`]).
    pub fn max_concurrency(&self) -> Option<MaxConcurrency> {
        match self {
            Consumer::Worker(c) => c.settings.as_ref()?.max_concurrency,
            Consumer::HttpPull(_) | Consumer::Unknown(_) => None,
        }
    }

    /// Configured retries before dead-lettering (known kinds only).
    pub fn max_retries(&self) -> Option<u32> {
        match self {
            Consumer::Worker(c) => c.settings.as_ref()?.max_retries,
            Consumer::HttpPull(c) => c.settings.as_ref()?.max_retries,
            Consumer::Unknown(_) => None,
        }
    }

    /// Configured delay before a retried message is delivered again (known kinds only).
    pub fn retry_delay(&self) -> Option<Duration> {
        match self {
            Consumer::Worker(c) => c.settings.as_ref()?.retry_delay,
            Consumer::HttpPull(c) => c.settings.as_ref()?.retry_delay,
            Consumer::Unknown(_) => None,
        }
    }
}

fn raw_str<'a>(raw: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    raw.get(key).and_then(serde_json::Value::as_str)
}

impl HttpPullConsumerRequest {
    /// An HTTP pull consumer with the server's default settings.
    pub fn new() -> Self {
        Self::default()
    }

    fn settings_mut(&mut self) -> &mut HttpPullConsumerSettings {
        self.settings.get_or_insert_with(Default::default)
    }

    /// Default number of messages per pull, 1 to 100.
    #[must_use]
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.settings_mut().batch_size = Some(n);
        self
    }

    /// Deliveries before a message is dead-lettered or dropped, 0 to 100.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.settings_mut().max_retries = Some(n);
        self
    }

    /// Default delay before a retried message is delivered again, up to 24 h.
    #[must_use]
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.settings_mut().retry_delay = Some(delay);
        self
    }

    /// Default lease of a pulled message, 1 ms to 12 h.
    #[must_use]
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.settings_mut().visibility_timeout = Some(timeout);
        self
    }

    /// Name of the queue that receives messages past `max_retries`.
    #[must_use]
    pub fn with_dead_letter_queue(mut self, queue_name: impl Into<String>) -> Self {
        self.dead_letter_queue = Some(queue_name.into());
        self
    }
}

impl WorkerConsumerRequest {
    /// A Worker consumer running `script_name`, with the server's default settings.
    pub fn new(script_name: impl Into<String>) -> Self {
        Self {
            script_name: script_name.into(),
            ..Self::default()
        }
    }

    fn settings_mut(&mut self) -> &mut WorkerConsumerSettings {
        self.settings.get_or_insert_with(Default::default)
    }

    /// Most messages per batch, 1 to 100.
    #[must_use]
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.settings_mut().batch_size = Some(n);
        self
    }

    /// Most concurrent invocations: a number of at least 1, or
    /// [`MaxConcurrency::PlatformMaximum`] (sent as `null`, Cloudflare's recommendation).
    /// Not calling this leaves the field out of the request.
    #[must_use]
    pub fn with_max_concurrency(mut self, limit: impl Into<MaxConcurrency>) -> Self {
        self.settings_mut().max_concurrency = Some(limit.into());
        self
    }

    /// The Worker environment that consumes (the server's default environment when
    /// unset; the API reads an empty string the same way).
    #[must_use]
    pub fn with_environment_name(mut self, environment: impl Into<String>) -> Self {
        self.environment_name = Some(environment.into());
        self
    }

    /// Deliveries before a message is dead-lettered or dropped, 0 to 100.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.settings_mut().max_retries = Some(n);
        self
    }

    /// How long to wait for a batch to fill, up to 60 s.
    #[must_use]
    pub fn with_max_wait_time(mut self, wait: Duration) -> Self {
        self.settings_mut().max_wait_time = Some(wait);
        self
    }

    /// Default delay before a retried message is delivered again, up to 24 h.
    #[must_use]
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.settings_mut().retry_delay = Some(delay);
        self
    }

    /// Name of the queue that receives messages past `max_retries`.
    #[must_use]
    pub fn with_dead_letter_queue(mut self, queue_name: impl Into<String>) -> Self {
        self.dead_letter_queue = Some(queue_name.into());
        self
    }
}

impl From<HttpPullConsumerRequest> for ConsumerRequest {
    fn from(request: HttpPullConsumerRequest) -> Self {
        ConsumerRequest::HttpPull(request)
    }
}

impl From<WorkerConsumerRequest> for ConsumerRequest {
    fn from(request: WorkerConsumerRequest) -> Self {
        ConsumerRequest::Worker(request)
    }
}

impl ConsumerRequest {
    /// Checks the settings against the documented limits. A kind this crate does not
    /// know is passed through unchecked.
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            ConsumerRequest::Worker(w) => {
                if w.script_name.trim().is_empty() {
                    return Err(Error::invalid("script_name", "must not be empty"));
                }
                check_dead_letter_queue(w.dead_letter_queue.as_deref())?;
                let Some(s) = &w.settings else { return Ok(()) };
                check_common(s.batch_size, s.max_retries, s.retry_delay)?;
                if s.max_concurrency == Some(MaxConcurrency::Limit(0)) {
                    return Err(Error::invalid(
                        "max_concurrency",
                        "0 is out of range; must be at least 1 (or MaxConcurrency::PlatformMaximum)",
                    ));
                }
                if let Some(wait) = s.max_wait_time {
                    limits::check_duration(
                        "max_wait_time",
                        wait,
                        Duration::ZERO,
                        limits::MAX_WAIT_TIME,
                    )?;
                }
                Ok(())
            }
            ConsumerRequest::HttpPull(p) => {
                check_dead_letter_queue(p.dead_letter_queue.as_deref())?;
                let Some(s) = &p.settings else { return Ok(()) };
                check_common(s.batch_size, s.max_retries, s.retry_delay)?;
                if let Some(t) = s.visibility_timeout {
                    limits::check_duration(
                        "visibility_timeout",
                        t,
                        Duration::from_millis(1),
                        limits::MAX_VISIBILITY_TIMEOUT,
                    )?;
                }
                Ok(())
            }
            ConsumerRequest::Unknown(_) => Ok(()),
        }
    }
}

fn check_common(
    batch_size: Option<u32>,
    max_retries: Option<u32>,
    retry_delay: Option<Duration>,
) -> Result<()> {
    if let Some(n) = batch_size {
        limits::check_count("batch_size", n, 1, limits::MAX_CONSUMER_BATCH)?;
    }
    if let Some(n) = max_retries {
        limits::check_count("max_retries", n, 0, limits::MAX_RETRIES)?;
    }
    if let Some(d) = retry_delay {
        limits::check_duration("retry_delay", d, Duration::ZERO, limits::MAX_DELAY)?;
    }
    Ok(())
}

fn check_dead_letter_queue(name: Option<&str>) -> Result<()> {
    if name.is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::invalid(
            "dead_letter_queue",
            "must name a queue; leave it unset for none",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_cover_every_kind() {
        let pull: Consumer = serde_json::from_value(json!({
            "type": "http_pull", "consumer_id": "c1", "dead_letter_queue": "",
            "settings": {"batch_size": 5.0, "retry_delay": 10}
        }))
        .unwrap();
        assert_eq!(pull.consumer_id(), Some("c1"));
        assert_eq!(pull.dead_letter_queue(), None);
        assert_eq!(pull.batch_size(), Some(5));
        assert_eq!(pull.retry_delay(), Some(Duration::from_secs(10)));
        assert!(pull.is_http_pull() && !pull.is_worker());

        let other: Consumer = serde_json::from_value(json!({
            "type": "r2_sink", "consumer_id": "c2", "dead_letter_queue": "", "script_name": "s"
        }))
        .unwrap();
        assert!(matches!(other, Consumer::Unknown(_)));
        assert_eq!(other.consumer_id(), Some("c2"));
        assert_eq!(other.dead_letter_queue(), None);
        assert_eq!(other.script_name(), Some("s"));
        assert_eq!(other.batch_size(), None);
    }

    #[test]
    fn requests_serialise_with_their_type_tag_and_wire_units() {
        let pull = ConsumerRequest::from(
            HttpPullConsumerRequest::new()
                .with_visibility_timeout(Duration::from_secs(30))
                .with_retry_delay(Duration::from_millis(1500)),
        );
        assert_eq!(
            serde_json::to_value(&pull).unwrap(),
            json!({"type": "http_pull", "settings": {"visibility_timeout_ms": 30000, "retry_delay": 2}})
        );
        let worker = ConsumerRequest::from(
            WorkerConsumerRequest::new("w").with_max_wait_time(Duration::from_secs(5)),
        );
        assert_eq!(
            serde_json::to_value(&worker).unwrap(),
            json!({"type": "worker", "script_name": "w", "settings": {"max_wait_time_ms": 5000}})
        );
    }

    #[test]
    fn max_concurrency_keeps_null_apart_from_absent() {
        let body = |r: WorkerConsumerRequest| {
            serde_json::to_value(ConsumerRequest::from(r)).unwrap()["settings"].clone()
        };
        assert_eq!(
            body(
                WorkerConsumerRequest::new("w")
                    .with_max_concurrency(MaxConcurrency::PlatformMaximum)
            ),
            json!({"max_concurrency": null})
        );
        assert_eq!(
            body(WorkerConsumerRequest::new("w").with_max_concurrency(4)),
            json!({"max_concurrency": 4})
        );
        assert_eq!(
            body(WorkerConsumerRequest::new("w").with_batch_size(5)),
            json!({"batch_size": 5})
        );

        let settings = |v: serde_json::Value| {
            serde_json::from_value::<WorkerConsumerSettings>(v)
                .unwrap()
                .max_concurrency
        };
        assert_eq!(
            settings(json!({"max_concurrency": null})),
            Some(MaxConcurrency::PlatformMaximum)
        );
        assert_eq!(
            settings(json!({"max_concurrency": 10.0})),
            Some(MaxConcurrency::Limit(10))
        );
        assert_eq!(settings(json!({})), None);
        assert!(
            serde_json::from_value::<WorkerConsumerSettings>(json!({"max_concurrency": 1.5}))
                .is_err()
        );
    }

    #[test]
    fn validation_names_the_field() {
        let field = |r: ConsumerRequest| match r.validate() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(WorkerConsumerRequest::new(" ").into()), "script_name");
        assert_eq!(
            field(
                WorkerConsumerRequest::new("w")
                    .with_max_concurrency(0)
                    .into()
            ),
            "max_concurrency"
        );
        assert_eq!(
            field(
                WorkerConsumerRequest::new("w")
                    .with_max_wait_time(Duration::from_secs(61))
                    .into()
            ),
            "max_wait_time"
        );
        assert_eq!(
            field(HttpPullConsumerRequest::new().with_max_retries(101).into()),
            "max_retries"
        );
        assert_eq!(
            field(
                HttpPullConsumerRequest::new()
                    .with_dead_letter_queue("")
                    .into()
            ),
            "dead_letter_queue"
        );
        assert!(
            ConsumerRequest::from(HttpPullConsumerRequest::new().with_max_retries(0))
                .validate()
                .is_ok()
        );
    }
}
