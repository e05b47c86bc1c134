//! The hand-out queue between the pullers and the stream: deliveries in pull order,
//! then a fatal error and the end marker when there are any.

use super::delivery::Delivery;
use crate::error::Error;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// What the stream hands out, in order.
#[derive(Debug)]
pub(crate) enum Item {
    Delivery(Delivery),
    Fatal(Error),
    End,
}

/// An unbounded queue (the ledger's slots bound what is in it) with one reader.
#[derive(Debug)]
pub(crate) struct Handout {
    tx: mpsc::UnboundedSender<Item>,
    rx: Mutex<mpsc::UnboundedReceiver<Item>>,
}

impl Handout {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Handout {
            tx,
            rx: Mutex::new(rx),
        }
    }

    fn rx(&self) -> MutexGuard<'_, mpsc::UnboundedReceiver<Item>> {
        self.rx.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, item: Item) {
        // The receiver lives in `self`, so this cannot fail while `self` exists.
        let _ = self.tx.send(item);
    }

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx().poll_recv(cx)
    }

    /// Takes every delivery still waiting; other items (a fatal error, the end marker)
    /// are put back in order, since the stream must still see them.
    pub(crate) fn take_deliveries(&self) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let mut keep = Vec::new();
        {
            let mut rx = self.rx();
            while let Ok(item) = rx.try_recv() {
                match item {
                    Item::Delivery(d) => deliveries.push(d),
                    other => keep.push(other),
                }
            }
        }
        for item in keep {
            self.push(item);
        }
        deliveries
    }
}
