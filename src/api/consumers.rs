//! A queue's consumers: list, create (HTTP pull or Worker), get, update, delete.

use super::{QueueHandle, RequestOptions, request_future, request_options};
use crate::error::{Error, Result};
use crate::models::{
    Consumer, ConsumerRequest, HttpPullConsumerRequest, MaxConcurrency, WorkerConsumerRequest,
};
use crate::ops;
use crate::transport::{Call, Operation};
use serde::de::IgnoredAny;
use std::time::Duration;

impl QueueHandle {
    /// The queue's consumers. No request is made.
    pub fn consumers(&self) -> Consumers {
        Consumers {
            queue: self.clone(),
        }
    }
}

/// The consumers of one queue, from [`QueueHandle::consumers`].
///
/// A queue has at most one consumer in practice, and cannot have a Worker consumer and
/// an HTTP pull consumer at the same time: remove one before adding the other.
#[derive(Debug, Clone)]
pub struct Consumers {
    queue: QueueHandle,
}

impl Consumers {
    /// Lists the queue's consumers.
    pub fn list(&self) -> ListConsumers {
        ListConsumers {
            queue: self.queue.clone(),
            options: RequestOptions::default(),
        }
    }

    /// Enables HTTP pull on the queue: the first step of every pull consumer. Set
    /// defaults for pulls on the builder, then await it.
    ///
    /// ```no_run
    /// # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
    /// use std::time::Duration;
    /// let consumer = queue
    ///     .consumers()
    ///     .create_http_pull()
    ///     .visibility_timeout(Duration::from_secs(60))
    ///     .max_retries(5)
    ///     .dead_letter_queue("orders-dlq")
    ///     .await?;
    /// println!("consumer {:?}", consumer.consumer_id());
    /// # Ok(()) }
    /// ```
    pub fn create_http_pull(&self) -> CreateHttpPullConsumer {
        CreateHttpPullConsumer {
            queue: self.queue.clone(),
            request: HttpPullConsumerRequest::new(),
            options: RequestOptions::default(),
        }
    }

    /// Attaches a Worker consumer: messages are pushed to the Worker `script_name`.
    pub fn create_worker(&self, script_name: impl Into<String>) -> CreateWorkerConsumer {
        CreateWorkerConsumer {
            queue: self.queue.clone(),
            request: WorkerConsumerRequest::new(script_name),
            options: RequestOptions::default(),
        }
    }

    /// Attaches a consumer described by a request value (see
    /// [`HttpPullConsumerRequest::new`] and [`WorkerConsumerRequest::new`]).
    pub fn create(&self, request: impl Into<ConsumerRequest>) -> CreateConsumer {
        CreateConsumer {
            queue: self.queue.clone(),
            request: request.into(),
            options: RequestOptions::default(),
        }
    }

    /// Fetches one consumer.
    pub fn get(&self, consumer_id: impl Into<String>) -> GetConsumer {
        GetConsumer {
            queue: self.queue.clone(),
            consumer_id: consumer_id.into(),
            options: RequestOptions::default(),
        }
    }

    /// Replaces a consumer's configuration (`PUT`), creating the consumer when it does
    /// not exist. Settings left out go back to their defaults.
    pub fn update(
        &self,
        consumer_id: impl Into<String>,
        request: impl Into<ConsumerRequest>,
    ) -> UpdateConsumer {
        UpdateConsumer {
            queue: self.queue.clone(),
            consumer_id: consumer_id.into(),
            request: request.into(),
            options: RequestOptions::default(),
        }
    }

    /// Detaches a consumer. Messages stay in the queue.
    pub fn delete(&self, consumer_id: impl Into<String>) -> DeleteConsumer {
        DeleteConsumer {
            queue: self.queue.clone(),
            consumer_id: consumer_id.into(),
            options: RequestOptions::default(),
        }
    }
}

fn check_consumer_id(id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::invalid("consumer_id", "must not be empty"));
    }
    Ok(())
}

/// Validates and sends a consumer create (no consumer id) or update.
async fn send_request(
    queue: &QueueHandle,
    op: Operation,
    consumer_id: Option<&str>,
    request: &ConsumerRequest,
    options: &RequestOptions,
) -> Result<Consumer> {
    request.validate()?;
    let mut params = vec![queue.id()];
    if let Some(id) = consumer_id {
        check_consumer_id(id)?;
        params.push(id);
    }
    let call = Call::new(op, &params).json(request)?.options(options);
    Ok(queue.client.execute(call).await?.result)
}

/// Builder returned by [`Consumers::list`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListConsumers {
    queue: QueueHandle,
    options: RequestOptions,
}

impl ListConsumers {
    /// Sends the request.
    pub async fn send(self) -> Result<Vec<Consumer>> {
        let params = [self.queue.id()];
        let call = Call::new(ops::LIST_CONSUMERS, &params).options(&self.options);
        let reply = self
            .queue
            .client
            .execute::<Option<Vec<Consumer>>>(call)
            .await?;
        Ok(reply.result.unwrap_or_default())
    }
}

/// Builder returned by [`Consumers::create_http_pull`]. Every setting is optional; the
/// server applies its defaults to those left unset.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateHttpPullConsumer {
    queue: QueueHandle,
    request: HttpPullConsumerRequest,
    options: RequestOptions,
}

