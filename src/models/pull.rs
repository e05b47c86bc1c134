//! The result of a pull, decoded message by message.
//!
//! One malformed entry must not cost its batch-mates their delivery: if the whole pull
//! failed to decode, every message in it would stay leased until its visibility timeout
//! and each expiry would burn an attempt. So `messages` is read one entry at a time. An
//! entry that does not decode as a [`PulledMessage`] goes to [`PullResult::rejected`]
//! with whatever could still be read of it (its lease id above all, so that it can be
//! retried or acknowledged) and the reason.

use super::{PulledMessage, QueueMetrics, ResultMetadata};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Result of a pull.
///
/// Decoding is per message: entries that cannot be read are listed in
/// [`rejected`](PullResult::rejected) instead of failing the whole pull. `Deserialize`
/// therefore needs a JSON deserializer that can lend from its input
/// (`serde_json::from_str` or `from_slice`), which is what the client uses.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct PullResult {
    /// Unacknowledged messages in the queue, leased ones included.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_backlog_count: Option<u64>,
    /// The leased messages that decoded; empty when nothing is available (short polling).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<PulledMessage>,
    /// Best-effort metadata, such as queue metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ResultMetadata>,
    /// Entries of the response's `messages` that could not be decoded. They are leased
    /// like the others: settle the ones with a lease id (ack or retry them), or they come
    /// back after the visibility timeout. Not part of the wire format.
    #[serde(skip)]
    pub rejected: Vec<RejectedMessage>,
}

/// A pulled entry that could not be decoded as a [`PulledMessage`], with what could be
/// read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedMessage {
    /// Its position in the response's `messages` array.
    pub index: usize,
    /// The message id, when it was a readable string.
    pub id: Option<String>,
    /// The lease id, when it was a readable, non-empty string. Without one the entry
    /// cannot be settled and comes back after its lease.
    pub lease_id: Option<String>,
    /// The `attempts` count, when it was readable.
    pub attempts: Option<u32>,
    /// Why it could not be decoded, naming the field (`attempts: invalid value ...`).
    pub reason: String,
    /// The entry's JSON text as received (bytes that were not UTF-8 read as `\udfff`
    /// escapes).
    pub raw: String,
}

impl PullResult {
    /// Best-effort queue metrics carried by the response, if any.
    pub fn metrics(&self) -> Option<&QueueMetrics> {
        self.metadata.as_ref().and_then(|m| m.metrics.as_ref())
    }
}

/// The wire shape, with the messages kept as raw JSON until they are read.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default, with = "crate::codec::opt_flex_u64")]
    message_backlog_count: Option<u64>,
    /// Borrowed from the response: a JSON deserializer over a string or bytes (what
    /// the client uses; `serde_json::from_value` cannot lend).
    #[serde(default, borrow)]
    messages: Option<&'a RawValue>,
    #[serde(default)]
    metadata: Option<ResultMetadata>,
}

/// The wire shape read in one pass, when every entry is well formed (the strict pass).
#[derive(Deserialize)]
struct StrictWire {
    #[serde(default, with = "crate::codec::opt_flex_u64")]
    message_backlog_count: Option<u64>,
    #[serde(default)]
    messages: Option<Vec<PulledMessage>>,
    #[serde(default)]
    metadata: Option<ResultMetadata>,
}

impl<'de> Deserialize<'de> for PullResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if crate::envelope::strict_pass() {
            // One parse of the whole list; any bad entry fails it, and the envelope
            // decoder then reads the body again through the lenient path below.
            let wire = StrictWire::deserialize(d)?;
            let messages = wire.messages.unwrap_or_default();
            if messages.iter().any(|m| m.lease_id.trim().is_empty()) {
                return Err(serde::de::Error::custom("an entry has no lease id"));
            }
            return Ok(PullResult {
                message_backlog_count: wire.message_backlog_count,
                messages,
                metadata: wire.metadata,
                rejected: Vec::new(),
            });
        }
        let wire = Wire::deserialize(d)?;
        let mut result = PullResult {
            message_backlog_count: wire.message_backlog_count,
            metadata: wire.metadata,
            ..PullResult::default()
        };
        let Some(raw) = wire.messages else {
            return Ok(result);
        };
        let entries: Vec<&RawValue> =
            match serde_json::from_str::<Option<Vec<&RawValue>>>(raw.get()) {
                Ok(entries) => entries.unwrap_or_default(),
                Err(e) => return Err(serde::de::Error::custom(format_args!("messages: {e}"))),
            };
        for (index, raw) in entries.into_iter().enumerate() {
            match read_message(raw.get()) {
                // Without a lease id a message cannot be settled: report it, don't hand
                // it out as if it could be.
                Ok(m) if m.lease_id.trim().is_empty() => result.rejected.push(salvage(
                    index,
                    raw.get(),
                    "lease_id: missing or empty".to_owned(),
                )),
                Ok(m) => result.messages.push(m),
                Err(reason) => result.rejected.push(salvage(index, raw.get(), reason)),
            }
        }
        Ok(result)
    }
}

