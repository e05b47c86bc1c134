//! [`Publisher`]: a batching, flow-controlled producer that stays under a queue's rate
//! ceiling, and [`Redrive`], which moves a queue's messages (typically a dead-letter
//! queue's) to another queue through one.
//!
//! ```no_run
//! use cloudflare_queues::Client;
//! use cloudflare_queues::models::Message;
//!
//! # async fn run() -> cloudflare_queues::Result<()> {
//! let client = Client::from_env()?;
//! let publisher = client.queue("023e105f4ecef8ad9ca31a8372d0c353").publisher().build()?;
//!
//! // Many tasks publish; their messages share batch requests.
//! let mut tasks = Vec::new();
//! for job in 0..100 {
//!     let publisher = publisher.clone();
//!     tasks.push(tokio::spawn(async move {
//!         publisher.publish(Message::json(&serde_json::json!({ "job": job }))?).await
//!     }));
//! }
//! for task in tasks {
//!     let published = task.await.map_err(|e| cloudflare_queues::Error::Config(e.to_string()))??;
//!     assert!(!published.possibly_duplicated());
//! }
//! let report = publisher.shutdown().await;
//! println!("{} messages in {} requests", report.published, report.requests);
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! * **Batching.** [`Publisher::publish`] encodes and checks the message, takes room
//!   from flow control, and adds it to the open batch. A batch is closed when it holds
//!   `max_messages` or the next message would take the encoded request past
//!   `max_bytes` (by `publish`, which hands it to one background task), or `max_delay`
//!   after its first message arrived (by the task). The task sends batches in order, at
//!   most `max_concurrent_requests` at once. The work per message is done in the
//!   caller; the task is woken once per batch.
//! * **Flow control.** At most `max_outstanding_messages` and `max_outstanding_bytes`
//!   await the server. When full, `publish` waits (in order); `try_publish` says
//!   [`Error::PublisherFull`] at once.
//! * **Staying under the ceiling.** An optional token bucket per queue
//!   (`rate_limit(messages_per_second)`), and a throttle per queue: a 429 pauses every
//!   batch for that queue until `Retry-After`, then the batch is sent again (a 429 means
//!   nothing was stored). 10251, 10252 and 10253 fail the batch's messages with that
//!   error.
//! * **At least once** by default: a batch whose outcome is unknown (a timeout, a
//!   connection lost after sending) is sent again, and its messages' [`Published`] say
//!   they may be duplicated. `at_most_once()` fails them with
//!   [`Error::MaybeStored`] instead. `send` and `send_batch`
//!   never resend an ambiguous publish; this is the one place that does, because a
//!   publisher's caller has handed the message over and expects it delivered.
//! * **Several queues.** [`Client::publisher_for`](crate::Client::publisher_for) spreads
//!   batches over queues round-robin, skipping throttled ones, each with its own rate
//!   limit.
//!
//! Files: `builder.rs` and `config.rs` (builder and settings), `shared.rs` (the open
//! batch, batches, the task's commands), `outcome.rs` (each batch's outcomes, which
//! `PublishFuture` polls), `batcher.rs` (the background task), `sender.rs` (one batch
//! request and its retries), `flow.rs` (flow control), `lane.rs`
//! (a queue's throttle and rate limit), `report.rs` (counters, stats, report),
//! `redrive.rs` (moving messages between queues).

mod batcher;
mod builder;
mod config;
mod flow;
mod lane;
mod outcome;
mod pusher;
mod redrive;
mod report;
mod sender;
mod shared;
#[cfg(test)]
mod tests;

pub use builder::PublisherBuilder;
pub use redrive::{Redrive, RedriveProgress, RedriveReport};
pub use report::{PublisherReport, PublisherStats};

use crate::error::{Error, Result};
use crate::models::Message;
use flow::Reserve;
use futures::future::BoxFuture;
use outcome::Outcomes;
use report::Counters;
use shared::{Command, Pushed};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// A message the server has stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    queue_id: Arc<str>,
    attempts: u32,
    possibly_duplicated: bool,
}

impl Published {
    /// The queue it was stored in (one of a sharded publisher's queues).
    pub fn queue_id(&self) -> &str {
        &self.queue_id
    }

