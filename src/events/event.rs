//! The envelope every subscription event shares: `type`, `source`, `payload`,
//! `metadata`.

use super::payloads::{EventPayload, Extra};
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message delivered by an event subscription.
///
/// Decoding never fails because of what is inside a well-formed event: an unknown
/// `type` gives [`EventPayload::Unknown`], unknown fields land in the `extra` maps, and
/// a `source` or `metadata` of an unexpected shape is kept whole in [`extra`](Self::extra)
/// under its own key (the typed field is then left empty). Only a body that is not a
/// JSON object with a string `type` is refused.
///
/// Serialising writes the same JSON back (fields sent as `null` are left out).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Event {
    /// The event type, such as `cf.r2.bucket.created` (`type` on the wire).
    pub event_type: String,
    /// What emitted it: the source kind and, for sources that name a resource, which
    /// one.
    pub source: Source,
    /// The event's own data, typed by [`event_type`](Self::event_type).
    pub payload: EventPayload,
    /// Account, subscription, schema version and time of the event.
    pub metadata: Metadata,
    /// Top-level fields not named above, kept as sent.
    pub extra: Extra,
}

impl Event {
    /// Whether the payload has a typed variant (the type is one this crate knows and
    /// the payload has its documented shape).
    pub fn is_typed(&self) -> bool {
        self.payload.is_typed()
    }
}

/// Where an event comes from (the event's `source` object). Not to be confused with
/// [`models::EventSource`](crate::models::EventSource), the source given when
/// subscribing: the delivered source uses camelCase names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Source {
    /// The source kind, such as `r2`, `workersBuilds.worker` or `superSlurper.job`
    /// (`type` on the wire).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The Workers AI model (`workersAi.model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// The Worker built (`workersBuilds.worker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
    /// The Workflow (`workflows.workflow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
    /// The migration job (`superSlurper.job`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The repository's namespace (`artifacts`, `artifacts.repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The repository's name (`artifacts`, `artifacts.repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_name: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The fields every event carries about its delivery (the event's `metadata` object).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Metadata {
    /// The Cloudflare account the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The subscription that delivered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_subscription_id: Option<String>,
    /// The version of the event's schema.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub event_schema_version: Option<u32>,
    /// When the event happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_timestamp: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Takes `key` out of `map` as a `T`; a value that does not read as `T` goes back into
/// `map` (which becomes the event's `extra`), so nothing is lost.
fn take_part<T: DeserializeOwned + Default>(map: &mut Map<String, Value>, key: &str) -> T {
    let Some(value) = map.remove(key) else {
        return T::default();
    };
    match T::deserialize(&value) {
        Ok(part) => part,
        Err(_) => {
            map.insert(key.to_owned(), value);
            T::default()
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Value::Object(mut map) = Value::deserialize(deserializer)? else {
            return Err(de::Error::custom("an event is a JSON object"));
        };
        let event_type = match map.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(de::Error::custom("an event's `type` is a string")),
            None => return Err(de::Error::missing_field("type")),
        };
        let payload = map.remove("payload").unwrap_or(Value::Null);
        let payload = EventPayload::decode(&event_type, payload);
        let source = take_part(&mut map, "source");
        let metadata = take_part(&mut map, "metadata");
        Ok(Event {
            event_type,
            source,
            payload,
            metadata,
            extra: map,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &self.event_type)?;
        // A part kept raw in `extra` (it did not read as its type) is written from there.
        if !self.extra.contains_key("source") {
            map.serialize_entry("source", &self.source)?;
        }
        if !matches!(self.payload, EventPayload::Unknown(Value::Null)) {
            map.serialize_entry("payload", &self.payload)?;
        }
        if !self.extra.contains_key("metadata") {
            map.serialize_entry("metadata", &self.metadata)?;
        }
        for (key, value) in &self.extra {
            if key != "type" && key != "payload" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}