impl CreateHttpPullConsumer {
    /// Default number of messages per pull, 1 to 100.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.request = self.request.with_batch_size(n);
        self
    }

    /// Deliveries before a message goes to the dead-letter queue (or is dropped), 0 to 100.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.request = self.request.with_max_retries(n);
        self
    }

    /// Default delay before a retried message is delivered again, up to 24 h. Sent in
    /// whole seconds.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.request = self.request.with_retry_delay(delay);
        self
    }

    /// Default lease of a pulled message, 1 ms to 12 h. Sent in milliseconds.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.request = self.request.with_visibility_timeout(timeout);
        self
    }

    /// Name (not id) of the queue that receives messages past `max_retries`.
    pub fn dead_letter_queue(mut self, queue_name: impl Into<String>) -> Self {
        self.request = self.request.with_dead_letter_queue(queue_name);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Consumer> {
        let request = ConsumerRequest::HttpPull(self.request);
        send_request(
            &self.queue,
            ops::CREATE_CONSUMER,
            None,
            &request,
            &self.options,
        )
        .await
    }
}

/// Builder returned by [`Consumers::create_worker`]. Every setting is optional; the
/// server applies its defaults to those left unset.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateWorkerConsumer {
    queue: QueueHandle,
    request: WorkerConsumerRequest,
    options: RequestOptions,
}

impl CreateWorkerConsumer {
    /// Most messages per batch, 1 to 100.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.request = self.request.with_batch_size(n);
        self
    }

    /// Most concurrent invocations: a number of at least 1, or
    /// [`MaxConcurrency::PlatformMaximum`] to send `null`, which asks for the platform's
    /// maximum (Cloudflare's recommendation). Not calling this leaves the field out.
    pub fn max_concurrency(mut self, limit: impl Into<MaxConcurrency>) -> Self {
        self.request = self.request.with_max_concurrency(limit);
        self
    }

    /// The Worker environment that consumes, such as `production` (the default
    /// environment when unset).
    pub fn environment_name(mut self, environment: impl Into<String>) -> Self {
        self.request = self.request.with_environment_name(environment);
        self
    }

    /// Deliveries before a message goes to the dead-letter queue (or is dropped), 0 to 100.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.request = self.request.with_max_retries(n);
        self
    }

    /// How long to wait for a batch to fill, up to 60 s. Sent in milliseconds.
    pub fn max_wait_time(mut self, wait: Duration) -> Self {
        self.request = self.request.with_max_wait_time(wait);
        self
    }

    /// Default delay before a retried message is delivered again, up to 24 h. Sent in
    /// whole seconds.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.request = self.request.with_retry_delay(delay);
        self
    }

    /// Name (not id) of the queue that receives messages past `max_retries`.
    pub fn dead_letter_queue(mut self, queue_name: impl Into<String>) -> Self {
        self.request = self.request.with_dead_letter_queue(queue_name);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Consumer> {
        let request = ConsumerRequest::Worker(self.request);
        send_request(
            &self.queue,
            ops::CREATE_CONSUMER,
            None,
            &request,
            &self.options,
        )
        .await
    }
}

/// Builder returned by [`Consumers::create`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateConsumer {
    queue: QueueHandle,
    request: ConsumerRequest,
    options: RequestOptions,
}

impl CreateConsumer {
    /// Sends the request.
    pub async fn send(self) -> Result<Consumer> {
        send_request(
            &self.queue,
            ops::CREATE_CONSUMER,
            None,
            &self.request,
            &self.options,
        )
        .await
    }
}

/// Builder returned by [`Consumers::get`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct GetConsumer {
    queue: QueueHandle,
    consumer_id: String,
    options: RequestOptions,
}

impl GetConsumer {
    /// Sends the request.
    pub async fn send(self) -> Result<Consumer> {
        check_consumer_id(&self.consumer_id)?;
        let params = [self.queue.id(), self.consumer_id.as_str()];
        let call = Call::new(ops::GET_CONSUMER, &params).options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`Consumers::update`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct UpdateConsumer {
    queue: QueueHandle,
    consumer_id: String,
    request: ConsumerRequest,
    options: RequestOptions,
}

impl UpdateConsumer {
    /// Sends the request.
    pub async fn send(self) -> Result<Consumer> {
        send_request(
            &self.queue,
            ops::UPDATE_CONSUMER,
            Some(&self.consumer_id),
            &self.request,
            &self.options,
        )
        .await
    }
}

/// Builder returned by [`Consumers::delete`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct DeleteConsumer {
    queue: QueueHandle,
    consumer_id: String,
    options: RequestOptions,
}

impl DeleteConsumer {
    /// Sends the request.
    pub async fn send(self) -> Result<()> {
        check_consumer_id(&self.consumer_id)?;
        let params = [self.queue.id(), self.consumer_id.as_str()];
        let call = Call::new(ops::DELETE_CONSUMER, &params).options(&self.options);
        // The envelope carries no result.
        self.queue.client.execute::<IgnoredAny>(call).await?;
        Ok(())
    }
}

request_options!(
    ListConsumers,
    CreateHttpPullConsumer,
    CreateWorkerConsumer,
    CreateConsumer,
    GetConsumer,
    UpdateConsumer,
    DeleteConsumer,
);

request_future!(ListConsumers => Vec<Consumer>);
request_future!(CreateHttpPullConsumer => Consumer);
request_future!(CreateWorkerConsumer => Consumer);
request_future!(CreateConsumer => Consumer);
request_future!(GetConsumer => Consumer);
request_future!(UpdateConsumer => Consumer);
request_future!(DeleteConsumer => ());
