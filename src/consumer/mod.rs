//! [`PullConsumer`]: a long-running HTTP pull consumer with batched acks, backoff and
//! graceful shutdown.
//!
//! ```no_run
//! use cloudflare_queues::Client;
//! use cloudflare_queues::consumer::{Outcome, ShutdownMode};
//! use std::time::Duration;
//!
//! # async fn run() -> cloudflare_queues::Result<()> {
//! let client = Client::from_env()?;
//! let consumer = client
//!     .queue("023e105f4ecef8ad9ca31a8372d0c353")
//!     .pull_consumer()
//!     .visibility_timeout(Duration::from_secs(60))
//!     .max_lease(Duration::from_secs(3600))
//!     .max_in_flight(64)
//!     .build()?;
//!
//! // Stop on Ctrl-C: finish running handlers, flush every ack, release the rest.
//! let shutdown = consumer.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     shutdown.shutdown(ShutdownMode::drain(Duration::from_secs(30))).await;
//! });
//!
//! let report = consumer
//!     .run(|message| async move {
//!         match message.json::<serde_json::Value>() {
//!             Ok(job) => {
//!                 println!("{}: {job}", message.id());
//!                 Outcome::Ack
//!             }
//!             Err(_) => Outcome::retry_after(Duration::from_secs(60)),
//!         }
//!     })
//!     .await?;
//! println!("{report:?}");
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! * **Leases of running jobs are extended.** While a delivery handed to the application
//!   is undecided, its lease is renewed (`POST …/messages/extend`) before it runs out, up
//!   to `max_lease`; settlements use the newest lease id. So the visibility timeout can
//!   stay short (fast recovery after a crash) whatever a job's length.
//! * **Pull only what can start.** A message waiting in a local buffer spends its lease.
//!   The consumer holds at most `max_in_flight` undecided deliveries and pulls only for
//!   free slots, with up to `max_concurrent_pulls` pulls in flight. A delivery whose
//!   lease is nearly spent before it reaches the application is released, not handed
//!   out.
//! * **Batched settlement.** `ack`, `retry` and `release` only enqueue; one background
//!   flusher sends them in batches (100 entries or 100 ms by default, sooner when a lease
//!   is about to end), retries failed requests, and checks the counts Cloudflare returns.
//! * **Backoff.** Empty pulls back off exponentially (one puller keeps polling an idle
//!   queue); 429s throttle every puller until `Retry-After`; a paused queue (409) is a
//!   quiet state polled slowly; 5xx and network errors back off with jitter and are logged
//!   once per state change. Fatal errors (queue not found, bad token, no HTTP pull
//!   consumer) end the stream with that error.
//! * **Shutdown.** [`ShutdownHandle::shutdown`] stops pulling, lets running work finish
//!   (drain) or not (release now), settles everything, and returns a [`ShutdownReport`]
//!   whose counts add up to the deliveries pulled.
//! * **At least once.** Nothing is acknowledged unless the application said so. A
//!   delivery dropped undecided is released. Messages can still be delivered twice (a
//!   lease expiring, an ack response lost), so make processing idempotent with
//!   [`ReceivedMessage::id`].

// The parts, each in its own file. Imports run one way: the public faces (builder,
// handle, runner, stream, shutdown) use the engine; the engine runs the loops (puller,
// flusher, extender);
// the loops and deliveries share the core; the core is built on the leaves (config,
// report, decision, backend, ledger). See ARCHITECTURE.md for the picture.
mod backend;
mod builder;
mod config;
mod core;
mod decision;
mod delivery;
mod engine;
mod extender;
mod flusher;
mod handle;
mod handout;
mod ledger;
mod puller;
mod report;
mod runner;
mod shutdown;
mod stream;

#[cfg(test)]
mod extender_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod handler_tests;
#[cfg(test)]
mod intake_tests;
#[cfg(test)]
mod shutdown_tests;
#[cfg(test)]
mod supervision_tests;
#[cfg(test)]
mod test_support;

pub use builder::PullConsumerBuilder;
pub use config::{AckBatching, DecodeErrorPolicy, DropPolicy, ShutdownMode};
#[cfg(feature = "testing")]
pub use decision::Decided;
pub use decision::{HandlerError, IntoOutcome, Outcome, SettleOutcome, Settled, SettledFuture};
// For `crate::testing`: building test deliveries and deciding like the runner.
#[cfg(feature = "testing")]
pub(crate) use decision::{Decision, Failure, ProbeSlot, panic_message};
#[cfg(feature = "testing")]
pub(crate) use delivery::Ticket;
pub use delivery::{Delivery, ReceivedMessage};
pub use handle::PullConsumer;
pub use report::{ConsumerState, ShutdownReport, Stats};
pub use shutdown::ShutdownHandle;
pub use stream::DeliveryStream;
