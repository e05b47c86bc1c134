//! The consumer's shared state and its lifecycle.
//!
//! Accounting rule: every pulled message enters the `outstanding` table and leaves it
//! exactly once: settled by the application, by the drop policy, by the decode-error
//! policy, released before dispatch, or force-released (or abandoned) at shutdown.
//! Leaving returns its slot and hands one settlement to the flusher, which counts it under
//! exactly one outcome once the server answers. So `pulled` always equals the sum of the
//! outcomes once the consumer has stopped.
//!
//! Two budgets bound the work: `slots` (undecided deliveries, `max_in_flight`) and
//! `unconfirmed` (settlements the server has not answered yet). Pullers wait for both,
//! so an ack outage stops the leasing of new messages instead of burning their attempts.

use super::delivery::{Delivery, ReceivedMessage, SettleOutcome, Settled, Ticket};
use super::{
    Config, ConsumerState, DecodeErrorPolicy, DropPolicy, ShutdownMode, ShutdownReport, Stats,
};
use crate::api::QueueHandle;
use crate::error::{Error, Result};
use crate::models::PulledMessage;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// What to tell the server about a lease.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Action {
    Ack,
    /// A retry; `None` leaves the delay to the consumer's configured `retry_delay`.
    Retry(Option<Duration>),
}

/// Which outcome a settlement counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Acked,
    Retried,
    Released,
    ExpiredBeforeDispatch,
}

/// One settlement on its way to the flusher.
#[derive(Debug)]
pub(crate) struct Settlement {
    pub(crate) lease_id: String,
    pub(crate) action: Action,
    pub(crate) kind: Kind,
    pub(crate) deadline: Instant,
    pub(crate) reply: Option<oneshot::Sender<Result<SettleOutcome>>>,
}

#[derive(Debug)]
pub(crate) enum Command {
    Settle(Settlement),
    /// Send everything queued before this now; answer once all of it is answered.
    Flush(oneshot::Sender<()>),
    /// Flush and stop (`abandon`: stop without sending anything).
    Close {
        abandon: bool,
    },
}

/// What the stream hands out, in order.
#[derive(Debug)]
pub(crate) enum Item {
    Delivery(Delivery),
    Fatal(Error),
    End,
}

#[derive(Debug)]
struct Outstanding {
    lease_id: String,
    deadline: Instant,
}

/// Plain counters; a snapshot is a [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) pulled: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) expired_before_dispatch: AtomicU64,
    pub(crate) failed_to_settle: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) pull_requests: AtomicU64,
    pub(crate) empty_pulls: AtomicU64,
    pub(crate) pull_errors: AtomicU64,
    pub(crate) ack_requests: AtomicU64,
    pub(crate) ack_request_failures: AtomicU64,
    pub(crate) settle_warnings: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    /// `message_backlog_count` of the last pull; `u64::MAX` until one arrives.
    pub(crate) backlog: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, kind: Kind) {
        let counter = match kind {
            Kind::Acked => &self.acked,
            Kind::Retried => &self.retried,
            Kind::Released => &self.released,
            Kind::ExpiredBeforeDispatch => &self.expired_before_dispatch,
        };
        Counters::add(counter, 1);
    }
}

#[derive(Debug, Default)]
struct Gate {
    closed: bool,
    running: usize,
}

#[derive(Debug, Default)]
struct Tasks {
    pullers: Vec<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
    started: bool,
}

