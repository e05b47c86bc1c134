//! The public testing toolkit: test messages and deliveries, and `decide`.

use cloudflare_queues::consumer::{HandlerError, Outcome, ReceivedMessage};
use cloudflare_queues::models::ContentType;
use cloudflare_queues::testing::{Decided, TestMessage, decide};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn test_messages_decode_like_pulled_ones() {
    let m = TestMessage::json(&json!({"order": 7}))
        .unwrap()
        .with_id("abc")
        .with_attempts(3)
        .with_metadata("CF-sourceMessageSource", "api")
        .received();
    assert_eq!((m.id(), m.attempts()), ("abc", 3));
    assert_eq!(m.content_type(), ContentType::Json);
    assert_eq!(m.json::<serde_json::Value>().unwrap()["order"], 7);
    assert_eq!(m.metadata().source(), Some("api"));
    assert!(m.lease_remaining() > Duration::from_secs(50));
    let text = TestMessage::text("hello").received();
    assert_eq!(text.text().unwrap(), "hello");
    let v8 = TestMessage::v8(vec![0xff, 0x0d]).received();
    assert!(v8.bytes().is_err(), "v8 is undecodable, as over HTTP");
}

#[tokio::test]
async fn deliveries_record_what_was_decided() {
    let (d, probe) = TestMessage::text("a").delivery();
    assert_eq!(probe.decided(), None);
    d.ack().confirmed().await.unwrap();
    assert_eq!(probe.decided(), Some(Decided::Ack));

    let (d, probe) = TestMessage::text("b").delivery();
    drop(d.retry(Duration::from_secs(30)));
    assert_eq!(
        probe.decided(),
        Some(Decided::Retry {
            delay: Some(Duration::from_secs(30))
        })
    );

    let (d, probe) = TestMessage::text("c").delivery();
    drop(d.settle(Err::<(), _>("nope")));
    assert_eq!(
        probe.decided(),
        Some(Decided::Failed {
            error: "nope".into()
        })
    );

    let (d, probe) = TestMessage::text("d").delivery();
    drop(d);
    assert_eq!(probe.decided(), Some(Decided::Dropped));
}

async fn handler(m: ReceivedMessage) -> Result<Outcome, HandlerError> {
    match m.text()?.as_ref() {
        "later" => Ok(Outcome::retry_after(Duration::from_secs(5))),
        "boom" => panic!("unexpected input"),
        "fail" => Err(std::io::Error::other("backend down").into()),
        _ => Ok(Outcome::Ack),
    }
}

#[tokio::test]
async fn decide_maps_results_and_panics_as_the_runner_does() {
    let msg = |body: &str| TestMessage::text(body).received();
    assert_eq!(decide(handler, msg("ok")).await, Decided::Ack);
    assert_eq!(
        decide(handler, msg("later")).await,
        Decided::Retry {
            delay: Some(Duration::from_secs(5))
        }
    );
    assert_eq!(
        decide(handler, msg("fail")).await,
        Decided::Failed {
            error: "backend down".into()
        }
    );
    assert_eq!(
        decide(handler, msg("boom")).await,
        Decided::Failed {
            error: "panicked: unexpected input".into()
        }
    );
}
