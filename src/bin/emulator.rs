//! The Cloudflare Queues REST emulator as a program, for non-Rust clients (curl, the
//! official SDKs, wrangler-style scripts).
//!
//! ```text
//! cargo run --features emulator --bin cloudflare-queues-emulator -- --port 8787
//! ```
//!
//! It requires the bearer token its banner prints (`emulator-token`, or the one given
//! with `--token`); `--any-token` accepts any non-empty token instead. `--control`
//! serves the control API too (`/__emulator/…`: seeding, ledger summaries, request
//! counts; see `EmulatorBuilder::control_api`).

use cloudflare_queues::emulator::{
    DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN, Emulator, EmulatorBuilder, Latency,
};
use std::time::Duration;

const USAGE: &str = "usage: cloudflare-queues-emulator [--port N] [--account-id ID] \
[--token TOKEN | --any-token] [--latency-ms N] [--jitter-ms N] [--rate-limit MSGS_PER_SEC] [--seed N] \
[--control]";

/// What the command line asked for.
#[derive(Debug)]
struct Options {
    builder: EmulatorBuilder,
    account: String,
    /// The token required, or `None` for any (`--any-token`).
    token: Option<String>,
    /// Whether the control API is served (`--control`).
    control: bool,
}

/// Reads the command line; `Ok(None)` for `--help`.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut builder = Emulator::builder();
    let mut account = DEFAULT_ACCOUNT_ID.to_owned();
    let (mut token, mut any_token) = (None::<String>, false);
    let (mut latency_ms, mut jitter_ms) = (0u64, 0u64);
    let mut control = false;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--any-token" => {
                any_token = true;
                continue;
            }
            "--control" => {
                control = true;
                builder = builder.control_api(true);
                continue;
            }
            _ => {}
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))
        };
        builder = match flag.as_str() {
            "--port" => builder
                .port(u16::try_from(number(&value)?).map_err(|e| format!("--port {value}: {e}"))?),
            "--account-id" => {
                account.clone_from(&value);
                builder.account_id(value)
            }
            "--token" => {
                token = Some(value);
                builder
            }
            "--latency-ms" => {
                latency_ms = number(&value)?;
                builder
            }
            "--jitter-ms" => {
                jitter_ms = number(&value)?;
                builder
            }
            "--rate-limit" => builder.rate_limit(Some(
                u32::try_from(number(&value)?).map_err(|e| format!("--rate-limit {value}: {e}"))?,
            )),
            "--seed" => builder.seed(number(&value)?),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        };
    }
    let token = match (token, any_token) {
        (Some(_), true) => {
            return Err(format!(
                "--token and --any-token contradict each other\n{USAGE}"
            ));
        }
        (Some(token), false) => Some(token),
        (None, false) => Some(DEFAULT_TOKEN.to_owned()),
        (None, true) => None,
    };
    if let Some(token) = &token {
        builder = builder.token(token.clone());
    }
    let builder = builder.latency(Latency {
        fixed: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(jitter_ms),
    });
    Ok(Some(Options {
        builder,
        account,
        token,
        control,
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(options) = parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    // One thread: every request's work is short and behind one lock, so a second
    // worker mostly hands requests back and forth (measured: about 3.7 us of CPU per
    // message pushed, pulled and acked on one thread, 4.5 us on two).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let emulator = options.builder.start().await?;
        println!(
            "Cloudflare Queues emulator listening on {}",
            emulator.base_url()
        );
        println!("  export CLOUDFLARE_BASE_URL={}", emulator.base_url());
        println!("  export CLOUDFLARE_ACCOUNT_ID={}", options.account);
        match &options.token {
            Some(token) => {
                println!("  export CLOUDFLARE_API_TOKEN={token}");
                println!("Requests must carry this token (start with --any-token to accept any).");
            }
            None => {
                println!("  export CLOUDFLARE_API_TOKEN={}", emulator.token());
                println!("Any non-empty token is accepted (--any-token).");
            }
        }
        if options.control {
            println!(
                "Control API (seeding, summaries, request counts) under http://{}/__emulator/",
                emulator.addr()
            );
        }
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        emulator.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudflare_queues::Client;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Starts the emulator the arguments describe and lists queues with `token`:
    /// whether it was let in.
    async fn accepts(list: &[&str], token: &str) -> bool {
        let options = parse(args(list)).unwrap().unwrap();
        let emulator = options.builder.start().await.unwrap();
        let client = Client::builder()
            .api_token(token)
            .account_id(options.account)
            .base_url(emulator.base_url())
            .build()
            .unwrap();
        match client.queues().list().await {
            Ok(_) => true,
            Err(e) if e.status() == Some(401) => false,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn the_printed_token_is_required_by_default() {
        let options = parse(args(&[])).unwrap().unwrap();
        assert_eq!(options.token.as_deref(), Some(DEFAULT_TOKEN));
        assert!(accepts(&[], DEFAULT_TOKEN).await);
        assert!(!accepts(&[], "some-other-token").await);
    }

    #[tokio::test]
    async fn a_given_token_is_required_and_any_token_opts_out() {
        assert!(accepts(&["--token", "s3cret"], "s3cret").await);
        assert!(!accepts(&["--token", "s3cret"], DEFAULT_TOKEN).await);
        let options = parse(args(&["--any-token"])).unwrap().unwrap();
        assert_eq!(options.token, None);
        assert!(accepts(&["--any-token"], "whatever").await);
    }

    /// Starts the emulator the arguments describe and asks its control API for the
    /// request counts: the status.
    async fn control_status(list: &[&str]) -> u16 {
        let options = parse(args(list)).unwrap().unwrap();
        let emulator = options.builder.start().await.unwrap();
        reqwest::Client::new()
            .get(format!("http://{}/__emulator/requests", emulator.addr()))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn the_control_api_is_served_only_with_the_control_flag() {
        assert!(parse(args(&["--control"])).unwrap().unwrap().control);
        assert_eq!(control_status(&["--control"]).await, 200);
        assert_eq!(control_status(&[]).await, 404);
    }

    #[test]
    fn bad_command_lines_are_refused_with_the_usage() {
        for bad in [
            &["--token", "a", "--any-token"][..],
            &["--port"],
            &["--port", "99999"],
            &["--seed", "x"],
            &["--bogus", "1"],
        ] {
            let e = parse(args(bad)).unwrap_err();
            assert!(
                e.contains("usage:") || e.contains("--port 99999"),
                "{bad:?}: {e}"
            );
        }
        assert!(parse(args(&["--help"])).unwrap().is_none());
        let options = parse(args(&["--account-id", "acc", "--port", "0", "--seed", "7"]))
            .unwrap()
            .unwrap();
        assert_eq!(options.account, "acc");
    }
}
