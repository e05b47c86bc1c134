//! [`MessageMetadata`]: what Cloudflare attaches to each message, read without
//! allocating in the common case.
//!
//! Every pulled and peeked message carries an object such as
//! `{"CF-sourceMessageSource": "api", "CF-Content-Type": "json"}`. Read into a general JSON
//! map it would cost a tree node, two key strings and two value strings per message, and
//! as much again to free them: a fifth of what a whole pull costs per message. The two
//! keys Cloudflare sends are read into fields instead (known values need no allocation);
//! any other key is kept as JSON, so nothing is lost.

use super::ContentType;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The metadata key that says how a body is encoded.
pub const CONTENT_TYPE_KEY: &str = "CF-Content-Type";

/// The metadata key that says how a message was published.
pub const SOURCE_KEY: &str = "CF-sourceMessageSource";

/// A message's metadata: its content type (`CF-Content-Type`), where it was published
/// from (`CF-sourceMessageSource`: `api`, `dash`, `worker`, …), and any other key, kept
/// as JSON. Serialises back to the same object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageMetadata {
    content_type: Option<ContentType>,
    source: Option<Cow<'static, str>>,
    other: Vec<(String, Value)>,
}

impl MessageMetadata {
    /// Metadata with a content type only.
    pub fn new(content_type: ContentType) -> Self {
        MessageMetadata {
            content_type: Some(content_type),
            ..MessageMetadata::default()
        }
    }

    /// The content type; [`ContentType::Unknown`] with an empty name when there is none
    /// (or it is not a string).
    pub fn content_type(&self) -> ContentType {
        self.content_type
            .clone()
            .unwrap_or_else(|| ContentType::Unknown(String::new()))
    }

    /// Where the message was published from, when the server said.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The value of any key, as JSON (the two above included).
    pub fn get(&self, key: &str) -> Option<Value> {
        match key {
            CONTENT_TYPE_KEY if self.content_type.is_some() => {
                self.content_type.as_ref().map(|c| Value::from(c.as_str()))
            }
            SOURCE_KEY if self.source.is_some() => self.source.as_deref().map(Value::from),
            _ => self
                .other
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        }
    }

    /// Every key and value, as a JSON object.
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        if let Some(c) = &self.content_type {
            map.insert(CONTENT_TYPE_KEY.to_owned(), c.as_str().into());
        }
        if let Some(s) = &self.source {
            map.insert(SOURCE_KEY.to_owned(), s.as_ref().into());
        }
        for (k, v) in &self.other {
            map.insert(k.clone(), v.clone());
        }
        map
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.content_type.is_none() && self.source.is_none() && self.other.is_empty()
    }

    /// Sets `key` to `value` (the content type and source keys go to their fields when
    /// `value` is a string).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let (key, value) = (key.into(), value.into());
        match (key.as_str(), value.as_str()) {
            (CONTENT_TYPE_KEY, Some(c)) => self.content_type = Some(ContentType::from(c)),
            (SOURCE_KEY, Some(s)) => self.source = Some(source(Cow::Owned(s.to_owned()))),
            _ => {
                self.other.retain(|(k, _)| *k != key);
                self.other.push((key, value));
            }
        }
        self
    }
}

/// A source name, shared for the values Cloudflare is known to send.
fn source(s: Cow<'_, str>) -> Cow<'static, str> {
    match s.as_ref() {
        "api" => Cow::Borrowed("api"),
        "dash" => Cow::Borrowed("dash"),
        "worker" => Cow::Borrowed("worker"),
        _ => Cow::Owned(s.into_owned()),
    }
}

impl From<serde_json::Map<String, Value>> for MessageMetadata {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        map.into_iter()
            .fold(MessageMetadata::default(), |m, (k, v)| m.with(k, v))
    }
}

impl Serialize for MessageMetadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = usize::from(self.content_type.is_some())
            + usize::from(self.source.is_some())
            + self.other.len();
        let mut map = s.serialize_map(Some(len))?;
        if let Some(c) = &self.content_type {
            map.serialize_entry(CONTENT_TYPE_KEY, c.as_str())?;
        }
        if let Some(src) = &self.source {
            map.serialize_entry(SOURCE_KEY, src.as_ref())?;
        }
        for (k, v) in &self.other {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A map key or string value, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for MessageMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageMetadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a metadata object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MessageMetadata::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = MessageMetadata::default();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    // The two keys Cloudflare sends are strings; anything else (another
                    // key, or one of these with a value that is not a string) is kept
                    // as JSON.
                    let value: Value = match key.as_ref() {
                        CONTENT_TYPE_KEY | SOURCE_KEY => {
                            match map.next_value::<StrOrJson<'de>>()? {
                                StrOrJson::Str(s) if key == CONTENT_TYPE_KEY => {
                                    out.content_type = Some(ContentType::from(s.as_ref()));
                                    continue;
                                }
                                StrOrJson::Str(s) => {
                                    out.source = Some(source(s));
                                    continue;
                                }
                                StrOrJson::Json(v) => v,
                            }
                        }
                        _ => map.next_value()?,
                    };
                    out.other.push((key.into_owned(), value));
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// A value that is usually a string (borrowed when possible), or any JSON.
enum StrOrJson<'de> {
    Str(Cow<'de, str>),
    Json(Value),
}

impl<'de> Deserialize<'de> for StrOrJson<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrJson<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrJson::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrJson::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOrJson::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(StrOrJson::Json(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StrOrJson::Json(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StrOrJson::Json(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(StrOrJson::Json(Value::from(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOrJson::Json(Value::Null))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(StrOrJson::Json)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOrJson::Json)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_two_cloudflare_keys_become_fields_and_the_rest_is_kept() {
        let raw = json!({"CF-sourceMessageSource": "dash", "CF-Content-Type": "json", "x-trace": {"id": 7}});
        let m: MessageMetadata = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(m.content_type(), ContentType::Json);
        assert_eq!(m.source(), Some("dash"));
        assert_eq!(m.get("x-trace"), Some(json!({"id": 7})));
        assert_eq!(m.get(CONTENT_TYPE_KEY), Some(json!("json")));
        assert_eq!(Value::Object(m.to_map()), raw);
        assert_eq!(serde_json::to_value(&m).unwrap(), raw, "round trip");
    }

    #[test]
    fn odd_values_are_kept_as_json_and_never_fail() {
        for raw in [
            json!({"CF-Content-Type": 5}),
            json!({"CF-Content-Type": ["text"]}),
            json!({"CF-sourceMessageSource": {"a": null}}),
            json!({}),
            json!(null),
        ] {
            let m: MessageMetadata = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(
                m.content_type(),
                ContentType::Unknown(String::new()),
                "{raw}"
            );
            if let Value::Object(obj) = &raw {
                assert_eq!(&m.to_map(), obj);
            }
        }
        // Borrowed keys and values from a string, and escaped ones.
        let m: MessageMetadata =
            serde_json::from_str(r#"{"CF-Content-Type":"t\u0065xt","k\u0065y":"v"}"#).unwrap();
        assert_eq!(m.content_type(), ContentType::Text);
        assert_eq!(m.get("key"), Some(json!("v")));
    }

    #[test]
    fn built_by_hand() {
        let m = MessageMetadata::new(ContentType::Bytes)
            .with("CF-sourceMessageSource", "worker")
            .with("k", 1);
        assert_eq!(
            (m.content_type(), m.source()),
            (ContentType::Bytes, Some("worker"))
        );
        assert_eq!(m.get("k"), Some(json!(1)));
        assert!(!m.is_empty() && MessageMetadata::default().is_empty());
    }
}
