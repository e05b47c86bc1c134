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
pub(crate) use messages::{batch_request_len, encode_batch, encode_message, starts_new_batch};
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
    /// A handle on the queue with this id (32 hex characters). No request is made.
    pub fn queue(&self, queue_id: impl Into<String>) -> QueueHandle {
        QueueHandle {
            client: self.clone(),
            id: queue_id.into(),
        }
    }
}

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
