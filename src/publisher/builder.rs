//! [`PublisherBuilder`]: the settings, their defaults and checks, and starting the
//! publisher's task.

use super::batcher;
use super::config::Config;
use super::lane::{Lane, RateLimit};
use super::pusher::{HttpPusher, Pusher};
use super::shared::Shared;
use super::{Handle, Publisher};
use crate::api::QueueHandle;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits::{MAX_BATCH_BYTES, MAX_BATCH_MESSAGES};
use crate::retry::Backoff;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Smallest `max_bytes` allowed: room for the request's envelope and a small message.
const MIN_BATCH_BYTES: usize = 100;

/// Builds a [`Publisher`]; start with [`QueueHandle::publisher`] or
/// [`Client::publisher_for`].
#[derive(Debug, Clone)]
#[must_use = "call build() to get the publisher"]
pub struct PublisherBuilder {
    queues: Vec<QueueHandle>,
    cfg: Config,
    rate_limit: Option<u32>,
}

impl QueueHandle {
    /// A batching, flow-controlled [`Publisher`] for this queue.
    ///
    /// ```no_run
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// let publisher = queue.publisher().rate_limit(4_900).build()?;
    /// let published = publisher.publish("hello").await?;
    /// println!("stored in {}", published.queue_id());
    /// # Ok(()) }
    /// ```
    pub fn publisher(&self) -> PublisherBuilder {
        PublisherBuilder::new(vec![self.clone()])
    }
}

impl Client {
    /// A [`Publisher`] that spreads batches over several queues, round-robin (skipping a
    /// throttled queue while another is open), to publish past one queue's ceiling.
    /// `rate_limit` then applies to each queue. Consume them with one
    /// [`PullConsumer`](crate::consumer::PullConsumer) per queue, merging the streams
    /// with `futures::stream::select_all`.
    ///
    /// ```no_run
    /// # async fn f(client: cloudflare_queues::Client) -> cloudflare_queues::Result<()> {
    /// let publisher = client
    ///     .publisher_for(["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"])
    ///     .rate_limit(4_900)
    ///     .build()?;
    /// publisher.publish("to whichever queue is next").await?;
    /// # Ok(()) }
    /// ```
    pub fn publisher_for<I>(&self, queue_ids: I) -> PublisherBuilder
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        PublisherBuilder::new(queue_ids.into_iter().map(|id| self.queue(id)).collect())
    }
}

impl PublisherBuilder {
    fn new(queues: Vec<QueueHandle>) -> Self {
        PublisherBuilder {
            queues,
            cfg: Config {
                max_messages: MAX_BATCH_MESSAGES,
                max_bytes: MAX_BATCH_BYTES,
                max_delay: Duration::from_millis(10),
                max_concurrent_requests: 16,
                max_outstanding_messages: 10_000,
                max_outstanding_bytes: 100_000_000,
                at_most_once: false,
                retry_backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
                    .jitter(0.5),
                max_retry_after: Duration::from_secs(60),
                give_up_after: Duration::from_secs(300),
            },
            rate_limit: None,
        }
    }

    /// Most messages per batch request, 1 to 100. Default 100 (Cloudflare's maximum).
    pub fn max_messages(mut self, n: usize) -> Self {
        self.cfg.max_messages = n;
        self
    }

