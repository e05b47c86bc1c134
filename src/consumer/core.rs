//! What every part of one consumer shares: its settings, the server, the lease ledger,
//! the counters, its state, the way to the flusher, and the stop signals.
//!
//! Settling lives here because it joins three of these in one step: a delivery leaves
//! the ledger, its settlement goes to the flusher under the ledger's lock (see
//! `ledger.rs`), and the unconfirmed budget grows by one until the flusher answers.
//!
//! Two budgets bound the work: the ledger's slots (undecided deliveries,
//! `max_in_flight`) and `unconfirmed` (settlements the server has not answered yet).
//! Pullers wait for both, so an ack outage stops the leasing of new messages instead of
//! letting processed-but-unacknowledged ones pile up and run out of attempts.

use super::backend::Backend;
use super::config::{Config, DropPolicy};
use super::decision::{Command, Decision, Settled, Settlement};
use super::ledger::{Key, Ledger};
use super::report::{ConsumerState, Counters, Stats};
use crate::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

/// `now + d`, saturating a year ahead instead of overflowing on absurd durations (a
/// server-sent `Retry-After`, a user's timeout).
pub(crate) fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// The shared parts of one consumer (see the module docs).
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) cfg: Config,
    /// The queue's id, for metric labels.
    pub(crate) queue_id: Arc<str>,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) ledger: Ledger,
    pub(crate) counters: Counters,
    state: watch::Sender<ConsumerState>,
    settle_tx: mpsc::UnboundedSender<Command>,
    /// Settlements handed to the flusher and not yet answered.
    unconfirmed: AtomicU64,
    unconfirmed_cap: u64,
    confirmed: Notify,
    settle_backpressure: AtomicBool,
    /// Pullers stop (shutdown, or a fatal error).
    stop: watch::Sender<bool>,
    /// Running handlers are cancelled.
    abort_handlers: watch::Sender<bool>,
    /// The extender stops (shutdown: at once, or after a drain).
    stop_extending: watch::Sender<bool>,
    abandoning: AtomicBool,
    /// Set the moment shutdown is asked for: the stream stops handing out deliveries.
    shutting_down: AtomicBool,
    /// Tests: the name of a task that panics at its next turn.
    #[cfg(test)]
    pub(crate) fail_at: std::sync::Mutex<Option<&'static str>>,
}

impl Core {
    /// The core, and the receiving end of the flusher's channel.
    pub(crate) fn new(
        queue_id: &str,
        backend: Arc<dyn Backend>,
        cfg: Config,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Command>) {
        let (settle_tx, settle_rx) = mpsc::unbounded_channel();
        // Room for every slot, or for a full flusher (every ack request in flight full),
        // whichever is more: enough that confirmation latency alone never pauses pulls.
        let unconfirmed_cap = (cfg.max_in_flight as u64).max(
            (cfg.ack.max_entries as u64).saturating_mul(cfg.ack.max_concurrent_requests as u64),
        );
        let core = Core {
            ledger: Ledger::new(cfg.max_in_flight),
            queue_id: Arc::from(queue_id),
            backend,
            cfg,
            counters: Counters::default(),
            state: watch::Sender::new(ConsumerState::Starting),
            settle_tx,
            unconfirmed: AtomicU64::new(0),
            unconfirmed_cap,
            confirmed: Notify::new(),
            settle_backpressure: AtomicBool::new(false),
            stop: watch::Sender::new(false),
            abort_handlers: watch::Sender::new(false),
            stop_extending: watch::Sender::new(false),
            abandoning: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            #[cfg(test)]
            fail_at: std::sync::Mutex::new(None),
        };
        core.counters
            .extension_active
            .store(core.cfg.extension.is_some(), Ordering::Relaxed);
        (Arc::new(core), settle_rx)
    }

    // ---- state --------------------------------------------------------------------

    /// Moves to `state`; returns the previous one. Once a task failed or shutdown
    /// began, only shutdown moves the state: a dead task must never look healthy.
    pub(crate) fn set_state(&self, state: ConsumerState) -> ConsumerState {
        let previous = *self.state.borrow();
        let settled = matches!(
            previous,
            ConsumerState::Failed | ConsumerState::Draining | ConsumerState::Stopped
        );
        if settled && !matches!(state, ConsumerState::Stopped | ConsumerState::Draining) {
            return previous;
        }
        self.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
        previous
    }

    pub(crate) fn state(&self) -> ConsumerState {
        *self.state.borrow()
    }

