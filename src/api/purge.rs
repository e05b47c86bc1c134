//! Emptying a queue (with a confirmation step), purge status, peeking at messages and
//! deleting peeked messages one by one.

use super::{QueueHandle, RequestOptions, request_future, request_options};
use crate::error::{Error, Result};
use crate::limits;
use crate::models::{
    PeekRef, PeekRequest, PeekResult, PurgeMessagesRequest, PurgeMessagesResult, PurgeQueueRequest,
    PurgeStatus, Queue,
};
use crate::ops;
use crate::transport::Call;

impl QueueHandle {
    /// Starts deleting **every** message in the queue. Nothing happens until the returned
    /// step is confirmed with
    /// [`delete_all_messages_permanently`](PurgeConfirmation::delete_all_messages_permanently)
    /// and that request is awaited.
    ///
    /// ```no_run
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// queue.purge().delete_all_messages_permanently().await?;
    /// while queue.purge_status().await?.completed != Some(true) {
    ///     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// The confirmation step cannot be awaited by itself:
    ///
    /// ```compile_fail
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// queue.purge().await?;
    /// # Ok(()) }
    /// ```
    pub fn purge(&self) -> PurgeConfirmation {
        PurgeConfirmation {
            queue: self.clone(),
        }
    }

    /// Status of the queue's last purge.
    pub fn purge_status(&self) -> GetPurgeStatus {
        GetPurgeStatus {
            queue: self.clone(),
            options: RequestOptions::default(),
        }
    }

    /// Looks at messages without leasing them: they stay available to consumers. Each
    /// [`PeekedMessage`](crate::models::PeekedMessage) decodes its body like a pulled one
    /// and carries a `peek_ref` for [`purge_messages`](Self::purge_messages).
    pub fn peek(&self) -> PeekMessages {
        PeekMessages {
            queue: self.clone(),
            batch_size: None,
            options: RequestOptions::default(),
        }
    }

    /// Deletes specific messages, named by the `peek_ref` of a peek.
    ///
    /// ```no_run
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// let peeked = queue.peek().batch_size(10).await?;
    /// let poison = peeked.messages.iter().filter(|m| m.attempts > 5);
    /// queue.purge_messages(poison.map(|m| m.peek_ref.clone())).await?;
    /// # Ok(()) }
    /// ```
    pub fn purge_messages<I>(&self, refs: I) -> PurgeMessages
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        PurgeMessages {
            queue: self.clone(),
            refs: refs.into_iter().map(Into::into).collect(),
            options: RequestOptions::default(),
        }
    }
}

/// The confirmation step of [`QueueHandle::purge`]. It cannot be sent or awaited; only
/// [`delete_all_messages_permanently`](Self::delete_all_messages_permanently) leads on.
#[derive(Debug)]
#[must_use = "nothing is purged until `delete_all_messages_permanently()` is awaited"]
pub struct PurgeConfirmation {
    queue: QueueHandle,
}

impl PurgeConfirmation {
    /// Confirms that every message in the queue is to be deleted, irreversibly. Await
    /// the result to send the purge.
    pub fn delete_all_messages_permanently(self) -> PurgeQueue {
        PurgeQueue {
            queue: self.queue,
            options: RequestOptions::default(),
        }
    }
}

/// The confirmed purge, from [`PurgeConfirmation::delete_all_messages_permanently`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct PurgeQueue {
    queue: QueueHandle,
    options: RequestOptions,
}

impl PurgeQueue {
    /// Sends the purge. It runs in the background; see [`QueueHandle::purge_status`].
    pub async fn send(self) -> Result<Queue> {
        let body = PurgeQueueRequest {
            delete_messages_permanently: true,
        };
        let params = [self.queue.id()];
        let call = Call::new(ops::START_PURGE, &params)
            .json(&body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::purge_status`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct GetPurgeStatus {
    queue: QueueHandle,
    options: RequestOptions,
}

impl GetPurgeStatus {
    /// Sends the request.
    pub async fn send(self) -> Result<PurgeStatus> {
        let params = [self.queue.id()];
        let call = Call::new(ops::PURGE_STATUS, &params).options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::peek`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct PeekMessages {
    queue: QueueHandle,
    batch_size: Option<u32>,
    options: RequestOptions,
}

impl PeekMessages {
    /// Most messages to return, 1 to 100 (the pull limit; the server picks when unset).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<PeekResult> {
        if let Some(n) = self.batch_size {
            limits::check_count("batch_size", n, 1, limits::MAX_PULL_BATCH)?;
        }
        let body = PeekRequest {
            batch_size: self.batch_size,
        };
        let params = [self.queue.id()];
        let call = Call::new(ops::PEEK_MESSAGES, &params)
            .json(&body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::purge_messages`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct PurgeMessages {
    queue: QueueHandle,
    refs: Vec<String>,
    options: RequestOptions,
}

impl PurgeMessages {
    /// Sends the request. An empty list is refused rather than sent.
    pub async fn send(self) -> Result<PurgeMessagesResult> {
        if self.refs.is_empty() {
            return Err(Error::invalid(
                "refs",
                "at least one ref is required (from a peek)",
            ));
        }
        if let Some(i) = self.refs.iter().position(|r| r.is_empty()) {
            return Err(Error::invalid(format!("refs[{i}]"), "must not be empty"));
        }
        let body = PurgeMessagesRequest {
            refs: self
                .refs
                .into_iter()
                .map(|peek_ref| PeekRef { peek_ref })
                .collect(),
        };
        let params = [self.queue.id()];
        let call = Call::new(ops::PURGE_MESSAGES, &params)
            .json(&body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

request_options!(PurgeQueue, GetPurgeStatus, PeekMessages, PurgeMessages);

request_future!(PurgeQueue => Queue);
request_future!(GetPurgeStatus => PurgeStatus);
request_future!(PeekMessages => PeekResult);
request_future!(PurgeMessages => PurgeMessagesResult);
