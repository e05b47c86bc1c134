//! Unit tests of `state.rs`.

use super::*;
use crate::models::{AckEntry, HttpPullConsumerRequest, RetryEntry};

const T0: u64 = 1_700_000_000_000;

fn world_with_queue(settings: HttpPullConsumerSettings, dlq: Option<&str>) -> (World, String) {
    let mut w = World::new(1);
    let q = w
        .create_queue(
            CreateQueueRequest {
                queue_name: "work".into(),
                settings: None,
                jurisdiction: None,
            },
            T0,
        )
        .unwrap();
    let id = q.queue_id.unwrap();
    let req = ConsumerRequest::HttpPull(HttpPullConsumerRequest {
        dead_letter_queue: dlq.map(str::to_owned),
        settings: Some(settings),
    });
    w.create_consumer(&id, req, T0).unwrap();
    (w, id)
}

fn settings(max_retries: u32, retry_delay: u64) -> HttpPullConsumerSettings {
    HttpPullConsumerSettings {
        batch_size: None,
        max_retries: Some(max_retries),
        retry_delay: Some(Duration::from_secs(retry_delay)),
        visibility_timeout: None,
    }
}

fn ack(lease: &str) -> AckRequest {
    AckRequest {
        acks: vec![AckEntry {
            lease_id: lease.into(),
        }],
        retries: vec![],
    }
}

fn retry(lease: &str, delay: Option<u64>) -> AckRequest {
    AckRequest {
        acks: vec![],
        retries: vec![RetryEntry {
            lease_id: lease.into(),
            delay: delay.map(Duration::from_secs),
        }],
    }
}

#[test]
fn rfc3339_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(1_577_470_279_117), "2019-12-27T18:11:19.117Z");
    assert_eq!(rfc3339(1_835_438_400_000), "2028-02-29T12:00:00.000Z");
}

#[test]
fn lease_expiry_redelivers_with_attempts_counted() {
    let (mut w, q) = world_with_queue(settings(5, 0), None);
    w.push(&q, vec![Message::text("a")], None, false, T0)
        .unwrap();
    let first = w
        .pull(&q, Some(10), Some(Duration::from_secs(10)), T0)
        .unwrap();
    assert_eq!(first.messages.len(), 1);
    assert_eq!(first.messages[0].attempts, 1);
    assert!(
        w.pull(&q, Some(10), None, T0 + 9_999)
            .unwrap()
            .messages
            .is_empty(),
        "still leased"
    );
    let again = w.pull(&q, Some(10), None, T0 + 10_000).unwrap();
    assert_eq!(again.messages[0].attempts, 2);
    assert_ne!(again.messages[0].lease_id, first.messages[0].lease_id);
    // The late ack with the first lease is accepted and removes the message.
    let r = w
        .ack(&q, ack(&first.messages[0].lease_id), T0 + 10_001)
        .unwrap();
    assert_eq!((r.ack_count, r.warnings.len()), (Some(1), 0));
    // Acking with the second lease too is an idempotent repeat.
    let r = w
        .ack(&q, ack(&again.messages[0].lease_id), T0 + 10_002)
        .unwrap();
    assert_eq!(r.ack_count, Some(1));
    let ledger = w.ledger(&q, T0 + 10_003);
    assert_eq!(
        (
            ledger[0].acks,
            ledger[0].duplicate_acks,
            ledger[0].deliveries
        ),
        (1, 1, 2)
    );
    assert_eq!(ledger[0].state, MessageState::Acked);
}