    /// Batch requests that carried it, the successful one included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether an earlier request carrying it had an unknown outcome, so the queue may
    /// hold it twice (at-least-once). Consumers should be idempotent anyway.
    pub fn possibly_duplicated(&self) -> bool {
        self.possibly_duplicated
    }
}

/// A batching, flow-controlled publisher for one queue or several. A cheap handle:
/// clones share one background task. Build it with
/// [`QueueHandle::publisher`](crate::QueueHandle::publisher) or
/// [`Client::publisher_for`](crate::Client::publisher_for).
///
/// Dropping every handle without [`shutdown`](Publisher::shutdown) does not lose what
/// was accepted: the background task sends it all and then stops, as long as the Tokio
/// runtime keeps running. A runtime that shuts down first takes the task with it, so
/// call `shutdown` (or `flush`) before leaving `main`.
#[derive(Debug, Clone)]
pub struct Publisher {
    handle: Arc<Handle>,
}

/// What every clone shares. Its drop closes the command channel, which tells the task to
/// send what it holds and stop.
#[derive(Debug)]
struct Handle {
    tx: mpsc::UnboundedSender<Command>,
    shared: Arc<shared::Shared>,
}

impl Publisher {
    /// Publishes `message`: resolves once the server has stored it, or with the error
    /// that stopped it.
    ///
    /// The message is checked at once: over 128 KB (or with a delay over 24 h) it is
    /// [`Error::InvalidInput`] and nothing is sent; so is one whose encoding alone would
    /// not fit in a request of `max_bytes`. If flow control has room, the message is
    /// accepted right away, before the future is polled, and dropping the future does not
    /// withdraw it. Otherwise the future waits for room (first come, first served) and
    /// the message is accepted when room is found.
    pub fn publish(&self, message: impl Into<Message>) -> PublishFuture {
        let message = message.into();
        SCRATCH.with_borrow_mut(|encoded| {
            if let Err(err) = self.prepare(&message, encoded) {
                return PublishFuture::ready(Err(err));
            }
            match self.handle.shared.flow.try_reserve(encoded.len()) {
                Reserve::Room(room) => self.enqueue(encoded, room),
                Reserve::Closed => PublishFuture::ready(Err(Error::PublisherClosed)),
                Reserve::Full => {
                    let this = self.clone();
                    let encoded = encoded.clone();
                    PublishFuture {
                        state: State::Waiting(Box::pin(async move {
                            let Some(room) = this.handle.shared.flow.reserve(encoded.len()).await
                            else {
                                return Err(Error::PublisherClosed);
                            };
                            let accepted = this.enqueue(&encoded, room);
                            // Holding no handle while waiting lets the task stop once
                            // every publisher is dropped.
                            drop(this);
                            accepted.await
                        })),
                    }
                }
            }
        })
    }

    /// Like [`publish`](Publisher::publish), but never waits for room: when flow control
    /// is full it returns [`Error::PublisherFull`] at once (and invalid input or a shut
    /// down publisher as errors too). On `Ok` the message is accepted; the future
    /// resolves when the server has stored it.
    pub fn try_publish(&self, message: impl Into<Message>) -> Result<PublishFuture> {
        let message = message.into();
        SCRATCH.with_borrow_mut(|encoded| {
            self.prepare(&message, encoded)?;
            match self.handle.shared.flow.try_reserve(encoded.len()) {
                Reserve::Room(room) => Ok(self.enqueue(encoded, room)),
                Reserve::Closed => Err(Error::PublisherClosed),
                Reserve::Full => Err(Error::PublisherFull {
                    max_messages: self.handle.shared.cfg.max_outstanding_messages,
                    max_bytes: self.handle.shared.cfg.max_outstanding_bytes,
                }),
            }
        })
    }

