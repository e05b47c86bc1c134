//! [`Redrive`]: moves every message of a queue (typically a dead-letter queue, once the
//! bug that sent messages there is fixed) to another queue.
//!
//! `concurrency` workers each loop: lease a batch from the source (`pull`), publish each
//! message through one shared [`Publisher`] for the target, then, in one ack request,
//! acknowledge the messages whose publish the server confirmed and release the others.
//! A message is acknowledged only after the target stored it, so stopping at any point
//! (a crash, a cancelled future) loses nothing: what was leased and not acknowledged
//! comes back to the source after the visibility timeout, and a second redrive moves it.
//! That is at least once: a message published but not yet acknowledged when the process
//! died is published again by the next run, and a publish whose response was lost is
//! sent again by the Publisher (counted in `possibly_duplicated`). When every failure is
//! a refusal (429, 5xx before anything was applied), every message arrives exactly once.
//!
//! Bodies keep their content type: `text` is published as the same text, `json` as the
//! same JSON value (re-serialised, so whitespace and key order may differ). `bytes` and
//! `v8` bodies cannot be published over the REST API; they are left in the source with a
//! delay (`skip_delay`) so that this run does not see them again, and counted as skipped.

use super::Publisher;
use super::builder::PublisherBuilder;
use super::report::PublisherReport;
use crate::api::QueueHandle;
use crate::error::{Error, Result};
use crate::models::{ContentType, Message, PullResult, PulledMessage, RejectedMessage};
use crate::retry::{Backoff, RetryPolicy};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

type ProgressFn = dyn Fn(&RedriveProgress) + Send + Sync;

/// Moves messages from one queue to another; start with [`QueueHandle::redrive_to`] and
/// await it (or call [`run`](Redrive::run)).
#[must_use = "a redrive does nothing until it is awaited"]
pub struct Redrive {
    source: QueueHandle,
    target_id: String,
    publisher: PublisherBuilder,
    max_messages: Option<u64>,
    batch_size: u32,
    visibility_timeout: Duration,
    concurrency: usize,
    skip_delay: Duration,
    backoff: Backoff,
    give_up_after: Duration,
    on_progress: Option<Arc<ProgressFn>>,
}

impl std::fmt::Debug for Redrive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redrive")
            .field("source", &self.source.id())
            .field("target", &self.target_id)
            .field("publisher", &self.publisher)
            .field("max_messages", &self.max_messages)
            .field("batch_size", &self.batch_size)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("concurrency", &self.concurrency)
            .field("skip_delay", &self.skip_delay)
            .finish_non_exhaustive()
    }
}

impl QueueHandle {
    /// Moves this queue's messages to `target`: pull, publish through a [`Publisher`],
    /// acknowledge each message only once the target has stored it. This queue needs an
    /// HTTP pull consumer (a dead-letter queue usually has none: create one with
    /// `consumers().create_http_pull()`).
    ///
    /// ```no_run
    /// # async fn f(client: cloudflare_queues::Client) -> cloudflare_queues::Result<()> {
    /// let dlq = client.queue("0123456789abcdef0123456789abcdef");
    /// let jobs = client.queue("fedcba9876543210fedcba9876543210");
    /// let report = dlq
    ///     .redrive_to(&jobs)
    ///     .max_messages(10_000)
    ///     .publisher(|p| p.rate_limit(4_900))
    ///     .on_progress(|p| eprintln!("{} of {} moved", p.moved, p.pulled))
    ///     .await?;
    /// println!("moved {}, left {} unsupported", report.moved, report.skipped);
    /// # Ok(()) }
    /// ```
    pub fn redrive_to(&self, target: &QueueHandle) -> Redrive {
        Redrive {
            source: self.clone(),
            target_id: target.id().to_owned(),
            publisher: target.publisher(),
            max_messages: None,
            batch_size: 100,
            visibility_timeout: Duration::from_secs(300),
            concurrency: 8,
            skip_delay: Duration::from_secs(3600),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).jitter(0.5),
            give_up_after: Duration::from_secs(300),
            on_progress: None,
        }
    }
}

/// Counts so far, handed to the progress callback after each batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedriveProgress {
    /// Messages leased from the source.
    pub pulled: u64,
    /// Stored in the target and acknowledged in the source.
    pub moved: u64,
    /// Of `moved`, those the target may hold twice (a publish response was lost).
    pub possibly_duplicated: u64,
    /// Stored in the target, but the source's ack failed: they come back to the source
    /// after the visibility timeout and a later run moves them again (a duplicate).
    pub unacknowledged: u64,
    /// Could not be published; released back to the source.
    pub failed: u64,
    /// Not publishable over REST (`bytes`, `v8`, undecodable); left in the source.
    pub skipped: u64,
}

