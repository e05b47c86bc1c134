//! Handwritten additions to the queue models.

use super::{PurgeStatus, Queue};
use std::time::Duration;

impl Queue {
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

impl PurgeStatus {
    /// Whether the last purge has finished (`false` when the server did not say).
    pub fn is_completed(&self) -> bool {
        self.completed == Some(true)
    }
}
