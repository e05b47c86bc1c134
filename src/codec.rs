//! Serde helpers for the places where the API's JSON and its meaning differ.
//!
//! The generated models (`src/generated/models.rs`) name these modules through the
//! `x-rust-type` annotations of `openapi/queues.json`:
//!
//! * the API types counts as JSON floats, so integers are read from `5` and from `5.0`
//!   (a fraction, a negative value or an overflow is a decode error naming the field);
//! * durations travel as numbers of seconds or milliseconds and are `Duration` here;
//!   sending rounds a sub-unit remainder up, so a delay is never shortened;
//! * an empty `dead_letter_queue` string means "none";
//! * purge status `completed` is typed as a string but may be a boolean (it is written
//!   as the string the spec declares);
//! * a field whose `null` means something (not the same as absent) is decoded by its
//!   own type, null included (`present`);
//! * ack `warnings` is a map from lease id to text (older responses sent a list).

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// One warning returned by an ack request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AckWarning {
    /// The lease the warning is about, when the server said.
    pub lease_id: Option<String>,
    /// The warning text.
    pub message: String,
}

impl AckWarning {
    /// A warning about one lease.
    pub fn new(lease_id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            lease_id: Some(lease_id.into()),
            message: message.into(),
        }
    }
}

/// Reads a JSON number (integer or integral float) as `u64`, bounded by `max`.
/// `null` reads as `None`.
fn read_integer<'de, D: Deserializer<'de>>(d: D, max: u64) -> Result<Option<u64>, D::Error> {
    struct V(u64);
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a non-negative integer up to {}", self.0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            if v > self.0 {
                return Err(E::invalid_value(de::Unexpected::Unsigned(v), &self));
            }
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                .and_then(|v| self.visit_u64(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // 2^64 is exactly representable; anything at or above it cannot be a u64.
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 18_446_744_073_709_551_616.0 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                return self.visit_u64(v as u64);
            }
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V(max))
}

/// Reads a non-negative JSON number of `unit`s as a `Duration`. `null` reads as `None`.
fn read_duration<'de, D: Deserializer<'de>>(d: D, unit: f64) -> Result<Option<Duration>, D::Error> {
    let Some(n) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    Duration::try_from_secs_f64(n * unit)
        .map(Some)
        .map_err(|_| de::Error::custom(format_args!("expected a non-negative duration, got {n}")))
}

fn write_duration<S: Serializer>(d: &Duration, s: S, per_second: u128) -> Result<S::Ok, S::Error> {
    let nanos_per_unit = 1_000_000_000 / per_second;
    let units = d.as_nanos().div_ceil(nanos_per_unit);
    let units = u64::try_from(units).map_err(|_| ser::Error::custom("duration too large"))?;
    s.serialize_u64(units)
}

macro_rules! integer_codec {
    ($req:ident, $opt:ident, $ty:ty) => {
        pub(crate) mod $req {
            use super::*;
            pub(crate) fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u64(u64::from(*v))
            }
            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                #[allow(clippy::cast_possible_truncation)]
                Ok(read_integer(d, u64::from(<$ty>::MAX))?.unwrap_or(0) as $ty)
            }
        }
        pub(crate) mod $opt {
            use super::*;
            #[allow(clippy::ref_option)]
            pub(crate) fn serialize<S: Serializer>(
                v: &Option<$ty>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                match v {
                    Some(v) => s.serialize_u64(u64::from(*v)),
                    None => s.serialize_none(),
                }
            }
            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<Option<$ty>, D::Error> {
                #[allow(clippy::cast_possible_truncation)]
                Ok(read_integer(d, u64::from(<$ty>::MAX))?.map(|v| v as $ty))
            }
        }
    };
}
integer_codec!(flex_u32, opt_flex_u32, u32);
integer_codec!(flex_u64, opt_flex_u64, u64);

