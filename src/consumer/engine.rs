//! The consumer's lifecycle: starting its tasks on first use, ending the stream on a
//! fatal error, flushing, and the one shutdown.

use super::config::ShutdownMode;
use super::core::Core;
use super::decision::{Command, Decision, Settlement, panic_message};
use super::delivery::Delivery;
use super::handout::{Handout, Item};
use super::puller::Pool;
use super::report::{ConsumerState, Counters, ShutdownReport, Stats};
use super::{extender, flusher, puller};
use crate::error::Error;
use futures::FutureExt as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct Tasks {
    pullers: Vec<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
    extender: Option<JoinHandle<()>>,
    /// Publishes the counters as metrics (feature `metrics`).
    metrics: Option<JoinHandle<()>>,
    started: bool,
}

/// Running handlers of [`PullConsumer::run`](super::PullConsumer::run), so that shutdown
/// can stop new ones from starting and wait for the running ones.
#[derive(Debug, Default)]
struct Gate {
    closed: bool,
    running: usize,
}

/// One consumer: its shared core, the hand-out queue, and its tasks.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) core: Arc<Core>,
    pub(crate) handout: Arc<Handout>,
    pool: Arc<Pool>,
    settle_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    tasks: Mutex<Tasks>,
    gate: Mutex<Gate>,
    gate_idle: Notify,
    report: watch::Sender<Option<ShutdownReport>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain bookkeeping: a panic elsewhere must not wedge shutdown.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    pub(crate) fn new(core: Arc<Core>, settle_rx: mpsc::UnboundedReceiver<Command>) -> Arc<Self> {
        Arc::new(Engine {
            core,
            handout: Arc::new(Handout::new()),
            pool: Arc::new(Pool::default()),
            settle_rx: Mutex::new(Some(settle_rx)),
            tasks: Mutex::new(Tasks::default()),
            gate: Mutex::new(Gate::default()),
            gate_idle: Notify::new(),
            report: watch::Sender::new(None),
        })
    }

    /// Spawns the flusher and the pullers on first use (inside the caller's runtime).
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        let mut tasks = lock(&self.tasks);
        if tasks.started || self.core.stopping() || self.core.is_shutting_down() {
            return;
        }
        tasks.started = true;
        if let Some(rx) = lock(&self.settle_rx).take() {
            let core = self.core.clone();
            tasks.flusher = Some(self.spawn("flusher", async move {
                flusher::run(core, rx).await;
                Ok(())
            }));
        }
        if self.core.cfg.extension.is_some() {
            tasks.extender = Some(self.spawn("extender", extender::run(self.core.clone())));
        }
        if cfg!(feature = "metrics") {
            let core = self.core.clone();
            tasks.metrics = Some(self.spawn("metrics", async move {
                // The counters live in the consumer; the metrics are their copies, once a
                // second (and at shutdown), so the hot path records nothing extra.
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    crate::metrics::consumer_snapshot(&core.queue_id, &core.stats());
                }
            }));
        }
        for n in 0..self.core.cfg.max_concurrent_pulls {
            let (core, handout, pool) =
                (self.core.clone(), self.handout.clone(), self.pool.clone());
            tasks
                .pullers
                .push(self.spawn("puller", puller::run(core, handout, pool, n)));
        }
        self.core.set_state(ConsumerState::Running);
    }

    /// Spawns one of the consumer's tasks, supervised: whatever ends it early (a fatal
    /// error it returns, a panic, or returning while the consumer should be running)
    /// ends the stream with that error, so a dead task never looks healthy. Its slots
    /// and settlements are accounted for by the ledger and the flusher's own cleanup.
    fn spawn<F>(self: &Arc<Self>, task: &'static str, work: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let err = match AssertUnwindSafe(work).catch_unwind().await {
                Ok(Ok(())) if this.core.stopping() => return,
                Ok(Err(err)) => err,
                Ok(Ok(())) => Error::ConsumerFailed {
                    task,
                    reason: "it ended while the consumer was running".into(),
                },
                Err(panic) => Error::ConsumerFailed {
                    task,
                    reason: format!("panicked: {}", panic_message(panic.as_ref())),
                },
            };
            if matches!(err, Error::ConsumerFailed { .. }) {
                this.core.set_state(ConsumerState::Failed);
            }
            this.fail(err);
        })
    }

    pub(crate) fn has_started(&self) -> bool {
        lock(&self.tasks).started
    }

    pub(crate) fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// Ends the stream with a fatal error and stops pulling; deliveries already handed
    /// out can still be settled until shutdown.
    pub(crate) fn fail(&self, err: Error) {
        if self.core.stop_pulling() {
            return;
        }
        tracing::error!(error = %err, "pull consumer stopped by a fatal error");
        self.handout.push(Item::Fatal(err));
        self.handout.push(Item::End);
    }

    /// Sends every settlement made so far now, and waits for the server's answers.
    pub(crate) async fn flush(&self) {
        // Before the first poll nothing was pulled, so nothing can be pending (and no
        // flusher is reading the channel yet).
        if !self.has_started() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self.core.command(Command::Flush(tx)) {
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
                () = tokio::time::sleep_until(until) => return lock(&self.gate).running == 0,
            }
        }
    }

    // ---- shutdown -----------------------------------------------------------------

    /// Shuts down once; every caller waits for the same report. The work runs in its own
    /// task, so a caller that stops waiting (a timeout, a dropped future) cannot leave the
    /// shutdown half done.
    pub(crate) async fn shutdown(self: &Arc<Self>, mode: ShutdownMode) -> ShutdownReport {
        let mut report = self.report.subscribe();
        if !self.core.begin_shutdown() {
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
        let core = &self.core;
        let abandon = matches!(mode, ShutdownMode::Abandon);
        let budget = Budget::new(mode, Instant::now());
        tracing::info!(?mode, "pull consumer shutting down");
        core.set_state(ConsumerState::Draining);
        if abandon {
            core.begin_abandon();
        }
        core.stop_pulling();
        core.ledger.close_slots();
        lock(&self.gate).closed = true;
        // A drain keeps extending running deliveries until its deadline (a long job
        // must not be redelivered mid-drain); the other modes stop at once.
        if !matches!(mode, ShutdownMode::Drain { .. }) {
            self.stop_extender();
        }

        // 1. Pulls in flight may finish until the budget allows (their messages are
        //    released, since we are stopping); then they are cut off and their leases
        //    expire. Abandon cuts them off at once.
        let pullers = std::mem::take(&mut lock(&self.tasks).pullers);
        for mut p in pullers {
            tokio::select! {
                _ = &mut p => {}
                () = tokio::time::sleep_until(budget.pulls) => {
                    if !abandon {
                        tracing::warn!("a pull did not finish in time; cutting it off (its leases will expire)");
                    }
                    p.abort();
                }
            }
        }

        // 2. Deliveries not yet handed out go back now.
        self.release_buffered();
        self.handout.push(Item::End);

        // 3. Running work finishes (Drain), or is stopped.
        if !core.ledger.wait_empty(budget.work).await && matches!(mode, ShutdownMode::Drain { .. })
        {
            tracing::warn!(
                outstanding = core.ledger.len(),
                "drain timeout: releasing unsettled deliveries"
            );
        }
        self.stop_extender();
        core.abort_handlers();
        if !self.close_gate_and_wait(budget.handlers).await {
            tracing::error!(
                "handlers did not stop when cancelled (blocking code?); not waiting for them"
            );
        }
        self.release_buffered();

        // 4. Whatever the application still holds is released for it, and the flusher is
        //    closed, under the ledger's lock: no settlement can be queued after the close.
        core.ledger.leave_all_with(|rest| {
            for entry in rest {
                if abandon {
                    Counters::add(&core.counters.abandoned, 1);
                    continue;
                }
                core.enqueue(Settlement {
                    lease_id: entry.lease_id,
                    decision: Decision::Release,
                    deadline: entry.deadline,
                    reply: None,
                });
            }
            core.command(Command::Close {
                abandon,
                deadline: budget.settle,
            });
        });

        // 5. Every queued settlement is sent (or, abandoning, dropped) and answered by
        //    the settle deadline; the flusher cancels what is left then. Should it not
        //    stop (a bug), it is cut off, and dropping it counts what it held.
        let flusher = lock(&self.tasks).flusher.take();
        if let Some(mut f) = flusher {
            tokio::select! {
                _ = &mut f => {}
                () = tokio::time::sleep_until(budget.settle + FLUSHER_GRACE) => {
                    tracing::error!("the flusher did not stop at the shutdown deadline; cutting it off");
                    f.abort();
                    let _ = f.await;
                }
            }
        }
        core.set_state(ConsumerState::Stopped);
        if let Some(task) = lock(&self.tasks).metrics.take() {
            task.abort();
        }
        crate::metrics::consumer_snapshot(&core.queue_id, &self.stats());
        let report = ShutdownReport::from_stats(&self.stats());
        tracing::info!(?report, "pull consumer stopped");
        report
    }

    /// Stops lease extension: no new request, and the ones in flight are cancelled.
    fn stop_extender(&self) {
        self.core.stop_extending();
        if let Some(task) = lock(&self.tasks).extender.take() {
            task.abort();
        }
    }

    /// Whether a delivery may go to the application now. Once shutdown has begun nothing
    /// is handed out (it is released); a delivery with less lease left than the margin
    /// is released too, rather than started on a lease about to run out.
    pub(crate) fn admissible(&self, d: Delivery, now: Instant) -> Option<Delivery> {
        let core = &self.core;
        if core.is_shutting_down() {
            d.decide_detached(Decision::Release);
            return None;
        }
        // Not yet extended: the deadline it arrived with is current.
        let remaining = d.first_deadline().saturating_duration_since(now);
        if remaining < core.cfg.lease_margin {
            tracing::debug!(
                message_id = d.id(),
                "lease nearly spent before dispatch; releasing"
            );
            d.decide_detached(Decision::ExpiredBeforeDispatch);
            return None;
        }
        Some(d)
    }

    /// Marks deliveries as in the application's hands: their leases are extended from
    /// now on.
    pub(crate) fn handed_out<'a>(&self, deliveries: impl IntoIterator<Item = &'a Delivery>) {
        if let Some(ext) = self.core.cfg.extension {
            self.core
                .ledger
                .hand_out_many(deliveries.into_iter().filter_map(Delivery::key), ext.margin);
        }
    }

    /// Releases every delivery still waiting in the hand-out queue (or, abandoning,
    /// drops them and lets the leases run out).
    pub(crate) fn release_buffered(&self) {
        let abandoning = self.core.is_abandoning();
        for d in self.handout.take_deliveries() {
            if abandoning {
                drop(d);
            } else {
                drop(d.release());
            }
        }
    }
}

