//! Request and response types.
//!
//! Most types are generated from the crate's own OpenAPI description of the Queues REST
//! API, field names as on the wire. Unknown fields are ignored and missing ones default,
//! so a newer server cannot break decoding; enums and tagged unions keep values this
//! crate does not know in an `Unknown` variant. Fields are public and mostly `Option`al;
//! what Cloudflare always sends also has an accessor ([`Queue::id`],
//! [`Consumer::id`], [`EventSubscription::id`]). This module adds handwritten helpers
//! where the wire format needs interpretation: message bodies by content type, durations, metrics accessors, and
//! accessors and constructors for the admin-plane types (consumers, queues, event
//! subscriptions).

pub use crate::codec::AckWarning;
pub use crate::generated::models::*;

mod consumer;
mod extend;
mod message;
mod metadata;
mod pull;
mod queue;
mod subscription;

pub use consumer::MaxConcurrency;
pub use extend::{ExtendResult, ExtendedLease, ExtensionOutcome, match_extensions};
pub use message::ContentType;
pub(crate) use message::{body_error, decode_payload, millis_to_time, payload_json, payload_text};
pub use metadata::{CONTENT_TYPE_KEY, MessageMetadata, SOURCE_KEY};
pub use pull::{PullResult, RejectedMessage};
pub use subscription::UNPUBLISHED_SOURCE_KINDS;
