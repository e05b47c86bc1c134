//! A small service and its tests, written as a user of the crate would, with only its
//! public API and testing toolkit.
//!
//! ```text
//! cargo run --example service_test    # the service against the embedded emulator
//! cargo test --example service_test   # its tests (also part of plain `cargo test`)
//! ```
//!
//! The service turns thumbnail jobs into results: it consumes JSON jobs
//! (`{"id": 7, "width": 320}`) from a `jobs` queue, renders (here: waits), publishes
//! `{"id": 7, "thumbnail": "thumb-7-320.png"}` to a `results` queue, and acknowledges
//! the job only once the result is stored. A job that cannot be read, or whose result
//! cannot be published, is retried after the consumer's handler backoff; a job with
//! width 0 is invalid and dropped (acknowledged, logged).
//!
//! The tests show the three levels a service is tested at: the handler alone
//! (`testing::decide` on `testing::TestMessage`s, no server), the whole service
//! against the emulator on a paused clock (minutes of backoff in milliseconds), and a
//! fault in one queue only (`set_queue_faults`: the results queue refuses publishes).

use cloudflare_queues::consumer::{HandlerError, Outcome, PullConsumer, ReceivedMessage};
use cloudflare_queues::emulator::{Emulator, SeedMessage};
use cloudflare_queues::models::Message;
use cloudflare_queues::publisher::Publisher;
use cloudflare_queues::{Backoff, QueueHandle};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
struct Job {
    id: u64,
    width: u32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Thumbnail {
    id: u64,
    thumbnail: String,
}

/// The service's work for one job. Generic over where results go, so that the handler
/// can be tested without a server.
async fn handle<F, Fut>(message: ReceivedMessage, publish: F) -> Result<Outcome, HandlerError>
where
    F: FnOnce(Thumbnail) -> Fut,
    Fut: Future<Output = cloudflare_queues::Result<()>>,
{
    let job: Job = message.json()?;
    if job.width == 0 {
        tracing::warn!(job = job.id, "width 0: nothing to render; dropping the job");
        return Ok(Outcome::Ack);
    }
    // The slow step.
    tokio::time::sleep(Duration::from_millis(u64::from(job.width))).await;
    let thumbnail = format!("thumb-{}-{}.png", job.id, job.width);
    publish(Thumbnail {
        id: job.id,
        thumbnail,
    })
    .await?;
    Ok(Outcome::Ack)
}

/// The consumer with the service's settings.
fn consumer(jobs: &QueueHandle) -> cloudflare_queues::Result<PullConsumer> {
    jobs.pull_consumer()
        .max_in_flight(16)
        .visibility_timeout(Duration::from_secs(60))
        .handler_backoff(Backoff::new(
            Duration::from_secs(10),
            Duration::from_secs(600),
        ))
        .build()
}

/// Runs the service until shut down.
async fn serve(consumer: PullConsumer, results: Publisher) -> cloudflare_queues::Result<()> {
    let results = Arc::new(results);
    consumer
        .run(move |m| {
            let results = results.clone();
            async move {
                handle(m, |t| async move {
                    results.publish(Message::json(&t)?).await.map(|_| ())
                })
                .await
            }
        })
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let emulator = Emulator::start().await?;
    let client = emulator.client();
    let jobs = client.queue(client.queues().create("jobs").await?.id());
    let results = client.queue(client.queues().create("results").await?.id());
    jobs.consumers().create_http_pull().max_retries(5).await?;
    let seeded = (1..=20).map(|id| SeedMessage::json(&serde_json::json!({"id": id, "width": 200})));
    emulator.seed(jobs.id(), seeded.collect::<Result<Vec<_>, _>>()?)?;

    let consumer = consumer(&jobs)?;
    let shutdown = consumer.shutdown_handle();
    let publisher = results.publisher().build()?;
    let service = tokio::spawn(serve(consumer, publisher));
    emulator
        .wait_until_acked(jobs.id(), 20, Duration::from_secs(60))
        .await?;
    let report = shutdown
        .shutdown(cloudflare_queues::consumer::ShutdownMode::drain(
            Duration::from_secs(10),
        ))
        .await;
    service.await??;
    let stored = emulator.messages(results.id());
    println!(
        "{} jobs acked, {} results stored: {report:?}",
        report.acked,
        stored.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudflare_queues::consumer::ShutdownMode;
    use cloudflare_queues::emulator::Fault;
    use cloudflare_queues::emulator::FaultPlan;
    use cloudflare_queues::ops;
    use cloudflare_queues::testing::{Decided, TestMessage, decide};

    /// Unit level: the handler alone, results collected in memory.
    #[tokio::test(start_paused = true)]
    async fn the_handler_publishes_a_result_then_acknowledges() {
        let published = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = published.clone();
        let job = TestMessage::json(&serde_json::json!({"id": 7, "width": 320})).unwrap();
        let decided = decide(
            |m| {
                handle(m, move |t| async move {
                    sink.lock().unwrap().push(t);
                    Ok(())
                })
            },
            job.received(),
        )
        .await;
        assert_eq!(decided, Decided::Ack);
        assert_eq!(
            *published.lock().unwrap(),
            [Thumbnail {
                id: 7,
                thumbnail: "thumb-7-320.png".into()
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unreadable_jobs_fail_and_invalid_ones_are_dropped() {
        let nothing = |_t: Thumbnail| async { Ok(()) };
        let garbage = TestMessage::text("not json").received();
        assert!(matches!(
            decide(|m| handle(m, nothing), garbage).await,
            Decided::Failed { .. }
        ));
        let zero = TestMessage::json(&serde_json::json!({"id": 1, "width": 0})).unwrap();
        assert_eq!(
            decide(|m| handle(m, nothing), zero.received()).await,
            Decided::Ack
        );
    }

    /// Creates the service's queues on an emulator and seeds `n` jobs.
    async fn world(n: u64) -> (Emulator, QueueHandle, QueueHandle) {
        let emulator = Emulator::start().await.unwrap();
        let client = emulator.client();
        let jobs = client.queue(client.queues().create("jobs").await.unwrap().id());
        let results = client.queue(client.queues().create("results").await.unwrap().id());
        jobs.consumers()
            .create_http_pull()
            .max_retries(10)
            .await
            .unwrap();
        let seeded = (1..=n)
            .map(|id| SeedMessage::json(&serde_json::json!({"id": id, "width": 500})).unwrap());
        emulator.seed(jobs.id(), seeded).unwrap();
        (emulator, jobs, results)
    }

    /// Service level, on the paused clock (the emulator on this test's `current_thread`
    /// runtime, as a paused clock requires).
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn every_job_gets_exactly_one_result() {
        let (emulator, jobs, results) = world(10).await;
        let consumer = consumer(&jobs).unwrap();
        let shutdown = consumer.shutdown_handle();
        let service = tokio::spawn(serve(consumer, results.publisher().build().unwrap()));
        emulator
            .wait_until_acked(jobs.id(), 10, Duration::from_secs(60))
            .await
            .unwrap();
        shutdown
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        service.await.unwrap().unwrap();
        let mut ids: Vec<u64> = emulator
            .messages(results.id())
            .iter()
            .map(|m| m.json::<Thumbnail>().unwrap().id)
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=10).collect::<Vec<_>>(), "one result per job");
    }

    /// A fault in one queue only: while the results queue refuses publishes, no job is
    /// acknowledged (nothing is lost); once it recovers, every job completes.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn jobs_wait_out_a_results_queue_outage_and_none_is_lost() {
        let (emulator, jobs, results) = world(3).await;
        emulator.set_queue_faults(
            results.id(),
            &ops::PUSH_BATCH,
            FaultPlan::always(Fault::Internal),
        );
        let consumer = consumer(&jobs).unwrap();
        let shutdown = consumer.shutdown_handle();
        let publisher = results
            .publisher()
            .give_up_after(Duration::from_secs(5))
            .build()
            .unwrap();
        let service = tokio::spawn(serve(consumer, publisher));
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(
            emulator.acked_ids(jobs.id()).is_empty(),
            "no ack without a stored result"
        );
        assert!(emulator.messages(results.id()).is_empty());

        emulator.clear_queue_faults(results.id());
        emulator
            .wait_until_acked(jobs.id(), 3, Duration::from_secs(3600))
            .await
            .unwrap();
        shutdown
            .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
            .await;
        service.await.unwrap().unwrap();
        assert_eq!(emulator.messages(results.id()).len(), 3);
        let jobs_seen = emulator.messages(jobs.id());
        assert!(
            jobs_seen.iter().all(|m| m.attempts >= 2),
            "retried during the outage"
        );
    }
}
