//! The request builders: what the handles' methods return, to be configured with
//! setters and then awaited.
//!
//! Code rarely names these types: a builder comes from a handle method
//! ([`QueueHandle::send`](crate::QueueHandle::send),
//! [`Queues::list`](crate::Queues::list), …), takes optional inputs as setters, and is
//! awaited (every builder implements `IntoFuture`; `.send().await` is the same thing).
//!
//! Every request builder has the same three setters besides its own:
//!
//! * `retry_policy(policy)`: the [`RetryPolicy`](crate::RetryPolicy) for this call
//!   instead of the client's;
//! * `timeout(limit)`: the per-attempt timeout for this call instead of the client's
//!   ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout));
//! * `total_timeout(limit)`: the deadline of the whole call, retries and backoff sleeps
//!   included, instead of the client's
//!   ([`ClientBuilder::total_timeout`](crate::ClientBuilder::total_timeout)).
//!
//! ```no_run
//! # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
//! use std::time::Duration;
//! let batch = queue
//!     .pull()
//!     .batch_size(50)
//!     .timeout(Duration::from_secs(5))
//!     .total_timeout(Duration::from_secs(12))
//!     .await?;
//! # Ok(()) }
//! ```

pub use crate::api::{
    AckMessages, BatchReceipt, CreateConsumer, CreateHttpPullConsumer, CreateQueue,
    CreateSubscription, CreateWorkerConsumer, DeleteConsumer, DeleteQueue, DeleteSubscription,
    EditQueue, ExtendLeases, FindQueue, GetConsumer, GetMetrics, GetPurgeStatus, GetQueue,
    GetSubscription, LeaseExtension, LeaseExtensions, LeaseToExtend, ListConsumers, ListQueues,
    ListSubscriptions, PeekMessages, PullMessages, PurgeConfirmation, PurgeMessages, PurgeQueue,
    SendBatch, SendMessage, UpdateConsumer, UpdateQueue, UpdateSubscription,
};
