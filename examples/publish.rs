//! Publishes a text message, a JSON message and a batch to a queue.
//!
//! ```text
//! CLOUDFLARE_API_TOKEN=... CLOUDFLARE_ACCOUNT_ID=... QUEUE_ID=... cargo run --example publish
//! ```

use cloudflare_queues::Client;
use cloudflare_queues::models::Message;
use serde_json::json;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;
    let queue_id = std::env::var("QUEUE_ID").map_err(|_| "set QUEUE_ID to the queue's id")?;
    let queue = client.queue(queue_id);

    queue.send("hello from Rust").await?;
    let receipt = queue
        .send(Message::json(&json!({"order": 42, "sku": "A-17"}))?)
        .delay(Duration::from_secs(30))
        .await?;
    if let Some(m) = receipt.metrics() {
        println!(
            "backlog after publish: {} messages, {} bytes",
            m.backlog_count, m.backlog_bytes
        );
    }

    // Any number of messages: split into requests of at most 100 messages / 256 KB.
    let batch: Vec<Message> = (0..250)
        .map(|i| Message::text(format!("job {i}")))
        .collect();
    let receipt = queue.send_batch(batch).await?;
    println!(
        "published {} messages in {} requests",
        receipt.messages, receipt.requests
    );
    Ok(())
}
