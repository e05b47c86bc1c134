//! The Cloudflare Queues REST emulator as a program, for non-Rust clients (curl, the
//! official SDKs, wrangler-style scripts).
//!
//! ```text
//! cargo run --features emulator --bin cloudflare-queues-emulator -- --port 8787
//! ```

use cloudflare_queues::emulator::{DEFAULT_ACCOUNT_ID, Emulator, Latency};
use std::time::Duration;

const USAGE: &str = "usage: cloudflare-queues-emulator [--port N] [--account-id ID] [--token TOKEN] \
[--latency-ms N] [--jitter-ms N] [--rate-limit MSGS_PER_SEC] [--seed N]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = Emulator::builder();
    let mut account = DEFAULT_ACCOUNT_ID.to_owned();
    let (mut latency_ms, mut jitter_ms) = (0u64, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        builder = match flag.as_str() {
            "--port" => builder.port(value.parse()?),
            "--account-id" => {
                account.clone_from(&value);
                builder.account_id(value)
            }
            "--token" => builder.token(value),
            "--latency-ms" => {
                latency_ms = value.parse()?;
                builder
            }
            "--jitter-ms" => {
                jitter_ms = value.parse()?;
                builder
            }
            "--rate-limit" => builder.rate_limit(Some(value.parse()?)),
            "--seed" => builder.seed(value.parse()?),
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        };
    }
    let builder = builder.latency(Latency {
        fixed: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(jitter_ms),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let emulator = builder.start().await?;
        println!(
            "Cloudflare Queues emulator listening on {}",
            emulator.base_url()
        );
        println!("  export CLOUDFLARE_BASE_URL={}", emulator.base_url());
        println!("  export CLOUDFLARE_ACCOUNT_ID={account}");
        println!("  export CLOUDFLARE_API_TOKEN={}", emulator.token());
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        emulator.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
