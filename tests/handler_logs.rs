//! A failing handler is logged once, at WARN, with the message id, its attempts and the
//! whole error chain (or the panic message). Its own test binary: it installs the global
//! tracing subscriber, which no other test may race.

use cloudflare_queues::consumer::{HandlerError, Outcome, ShutdownMode};
use cloudflare_queues::emulator::{Emulator, SeedMessage};
use cloudflare_queues::testing::fast_consumer;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not render the thumbnail")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_panics_are_logged_once_with_id_attempts_and_cause() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .init();

    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let q = client.queue(client.queues().create("logged").await.unwrap().id());
    q.consumers().create_http_pull().await.unwrap();
    let ids = emu
        .seed(
            q.id(),
            [SeedMessage::text("error"), SeedMessage::text("panic")],
        )
        .unwrap();
    let consumer = fast_consumer(&q).build().unwrap();
    let handle = consumer.shutdown_handle();
    let run = tokio::spawn(consumer.run(|m| async move {
        match (m.text().unwrap().as_ref(), m.attempts()) {
            ("error", 1) => {
                Err::<Outcome, HandlerError>(Box::new(Outer(std::io::Error::other("disk full"))))
            }
            ("panic", 1) => panic!("index out of range"),
            _ => Ok(Outcome::Ack),
        }
    }));
    emu.wait_until_acked(q.id(), 2, Duration::from_secs(20))
        .await
        .unwrap();
    handle
        .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
        .await;
    run.await.unwrap().unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("handler failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    let line = failed[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("message_id={}", ids[0])), "{line}");
    assert!(line.contains("attempts=1"), "{line}");
    assert!(
        line.contains("could not render the thumbnail: disk full"),
        "the chain: {line}"
    );

    let panicked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("handler panicked"))
        .collect();
    assert_eq!(panicked.len(), 1, "{log}");
    assert!(panicked[0].contains("WARN"), "{}", panicked[0]);
    assert!(
        panicked[0].contains(&format!("message_id={}", ids[1])),
        "{}",
        panicked[0]
    );
    assert!(
        panicked[0].contains("index out of range"),
        "{}",
        panicked[0]
    );
}
