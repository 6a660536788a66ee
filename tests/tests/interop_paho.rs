//! paho-mqtt 2.x (python3) clients against our broker, on both runtimes.
//!
//! Each scenario is a script in `tests/python/` that checks what it receives, exits non-zero
//! with a reason on failure and prints `RESULT k=v ...`, which the tests here check again.
//! Needs `python3` with `pip install 'paho-mqtt>=2'`.

use std::collections::BTreeMap;
use std::time::Duration;

use moat_mqtt_tests::external::run_python;
use moat_mqtt_tests::{Rt, TestBroker};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `script` against a fresh broker on each runtime; returns each runtime's result.
fn on_both(script: &str, args: &[&str]) -> Vec<(Rt, BTreeMap<String, String>)> {
    Rt::ALL
        .into_iter()
        .map(|rt| {
            let broker = TestBroker::start(rt);
            let fields = run_python(script, broker.addr, args, SCRIPT_TIMEOUT);
            broker.stop();
            (rt, fields)
        })
        .collect()
}

fn field<'a>(rt: Rt, fields: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    fields.get(key).unwrap_or_else(|| panic!("{rt:?}: no {key} in {fields:?}"))
}

fn roundtrip(pub_qos: u8, sub_qos: u8) {
    let count = 20;
    for (rt, fields) in on_both("paho_roundtrip.py", &[&pub_qos.to_string(), &sub_qos.to_string(), &count.to_string()])
    {
        assert_eq!(field(rt, &fields, "received"), count.to_string(), "{rt:?}");
        assert_eq!(field(rt, &fields, "qos"), pub_qos.min(sub_qos).to_string(), "{rt:?}");
        assert_eq!(field(rt, &fields, "in_order"), "1", "{rt:?}");
    }
}

#[test]
fn qos0_round_trip() {
    roundtrip(0, 0);
}

#[test]
fn qos1_round_trip() {
    roundtrip(1, 1);
}

#[test]
fn qos2_round_trip() {
    roundtrip(2, 2);
}

#[test]
fn qos2_publish_to_qos1_subscription_is_downgraded() {
    roundtrip(2, 1);
}

#[test]
fn retained_messages_set_forwarded_and_cleared() {
    for (rt, fields) in on_both("paho_retained.py", &[]) {
        assert_eq!(field(rt, &fields, "first"), "ret/a:kept:1", "{rt:?}: retained, RETAIN set");
        assert_eq!(field(rt, &fields, "live"), "ret/b:live:0", "{rt:?}: live copy without RETAIN");
        assert_eq!(field(rt, &fields, "after_clear"), "ret/b:live:1", "{rt:?}: ret/a cleared");
    }
}

#[test]
fn will_on_abrupt_close_not_on_disconnect() {
    for (rt, fields) in on_both("paho_will.py", &[]) {
        assert_eq!(field(rt, &fields, "wills"), "dropped,exited", "{rt:?}");
    }
}

#[test]
fn persistent_session_queues_and_resends_qos1() {
    for (rt, fields) in on_both("paho_session.py", &[]) {
        assert_eq!(field(rt, &fields, "resent"), "3", "{rt:?}: unacknowledged messages resent with DUP");
        assert_eq!(field(rt, &fields, "total"), "5", "{rt:?}");
    }
}

#[test]
fn takeover_disconnects_the_first_client() {
    for (rt, fields) in on_both("paho_takeover.py", &[]) {
        assert_eq!(field(rt, &fields, "first_disconnected"), "1", "{rt:?}");
        assert_eq!(field(rt, &fields, "second_got"), "after", "{rt:?}");
        assert_eq!(field(rt, &fields, "first_got"), "0", "{rt:?}");
    }
}

#[test]
fn mqtt5_client_is_refused() {
    for (rt, fields) in on_both("paho_v5_refused.py", &[]) {
        assert_eq!(field(rt, &fields, "refused"), "1", "{rt:?}");
        assert_eq!(field(rt, &fields, "reason"), "Unsupported_protocol_version", "{rt:?}");
    }
}
