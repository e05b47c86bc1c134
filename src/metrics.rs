//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! Every metric the crate records is named here and recorded through these helpers, so
//! that the names, their labels and README's list stay in one place. Without the feature
//! the helpers are empty functions the compiler removes; callers never need a `cfg`.
//!
//! The crate installs no recorder: an application plugs in the exporter it uses
//! (Prometheus, OpenTelemetry, statsd) and these metrics appear there.
//!
//! Labels have a small, fixed set of values (operation ids, status classes, error kinds),
//! never an id, so that a metrics backend is not flooded with series.

use std::time::Duration;

/// HTTP attempts made, by `operation` and `status` (`2xx`, `4xx`, `5xx`, …, or `none`
/// when no response arrived).
pub(crate) const CLIENT_REQUESTS: &str = "cloudflare_queues_client_requests_total";
/// Seconds per HTTP attempt, from sending to the end of the body, by `operation` and
/// `status`.
pub(crate) const CLIENT_REQUEST_DURATION: &str =
    "cloudflare_queues_client_request_duration_seconds";
/// Retries scheduled by the retry policy, by `operation`.
pub(crate) const CLIENT_RETRIES: &str = "cloudflare_queues_client_retries_total";
/// Calls that failed, after any retries, by `operation` and error `kind`.
pub(crate) const CLIENT_ERRORS: &str = "cloudflare_queues_client_errors_total";
/// Seconds per call, retries and backoff sleeps included, by `operation` and `outcome`
/// (`ok` or `error`).
pub(crate) const CLIENT_CALL_DURATION: &str = "cloudflare_queues_client_call_duration_seconds";

/// The status label of an HTTP status: `2xx`, `4xx`, …; `none` without a response.
pub(crate) fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "none",
    }
}

/// One HTTP attempt of `operation` ended with `status` after `elapsed`.
pub(crate) fn client_attempt(operation: &'static str, status: Option<u16>, elapsed: Duration) {
    let labels = [("operation", operation), ("status", status_class(status))];
    increment(CLIENT_REQUESTS, &labels, 1);
    record(CLIENT_REQUEST_DURATION, &labels, elapsed.as_secs_f64());
}

/// The retry policy scheduled another attempt of `operation`.
pub(crate) fn client_retry(operation: &'static str) {
    increment(CLIENT_RETRIES, &[("operation", operation)], 1);
}

/// A call of `operation` finished after `elapsed`; `error` names the kind of its error.
pub(crate) fn client_call(operation: &'static str, error: Option<&'static str>, elapsed: Duration) {
    let outcome = if error.is_some() { "error" } else { "ok" };
    record(
        CLIENT_CALL_DURATION,
        &[("operation", operation), ("outcome", outcome)],
        elapsed.as_secs_f64(),
    );
    if let Some(kind) = error {
        increment(
            CLIENT_ERRORS,
            &[("operation", operation), ("kind", kind)],
            1,
        );
    }
}

#[cfg(feature = "metrics")]
mod facade {
    use std::sync::Once;

    /// Labels as the helpers take them: a fixed set of `(name, value)` pairs.
    pub(crate) type Labels<'a> = &'a [(&'static str, &'static str)];

    /// Adds `by` to the counter `name`.
    pub(crate) fn increment(name: &'static str, labels: Labels<'_>, by: u64) {
        describe();
        ::metrics::counter!(name, labels).increment(by);
    }

    /// Records `value` in the histogram `name`.
    pub(crate) fn record(name: &'static str, labels: Labels<'_>, value: f64) {
        describe();
        ::metrics::histogram!(name, labels).record(value);
    }

    /// Sets the gauge `name` to `value`.
    #[allow(dead_code)] // For the consumer's gauges.
    pub(crate) fn gauge(name: &'static str, labels: Labels<'_>, value: f64) {
        describe();
        ::metrics::gauge!(name, labels).set(value);
    }

    /// Describes the client's metrics to the recorder once, for exporters that publish
    /// help texts and units (Prometheus' `# HELP`).
    fn describe() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            use ::metrics::Unit;
            ::metrics::describe_counter!(
                super::CLIENT_REQUESTS,
                Unit::Count,
                "HTTP attempts made to the Cloudflare Queues API"
            );
            ::metrics::describe_histogram!(
                super::CLIENT_REQUEST_DURATION,
                Unit::Seconds,
                "Duration of one HTTP attempt, body included"
            );
            ::metrics::describe_counter!(
                super::CLIENT_RETRIES,
                Unit::Count,
                "Retries scheduled by the retry policy"
            );
            ::metrics::describe_counter!(
                super::CLIENT_ERRORS,
                Unit::Count,
                "Calls that failed after any retries, by error kind"
            );
            ::metrics::describe_histogram!(
                super::CLIENT_CALL_DURATION,
                Unit::Seconds,
                "Duration of a call, retries and backoff sleeps included"
            );
        });
    }
}

#[cfg(not(feature = "metrics"))]
mod facade {
    /// Labels as the helpers take them: a fixed set of `(name, value)` pairs.
    pub(crate) type Labels<'a> = &'a [(&'static str, &'static str)];

    /// Does nothing: the `metrics` feature is off.
    #[inline]
    pub(crate) fn increment(_name: &'static str, _labels: Labels<'_>, _by: u64) {}

    /// Does nothing: the `metrics` feature is off.
    #[inline]
    pub(crate) fn record(_name: &'static str, _labels: Labels<'_>, _value: f64) {}

    /// Does nothing: the `metrics` feature is off.
    #[allow(dead_code)] // For the consumer's gauges.
    #[inline]
    pub(crate) fn gauge(_name: &'static str, _labels: Labels<'_>, _value: f64) {}
}

#[allow(unused_imports)] // `gauge` waits for the consumer's metrics.
pub(crate) use facade::{Labels, gauge, increment, record};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(200)), "2xx");
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(502)), "5xx");
        assert_eq!(status_class(Some(700)), "other");
        assert_eq!(status_class(None), "none");
    }
}
