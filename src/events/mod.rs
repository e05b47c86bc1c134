//! Typed bodies of the messages other Cloudflare products put on a queue.
//!
//! * [`Event`]: what an [event subscription](crate::EventSubscriptions) delivers. Every
//!   event has the same envelope (`type` such as `cf.r2.bucket.created`, `source`,
//!   `payload`, `metadata`); [`EventPayload`] has one typed variant per event type
//!   Cloudflare documents ([`DOCUMENTED_EVENT_TYPES`]).
//! * [`R2Notification`]: what an R2 bucket's event notification rule sends when an
//!   object is written or deleted.
//!
//! Both decode from a message body with `json()`, on pulled messages and on
//! [`Delivery`](crate::consumer::Delivery)s alike:
//!
//! ```no_run
//! # async fn f(queue: cloudflare_queues::QueueHandle) -> cloudflare_queues::Result<()> {
//! use cloudflare_queues::events::{Event, EventPayload};
//!
//! let batch = queue.pull().await?;
//! for message in &batch.messages {
//!     let event: Event = message.json()?;
//!     match &event.payload {
//!         EventPayload::WorkersBuildFailed(build) => {
//!             println!("build {:?} of {:?} failed", build.build_uuid, event.source.worker_name);
//!         }
//!         EventPayload::Unknown(raw) => println!("{} (not typed here): {raw}", event.event_type),
//!         other => println!("{:?}", other.event_type()),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! A new event type, or a new field, never makes decoding fail: an event type this crate
//! does not know (or a payload that does not have its documented shape) is kept whole as
//! [`EventPayload::Unknown`], and fields this crate does not know are kept in each
//! type's `extra` map. Only a body that is not an event at all (not a JSON object, or
//! without a string `type`) is an error, so `Event` and `R2Notification` can be told
//! apart by trying one and then the other.

mod event;
mod payloads;
mod r2;

pub use event::{Event, Metadata, Source};
pub use payloads::*;
pub use r2::{R2Action, R2CopySource, R2Notification, R2Object};
