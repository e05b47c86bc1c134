//! Event subscriptions: deliver events from other Cloudflare products (R2, KV, Workers
//! Builds, Workflows, …) to a queue.

use super::queues::{check_not_blank, check_paging};
use super::{RequestOptions, request_future, request_options};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits;
use crate::models::{
    CreateSubscriptionRequest, EventDestination, EventSource, EventSubscription, SortDirection,
    SubscriptionOrder, UpdateSubscriptionRequest,
};
use crate::ops;
use crate::pagination::{Page, PageStream, paginate};
use crate::transport::Call;

/// The account's event subscriptions, from [`Client::event_subscriptions`].
#[derive(Debug, Clone)]
pub struct EventSubscriptions {
    client: Client,
}

impl Client {
    /// The account's event subscriptions. No request is made.
    pub fn event_subscriptions(&self) -> EventSubscriptions {
        EventSubscriptions {
            client: self.clone(),
        }
    }
}

impl EventSubscriptions {
    /// Lists subscriptions: await it for one page, or call
    /// [`into_stream`](ListSubscriptions::into_stream) for all of them.
    pub fn list(&self) -> ListSubscriptions {
        ListSubscriptions {
            client: self.client.clone(),
            page: None,
            per_page: None,
            order: None,
            direction: None,
            options: RequestOptions::default(),
        }
    }

    /// Subscribes the queue `destination_queue_id` to `events` (such as
    /// `bucket.created`) from `source`. At least one event type is required.
    ///
    /// ```no_run
    /// # async fn f(client: cloudflare_queues::Client) -> cloudflare_queues::Result<()> {
    /// use cloudflare_queues::models::EventSource;
    /// let sub = client
    ///     .event_subscriptions()
    ///     .create("bucket-changes", EventSource::R2, "023e105f4ecef8ad9ca31a8372d0c353",
    ///             ["bucket.created", "bucket.deleted"])
    ///     .await?;
    /// println!("{} enabled: {}", sub.id, sub.enabled);
    /// # Ok(()) }
    /// ```
    pub fn create<I>(
        &self,
        name: impl Into<String>,
        source: EventSource,
        destination_queue_id: impl Into<String>,
        events: I,
    ) -> CreateSubscription
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        CreateSubscription {
            client: self.client.clone(),
            body: CreateSubscriptionRequest {
                destination: EventDestination::queue(destination_queue_id),
                enabled: None,
                events: events.into_iter().map(Into::into).collect(),
                name: name.into(),
                source,
            },
            options: RequestOptions::default(),
        }
    }

    /// Fetches one subscription.
    pub fn get(&self, subscription_id: impl Into<String>) -> GetSubscription {
        GetSubscription {
            client: self.client.clone(),
            id: subscription_id.into(),
            options: RequestOptions::default(),
        }
    }

    /// Changes a subscription's name, state, destination or events; only the fields set
    /// on the builder are sent. The source cannot be changed: delete and recreate.
    pub fn update(&self, subscription_id: impl Into<String>) -> UpdateSubscription {
        UpdateSubscription {
            client: self.client.clone(),
            id: subscription_id.into(),
            body: UpdateSubscriptionRequest::default(),
            events: None,
            options: RequestOptions::default(),
        }
    }

    /// Deletes a subscription; resolves to the subscription as it was.
    pub fn delete(&self, subscription_id: impl Into<String>) -> DeleteSubscription {
        DeleteSubscription {
            client: self.client.clone(),
            id: subscription_id.into(),
            options: RequestOptions::default(),
        }
    }
}

fn check_events(events: &[String]) -> Result<()> {
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            "at least one event type is required",
        ));
    }
    if let Some(i) = events.iter().position(|e| e.trim().is_empty()) {
        return Err(Error::invalid(format!("events[{i}]"), "must not be empty"));
    }
    Ok(())
}

fn check_subscription_id(id: &str) -> Result<()> {
    check_not_blank("subscription_id", id)
}

/// Builder returned by [`EventSubscriptions::list`].
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListSubscriptions {
    client: Client,
    page: Option<u32>,
    per_page: Option<u32>,
    order: Option<SubscriptionOrder>,
    direction: Option<SortDirection>,
    options: RequestOptions,
}

