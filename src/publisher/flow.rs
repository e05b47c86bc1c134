//! Flow control: how many messages and encoded bytes may await the server at once.
//!
//! Two FIFO semaphores, one counting messages and one bytes. An accepted message holds a
//! [`Room`] (one message permit and its size in byte permits) until its outcome is known;
//! dropping the item, on any path, gives the room back, so room cannot leak. Tokio's
//! semaphore hands released permits to waiters in arrival order and `try_acquire` fails
//! while anyone waits, so a message never overtakes one that was waiting before it.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Room held by one accepted message.
#[derive(Debug)]
pub(crate) struct Room {
    _message: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
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
    messages: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_messages: usize,
    max_bytes: usize,
}

impl Flow {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        let max_messages = max_messages.min(Semaphore::MAX_PERMITS);
        let max_bytes = max_bytes.min(Semaphore::MAX_PERMITS);
        Flow {
            messages: Arc::new(Semaphore::new(max_messages)),
            bytes: Arc::new(Semaphore::new(max_bytes)),
            max_messages,
            max_bytes,
        }
    }

    /// Room for a message of `size` encoded bytes, now or never.
    pub(crate) fn try_reserve(&self, size: usize) -> Reserve {
        let Ok(n) = u32::try_from(size) else {
            return Reserve::Full;
        };
        let message = match self.messages.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => return Reserve::Full,
            Err(TryAcquireError::Closed) => return Reserve::Closed,
        };
        match self.bytes.clone().try_acquire_many_owned(n) {
            Ok(bytes) => Reserve::Room(Room {
                _message: message,
                _bytes: bytes,
            }),
            Err(TryAcquireError::NoPermits) => Reserve::Full,
            Err(TryAcquireError::Closed) => Reserve::Closed,
        }
    }

    /// Waits for room; `None` once flow control is closed (shutdown).
    pub(crate) async fn reserve(&self, size: usize) -> Option<Room> {
        let n = u32::try_from(size).ok()?;
        let message = self.messages.clone().acquire_owned().await.ok()?;
        let bytes = self.bytes.clone().acquire_many_owned(n).await.ok()?;
        Some(Room {
            _message: message,
            _bytes: bytes,
        })
    }

    /// Wakes every waiter with "closed"; held room is still given back on drop.
    pub(crate) fn close(&self) {
        self.messages.close();
        self.bytes.close();
    }

    /// Messages and bytes accepted and not yet answered.
    pub(crate) fn outstanding(&self) -> (usize, usize) {
        (
            self.max_messages
                .saturating_sub(self.messages.available_permits()),
            self.max_bytes
                .saturating_sub(self.bytes.available_permits()),
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
