//! Lease extension results, read tolerantly.
//!
//! `POST …/messages/extend` is documented only by its request (Cloudflare's `cf` CLI:
//! "each message receives a new lease identifier"); the response schema is not
//! published. So nothing here fails on an unexpected shape: the decoder looks for a list
//! of entries (a top-level array, or the first array under `messages`, `leases`,
//! `extended`, `extend` or `results`), reads from each a message id (`id` or
//! `message_id`) and a lease id (`lease_id`, `leaseId` or `new_lease_id`; a bare string
//! counts as a lease id), a count (`extendCount`, `extend_count`, `extendedCount`), and
//! `warnings` like the ack response's (a map from lease id to text, or a list). What it
//! cannot read it leaves out.
//!
//! [`match_extensions`] then pairs new lease ids with the ones sent, conservatively, so
//! that one message can never be settled with another's lease:
//!
//! 1. a lease the server warned about was not extended;
//! 2. where entries carry message ids and the sender knew each lease's message id, a new
//!    lease id is matched by message id (an id listed twice matches nothing);
//! 3. otherwise by position, but only when the server listed exactly as many lease ids as
//!    were sent and named no warnings;
//! 4. anything else is "extended, new lease id unknown": keep using the old lease id,
//!    which Cloudflare keeps accepting for acks.
//!
//! To check these inferences against a live account: pull a message with a short
//! visibility timeout, extend its lease with `queue.extend_leases([...])`, print
//! [`ExtendResult::raw`], and see that the message is not redelivered after the original
//! timeout and that both the old and the new lease id acknowledge it.

use crate::codec::AckWarning;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the server answered to one extension request, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ExtendResult {
    /// Entries naming a (new) lease id, with the message id when the server gave one.
    pub leases: Vec<ExtendedLease>,
    /// How many leases the server says it extended, when it says.
    pub extend_count: Option<u64>,
    /// Warnings, per lease where the server named one.
    pub warnings: Vec<AckWarning>,
    /// The result exactly as received.
    pub raw: Value,
}

/// One entry of an extension response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtendedLease {
    /// The message id, when the entry carried one.
    pub message_id: Option<String>,
    /// The lease id the entry names.
    pub lease_id: String,
}

impl<'de> Deserialize<'de> for ExtendResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Any JSON is accepted; what is not understood is simply not used.
        Ok(ExtendResult::read(Value::deserialize(d)?))
    }
}

impl Serialize for ExtendResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}

impl ExtendResult {
    /// Reads whatever can be read from a result value.
    pub fn read(raw: Value) -> Self {
        let entries = match &raw {
            Value::Array(items) => Some(items),
            Value::Object(map) => ["messages", "leases", "extended", "extend", "results"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_array)),
            _ => None,
        };
        let leases = entries
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                Value::String(lease) if !lease.trim().is_empty() => Some(ExtendedLease {
                    message_id: None,
                    lease_id: lease.clone(),
                }),
                Value::Object(_) => Some(ExtendedLease {
                    message_id: text(e, &["id", "message_id", "messageId"]).map(str::to_owned),
                    lease_id: text(e, &["lease_id", "leaseId", "new_lease_id"])?.to_owned(),
                }),
                _ => None,
            })
            .collect();
        let extend_count = ["extendCount", "extend_count", "extendedCount"]
            .iter()
            .find_map(|k| raw.get(*k).and_then(Value::as_u64));
        let warnings = raw
            .get("warnings")
            .and_then(|w| crate::codec::ack_warnings::deserialize(w).ok())
            .unwrap_or_default();
        ExtendResult {
            leases,
            extend_count,
            warnings,
            raw,
        }
    }
}

/// What became of one lease sent for extension.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionOutcome {
    /// Extended, and this is its new lease id: settle with it from now on (the old one
    /// keeps being accepted for acks).
    Renewed {
        /// The new lease id.
        lease_id: String,
    },
    /// Extended as far as the server said (no warning about it), but the new lease id
    /// could not be matched safely: keep using the one sent.
    ExtendedIdUnknown,
    /// Not extended: the server warned about it (expired, already settled, unknown).
    NotExtended {
        /// The server's warning.
        warning: String,
    },
}

impl ExtensionOutcome {
    /// Whether the lease was extended (with or without a known new id).
    pub fn is_extended(&self) -> bool {
        !matches!(self, ExtensionOutcome::NotExtended { .. })
    }
}

