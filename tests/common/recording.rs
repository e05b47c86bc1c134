//! Reading what the crate recorded through the `metrics` facade.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::collections::BTreeMap;

/// `name{label=value,...}` → value, for every metric the recorder saw.
pub type Seen = BTreeMap<String, DebugValue>;

pub fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// Runs `work` on a current-thread runtime with a recorder of its own (so that tests
/// running in parallel cannot see each other's metrics), and returns what it recorded.
pub fn recorded<F>(work: impl FnOnce() -> F) -> Seen
where
    F: std::future::Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work());
    });
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(composite, _unit, _description, value)| {
            let key = composite.key();
            let mut labels: Vec<(&str, &str)> =
                key.labels().map(|l| (l.key(), l.value())).collect();
            labels.sort();
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

pub fn counter(seen: &Seen, name: &str, labels: &[(&str, &str)]) -> u64 {
    match seen.get(&key(name, labels)) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name} is not a counter: {other:?}"),
    }
}

pub fn samples(seen: &Seen, name: &str, labels: &[(&str, &str)]) -> usize {
    match seen.get(&key(name, labels)) {
        Some(DebugValue::Histogram(values)) => values.len(),
        None => 0,
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}
