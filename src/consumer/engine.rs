//! The consumer's lifecycle: starting its tasks on first use, ending the stream on a
//! fatal error, flushing, and the one shutdown.

use super::config::ShutdownMode;
use super::core::{Core, later};
use super::decision::{Command, Decision, Settlement};
use super::handout::{Handout, Item};
use super::puller::Pool;
use super::report::{ConsumerState, Counters, ShutdownReport, Stats};
use super::{flusher, puller};
use crate::error::Error;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct Tasks {
    pullers: Vec<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
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
            tasks.flusher = Some(tokio::spawn(flusher::run(self.core.clone(), rx)));
        }
        for n in 0..self.core.cfg.max_concurrent_pulls {
            let this = self.clone();
            tasks.pullers.push(tokio::spawn(async move {
                let pulled = puller::run(
                    this.core.clone(),
                    this.handout.clone(),
                    this.pool.clone(),
                    n,
                )
                .await;
                if let Err(err) = pulled {
                    this.fail(err);
                }
            }));
        }
        self.core.set_state(ConsumerState::Running);
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
        tracing::info!(?mode, "pull consumer shutting down");
        core.set_state(ConsumerState::Draining);
        if abandon {
            core.begin_abandon();
        }
        core.stop_pulling();
        core.ledger.close_slots();
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
                () = tokio::time::sleep_until(until) => {
                    tracing::warn!("a pull did not finish in time; abandoning it (its leases will expire)");
                    p.abort();
                }
            }
        }

        // 2. Deliveries not yet handed out go back now.
        self.release_buffered();
        self.handout.push(Item::End);

        // 3. Running work finishes (Drain), or is stopped.
        if let ShutdownMode::Drain { timeout } = mode {
            if !core.ledger.wait_empty(later(timeout)).await {
                tracing::warn!(
                    outstanding = core.ledger.len(),
                    "drain timeout: releasing unsettled deliveries"
                );
            }
        }
        core.abort_handlers();
        if !self
            .close_gate_and_wait(later(Duration::from_secs(5)))
            .await
        {
            tracing::error!("handlers did not stop within 5 s of being cancelled (blocking code?)");
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
            core.command(Command::Close { abandon });
        });

        // 5. Every queued settlement is sent (or, abandoning, dropped) and answered.
        let flusher = lock(&self.tasks).flusher.take();
        match flusher {
            Some(f) => {
                let _ = f.await;
            }
            // Never started: what step 4 queued has no flusher to send it; count it.
            None => self.count_unflushed(),
        }
        core.set_state(ConsumerState::Stopped);
        let report = ShutdownReport::from_stats(&self.stats());
        tracing::info!(?report, "pull consumer stopped");
        report
    }

    /// Without a flusher task, settlements left in the channel can never be sent.
    fn count_unflushed(&self) {
        if let Some(mut rx) = lock(&self.settle_rx).take() {
            while let Ok(cmd) = rx.try_recv() {
                if let Command::Settle(s) = cmd {
                    Counters::add(&self.core.counters.failed_to_settle, 1);
                    self.core.answered(1);
                    s.closed();
                }
            }
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