/// How long the flusher may overrun its settle deadline before it is cut off.
const FLUSHER_GRACE: Duration = Duration::from_millis(50);

/// When each step of a shutdown must be done, from when it began. Whatever the server
/// does, `Drain(t)` returns within `t + 0.5 s`, `ReleaseNow` within 1.5 s and
/// `Abandon` within 1 s (`settle` plus the flusher's grace, plus scheduling).
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Pulls in flight are cut off.
    pulls: Instant,
    /// Handed-out deliveries may be settled by the application (drain).
    work: Instant,
    /// Cancelled handlers must have stopped.
    handlers: Instant,
    /// The last settlements must be answered; unanswered ones are cut off.
    settle: Instant,
}

impl Budget {
    fn new(mode: ShutdownMode, start: Instant) -> Self {
        let at = |d: Duration| start.checked_add(d).unwrap_or(start);
        let ms = Duration::from_millis;
        match mode {
            ShutdownMode::Drain { timeout } => Budget {
                pulls: at(timeout),
                work: at(timeout),
                handlers: at(timeout.saturating_add(ms(100))),
                settle: at(timeout.saturating_add(ms(400))),
            },
            ShutdownMode::ReleaseNow => Budget {
                pulls: at(ms(300)),
                work: start,
                handlers: at(ms(500)),
                settle: at(ms(1200)),
            },
            ShutdownMode::Abandon => Budget {
                pulls: start,
                work: start,
                handlers: at(ms(200)),
                settle: at(ms(300)),
            },
        }
    }
}

/// Publishes whatever the counters say if the shutdown task ends without a report.
struct PublishReport(Arc<Engine>);

impl Drop for PublishReport {
    fn drop(&mut self) {
        let engine = &self.0;
        engine.report.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(ShutdownReport::from_stats(&engine.stats()));
            true
        });
    }
}