#[test]
fn retries_honour_delay_and_dead_letter_after_max_retries() {
    let (mut w, q) = world_with_queue(settings(2, 30), Some("work-dlq"));
    w.push(&q, vec![Message::text("poison")], None, false, T0)
        .unwrap();
    let p1 = w.pull(&q, None, None, T0).unwrap();
    w.ack(&q, retry(&p1.messages[0].lease_id, Some(60)), T0)
        .unwrap();
    assert!(
        w.pull(&q, None, None, T0 + 59_999)
            .unwrap()
            .messages
            .is_empty()
    );
    let p2 = w.pull(&q, None, None, T0 + 60_000).unwrap();
    assert_eq!(p2.messages[0].attempts, 2);
    // Without an explicit delay the consumer's retry_delay (30 s) applies; but
    // attempts (2) has reached max_retries (2), so it goes to the DLQ instead.
    w.ack(&q, retry(&p2.messages[0].lease_id, None), T0 + 60_000)
        .unwrap();
    assert_eq!(
        w.ledger(&q, T0 + 60_001)[0].state,
        MessageState::DeadLettered
    );
    let dlq = w
        .queue_id_by_name("work-dlq")
        .expect("the DLQ is created on first use");
    let moved = w.ledger(&dlq, T0 + 60_001);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].id, p1.messages[0].id);
}

