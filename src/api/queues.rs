//! Queue management: list, create, find by name, get, replace, edit, delete, pause and
//! resume delivery, metrics.

use super::{QueueHandle, RequestOptions, request_future, request_options};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits;
use crate::models::{
    CreateQueueRequest, Jurisdiction, Queue, QueueMetrics, QueueSettings, UpdateQueueRequest,
};
use crate::ops;
use crate::pagination::{Page, PageStream, paginate};
use crate::transport::Call;
use futures::StreamExt as _;
use serde::de::IgnoredAny;
use std::time::Duration;

/// The account's queues, from [`Client::queues`]: list, create, find by name.
///
/// To work on one queue whose id you know, use [`Client::queue`].
#[derive(Debug, Clone)]
pub struct Queues {
    client: Client,
}

impl Client {
    /// The account's queues. No request is made.
    pub fn queues(&self) -> Queues {
        Queues {
            client: self.clone(),
        }
    }
}

impl Queues {
    /// Lists queues: await it for one page, or call
    /// [`into_stream`](ListQueues::into_stream) for every queue.
    ///
    /// ```no_run
    /// # async fn f(client: cloudflare_queues::Client) -> cloudflare_queues::Result<()> {
    /// use futures::TryStreamExt as _;
    /// let first = client.queues().list().await?;
    /// let all: Vec<_> = client.queues().list().into_stream().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> ListQueues {
        ListQueues {
            client: self.client.clone(),
            page: None,
            per_page: None,
            names: Vec::new(),
            options: RequestOptions::default(),
        }
    }

    /// Creates a queue. Names are unique within the account.
    ///
    /// Creating is not idempotent: after a timeout the queue may exist although an error
    /// was returned ([`find_by_name`](Self::find_by_name) tells).
    pub fn create(&self, name: impl Into<String>) -> CreateQueue {
        CreateQueue {
            client: self.client.clone(),
            body: CreateQueueRequest {
                queue_name: name.into(),
                ..CreateQueueRequest::default()
            },
            options: RequestOptions::default(),
        }
    }

    /// Finds a queue by its name, the way wrangler and the dashboard refer to queues.
    /// Resolves to `None` when no queue has that name.
    ///
    /// One request: the listing filtered by `name` (as wrangler asks). Only if the
    /// server ignores the filter and answers with other queues does this go on through
    /// the listing page by page, stopping at the first exact match (or when the server
    /// repeats a page, see [`PageStream`]).
    pub fn find_by_name(&self, name: impl Into<String>) -> FindQueue {
        FindQueue {
            list: self.list(),
            name: name.into(),
            options: RequestOptions::default(),
        }
    }
}

impl QueueHandle {
    /// Fetches the queue with its settings, consumers and producers.
    pub fn get(&self) -> GetQueue {
        GetQueue {
            queue: self.clone(),
            options: RequestOptions::default(),
        }
    }

    /// Replaces the queue's name and settings (`PUT`). Settings not set on the builder
    /// go back to their defaults; use [`edit`](Self::edit) to change only some fields.
    pub fn update(&self, name: impl Into<String>) -> UpdateQueue {
        UpdateQueue {
            queue: self.clone(),
            body: UpdateQueueRequest {
                queue_name: Some(name.into()),
                settings: None,
            },
            options: RequestOptions::default(),
        }
    }

    /// Changes only the fields set on the builder (`PATCH`).
    pub fn edit(&self) -> EditQueue {
        EditQueue {
            queue: self.clone(),
            body: UpdateQueueRequest::default(),
            options: RequestOptions::default(),
        }
    }

    /// Pauses delivery to consumers. The queue keeps accepting and storing messages;
    /// pulls answer 409 until delivery resumes. Resolves to the updated queue.
    pub fn pause_delivery(&self) -> EditQueue {
        self.edit().delivery_paused(true)
    }

    /// Resumes delivery after [`pause_delivery`](Self::pause_delivery).
    pub fn resume_delivery(&self) -> EditQueue {
        self.edit().delivery_paused(false)
    }

    /// Deletes the queue and every message in it.
    pub fn delete(&self) -> DeleteQueue {
        DeleteQueue {
            queue: self.clone(),
            options: RequestOptions::default(),
        }
    }

    /// Best-effort backlog metrics: messages, bytes, age of the oldest message.
    pub fn metrics(&self) -> GetMetrics {
        GetMetrics {
            queue: self.clone(),
            options: RequestOptions::default(),
        }
    }
}

fn settings_of(settings: &mut Option<QueueSettings>) -> &mut QueueSettings {
    settings.get_or_insert_with(QueueSettings::default)
}

