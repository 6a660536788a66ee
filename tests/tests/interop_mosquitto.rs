//! mosquitto_pub / mosquitto_sub against our broker, on both runtimes.
//!
//! Needs `apt-get install mosquitto-clients`. `mosquitto_sub` runs with `-d` (so the tests see
//! its SUBACK) and prints messages as `MSG topic qos retain payload`.

use std::time::Duration;

use moat_mqtt_tests::external::{
    MqttVersion, OneShotProxy, Proc, ProxyClose, SubMessage, TIMEOUT, mosquitto, mosquitto_pub, mosquitto_sub,
    mosquitto_sub_nowait, parse_messages,
};
use moat_mqtt_tests::{Rt, TestBroker};

use MqttVersion::{V5, V31, V311};

/// Runs `test` against a fresh broker on each runtime.
fn on_both(test: impl Fn(Rt, &TestBroker)) {
    for rt in Rt::ALL {
        let broker = TestBroker::start(rt);
        test(rt, &broker);
        broker.stop();
    }
}

fn msg(topic: &str, qos: u8, retain: bool, payload: &str) -> SubMessage {
    SubMessage { topic: topic.into(), qos, retain, payload: payload.into() }
}

/// `count` messages published at `qos` reach a subscriber at `qos`, in order.
fn round_trip(version: MqttVersion, qos: u8) {
    let count = 5;
    on_both(|rt, broker| {
        let q = qos.to_string();
        let sub = mosquitto_sub(broker.addr, version, &["-t", "rt/#", "-q", &q, "-C", &count.to_string(), "-W", "5"]);
        for i in 0..count {
            mosquitto_pub(broker.addr, version, &["-t", &format!("rt/{i}"), "-q", &q, "-m", &format!("msg-{i}")]);
        }
        let done = sub.wait_success(TIMEOUT);
        let expected: Vec<_> = (0..count).map(|i| msg(&format!("rt/{i}"), qos, false, &format!("msg-{i}"))).collect();
        assert_eq!(parse_messages(&done.stdout), expected, "{rt:?} {version:?} QoS {qos}: {}", done.dump());
    });
}

#[test]
fn qos0_round_trip() {
    round_trip(V311, 0);
}

#[test]
fn qos1_round_trip() {
    round_trip(V311, 1);
}

#[test]
fn qos2_round_trip() {
    round_trip(V311, 2);
}

#[test]
fn mqtt31_qos1_round_trip() {
    round_trip(V31, 1);
}

#[test]
fn mqtt31_qos2_round_trip() {
    round_trip(V31, 2);
}

#[test]
fn qos2_publish_to_qos1_subscription_is_downgraded() {
    on_both(|rt, broker| {
        let sub = mosquitto_sub(broker.addr, V311, &["-t", "d/t", "-q", "1", "-C", "1", "-W", "5"]);
        mosquitto_pub(broker.addr, V311, &["-t", "d/t", "-q", "2", "-m", "down"]);
        let done = sub.wait_success(TIMEOUT);
        assert_eq!(parse_messages(&done.stdout), [msg("d/t", 1, false, "down")], "{rt:?}: {}", done.dump());
    });
}

#[test]
fn retained_message_reaches_later_subscriber_and_empty_one_clears_it() {
    on_both(|rt, broker| {
        mosquitto_pub(broker.addr, V311, &["-t", "ret/a", "-q", "1", "-r", "-m", "kept"]);
        let later = mosquitto_sub(broker.addr, V311, &["-t", "ret/#", "-q", "1", "-C", "1", "-W", "5"]);
        let done = later.wait_success(TIMEOUT);
        assert_eq!(parse_messages(&done.stdout), [msg("ret/a", 1, true, "kept")], "{rt:?}: {}", done.dump());

        // `-n -r`: an empty retained message clears the topic.
        mosquitto_pub(broker.addr, V311, &["-t", "ret/a", "-q", "1", "-r", "-n"]);
        // Retained messages come right after SUBACK, so a live message published after it is
        // the first thing this subscriber sees unless ret/a is still retained.
        let after = mosquitto_sub(broker.addr, V311, &["-t", "ret/#", "-q", "1", "-C", "1", "-W", "5"]);
        mosquitto_pub(broker.addr, V311, &["-t", "ret/live", "-q", "1", "-m", "marker"]);
        let done = after.wait_success(TIMEOUT);
        assert_eq!(parse_messages(&done.stdout), [msg("ret/live", 1, false, "marker")], "{rt:?}: {}", done.dump());
    });
}

