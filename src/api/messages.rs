//! The message data plane: publish, batch publish, pull, ack/retry.

use super::{QueueHandle, RequestOptions, request_future, request_options};
use crate::error::{Error, Result};
use crate::limits::{
    self, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_PULL_BATCH, MAX_VISIBILITY_TIMEOUT,
};
use crate::models::{
    AckEntry, AckRequest, AckResult, AckWarning, BatchRequest, ExtendEntry, ExtendRequest,
    ExtendResult, ExtensionOutcome, Message, PullRequest, PullResult, PulledMessage, PushResult,
    QueueMetrics, RetryEntry, match_extensions,
};
use crate::ops;
use crate::retry::RetryPolicy;
use crate::transport::Call;
use bytes::Bytes;
use std::time::Duration;

impl QueueHandle {
    /// Publishes one message. Await the returned builder (or call `send()`).
    ///
    /// ```no_run
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// use cloudflare_queues::models::Message;
    /// queue.send("plain text").await?;
    /// queue.send(Message::json(&serde_json::json!({"order": 42}))?).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Publishing is not idempotent: after a timeout or a connection lost mid-request the
    /// error is returned rather than retried, since the message may already be stored.
    pub fn send(&self, message: impl Into<Message>) -> SendMessage {
        SendMessage {
            queue: self.clone(),
            message: message.into(),
            options: RequestOptions::default(),
        }
    }

    /// Publishes any number of messages, split into as few requests as the limits allow
    /// (100 messages and 256 KB per request), in order.
    ///
    /// Every message is checked first: one over 128 KB (or with a delay over 24 h) is an
    /// [`Error::InvalidInput`] naming its index (`messages[i]`), and nothing is sent. If a
    /// later request fails after earlier ones succeeded, the error is
    /// [`Error::BatchIncomplete`] with the number of messages stored.
    pub fn send_batch<I>(&self, messages: I) -> SendBatch
    where
        I: IntoIterator,
        I::Item: Into<Message>,
    {
        SendBatch {
            queue: self.clone(),
            messages: messages.into_iter().map(Into::into).collect(),
            delay: None,
            options: RequestOptions::default(),
        }
    }

    /// Leases a batch of messages (HTTP pull consumers only).
    pub fn pull(&self) -> PullMessages {
        PullMessages {
            queue: self.clone(),
            batch_size: None,
            visibility_timeout: None,
            options: RequestOptions::default(),
        }
    }

    /// Acknowledges and/or retries leased messages, in one request.
    pub fn ack(&self) -> AckMessages {
        self.ack_request(AckRequest::default())
    }

    /// Extends the leases of messages still being worked on, without counting an attempt:
    /// each gets a new lease of `visibility_timeout` from now, and (per Cloudflare) a new
    /// lease id. Up to 100 leases go in one request; longer lists are split.
    ///
    /// ```no_run
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// use cloudflare_queues::models::ExtensionOutcome;
    /// use std::time::Duration;
    /// let batch = queue.pull().batch_size(10).visibility_timeout(Duration::from_secs(60)).await?;
    /// // Still busy after a while: 60 s more for each.
    /// let extended = queue.extend_leases(&batch.messages, Duration::from_secs(60)).await?;
    /// for lease in &extended.leases {
    ///     match &lease.outcome {
    ///         ExtensionOutcome::Renewed { lease_id } => println!("ack with {lease_id} from now on"),
    ///         ExtensionOutcome::ExtendedIdUnknown => println!("keep using {}", lease.lease_id),
    ///         ExtensionOutcome::NotExtended { warning } => println!("too late: {warning}"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// The response's shape is not published, so it is read tolerantly (see
    /// [`match_extensions`](crate::models::match_extensions)): a new lease id is reported
    /// only when it can be matched to its message safely; otherwise the outcome is
    /// "extended, new id unknown" and the old lease id, which Cloudflare keeps accepting
    /// for acks, stays in use. Passing pulled messages (`&PulledMessage`) rather than bare
    /// lease ids lets new ids be matched by message id.
    ///
    /// Not idempotent: an extension is retried only when the server surely did not apply
    /// it, since new lease ids may have been issued.
    pub fn extend_leases<I>(&self, leases: I, visibility_timeout: Duration) -> ExtendLeases
    where
        I: IntoIterator,
        I::Item: Into<LeaseToExtend>,
    {
        ExtendLeases {
            queue: self.clone(),
            leases: leases.into_iter().map(Into::into).collect(),
            visibility_timeout,
            options: RequestOptions::default(),
        }
    }

