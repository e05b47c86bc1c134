//! Unit tests of `codec.rs`.

use super::*;

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Sample {
    #[serde(default, with = "flex_u32")]
    n: u32,
    #[serde(
        default,
        with = "opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    big: Option<u64>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    delay: Option<Duration>,
    #[serde(default, with = "opt_millis", skip_serializing_if = "Option::is_none")]
    lease: Option<Duration>,
    #[serde(default, with = "empty_none", skip_serializing_if = "Option::is_none")]
    dlq: Option<String>,
}

fn parse(s: &str) -> Result<Sample, serde_json::Error> {
    serde_json::from_str(s)
}

#[test]
fn integers_accept_ints_and_integral_floats() {
    assert_eq!(parse(r#"{"n": 5}"#).unwrap().n, 5);
    assert_eq!(parse(r#"{"n": 5.0}"#).unwrap().n, 5);
    assert_eq!(
        parse(r#"{"big": 1710950954154.0}"#).unwrap().big,
        Some(1_710_950_954_154)
    );
    assert_eq!(parse(r#"{"big": null}"#).unwrap().big, None);
    assert_eq!(parse(r#"{}"#).unwrap().n, 0);
}

#[test]
fn integers_reject_fractions_negatives_and_overflow() {
    for bad in [
        r#"{"n": 5.5}"#,
        r#"{"n": -1}"#,
        r#"{"n": 4294967296}"#,
        r#"{"n": "5"}"#,
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("non-negative integer"), "{bad}: {err}");
    }
}

#[test]
fn durations_read_numbers_and_write_rounded_up_integers() {
    let s = parse(r#"{"delay": 1.5, "lease": 30000.0}"#).unwrap();
    assert_eq!(s.delay, Some(Duration::from_millis(1500)));
    assert_eq!(s.lease, Some(Duration::from_secs(30)));
    let out = Sample {
        n: 1,
        big: None,
        delay: Some(Duration::from_millis(1001)),
        lease: Some(Duration::from_micros(1500)),
        dlq: None,
    };
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"n":1,"delay":2,"lease":2}"#
    );
    assert!(parse(r#"{"delay": -3}"#).is_err());
}

#[test]
fn empty_dead_letter_queue_is_none() {
    assert_eq!(parse(r#"{"dlq": ""}"#).unwrap().dlq, None);
    assert_eq!(parse(r#"{"dlq": null}"#).unwrap().dlq, None);
    assert_eq!(
        parse(r#"{"dlq": "dlq-1"}"#).unwrap().dlq.as_deref(),
        Some("dlq-1")
    );
}

#[test]
fn ack_warnings_accept_map_list_and_null() {
    #[derive(Deserialize)]
    struct W {
        #[serde(default, with = "ack_warnings")]
        w: Vec<AckWarning>,
    }
    let map: W = serde_json::from_str(r#"{"w": {"lease-1": "unknown lease"}}"#).unwrap();
    assert_eq!(map.w, vec![AckWarning::new("lease-1", "unknown lease")]);
    let list: W = serde_json::from_str(r#"{"w": ["late"]}"#).unwrap();
    assert_eq!(
        list.w,
        vec![AckWarning {
            lease_id: None,
            message: "late".into()
        }]
    );
    let null: W = serde_json::from_str(r#"{"w": null}"#).unwrap();
    assert!(null.w.is_empty());
}
