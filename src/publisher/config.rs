//! A publisher's settings, as checked by
//! [`PublisherBuilder`](super::PublisherBuilder).

use crate::retry::Backoff;
use std::time::Duration;

/// A publisher's settings (see [`PublisherBuilder`](super::PublisherBuilder) for each).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_delay: Duration,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) max_outstanding_messages: usize,
    pub(crate) max_outstanding_bytes: usize,
    pub(crate) at_most_once: bool,
    pub(crate) retry_backoff: Backoff,
    pub(crate) max_retry_after: Duration,
    pub(crate) give_up_after: Duration,
}
