//! The hand-out queue between the pullers and the stream: a pull's deliveries as one
//! item, in pull order, then a fatal error and the end marker when there are any.
//!
//! One item per pull, not per delivery: the queue's cost is paid once per batch. The
//! reader side keeps what it has not handed out yet in a buffer, under the same lock, so
//! that shutdown can release everything still waiting.

use super::delivery::Delivery;
use crate::error::Error;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// What the pullers hand out, in order.
#[derive(Debug)]
pub(crate) enum Item {
    Deliveries(Vec<Delivery>),
    Fatal(Error),
    End,
}

/// What a reader takes next.
#[derive(Debug)]
pub(crate) enum Next<T> {
    Deliveries(T),
    Fatal(Error),
    End,
}

#[derive(Debug)]
struct Reader {
    rx: mpsc::UnboundedReceiver<Item>,
    /// Received and not yet taken, in order.
    buffer: VecDeque<Delivery>,
}

/// An unbounded queue (the ledger's slots bound what is in it) with one reader.
#[derive(Debug)]
pub(crate) struct Handout {
    tx: mpsc::UnboundedSender<Item>,
    reader: Mutex<Reader>,
}

impl Handout {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Handout {
            tx,
            reader: Mutex::new(Reader {
                rx,
                buffer: VecDeque::new(),
            }),
        }
    }

    fn reader(&self) -> MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, item: Item) {
        // The receiver lives in `self`, so this cannot fail while `self` exists.
        let _ = self.tx.send(item);
    }

    /// The next delivery (or the fatal error, or the end).
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Next<Delivery>>> {
        let mut r = self.reader();
        loop {
            if let Some(d) = r.buffer.pop_front() {
                return Poll::Ready(Some(Next::Deliveries(d)));
            }
            match r.rx.poll_recv(cx) {
                Poll::Ready(Some(Item::Deliveries(batch))) => r.buffer.extend(batch),
                Poll::Ready(Some(Item::Fatal(err))) => return Poll::Ready(Some(Next::Fatal(err))),
                Poll::Ready(Some(Item::End) | None) => return Poll::Ready(Some(Next::End)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Up to `max` deliveries at once (or the fatal error, or the end).
    pub(crate) fn poll_batch(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Option<Next<Vec<Delivery>>>> {
        let mut r = self.reader();
        if r.buffer.is_empty() {
            match r.rx.poll_recv(cx) {
                Poll::Ready(Some(Item::Deliveries(batch))) if batch.len() <= max => {
                    return Poll::Ready(Some(Next::Deliveries(batch)));
                }
                Poll::Ready(Some(Item::Deliveries(batch))) => r.buffer.extend(batch),
                Poll::Ready(Some(Item::Fatal(err))) => return Poll::Ready(Some(Next::Fatal(err))),
                Poll::Ready(Some(Item::End) | None) => return Poll::Ready(Some(Next::End)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = r.buffer.len().min(max);
        Poll::Ready(Some(Next::Deliveries(r.buffer.drain(..n).collect())))
    }

    /// Takes every delivery still waiting; other items (a fatal error, the end marker)
    /// are put back in order, since the reader must still see them.
    pub(crate) fn take_deliveries(&self) -> Vec<Delivery> {
        let mut keep = Vec::new();
        let mut deliveries: Vec<Delivery>;
        {
            let mut r = self.reader();
            deliveries = r.buffer.drain(..).collect();
            while let Ok(item) = r.rx.try_recv() {
                match item {
                    Item::Deliveries(batch) => deliveries.extend(batch),
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