    /// An extension request with a body built elsewhere (the pull consumer's extender).
    pub(crate) fn extend_request(&self, body: ExtendRequest) -> ExtendOnce {
        ExtendOnce {
            queue: self.clone(),
            body,
        }
    }

    /// An ack request with a body built elsewhere (the pull consumer's flusher).
    pub(crate) fn ack_request(&self, body: AckRequest) -> AckMessages {
        AckMessages {
            queue: self.clone(),
            body,
            options: RequestOptions::default(),
        }
    }
}

/// Builder returned by [`QueueHandle::send`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct SendMessage {
    queue: QueueHandle,
    message: Message,
    options: RequestOptions,
}

impl SendMessage {
    /// Delays delivery of this message (up to 24 h).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.message.delay = Some(delay);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<PushResult> {
        self.message.validate("message")?;
        let params = [self.queue.id()];
        let call = Call::new(ops::PUSH_MESSAGE, &params)
            .json(&self.message)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// What [`SendBatch`] did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BatchReceipt {
    /// Messages stored.
    pub messages: usize,
    /// Requests made.
    pub requests: usize,
    /// Queue metrics from the last response, when the server sent them.
    pub metrics: Option<QueueMetrics>,
}

/// Builder returned by [`QueueHandle::send_batch`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct SendBatch {
    queue: QueueHandle,
    messages: Vec<Message>,
    delay: Option<Duration>,
    options: RequestOptions,
}

impl SendBatch {
    /// Delays every message that sets no delay of its own (up to 24 h).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Validates every message, then sends the batches in order. A total timeout
    /// covers the whole batch, every request of it.
    pub async fn send(mut self) -> Result<BatchReceipt> {
        if let Some(delay) = self.delay {
            limits::check_duration("delay", delay, Duration::ZERO, limits::MAX_DELAY)?;
        }
        let mut sizes = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            m.validate(&format!("messages[{i}]"))?;
            sizes.push(m.size());
        }
        let total = self.messages.len();
        self.options.start(&self.queue.client);
        let chunks = chunk_lengths(&sizes);
        let params = [self.queue.id()];
        let mut receipt = BatchReceipt::default();
        let mut rest = self.messages.into_iter();
        for len in chunks {
            let body = BatchRequest {
                messages: rest.by_ref().take(len).collect(),
                delay: self.delay,
            };
            let call = Call::new(ops::PUSH_BATCH, &params)
                .json(&body)?
                .options(&self.options);
            match self.queue.client.execute::<PushResult>(call).await {
                Ok(reply) => {
                    receipt.messages += len;
                    receipt.requests += 1;
                    if let Some(m) = reply.result.metrics() {
                        receipt.metrics = Some(m.clone());
                    }
                }
                Err(err) if receipt.messages == 0 => return Err(err),
                Err(err) => {
                    return Err(Error::BatchIncomplete {
                        accepted: receipt.messages,
                        total,
                        source: Box::new(err),
                    });
                }
            }
        }
        Ok(receipt)
    }
}

/// Greedy split of message sizes into request-sized chunks: at most
/// [`MAX_BATCH_MESSAGES`] messages and [`MAX_BATCH_BYTES`] bytes each, order kept.
/// Every size is already at most the per-message limit, which is below the batch limit.
fn chunk_lengths(sizes: &[usize]) -> Vec<usize> {
    let mut chunks = Vec::new();
    let (mut len, mut bytes) = (0, 0);
    for &size in sizes {
        if starts_new_batch(len, bytes + size, MAX_BATCH_MESSAGES, MAX_BATCH_BYTES) {
            chunks.push(len);
            (len, bytes) = (0, 0);
        }
        len += 1;
        bytes += size;
    }
    if len > 0 {
        chunks.push(len);
    }
    chunks
}

/// The batching rule shared by [`SendBatch`] and the
/// [`Publisher`](crate::publisher::Publisher): a batch holding `len` messages is closed
/// before the next one when it is full by count, or when taking the next one would bring
/// its size to `bytes_with_next`, over `max_bytes`. A lone message always fits (its own
/// limit is checked before).
pub(crate) fn starts_new_batch(
    len: usize,
    bytes_with_next: usize,
    max_messages: usize,
    max_bytes: usize,
) -> bool {
    len >= max_messages || (len > 0 && bytes_with_next > max_bytes)
}