fn read_message(raw: &str) -> Result<PulledMessage, String> {
    if let Ok(m) = serde_json::from_str(raw) {
        return Ok(m);
    }
    // Only a failure pays for tracking the path, to name the field.
    let mut de = serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// Reads what it can of an entry that failed to decode; each field on its own, so one
/// bad field does not hide the others.
fn salvage(index: usize, raw: &str, reason: String) -> RejectedMessage {
    #[derive(Deserialize)]
    struct Parts {
        #[serde(default)]
        id: Option<Box<RawValue>>,
        #[serde(default)]
        lease_id: Option<Box<RawValue>>,
        #[serde(default)]
        attempts: Option<Box<RawValue>>,
    }
    fn string(v: Option<&RawValue>) -> Option<String> {
        serde_json::from_str::<String>(v?.get())
            .ok()
            .filter(|s| !s.trim().is_empty())
    }
    // Not an object at all (a number, a string): nothing to salvage.
    let parts = serde_json::from_str::<Parts>(raw).ok();
    let (id, lease_id, attempts) = match &parts {
        Some(p) => (
            string(p.id.as_deref()),
            string(p.lease_id.as_deref()),
            p.attempts.as_deref().and_then(|a| {
                let mut de = serde_json::Deserializer::from_str(a.get());
                crate::codec::flex_u32::deserialize(&mut de).ok()
            }),
        ),
        None => (None, None, None),
    };
    RejectedMessage {
        index,
        id,
        lease_id,
        attempts,
        reason,
        raw: raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> PullResult {
        serde_json::from_str(json).unwrap()
    }

    fn good(i: usize) -> String {
        format!(
            r#"{{"id":"m{i}","lease_id":"l{i}","attempts":1,"body":"hi","metadata":{{"CF-Content-Type":"text"}},"timestamp_ms":1}}"#
        )
    }

    #[test]
    fn one_bad_entry_leaves_its_batch_mates_alone() {
        let bad = [
            r#"{"id":"b","lease_id":"lb","attempts":-1,"body":"x","metadata":{},"timestamp_ms":1}"#,
            r#"{"id":"b","lease_id":"lb","attempts":1,"body":"\ud800","metadata":{},"timestamp_ms":1}"#,
            r#"{"id":"b","lease_id":"lb","attempts":1,"body":"x","metadata":[],"timestamp_ms":1}"#,
        ];
        for bad in bad {
            let mut entries: Vec<String> = (0..9).map(good).collect();
            entries.insert(4, bad.to_owned());
            let r = decode(&format!(r#"{{"messages":[{}]}}"#, entries.join(",")));
            assert_eq!(r.messages.len(), 9, "{bad}");
            assert_eq!(r.rejected.len(), 1);
            let rej = &r.rejected[0];
            assert_eq!(rej.index, 4);
            assert_eq!(rej.id.as_deref(), Some("b"));
            assert_eq!(rej.lease_id.as_deref(), Some("lb"));
            assert_eq!(rej.raw, bad);
            assert!(!rej.reason.is_empty());
        }
    }

    #[test]
    fn salvage_reads_each_field_alone() {
        let r = decode(
            r#"{"messages":[{"id":7,"lease_id":"l","attempts":"3","body":1},"text",{"lease_id":""}]}"#,
        );
        assert!(r.messages.is_empty());
        let rej = &r.rejected;
        assert_eq!(rej.len(), 3);
        assert_eq!(
            (rej[0].id.as_deref(), rej[0].lease_id.as_deref()),
            (None, Some("l"))
        );
        assert_eq!(rej[0].attempts, None, "a string is not a count");
        assert!(rej[0].reason.starts_with("id: "), "{}", rej[0].reason);
        assert_eq!(rej[1].lease_id, None, "not an object");
        assert_eq!(rej[2].lease_id, None, "an empty lease id is no lease id");
        assert_eq!(rej[2].reason, "lease_id: missing or empty");
    }

    #[test]
    fn missing_or_null_messages_read_as_none() {
        assert!(decode("{}").messages.is_empty());
        assert!(decode(r#"{"messages":null}"#).messages.is_empty());
        let r = decode(r#"{"message_backlog_count":5.0,"messages":[]}"#);
        assert_eq!(r.message_backlog_count, Some(5));
    }
}
