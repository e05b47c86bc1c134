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

/// Messages by what became of them, by `queue` and `outcome` (`pulled`, `acked`,
/// `retried`, `released`, `expired_before_dispatch`, `failed_to_settle`, `abandoned`,
/// `over_delivered`, `unreadable`, `decode_error`).
pub(crate) const CONSUMER_MESSAGES: &str = "cloudflare_queues_consumer_messages_total";
/// Requests the consumer made, by `queue` and `kind` (`pull`, `empty_pull`,
/// `pull_error`, `ack`, `ack_error`, `extend`, `extend_error`).
pub(crate) const CONSUMER_REQUESTS: &str = "cloudflare_queues_consumer_requests_total";
/// Leases the consumer extended, by `queue`.
pub(crate) const CONSUMER_LEASES_EXTENDED: &str =
    "cloudflare_queues_consumer_leases_extended_total";
/// Undecided deliveries now, by `queue`.
pub(crate) const CONSUMER_IN_FLIGHT: &str = "cloudflare_queues_consumer_in_flight";
/// The queue's backlog from the last pull, by `queue`.
pub(crate) const CONSUMER_BACKLOG: &str = "cloudflare_queues_consumer_backlog";
/// Seconds per handler run, by `queue` and `outcome` (`ack`, `retry`, `release`,
/// `failed`).
pub(crate) const CONSUMER_HANDLER_DURATION: &str =
    "cloudflare_queues_consumer_handler_duration_seconds";

/// Publishes a consumer's counters (kept as atomics by the consumer itself) as absolute
/// values; the consumer calls this every second and at shutdown.
pub(crate) fn consumer_snapshot(queue: &str, s: &crate::consumer::Stats) {
    let messages = [
        ("pulled", s.pulled),
        ("acked", s.acked),
        ("retried", s.retried),
        ("released", s.released),
        ("expired_before_dispatch", s.expired_before_dispatch),
        ("failed_to_settle", s.failed_to_settle),
        ("abandoned", s.abandoned),
        ("over_delivered", s.over_delivered),
        ("unreadable", s.unreadable),
        ("decode_error", s.decode_errors),
    ];
    for (outcome, n) in messages {
        absolute(
            CONSUMER_MESSAGES,
            &[("queue", queue), ("outcome", outcome)],
            n,
        );
    }
    let requests = [
        ("pull", s.pull_requests),
        ("empty_pull", s.empty_pulls),
        ("pull_error", s.pull_errors),
        ("ack", s.ack_requests),
        ("ack_error", s.ack_request_failures),
        ("extend", s.extension_requests),
        ("extend_error", s.extension_failures),
    ];
    for (kind, n) in requests {
        absolute(CONSUMER_REQUESTS, &[("queue", queue), ("kind", kind)], n);
    }
    absolute(
        CONSUMER_LEASES_EXTENDED,
        &[("queue", queue)],
        s.leases_extended,
    );
    #[allow(clippy::cast_precision_loss)]
    {
        set(CONSUMER_IN_FLIGHT, &[("queue", queue)], s.in_flight as f64);
        if let Some(backlog) = s.backlog {
            set(CONSUMER_BACKLOG, &[("queue", queue)], backlog as f64);
        }
    }
}

/// One histogram per handler outcome of a consumer, registered once so that recording a
/// handler's duration costs no lookup.
#[derive(Debug)]
pub(crate) struct HandlerTimes {
    ack: Histogram,
    retry: Histogram,
    release: Histogram,
    failed: Histogram,
}

impl HandlerTimes {
    pub(crate) fn new(queue: &str) -> Self {
        let h = |outcome| {
            histogram(
                CONSUMER_HANDLER_DURATION,
                &[("queue", queue), ("outcome", outcome)],
            )
        };
        HandlerTimes {
            ack: h("ack"),
            retry: h("retry"),
            release: h("release"),
            failed: h("failed"),
        }
    }

    /// A handler ran for `elapsed`; `outcome` is `None` when it failed.
    pub(crate) fn record(&self, outcome: Option<crate::consumer::Outcome>, elapsed: Duration) {
        use crate::consumer::Outcome;
        let h = match outcome {
            Some(Outcome::Ack) => &self.ack,
            Some(Outcome::Retry { .. }) => &self.retry,
            Some(Outcome::Release) => &self.release,
            None => &self.failed,
        };
        h.record(elapsed.as_secs_f64());
    }
}

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

    /// Sets the counter `name` to `value` (a count the crate keeps itself). Labels may
    /// carry a queue id: one series per consumer.
    pub(crate) fn absolute(name: &'static str, labels: &[(&'static str, &str)], value: u64) {
        describe();
        ::metrics::counter!(name, owned(labels)).absolute(value);
    }

    /// Sets the gauge `name` to `value`, with labels that may carry a queue id.
    pub(crate) fn set(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        describe();
        ::metrics::gauge!(name, owned(labels)).set(value);
    }

    /// A histogram handle, registered once.
    #[derive(Debug)]
    pub(crate) struct Histogram(::metrics::Histogram);

    impl Histogram {
        pub(crate) fn record(&self, value: f64) {
            self.0.record(value);
        }
    }

    pub(crate) fn histogram(name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        describe();
        Histogram(::metrics::histogram!(name, owned(labels)))
    }

    fn owned(labels: &[(&'static str, &str)]) -> Vec<::metrics::Label> {
        labels
            .iter()
            .map(|(k, v)| ::metrics::Label::new(*k, (*v).to_owned()))
            .collect()
    }

    /// Describes the crate's metrics to the recorder once, for exporters that publish
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
            ::metrics::describe_counter!(
                super::CONSUMER_MESSAGES,
                Unit::Count,
                "Messages a pull consumer handled, by what became of them"
            );
            ::metrics::describe_counter!(
                super::CONSUMER_REQUESTS,
                Unit::Count,
                "Pull, ack and lease-extension requests a pull consumer made"
            );
            ::metrics::describe_counter!(
                super::CONSUMER_LEASES_EXTENDED,
                Unit::Count,
                "Leases a pull consumer extended"
            );
            ::metrics::describe_gauge!(
                super::CONSUMER_IN_FLIGHT,
                Unit::Count,
                "Undecided deliveries of a pull consumer"
            );
            ::metrics::describe_gauge!(
                super::CONSUMER_BACKLOG,
                Unit::Count,
                "Backlog of the queue as of a pull consumer's last pull"
            );
            ::metrics::describe_histogram!(
                super::CONSUMER_HANDLER_DURATION,
                Unit::Seconds,
                "Duration of one handler run, by outcome"
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

    /// Does nothing: the `metrics` feature is off.
    #[inline]
    pub(crate) fn absolute(_name: &'static str, _labels: &[(&'static str, &str)], _value: u64) {}

    /// Does nothing: the `metrics` feature is off.
    #[inline]
    pub(crate) fn set(_name: &'static str, _labels: &[(&'static str, &str)], _value: f64) {}

    /// A histogram that records nothing: the `metrics` feature is off.
    #[derive(Debug)]
    pub(crate) struct Histogram;

    impl Histogram {
        #[inline]
        pub(crate) fn record(&self, _value: f64) {}
    }

    #[inline]
    pub(crate) fn histogram(_name: &'static str, _labels: &[(&'static str, &str)]) -> Histogram {
        Histogram
    }
}

#[allow(unused_imports)] // `gauge` is for future gauges with static labels.
pub(crate) use facade::{Histogram, Labels, absolute, gauge, histogram, increment, record, set};

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