/// What a batch publish body adds around its messages: `{"messages":[` … `]}`.
pub(crate) const BATCH_PREFIX: &[u8] = b"{\"messages\":[";
pub(crate) const BATCH_SUFFIX: &[u8] = b"]}";

/// The exact size of a batch publish body holding `len` messages whose own JSON
/// encodings ([`encode_message`]) add up to `message_bytes`: the envelope, the messages,
/// and the commas between them.
pub(crate) fn batch_request_len(len: usize, message_bytes: usize) -> usize {
    BATCH_PREFIX.len() + BATCH_SUFFIX.len() + message_bytes + len.saturating_sub(1)
}

/// One message as the batch publish body carries it (`{"body":…,"content_type":…}`),
/// written into `out` (cleared first), which keeps its capacity for the next.
pub(crate) fn encode_message_into(message: &Message, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    // Room for a text body without escapes plus the keys around it, so that the usual
    // message is written without the buffer growing (and being copied) on the way.
    let guess = match &message.body {
        serde_json::Value::String(text) => text.len() + 64,
        _ => 256,
    };
    out.reserve(guess);
    serde_json::to_writer(&mut *out, message).map_err(|e| Error::invalid("body", e.to_string()))
}

/// A batch publish body from encoded messages: byte for byte what serialising a
/// [`BatchRequest`] without a batch delay gives, of length [`batch_request_len`].
pub(crate) fn encode_batch<'a>(messages: impl Iterator<Item = &'a [u8]> + Clone) -> Bytes {
    // One allocation of the exact length, so the parts are copied once.
    let (count, bytes) = messages
        .clone()
        .fold((0, 0), |(n, b), part| (n + 1, b + part.len()));
    let mut body = Vec::with_capacity(batch_request_len(count, bytes));
    let mut parts = messages.peekable();
    body.extend_from_slice(BATCH_PREFIX);
    while let Some(part) = parts.next() {
        body.extend_from_slice(part);
        if parts.peek().is_some() {
            body.push(b',');
        }
    }
    body.extend_from_slice(BATCH_SUFFIX);
    Bytes::from(body)
}

