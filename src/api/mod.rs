//! Handles on API resources. Each owns a [`Client`] clone (no lifetimes), so handles can
//! be stored in structs and moved into tasks.
//!
//! Convention, used for every call: required inputs are arguments of the method that
//! starts the request, optional ones are setters on the returned builder, and the builder
//! is awaited (it implements `IntoFuture`; `.send()` is the same thing as a method).

mod consumers;
mod messages;
mod purge;
mod queues;
mod subscriptions;

pub use consumers::{
    Consumers, CreateConsumer, CreateHttpPullConsumer, CreateWorkerConsumer, DeleteConsumer,
    GetConsumer, ListConsumers, UpdateConsumer,
};
pub use messages::{
    AckMessages, BatchReceipt, ExtendLeases, LeaseExtension, LeaseExtensions, LeaseToExtend,
    PullMessages, SendBatch, SendMessage,
};
pub(crate) use messages::{
    BATCH_PREFIX, BATCH_SUFFIX, batch_request_len, encode_batch, encode_message_into,
    starts_new_batch,
};
pub use purge::{GetPurgeStatus, PeekMessages, PurgeConfirmation, PurgeMessages, PurgeQueue};
pub use queues::{
    CreateQueue, DeleteQueue, EditQueue, FindQueue, GetMetrics, GetQueue, ListQueues, Queues,
    UpdateQueue,
};
pub use subscriptions::{
    CreateSubscription, DeleteSubscription, EventSubscriptions, GetSubscription, ListSubscriptions,
    UpdateSubscription,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::transport::{Call, Deadline};
use std::time::Duration;

/// One queue, by id: its messages, settings, consumers, metrics and purges.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    pub(crate) client: Client,
    id: String,
}

impl QueueHandle {
    /// The queue's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client this handle uses.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// A handle on the queue with this id (32 hex characters). No request is made and
    /// nothing is checked: an empty id fails each request with [`Error::InvalidInput`],
    /// a malformed one is refused by the server. [`try_queue`](Self::try_queue) checks
    /// the id at once.
    pub fn queue(&self, queue_id: impl Into<String>) -> QueueHandle {
        QueueHandle {
            client: self.clone(),
            id: queue_id.into(),
        }
    }

    /// A handle on the queue with this id, after checking that it looks like one:
    /// Cloudflare's queue ids are 32 hexadecimal characters
    /// (`023e105f4ecef8ad9ca31a8372d0c353`), and so are the emulator's. Anything else
    /// (empty, blank, a name such as `orders`, a path with `/`, non-ASCII text) is
    /// [`Error::InvalidInput`] naming `queue_id`. No request is made.
    ///
    /// ```
    /// # fn f(client: cloudflare_queues::Client) {
    /// assert!(client.try_queue("023e105f4ecef8ad9ca31a8372d0c353").is_ok());
    /// assert!(client.try_queue("orders").is_err()); // a name: see `queues().find_by_name`
    /// # }
    /// ```
    pub fn try_queue(&self, queue_id: impl Into<String>) -> Result<QueueHandle> {
        let id = queue_id.into();
        check_queue_id(&id)?;
        Ok(self.queue(id))
    }
}

/// Length of a Cloudflare queue id.
const QUEUE_ID_LEN: usize = 32;

/// Refuses what cannot be a queue id, saying why without echoing more than a snippet.
fn check_queue_id(id: &str) -> Result<()> {
    let reason = if id.trim().is_empty() {
        "must not be empty".to_owned()
    } else if !id.is_ascii() {
        "must be ASCII: queue ids are 32 hexadecimal characters".to_owned()
    } else if id.contains('/') {
        "must not contain `/`: queue ids are 32 hexadecimal characters".to_owned()
    } else if id
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        "must not contain whitespace: queue ids are 32 hexadecimal characters".to_owned()
    } else if !id.chars().all(|c| c.is_ascii_hexdigit()) {
        format!(
            "`{}` is not a queue id (32 hexadecimal characters); to find a queue by its name, use `client.queues().find_by_name(name)`",
            crate::error::snippet(id, 40)
        )
    } else if id.len() != QUEUE_ID_LEN {
        format!("has {} characters; queue ids have {QUEUE_ID_LEN}", id.len())
    } else {
        return Ok(());
    };
    Err(Error::invalid("queue_id", reason))
}

/// Retry policy and timeouts of one call, set through the setters every request builder
/// shares (see [`request_options!`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestOptions {
    retry: Option<RetryPolicy>,
    timeout: Option<Option<Duration>>,
    total_timeout: Option<Option<Duration>>,
    /// The total timeout's deadline, once fixed for a call that makes several requests.
    deadline: Option<Deadline>,
}

impl RequestOptions {
    /// Fixes the total timeout's deadline now, so that every request this call makes
    /// from here on shares it (`send_batch` in chunks, `find_by_name` through pages).
    pub(crate) fn start(&mut self, client: &Client) {
        if self.deadline.is_none() {
            let limit = self.total_timeout.unwrap_or(client.inner.total_timeout);
            self.deadline = Deadline::after(limit);
        }
    }
}

impl<'a> Call<'a> {
    /// Applies a builder's retry policy and timeouts.
    pub(crate) fn options(self, options: &'a RequestOptions) -> Self {
        let mut call = self.retry(options.retry.as_ref());
        call.timeout = options.timeout;
        call.total_timeout = options.total_timeout;
        call.deadline = options.deadline;
        call
    }
}

/// The setters every request builder has: `retry_policy`, `timeout`, `total_timeout`.
/// Each builder keeps them in a field named `options`.
macro_rules! request_options {
    ($($builder:ty),* $(,)?) => {$(
        impl $builder {
            /// Overrides the client's [`RetryPolicy`](crate::RetryPolicy) for this call.
            pub fn retry_policy(mut self, policy: $crate::RetryPolicy) -> Self {
                self.options.retry = Some(policy);
                self
            }

            /// Overrides the client's per-attempt timeout for this call
            /// ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout)); `None`
            /// removes it. Each attempt, from sending to the end of the body, gets this
            /// long.
            pub fn timeout(mut self, timeout: impl Into<Option<std::time::Duration>>) -> Self {
                self.options.timeout = Some(timeout.into());
                self
            }

            /// Overrides the client's total timeout for this call
            /// ([`ClientBuilder::total_timeout`](crate::ClientBuilder::total_timeout));
            /// `None` removes it. Attempts and the backoff sleeps between them must all
            /// end within it, or the call fails with
            /// [`Error::TotalTimeout`](crate::Error::TotalTimeout).
            pub fn total_timeout(
                mut self,
                timeout: impl Into<Option<std::time::Duration>>,
            ) -> Self {
                self.options.total_timeout = Some(timeout.into());
                self
            }
        }
    )*};
}
pub(crate) use request_options;

/// Makes a request builder awaitable by delegating to its `send()`.
macro_rules! request_future {
    ($builder:ty => $out:ty) => {
        impl std::future::IntoFuture for $builder {
            type Output = $crate::Result<$out>;
            type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;
            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.send())
            }
        }
    };
}
pub(crate) use request_future;
