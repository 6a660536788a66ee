//! Authentication and authorisation end to end, on both runtimes: hashes made by other tools,
//! CONNACK codes, the ACL matrix, and a pending asynchronous authenticator.
//!
//! Needs `mosquitto_passwd` (apt `mosquitto`) and Python 3 with `crypt` (or pip `passlib`).
#![allow(missing_docs)]

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use moat_mqtt_core::auth::{
    AclFile, AnonymousAuthenticator, AuthDecision, AuthFuture, Authenticator, Credentials, FileAuthenticator,
    PasswordFile, Plugins, TopicAcl,
};
use moat_mqtt_core::broker::BrokerConfig;
use moat_mqtt_core::codec::{Connect, Packet, Properties, ProtocolLevel, QoS, ReasonCode};
use moat_mqtt_tests::{RawClient, Rt, TestBroker};

fn login_packet(client_id: &str, user: Option<&str>, password: Option<&str>) -> Packet {
    Packet::Connect(Connect {
        level: ProtocolLevel::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: user.map(Into::into),
        password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        properties: Properties::new(),
    })
}

/// Connects with credentials; returns the client and the CONNACK's code.
fn login(broker: &TestBroker, client_id: &str, user: Option<&str>, password: Option<&str>) -> (RawClient, ReasonCode) {
    let mut client = RawClient::open(broker.addr);
    client.send(&login_packet(client_id, user, password));
    match client.recv() {
        Packet::Connack(c) => (client, c.reason),
        other => panic!("{client_id}: expected CONNACK, got {other:?}"),
    }
}

fn logged_in(broker: &TestBroker, client_id: &str, user: Option<&str>) -> RawClient {
    let (client, code) = login(broker, client_id, user, None);
    assert_eq!(code, ReasonCode::Success, "{client_id}");
    client
}

fn broker_with(rt: Rt, plugins: Plugins) -> TestBroker {
    let mut config = BrokerConfig::default();
    config.router.sys_interval = None;
    config.router.plugins = plugins;
    TestBroker::start_with(rt, config)
}