impl QueueHandle {
    /// One batch publish of an already encoded body ([`encode_batch`]), sent once: the
    /// caller owns retries (the Publisher resends the same bytes).
    pub(crate) async fn push_encoded(&self, body: Bytes) -> Result<PushResult> {
        let params = [self.id()];
        let once = RetryPolicy::none();
        let mut call = Call::new(ops::PUSH_BATCH, &params).retry(Some(&once));
        call.body = Some(body);
        Ok(self.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::pull`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct PullMessages {
    queue: QueueHandle,
    batch_size: Option<u32>,
    visibility_timeout: Option<Duration>,
    options: RequestOptions,
}

impl PullMessages {
    /// Most messages to lease, 1 to 100 (server default 5).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// How long the messages stay leased to this caller, up to 12 h (server default
    /// 30 s). Sent in milliseconds.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<PullResult> {
        if let Some(n) = self.batch_size {
            limits::check_count("batch_size", n, 1, MAX_PULL_BATCH)?;
        }
        if let Some(t) = self.visibility_timeout {
            limits::check_duration(
                "visibility_timeout",
                t,
                Duration::from_millis(1),
                MAX_VISIBILITY_TIMEOUT,
            )?;
        }
        let body = PullRequest {
            batch_size: self.batch_size,
            visibility_timeout: self.visibility_timeout,
        };
        let params = [self.queue.id()];
        let call = Call::new(ops::PULL_MESSAGES, &params)
            .json(&body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::ack`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct AckMessages {
    queue: QueueHandle,
    body: AckRequest,
    options: RequestOptions,
}

impl AckMessages {
    /// Acknowledges one lease: the message is done and will not be delivered again.
    pub fn ack(mut self, lease_id: impl Into<String>) -> Self {
        self.body.acks.push(AckEntry {
            lease_id: lease_id.into(),
        });
        self
    }

    /// Acknowledges several leases.
    pub fn acks<I>(mut self, lease_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.body.acks.extend(
            lease_ids
                .into_iter()
                .map(|l| AckEntry { lease_id: l.into() }),
        );
        self
    }

    /// Puts a lease back for another delivery after `delay` (up to 24 h; zero means at
    /// once), or after the consumer's configured retry delay when `delay` is `None`.
    pub fn retry(mut self, lease_id: impl Into<String>, delay: Option<Duration>) -> Self {
        self.body.retries.push(RetryEntry {
            lease_id: lease_id.into(),
            delay,
        });
        self
    }

    /// Sends the request. With nothing to acknowledge or retry, no request is made.
    pub async fn send(self) -> Result<AckResult> {
        for (i, r) in self.body.retries.iter().enumerate() {
            if let Some(d) = r.delay {
                limits::check_duration(
                    &format!("retries[{i}].delay"),
                    d,
                    Duration::ZERO,
                    limits::MAX_DELAY,
                )?;
            }
        }
        for (i, lease) in self
            .body
            .acks
            .iter()
            .map(|a| &a.lease_id)
            .chain(self.body.retries.iter().map(|r| &r.lease_id))
            .enumerate()
        {
            if lease.is_empty() {
                return Err(Error::invalid(
                    format!("lease_id #{i}"),
                    "must not be empty",
                ));
            }
        }
        if self.body.acks.is_empty() && self.body.retries.is_empty() {
            return Ok(AckResult::default());
        }
        let params = [self.queue.id()];
        let call = Call::new(ops::ACK_MESSAGES, &params)
            .json(&self.body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// A lease to extend: its lease id and, when known, its message id (which lets the new
/// lease id be matched to it safely).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseToExtend {
    /// The lease id (the newest known for the message).
    pub lease_id: String,
    /// The message's id, when known.
    pub message_id: Option<String>,
}

impl LeaseToExtend {
    /// A lease whose message id is known.
    pub fn new(lease_id: impl Into<String>, message_id: impl Into<String>) -> Self {
        LeaseToExtend {
            lease_id: lease_id.into(),
            message_id: Some(message_id.into()),
        }
    }
}

impl From<String> for LeaseToExtend {
    fn from(lease_id: String) -> Self {
        LeaseToExtend {
            lease_id,
            message_id: None,
        }
    }
}

impl From<&str> for LeaseToExtend {
    fn from(lease_id: &str) -> Self {
        lease_id.to_owned().into()
    }
}

impl From<&PulledMessage> for LeaseToExtend {
    fn from(m: &PulledMessage) -> Self {
        LeaseToExtend::new(m.lease_id.clone(), m.id.clone())
    }
}

/// What [`ExtendLeases`] did: one entry per lease sent, in order.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LeaseExtensions {
    /// Each lease sent and what became of it.
    pub leases: Vec<LeaseExtension>,
    /// Requests made.
    pub requests: usize,
    /// Warnings the server did not tie to a lease.
    pub warnings: Vec<AckWarning>,
    /// How many leases the server said it extended, summed over the requests that said.
    pub extend_count: Option<u64>,
}

/// One lease sent for extension and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseExtension {
    /// The lease id sent.
    pub lease_id: String,
    /// The message id, when it was given.
    pub message_id: Option<String>,
    /// What became of it.
    pub outcome: ExtensionOutcome,
}

/// Builder returned by [`QueueHandle::extend_leases`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ExtendLeases {
    queue: QueueHandle,
    leases: Vec<LeaseToExtend>,
    visibility_timeout: Duration,
    options: RequestOptions,
}

impl ExtendLeases {
    /// Checks the input, then sends the requests in order (100 leases each). If a later
    /// request fails after earlier ones succeeded, the error is
    /// [`Error::BatchIncomplete`] with the number of leases handled; their old lease ids
    /// keep working for acks.
    pub async fn send(mut self) -> Result<LeaseExtensions> {
        limits::check_duration(
            "visibility_timeout",
            self.visibility_timeout,
            Duration::from_millis(1),
            MAX_VISIBILITY_TIMEOUT,
        )?;
        for (i, l) in self.leases.iter().enumerate() {
            if l.lease_id.trim().is_empty() {
                return Err(Error::invalid(format!("leases[{i}]"), "must not be empty"));
            }
        }
        let total = self.leases.len();
        // One total-timeout deadline for every request of the call.
        self.options.start(&self.queue.client);
        let params = [self.queue.id()];
        let mut out = LeaseExtensions::default();
        for chunk in self.leases.chunks(limits::MAX_EXTEND_BATCH) {
            let body = ExtendRequest {
                extend: chunk
                    .iter()
                    .map(|l| ExtendEntry {
                        lease_id: l.lease_id.clone(),
                    })
                    .collect(),
                visibility_timeout: Some(self.visibility_timeout),
            };
            let call = Call::new(ops::EXTEND_LEASES, &params)
                .json(&body)?
                .options(&self.options);
            let result = match self.queue.client.execute::<ExtendResult>(call).await {
                Ok(reply) => reply.result,
                Err(err) if out.requests == 0 => return Err(err),
                Err(err) => {
                    return Err(Error::BatchIncomplete {
                        accepted: out.leases.len(),
                        total,
                        source: Box::new(err),
                    });
                }
            };
            out.requests += 1;
            let sent: Vec<(String, Option<String>)> = chunk
                .iter()
                .map(|l| (l.lease_id.clone(), l.message_id.clone()))
                .collect();
            let outcomes = match_extensions(&sent, &result);
            out.leases.extend(
                chunk
                    .iter()
                    .zip(outcomes)
                    .map(|(l, outcome)| LeaseExtension {
                        lease_id: l.lease_id.clone(),
                        message_id: l.message_id.clone(),
                        outcome,
                    }),
            );
            out.warnings
                .extend(result.warnings.into_iter().filter(|w| w.lease_id.is_none()));
            if let Some(n) = result.extend_count {
                out.extend_count = Some(out.extend_count.unwrap_or(0).saturating_add(n));
            }
        }
        Ok(out)
    }
}

/// One extension request, as built by the pull consumer: no retries (the consumer owns
/// its retry loop), the raw result back.
#[derive(Debug)]
pub(crate) struct ExtendOnce {
    queue: QueueHandle,
    body: ExtendRequest,
}

impl ExtendOnce {
    pub(crate) async fn send(self) -> Result<ExtendResult> {
        let params = [self.queue.id()];
        let none = RetryPolicy::none();
        let call = Call::new(ops::EXTEND_LEASES, &params)
            .json(&self.body)?
            .retry(Some(&none));
        Ok(self.queue.client.execute(call).await?.result)
    }
}

request_future!(ExtendLeases => LeaseExtensions);
request_options!(
    SendMessage,
    SendBatch,
    PullMessages,
    AckMessages,
    ExtendLeases
);

request_future!(SendMessage => PushResult);
request_future!(SendBatch => BatchReceipt);
request_future!(PullMessages => PullResult);
request_future!(AckMessages => AckResult);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_count_and_bytes() {
        assert_eq!(chunk_lengths(&[10; 250]), vec![100, 100, 50]);
        assert_eq!(chunk_lengths(&[]), Vec::<usize>::new());
        // 100 KB each: two fit under 256 KB, a third does not.
        assert_eq!(chunk_lengths(&[100_000; 5]), vec![2, 2, 1]);
        assert_eq!(chunk_lengths(&[128_000, 128_000, 1]), vec![2, 1]);
        assert_eq!(chunk_lengths(&[128_000, 128_000]), vec![2]);
        let mixed: Vec<usize> = (0..300)
            .map(|i| if i % 50 == 0 { 120_000 } else { 100 })
            .collect();
        for len in chunk_lengths(&mixed) {
            assert!(len <= 100);
        }
        assert_eq!(chunk_lengths(&mixed).iter().sum::<usize>(), 300);
    }

    #[test]
    fn encoded_batches_match_the_serialised_request() {
        let messages = vec![
            Message::text("a \"quoted\" line\n"),
            Message::json_value(serde_json::json!({"order": 42, "tags": ["x"]}))
                .with_delay(Duration::from_secs(30)),
            Message::text("é"),
        ];
        let parts: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| {
                let mut out = Vec::new();
                encode_message_into(m, &mut out).unwrap();
                out
            })
            .collect();
        let expected = serde_json::to_vec(&BatchRequest {
            messages: messages.clone(),
            delay: None,
        })
        .unwrap();
        let body = encode_batch(parts.iter().map(|p| &p[..]));
        assert_eq!(&body[..], &expected[..]);
        let sum = parts.iter().map(Vec::len).sum();
        assert_eq!(batch_request_len(parts.len(), sum), body.len());
        assert_eq!(&encode_batch(std::iter::empty())[..], b"{\"messages\":[]}");
        assert_eq!(batch_request_len(0, 0), 15);
    }

    #[test]
    fn the_batching_rule() {
        assert!(
            !starts_new_batch(0, 999_999, 100, 256_000),
            "a lone message always fits"
        );
        assert!(starts_new_batch(100, 10, 100, 256_000));
        assert!(!starts_new_batch(99, 256_000, 100, 256_000));
        assert!(starts_new_batch(99, 256_001, 100, 256_000));
    }
}
