//! The message data plane: publish, batch publish, pull, ack/retry.

use super::{QueueHandle, RequestOptions, request_future, request_options};
use crate::error::{Error, Result};
use crate::limits::{
    self, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_PULL_BATCH, MAX_VISIBILITY_TIMEOUT,
};
use crate::models::{
    AckEntry, AckRequest, AckResult, BatchRequest, Message, PullRequest, PullResult, PushResult,
    QueueMetrics, RetryEntry,
};
use crate::ops;
use crate::transport::Call;
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
        if len == MAX_BATCH_MESSAGES || (len > 0 && bytes + size > MAX_BATCH_BYTES) {
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

request_options!(SendMessage, SendBatch, PullMessages, AckMessages);

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
}