/// Pairs each lease sent (`(lease id, message id if known)`, in request order) with what
/// became of it, by the rules in the module docs.
pub fn match_extensions(
    sent: &[(String, Option<String>)],
    result: &ExtendResult,
) -> Vec<ExtensionOutcome> {
    use std::collections::HashMap;
    let warned: HashMap<&str, &str> = result
        .warnings
        .iter()
        .filter_map(|w| w.lease_id.as_deref().map(|l| (l, w.message.as_str())))
        .collect();
    let mut by_message: HashMap<&str, Option<&str>> = HashMap::new();
    for e in &result.leases {
        if let Some(id) = e.message_id.as_deref() {
            by_message
                .entry(id)
                .and_modify(|seen| *seen = None)
                .or_insert(Some(e.lease_id.as_str()));
        }
    }
    let by_position = result.leases.len() == sent.len()
        && result.warnings.is_empty()
        && result.leases.iter().all(|e| e.message_id.is_none());
    sent.iter()
        .enumerate()
        .map(|(i, (lease, message))| {
            if let Some(w) = warned.get(lease.as_str()) {
                return ExtensionOutcome::NotExtended {
                    warning: (*w).to_owned(),
                };
            }
            let matched = match message.as_deref() {
                Some(m) if !by_message.is_empty() => by_message.get(m).copied().flatten(),
                _ if by_position => Some(result.leases[i].lease_id.as_str()),
                _ => None,
            };
            match matched {
                Some(new) => ExtensionOutcome::Renewed {
                    lease_id: new.to_owned(),
                },
                None => ExtensionOutcome::ExtendedIdUnknown,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sent(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(l, m)| ((*l).to_owned(), m.map(str::to_owned)))
            .collect()
    }

    fn renewed(lease: &str) -> ExtensionOutcome {
        ExtensionOutcome::Renewed {
            lease_id: lease.to_owned(),
        }
    }

    #[test]
    fn matches_by_message_id_whatever_the_order() {
        let r = ExtendResult::read(json!({"messages": [
            {"id": "m2", "lease_id": "new2"}, {"id": "m1", "lease_id": "new1"}
        ], "extendCount": 2}));
        assert_eq!(r.extend_count, Some(2));
        let out = match_extensions(&sent(&[("old1", Some("m1")), ("old2", Some("m2"))]), &r);
        assert_eq!(out, [renewed("new1"), renewed("new2")]);
    }

    #[test]
    fn a_warned_lease_was_not_extended_and_forbids_matching_by_position() {
        let r = ExtendResult::read(json!({
            "leases": ["new1", "new2"],
            "warnings": {"old2": "lease expired"}
        }));
        let out = match_extensions(&sent(&[("old1", None), ("old2", None)]), &r);
        assert_eq!(
            out,
            [
                ExtensionOutcome::ExtendedIdUnknown,
                ExtensionOutcome::NotExtended {
                    warning: "lease expired".into()
                }
            ]
        );
    }

    #[test]
    fn position_only_when_the_counts_agree() {
        let same = ExtendResult::read(json!(["n1", "n2"]));
        assert_eq!(
            match_extensions(&sent(&[("o1", None), ("o2", None)]), &same),
            [renewed("n1"), renewed("n2")]
        );
        let fewer = ExtendResult::read(json!({"extended": [{"lease_id": "n1"}]}));
        assert_eq!(
            match_extensions(&sent(&[("o1", None), ("o2", None)]), &fewer),
            [
                ExtensionOutcome::ExtendedIdUnknown,
                ExtensionOutcome::ExtendedIdUnknown
            ]
        );
    }

    #[test]
    fn entries_with_message_ids_never_match_by_position() {
        // The sender did not know the message ids: positions could pair the wrong ones.
        let r = ExtendResult::read(json!({"messages": [{"id": "m1", "lease_id": "n1"}]}));
        assert_eq!(
            match_extensions(&sent(&[("o1", None)]), &r),
            [ExtensionOutcome::ExtendedIdUnknown]
        );
    }

    #[test]
    fn a_message_id_listed_twice_matches_nothing() {
        let r = ExtendResult::read(json!({"messages": [
            {"id": "m1", "lease_id": "a"}, {"id": "m1", "lease_id": "b"}
        ]}));
        assert_eq!(
            match_extensions(&sent(&[("o1", Some("m1"))]), &r),
            [ExtensionOutcome::ExtendedIdUnknown]
        );
    }

    #[test]
    fn unreadable_results_mean_extended_with_ids_unknown() {
        for raw in [
            json!(null),
            json!("ok"),
            json!(7),
            json!({"messages": "x"}),
            json!({}),
        ] {
            let r = ExtendResult::read(raw.clone());
            assert!(r.leases.is_empty(), "{raw}");
            assert_eq!(
                match_extensions(&sent(&[("o1", Some("m1"))]), &r),
                [ExtensionOutcome::ExtendedIdUnknown],
                "{raw}"
            );
        }
        let r: ExtendResult = serde_json::from_str(r#"{"warnings":["general note"]}"#).unwrap();
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].lease_id, None);
    }
}
