//! Where a batch's messages get their outcomes: one [`Outcomes`] per batch, shared by
//! the batch (which answers) and its messages' `PublishFuture`s (which wait).
//!
//! One allocation per batch instead of a channel per message: a caller's future holds
//! the batch's `Arc` and its slot number, and the batch answers all its messages under
//! one lock, waking only the futures that are waiting. The batch's flow-control room is
//! held here too and given back when its last message is answered.

use super::Published;
use super::flow::Room;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The outcomes of one batch's messages.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    each: Vec<Slot>,
    unanswered: usize,
    /// The room the batch's messages hold, given back with the last answer.
    room: Option<Room>,
}

#[derive(Debug, Default)]
struct Slot {
    result: Option<Result<Published>>,
    waker: Option<Waker>,
    answered: bool,
}

impl Outcomes {
    pub(crate) fn new(capacity: usize) -> Arc<Outcomes> {
        Arc::new(Outcomes {
            slots: Mutex::new(Slots {
                each: Vec::with_capacity(capacity),
                unanswered: 0,
                room: None,
            }),
        })
    }

    /// Nothing panics under this lock; a poisoned one still holds consistent slots.
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for one more message, which holds `room` until the batch is answered.
    pub(crate) fn add(&self, room: Room) -> usize {
        let mut slots = self.lock();
        match &mut slots.room {
            Some(held) => held.merge(room),
            none => *none = Some(room),
        }
        slots.each.push(Slot::default());
        slots.unanswered += 1;
        slots.each.len() - 1
    }

    /// Gives each slot its result (a slot already answered keeps its first), wakes the
    /// futures waiting on them and, once every slot is answered, gives the room back.
    pub(crate) fn answer(&self, answers: impl IntoIterator<Item = (usize, Result<Published>)>) {
        let mut wake = Vec::new();
        let room = {
            let mut slots = self.lock();
            for (i, result) in answers {
                let Some(slot) = slots.each.get_mut(i) else {
                    continue;
                };
                if slot.answered {
                    continue;
                }
                slot.answered = true;
                slot.result = Some(result);
                wake.extend(slot.waker.take());
                slots.unanswered -= 1;
            }
            if slots.unanswered == 0 {
                slots.room.take()
            } else {
                None
            }
        };
        // Outside the lock: a woken future may be polled at once on another thread.
        drop(room);
        for waker in wake {
            waker.wake();
        }
    }

    /// The outcome of slot `i`, or `Pending` with the waker kept.
    pub(crate) fn poll(&self, i: usize, cx: &mut Context<'_>) -> Poll<Result<Published>> {
        let mut slots = self.lock();
        let Some(slot) = slots.each.get_mut(i) else {
            return Poll::Ready(Err(Error::PublisherClosed));
        };
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        if slot.answered {
            // Polled again after it returned its result.
            return Poll::Ready(Err(Error::PublisherClosed));
        }
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::flow::{Flow, Reserve};
    use futures::task::noop_waker_ref;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn room(flow: &Flow, bytes: usize) -> Room {
        match flow.try_reserve(bytes) {
            Reserve::Room(room) => room,
            other => panic!("room expected, got {other:?}"),
        }
    }

    fn stored(attempts: u32) -> Result<Published> {
        Ok(Published {
            queue_id: Arc::from("q"),
            attempts,
            possibly_duplicated: false,
        })
    }

    #[test]
    fn each_slot_gets_its_own_answer_once_and_the_room_goes_back_with_the_last() {
        let flow = Flow::new(10, 1000);
        let outcomes = Outcomes::new(3);
        let slots: Vec<usize> = [100, 200, 300]
            .into_iter()
            .map(|b| outcomes.add(room(&flow, b)))
            .collect();
        assert_eq!(slots, vec![0, 1, 2]);
        assert_eq!(flow.outstanding(), (3, 600));

        // A waiting future is woken by its answer, and only by its own.
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(outcomes.poll(1, &mut cx).is_pending());
        outcomes.answer([(0, stored(1)), (2, stored(3))]);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        assert_eq!(flow.outstanding(), (3, 600), "one message still unanswered");

        outcomes.answer([(1, stored(2)), (0, stored(9))]);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(flow.outstanding(), (0, 0), "every permit back at once");

        let mut noop = Context::from_waker(noop_waker_ref());
        let attempts = |p: Poll<Result<Published>>| match p {
            Poll::Ready(Ok(published)) => published.attempts(),
            other => panic!("stored expected, got {other:?}"),
        };
        // The first answer stands; a late second one is ignored.
        assert_eq!(attempts(outcomes.poll(0, &mut noop)), 1);
        assert_eq!(attempts(outcomes.poll(1, &mut cx)), 2);
        assert_eq!(attempts(outcomes.poll(2, &mut noop)), 3);
        // Polled again after its result: an error, not a panic or a hang.
        assert!(matches!(
            outcomes.poll(2, &mut noop),
            Poll::Ready(Err(Error::PublisherClosed))
        ));
    }
}
