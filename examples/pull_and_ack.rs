//! The low-level pull / process / ack loop that Cloudflare's pull-consumer guide
//! describes, one batch at a time. For a production consumer use `PullConsumer`
//! instead: it pulls ahead, batches acks and backs off on errors and empty queues.
//!
//! ```text
//! CLOUDFLARE_API_TOKEN=... CLOUDFLARE_ACCOUNT_ID=... QUEUE_ID=... cargo run --example pull_and_ack
//! ```

use cloudflare_queues::Client;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;
    let queue_id = std::env::var("QUEUE_ID").map_err(|_| "set QUEUE_ID to the queue's id")?;
    let queue = client.queue(queue_id);

    loop {
        let batch = queue
            .pull()
            .batch_size(100)
            .visibility_timeout(Duration::from_secs(60))
            .await?;
        if batch.messages.is_empty() {
            println!("queue is empty");
            return Ok(());
        }
        let mut ack = queue.ack();
        for message in &batch.messages {
            match message.text() {
                Ok(text) => {
                    println!("{} (attempt {}): {text}", message.id, message.attempts);
                    ack = ack.ack(message.lease_id.clone());
                }
                // Undecodable (e.g. v8 from a Worker): retry later, so that max_retries
                // eventually moves it to the dead-letter queue.
                Err(e) => {
                    eprintln!("{e}");
                    ack = ack.retry(message.lease_id.clone(), Some(Duration::from_secs(60)));
                }
            }
        }
        let result = ack.await?;
        println!(
            "acked {:?}, retried {:?}",
            result.ack_count, result.retry_count
        );
    }
}
