//! Flow control: how many messages and encoded bytes may await the server at once.
//!
//! Two FIFO semaphores, one counting messages and one bytes. Accepted messages hold a
//! [`Room`] (message permits and byte permits) until their outcome is known; a batch
//! merges its messages' rooms into one, so permits go back once per batch. Dropping a
//! room, on any path, gives its permits back, so room cannot leak. Tokio's semaphore
//! hands released permits to waiters in arrival order and `try_acquire` fails while
//! anyone waits, so a message never overtakes one that was waiting before it.

use std::sync::Arc;
use tokio::sync::{Semaphore, TryAcquireError};

#[derive(Debug)]
struct Permits {
    messages: Semaphore,
    bytes: Semaphore,
}

/// Room held by accepted messages: permits taken, given back on drop.
#[derive(Debug)]
pub(crate) struct Room {
    permits: Arc<Permits>,
    messages: usize,
    bytes: usize,
}

impl Room {
    /// Takes over `other`'s permits (both come from the same [`Flow`]).
    pub(crate) fn merge(&mut self, mut other: Room) {
        self.messages += std::mem::take(&mut other.messages);
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if self.messages > 0 {
            self.permits.messages.add_permits(self.messages);
        }
        if self.bytes > 0 {
            self.permits.bytes.add_permits(self.bytes);
        }
    }
}

/// What [`Flow::try_reserve`] found.
#[derive(Debug)]
pub(crate) enum Reserve {
    Room(Room),
    Full,
    Closed,
}

#[derive(Debug)]
pub(crate) struct Flow {
    permits: Arc<Permits>,
    max_messages: usize,
    max_bytes: usize,
}

impl Flow {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        let max_messages = max_messages.min(Semaphore::MAX_PERMITS);
        let max_bytes = max_bytes.min(Semaphore::MAX_PERMITS);
        Flow {
            permits: Arc::new(Permits {
                messages: Semaphore::new(max_messages),
                bytes: Semaphore::new(max_bytes),
            }),
            max_messages,
            max_bytes,
        }
    }

    fn room(&self, bytes: usize) -> Room {
        Room {
            permits: self.permits.clone(),
            messages: 1,
            bytes,
        }
    }

    /// Room for a message of `size` encoded bytes, now or never.
    pub(crate) fn try_reserve(&self, size: usize) -> Reserve {
        let Ok(n) = u32::try_from(size) else {
            return Reserve::Full;
        };
        match self.permits.messages.try_acquire() {
            Ok(p) => p.forget(),
            Err(TryAcquireError::NoPermits) => return Reserve::Full,
            Err(TryAcquireError::Closed) => return Reserve::Closed,
        }
        match self.permits.bytes.try_acquire_many(n) {
            Ok(p) => {
                p.forget();
                Reserve::Room(self.room(size))
            }
            Err(e) => {
                self.permits.messages.add_permits(1);
                match e {
                    TryAcquireError::NoPermits => Reserve::Full,
                    TryAcquireError::Closed => Reserve::Closed,
                }
            }
        }
    }

    /// Waits for room; `None` once flow control is closed (shutdown).
    pub(crate) async fn reserve(&self, size: usize) -> Option<Room> {
        let n = u32::try_from(size).ok()?;
        let message = self.permits.messages.acquire().await.ok()?;
        let bytes = self.permits.bytes.acquire_many(n).await.ok()?;
        message.forget();
        bytes.forget();
        Some(self.room(size))
    }

    /// Wakes every waiter with "closed"; held room is still given back on drop.
    pub(crate) fn close(&self) {
        self.permits.messages.close();
        self.permits.bytes.close();
    }

    /// Messages and bytes accepted and not yet answered.
    pub(crate) fn outstanding(&self) -> (usize, usize) {
        (
            self.max_messages
                .saturating_sub(self.permits.messages.available_permits()),
            self.max_bytes
                .saturating_sub(self.permits.bytes.available_permits()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_counted_and_given_back_on_drop() {
        let flow = Flow::new(2, 1000);
        let Reserve::Room(a) = flow.try_reserve(600) else {
            panic!("room expected")
        };
        assert_eq!(flow.outstanding(), (1, 600));
        // Bytes are short: full, and the message permit taken on the way is returned.
        assert!(matches!(flow.try_reserve(500), Reserve::Full));
        assert_eq!(flow.outstanding(), (1, 600));
        let Reserve::Room(b) = flow.try_reserve(400) else {
            panic!("room expected")
        };
        assert!(
            matches!(flow.try_reserve(0), Reserve::Full),
            "two messages at most"
        );
        drop(a);
        drop(b);
        assert_eq!(flow.outstanding(), (0, 0));
        flow.close();
        assert!(matches!(flow.try_reserve(1), Reserve::Closed));
    }

    #[test]
    fn merged_rooms_give_every_permit_back_once() {
        let flow = Flow::new(5, 1000);
        let rooms: Vec<Room> = [100, 200, 300]
            .into_iter()
            .map(|size| match flow.try_reserve(size) {
                Reserve::Room(room) => room,
                other => panic!("room expected, got {other:?}"),
            })
            .collect();
        let mut rooms = rooms.into_iter();
        let mut batch = rooms.next().unwrap();
        for room in rooms {
            batch.merge(room);
        }
        assert_eq!(flow.outstanding(), (3, 600), "merging gives nothing back");
        drop(batch);
        assert_eq!(flow.outstanding(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_order_and_woken_by_close() {
        let flow = Arc::new(Flow::new(1, 100));
        let Reserve::Room(held) = flow.try_reserve(10) else {
            panic!("room expected")
        };
        let first = tokio::spawn({
            let flow = flow.clone();
            async move { flow.reserve(10).await.is_some() }
        });
        tokio::task::yield_now().await;
        // Someone waits, so a newcomer cannot jump the queue even once room frees.
        drop(held);
        assert!(matches!(flow.try_reserve(10), Reserve::Full));
        assert!(first.await.unwrap(), "the waiter got the room");
        let waiting = tokio::spawn({
            let flow = flow.clone();
            async move {
                let _hold = flow.reserve(10).await;
                flow.reserve(10).await.is_none()
            }
        });
        tokio::task::yield_now().await;
        flow.close();
        assert!(waiting.await.unwrap(), "close wakes waiters with None");
    }
}
