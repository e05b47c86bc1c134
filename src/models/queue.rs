//! Handwritten additions to the queue models.

use super::{PurgeStatus, Queue, QueueSettings};
use crate::error::Result;
use crate::limits;
use std::time::Duration;

impl Queue {
    /// The queue's id (32 hexadecimal characters), for [`Client::queue`](crate::Client::queue).
    ///
    /// Cloudflare sends it with every queue; should a response lack it, this is empty
    /// (and a handle made from it fails each request with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput)). The field
    /// [`queue_id`](Self::queue_id) keeps the difference.
    pub fn id(&self) -> &str {
        self.queue_id.as_deref().unwrap_or_default()
    }

    /// The queue's name, unique in the account (empty if a response lacked it, which
    /// Cloudflare's do not).
    pub fn name(&self) -> &str {
        self.queue_name.as_deref().unwrap_or_default()
    }

    /// Whether delivery to consumers is paused (`false` when the server did not say).
    pub fn delivery_paused(&self) -> bool {
        self.settings
            .as_ref()
            .and_then(|s| s.delivery_paused)
            .unwrap_or(false)
    }

    /// The queue's delivery delay, when the server reported one.
    pub fn delivery_delay(&self) -> Option<Duration> {
        self.settings.as_ref()?.delivery_delay
    }

    /// The queue's message retention period, when the server reported one.
    pub fn message_retention_period(&self) -> Option<Duration> {
        self.settings.as_ref()?.message_retention_period
    }
}

impl QueueSettings {
    /// Checks the settings against the documented limits (delivery delay 0 to 24 h,
    /// retention 60 s to 14 days). The client checks before sending; the emulator
    /// answers the same rules with a 400.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(d) = self.delivery_delay {
            limits::check_duration("delivery_delay", d, Duration::ZERO, limits::MAX_DELAY)?;
        }
        if let Some(r) = self.message_retention_period {
            limits::check_duration(
                "message_retention_period",
                r,
                limits::MIN_RETENTION,
                limits::MAX_RETENTION,
            )?;
        }
        Ok(())
    }
}

impl PurgeStatus {
    /// Whether the last purge has finished (`false` when the server did not say).
    pub fn is_completed(&self) -> bool {
        self.completed == Some(true)
    }
}