/// Checks queue settings against the documented ranges.
fn check_settings(settings: Option<&QueueSettings>) -> Result<()> {
    settings.map_or(Ok(()), QueueSettings::validate)
}

/// Refuses an empty or all-blank name or id, which the server could only reject (or,
/// in a path, would turn into a different URL).
pub(crate) fn check_not_blank(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(())
}

/// Checks the optional paging setters shared by list builders.
pub(crate) fn check_paging(
    page: Option<u32>,
    per_page: Option<u32>,
    max_per_page: Option<u32>,
) -> Result<()> {
    if page == Some(0) {
        return Err(Error::invalid(
            "page",
            "0 is out of range; pages are numbered from 1",
        ));
    }
    match (per_page, max_per_page) {
        (Some(n), Some(max)) => limits::check_count("per_page", n, 1, max),
        (Some(0), None) => Err(Error::invalid(
            "per_page",
            "0 is out of range; must be at least 1",
        )),
        _ => Ok(()),
    }
}

/// Builder returned by [`Queues::list`].
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListQueues {
    client: Client,
    page: Option<u32>,
    per_page: Option<u32>,
    names: Vec<String>,
    options: RequestOptions,
}

impl ListQueues {
    /// The page to fetch, from 1 (the server's default is the first). For
    /// [`into_stream`](Self::into_stream), the page to start from.
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }

    /// Queues per page, at least 1 (the server picks when unset).
    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = Some(per_page);
        self
    }

    /// Lists only the queue with this exact name; call it again to ask for several
    /// names at once (each is sent as its own `name` parameter).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.names.push(name.into());
        self
    }

    /// Fetches one page.
    pub async fn send(self) -> Result<Page<Queue>> {
        // The API documents no ceiling for queue pages, so only the floor is checked.
        check_paging(self.page, self.per_page, None)?;
        for name in &self.names {
            check_not_blank("name", name)?;
        }
        let mut call = Call::new(ops::LIST_QUEUES, &[])
            .query("page", self.page)
            .query("per_page", self.per_page);
        for name in &self.names {
            call = call.query("name", Some(name));
        }
        let call = call.options(&self.options);
        let reply = self.client.execute::<Option<Vec<Queue>>>(call).await?;
        Ok(Page::new(
            reply.result.unwrap_or_default(),
            reply.result_info,
        ))
    }

    /// Every queue, from [`page`](Self::page) (or 1) on, fetching pages as the stream
    /// is polled. See [`PageStream`] for when it stops.
    pub fn into_stream(self) -> PageStream<Queue> {
        let first = self.page.unwrap_or(1);
        paginate(first, move |page| self.clone().page(page).send())
    }
}

/// Builder returned by [`Queues::find_by_name`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct FindQueue {
    list: ListQueues,
    name: String,
    options: RequestOptions,
}

impl FindQueue {
    /// Asks for the queue by name; walks further pages only while the server answers
    /// with other queues. The retry policy applies to each listing request; a total
    /// timeout covers the whole search.
    pub async fn send(self) -> Result<Option<Queue>> {
        check_not_blank("name", &self.name)?;
        let mut list = self.list;
        list.options = self.options;
        list.options.start(&list.client);
        let mut queues = list.name(self.name.clone()).into_stream();
        while let Some(queue) = queues.next().await {
            let queue = queue?;
            if queue.queue_name.as_deref() == Some(self.name.as_str()) {
                return Ok(Some(queue));
            }
        }
        Ok(None)
    }
}

/// Builder returned by [`Queues::create`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateQueue {
    client: Client,
    body: CreateQueueRequest,
    options: RequestOptions,
}

impl CreateQueue {
    /// Delay before every published message can be delivered, 0 to 24 h (server
    /// default 0). Sent in whole seconds.
    pub fn delivery_delay(mut self, delay: Duration) -> Self {
        settings_of(&mut self.body.settings).delivery_delay = Some(delay);
        self
    }

    /// How long unconsumed messages are kept, 60 s to 14 days (server default 4 days).
    /// Sent in whole seconds.
    pub fn message_retention_period(mut self, period: Duration) -> Self {
        settings_of(&mut self.body.settings).message_retention_period = Some(period);
        self
    }