#[test]
fn will_sent_on_sigkill_not_on_clean_exit() {
    on_both(|rt, broker| {
        let watcher = mosquitto_sub(broker.addr, V311, &["-t", "will/#", "-q", "1", "-C", "1", "-W", "5"]);
        let victim = |payload: &str, count: &str| {
            let (topic, will) = (format!("x/{payload}"), format!("will/{payload}"));
            let args = [
                "-t",
                &topic,
                "-C",
                count,
                "-k",
                "5",
                "--will-topic",
                &will,
                "--will-payload",
                payload,
                "--will-qos",
                "1",
            ];
            mosquitto_sub(broker.addr, V311, &args)
        };
        // A normal exit (`-C 1`: one message, then DISCONNECT) discards the will. (Not SIGINT:
        // mosquitto_sub sometimes hangs in its signal handler.)
        let clean = victim("clean", "1");
        mosquitto_pub(broker.addr, V311, &["-t", "x/clean", "-m", "bye"]);
        let clean = clean.wait_success(TIMEOUT);
        assert!(clean.stdout.iter().any(|l| l.contains("sending DISCONNECT")), "{rt:?}: {}", clean.dump());
        // SIGKILL: the socket just closes.
        victim("killed", "100").kill();
        let done = watcher.wait_success(TIMEOUT);
        assert_eq!(parse_messages(&done.stdout), [msg("will/killed", 1, false, "killed")], "{rt:?}: {}", done.dump());
    });
}

#[test]
fn persistent_session_gets_messages_queued_while_away() {
    on_both(|rt, broker| {
        let session = ["-c", "-i", "offline-sub", "-q", "1", "-t", "sess/t"];
        // Connect with a persistent session, subscribe, die.
        mosquitto_sub(broker.addr, V311, &session).kill();
        for i in 0..3 {
            mosquitto_pub(broker.addr, V311, &["-t", "sess/t", "-q", "1", "-m", &format!("away-{i}")]);
        }
        // The queued messages may come before SUBACK. A fourth message, sent once SUBACK is in,
        // makes it exit (`-C 4`) with nothing left unread: closing a socket with unread input
        // makes the kernel send RST and drop unsent output (its last PUBACKs, held back by
        // Nagle), and the broker would rightly send those messages again. (SIGINT is no way out
        // either: mosquitto_sub sometimes hangs in its signal handler.)
        let mut back = mosquitto_sub_nowait(broker.addr, V311, &[&session[..], &["-C", "4", "-W", "5"]].concat());
        back.wait_until(TIMEOUT, |out| out.iter().any(|l| l.contains("received SUBACK")));
        mosquitto_pub(broker.addr, V311, &["-t", "sess/t", "-q", "1", "-m", "online"]);
        let done = back.wait_success(TIMEOUT);
        let mut expected: Vec<_> = (0..3).map(|i| msg("sess/t", 1, false, &format!("away-{i}"))).collect();
        expected.push(msg("sess/t", 1, false, "online"));
        assert_eq!(parse_messages(&done.stdout), expected, "{rt:?}: {}", done.dump());

        // All acknowledged: a third connection gets only what is new.
        let again = mosquitto_sub(broker.addr, V311, &[&session[..], &["-C", "1", "-W", "5"]].concat());
        mosquitto_pub(broker.addr, V311, &["-t", "sess/t", "-q", "1", "-m", "new"]);
        let done = again.wait_success(TIMEOUT);
        assert_eq!(parse_messages(&done.stdout), [msg("sess/t", 1, false, "new")], "{rt:?}: {}", done.dump());
    });
}

#[test]
fn takeover_disconnects_the_first_client() {
    on_both(|rt, broker| {
        // The first client goes through a proxy that accepts only once, so that mosquitto_sub's
        // automatic reconnection cannot take the session back.
        let proxy = OneShotProxy::start(broker.addr);
        let mut first = mosquitto_sub(proxy.addr, V311, &["-i", "same-id", "-q", "1", "-t", "take/t"]);
        let second =
            mosquitto_sub(broker.addr, V311, &["-i", "same-id", "-q", "1", "-t", "take/t", "-C", "1", "-W", "5"]);
        assert_eq!(
            proxy.closed_within(Duration::from_secs(5)),
            Some(ProxyClose::ByBroker),
            "{rt:?}: the broker should close the first connection: {}",
            first.dump()
        );
        mosquitto_pub(broker.addr, V311, &["-t", "take/t", "-q", "1", "-m", "after"]);
        let done = second.wait_success(TIMEOUT);
        assert_eq!(parse_messages(&done.stdout), [msg("take/t", 1, false, "after")], "{rt:?}: {}", done.dump());
        assert_eq!(parse_messages(first.stdout()), [], "{rt:?}: {}", first.dump());
    });
}

#[test]
fn mqtt5_client_is_refused_not_left_hanging() {
    on_both(|rt, broker| {
        for tool in ["mosquitto_pub", "mosquitto_sub"] {
            let mut cmd = mosquitto(tool, broker.addr, V5);
            cmd.args(["-t", "v5/t", "-q", "1"]);
            if tool == "mosquitto_pub" {
                cmd.args(["-m", "x"]);
            }
            let done = Proc::spawn(cmd).wait(Duration::from_secs(5));
            assert!(!done.status.success(), "{rt:?} {tool}: {}", done.dump());
            assert!(
                done.stderr.iter().any(|l| l.contains("Unsupported Protocol Version")),
                "{rt:?} {tool}: expected a refusal for the protocol version: {}",
                done.dump()
            );
        }
    });
}