impl ListSubscriptions {
    /// The page to fetch, from 1 (server default 1). For
    /// [`into_stream`](Self::into_stream), the page to start from.
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }

    /// Subscriptions per page, 1 to 100 (server default 20).
    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = Some(per_page);
        self
    }

    /// Sort key (server default: name).
    pub fn order(mut self, order: SubscriptionOrder) -> Self {
        self.order = Some(order);
        self
    }

    /// Sort direction (server default: ascending).
    pub fn direction(mut self, direction: SortDirection) -> Self {
        self.direction = Some(direction);
        self
    }

    /// Fetches one page.
    pub async fn send(self) -> Result<Page<EventSubscription>> {
        check_paging(self.page, self.per_page, Some(limits::MAX_PER_PAGE))?;
        let call = Call::new(ops::LIST_SUBSCRIPTIONS, &[])
            .query("page", self.page)
            .query("per_page", self.per_page)
            .query("order", self.order.as_ref())
            .query("direction", self.direction.as_ref())
            .options(&self.options);
        let reply = self
            .client
            .execute::<Option<Vec<EventSubscription>>>(call)
            .await?;
        Ok(Page::new(
            reply.result.unwrap_or_default(),
            reply.result_info,
        ))
    }

    /// Every subscription, from [`page`](Self::page) (or 1) on, fetching pages as the
    /// stream is polled. See [`PageStream`] for when it stops.
    pub fn into_stream(self) -> PageStream<EventSubscription> {
        let first = self.page.unwrap_or(1);
        paginate(first, move |page| self.clone().page(page).send())
    }
}

/// Builder returned by [`EventSubscriptions::create`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateSubscription {
    client: Client,
    body: CreateSubscriptionRequest,
    options: RequestOptions,
}

impl CreateSubscription {
    /// Whether events are delivered from the start (the server enables new
    /// subscriptions when unset).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.body.enabled = Some(enabled);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<EventSubscription> {
        check_not_blank("name", &self.body.name)?;
        check_not_blank(
            "destination_queue_id",
            self.body.destination.queue_id().unwrap_or(""),
        )?;
        check_events(&self.body.events)?;
        let call = Call::new(ops::CREATE_SUBSCRIPTION, &[])
            .json(&self.body)?
            .options(&self.options);
        Ok(self.client.execute(call).await?.result)
    }
}

/// Builder returned by [`EventSubscriptions::get`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct GetSubscription {
    client: Client,
    id: String,
    options: RequestOptions,
}

impl GetSubscription {
    /// Sends the request.
    pub async fn send(self) -> Result<EventSubscription> {
        check_subscription_id(&self.id)?;
        let params = [self.id.as_str()];
        let call = Call::new(ops::GET_SUBSCRIPTION, &params).options(&self.options);
        Ok(self.client.execute(call).await?.result)
    }
}

/// Builder returned by [`EventSubscriptions::update`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct UpdateSubscription {
    client: Client,
    id: String,
    body: UpdateSubscriptionRequest,
    // Kept apart from `body`, whose `events` is left out when empty: an empty list set
    // here must be refused, not silently dropped.
    events: Option<Vec<String>>,
    options: RequestOptions,
}

impl UpdateSubscription {
    /// Renames the subscription.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.body.name = Some(name.into());
        self
    }

    /// Turns delivery on or off.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.body.enabled = Some(enabled);
        self
    }

    /// Sends the events to another queue, by id.
    pub fn destination_queue(mut self, queue_id: impl Into<String>) -> Self {
        self.body.destination = Some(EventDestination::queue(queue_id));
        self
    }

    /// Replaces the event types (at least one).
    pub fn events<I>(mut self, events: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.events = Some(events.into_iter().map(Into::into).collect());
        self
    }

    /// Sends the request.
    pub async fn send(mut self) -> Result<EventSubscription> {
        check_subscription_id(&self.id)?;
        if let Some(name) = &self.body.name {
            check_not_blank("name", name)?;
        }
        if let Some(queue_id) = self.body.destination.as_ref().and_then(|d| d.queue_id()) {
            check_not_blank("destination_queue_id", queue_id)?;
        }
        if let Some(events) = self.events.take() {
            check_events(&events)?;
            self.body.events = events;
        }
        let params = [self.id.as_str()];
        let call = Call::new(ops::UPDATE_SUBSCRIPTION, &params)
            .json(&self.body)?
            .options(&self.options);
        Ok(self.client.execute(call).await?.result)
    }
}

/// Builder returned by [`EventSubscriptions::delete`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct DeleteSubscription {
    client: Client,
    id: String,
    options: RequestOptions,
}

impl DeleteSubscription {
    /// Sends the request.
    pub async fn send(self) -> Result<EventSubscription> {
        check_subscription_id(&self.id)?;
        let params = [self.id.as_str()];
        let call = Call::new(ops::DELETE_SUBSCRIPTION, &params).options(&self.options);
        Ok(self.client.execute(call).await?.result)
    }
}

request_options!(
    ListSubscriptions,
    CreateSubscription,
    GetSubscription,
    UpdateSubscription,
    DeleteSubscription,
);

request_future!(ListSubscriptions => Page<EventSubscription>);
request_future!(CreateSubscription => EventSubscription);
request_future!(GetSubscription => EventSubscription);
request_future!(UpdateSubscription => EventSubscription);
request_future!(DeleteSubscription => EventSubscription);
