//! The ledger: one compact record per message a queue has held, from which the public
//! [`MessageInfo`] values are built on demand.
//!
//! A record holds the payload once (a `Bytes`: a slice of one buffer per push request,
//! shared with a dead-letter queue's record of the same message and with pulls being
//! written out), the id as 16 bytes, the
//! content type as an index into a table of names, and a history of small fixed-size
//! events; its first event (published) is implied by the record itself. Nothing here
//! stores a message's wire form: pulls encode it when they write their response.
//!
//! Lease ids and peek refs are not stored either: they carry the record's position,
//! sealed with the queue's secret, and are checked when they come back (see
//! [`LeaseKey`]).

use super::faults::Rng;
use super::{MessageEvent, MessageEventKind, MessageInfo, MessageState};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Index of the `text` content type in [`Names`].
pub(crate) const TEXT: u32 = 0;
/// Index of the `json` content type in [`Names`].
pub(crate) const JSON: u32 = 1;
/// Index of the `bytes` content type in [`Names`].
pub(crate) const BYTES: u32 = 2;
/// Index of the `v8` content type in [`Names`].
pub(crate) const V8: u32 = 3;

/// Strings that many records share, kept once: content types and queue names and ids.
#[derive(Debug)]
pub(crate) struct Names {
    list: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

impl Names {
    pub(crate) fn new() -> Self {
        let mut names = Names {
            list: Vec::new(),
            index: HashMap::new(),
        };
        for builtin in ["text", "json", "bytes", "v8"] {
            names.intern(builtin);
        }
        names
    }

    /// The index of `name`, added if new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = Arc::from(name);
        self.list.push(name.clone());
        self.index.insert(name, i);
        i
    }

    /// The string at `index` (empty for an index never given out).
    pub(crate) fn get(&self, index: u32) -> &str {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.list.get(i))
            .map_or("", |s| s)
    }

    /// The string at `index`, shared.
    pub(crate) fn shared(&self, index: u32) -> Arc<str> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.list.get(i))
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// Reads exactly 16 lowercase hex digits as a big-endian `u64`.
fn read_hex_u64(digits: &[u8]) -> Option<u64> {
    if digits.len() != 16 {
        return None;
    }
    let mut v = 0u64;
    for &d in digits {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(nibble);
    }
    Some(v)
}

/// A message id: 16 random bytes, written as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageId([u8; 16]);

