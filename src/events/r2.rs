//! R2 event notifications: the message an R2 bucket's notification rule sends to a
//! queue when an object is written or deleted (Cloudflare's R2 docs, "Event
//! notifications", message format).

use super::payloads::Extra;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The body of an R2 event notification message.
///
/// `action`, `bucket` and `object.key` are required: a body without them is not an R2
/// notification and fails to decode. Everything else is optional, and fields this crate
/// does not name are kept in `extra`.
///
/// ```
/// use cloudflare_queues::events::{R2Action, R2Notification};
///
/// let body = r#"{"account": "3f4b7e3dcab231cbfdaa90a6a28bd548", "action": "PutObject",
///     "bucket": "uploads", "object": {"key": "cat.png", "size": 1024, "eTag": "a1b2"},
///     "eventTime": "2026-05-24T19:36:44.379Z"}"#;
/// let note: R2Notification = serde_json::from_str(body)?;
/// assert_eq!(note.action, R2Action::PutObject);
/// assert!(note.action.is_object_create());
/// assert_eq!((note.object.key.as_str(), note.object.size), ("cat.png", Some(1024)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct R2Notification {
    /// The Cloudflare account of the bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// What happened to the object.
    pub action: R2Action,
    /// The bucket's name.
    pub bucket: String,
    /// The object.
    pub object: R2Object,
    /// When the action happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The object copied from, for [`R2Action::CopyObject`] only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_source: Option<R2CopySource>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The object an [`R2Notification`] is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct R2Object {
    /// The object's key (its name in the bucket).
    pub key: String,
    /// Its size in bytes; not sent for deletions.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    /// Its entity tag (`eTag` on the wire); not sent for deletions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a copied object came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct R2CopySource {
    /// The bucket of the source object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The source object's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The action that triggered an R2 notification. An action this crate does not know is
/// kept as [`Unknown`](Self::Unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum R2Action {
    /// `PutObject`: an upload in one request.
    PutObject,
    /// `CopyObject`: a copy; the notification has a `copy_source`.
    CopyObject,
    /// `CompleteMultipartUpload`: the end of a multipart upload.
    CompleteMultipartUpload,
    /// `DeleteObject`: an explicit delete.
    DeleteObject,
    /// `LifecycleDeletion`: a delete by a lifecycle rule.
    LifecycleDeletion,
    /// An action this crate does not know yet, kept verbatim.
    Unknown(String),
}

impl R2Action {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            R2Action::PutObject => "PutObject",
            R2Action::CopyObject => "CopyObject",
            R2Action::CompleteMultipartUpload => "CompleteMultipartUpload",
            R2Action::DeleteObject => "DeleteObject",
            R2Action::LifecycleDeletion => "LifecycleDeletion",
            R2Action::Unknown(other) => other,
        }
    }

    /// Whether the object now exists with new content: the actions of R2's
    /// `object-create` event type (put, copy, completed multipart upload).
    pub fn is_object_create(&self) -> bool {
        matches!(
            self,
            R2Action::PutObject | R2Action::CopyObject | R2Action::CompleteMultipartUpload
        )
    }

    /// Whether the object is gone: the actions of R2's `object-delete` event type
    /// (explicit delete, lifecycle deletion).
    pub fn is_object_delete(&self) -> bool {
        matches!(self, R2Action::DeleteObject | R2Action::LifecycleDeletion)
    }
}

impl From<&str> for R2Action {
    fn from(value: &str) -> Self {
        match value {
            "PutObject" => R2Action::PutObject,
            "CopyObject" => R2Action::CopyObject,
            "CompleteMultipartUpload" => R2Action::CompleteMultipartUpload,
            "DeleteObject" => R2Action::DeleteObject,
            "LifecycleDeletion" => R2Action::LifecycleDeletion,
            other => R2Action::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for R2Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for R2Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for R2Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(R2Action::from(value.as_str()))
    }
}