    /// Where the queue's data is kept (`eu`, `us`, `fedramp`).
    pub fn jurisdiction(mut self, jurisdiction: Jurisdiction) -> Self {
        self.body.jurisdiction = Some(jurisdiction);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Queue> {
        check_not_blank("queue_name", &self.body.queue_name)?;
        check_settings(self.body.settings.as_ref())?;
        let call = Call::new(ops::CREATE_QUEUE, &[])
            .json(&self.body)?
            .options(&self.options);
        Ok(self.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::get`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct GetQueue {
    queue: QueueHandle,
    options: RequestOptions,
}

impl GetQueue {
    /// Sends the request.
    pub async fn send(self) -> Result<Queue> {
        let params = [self.queue.id()];
        let call = Call::new(ops::GET_QUEUE, &params).options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::update`] (`PUT`: a full replace).
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct UpdateQueue {
    queue: QueueHandle,
    body: UpdateQueueRequest,
    options: RequestOptions,
}

impl UpdateQueue {
    /// Delivery delay, 0 to 24 h; back to 0 when not set.
    pub fn delivery_delay(mut self, delay: Duration) -> Self {
        settings_of(&mut self.body.settings).delivery_delay = Some(delay);
        self
    }

    /// Message retention, 60 s to 14 days; back to 4 days when not set.
    pub fn message_retention_period(mut self, period: Duration) -> Self {
        settings_of(&mut self.body.settings).message_retention_period = Some(period);
        self
    }

    /// Whether delivery to consumers is paused.
    pub fn delivery_paused(mut self, paused: bool) -> Self {
        settings_of(&mut self.body.settings).delivery_paused = Some(paused);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Queue> {
        check_not_blank("queue_name", self.body.queue_name.as_deref().unwrap_or(""))?;
        check_settings(self.body.settings.as_ref())?;
        let params = [self.queue.id()];
        let call = Call::new(ops::UPDATE_QUEUE, &params)
            .json(&self.body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::edit`], [`QueueHandle::pause_delivery`] and
/// [`QueueHandle::resume_delivery`] (`PATCH`: only the fields set are sent).
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct EditQueue {
    queue: QueueHandle,
    body: UpdateQueueRequest,
    options: RequestOptions,
}

impl EditQueue {
    /// Renames the queue.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.body.queue_name = Some(name.into());
        self
    }

    /// Delivery delay, 0 to 24 h.
    pub fn delivery_delay(mut self, delay: Duration) -> Self {
        settings_of(&mut self.body.settings).delivery_delay = Some(delay);
        self
    }

    /// Message retention, 60 s to 14 days.
    pub fn message_retention_period(mut self, period: Duration) -> Self {
        settings_of(&mut self.body.settings).message_retention_period = Some(period);
        self
    }

    /// Whether delivery to consumers is paused.
    pub fn delivery_paused(mut self, paused: bool) -> Self {
        settings_of(&mut self.body.settings).delivery_paused = Some(paused);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Queue> {
        if let Some(name) = &self.body.queue_name {
            check_not_blank("queue_name", name)?;
        }
        check_settings(self.body.settings.as_ref())?;
        let params = [self.queue.id()];
        let call = Call::new(ops::EDIT_QUEUE, &params)
            .json(&self.body)?
            .options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

/// Builder returned by [`QueueHandle::delete`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct DeleteQueue {
    queue: QueueHandle,
    options: RequestOptions,
}

impl DeleteQueue {
    /// Sends the request.
    pub async fn send(self) -> Result<()> {
        let params = [self.queue.id()];
        let call = Call::new(ops::DELETE_QUEUE, &params).options(&self.options);
        // The envelope carries no result; whatever is there is not worth failing over.
        self.queue.client.execute::<IgnoredAny>(call).await?;
        Ok(())
    }
}

/// Builder returned by [`QueueHandle::metrics`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct GetMetrics {
    queue: QueueHandle,
    options: RequestOptions,
}

impl GetMetrics {
    /// Sends the request (asking for JSON: the endpoint can also stream events).
    pub async fn send(self) -> Result<QueueMetrics> {
        let params = [self.queue.id()];
        let call = Call::new(ops::GET_METRICS, &params).options(&self.options);
        Ok(self.queue.client.execute(call).await?.result)
    }
}

request_options!(
    ListQueues,
    FindQueue,
    CreateQueue,
    GetQueue,
    UpdateQueue,
    EditQueue,
    DeleteQueue,
    GetMetrics,
);

request_future!(ListQueues => Page<Queue>);
request_future!(FindQueue => Option<Queue>);
request_future!(CreateQueue => Queue);
request_future!(GetQueue => Queue);
request_future!(UpdateQueue => Queue);
request_future!(EditQueue => Queue);
request_future!(DeleteQueue => ());
request_future!(GetMetrics => QueueMetrics);