/// `user:hash` lines written by mosquitto_passwd (`$7$` and its `-H sha512` `$6$`) and by
/// Python's SHA-512 crypt (with and without `rounds=`).
fn foreign_password_file() -> String {
    let dir = std::env::temp_dir().join(format!("moat-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("mosquitto.passwd");
    let _ = std::fs::remove_file(&file);
    for (args, user) in [(&["-c"][..], "pbkdf2"), (&["-H", "sha512"][..], "mosq6")] {
        let status = Command::new("mosquitto_passwd")
            .args(args)
            .arg("-b")
            .arg(&file)
            .args([user, &format!("pw-{user}")])
            .stdin(Stdio::null())
            .status()
            .expect("mosquitto_passwd is needed: apt-get install mosquitto");
        assert!(status.success(), "mosquitto_passwd failed");
    }
    let mut text = std::fs::read_to_string(&file).expect("read mosquitto's file");
    let script = "
import sys, warnings
warnings.simplefilter('ignore')
try:
    import crypt
    print('crypt6:' + crypt.crypt('pw-crypt6', crypt.mksalt(crypt.METHOD_SHA512)))
    print('rounds6:' + crypt.crypt('pw-rounds6', '$6$rounds=12000$' + crypt.mksalt(crypt.METHOD_SHA512)[3:]))
except ImportError:
    from passlib.hash import sha512_crypt
    print('crypt6:' + sha512_crypt.using(rounds=5000).hash('pw-crypt6').replace('$rounds=5000', ''))
    print('rounds6:' + sha512_crypt.using(rounds=12000).hash('pw-rounds6'))
";
    let out = Command::new("python3").args(["-c", script]).output().expect("python3 is needed");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    text.push_str(&String::from_utf8(out.stdout).expect("utf-8"));
    let _ = std::fs::remove_dir_all(&dir);
    text
}

#[test]
fn hashes_from_other_tools_and_connack_codes() {
    let text = foreign_password_file();
    assert!(text.contains("pbkdf2:$7$101$") && text.contains("mosq6:$6$") && text.contains("rounds6:$6$rounds=12000$"));
    let file = PasswordFile::parse("foreign", &text).expect("every foreign hash is read");
    let plugins = Plugins::new()
        .with_authenticator(Arc::new(AnonymousAuthenticator::new(false)))
        .with_authenticator(Arc::new(FileAuthenticator::new(file)));
    for rt in Rt::ALL {
        let broker = broker_with(rt, plugins.clone());
        for user in ["pbkdf2", "mosq6", "crypt6", "rounds6"] {
            let password = format!("pw-{user}");
            let (_, code) = login(&broker, user, Some(user), Some(&password));
            assert_eq!(code, ReasonCode::Success, "{rt:?} {user}");
            let (mut refused, code) = login(&broker, user, Some(user), Some("wrong"));
            assert_eq!(code, ReasonCode::BadUserNameOrPassword, "{rt:?} {user}");
            assert!(refused.is_closed_within(Duration::from_secs(5)));
        }
        let (_, code) = login(&broker, "nobody", Some("nobody"), Some("pw"));
        assert_eq!(code, ReasonCode::BadUserNameOrPassword);
        let (mut anonymous, code) = login(&broker, "anon", None, None);
        assert_eq!(code, ReasonCode::NotAuthorized, "{rt:?}");
        assert!(anonymous.is_closed_within(Duration::from_secs(5)));
        assert_eq!(broker.stats().clients_total, 4);
    }
}

#[test]
fn acl_matrix_for_publish_and_subscribe() {
    let acl = TopicAcl::new([
        ("alice", vec!["a/+", "calendar/#"]),
        ("anonymous", vec!["public/#"]),
        ("admin", vec!["#", "$SYS/#"]),
    ])
    .unwrap();
    let plugins = Plugins::new().with_authorizer(Arc::new(acl));
    use ReasonCode::{GrantedQoS1 as Ok1, UnspecifiedError as No};
    for rt in Rt::ALL {
        let broker = broker_with(rt, plugins.clone());
        let mut admin = logged_in(&broker, "admin", Some("admin"));
        assert_eq!(admin.subscribe(1, &[("#", QoS::AtLeastOnce), ("$SYS/#", QoS::AtLeastOnce)]), [Ok1, Ok1]);
        let mut alice = logged_in(&broker, "alice", Some("alice"));
        let filters = ["a/+", "a/#", "a/b", "+/b", "calendar/2026/#", "#", "$SYS/#"];
        let asked: Vec<_> = filters.iter().map(|f| (*f, QoS::AtLeastOnce)).collect();
        assert_eq!(alice.subscribe(1, &asked), [Ok1, No, Ok1, No, Ok1, No, No], "{rt:?}");
        let mut anon = logged_in(&broker, "anon", None);
        assert_eq!(
            anon.subscribe(1, &[("public/#", QoS::AtMostOnce), ("a/x", QoS::AtMostOnce)]),
            [ReasonCode::Success, No]
        );
        // A refused PUBLISH is acknowledged (the client stops retrying) and not delivered.
        alice.publish("b/x", QoS::AtLeastOnce, 1, b"refused", false);
        alice.publish("a/x/y", QoS::ExactlyOnce, 2, b"refused", false);
        alice.publish("a/x", QoS::AtLeastOnce, 3, b"allowed", false);
        let got = admin.receive();
        assert_eq!((got.topic.as_str(), &got.payload[..]), ("a/x", &b"allowed"[..]), "{rt:?}");
        // alice's own subscription a/+ gets it too, and nothing of the refused ones.
        assert_eq!(alice.receive().topic.as_str(), "a/x");
        assert_eq!(broker.stats().publish_denied, 2);
        anon.publish("public/news", QoS::AtMostOnce, 0, b"hi", false);
        assert_eq!(admin.receive().topic.as_str(), "public/news");
        assert_eq!(anon.receive().topic.as_str(), "public/news");
        assert!(alice.recv_nothing_within(Duration::from_millis(100)).is_none());
    }
}

#[test]
fn acl_file_deny_patterns_and_dollar_topics() {
    let acl = AclFile::parse(
        "acl",
        "topic deny test/nosubscribe\ntopic readwrite #\nuser bob\ntopic read $SYS/broker/uptime\npattern readwrite users/%u/#\npattern write status/%c\n",
    )
    .unwrap();
    let plugins = Plugins::new().with_authorizer(Arc::new(acl));
    use ReasonCode::{GrantedQoS1 as Ok1, UnspecifiedError as No};
    for rt in Rt::ALL {
        let broker = broker_with(rt, plugins.clone());
        let mut anon = logged_in(&broker, "anon", None);
        assert_eq!(
            anon.subscribe(
                1,
                &[("test/nosubscribe", QoS::AtLeastOnce), ("#", QoS::AtLeastOnce), ("$SYS/#", QoS::AtLeastOnce)]
            ),
            [No, Ok1, No],
            "{rt:?}"
        );
        let mut bob = logged_in(&broker, "dev-1", Some("bob"));
        assert_eq!(
            bob.subscribe(
                1,
                &[
                    ("users/bob/#", QoS::AtLeastOnce),
                    ("users/+/x", QoS::AtLeastOnce),
                    ("$SYS/broker/uptime", QoS::AtLeastOnce),
                    ("#", QoS::AtLeastOnce)
                ]
            ),
            [Ok1, No, Ok1, No],
            "{rt:?}"
        );
        // The deny line also keeps the topic from `#` subscribers.
        let mut publisher = logged_in(&broker, "pub", None);
        publisher.publish("test/nosubscribe", QoS::AtLeastOnce, 1, b"x", false);
        publisher.publish("test/ok", QoS::AtLeastOnce, 2, b"y", false);
        assert_eq!(anon.receive().topic.as_str(), "test/ok", "{rt:?}");
        bob.publish("status/dev-1", QoS::AtLeastOnce, 3, b"up", false);
        bob.publish("status/dev-2", QoS::AtLeastOnce, 4, b"forged", false);
        bob.publish("users/bob/x", QoS::AtLeastOnce, 5, b"mine", false);
        assert_eq!(bob.receive().topic.as_str(), "users/bob/x");
        assert_eq!(broker.stats().publish_denied, 2, "{rt:?}");
    }
}

/// Answers later, when the test opens the gate; counts what it was asked.
#[derive(Debug, Default)]
struct Gate {
    open: Arc<Mutex<(bool, Vec<std::task::Waker>)>>,
}

impl Gate {
    fn open(&self) {
        let mut state = self.open.lock().unwrap();
        state.0 = true;
        for waker in state.1.drain(..) {
            waker.wake();
        }
    }
}

impl Authenticator for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn authenticate(&self, credentials: &Credentials) -> AuthDecision {
        match credentials.username.as_deref() {
            Some("slow") => AuthDecision::Pending,
            _ => AuthDecision::Allow,
        }
    }

    fn authenticate_later(&self, _credentials: Credentials) -> AuthFuture {
        let open = Arc::clone(&self.open);
        Box::pin(std::future::poll_fn(move |cx| {
            let mut state = open.lock().unwrap();
            if state.0 {
                std::task::Poll::Ready(AuthDecision::Allow)
            } else {
                state.1.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        }))
    }
}

#[test]
fn a_pending_authenticator_holds_one_client_only() {
    for rt in Rt::ALL {
        let gate = Arc::new(Gate::default());
        let broker = broker_with(rt, Plugins::new().with_authenticator(gate.clone()));
        let mut slow = RawClient::open(broker.addr);
        slow.send(&login_packet("slow-1", Some("slow"), Some("pw")));
        slow.send(&moat_mqtt_tests::helpers::subscribe_packet(1, &[("t/#", QoS::AtLeastOnce)]));
        // Meanwhile another client connects, subscribes and has a message round trip.
        let mut quick = logged_in(&broker, "quick", Some("quick"));
        quick.subscribe(1, &[("t/#", QoS::AtMostOnce)]);
        quick.publish("t/meanwhile", QoS::AtMostOnce, 0, b"x", false);
        assert_eq!(quick.receive().topic.as_str(), "t/meanwhile");
        // The slow client heard nothing yet.
        assert!(slow.recv_nothing_within(Duration::from_millis(50)).is_none(), "{rt:?}");
        gate.open();
        assert!(matches!(slow.recv(), Packet::Connack(c) if c.reason == ReasonCode::Success), "{rt:?}");
        assert!(matches!(slow.recv(), Packet::Suback(s) if s.reasons == [ReasonCode::GrantedQoS1]), "{rt:?}");
        quick.publish("t/after", QoS::AtMostOnce, 0, b"y", false);
        assert_eq!(slow.receive().topic.as_str(), "t/after");
    }
}
