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

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// Identifies one entry for its life in the ledger.
pub(crate) type Key = u64;

/// One undecided delivery.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The lease id to settle it with.
    pub(crate) lease_id: String,
    /// When its lease ends.
    pub(crate) deadline: Instant,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    next_key: Key,
    entered: u64,
    left: u64,
}

/// The lease ledger (see the module docs for its invariants).
#[derive(Debug)]
pub(crate) struct Ledger {
    table: Mutex<Table>,
    emptied: Notify,
    slots: Semaphore,
}

impl Ledger {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Ledger {
            table: Mutex::new(Table::default()),
            emptied: Notify::new(),
            slots: Semaphore::new(max_in_flight),
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

    /// Enters a delivery, using a reserved slot.
    pub(crate) fn enter(&self, lease_id: String, deadline: Instant) -> Key {
        let mut t = self.lock();
        let key = t.next_key;
        t.next_key += 1;
        t.entered += 1;
        t.entries.insert(key, Entry { lease_id, deadline });
        key
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
    use std::time::Duration;

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
        let a = l.enter("la".into(), deadline);
        let b = l.enter("lb".into(), deadline);
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
        let k = l.enter("l".into(), Instant::now());
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
        let k = l.enter("l".into(), Instant::now());
        let until = Instant::now() + Duration::from_secs(1);
        assert!(!l.wait_empty(until).await);
        assert_eq!(Instant::now(), until);
        l.leave_with(k, |_| ());
        assert!(l.wait_empty(until + Duration::from_secs(1)).await);
    }
}