#[test]
fn expiry_counts_toward_max_retries_and_drops_without_dlq() {
    let (mut w, q) = world_with_queue(settings(1, 0), None);
    w.push(&q, vec![Message::text("x")], None, false, T0)
        .unwrap();
    w.pull(&q, None, Some(Duration::from_secs(1)), T0).unwrap();
    assert!(
        w.pull(&q, None, None, T0 + 1_000)
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(w.ledger(&q, T0 + 1_000)[0].state, MessageState::Dropped);
}

#[test]
fn paused_queues_answer_409_and_limits_use_their_codes() {
    let (mut w, q) = world_with_queue(settings(3, 0), None);
    let paused = UpdateQueueRequest {
        queue_name: None,
        settings: Some(QueueSettings {
            delivery_delay: None,
            delivery_paused: Some(true),
            message_retention_period: None,
        }),
    };
    w.update_queue(&q, paused, false, T0).unwrap();
    assert_eq!(w.pull(&q, None, None, T0).unwrap_err().status, 409);

    let big = Message::text("x".repeat(128_001));
    assert_eq!(
        w.push(&q, vec![big], None, false, T0).unwrap_err().code,
        10204
    );
    let many: Vec<Message> = (0..101).map(|_| Message::text("m")).collect();
    assert_eq!(w.push(&q, many, None, true, T0).unwrap_err().code, 10206);
    let heavy: Vec<Message> = (0..3).map(|_| Message::text("y".repeat(100_000))).collect();
    assert_eq!(w.push(&q, heavy, None, true, T0).unwrap_err().code, 10205);
    let late = Message::text("z").with_delay(Duration::from_secs(86_401));
    assert_eq!(
        w.push(&q, vec![late], None, false, T0).unwrap_err().code,
        10203
    );
    assert_eq!(
        w.push(
            &q,
            vec![Message::text("z")],
            Some(Duration::from_secs(86_401)),
            true,
            T0
        )
        .unwrap_err()
        .code,
        10202
    );
    assert_eq!(w.get_queue("nope!", T0).unwrap_err().code, 10107);
    assert_eq!(w.get_queue("0123abcd", T0).unwrap_err().code, 10104);
}

#[test]
fn delays_follow_the_precedence_rules() {
    let (mut w, q) = world_with_queue(settings(3, 0), None);
    let delayed = UpdateQueueRequest {
        queue_name: None,
        settings: Some(QueueSettings {
            delivery_delay: Some(Duration::from_secs(10)),
            delivery_paused: None,
            message_retention_period: None,
        }),
    };
    w.update_queue(&q, delayed, false, T0).unwrap();
    w.push(&q, vec![Message::text("queue delay")], None, false, T0)
        .unwrap();
    w.push(
        &q,
        vec![Message::text("no delay").with_delay(Duration::ZERO)],
        None,
        false,
        T0,
    )
    .unwrap();
    let now = w.pull(&q, Some(10), None, T0).unwrap();
    assert_eq!(
        now.messages.len(),
        1,
        "an explicit 0 overrides the queue delay"
    );
    assert_eq!(now.messages[0].body, "no delay");
    assert_eq!(
        w.pull(&q, Some(10), None, T0 + 10_000)
            .unwrap()
            .messages
            .len(),
        1
    );
}

#[test]
fn retention_expires_messages() {
    let (mut w, q) = world_with_queue(settings(3, 0), None);
    let short = UpdateQueueRequest {
        queue_name: None,
        settings: Some(QueueSettings {
            delivery_delay: None,
            delivery_paused: None,
            message_retention_period: Some(Duration::from_secs(60)),
        }),
    };
    w.update_queue(&q, short, false, T0).unwrap();
    w.push(&q, vec![Message::text("old")], None, false, T0)
        .unwrap();
    assert_eq!(w.metrics(&q, T0 + 59_999).unwrap().backlog_count, 1);
    assert_eq!(w.metrics(&q, T0 + 60_000).unwrap().backlog_count, 0);
    assert_eq!(w.ledger(&q, T0 + 60_000)[0].state, MessageState::Expired);
}

#[test]
fn absurd_retry_delays_are_refused() {
    let (mut w, q) = world_with_queue(settings(5, 0), None);
    w.push(&q, vec![Message::text("a")], None, false, T0)
        .unwrap();
    let lease = w
        .pull(&q, None, None, T0)
        .unwrap()
        .messages
        .remove(0)
        .lease_id;
    let err = w
        .ack(&q, retry(&lease, Some(18_446_744_073_709)), T0)
        .unwrap_err();
    assert_eq!((err.status, err.code), (400, 10203));
    assert_eq!(
        w.ack(&q, retry(&lease, Some(86_400)), T0)
            .unwrap()
            .retry_count,
        Some(1)
    );
}

#[test]
fn acks_of_messages_no_longer_queued_are_warnings() {
    let (mut w, q) = world_with_queue(settings(1, 0), Some("dlq"));
    w.push(&q, vec![Message::text("a")], None, false, T0)
        .unwrap();
    let lease = w
        .pull(&q, None, None, T0)
        .unwrap()
        .messages
        .remove(0)
        .lease_id;
    w.ack(&q, retry(&lease, None), T0).unwrap();
    let late = w.ack(&q, ack(&lease), T0).unwrap();
    assert_eq!(
        late.ack_count,
        Some(0),
        "a dead-lettered message cannot be acked"
    );
    assert!(
        late.warnings[0].message.contains("deadlettered"),
        "{:?}",
        late.warnings
    );
}

#[test]
fn dead_letters_arrive_without_touching_the_origin_queue() {
    let (mut w, q) = world_with_queue(settings(1, 0), Some("dlq"));
    w.push(&q, vec![Message::text("a")], None, false, T0)
        .unwrap();
    w.pull(&q, None, Some(Duration::from_secs(1)), T0).unwrap();
    let dlq_name = CreateQueueRequest {
        queue_name: "dlq".into(),
        settings: None,
        jurisdiction: None,
    };
    let dlq = w.create_queue(dlq_name, T0).unwrap().queue_id.unwrap();
    // Only the dead-letter queue is read; the origin's lease expiry still routes.
    assert_eq!(w.metrics(&dlq, T0 + 1_000).unwrap().backlog_count, 1);
}

#[test]
fn peek_refs_are_forgotten_with_their_message() {
    let (mut w, q) = world_with_queue(settings(3, 0), None);
    w.push(
        &q,
        vec![Message::text("a"), Message::text("b")],
        None,
        true,
        T0,
    )
    .unwrap();
    let peeked = w.peek(&q, Some(2), T0).unwrap();
    let lease = w
        .pull(&q, Some(1), None, T0)
        .unwrap()
        .messages
        .remove(0)
        .lease_id;
    w.ack(&q, ack(&lease), T0).unwrap();
    let refs: Vec<String> = peeked.messages.iter().map(|m| m.peek_ref.clone()).collect();
    let purged = w.purge_refs(&q, refs, T0).unwrap();
    assert_eq!(
        purged.warnings.len(),
        1,
        "the acked message's ref is gone; the other purges"
    );
    assert_eq!(w.metrics(&q, T0).unwrap().backlog_count, 0);
}

#[test]
fn the_written_pull_is_the_json_of_the_model() {
    let (mut w, q) = world_with_queue(settings(3, 0), None);
    let messages = vec![
        Message::text("plain"),
        Message::text("quote \" backslash \\ newline \n é"),
        Message::json(&serde_json::json!({"b": 1, "a": [true, null]})).unwrap(),
    ];
    w.push(&q, messages, None, true, T0).unwrap();
    let odd = [
        SeedMessage::bytes(vec![0, 255, 10]),
        SeedMessage::v8(vec![0xff, 0x0d]),
        SeedMessage::raw("custom \"type\"", b"x".to_vec()),
    ];
    w.seed(&q, odd.to_vec(), T0).unwrap();
    for batch in [10, 10] {
        // The second pull finds nothing: its response has no `messages`, as the model's.
        let pulled = w.lease(&q, Some(batch), None, T0).unwrap();
        let written = super::super::wire::write_pull(&pulled);
        let mut expected = br#"{"success":true,"errors":[],"messages":[],"result":"#.to_vec();
        expected.extend(serde_json::to_vec(&pulled.to_model()).unwrap());
        expected.push(b'}');
        assert_eq!(
            String::from_utf8(written).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
}

#[test]
fn the_fast_and_the_general_push_store_the_same() {
    let body = br#"{"delay_seconds": 1, "messages": [
        {"content_type": "text", "body": "caf\u00e9 \"quoted\""},
        {"content_type": "json", "body": {"z": 1, "a": [2, {"c": "d"}]}},
        {"content_type": "text", "body": "late", "delay_seconds": 5}
    ]}"#;
    let (mut fast, fast_q) = world_with_queue(settings(3, 0), None);
    let (messages, delay) = super::super::wire::read_batch(body).unwrap();
    fast.push_incoming(&fast_q, messages, delay, true, T0)
        .unwrap();
    let (mut general, general_q) = world_with_queue(settings(3, 0), None);
    let request: crate::models::BatchRequest = serde_json::from_slice(body).unwrap();
    general
        .push(&general_q, request.messages, request.delay, true, T0)
        .unwrap();
    let stored = fast.ledger(&fast_q, T0);
    assert_eq!(stored, general.ledger(&general_q, T0));
    assert_eq!(stored[0].body, "café \"quoted\"".as_bytes());
    assert_eq!(stored[1].body, br#"{"a":[2,{"c":"d"}],"z":1}"#);
    assert_eq!(stored[2].delay, Duration::from_secs(5));
}

#[test]
fn a_lease_or_ref_of_another_queue_is_unknown_here() {
    let (mut w, a) = world_with_queue(settings(3, 0), None);
    let b = w
        .create_queue(
            CreateQueueRequest {
                queue_name: "other".into(),
                settings: None,
                jurisdiction: None,
            },
            T0,
        )
        .unwrap()
        .queue_id
        .unwrap();
    w.push(&a, vec![Message::text("a")], None, false, T0)
        .unwrap();
    w.push(&b, vec![Message::text("b")], None, false, T0)
        .unwrap();
    let peeked = w.peek(&a, Some(1), T0).unwrap().messages.remove(0).peek_ref;
    let lease = w
        .pull(&a, None, None, T0)
        .unwrap()
        .messages
        .remove(0)
        .lease_id;
    let r = w.ack(&b, ack(&lease), T0).unwrap();
    assert_eq!(r.ack_count, Some(0));
    assert_eq!(r.warnings[0].message, "unknown lease id");
    let purged = w.purge_refs(&b, vec![peeked], T0).unwrap();
    assert_eq!(purged.warnings.len(), 1);
    assert_eq!(w.metrics(&b, T0).unwrap().backlog_count, 1);
    assert_eq!(w.ack(&a, ack(&lease), T0).unwrap().ack_count, Some(1));
}
