//! Typed async client for [Cloudflare Queues](https://developers.cloudflare.com/queues/)
//! over its REST API: publish, pull and acknowledge messages from outside Workers, run a
//! batching, back-pressured pull consumer, and manage queues, consumers and event
//! subscriptions. A local emulator of the API (feature `emulator`) lets all of it, and
//! your own service's tests, run without a Cloudflare account.
//!
//! ```no_run
//! use cloudflare_queues::{Client, models::Message};
//! use std::time::Duration;
//!
//! # async fn run() -> cloudflare_queues::Result<()> {
//! // CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID
//! let client = Client::from_env()?;
//! let queue = client.try_queue("023e105f4ecef8ad9ca31a8372d0c353")?;
//!
//! queue.send(Message::json(&serde_json::json!({"order": 42}))?).await?;
//!
//! let batch = queue.pull().batch_size(50).visibility_timeout(Duration::from_secs(60)).await?;
//! for message in &batch.messages {
//!     let order: serde_json::Value = message.json()?;
//!     println!("{} (attempt {}): {order}", message.id, message.attempts);
//! }
//! queue.ack().acks(batch.messages.iter().map(|m| m.lease_id.clone())).await?;
//! # Ok(()) }
//! ```
//!
//! # Where to start
//!
//! | To | Use |
//! |---|---|
//! | configure a client (token, account, timeouts, retries) | [`Client::builder`], [`Client::from_env`] |
//! | publish, pull, acknowledge | [`QueueHandle`] from [`Client::queue`] or [`Client::try_queue`] |
//! | consume continuously, with bounded concurrency and batched acks | [`consumer::PullConsumer`], from `queue.pull_consumer()` |
//! | list, create and find queues | [`Queues`], from [`Client::queues`] |
//! | manage a queue's consumers | [`Consumers`], from [`QueueHandle::consumers`] |
//! | subscribe a queue to events of other products | [`EventSubscriptions`], from [`Client::event_subscriptions`] |
//! | decode event bodies (R2 notifications, subscription events) | [`events`] |
//! | test without an account | [`emulator`] |
//!
//! Every call follows one convention: required inputs are arguments of the method that
//! starts it, optional ones are setters on the returned builder (the types in
//! [`requests`]), and the builder is awaited. Wire types live in [`models`]; the table of
//! API operations is [`ops`].
//!
//! # Errors, retries and timeouts
//!
//! Every fallible call returns [`Result`] with one [`Error`] type. API errors carry the
//! HTTP status, every typed [`ErrorCode`], the `cf-ray` id and any `Retry-After`; errors
//! from a request say which queue (consumer, subscription) it was about
//! ([`Error::queue_id`], [`RequestLabel`]), never which account. A variant either shows
//! its cause or returns it from `source()`, so chain printers show each cause once.
//!
//! The [`RetryPolicy`] (default: 4 attempts, exponential backoff with jitter, server
//! `Retry-After` honoured up to 60 s) classifies by Queues error code before HTTP
//! status, and never repeats a publish that may have been stored. Two timeouts bound a
//! call, each set on the [`ClientBuilder`] and overridable on any request builder:
//! `timeout` for each attempt (default 60 s) and `total_timeout` for the whole call,
//! backoff sleeps included (default none), which ends in [`Error::TotalTimeout`].
//!
//! # Testing
//!
//! With the `emulator` feature, [`emulator::Emulator`] serves the Queues REST API on
//! 127.0.0.1 with real state (leases, retries, dead-lettering, purges), and helps tests:
//! it shows every message's body and history, waits until messages are acknowledged,
//! injects faults per operation or per queue, and follows Tokio's clock, so a test under
//! `tokio::time::pause()` moves it with `tokio::time::advance`.
//!
//! # Feature flags
//!
//! * `rustls` (default): TLS through rustls. `native-tls`: the platform's TLS instead.
//! * `emulator`: the local emulator ([`emulator`], axum) and the
//!   `cloudflare-queues-emulator` program.
//! * `metrics`: the client's request counters and latencies through the
//!   [`metrics`](https://docs.rs/metrics) facade: `cloudflare_queues_client_requests_total`,
//!   `cloudflare_queues_client_request_duration_seconds`,
//!   `cloudflare_queues_client_retries_total`, `cloudflare_queues_client_errors_total` and
//!   `cloudflare_queues_client_call_duration_seconds`, labelled by `operation` (an
//!   [`ops`] id), `status` class, error `kind` or `outcome`.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod auth;
mod client;
mod codec;
pub mod consumer;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
mod envelope;
mod error;
pub mod events;
mod generated;
pub mod limits;
mod metrics;
pub mod models;
mod pagination;
pub mod publisher;
pub mod requests;
mod retry;
#[cfg(test)]
mod server_input_tests;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod transport;

pub use api::{Consumers, EventSubscriptions, QueueHandle, Queues};
pub use auth::{Credentials, Secret};
pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL};
pub use error::{
    ApiError, BodyError, BodyErrorKind, DecodeError, Error, ErrorCode, ErrorDetail, ErrorSource,
    RequestLabel, Result,
};
pub use models::ops;
pub use pagination::{Page, PageStream};
pub use retry::{Backoff, RetryPolicy};
pub use transport::Operation;

// README.md's code blocks are compiled as doctests, so the README cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The `reqwest` version this crate is built on, for [`ClientBuilder::http_client`].
pub use reqwest;
