//! Documented Cloudflare Queues limits. The client checks input against them before
//! sending, and the local emulator enforces the same values.
//!
//! Sizes follow Cloudflare's convention that 1 KB is 1000 bytes.

use std::time::Duration;

/// Largest message body (128 KB). Cloudflare counts up to ~100 bytes of internal
/// metadata against this limit too, so a body within 100 bytes of it may still be
/// refused by the server with 10204.
pub const MAX_MESSAGE_BYTES: usize = 128_000;

/// Largest total body size of one batch publish (256 KB).
pub const MAX_BATCH_BYTES: usize = 256_000;

/// Most messages in one batch publish.
pub const MAX_BATCH_MESSAGES: usize = 100;

/// Most messages one pull can lease.
pub const MAX_PULL_BATCH: u32 = 100;

/// Most leases one extension request carries. Unpublished: the crate uses the pull and
/// ack batch size, and splits longer lists.
pub const MAX_EXTEND_BATCH: usize = 100;

/// Most messages a consumer may be configured to receive per batch.
pub const MAX_CONSUMER_BATCH: u32 = 100;

/// Most items one page of a paginated listing may hold (`per_page`).
pub const MAX_PER_PAGE: u32 = 100;

/// Longest lease of a pulled message.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// Longest delay when publishing or retrying a message, and longest queue delivery delay.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);

/// Shortest message retention period.
pub const MIN_RETENTION: Duration = Duration::from_secs(60);

/// Longest message retention period (14 days).
pub const MAX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// Default message retention period (4 days).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(4 * 24 * 3600);

/// Most retries a consumer may be configured with.
pub const MAX_RETRIES: u32 = 100;

/// Longest batch wait of a Worker consumer.
pub const MAX_WAIT_TIME: Duration = Duration::from_secs(60);

/// Per-queue message throughput Cloudflare allows (messages per second).
pub const QUEUE_MESSAGES_PER_SECOND: u32 = 5_000;

/// Checks `value` against an inclusive range, naming the field and the range on failure.
pub(crate) fn check_duration(
    field: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> crate::Result<()> {
    if value < min || value > max {
        return Err(crate::Error::invalid(
            field,
            format!(
                "{} is out of range; allowed {} to {}",
                human(value),
                human(min),
                human(max)
            ),
        ));
    }
    Ok(())
}

/// Checks `value` against an inclusive range, naming the field and the range on failure.
pub(crate) fn check_count(field: &str, value: u32, min: u32, max: u32) -> crate::Result<()> {
    if value < min || value > max {
        return Err(crate::Error::invalid(
            field,
            format!("{value} is out of range; allowed {min} to {max}"),
        ));
    }
    Ok(())
}

/// `90s` -> `1m 30s`: durations as people write them, for error messages.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 || ms == 0 {
        return format!("{ms} ms");
    }
    let mut secs = ms / 1000;
    let mut out = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(MAX_RETENTION), "14d");
        assert_eq!(human(Duration::from_millis(1500)), "1500 ms");
        assert_eq!(human(Duration::ZERO), "0 ms");
    }

    #[test]
    fn range_errors_name_field_and_range() {
        let err = check_duration(
            "visibility_timeout",
            Duration::from_secs(13 * 3600),
            Duration::from_millis(1),
            MAX_VISIBILITY_TIMEOUT,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid input `visibility_timeout`: 13h is out of range; allowed 1 ms to 12h"
        );
        assert!(check_count("batch_size", 0, 1, 100).is_err());
        assert!(check_count("batch_size", 100, 1, 100).is_ok());
    }
}