/// What a redrive did. `pulled == moved + unacknowledged + failed + skipped`.
#[derive(Debug)]
#[non_exhaustive]
pub struct RedriveReport {
    /// Messages leased from the source and handled (a batch leased while the redrive
    /// was already stopping is released at once and not counted).
    pub pulled: u64,
    /// Stored in the target and acknowledged in the source.
    pub moved: u64,
    /// Of `moved`, those the target may hold twice.
    pub possibly_duplicated: u64,
    /// Stored in the target, not acknowledged in the source (see [`RedriveProgress`]).
    pub unacknowledged: u64,
    /// Could not be published; released back to the source.
    pub failed: u64,
    /// Left in the source: not publishable over REST.
    pub skipped: u64,
    /// Whether the source was found empty (nothing available) before any bound or error.
    pub drained: bool,
    /// The error that stopped the redrive early, if any.
    pub error: Option<Error>,
    /// The publisher's own report (requests, throttling).
    pub publisher: PublisherReport,
    /// How long it took.
    pub elapsed: Duration,
}

impl RedriveReport {
    /// Whether every pulled message is counted once.
    pub fn is_balanced(&self) -> bool {
        self.pulled == self.moved + self.unacknowledged + self.failed + self.skipped
    }
}

impl Redrive {
    /// Most messages to move (leased, in fact) in this run. Default: all.
    pub fn max_messages(mut self, n: u64) -> Self {
        self.max_messages = Some(n);
        self
    }