    /// Waits until every message accepted before this call has its outcome (stored or
    /// failed). Partial batches are sent at once rather than after `max_delay`.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.handle.tx.send(Command::Flush(tx)).is_ok() {
            let _ = rx.await;
        } else {
            let _ = self
                .handle
                .shared
                .report
                .subscribe()
                .wait_for(Option::is_some)
                .await;
        }
    }

    /// Stops accepting messages (later `publish` calls fail with
    /// [`Error::PublisherClosed`], and so do calls waiting for room), sends everything
    /// accepted, waits for every outcome and returns the report. Every caller, from any
    /// clone, gets the same report; cancelling the call does not stop the shutdown.
    pub async fn shutdown(&self) -> PublisherReport {
        let shared = &self.handle.shared;
        shared.begin_close();
        let _ = self.handle.tx.send(Command::Close);
        let mut report = shared.report.subscribe();
        // The task always publishes its report before it ends; if it was torn down (its
        // runtime stopped), fall back to the counters.
        let done = report
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|r| r.clone());
        done.unwrap_or_else(|| shared.report_now())
    }

    /// A snapshot of the counters. Cheap: a few atomic loads.
    pub fn stats(&self) -> PublisherStats {
        self.handle.shared.stats()
    }

    /// The queues this publisher sends to, in round-robin order.
    pub fn queue_ids(&self) -> Vec<&str> {
        self.handle
            .shared
            .lanes
            .iter()
            .map(|lane| &*lane.id)
            .collect()
    }

    /// Checks a message and encodes it into `encoded`; nothing is sent on failure.
    fn prepare(&self, message: &Message, encoded: &mut Vec<u8>) -> Result<()> {
        if self.handle.shared.is_closing() {
            return Err(Error::PublisherClosed);
        }
        message.validate("message")?;
        crate::api::encode_message_into(message, encoded)?;
        let max = self.handle.shared.cfg.max_bytes;
        let alone = crate::api::batch_request_len(1, encoded.len());
        if alone > max {
            return Err(Error::invalid(
                "message",
                format!(
                    "encoded for the request it takes {alone} bytes (JSON escapes included), over the publisher's max_bytes of {max}"
                ),
            ));
        }
        Ok(())
    }

    fn enqueue(&self, encoded: &[u8], room: flow::Room) -> PublishFuture {
        let shared = &self.handle.shared;
        let tx = &self.handle.tx;
        // A batch closed here is sent to the task under the lock, so that batches reach
        // it in the order their messages arrived. A send fails only once the task is
        // gone; the batch, dropped, then tells its callers so.
        let pushed = shared.open().push(
            encoded,
            room,
            shared.batch_cap,
            shared.cfg.max_bytes,
            |batch| {
                let _ = tx.send(Command::Batch(batch));
            },
        );
        match pushed {
            Pushed::Added {
                outcomes,
                slot,
                opened,
            } => {
                Counters::add(&shared.counters.accepted, 1);
                if opened {
                    // The task times the new batch's `max_delay` from now on.
                    let _ = tx.send(Command::Opened);
                }
                PublishFuture {
                    state: State::Accepted(outcomes, slot),
                }
            }
            // Shut down since the check in `prepare`; the room was given back.
            Pushed::Closed => PublishFuture::ready(Err(Error::PublisherClosed)),
        }
    }
}

thread_local! {
    /// Where `publish` encodes a message before copying it into the open batch: one
    /// buffer per thread, reused, instead of an allocation per message.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The outcome of one [`Publisher::publish`]: resolves to [`Published`] once the server
/// has stored the message, or to the error that stopped it.
#[must_use = "a PublishFuture tells whether the message was stored"]
pub struct PublishFuture {
    state: State,
}

enum State {
    Done(Option<Result<Published>>),
    /// Accepted: the outcome will be in the batch's slot.
    Accepted(Arc<Outcomes>, usize),
    Waiting(BoxFuture<'static, Result<Published>>),
}

impl PublishFuture {
    fn ready(result: Result<Published>) -> Self {
        PublishFuture {
            state: State::Done(Some(result)),
        }
    }
}

impl std::fmt::Debug for PublishFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Done(_) => "done",
            State::Accepted(..) => "accepted",
            State::Waiting(_) => "waiting for room",
        };
        f.debug_struct("PublishFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for PublishFuture {
    type Output = Result<Published>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Done(result) => {
                Poll::Ready(result.take().unwrap_or(Err(Error::PublisherClosed)))
            }
            State::Waiting(fut) => fut.as_mut().poll(cx),
            State::Accepted(outcomes, slot) => outcomes.poll(*slot, cx),
        }
    }
}
