//! The lease ledger: every undecided delivery, its current lease id and deadline, and
//! the slots that bound how many there are.
//!
//! Invariants, all kept here:
//!
//! * **Enter once, leave once.** A pulled message [enters](Ledger::enter) with a slot
//!   that was [reserved](Ledger::reserve) for it and gets a [`Key`]; it leaves exactly
//!   once, by [`Ledger::leave_with`] (settled) or [`Ledger::leave_all_with`] (shutdown),
//!   and leaving gives its slot back. A second leave of the same key finds nothing.
//!   `entered == left + len` at all times.
//! * **At most `max_in_flight` undecided.** Entering needs a reserved slot; slots only
//!   come back when an entry leaves or a reservation is not used.
//! * **Leave under the lock.** The closure given to a leave runs while the table is
//!   locked. The consumer hands the settlement to the flusher inside it, and shutdown
//!   closes the flusher inside [`Ledger::leave_all_with`]: a settlement is therefore
//!   either queued before the close or finds its entry gone, never lost in between.
//! * **The newest lease wins.** An entry's lease id and deadline change only through
//!   [`Ledger::extended`], and only if the entry still holds the lease the extension was
//!   sent for; a delivery settles with whatever lease id its entry holds when it leaves.
//! * **Only handed-out deliveries are extended**, and only until `max_lease` after they
//!   were leased, one request at a time per entry. Buffered ones are governed by the
//!   release-before-dispatch margin instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// Identifies one entry for its life in the ledger.
pub(crate) type Key = u64;

/// One undecided delivery.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The lease id to settle it with: the newest known.
    pub(crate) lease_id: String,
    /// When its lease ends.
    pub(crate) deadline: Instant,
    /// The message's id, to match new lease ids to it; shared with the delivery, not
    /// copied.
    message_id: Arc<str>,
    /// When it was first leased: `max_lease` counts from here.
    leased_at: Instant,
    /// Handed to the application: from now on its lease is extended.
    handed_out: bool,
    /// An extension request for it is in flight.
    extending: bool,
    /// The server would not extend it (a warning): not tried again.
    refused: bool,
}

/// A lease due for extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) key: Key,
    pub(crate) lease_id: String,
    pub(crate) message_id: Arc<str>,
    /// When its lease runs out if it is not extended.
    pub(crate) deadline: Instant,
}

/// What an extension request did for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Extended {
    /// Extended until `deadline`, with this new lease id (`None`: id unknown, keep the
    /// old one).
    Until {
        deadline: Instant,
        lease_id: Option<String>,
    },
    /// The server refused this lease; do not try it again.
    Refused,
    /// The request failed; the entry may be tried again when due.
    Failed,
}

/// Hashes the ledger's keys, which are sequence numbers the ledger hands out itself: a
/// multiply spreads them well, and no outsider chooses them (no need for SipHash's
/// defence against flooding, nor its cost on every enter and leave).
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Entries = HashMap<Key, Entry, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Debug, Default)]
struct Table {
    entries: Entries,
    next_key: Key,
    entered: u64,
    left: u64,
    /// When the extender plans to wake next; a hand-out due earlier wakes it.
    extender_wake: Option<Instant>,
}

/// The lease ledger (see the module docs for its invariants).
#[derive(Debug)]
pub(crate) struct Ledger {
    table: Mutex<Table>,
    emptied: Notify,
    slots: Semaphore,
    /// Wakes the extender when a hand-out is due before its planned wake.
    extension_due: Notify,
}

impl Entry {
    /// When this lease is due for extension (`margin` before its deadline), if it is a
    /// candidate at all: handed out, not being extended, not refused, and due before
    /// `max_lease` has passed since it was first leased.
    fn due(&self, margin: Duration, max_lease: Duration) -> Option<Instant> {
        if !self.handed_out || self.extending || self.refused {
            return None;
        }
        let due = self.deadline.checked_sub(margin).unwrap_or(self.deadline);
        let until = self.leased_at.checked_add(max_lease)?;
        (due < until).then_some(due)
    }
}

