//! Typed async client for [Cloudflare Queues](https://developers.cloudflare.com/queues/)
//! over its REST API: publish, pull and acknowledge messages from outside Workers, and
//! manage queues, consumers and event subscriptions ([`Client::queues`],
//! [`QueueHandle::consumers`], [`Client::event_subscriptions`]).
//!
//! ```no_run
//! use cloudflare_queues::{Client, models::Message};
//! use std::time::Duration;
//!
//! # async fn run() -> cloudflare_queues::Result<()> {
//! // CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID
//! let client = Client::from_env()?;
//! let queue = client.queue("023e105f4ecef8ad9ca31a8372d0c353");
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
//! Every request goes through one transport path: credentials, the v4 envelope, typed
//! [`Error`]s, and the [`RetryPolicy`]. See `README.md` and `ARCHITECTURE.md` in the
//! repository for the design.

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
pub mod requests;
mod retry;
#[cfg(test)]
mod server_input_tests;
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