/// Everything the consumer's parts share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) queue: QueueHandle,
    pub(crate) cfg: Config,
    pub(crate) counters: Counters,
    state: watch::Sender<ConsumerState>,
    pub(crate) slots: Semaphore,
    /// Slots owed because a pull returned more messages than asked for: settlements pay
    /// these back before returning slots, so the limit holds.
    owed_slots: AtomicU64,
    work: Notify,
    outstanding: Mutex<HashMap<u64, Outstanding>>,
    outstanding_empty: Notify,
    next_seq: AtomicU64,
    settle_tx: mpsc::UnboundedSender<Command>,
    settle_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    items_tx: mpsc::UnboundedSender<Item>,
    pub(crate) items_rx: Mutex<mpsc::UnboundedReceiver<Item>>,
    /// Pullers stop (shutdown, or a fatal error).
    stop: watch::Sender<bool>,
    abort_handlers: watch::Sender<bool>,
    abandoning: AtomicBool,
    gate: Mutex<Gate>,
    gate_idle: Notify,
    throttle_until: Mutex<Option<Instant>>,
    tasks: Mutex<Tasks>,
    /// Settlements handed to the flusher and not yet answered by the server.
    unconfirmed: AtomicU64,
    unconfirmed_cap: u64,
    confirmed: Notify,
    settle_backpressure: AtomicBool,
    /// Set the moment shutdown is asked for: the stream stops handing out deliveries.
    shutting_down: AtomicBool,
    report: watch::Sender<Option<ShutdownReport>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // These locks guard plain bookkeeping; a panic elsewhere must not wedge shutdown.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `now + d`, saturating far in the future instead of overflowing on absurd durations
/// (a server-sent `Retry-After`, a user's timeout).
pub(crate) fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

impl Shared {
    pub(crate) fn new(queue: QueueHandle, cfg: Config) -> Arc<Self> {
        let (settle_tx, settle_rx) = mpsc::unbounded_channel();
        let (items_tx, items_rx) = mpsc::unbounded_channel();
        let counters = Counters {
            backlog: AtomicU64::new(u64::MAX),
            ..Counters::default()
        };
        // Room for every slot, or for a full flusher (every ack request in flight full),
        // whichever is more: enough that confirmation latency alone never pauses pulls.
        let unconfirmed_cap = (cfg.max_in_flight as u64).max(
            (cfg.ack.max_entries as u64).saturating_mul(cfg.ack.max_concurrent_requests as u64),
        );
        Arc::new(Shared {
            slots: Semaphore::new(cfg.max_in_flight),
            owed_slots: AtomicU64::new(0),
            work: Notify::new(),
            queue,
            cfg,
            counters,
            state: watch::Sender::new(ConsumerState::Starting),
            outstanding: Mutex::new(HashMap::new()),
            outstanding_empty: Notify::new(),
            next_seq: AtomicU64::new(1),
            settle_tx,
            settle_rx: Mutex::new(Some(settle_rx)),
            items_tx,
            items_rx: Mutex::new(items_rx),
            stop: watch::Sender::new(false),
            abort_handlers: watch::Sender::new(false),
            abandoning: AtomicBool::new(false),
            gate: Mutex::new(Gate::default()),
            gate_idle: Notify::new(),
            throttle_until: Mutex::new(None),
            tasks: Mutex::new(Tasks::default()),
            unconfirmed: AtomicU64::new(0),
            unconfirmed_cap,
            confirmed: Notify::new(),
            settle_backpressure: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            report: watch::Sender::new(None),
        })
    }