    /// Largest batch request body in bytes, counted as encoded (JSON with its escapes,
    /// field names and separators), 100 to 256,000. Default 256,000 (Cloudflare's
    /// request limit). A message whose encoding alone exceeds it is refused at `publish`.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.cfg.max_bytes = n;
        self
    }

    /// Longest a message waits for its batch to fill before the batch is sent anyway.
    /// Default 10 ms. Zero sends whatever is waiting as soon as a request may start.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.cfg.max_delay = d;
        self
    }

    /// Most batch requests in flight (waits for the rate limit included). Default 16.
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.cfg.max_concurrent_requests = n;
        self
    }

    /// Most accepted messages without an outcome; `publish` waits beyond it. Default
    /// 10,000.
    pub fn max_outstanding_messages(mut self, n: usize) -> Self {
        self.cfg.max_outstanding_messages = n;
        self
    }

    /// Most encoded bytes of accepted messages without an outcome; at least `max_bytes`.
    /// Default 100 MB.
    pub fn max_outstanding_bytes(mut self, n: usize) -> Self {
        self.cfg.max_outstanding_bytes = n;
        self
    }

    /// Client-side limit of each queue, in messages per second (a token bucket with
    /// bursts of a twentieth of a second's worth, at least one batch). Default none. Cloudflare's ceiling is
    /// 5,000 per queue; a little under it (say 4,900) avoids nearly every 429.
    pub fn rate_limit(mut self, messages_per_second: u32) -> Self {
        self.rate_limit = Some(messages_per_second);
        self
    }

    /// Never sends a batch again after an unknown outcome; its messages fail with
    /// [`Error::MaybeStored`]. Default: at least once (sent again, and the result says
    /// [`possibly_duplicated`](super::Published::possibly_duplicated)).
    pub fn at_most_once(mut self) -> Self {
        self.cfg.at_most_once = true;
        self
    }

    /// Backoff between resends of a batch after a 5xx, a network failure, or a 429
    /// without `Retry-After`. Default 100 ms to 5 s, with 50 % jitter.
    pub fn retry_backoff(mut self, backoff: Backoff) -> Self {
        self.cfg.retry_backoff = backoff;
        self
    }

    /// Longest server-requested pause honoured; longer `Retry-After`s are cut to it.
    /// Default 60 s.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.cfg.max_retry_after = d;
        self
    }

    /// How long a batch keeps being sent again (throttled or failing) before its
    /// messages fail with the last error. Default 5 minutes.
    pub fn give_up_after(mut self, d: Duration) -> Self {
        self.cfg.give_up_after = d;
        self
    }

    /// Checks the settings and starts the publisher's background task on the current
    /// Tokio runtime (an error outside one).
    pub fn build(self) -> Result<Publisher> {
        let queues = self.queues.clone();
        self.build_with(Arc::new(HttpPusher::new(queues)))
    }

    /// [`build`](Self::build) with another way of sending batches (tests use a fake).
    pub(crate) fn build_with(self, pusher: Arc<dyn Pusher>) -> Result<Publisher> {
        let cfg = self.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("a Publisher must be built inside a Tokio runtime".into())
        })?;
        let mut lanes = Vec::with_capacity(self.queues.len());
        for queue in &self.queues {
            let rate = self
                .rate_limit
                .and_then(NonZeroU32::new)
                .map(|r| RateLimit::new(r, u32::try_from(cfg.max_messages).unwrap_or(100)));
            lanes.push(Lane::new(queue.id(), rate));
        }
        let (shared, tx, rx) = Shared::new(cfg, lanes, pusher);
        let task = shared.clone();
        let closer = batcher::CloseOpen(shared.clone());
        runtime.spawn(async move {
            use futures::FutureExt as _;
            let _closer = closer;
            let run = std::panic::AssertUnwindSafe(batcher::run(task.clone(), rx));
            if run.catch_unwind().await.is_err() {
                // A bug, but no caller may wait forever: the messages it held were
                // dropped (their callers learn the outcome is unknown); publish the
                // report so that `shutdown` returns.
                tracing::error!("the publisher's task panicked");
                task.begin_close();
                task.report.send_replace(Some(task.report_now()));
            }
        });
        Ok(Publisher {
            handle: Arc::new(Handle { tx, shared }),
        })
    }

    fn check(&self) -> Result<Config> {
        let cfg = self.cfg.clone();
        if self.queues.is_empty() {
            return Err(Error::invalid("queues", "name at least one queue"));
        }
        for (i, q) in self.queues.iter().enumerate() {
            if q.id().trim().is_empty() {
                return Err(Error::invalid(format!("queues[{i}]"), "must not be empty"));
            }
        }
        if !(1..=MAX_BATCH_MESSAGES).contains(&cfg.max_messages) {
            return Err(Error::invalid(
                "max_messages",
                format!(
                    "{} is out of range; allowed 1 to {MAX_BATCH_MESSAGES}",
                    cfg.max_messages
                ),
            ));
        }
        if !(MIN_BATCH_BYTES..=MAX_BATCH_BYTES).contains(&cfg.max_bytes) {
            return Err(Error::invalid(
                "max_bytes",
                format!(
                    "{} is out of range; allowed {MIN_BATCH_BYTES} to {MAX_BATCH_BYTES}",
                    cfg.max_bytes
                ),
            ));
        }
        if cfg.max_concurrent_requests == 0 {
            return Err(Error::invalid(
                "max_concurrent_requests",
                "must be at least 1",
            ));
        }
        if cfg.max_outstanding_messages == 0 {
            return Err(Error::invalid(
                "max_outstanding_messages",
                "must be at least 1",
            ));
        }
        if cfg.max_outstanding_bytes < cfg.max_bytes {
            return Err(Error::invalid(
                "max_outstanding_bytes",
                format!(
                    "{} is less than max_bytes ({}), so a full batch could never be accepted",
                    cfg.max_outstanding_bytes, cfg.max_bytes
                ),
            ));
        }
        if self.rate_limit == Some(0) {
            return Err(Error::invalid(
                "rate_limit",
                "must be at least 1 message per second",
            ));
        }
        if cfg.give_up_after.is_zero() {
            return Err(Error::invalid("give_up_after", "must be longer than zero"));
        }
        Ok(cfg)
    }
}