    /// Messages per pull, 1 to 100. Default 100.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n;
        self
    }

    /// How long pulled messages stay leased: long enough to publish and acknowledge
    /// them even when the target throttles. Default 5 minutes.
    pub fn visibility_timeout(mut self, d: Duration) -> Self {
        self.visibility_timeout = d;
        self
    }

    /// Workers pulling, publishing and acknowledging at once. Default 8.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// How long a message that cannot be published stays out of sight in the source.
    /// Default 1 hour.
    pub fn skip_delay(mut self, d: Duration) -> Self {
        self.skip_delay = d;
        self
    }

    /// Backoff between retries of failed pulls and acks. Default 100 ms to 5 s.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long a failing pull or ack is retried before the redrive stops. Default 5
    /// minutes.
    pub fn give_up_after(mut self, d: Duration) -> Self {
        self.give_up_after = d;
        self
    }

    /// Adjusts the target's publisher, e.g. `.publisher(|p| p.rate_limit(4_900))`.
    pub fn publisher(
        mut self,
        configure: impl FnOnce(PublisherBuilder) -> PublisherBuilder,
    ) -> Self {
        self.publisher = configure(self.publisher);
        self
    }

    /// Called after each batch with the counts so far (from a worker task: keep it
    /// quick).
    pub fn on_progress(mut self, f: impl Fn(&RedriveProgress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Runs the redrive to its end: the source has nothing available, `max_messages`
    /// were leased, or an error stopped it (then in [`RedriveReport::error`]). Invalid
    /// settings are an error before anything is sent.
    pub async fn run(self) -> Result<RedriveReport> {
        crate::limits::check_count(
            "batch_size",
            self.batch_size,
            1,
            crate::limits::MAX_PULL_BATCH,
        )?;
        crate::limits::check_duration(
            "visibility_timeout",
            self.visibility_timeout,
            Duration::from_secs(1),
            crate::limits::MAX_VISIBILITY_TIMEOUT,
        )?;
        crate::limits::check_duration(
            "skip_delay",
            self.skip_delay,
            Duration::ZERO,
            crate::limits::MAX_DELAY,
        )?;
        if self.concurrency == 0 {
            return Err(Error::invalid("concurrency", "must be at least 1"));
        }
        if self.target_id == self.source.id() {
            return Err(Error::invalid(
                "target",
                "is the source queue; a redrive into itself would never end",
            ));
        }
        let started = Instant::now();
        let publisher = self.publisher.build()?;
        let run = Arc::new(Run {
            source: self.source,
            publisher: publisher.clone(),
            batch_size: u64::from(self.batch_size),
            visibility_timeout: self.visibility_timeout,
            skip_delay: self.skip_delay,
            backoff: self.backoff,
            give_up_after: self.give_up_after,
            on_progress: self.on_progress,
            budget: AtomicU64::new(self.max_messages.unwrap_or(u64::MAX)),
            totals: Totals::default(),
            drained: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let mut workers = JoinSet::new();
        for _ in 0..self.concurrency {
            workers.spawn(worker(run.clone()));
        }
        while let Some(done) = workers.join_next().await {
            if let Err(e) = done {
                run.fail(Error::Config(format!("a redrive worker stopped: {e}")));
            }
        }
        let publisher = publisher.shutdown().await;
        let t = run.totals.snapshot();
        let error = run.lock_error().take();
        Ok(RedriveReport {
            pulled: t.pulled,
            moved: t.moved,
            possibly_duplicated: t.possibly_duplicated,
            unacknowledged: t.unacknowledged,
            failed: t.failed,
            skipped: t.skipped,
            drained: run.drained.load(Ordering::SeqCst) && error.is_none(),
            error,
            publisher,
            elapsed: started.elapsed(),
        })
    }
}

impl std::future::IntoFuture for Redrive {
    type Output = Result<RedriveReport>;
    type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

#[derive(Debug, Default)]
struct Totals {
    pulled: AtomicU64,
    moved: AtomicU64,
    possibly_duplicated: AtomicU64,
    unacknowledged: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

impl Totals {
    fn snapshot(&self) -> RedriveProgress {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        RedriveProgress {
            pulled: get(&self.pulled),
            moved: get(&self.moved),
            possibly_duplicated: get(&self.possibly_duplicated),
            unacknowledged: get(&self.unacknowledged),
            failed: get(&self.failed),
            skipped: get(&self.skipped),
        }
    }
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::SeqCst);
}

/// One run's shared state.
struct Run {
    source: QueueHandle,
    publisher: Publisher,
    batch_size: u64,
    visibility_timeout: Duration,
    skip_delay: Duration,
    backoff: Backoff,
    give_up_after: Duration,
    on_progress: Option<Arc<ProgressFn>>,
    /// Messages that may still be leased.
    budget: AtomicU64,
    totals: Totals,
    drained: AtomicBool,
    stop: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl Run {
    fn lock_error(&self) -> std::sync::MutexGuard<'_, Option<Error>> {
        self.error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops every worker after its current batch, keeping the first error.
    fn fail(&self, err: Error) {
        self.stop.store(true, Ordering::SeqCst);
        let mut slot = self.lock_error();
        if slot.is_none() {
            *slot = Some(err);
        }
    }

    /// Takes up to one batch's worth from the budget.
    fn reserve(&self) -> u64 {
        let mut current = self.budget.load(Ordering::SeqCst);
        loop {
            let take = current.min(self.batch_size);
            if take == 0 {
                return 0;
            }
            match self.budget.compare_exchange(
                current,
                current - take,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return take,
                Err(now) => current = now,
            }
        }
    }

    fn unreserve(&self, n: u64) {
        // Saturating: an unbounded budget starts at u64::MAX.
        let _ = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_add(n))
            });
    }

    /// Leases up to `n` messages, retrying failures that may pass.
    async fn pull(&self, n: u64) -> Result<PullResult> {
        let give_up_at = Instant::now()
            .checked_add(self.give_up_after)
            .unwrap_or_else(Instant::now);
        let mut step = 0;
        loop {
            let result = self
                .source
                .pull()
                .batch_size(u32::try_from(n).unwrap_or(crate::limits::MAX_PULL_BATCH))
                .visibility_timeout(self.visibility_timeout)
                .retry_policy(RetryPolicy::none())
                .send()
                .await;
            match result {
                Ok(batch) => return Ok(batch),
                Err(err)
                    if err.is_retryable()
                        && Instant::now() < give_up_at
                        && !self.stop.load(Ordering::SeqCst) =>
                {
                    step += 1;
                    let wait = err
                        .retry_after()
                        .unwrap_or_else(|| self.backoff.delay_random(step));
                    tracing::debug!(error = %err, ?wait, "redrive pull failed; retrying");
                    tokio::time::sleep(
                        wait.min(give_up_at.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One ack request that acknowledges `acks`, releases `releases` at once and
    /// delays `skips`, retried (acks are idempotent) until it succeeds or gives up.
    async fn settle(&self, acks: &[String], releases: &[String], skips: &[String]) -> Result<()> {
        let give_up_at = Instant::now()
            .checked_add(self.give_up_after)
            .unwrap_or_else(Instant::now);
        let mut step = 0;
        loop {
            let mut request = self
                .source
                .ack()
                .retry_policy(RetryPolicy::none())
                .acks(acks.iter().cloned());
            for lease in releases {
                request = request.retry(lease.clone(), Some(Duration::ZERO));
            }
            for lease in skips {
                request = request.retry(lease.clone(), Some(self.skip_delay));
            }
            match request.send().await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_retryable() && Instant::now() < give_up_at => {
                    step += 1;
                    let wait = err
                        .retry_after()
                        .unwrap_or_else(|| self.backoff.delay_random(step));
                    tracing::debug!(error = %err, ?wait, "redrive ack failed; retrying");
                    tokio::time::sleep(
                        wait.min(give_up_at.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn progress(&self) {
        if let Some(f) = &self.on_progress {
            f(&self.totals.snapshot());
        }
    }
}

async fn worker(run: Arc<Run>) {
    while !run.stop.load(Ordering::SeqCst) {
        let want = run.reserve();
        if want == 0 {
            break;
        }
        let batch = match run.pull(want).await {
            Ok(batch) => batch,
            Err(err) => {
                run.unreserve(want);
                tracing::warn!(error = %err, "redrive stopped: pulling from the source failed");
                run.fail(err);
                break;
            }
        };
        let PullResult {
            messages, rejected, ..
        } = batch;
        let n = (messages.len() + rejected.len()) as u64;
        if n < want {
            run.unreserve(want - n);
        }
        if n == 0 {
            run.drained.store(true, Ordering::SeqCst);
            break;
        }
        if run.stop.load(Ordering::SeqCst) {
            // Stopping (another worker failed) while this pull was out: give the batch
            // back untouched; it is not counted.
            let leases: Vec<String> = messages
                .into_iter()
                .map(|m| m.lease_id)
                .chain(rejected.into_iter().filter_map(|r| r.lease_id))
                .collect();
            if let Err(err) = run.settle(&[], &leases, &[]).await {
                tracing::debug!(error = %err, "could not release a batch leased while stopping; it comes back after its lease");
            }
            break;
        }
        add(&run.totals.pulled, messages.len() + rejected.len());
        move_batch(&run, messages, rejected).await;
        run.progress();
    }
}

/// Publishes a pulled batch, then acknowledges what the target stored. Entries the pull
/// could not decode are left in the source like unsupported bodies (those without a
/// readable lease id come back after their lease), and counted as skipped.
async fn move_batch(run: &Run, messages: Vec<PulledMessage>, rejected: Vec<RejectedMessage>) {
    let mut leases = Vec::with_capacity(messages.len());
    let mut publishes = Vec::with_capacity(messages.len());
    let mut skips = Vec::new();
    let mut unsettleable = 0;
    for r in rejected {
        tracing::warn!(entry = r.index, reason = %r.reason, "left in the source: the pulled entry could not be read");
        match r.lease_id {
            Some(lease) => skips.push(lease),
            None => unsettleable += 1,
        }
    }
    add(&run.totals.skipped, unsettleable);
    for m in messages {
        match to_message(&m) {
            Ok(message) => {
                leases.push(m.lease_id);
                publishes.push(run.publisher.publish(message));
            }
            Err(reason) => {
                tracing::warn!(message_id = %m.id, %reason, "left in the source: cannot be published over REST");
                skips.push(m.lease_id);
            }
        }
    }
    let results = futures::future::join_all(publishes).await;
    let (mut acks, mut releases) = (Vec::new(), Vec::new());
    let mut duplicates = 0;
    let mut first_error = None;
    for (lease, result) in leases.into_iter().zip(results) {
        match result {
            Ok(published) => {
                duplicates += usize::from(published.possibly_duplicated());
                acks.push(lease);
            }
            // The message itself is refused (too large once encoded, say): it never
            // will be, so it is left like an unsupported one.
            Err(Error::InvalidInput { field, reason }) => {
                tracing::warn!(%field, %reason, "left in the source: refused by the publisher");
                skips.push(lease);
            }
            Err(err) => {
                releases.push(lease);
                first_error.get_or_insert(err);
            }
        }
    }
    add(&run.totals.skipped, skips.len());
    add(&run.totals.failed, releases.len());
    if let Some(err) = first_error {
        // Stop the other workers before these messages become available again.
        tracing::warn!(error = %err, "redrive stopped: publishing to the target failed");
        run.fail(err);
    }
    match run.settle(&acks, &releases, &skips).await {
        Ok(()) => {
            add(&run.totals.moved, acks.len());
            add(&run.totals.possibly_duplicated, duplicates);
        }
        Err(err) => {
            tracing::warn!(error = %err, stored = acks.len(), "could not acknowledge moved messages; they will come back to the source and be moved again");
            add(&run.totals.unacknowledged, acks.len());
            run.fail(err);
        }
    }
}

/// The message to publish for a pulled one: same content type, same body.
fn to_message(m: &PulledMessage) -> std::result::Result<Message, String> {
    match m.content_type() {
        ContentType::Text => m
            .text()
            .map(|t| Message::text(t.into_owned()))
            .map_err(|e| e.to_string()),
        ContentType::Json => m
            .json::<serde_json::Value>()
            .map(Message::json_value)
            .map_err(|e| e.to_string()),
        other => Err(format!(
            "content type `{other}`: the REST API publishes only text and json"
        )),
    }
}