    /// Spawns the flusher and the pullers on first use (inside the caller's runtime).
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        let mut tasks = lock(&self.tasks);
        if tasks.started || self.stopping() || self.is_shutting_down() {
            return;
        }
        tasks.started = true;
        if let Some(rx) = lock(&self.settle_rx).take() {
            tasks.flusher = Some(tokio::spawn(super::flusher::run(self.clone(), rx)));
        }
        for n in 0..self.cfg.max_concurrent_pulls {
            tasks
                .pullers
                .push(tokio::spawn(super::puller::run(self.clone(), n)));
        }
        self.set_state(ConsumerState::Running);
    }

    pub(crate) fn has_started(&self) -> bool {
        lock(&self.tasks).started
    }

    // ---- state --------------------------------------------------------------------

    pub(crate) fn set_state(&self, state: ConsumerState) -> ConsumerState {
        let previous = *self.state.borrow();
        // After shutdown begins, only shutdown itself moves the state.
        if matches!(previous, ConsumerState::Draining | ConsumerState::Stopped)
            && !matches!(state, ConsumerState::Stopped)
        {
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

    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub(crate) fn is_abandoning(&self) -> bool {
        self.abandoning.load(Ordering::Relaxed)
    }

    /// Whether shutdown has been asked for (it may still be running).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub(crate) fn abort_signal(&self) -> watch::Receiver<bool> {
        self.abort_handlers.subscribe()
    }

    /// Waits until `until`, or until pulling stops. Returns false if it stopped.
    pub(crate) async fn sleep_until(&self, until: Instant) -> bool {
        let mut stop = self.stop_signal();
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => !self.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    pub(crate) fn throttle(&self, until: Instant) {
        let mut t = lock(&self.throttle_until);
        if t.is_none_or(|current| current < until) {
            *t = Some(until);
        }
    }

    pub(crate) fn throttled_until(&self) -> Option<Instant> {
        let mut t = lock(&self.throttle_until);
        match *t {
            Some(until) if until > Instant::now() => Some(until),
            _ => {
                *t = None;
                None
            }
        }
    }

    // ---- intake -------------------------------------------------------------------

    /// Turns a pulled message into a delivery (registered as outstanding, holding one
    /// slot the caller already took). Applies the decode-error policy; returns `None`
    /// when the message was settled on the spot.
    pub(crate) fn admit(self: &Arc<Self>, m: PulledMessage, deadline: Instant) -> Option<Delivery> {
        Counters::add(&self.counters.pulled, 1);
        if m.lease_id.trim().is_empty() {
            // Nothing can settle it; its lease will run out and it will be redelivered.
            tracing::error!(message_id = %m.id, "pulled message without a lease id; it will come back after its lease");
            Counters::add(&self.counters.failed_to_settle, 1);
            self.return_slots(1);
            return None;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let outstanding = Outstanding {
            lease_id: m.lease_id.clone(),
            deadline,
        };
        lock(&self.outstanding).insert(seq, outstanding);
        let (msg, problem) = ReceivedMessage::from_pulled(m, deadline);
        let delivery = Delivery::new(msg, Ticket::new(self.clone(), seq));
        let Some(problem) = problem else {
            return Some(delivery);
        };
        Counters::add(&self.counters.decode_errors, 1);
        tracing::warn!(message_id = delivery.id(), error = %problem, policy = ?self.cfg.on_decode_error, "undecodable message body");
        match self.cfg.on_decode_error {
            DecodeErrorPolicy::Deliver => return Some(delivery),
            DecodeErrorPolicy::Retry(delay) => drop(delivery.retry(delay)),
            DecodeErrorPolicy::Release => drop(delivery.release()),
            DecodeErrorPolicy::Discard => drop(delivery.ack()),
        }
        None
    }

    pub(crate) fn dispatch(&self, item: Item) {
        // The receiver lives in `self`, so this cannot fail while `self` exists.
        let _ = self.items_tx.send(item);
    }

    // ---- settlement ---------------------------------------------------------------

    /// Takes `seq` out of the outstanding table and hands its settlement to the flusher.
    pub(crate) fn settle(&self, seq: u64, action: Action, kind: Kind) -> Settled {
        let (tx, rx) = oneshot::channel();
        let mut table = lock(&self.outstanding);
        let Some(entry) = table.remove(&seq) else {
            return Settled::ready(Err(Error::ConsumerClosed));
        };
        // Queued while the table is locked: shutdown empties the table and closes the
        // flusher under the same lock, so a settlement is either queued before the close
        // or finds its entry already gone. None can slip in after the close, uncounted.
        let settlement = Settlement {
            lease_id: entry.lease_id,
            action,
            kind,
            deadline: entry.deadline,
            reply: Some(tx),
        };
        let queued = self.enqueue(settlement);
        if table.is_empty() {
            self.outstanding_empty.notify_waiters();
        }
        drop(table);
        self.return_slots(1);
        if queued {
            Settled::waiting(rx)
        } else {
            Settled::ready(Err(Error::ConsumerClosed))
        }
    }

    /// Hands a settlement to the flusher; false (and counted as failed) once it is gone.
    /// Callers hold the outstanding table's lock (see `settle`).
    fn enqueue(&self, settlement: Settlement) -> bool {
        self.unconfirmed.fetch_add(1, Ordering::Relaxed);
        if self.settle_tx.send(Command::Settle(settlement)).is_err() {
            self.unconfirmed.fetch_sub(1, Ordering::Relaxed);
            Counters::add(&self.counters.failed_to_settle, 1);
            return false;
        }
        true
    }

    /// The flusher answered `n` settlements (confirmed, failed or abandoned).
    pub(crate) fn answered(&self, n: usize) {
        self.unconfirmed.fetch_sub(n as u64, Ordering::Relaxed);
        self.confirmed.notify_waiters();
    }

    /// Waits while too many settlements are unanswered (an ack outage, say), so that no
    /// more messages are leased meanwhile. Returns false if pulling stopped.
    pub(crate) async fn wait_for_settle_budget(&self) -> bool {
        let mut stop = self.stop_signal();
        loop {
            let confirmed = self.confirmed.notified();
            if self.unconfirmed.load(Ordering::Relaxed) < self.unconfirmed_cap {
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

    /// A delivery was dropped without a decision: settle it per the drop policy (or, while
    /// abandoning, just let the lease run out).
    pub(crate) fn settle_dropped(&self, seq: u64) {
        if self.abandoning.load(Ordering::Relaxed) {
            let taken = {
                let mut table = lock(&self.outstanding);
                let taken = table.remove(&seq).is_some();
                if table.is_empty() {
                    self.outstanding_empty.notify_waiters();
                }
                taken
            };
            if taken {
                self.return_slots(1);
                Counters::add(&self.counters.abandoned, 1);
            }
            return;
        }
        let (action, kind) = match self.cfg.on_drop {
            DropPolicy::Release => (Action::Retry(Some(Duration::ZERO)), Kind::Released),
            DropPolicy::Retry(delay) => (Action::Retry(Some(delay)), Kind::Retried),
        };
        drop(self.settle(seq, action, kind));
    }

    fn return_slots(&self, n: usize) {
        let mut n = n as u64;
        while n > 0 {
            let owed = self.owed_slots.load(Ordering::Relaxed);
            if owed == 0 {
                break;
            }
            let pay = owed.min(n);
            if self
                .owed_slots
                .compare_exchange(owed, owed - pay, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                n -= pay;
            }
        }
        self.slots
            .add_permits(usize::try_from(n).unwrap_or(usize::MAX));
    }

    pub(crate) fn owe_slots(&self, n: usize) {
        self.owed_slots.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A pull found messages: wake the pullers waiting on an idle queue.
    pub(crate) fn work_found(&self) {
        self.work.notify_waiters();
    }

    /// Waits until another puller finds work, `at_most` passes, or pulling stops.
    /// Returns false if it stopped.
    pub(crate) async fn wait_for_work(&self, at_most: Duration) -> bool {
        let mut stop = self.stop_signal();
        tokio::select! {
            () = self.work.notified() => !self.stopping(),
            () = tokio::time::sleep(at_most) => !self.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        lock(&self.outstanding).len()
    }

    async fn wait_outstanding_empty(&self, until: Instant) -> bool {
        loop {
            let notified = self.outstanding_empty.notified();
            if self.outstanding() == 0 {
                return true;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(until.into()) => return self.outstanding() == 0,
            }
        }
    }

    /// Sends every settlement made so far now, and waits for the server's answers.
    pub(crate) async fn flush(&self) {
        // Before the first poll nothing was pulled, so nothing can be pending (and no
        // flusher is reading the channel yet).
        if !self.has_started() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self.settle_tx.send(Command::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    // ---- handler gate (runner) ----------------------------------------------------

    /// Registers a starting handler; false once shutdown has begun.
    pub(crate) fn enter_handler(&self) -> bool {
        let mut gate = lock(&self.gate);
        if gate.closed {
            return false;
        }
        gate.running += 1;
        true
    }

    pub(crate) fn leave_handler(&self) {
        let mut gate = lock(&self.gate);
        gate.running = gate.running.saturating_sub(1);
        if gate.running == 0 {
            self.gate_idle.notify_waiters();
        }
    }

    async fn close_gate_and_wait(&self, until: Instant) -> bool {
        lock(&self.gate).closed = true;
        loop {
            let idle = self.gate_idle.notified();
            if lock(&self.gate).running == 0 {
                return true;
            }
            tokio::select! {
                () = idle => {}
                () = tokio::time::sleep_until(until.into()) => return lock(&self.gate).running == 0,
            }
        }
    }

    // ---- shutdown -----------------------------------------------------------------

    /// Ends the stream with a fatal error and stops pulling; deliveries already handed
    /// out can still be settled until shutdown.
    pub(crate) fn fail(&self, err: Error) {
        if self.stop.send_replace(true) {
            return;
        }
        tracing::error!(error = %err, "pull consumer stopped by a fatal error");
        self.dispatch(Item::Fatal(err));
        self.dispatch(Item::End);
    }

    /// Shuts down once; every caller waits for the same report. The work runs in its own
    /// task, so a caller that stops waiting (a timeout, a dropped future) cannot leave the
    /// shutdown half done.
    pub(crate) async fn shutdown(self: &Arc<Self>, mode: ShutdownMode) -> ShutdownReport {
        let mut report = self.report.subscribe();
        if !self.shutting_down.swap(true, Ordering::SeqCst) {
            let this = self.clone();
            tokio::spawn(async move {
                // Publishes a report even if the shutdown panicked (a bug), so that no
                // caller waits forever.
                let guard = PublishReport(this.clone());
                let report = this.run_shutdown(mode).await;
                guard.0.report.send_replace(Some(report));
            });
        }
        match report.wait_for(Option::is_some).await {
            Ok(r) => r
                .clone()
                .unwrap_or_else(|| ShutdownReport::from_stats(&self.stats())),
            Err(_) => ShutdownReport::from_stats(&self.stats()),
        }
    }

    async fn run_shutdown(self: Arc<Self>, mode: ShutdownMode) -> ShutdownReport {
        let abandon = matches!(mode, ShutdownMode::Abandon);
        tracing::info!(?mode, "pull consumer shutting down");
        self.set_state(ConsumerState::Draining);
        if abandon {
            self.abandoning.store(true, Ordering::Relaxed);
        }
        self.stop.send_replace(true);
        lock(&self.gate).closed = true;

        // 1. Pulls in flight finish (their messages are released, since we are stopping);
        //    only Abandon cuts them off at once. A pull that hangs (a client without a
        //    timeout) is cut off after the drain timeout, or 10 s.
        let pullers = std::mem::take(&mut lock(&self.tasks).pullers);
        let until = later(match mode {
            ShutdownMode::Drain { timeout } => timeout,
            ShutdownMode::ReleaseNow => Duration::from_secs(10),
            ShutdownMode::Abandon => Duration::ZERO,
        });
        for mut p in pullers {
            if abandon {
                p.abort();
            }
            tokio::select! {
                _ = &mut p => {}
                () = tokio::time::sleep_until(until.into()) => {
                    tracing::warn!("a pull did not finish in time; abandoning it (its leases will expire)");
                    p.abort();
                }
            }
        }

        // 2. Deliveries not yet handed out go back now.
        self.release_buffered();
        self.dispatch(Item::End);

        // 3. Running work finishes (Drain), or is stopped.
        if let ShutdownMode::Drain { timeout } = mode {
            if !self.wait_outstanding_empty(later(timeout)).await {
                tracing::warn!(
                    outstanding = self.outstanding(),
                    "drain timeout: releasing unsettled deliveries"
                );
            }
        }
        self.abort_handlers.send_replace(true);
        if !self
            .close_gate_and_wait(later(Duration::from_secs(5)))
            .await
        {
            tracing::error!("handlers did not stop within 5 s of being cancelled (blocking code?)");
        }
        self.release_buffered();

        // 4. Whatever the application still holds is released for it, and the flusher is
        //    closed, under the table lock: no settlement can be queued after the close.
        {
            let mut table = lock(&self.outstanding);
            let rest: Vec<Outstanding> = table.drain().map(|(_, o)| o).collect();
            self.outstanding_empty.notify_waiters();
            for o in &rest {
                if abandon {
                    Counters::add(&self.counters.abandoned, 1);
                    continue;
                }
                self.enqueue(Settlement {
                    lease_id: o.lease_id.clone(),
                    action: Action::Retry(Some(Duration::ZERO)),
                    kind: Kind::Released,
                    deadline: o.deadline,
                    reply: None,
                });
            }
            let _ = self.settle_tx.send(Command::Close { abandon });
            drop(table);
            self.return_slots(rest.len());
        }

        // 5. Every queued settlement is sent (or, abandoning, dropped) and answered.
        let flusher = lock(&self.tasks).flusher.take();
        match flusher {
            Some(f) => {
                let _ = f.await;
            }
            // Never started: what step 4 queued has no flusher to send it; count it.
            None => self.count_unflushed(),
        }
        self.set_state(ConsumerState::Stopped);
        let report = ShutdownReport::from_stats(&self.stats());
        tracing::info!(?report, "pull consumer stopped");
        report
    }

    /// Without a flusher task, settlements left in the channel can never be sent.
    fn count_unflushed(&self) {
        if let Some(mut rx) = lock(&self.settle_rx).take() {
            while let Ok(cmd) = rx.try_recv() {
                if let Command::Settle(s) = cmd {
                    Counters::add(&self.counters.failed_to_settle, 1);
                    self.answered(1);
                    if let Some(reply) = s.reply {
                        let _ = reply.send(Err(Error::ConsumerClosed));
                    }
                }
            }
        }
    }

    /// Releases every delivery still waiting in the stream's buffer. Other items (a fatal
    /// error, the end marker) are put back in order: the stream must still see them.
    fn release_buffered(&self) {
        let mut buffered = Vec::new();
        let mut keep = Vec::new();
        {
            let mut rx = lock(&self.items_rx);
            while let Ok(item) = rx.try_recv() {
                match item {
                    Item::Delivery(d) => buffered.push(d),
                    other => keep.push(other),
                }
            }
        }
        for item in keep {
            self.dispatch(item);
        }
        // These never reached the application: release them (or, abandoning, drop them
        // and let the leases run out).
        let abandoning = self.abandoning.load(Ordering::Relaxed);
        for d in buffered {
            if abandoning {
                drop(d);
            } else {
                drop(d.release());
            }
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let backlog = get(&c.backlog);
        Stats {
            state: self.state(),
            pulled: get(&c.pulled),
            acked: get(&c.acked),
            retried: get(&c.retried),
            released: get(&c.released),
            expired_before_dispatch: get(&c.expired_before_dispatch),
            failed_to_settle: get(&c.failed_to_settle),
            abandoned: get(&c.abandoned),
            pull_requests: get(&c.pull_requests),
            empty_pulls: get(&c.empty_pulls),
            pull_errors: get(&c.pull_errors),
            ack_requests: get(&c.ack_requests),
            ack_request_failures: get(&c.ack_request_failures),
            settle_warnings: get(&c.settle_warnings),
            decode_errors: get(&c.decode_errors),
            in_flight: self.outstanding() as u64,
            backlog: (backlog != u64::MAX).then_some(backlog),
        }
    }
}

/// Publishes whatever the counters say if the shutdown task ends without a report.
struct PublishReport(Arc<Shared>);

impl Drop for PublishReport {
    fn drop(&mut self) {
        let shared = &self.0;
        shared.report.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(ShutdownReport::from_stats(&shared.stats()));
            true
        });
    }
}