    pub(crate) fn watch_state(&self) -> watch::Receiver<ConsumerState> {
        self.state.subscribe()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.state(), self.ledger.len())
    }

    /// Tests: panics here if `task` was told to (see `fail_at`).
    #[cfg(test)]
    pub(crate) fn fail_point(&self, task: &'static str) {
        let mut at = self
            .fail_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *at == Some(task) {
            *at = None;
            drop(at);
            panic!("fail point: {task}");
        }
    }

    // ---- signals ------------------------------------------------------------------

    /// Tells pullers to stop; returns whether they had already been told.
    pub(crate) fn stop_pulling(&self) -> bool {
        self.stop.send_replace(true)
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub(crate) fn stop_extending(&self) {
        self.stop_extending.send_replace(true);
    }

    pub(crate) fn extending_stopped(&self) -> watch::Receiver<bool> {
        self.stop_extending.subscribe()
    }

    pub(crate) fn abort_handlers(&self) {
        self.abort_handlers.send_replace(true);
    }

    pub(crate) fn abort_signal(&self) -> watch::Receiver<bool> {
        self.abort_handlers.subscribe()
    }

    pub(crate) fn begin_abandon(&self) {
        self.abandoning.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_abandoning(&self) -> bool {
        self.abandoning.load(Ordering::SeqCst)
    }

    /// Marks shutdown as asked for; returns whether it already was.
    pub(crate) fn begin_shutdown(&self) -> bool {
        self.shutting_down.swap(true, Ordering::SeqCst)
    }

    /// Whether shutdown has been asked for (it may still be running).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Waits until `until`, or until pulling stops. Returns false if it stopped.
    pub(crate) async fn sleep_until(&self, until: Instant) -> bool {
        let mut stop = self.stop_signal();
        tokio::select! {
            () = tokio::time::sleep_until(until) => !self.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    // ---- settlement ---------------------------------------------------------------

    /// Takes `key` out of the ledger and hands its settlement to the flusher.
    pub(crate) fn settle(&self, key: Key, decision: Decision) -> Settled {
        let (tx, rx) = oneshot::channel();
        let queued = self.ledger.leave_with(key, |entry| {
            self.enqueue(Settlement {
                lease_id: entry.lease_id,
                decision,
                deadline: entry.deadline,
                reply: Some(tx),
            })
        });
        match queued {
            Some(true) => Settled::waiting(rx),
            Some(false) | None => Settled::ready(Err(Error::ConsumerClosed)),
        }
    }

    /// [`Core::settle`] when nobody can await the answer: no reply channel is made.
    pub(crate) fn settle_detached(&self, key: Key, decision: Decision) {
        self.ledger.leave_with(key, |entry| {
            self.enqueue(Settlement {
                lease_id: entry.lease_id,
                decision,
                deadline: entry.deadline,
                reply: None,
            })
        });
    }

    /// A delivery was dropped without a decision: settle it per the drop policy (or,
    /// while abandoning, just let the lease run out).
    pub(crate) fn settle_dropped(&self, key: Key) {
        if self.is_abandoning() {
            if self.ledger.leave_with(key, |_| ()).is_some() {
                Counters::add(&self.counters.abandoned, 1);
            }
            return;
        }
        let decision = match self.cfg.on_drop {
            DropPolicy::Release => Decision::Release,
            DropPolicy::Retry(delay) => Decision::retry(Some(delay)),
        };
        self.settle_detached(key, decision);
    }

    /// Hands a settlement to the flusher; false (and counted as failed) once the flusher
    /// is gone. Called under the ledger's lock (see `ledger.rs`).
    pub(crate) fn enqueue(&self, settlement: Settlement) -> bool {
        self.unconfirmed.fetch_add(1, Ordering::SeqCst);
        if let Err(mpsc::error::SendError(Command::Settle(s))) =
            self.settle_tx.send(Command::Settle(settlement))
        {
            self.unconfirmed.fetch_sub(1, Ordering::SeqCst);
            Counters::add(&self.counters.failed_to_settle, 1);
            s.closed();
            return false;
        }
        true
    }

    /// Sends a command to the flusher; false if it is gone.
    pub(crate) fn command(&self, cmd: Command) -> bool {
        self.settle_tx.send(cmd).is_ok()
    }

    /// The flusher answered `n` settlements (confirmed, failed or abandoned).
    pub(crate) fn answered(&self, n: usize) {
        self.unconfirmed.fetch_sub(n as u64, Ordering::SeqCst);
        self.confirmed.notify_waiters();
    }

    /// Waits while too many settlements are unanswered (an ack outage, say), so that no
    /// more messages are leased meanwhile. Returns false if pulling stopped.
    pub(crate) async fn wait_for_settle_budget(&self) -> bool {
        let mut stop = self.stop_signal();
        loop {
            let confirmed = self.confirmed.notified();
            if self.unconfirmed.load(Ordering::SeqCst) < self.unconfirmed_cap {
                if self.settle_backpressure.swap(false, Ordering::Relaxed) {
                    tracing::info!("settlements are confirmed again; pulling resumes");
                }
                return !self.stopping();
            }
            if !self.settle_backpressure.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    unconfirmed = self.unconfirmed.load(Ordering::Relaxed),
                    "too many settlements await the server; pausing pulls until acks get through"
                );
            }
            tokio::select! {
                () = confirmed => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
        }
    }
}