impl MessageId {
    /// A fresh id. The same draws as `Rng::hex(16)`, so the text is the same too.
    pub(crate) fn random(rng: &mut Rng) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        MessageId(bytes)
    }

    /// Appends the id's text.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        push_hex(out, &self.0);
    }

    /// The id's text.
    pub(crate) fn text(&self) -> String {
        let mut out = Vec::with_capacity(32);
        self.write(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash step.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const LEASE_PREFIX: &[u8] = b"lease-";
const REF_PREFIX: &[u8] = b"ref-";

/// What a lease id stands for: the `lease`-th lease (pulls and extensions count) of the
/// record at `idx`, given in its `delivery`-th delivery.
///
/// The id is `lease-` and 48 hex digits: the three fields masked, then a tag, all keyed
/// by the queue's secret. Only ids this queue issued read back (a lease of another
/// queue, or a made-up one, fails the tag), so no table of issued leases is kept, and
/// every lease ever issued for a message stays valid for acking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseKey {
    pub(crate) idx: u64,
    pub(crate) delivery: u32,
    pub(crate) lease: u32,
}

impl LeaseKey {
    /// The three words of the lease id: masked index, masked delivery and lease, tag.
    pub(crate) fn seal(self, secret: u64) -> [u64; 3] {
        let packed = (u64::from(self.delivery) << 32) | u64::from(self.lease);
        let tag = mix(secret ^ mix(self.idx ^ mix(packed ^ 0x1ea5e)));
        let mask = mix(tag ^ secret);
        [self.idx ^ mask, packed ^ mix(mask ^ 0x5eed), tag]
    }

    /// Appends the lease id of sealed `words`.
    pub(crate) fn write(words: [u64; 3], out: &mut Vec<u8>) {
        out.extend_from_slice(LEASE_PREFIX);
        for w in words {
            push_hex(out, &w.to_be_bytes());
        }
    }

    /// The lease id, as text.
    pub(crate) fn text(self, secret: u64) -> String {
        let mut out = Vec::with_capacity(LEASE_PREFIX.len() + 48);
        Self::write(self.seal(secret), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads a lease id this queue issued; `None` for anything else.
    pub(crate) fn open(text: &str, secret: u64) -> Option<LeaseKey> {
        let hex = text.as_bytes().strip_prefix(LEASE_PREFIX)?;
        if hex.len() != 48 {
            return None;
        }
        let idx_masked = read_hex_u64(&hex[..16])?;
        let packed_masked = read_hex_u64(&hex[16..32])?;
        let tag = read_hex_u64(&hex[32..])?;
        let mask = mix(tag ^ secret);
        let packed = packed_masked ^ mix(mask ^ 0x5eed);
        let key = LeaseKey {
            idx: idx_masked ^ mask,
            delivery: u32::try_from(packed >> 32).ok()?,
            lease: u32::try_from(packed & 0xffff_ffff).ok()?,
        };
        (key.seal(secret)[2] == tag).then_some(key)
    }
}

/// A peek ref: `ref-` and 32 hex digits, the record's index masked and a tag, keyed by
/// the queue's secret like a lease id.
pub(crate) fn peek_ref(idx: u64, secret: u64) -> String {
    let tag = mix(secret ^ mix(idx ^ 0x9eef));
    let mut out = Vec::with_capacity(REF_PREFIX.len() + 32);
    out.extend_from_slice(REF_PREFIX);
    push_hex(&mut out, &(idx ^ mix(tag ^ secret)).to_be_bytes());
    push_hex(&mut out, &tag.to_be_bytes());
    String::from_utf8(out).unwrap_or_default()
}

/// Reads a peek ref this queue issued: the record's index.
pub(crate) fn open_peek_ref(text: &str, secret: u64) -> Option<u64> {
    let hex = text.as_bytes().strip_prefix(REF_PREFIX)?;
    if hex.len() != 32 {
        return None;
    }
    let tag = read_hex_u64(&hex[16..])?;
    let idx = read_hex_u64(&hex[..16])? ^ mix(tag ^ secret);
    (mix(secret ^ mix(idx ^ 0x9eef)) == tag).then_some(idx)
}

/// What happened to a message after it arrived; see [`MessageEventKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DeadLetterArrived,
    Leased,
    Acked,
    AckedAgain,
    Retried,
    LeaseExpired,
    DeadLettered,
    Dropped,
    Purged,
    Expired,
}

/// One event of a record's history, in 24 bytes: `arg` is a duration in nanoseconds or
/// an index into [`Names`], depending on the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    at_ms: u64,
    arg: u64,
    attempt: u32,
    kind: Kind,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Event {
    fn new(at_ms: u64, kind: Kind) -> Self {
        Event {
            at_ms,
            arg: 0,
            attempt: 0,
            kind,
        }
    }

    /// Arrived from the queue whose id is `from` (an index into [`Names`]).
    pub(crate) fn dead_letter_arrived(at_ms: u64, from: u32) -> Self {
        Event {
            arg: u64::from(from),
            ..Event::new(at_ms, Kind::DeadLetterArrived)
        }
    }

    pub(crate) fn leased(at_ms: u64, attempt: u32, visibility: Duration) -> Self {
        Event {
            arg: nanos(visibility),
            attempt,
            ..Event::new(at_ms, Kind::Leased)
        }
    }

    pub(crate) fn acked(at_ms: u64) -> Self {
        Event::new(at_ms, Kind::Acked)
    }

    pub(crate) fn acked_again(at_ms: u64) -> Self {
        Event::new(at_ms, Kind::AckedAgain)
    }

    pub(crate) fn retried(at_ms: u64, delay: Duration) -> Self {
        Event {
            arg: nanos(delay),
            ..Event::new(at_ms, Kind::Retried)
        }
    }

    pub(crate) fn lease_expired(at_ms: u64) -> Self {
        Event::new(at_ms, Kind::LeaseExpired)
    }

    /// Moved to the dead-letter queue named `queue` (an index into [`Names`]).
    pub(crate) fn dead_lettered(at_ms: u64, queue: u32) -> Self {
        Event {
            arg: u64::from(queue),
            ..Event::new(at_ms, Kind::DeadLettered)
        }
    }

    /// The event that ends a message in `state`, if that state ends it.
    pub(crate) fn ended(at_ms: u64, state: MessageState, dead_letter_queue: u32) -> Option<Self> {
        Some(match state {
            MessageState::Acked => Event::acked(at_ms),
            MessageState::DeadLettered => Event::dead_lettered(at_ms, dead_letter_queue),
            MessageState::Dropped => Event::new(at_ms, Kind::Dropped),
            MessageState::Purged => Event::new(at_ms, Kind::Purged),
            MessageState::Expired => Event::new(at_ms, Kind::Expired),
            _ => return None,
        })
    }

    fn public(&self, names: &Names) -> MessageEvent {
        let name = || {
            names
                .get(u32::try_from(self.arg).unwrap_or(u32::MAX))
                .to_owned()
        };
        let kind = match self.kind {
            Kind::DeadLetterArrived => MessageEventKind::DeadLetterArrived {
                from_queue_id: name(),
            },
            Kind::Leased => MessageEventKind::Leased {
                attempt: self.attempt,
                visibility_timeout: Duration::from_nanos(self.arg),
            },
            Kind::Acked => MessageEventKind::Acked,
            Kind::AckedAgain => MessageEventKind::AckedAgain,
            Kind::Retried => MessageEventKind::Retried {
                delay: Duration::from_nanos(self.arg),
            },
            Kind::LeaseExpired => MessageEventKind::LeaseExpired,
            Kind::DeadLettered => MessageEventKind::DeadLettered { queue: name() },
            Kind::Dropped => MessageEventKind::Dropped,
            Kind::Purged => MessageEventKind::Purged,
            Kind::Expired => MessageEventKind::Expired,
        };
        MessageEvent {
            at_ms: self.at_ms,
            kind,
        }
    }
}

/// One message a queue has held, live or gone.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// The payload: a `text` body's UTF-8, a `json` body's JSON text, other bodies as
    /// published.
    pub(crate) body: Bytes,
    pub(crate) id: MessageId,
    /// Publish time (for a dead-lettered message, its first publish).
    pub(crate) published_ms: u64,
    /// Its publish delay in nanoseconds (0 for a dead-letter arrival).
    pub(crate) delay_ns: u64,
    /// While available: deliverable from. While leased: the lease's deadline.
    pub(crate) at: u64,
    /// Events after its arrival, oldest first.
    pub(crate) history: Vec<Event>,
    /// Content type, an index into [`Names`].
    pub(crate) content_type: u32,
    /// The `attempts` of its current or last delivery.
    pub(crate) attempts: u32,
    pub(crate) deliveries: u32,
    /// Leases given so far (pulls and extensions); the newest lease's number.
    pub(crate) leases_given: u32,
    pub(crate) duplicate_acks: u32,
    pub(crate) retries: u32,
    pub(crate) expiries: u32,
    pub(crate) extensions: u32,
    /// Never `Delayed`: that is `Available` with `at` in the future.
    pub(crate) state: MessageState,
    /// It arrived from another queue's consumer (its first event says which), rather
    /// than being published here.
    pub(crate) dead_letter_arrival: bool,
}

impl Record {
    /// A message arriving at `now`, published at `published_ms` with `delay`,
    /// deliverable from `at`.
    pub(crate) fn new(
        id: MessageId,
        body: Bytes,
        content_type: u32,
        published_ms: u64,
        delay: Duration,
        at: u64,
    ) -> Self {
        Record {
            body,
            id,
            published_ms,
            delay_ns: nanos(delay),
            at,
            history: Vec::new(),
            content_type,
            attempts: 0,
            deliveries: 0,
            leases_given: 0,
            duplicate_acks: 0,
            retries: 0,
            expiries: 0,
            extensions: 0,
            state: MessageState::Available,
            dead_letter_arrival: false,
        }
    }

    /// Still in the queue: available, delayed or leased.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.state, MessageState::Available | MessageState::Leased)
    }

    /// Its state as the public API reports it at `now`.
    pub(crate) fn state_at(&self, now: u64) -> MessageState {
        match self.state {
            MessageState::Available if self.at > now => MessageState::Delayed,
            other => other,
        }
    }

    /// Acks that removed it: 0 or 1.
    pub(crate) fn acks(&self) -> u32 {
        u32::from(self.state == MessageState::Acked)
    }

    /// The public view of the record at `now`.
    pub(crate) fn info(&self, names: &Names, now: u64) -> MessageInfo {
        let mut history = Vec::with_capacity(self.history.len() + 1);
        if !self.dead_letter_arrival {
            history.push(MessageEvent {
                at_ms: self.published_ms,
                kind: MessageEventKind::Published {
                    delay: Duration::from_nanos(self.delay_ns),
                },
            });
        }
        history.extend(self.history.iter().map(|e| e.public(names)));
        MessageInfo {
            id: self.id.text(),
            state: self.state_at(now),
            content_type: names.get(self.content_type).to_owned(),
            body: self.body.to_vec(),
            published_ms: self.published_ms,
            delay: Duration::from_millis(self.delay_ns / 1_000_000),
            attempts: self.attempts,
            deliveries: self.deliveries,
            acks: self.acks(),
            duplicate_acks: self.duplicate_acks,
            retries: self.retries,
            expiries: self.expiries,
            extensions: self.extensions,
            history,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_like_the_generators_hex() {
        let id = MessageId::random(&mut Rng::new(7));
        assert_eq!(id.text(), Rng::new(7).hex(16));
    }

    #[test]
    fn lease_ids_read_back_only_with_their_queues_secret() {
        let key = LeaseKey {
            idx: 123_456,
            delivery: 3,
            lease: 9,
        };
        let text = key.text(42);
        assert!(text.starts_with("lease-") && text.len() == 54, "{text}");
        assert_eq!(LeaseKey::open(&text, 42), Some(key));
        assert_eq!(LeaseKey::open(&text, 43), None, "another queue's lease");
        let other = LeaseKey { lease: 10, ..key }.text(42);
        assert_ne!(other, text, "every lease has its own id");
        for bad in [
            "",
            "lease-",
            "nope",
            &text[..53],
            &format!("{text}0"),
            &text.to_uppercase(),
            &text.replace("lease-", "lease_"),
        ] {
            assert_eq!(LeaseKey::open(bad, 42), None, "{bad}");
        }
        // Any one digit changed fails the tag.
        for i in 6..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(LeaseKey::open(&changed, 42), None, "{changed}");
        }
    }

    #[test]
    fn peek_refs_read_back_only_with_their_queues_secret() {
        let r = peek_ref(77, 5);
        assert!(r.starts_with("ref-") && r.len() == 36, "{r}");
        assert_eq!(open_peek_ref(&r, 5), Some(77));
        assert_eq!(open_peek_ref(&r, 6), None);
        assert_eq!(open_peek_ref("ref-xyz", 5), None);
        assert_eq!(
            open_peek_ref(
                &LeaseKey {
                    idx: 77,
                    delivery: 1,
                    lease: 1
                }
                .text(5),
                5
            ),
            None
        );
    }

    #[test]
    fn names_are_interned_once() {
        let mut names = Names::new();
        assert_eq!(names.intern("text"), TEXT);
        assert_eq!(names.intern("v8"), V8);
        let custom = names.intern("custom");
        assert_eq!(names.intern("custom"), custom);
        assert_eq!(names.get(custom), "custom");
        assert_eq!(names.get(9_999), "");
        assert_eq!((JSON, BYTES), (1, 2));
    }

    #[test]
    fn events_are_small() {
        assert!(std::mem::size_of::<Event>() <= 24);
    }
}