macro_rules! duration_codec {
    ($req:ident, $opt:ident, $unit:expr, $per_second:expr) => {
        // For fields the spec marks required; no current field is.
        #[allow(dead_code)]
        pub(crate) mod $req {
            use super::*;
            pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
                write_duration(v, s, $per_second)
            }
            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<Duration, D::Error> {
                Ok(read_duration(d, $unit)?.unwrap_or_default())
            }
        }
        pub(crate) mod $opt {
            use super::*;
            #[allow(clippy::ref_option)]
            pub(crate) fn serialize<S: Serializer>(
                v: &Option<Duration>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                match v {
                    Some(v) => write_duration(v, s, $per_second),
                    None => s.serialize_none(),
                }
            }
            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<Option<Duration>, D::Error> {
                read_duration(d, $unit)
            }
        }
    };
}
duration_codec!(secs, opt_secs, 1.0, 1);
duration_codec!(millis, opt_millis, 0.001, 1000);

/// `""` and `null` read as `None`; `None` is not written (the field is skipped).
pub(crate) mod empty_none {
    use super::*;
    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(v),
            None => s.serialize_none(),
        }
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
    }
}

/// `true`, `false`, `"true"` and `"false"` (any case) read as booleans; anything else as
/// `None`. Written as the string `"true"` or `"false"`, the type the spec declares.
pub(crate) mod opt_lenient_bool {
    use super::*;
    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(true) => s.serialize_str("true"),
            Some(false) => s.serialize_str("false"),
            None => s.serialize_none(),
        }
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Some(b),
            serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    }
}

/// For an optional field whose `null` is a value: with `#[serde(default)]`, an absent
/// field is `None`, and a present one, `null` included, is decoded by `T` itself.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Ack warnings: `{"<lease id>": "<text>"}` (current API) or `["<text>", ...]` (older).
pub(crate) mod ack_warnings {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Map(BTreeMap<String, String>),
        List(Vec<String>),
        Null(()),
    }

    pub(crate) fn serialize<S: Serializer>(v: &[AckWarning], s: S) -> Result<S::Ok, S::Error> {
        if v.iter().all(|w| w.lease_id.is_some()) {
            let map: BTreeMap<&str, &str> = v
                .iter()
                .map(|w| {
                    (
                        w.lease_id.as_deref().unwrap_or_default(),
                        w.message.as_str(),
                    )
                })
                .collect();
            map.serialize(s)
        } else {
            let list: Vec<&str> = v.iter().map(|w| w.message.as_str()).collect();
            list.serialize(s)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<AckWarning>, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Map(map) => map
                .into_iter()
                .map(|(k, v)| AckWarning::new(k, v))
                .collect(),
            Wire::List(list) => list
                .into_iter()
                .map(|message| AckWarning {
                    lease_id: None,
                    message,
                })
                .collect(),
            Wire::Null(()) => Vec::new(),
        })
    }
}

/// Serialises `inner` as a JSON object with `tag: kind` added (used by generated unions).
pub(crate) fn serialize_tagged<S: Serializer, T: Serialize>(
    s: S,
    tag: &str,
    kind: &str,
    inner: &T,
) -> Result<S::Ok, S::Error> {
    let mut value = serde_json::to_value(inner).map_err(ser::Error::custom)?;
    match &mut value {
        serde_json::Value::Object(map) => {
            map.insert(tag.to_owned(), kind.into());
        }
        serde_json::Value::Null => {
            let mut map = serde_json::Map::new();
            map.insert(tag.to_owned(), kind.into());
            value = serde_json::Value::Object(map);
        }
        _ => {
            return Err(ser::Error::custom(
                "a tagged union variant must be an object",
            ));
        }
    }
    value.serialize(s)
}

/// Decodes a union member from the raw object its tag selected.
pub(crate) fn from_tagged<T: DeserializeOwned, E: de::Error>(
    raw: serde_json::Value,
) -> Result<T, E> {
    serde_json::from_value(raw).map_err(E::custom)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
