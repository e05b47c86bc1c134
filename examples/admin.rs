//! The admin plane end to end, on a scratch queue: create it, enable HTTP pull on it,
//! show the consumer's settings, pause and resume delivery, purge it (with the
//! confirmation step) and delete it again.
//!
//! ```text
//! CLOUDFLARE_API_TOKEN=... CLOUDFLARE_ACCOUNT_ID=... cargo run --example admin [QUEUE_NAME]
//! ```
//!
//! The token needs Queues: Edit. The queue name defaults to `cfq-admin-example`; it must
//! not exist yet.

use cloudflare_queues::Client;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cfq-admin-example".to_owned());

    if client.queues().find_by_name(&name).await?.is_some() {
        return Err(format!("a queue named {name} already exists; pass another name").into());
    }
    let created = client
        .queues()
        .create(&name)
        .message_retention_period(Duration::from_secs(3600))
        .await?;
    println!("created {} ({})", created.name(), created.id());
    let queue = client.try_queue(created.id())?;

    // Whatever happens next, try to remove the scratch queue before returning.
    let outcome = walk_through(&queue).await;
    queue.delete().await?;
    println!("deleted {name}");
    outcome
}

async fn walk_through(
    queue: &cloudflare_queues::QueueHandle,
) -> Result<(), Box<dyn std::error::Error>> {
    let consumer = queue
        .consumers()
        .create_http_pull()
        .batch_size(50)
        .max_retries(5)
        .retry_delay(Duration::from_secs(30))
        .visibility_timeout(Duration::from_secs(60))
        .await?;
    println!(
        "HTTP pull consumer {}: batch size {:?}, max retries {:?}, retry delay {:?}, dead-letter queue {:?}",
        consumer.id(),
        consumer.batch_size(),
        consumer.max_retries(),
        consumer.retry_delay(),
        consumer.dead_letter_queue(),
    );

    queue.send("a message to purge").await?;

    let paused = queue.pause_delivery().await?;
    println!("delivery paused: {}", paused.delivery_paused());
    let resumed = queue.resume_delivery().await?;
    println!("delivery paused: {}", resumed.delivery_paused());

    queue.purge().delete_all_messages_permanently().await?;
    for _ in 0..30 {
        if queue.purge_status().await?.is_completed() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let metrics = queue.metrics().await?;
    println!("after the purge: {} messages", metrics.backlog_count);
    Ok(())
}