impl Ledger {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Ledger {
            table: Mutex::new(Table::default()),
            emptied: Notify::new(),
            slots: Semaphore::new(max_in_flight),
            extension_due: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Plain bookkeeping: a panic elsewhere must not wedge shutdown.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for at least `at_least` free slots, then takes up to `at_most`. Returns the
    /// number taken, or `None` once [`Ledger::close_slots`] was called.
    pub(crate) async fn reserve(&self, at_least: usize, at_most: usize) -> Option<usize> {
        let at_least = at_least.max(1);
        let permit = self
            .slots
            .acquire_many(u32::try_from(at_least).unwrap_or(u32::MAX))
            .await
            .ok()?;
        permit.forget();
        let mut taken = at_least;
        while taken < at_most {
            match self.slots.try_acquire() {
                Ok(p) => {
                    p.forget();
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        Some(taken)
    }

    /// Gives back reserved slots that no entry used.
    pub(crate) fn unreserve(&self, n: usize) {
        self.slots.add_permits(n);
    }

    /// Wakes every reservation and refuses new ones (shutdown).
    pub(crate) fn close_slots(&self) {
        self.slots.close();
    }

    /// Enters one delivery (tests; the puller enters a pull at a time).
    #[cfg(test)]
    pub(crate) fn enter(
        &self,
        lease_id: String,
        message_id: impl Into<Arc<str>>,
        leased_at: Instant,
        deadline: Instant,
    ) -> Key {
        let leases = std::iter::once((lease_id, message_id.into()));
        self.enter_many(leases, leased_at, deadline)[0]
    }

    /// Enters a pull's deliveries under one lock: `(lease id, message id)` each, all
    /// leased at `leased_at` until `deadline`. The keys come back in the same order.
    pub(crate) fn enter_many(
        &self,
        leases: impl ExactSizeIterator<Item = (String, Arc<str>)>,
        leased_at: Instant,
        deadline: Instant,
    ) -> Vec<Key> {
        let mut keys = Vec::with_capacity(leases.len());
        let mut t = self.lock();
        t.entries.reserve(leases.len());
        for (lease_id, message_id) in leases {
            let key = t.next_key;
            t.next_key += 1;
            t.entered += 1;
            t.entries.insert(
                key,
                Entry {
                    lease_id,
                    deadline,
                    message_id,
                    leased_at,
                    handed_out: false,
                    extending: false,
                    refused: false,
                },
            );
            keys.push(key);
        }
        keys
    }

    /// The deliveries reached the application: their leases are extended from now on.
    /// One lock for the whole batch. Wakes the extender if one of these leases is due
    /// before it planned to look again.
    pub(crate) fn hand_out_many(&self, keys: impl Iterator<Item = Key>, margin: Duration) {
        let mut t = self.lock();
        let mut earliest: Option<Instant> = None;
        for key in keys {
            if let Some(e) = t.entries.get_mut(&key) {
                e.handed_out = true;
                let due = e.deadline.checked_sub(margin).unwrap_or(e.deadline);
                earliest = Some(earliest.map_or(due, |d| d.min(due)));
            }
        }
        if let Some(due) = earliest {
            if t.extender_wake.is_none_or(|wake| due < wake) {
                t.extender_wake = Some(due);
                drop(t);
                self.extension_due.notify_one();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn hand_out(&self, key: Key, margin: Duration) {
        self.hand_out_many(std::iter::once(key), margin);
    }

    /// When the next lease is due for extension (its deadline minus `margin`), among
    /// handed-out entries within `max_lease` of their first lease; the extender sleeps
    /// until then (or until woken by [`Ledger::hand_out_many`]).
    pub(crate) fn next_extension(&self, margin: Duration, max_lease: Duration) -> Option<Instant> {
        let mut t = self.lock();
        let next = t
            .entries
            .values()
            .filter_map(|e| e.due(margin, max_lease))
            .min();
        t.extender_wake = next;
        next
    }

    /// Waits for [`Ledger::hand_out_many`] to say an earlier lease is due.
    pub(crate) async fn extension_wakeup(&self) {
        self.extension_due.notified().await;
    }

    /// Takes every lease due by `now + window` (so that leases due close together go in
    /// one request) and still within `max_lease`, and marks them as being extended.
    pub(crate) fn take_due(
        &self,
        now: Instant,
        margin: Duration,
        window: Duration,
        max_lease: Duration,
    ) -> Vec<Due> {
        let horizon = now.checked_add(window).unwrap_or(now);
        let mut t = self.lock();
        let mut due: Vec<Due> = t
            .entries
            .iter_mut()
            .filter(|(_, e)| {
                let within = e
                    .leased_at
                    .checked_add(max_lease)
                    .is_none_or(|end| now < end);
                within && e.due(margin, max_lease).is_some_and(|due| due <= horizon)
            })
            .map(|(key, e)| {
                e.extending = true;
                Due {
                    key: *key,
                    lease_id: e.lease_id.clone(),
                    message_id: e.message_id.clone(),
                    deadline: e.deadline,
                }
            })
            .collect();
        due.sort_by_key(|d| d.key);
        due
    }

    /// Applies what an extension did for `key`, if it still holds `sent` (a delivery
    /// settled meanwhile has left, and a newer lease is never overwritten).
    pub(crate) fn extended(&self, key: Key, sent: &str, what: Extended) {
        let mut t = self.lock();
        let Some(e) = t.entries.get_mut(&key) else {
            return;
        };
        e.extending = false;
        if e.lease_id != sent {
            return;
        }
        match what {
            Extended::Until { deadline, lease_id } => {
                e.deadline = e.deadline.max(deadline);
                if let Some(new) = lease_id {
                    e.lease_id = new;
                }
            }
            Extended::Refused => e.refused = true,
            Extended::Failed => {}
        }
    }

    /// The lease id `key` would be settled with now.
    pub(crate) fn lease_id(&self, key: Key) -> Option<String> {
        self.lock().entries.get(&key).map(|e| e.lease_id.clone())
    }

    /// Takes `key` out and runs `f` on it under the lock; `None` if it already left.
    pub(crate) fn leave_with<R>(&self, key: Key, f: impl FnOnce(Entry) -> R) -> Option<R> {
        let mut t = self.lock();
        let entry = t.entries.remove(&key)?;
        t.left += 1;
        let out = f(entry);
        let empty = t.entries.is_empty();
        drop(t);
        self.slots.add_permits(1);
        if empty {
            self.emptied.notify_waiters();
        }
        Some(out)
    }

    /// Takes every entry out and runs `f` on them under the lock (shutdown).
    pub(crate) fn leave_all_with<R>(&self, f: impl FnOnce(Vec<Entry>) -> R) -> R {
        let mut t = self.lock();
        let rest: Vec<Entry> = t.entries.drain().map(|(_, e)| e).collect();
        t.left += rest.len() as u64;
        let n = rest.len();
        let out = f(rest);
        drop(t);
        self.slots.add_permits(n);
        self.emptied.notify_waiters();
        out
    }

    /// The lease deadline of `key`, while it is in the ledger.
    pub(crate) fn deadline(&self, key: Key) -> Option<Instant> {
        self.lock().entries.get(&key).map(|e| e.deadline)
    }

    /// Undecided deliveries now.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Waits until the ledger is empty or `until` passes; true if it is empty.
    pub(crate) async fn wait_empty(&self, until: Instant) -> bool {
        loop {
            let emptied = self.emptied.notified();
            if self.len() == 0 {
                return true;
            }
            tokio::select! {
                () = emptied => {}
                () = tokio::time::sleep_until(until) => return self.len() == 0,
            }
        }
    }

    /// `(entered, left)` over the ledger's life.
    #[cfg(test)]
    pub(crate) fn totals(&self) -> (u64, u64) {
        let t = self.lock();
        (t.entered, t.left)
    }

    #[cfg(test)]
    pub(crate) fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(l: &Ledger, lease: &str, deadline: Instant) -> Key {
        l.enter(lease.into(), format!("m-{lease}"), Instant::now(), deadline)
    }

    fn balanced(l: &Ledger) -> bool {
        let (entered, left) = l.totals();
        entered == left + l.len() as u64
    }

    #[tokio::test(start_paused = true)]
    async fn entries_enter_once_and_leave_once() {
        let l = Ledger::new(4);
        assert_eq!(l.reserve(2, 3).await, Some(3));
        assert_eq!(l.free_slots(), 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        let a = put(&l, "la", deadline);
        let b = put(&l, "lb", deadline);
        l.unreserve(1);
        assert_eq!((l.len(), l.free_slots()), (2, 2));
        assert_eq!(l.leave_with(a, |e| e.lease_id), Some("la".to_owned()));
        assert_eq!(
            l.leave_with(a, |e| e.lease_id),
            None,
            "a second leave finds nothing"
        );
        assert_eq!(l.free_slots(), 3);
        assert!(balanced(&l));
        let rest =
            l.leave_all_with(|rest| rest.into_iter().map(|e| e.lease_id).collect::<Vec<_>>());
        assert_eq!(rest, ["lb"]);
        assert_eq!(l.leave_with(b, |_| ()), None);
        assert!(balanced(&l));
        assert_eq!((l.len(), l.free_slots()), (0, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_wait_for_slots_and_stop_when_closed() {
        let l = std::sync::Arc::new(Ledger::new(2));
        assert_eq!(l.reserve(2, 2).await, Some(2));
        let k = put(&l, "l", Instant::now());
        let waiting = tokio::spawn({
            let l = l.clone();
            async move { l.reserve(1, 5).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "no slot is free");
        l.leave_with(k, |_| ());
        assert_eq!(waiting.await.unwrap(), Some(1));
        l.close_slots();
        assert_eq!(l.reserve(1, 1).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_empty_ends_at_the_deadline() {
        let l = Ledger::new(1);
        l.reserve(1, 1).await;
        let k = put(&l, "l", Instant::now());
        let until = Instant::now() + Duration::from_secs(1);
        assert!(!l.wait_empty(until).await);
        assert_eq!(Instant::now(), until);
        l.leave_with(k, |_| ());
        assert!(l.wait_empty(until + Duration::from_secs(1)).await);
    }
}

#[cfg(test)]
mod extension_tests {
    use super::*;

    const MARGIN: Duration = Duration::from_secs(10);
    const MAX: Duration = Duration::from_secs(3600);

    fn ledger_with(n: usize, ttl: Duration) -> (Ledger, Vec<Key>) {
        let l = Ledger::new(n);
        let now = Instant::now();
        let keys = (0..n)
            .map(|i| l.enter(format!("l{i}"), format!("m{i}"), now, now + ttl))
            .collect();
        (l, keys)
    }

    #[tokio::test(start_paused = true)]
    async fn only_handed_out_leases_fall_due_and_each_is_taken_once() {
        let (l, keys) = ledger_with(3, Duration::from_secs(30));
        assert_eq!(
            l.next_extension(MARGIN, MAX),
            None,
            "nothing handed out yet"
        );
        l.hand_out(keys[0], MARGIN);
        l.hand_out(keys[2], MARGIN);
        let due_at = Instant::now() + Duration::from_secs(20);
        assert_eq!(l.next_extension(MARGIN, MAX), Some(due_at));
        assert!(
            l.take_due(Instant::now(), MARGIN, Duration::ZERO, MAX)
                .is_empty(),
            "not yet"
        );
        let due = l.take_due(due_at, MARGIN, Duration::ZERO, MAX);
        let leases: Vec<&str> = due.iter().map(|d| d.lease_id.as_str()).collect();
        assert_eq!(leases, ["l0", "l2"]);
        assert!(
            l.take_due(due_at, MARGIN, Duration::ZERO, MAX).is_empty(),
            "in flight"
        );
        assert_eq!(l.next_extension(MARGIN, MAX), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_extension_applies_only_to_the_lease_it_was_sent_for() {
        let (l, keys) = ledger_with(2, Duration::from_secs(30));
        for k in &keys {
            l.hand_out(*k, MARGIN);
        }
        let due = l.take_due(
            Instant::now() + Duration::from_secs(25),
            MARGIN,
            Duration::ZERO,
            MAX,
        );
        let later = Instant::now() + Duration::from_secs(55);
        l.extended(
            due[0].key,
            "l0",
            Extended::Until {
                deadline: later,
                lease_id: Some("l0b".into()),
            },
        );
        assert_eq!(
            (l.lease_id(keys[0]).as_deref(), l.deadline(keys[0])),
            (Some("l0b"), Some(later))
        );
        // A stale answer (sent for a lease the entry no longer holds) changes nothing.
        l.extended(
            keys[0],
            "l0",
            Extended::Until {
                deadline: later + MARGIN,
                lease_id: Some("zzz".into()),
            },
        );
        assert_eq!(l.lease_id(keys[0]).as_deref(), Some("l0b"));
        // A settled entry is gone: its late answer is ignored.
        l.leave_with(keys[1], |_| ());
        l.extended(
            keys[1],
            "l1",
            Extended::Until {
                deadline: later,
                lease_id: Some("l1b".into()),
            },
        );
        assert_eq!(l.lease_id(keys[1]), None);
        // Refused leases are not tried again; failed ones are.
        let (l, keys) = ledger_with(2, Duration::from_secs(30));
        for k in &keys {
            l.hand_out(*k, MARGIN);
        }
        let at = Instant::now() + Duration::from_secs(25);
        let due = l.take_due(at, MARGIN, Duration::ZERO, MAX);
        l.extended(due[0].key, "l0", Extended::Refused);
        l.extended(due[1].key, "l1", Extended::Failed);
        let again: Vec<String> = l
            .take_due(at, MARGIN, Duration::ZERO, MAX)
            .into_iter()
            .map(|d| d.lease_id)
            .collect();
        assert_eq!(again, ["l1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn max_lease_ends_extension_and_the_window_groups_nearby_leases() {
        let l = Ledger::new(3);
        let now = Instant::now();
        let a = l.enter("a".into(), "ma", now, now + Duration::from_secs(30));
        let b = l.enter("b".into(), "mb", now, now + Duration::from_secs(34));
        l.hand_out(a, MARGIN);
        l.hand_out(b, MARGIN);
        let at = now + Duration::from_secs(20);
        let window = Duration::from_secs(5);
        assert_eq!(
            l.take_due(at, MARGIN, window, MAX).len(),
            2,
            "b is due within the window"
        );
        let short = Duration::from_secs(15);
        let l = Ledger::new(1);
        let c = l.enter("c".into(), "mc", now, now + Duration::from_secs(30));
        l.hand_out(c, MARGIN);
        assert_eq!(l.next_extension(MARGIN, short), None, "due after max_lease");
        assert!(l.take_due(at, MARGIN, window, short).is_empty());
    }
}
