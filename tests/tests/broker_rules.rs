//! The broker's protocol rules, end to end over loopback, each on both runtimes.
//!
//! Where a test must show that something did *not* arrive, it uses a fence: a QoS 0 message
//! published after the fact that the subscriber also matches. Routing is synchronous and
//! per-subscriber queues are FIFO, so whatever was going to arrive arrives before the fence.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use moat_mqtt_core::broker::{BrokerConfig, ListenerConfig};
use moat_mqtt_core::codec::{
    Ack, Connack, Connect, Packet, Properties, ProtocolLevel, Publish, QoS, ReasonCode, encode,
};
use moat_mqtt_tests::helpers::{
    close_reason, connect_packet, connect_with_will, on_both_runtimes, pid, publish_packet, wait_until,
};
use moat_mqtt_tests::{RawClient, Rt, TestBroker, logs};

const QUIET: Duration = Duration::from_millis(300);

/// The defaults, without `$SYS` publications.
fn config() -> BrokerConfig {
    let mut config = BrokerConfig::default();
    config.router.sys_interval = None;
    config
}

fn start(rt: Rt) -> TestBroker {
    TestBroker::start_with(rt, config())
}

/// Receives until a message on `fence_topic`, then acknowledges what came before it (so that
/// a QoS 2 handshake does not meet the fence halfway) and returns it.
fn until_fence(subscriber: &mut RawClient, fence_topic: &str) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let publish = subscriber.expect_publish();
        if publish.topic.as_str() == fence_topic {
            break;
        }
        got.push(publish);
    }
    for publish in &got {
        subscriber.ack(publish);
    }
    got
}

/// Publishes a QoS 0 fence on `topic` and returns what `subscriber` received before it.
fn fence(publisher: &mut RawClient, subscriber: &mut RawClient, topic: &str) -> Vec<Publish> {
    publisher.publish(topic, QoS::AtMostOnce, 1, b"fence", false);
    until_fence(subscriber, topic)
}

fn payloads(publishes: &[Publish]) -> Vec<String> {
    publishes.iter().map(|p| String::from_utf8_lossy(&p.payload).into_owned()).collect()
}

fn assert_closed_without_reply(client: &mut RawClient, what: &str) {
    match client.recv_within(Duration::from_secs(2)) {
        Ok(packet) => panic!("{what}: expected the connection closed, got {packet:?}"),
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "{what}: still open after 2 s"
        ),
    }
}

fn connack(reason: ReasonCode, session_present: bool) -> Packet {
    Packet::Connack(Connack { session_present, reason, properties: Properties::new() })
}

// --- CONNECT ----------------------------------------------------------------------------------

#[test]
fn connect_accepts_level_4_and_level_3() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let (mut v4, ack) = RawClient::connect(broker.addr, "v4", true);
        assert_eq!(ack.reason, ReasonCode::Success, "{rt:?}");
        v4.send(&Packet::Pingreq);
        assert_eq!(v4.recv(), Packet::Pingresp, "{rt:?}");

        let connect = Connect {
            level: ProtocolLevel::V3_1,
            clean_start: true,
            keep_alive: 60,
            client_id: "v3".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        };
        let mut bytes = Vec::new();
        encode(&Packet::Connect(connect), ProtocolLevel::V3_1, &mut bytes).unwrap();
        assert!(bytes.windows(6).any(|w| w == b"MQIsdp"), "3.1 says MQIsdp");
        let mut v3 = RawClient::open(broker.addr);
        v3.set_level(ProtocolLevel::V3_1);
        v3.send_bytes(&bytes);
        assert_eq!(v3.recv(), connack(ReasonCode::Success, false), "{rt:?}");
        v3.subscribe(1, &[("v3/#", QoS::AtLeastOnce)]);
        v4.publish("v3/x", QoS::AtLeastOnce, 1, b"to 3.1", false);
        let got = v3.receive();
        assert_eq!((&got.payload[..], got.qos), (&b"to 3.1"[..], QoS::AtLeastOnce), "{rt:?}");
    }
}

#[test]
fn connect_level_5_gets_return_code_1_and_is_closed() {
    // level 5, clean start, keep-alive 10, no properties, client id "id"
    const CONNECT_V5: &[u8] = &[0x10, 0x0F, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 10, 0, 0, 2, b'i', b'd'];
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut client = RawClient::open(broker.addr);
        let addr = client.local_addr();
        client.send_bytes(CONNECT_V5);
        // In the 3.1.1 format: 0x20 0x02 0x00 0x01.
        assert_eq!(client.recv(), connack(ReasonCode::UnsupportedProtocolVersion, false), "{rt:?}");
        assert!(client.is_closed_within(Duration::from_secs(2)), "{rt:?}");
        close_reason(addr, "protocol level 5");
    }
}

#[test]
fn connect_with_a_bad_protocol_name_is_closed() {
    for rt in Rt::ALL {
        let broker = start(rt);
        for (name, level, reason) in [
            (&b"MQTX"[..], 4u8, "MQTX"),
            (b"MQIsdp", 4, "does not go with level 4"),
            (b"MQTT", 3, "does not go with level 3"),
        ] {
            let mut bytes = vec![0x10, 0];
            bytes.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(&[level, 0x02, 0, 10, 0, 2, b'i', b'd']);
            bytes[1] = u8::try_from(bytes.len() - 2).unwrap();
            let mut client = RawClient::open(broker.addr);
            let addr = client.local_addr();
            client.send_bytes(&bytes);
            assert_closed_without_reply(&mut client, &format!("{rt:?} {reason}"));
            close_reason(addr, reason);
        }
    }
}

#[test]
fn a_second_connect_closes_the_link() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut client = RawClient::connected(broker.addr, "twice", true);
        let addr = client.local_addr();
        client.send(&connect_packet("twice", true, 60));
        assert_closed_without_reply(&mut client, &format!("{rt:?}"));
        close_reason(addr, "a second CONNECT");
    }
}

#[test]
fn empty_client_id_needs_a_clean_session() {
    for rt in Rt::ALL {
        let broker = start(rt);
        // Clean: accepted with an assigned identifier, a different one each time.
        let mut first = RawClient::connected(broker.addr, "", true);
        let mut second = RawClient::connected(broker.addr, "", true);
        for client in [&mut first, &mut second] {
            client.send(&Packet::Pingreq);
            assert_eq!(client.recv(), Packet::Pingresp, "{rt:?}: both stay connected");
        }
        assert!(!logs::matching(&["client \"auto-"]).is_empty(), "assigned ids are logged");
        // Not clean: CONNACK 2 (identifier rejected), then closed.
        let (mut client, ack) = RawClient::connect(broker.addr, "", false);
        assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid, "{rt:?}");
        assert!(client.is_closed_within(Duration::from_secs(2)), "{rt:?}");
        // MQTT 3.1 has no assigned identifiers, clean or not.
        let mut v3 = RawClient::open(broker.addr);
        v3.set_level(ProtocolLevel::V3_1);
        let Packet::Connect(mut connect) = connect_packet("", true, 60) else { unreachable!() };
        connect.level = ProtocolLevel::V3_1;
        v3.send(&Packet::Connect(connect));
        assert_eq!(v3.recv(), connack(ReasonCode::ClientIdentifierNotValid, false), "{rt:?}");
        assert!(v3.is_closed_within(Duration::from_secs(2)), "{rt:?}");
        let stats = broker.stats();
        assert_eq!((stats.clients_connected, stats.clients_total), (2, 2), "{rt:?}");
    }
}

#[test]
fn keep_alive_zero_means_no_keep_alive() {
    on_both_runtimes(|rt| {
        let broker = start(rt);
        let mut client = RawClient::open(broker.addr);
        client.send(&connect_packet("ka0", true, 0));
        assert_eq!(client.recv(), connack(ReasonCode::Success, false));
        assert!(!client.is_closed_within(Duration::from_secs(3)), "{rt:?}: closed a keep-alive 0 link");
        client.send(&Packet::Pingreq);
        assert_eq!(client.recv(), Packet::Pingresp, "{rt:?}");
    });
}

#[test]
fn keep_alive_closes_a_silent_link_after_one_and_a_half_periods() {
    on_both_runtimes(|rt| {
        let broker = start(rt);
        std::thread::scope(|scope| {
            // A client that pings every 0.6 s stays connected meanwhile.
            let pinger = scope.spawn(|| {
                let mut client = RawClient::open(broker.addr);
                client.send(&connect_packet("pinger", true, 1));
                assert_eq!(client.recv(), connack(ReasonCode::Success, false));
                for _ in 0..4 {
                    std::thread::sleep(Duration::from_millis(600));
                    client.send(&Packet::Pingreq);
                    assert_eq!(client.recv(), Packet::Pingresp, "{rt:?}: a pinging client stays");
                }
            });
            let mut silent = RawClient::open(broker.addr);
            let addr = silent.local_addr();
            silent.send(&connect_packet("silent", true, 1));
            assert_eq!(silent.recv(), connack(ReasonCode::Success, false));
            let start = Instant::now();
            assert!(!silent.is_closed_within(Duration::from_millis(1000)), "{rt:?}: closed before 1 s");
            assert!(silent.is_closed_within(Duration::from_secs(2)), "{rt:?}: still open after 3 s");
            let after = start.elapsed();
            assert!(after >= Duration::from_millis(1400), "{rt:?}: closed after {after:?}");
            close_reason(addr, "keep-alive expired");
            pinger.join().expect("pinger");
        });
    });
}

#[test]
fn a_link_without_connect_is_closed_after_the_connect_timeout() {
    on_both_runtimes(|rt| {
        let mut config = config();
        config.link.connect_timeout = Duration::from_secs(1);
        let broker = TestBroker::start_with(rt, config);
        let mut client = RawClient::open(broker.addr);
        let addr = client.local_addr();
        let start = Instant::now();
        assert!(!client.is_closed_within(Duration::from_millis(700)), "{rt:?}: closed early");
        assert!(client.is_closed_within(Duration::from_secs(2)), "{rt:?}: still open");
        let after = start.elapsed();
        assert!(after >= Duration::from_millis(900), "{rt:?}: closed after {after:?}");
        close_reason(addr, "no CONNECT within 1s");
    });
}

// --- sessions -----------------------------------------------------------------------------------

#[test]
fn a_second_connection_with_the_same_id_takes_the_session_over() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut publisher = RawClient::connected(broker.addr, "takeover-pub", true);
        let mut old = RawClient::connected(broker.addr, "taker", false);
        let old_addr = old.local_addr();
        old.subscribe(1, &[("tk/#", QoS::AtLeastOnce)]);

        let (mut new, ack) = RawClient::connect(broker.addr, "taker", false);
        assert_eq!((ack.reason, ack.session_present), (ReasonCode::Success, true), "{rt:?}");
        assert!(old.is_closed_within(Duration::from_secs(2)), "{rt:?}: the old link is closed");
        close_reason(old_addr, "session taken over");
        // The subscription came along.
        assert_eq!(payloads(&fence(&mut publisher, &mut new, "tk/fence")), Vec::<String>::new());
        publisher.publish("tk/x", QoS::AtLeastOnce, 2, b"to the new link", false);
        assert_eq!(&new.receive().payload[..], b"to the new link", "{rt:?}");

        // A clean takeover starts afresh.
        let new_addr = new.local_addr();
        let (mut clean, ack) = RawClient::connect(broker.addr, "taker", true);
        assert_eq!((ack.reason, ack.session_present), (ReasonCode::Success, false), "{rt:?}");
        assert!(new.is_closed_within(Duration::from_secs(2)), "{rt:?}");
        close_reason(new_addr, "session taken over");
        clean.subscribe(1, &[("other", QoS::AtMostOnce)]);
        publisher.publish("tk/y", QoS::AtLeastOnce, 3, b"nobody", false);
        assert_eq!(payloads(&fence(&mut publisher, &mut clean, "other")), Vec::<String>::new(), "{rt:?}");
        let stats = broker.stats();
        assert_eq!((stats.clients_connected, stats.clients_disconnected), (2, 0), "{rt:?}: {stats:?}");
    }
}

#[test]
fn will_is_published_on_abnormal_close_only() {
    on_both_runtimes(|rt| {
        let broker = start(rt);
        let mut watcher = RawClient::connected(broker.addr, "watcher", true);
        watcher.subscribe(1, &[("will/#", QoS::AtMostOnce)]);
        let with_will = |name: &str, keep_alive: u16| {
            let mut client = RawClient::open(broker.addr);
            client.send(&connect_with_will(name, keep_alive, &format!("will/{name}"), &format!("{name} gone")));
            assert_eq!(client.recv(), connack(ReasonCode::Success, false));
            client
        };

        // The socket dropped without DISCONNECT.
        drop(with_will("dropped", 60));
        let will = watcher.receive();
        assert_eq!((will.topic.as_str(), &will.payload[..]), ("will/dropped", &b"dropped gone"[..]), "{rt:?}");

        // A protocol error.
        let mut broken = with_will("broken", 60);
        broken.send_bytes(&[0x00, 0x00]);
        assert_eq!(watcher.receive().topic.as_str(), "will/broken", "{rt:?}");
        assert!(broken.is_closed_within(Duration::from_secs(2)), "{rt:?}");

        // DISCONNECT: no will, even when the socket closes right after.
        let polite = with_will("polite", 60);
        let polite_addr = polite.local_addr();
        polite.disconnect();
        close_reason(polite_addr, "client disconnected");
        let mut publisher = RawClient::connected(broker.addr, "will-pub", true);
        assert_eq!(payloads(&fence(&mut publisher, &mut watcher, "will/fence")), Vec::<String>::new(), "{rt:?}");

        // Keep-alive expiry.
        let _silent = with_will("silent", 1);
        let start = Instant::now();
        let will = watcher.receive();
        assert_eq!(will.topic.as_str(), "will/silent", "{rt:?}");
        assert!(start.elapsed() >= Duration::from_millis(1400), "{rt:?}: will after {:?}", start.elapsed());
    });
}

#[test]
fn retained_messages_are_stored_replaced_and_cleared() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut publisher = RawClient::connected(broker.addr, "ret-pub", true);
        // QoS 0 first: the PUBACK of the QoS 1 after it proves both reached the router.
        publisher.publish("r/b", QoS::AtMostOnce, 1, b"zero", true);
        publisher.publish("r/a", QoS::AtLeastOnce, 1, b"one", true);

        // A new subscription gets what is stored, RETAIN set, at min(message, granted) QoS.
        let mut first = RawClient::connected(broker.addr, "ret-1", true);
        first.subscribe(1, &[("r/a", QoS::ExactlyOnce), ("r/b", QoS::AtLeastOnce), ("r/fence", QoS::AtMostOnce)]);
        let mut got = fence(&mut publisher, &mut first, "r/fence");
        got.sort_by(|a, b| a.topic.as_str().cmp(b.topic.as_str()));
        let seen: Vec<_> = got.iter().map(|p| (p.topic.as_str(), &p.payload[..], p.retain, p.qos)).collect();
        assert_eq!(seen, [("r/a", &b"one"[..], true, QoS::AtLeastOnce), ("r/b", b"zero", true, QoS::AtMostOnce)]);

        // Replaced: an existing subscription gets it with RETAIN clear, a new one with it set.
        publisher.publish("r/a", QoS::AtLeastOnce, 2, b"two", true);
        let live = first.receive();
        assert_eq!((&live.payload[..], live.retain), (&b"two"[..], false), "{rt:?}");
        let mut second = RawClient::connected(broker.addr, "ret-2", true);
        second.subscribe(1, &[("r/a", QoS::AtLeastOnce), ("r/fence", QoS::AtMostOnce)]);
        let got = fence(&mut publisher, &mut second, "r/fence");
        let seen: Vec<_> = got.iter().map(|p| (&p.payload[..], p.retain)).collect();
        assert_eq!(seen, [(&b"two"[..], true)], "{rt:?}: only the latest is kept");
        assert!(until_fence(&mut first, "r/fence").is_empty());

        // Cleared by an empty retained message (which itself goes to current subscribers).
        publisher.publish("r/a", QoS::AtLeastOnce, 3, b"", true);
        let live = second.receive();
        assert_eq!((live.payload.len(), live.retain), (0, false), "{rt:?}");
        let mut third = RawClient::connected(broker.addr, "ret-3", true);
        third.subscribe(1, &[("r/#", QoS::AtLeastOnce)]);
        let got = fence(&mut publisher, &mut third, "r/fence");
        let topics: Vec<_> = got.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(topics, ["r/b"], "{rt:?}: r/a was cleared");
    }
}

// --- QoS ----------------------------------------------------------------------------------------

#[test]
fn qos_0_1_2_both_ways_delivered_at_the_lower_qos() {
    const LEVELS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut subscribers: Vec<_> = LEVELS
            .iter()
            .map(|granted| {
                let mut s = RawClient::connected(broker.addr, &format!("sub-{granted:?}"), true);
                assert_eq!(s.subscribe(1, &[("q/#", *granted)]), [ReasonCode::granted(*granted)]);
                (*granted, s)
            })
            .collect();
        let mut publisher = RawClient::connected(broker.addr, "q-pub", true);
        for (i, sent) in LEVELS.into_iter().enumerate() {
            let payload = format!("sent at {sent:?}");
            publisher.publish(&format!("q/{i}"), sent, 10 + i as u16, payload.as_bytes(), false);
            for (granted, subscriber) in &mut subscribers {
                let got = subscriber.expect_publish();
                assert_eq!(got.qos, sent.min(*granted), "{rt:?}: sent {sent:?}, granted {granted:?}");
                assert_eq!(got.packet_id.is_some(), got.qos != QoS::AtMostOnce);
                assert_eq!((&got.payload[..], got.dup, got.retain), (payload.as_bytes(), false, false));
                subscriber.ack(&got);
            }
        }
        assert!(wait_until(Duration::from_secs(2), || broker.stats().inflight == 0), "{rt:?}: all acknowledged");
    }
}

#[test]
fn qos_2_from_a_client_is_delivered_exactly_once() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut subscriber = RawClient::connected(broker.addr, "once-sub", true);
        subscriber.subscribe(1, &[("x/#", QoS::ExactlyOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "once-pub", true);
        let Packet::Publish(mut publish) = publish_packet("x/1", QoS::ExactlyOnce, 5, b"once", false) else {
            unreachable!()
        };
        publisher.send(&Packet::Publish(publish.clone()));
        assert_eq!(publisher.recv(), Packet::Pubrec(Ack::new(pid(5))), "{rt:?}");
        publish.dup = true;
        for _ in 0..2 {
            publisher.send(&Packet::Publish(publish.clone()));
            assert_eq!(publisher.recv(), Packet::Pubrec(Ack::new(pid(5))), "{rt:?}: a resend is acknowledged");
        }
        publisher.send(&Packet::Pubrel(Ack::new(pid(5))));
        assert_eq!(publisher.recv(), Packet::Pubcomp(Ack::new(pid(5))), "{rt:?}");
        assert_eq!(payloads(&fence(&mut publisher, &mut subscriber, "x/fence")), ["once"], "{rt:?}");
        // Released: the identifier is free for a new message.
        publisher.publish("x/1", QoS::ExactlyOnce, 5, b"again", false);
        assert_eq!(payloads(&fence(&mut publisher, &mut subscriber, "x/fence")), ["again"], "{rt:?}");

        // Across a reconnect of a persistent session: PUBREC lost, PUBLISH resent with DUP.
        let mut persistent = RawClient::connected(broker.addr, "once-persistent", false);
        let Packet::Publish(mut publish) = publish_packet("x/2", QoS::ExactlyOnce, 9, b"across", false) else {
            unreachable!()
        };
        persistent.send(&Packet::Publish(publish.clone()));
        assert_eq!(persistent.recv(), Packet::Pubrec(Ack::new(pid(9))), "{rt:?}");
        drop(persistent);
        let (mut persistent, ack) = RawClient::connect(broker.addr, "once-persistent", false);
        assert!(ack.session_present, "{rt:?}");
        publish.dup = true;
        persistent.send(&Packet::Publish(publish));
        assert_eq!(persistent.recv(), Packet::Pubrec(Ack::new(pid(9))), "{rt:?}");
        persistent.send(&Packet::Pubrel(Ack::new(pid(9))));
        assert_eq!(persistent.recv(), Packet::Pubcomp(Ack::new(pid(9))), "{rt:?}");
        assert_eq!(payloads(&fence(&mut publisher, &mut subscriber, "x/fence")), ["across"], "{rt:?}");
    }
}

#[test]
fn overlapping_subscriptions_get_one_copy_at_the_highest_qos() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut subscriber = RawClient::connected(broker.addr, "overlap", true);
        let granted =
            subscriber.subscribe(1, &[("o/#", QoS::AtMostOnce), ("o/+", QoS::ExactlyOnce), ("o/x", QoS::AtLeastOnce)]);
        assert_eq!(granted, [ReasonCode::Success, ReasonCode::GrantedQoS2, ReasonCode::GrantedQoS1]);
        let mut publisher = RawClient::connected(broker.addr, "overlap-pub", true);
        for (topic, sent, expected) in [
            ("o/x", QoS::ExactlyOnce, QoS::ExactlyOnce),
            ("o/x", QoS::AtLeastOnce, QoS::AtLeastOnce),
            ("o/y/z", QoS::ExactlyOnce, QoS::AtMostOnce),
        ] {
            publisher.publish(topic, sent, 7, b"m", false);
            let got = fence(&mut publisher, &mut subscriber, "o/fence");
            let seen: Vec<_> = got.iter().map(|p| (p.topic.as_str(), p.qos)).collect();
            assert_eq!(seen, [(topic, expected)], "{rt:?}: {topic} at {sent:?}");
        }
    }
}

#[test]
fn a_clean_session_is_dropped_at_disconnect() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut publisher = RawClient::connected(broker.addr, "cs-pub", true);
        let mut client = RawClient::connected(broker.addr, "cs", true);
        client.subscribe(1, &[("cs/#", QoS::AtLeastOnce)]);
        publisher.publish("cs/x", QoS::AtLeastOnce, 1, b"online", false);
        let got = client.expect_publish(); // left unacknowledged
        assert_eq!(&got.payload[..], b"online");
        let addr = client.local_addr();
        client.disconnect();
        close_reason(addr, "client disconnected");
        publisher.publish("cs/x", QoS::AtLeastOnce, 2, b"offline", false);
        let stats = broker.stats();
        assert_eq!((stats.clients_disconnected, stats.inflight, stats.stored), (0, 0, 0), "{rt:?}: {stats:?}");

        // Coming back (even asking to keep the session) finds nothing: no session, no
        // subscription, no queued or unacknowledged message.
        let (mut client, ack) = RawClient::connect(broker.addr, "cs", false);
        assert_eq!((ack.reason, ack.session_present), (ReasonCode::Success, false), "{rt:?}");
        client.subscribe(1, &[("cs/fence", QoS::AtMostOnce)]);
        publisher.publish("cs/y", QoS::AtLeastOnce, 3, b"no subscription", false);
        assert_eq!(payloads(&fence(&mut publisher, &mut client, "cs/fence")), Vec::<String>::new(), "{rt:?}");
    }
}

#[test]
fn a_persistent_session_keeps_subscriptions_and_queues_qos_1_and_2() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut publisher = RawClient::connected(broker.addr, "ps-pub", true);
        let (mut client, ack) = RawClient::connect(broker.addr, "ps", false);
        assert!(!ack.session_present, "{rt:?}");
        client.subscribe(1, &[("ps/#", QoS::ExactlyOnce)]);
        let addr = client.local_addr();
        client.disconnect();
        close_reason(addr, "client disconnected");
        assert_eq!(broker.stats().clients_disconnected, 1, "{rt:?}");

        let dropped_before = broker.stats().publish_dropped;
        publisher.publish("ps/0", QoS::AtMostOnce, 1, b"qos 0", false);
        publisher.publish("ps/1", QoS::AtLeastOnce, 2, b"qos 1", false);
        publisher.publish("ps/2", QoS::ExactlyOnce, 3, b"qos 2", false);
        let stats = broker.stats();
        assert_eq!((stats.stored, stats.publish_dropped - dropped_before), (2, 1), "{rt:?}: {stats:?}");

        let (mut client, ack) = RawClient::connect(broker.addr, "ps", false);
        assert_eq!((ack.reason, ack.session_present), (ReasonCode::Success, true), "{rt:?}");
        let got = fence(&mut publisher, &mut client, "ps/fence");
        let seen: Vec<_> = got.iter().map(|p| (&p.payload[..], p.qos)).collect();
        assert_eq!(seen, [(&b"qos 1"[..], QoS::AtLeastOnce), (b"qos 2", QoS::ExactlyOnce)], "{rt:?}");
        let stats = broker.stats();
        assert_eq!((stats.clients_disconnected, stats.stored), (0, 0), "{rt:?}");
    }
}

#[test]
fn unacknowledged_deliveries_are_resent_with_dup_on_reconnect() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut publisher = RawClient::connected(broker.addr, "un-pub", true);
        let mut client = RawClient::connected(broker.addr, "un", false);
        client.subscribe(1, &[("un/#", QoS::ExactlyOnce)]);
        publisher.publish("un/1", QoS::AtLeastOnce, 1, b"one", false);
        let one = client.expect_publish(); // no PUBACK
        publisher.publish("un/2", QoS::ExactlyOnce, 2, b"two", false);
        let two = client.expect_publish(); // no PUBREC
        publisher.publish("un/3", QoS::ExactlyOnce, 3, b"three", false);
        let three = client.expect_publish();
        let three_id = three.packet_id.unwrap();
        client.send(&Packet::Pubrec(Ack::new(three_id)));
        assert_eq!(client.recv(), Packet::Pubrel(Ack::new(three_id))); // no PUBCOMP
        let addr = client.local_addr();
        drop(client);
        close_reason(addr, "connection lost");
        assert_eq!(broker.stats().inflight, 3, "{rt:?}");

        let (mut client, ack) = RawClient::connect(broker.addr, "un", false);
        assert!(ack.session_present, "{rt:?}");
        let resent = [client.expect_publish(), client.expect_publish()];
        assert_eq!(client.recv(), Packet::Pubrel(Ack::new(three_id)), "{rt:?}: PUBREL resent");
        for (again, expected) in resent.iter().zip([&one, &two]) {
            assert!(again.dup, "{rt:?}: resent with DUP");
            assert_eq!(
                (again.packet_id, again.qos, &again.payload),
                (expected.packet_id, expected.qos, &expected.payload),
                "{rt:?}"
            );
        }
        client.send(&Packet::Pubcomp(Ack::new(three_id)));
        for again in &resent {
            client.ack(again);
        }
        assert!(fence(&mut publisher, &mut client, "un/fence").is_empty(), "{rt:?}");
        assert!(wait_until(Duration::from_secs(2), || broker.stats().inflight == 0), "{rt:?}");
    }
}

#[test]
fn max_queued_messages_bounds_an_offline_session() {
    for rt in Rt::ALL {
        let mut config = config();
        config.router.max_queued_messages = 5;
        let broker = TestBroker::start_with(rt, config);
        let mut publisher = RawClient::connected(broker.addr, "mq-pub", true);
        let mut client = RawClient::connected(broker.addr, "mq", false);
        client.subscribe(1, &[("mq/#", QoS::AtLeastOnce)]);
        let addr = client.local_addr();
        client.disconnect();
        close_reason(addr, "client disconnected");
        let before = broker.stats();
        for i in 0..8u16 {
            publisher.publish(&format!("mq/{i}"), QoS::AtLeastOnce, i + 1, format!("m{i}").as_bytes(), false);
        }
        let stats = broker.stats();
        assert_eq!(stats.stored, 5, "{rt:?}");
        assert_eq!(stats.publish_dropped - before.publish_dropped, 3, "{rt:?}");
        assert_eq!(stats.offline_overflow - before.offline_overflow, 3, "{rt:?}");

        let (mut client, ack) = RawClient::connect(broker.addr, "mq", false);
        assert!(ack.session_present, "{rt:?}");
        let got = fence(&mut publisher, &mut client, "mq/fence");
        assert_eq!(payloads(&got), ["m0", "m1", "m2", "m3", "m4"], "{rt:?}: the oldest are kept");
    }
}

// --- topics -------------------------------------------------------------------------------------

#[test]
fn dollar_topics_are_not_matched_by_leading_wildcards_and_sys_is_read_only() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut all = RawClient::connected(broker.addr, "all", true);
        all.subscribe(1, &[("#", QoS::AtMostOnce), ("+/x", QoS::AtMostOnce), ("+/+", QoS::AtMostOnce)]);
        let mut dollar = RawClient::connected(broker.addr, "dollar", true);
        dollar.subscribe(1, &[("$foo/#", QoS::AtMostOnce)]);
        let mut sys = RawClient::connected(broker.addr, "sys", true);
        sys.subscribe(1, &[("$SYS/#", QoS::AtMostOnce), ("sysfence", QoS::AtMostOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "dollar-pub", true);
        let dropped = broker.stats().publish_dropped;

        publisher.publish("$foo/x", QoS::AtLeastOnce, 1, b"dollar", false);
        // Acknowledged, not delivered.
        publisher.publish("$SYS/x", QoS::AtLeastOnce, 2, b"forged", false);
        publisher.publish("$SYS/y", QoS::ExactlyOnce, 3, b"forged", true);
        assert_eq!(broker.stats().publish_dropped - dropped, 2, "{rt:?}");

        for topic in ["$foo/fence", "sysfence", "plain/x"] {
            publisher.publish(topic, QoS::AtMostOnce, 1, b"fence", false);
        }
        assert_eq!(payloads(&until_fence(&mut dollar, "$foo/fence")), ["dollar"], "{rt:?}");
        assert!(until_fence(&mut sys, "sysfence").is_empty(), "{rt:?}: $SYS from a client was delivered");
        let got = until_fence(&mut all, "plain/x");
        let topics: Vec<_> = got.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(topics, ["sysfence"], "{rt:?}: `#`, `+/x` and `+/+` match no $-topic");
        // Nor was the forged retained message stored.
        let mut late = RawClient::connected(broker.addr, "late", true);
        late.subscribe(1, &[("$SYS/#", QoS::AtMostOnce), ("sysfence", QoS::AtMostOnce)]);
        assert!(fence(&mut publisher, &mut late, "sysfence").is_empty(), "{rt:?}");
    }
}

// --- limits -------------------------------------------------------------------------------------

#[test]
fn max_inflight_limits_unacknowledged_deliveries() {
    for rt in Rt::ALL {
        let mut config = config();
        config.router.max_inflight = 2;
        let broker = TestBroker::start_with(rt, config);
        let mut subscriber = RawClient::connected(broker.addr, "window", true);
        subscriber.subscribe(1, &[("w/#", QoS::AtLeastOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "window-pub", true);
        for i in 0..5u16 {
            publisher.publish(&format!("w/{i}"), QoS::AtLeastOnce, i + 1, format!("{i}").as_bytes(), false);
        }
        let mut outstanding = vec![subscriber.expect_publish(), subscriber.expect_publish()];
        assert!(
            wait_until(Duration::from_secs(2), || {
                let s = broker.stats();
                (s.inflight, s.stored) == (2, 3)
            }),
            "{rt:?}: {:?}",
            broker.stats()
        );
        assert_eq!(subscriber.recv_nothing_within(QUIET), None, "{rt:?}: a third before an ack");
        let mut received = Vec::new();
        for k in 0..5 {
            let done = outstanding.remove(0);
            subscriber.ack(&done);
            received.push(done);
            if k + 2 < 5 {
                // One acknowledged, one more comes, and no other.
                outstanding.push(subscriber.expect_publish());
                assert_eq!(subscriber.recv_nothing_within(Duration::from_millis(100)), None, "{rt:?}");
            }
        }
        assert_eq!(payloads(&received), ["0", "1", "2", "3", "4"], "{rt:?}");
    }
}

#[test]
fn max_connections_closes_the_extra_connection_at_once() {
    for rt in Rt::ALL {
        let mut config = config();
        config.listeners = vec![ListenerConfig { max_connections: Some(2), ..ListenerConfig::default() }];
        let broker = TestBroker::start_with(rt, config);
        let mut first = RawClient::connected(broker.addr, "first", true);
        let mut second = RawClient::connected(broker.addr, "second", true);
        let mut third = RawClient::open(broker.addr);
        let third_addr = third.local_addr();
        assert!(third.is_closed_within(Duration::from_secs(1)), "{rt:?}: the third is closed at once");
        let line = logs::wait_for(&[&format!("refused {third_addr}:"), "max-connections"]);
        assert!(line.is_some_and(|l| l.starts_with("WARN")), "{rt:?}");
        for client in [&mut first, &mut second] {
            client.send(&Packet::Pingreq);
            assert_eq!(client.recv(), Packet::Pingresp, "{rt:?}: the first two are served");
        }
        // A place freed is a place taken.
        first.disconnect();
        assert!(
            wait_until(Duration::from_secs(3), || {
                let mut client = RawClient::open(broker.addr);
                let mut bytes = Vec::new();
                encode(&connect_packet("again", true, 60), ProtocolLevel::V3_1_1, &mut bytes).unwrap();
                // The broker may have closed it already: a failed write shows as no CONNACK.
                let _ = client.stream.write_all(&bytes);
                matches!(client.recv_within(Duration::from_secs(1)), Ok(Packet::Connack(_)))
            }),
            "{rt:?}: no room after a client left"
        );
    }
}

#[test]
fn sys_topics_are_published_on_schedule() {
    on_both_runtimes(|rt| {
        let mut config = config();
        config.router.sys_interval = Some(Duration::from_secs(1));
        let broker = TestBroker::start_with(rt, config);
        let started = Instant::now();
        let mut subscriber = RawClient::connected(broker.addr, "sys-sub", true);
        subscriber.subscribe(1, &[("$SYS/broker/#", QoS::AtMostOnce)]);
        // Values by topic (the latest), and how many rounds began (with "version"); the
        // second is complete at its last topic.
        let mut seen = std::collections::HashMap::new();
        let mut rounds = 0;
        while rounds < 2 || !seen.contains_key("load/bytes/sent/15min") {
            let left = (started + Duration::from_millis(2500)).saturating_duration_since(Instant::now());
            let Ok(Packet::Publish(p)) = subscriber.recv_within(left.max(Duration::from_millis(1))) else {
                panic!("{rt:?}: after {:?}, {rounds} rounds: {seen:?}", started.elapsed());
            };
            let topic = p.topic.as_str().strip_prefix("$SYS/broker/").expect("under $SYS/broker/").to_owned();
            if topic == "version" {
                rounds += 1;
                if rounds == 2 {
                    seen.clear();
                }
            }
            seen.insert(topic, String::from_utf8_lossy(&p.payload).into_owned());
        }
        assert!(started.elapsed() >= Duration::from_millis(900), "{rt:?}: two rounds within a second");
        assert!(seen["version"].starts_with("moat-mqtt "), "{rt:?}: {seen:?}");
        assert!(seen["uptime"].ends_with(" seconds"), "{rt:?}: {seen:?}");
        assert_eq!(seen["clients/connected"], "1", "{rt:?}: {seen:?}");
        for topic in ["clients/total", "messages/received", "publish/messages/dropped", "load/bytes/sent/1min"] {
            assert!(seen.contains_key(topic), "{rt:?}: no {topic}: {seen:?}");
        }
        // What is published is retained: a new subscription gets it with RETAIN set.
        let mut late = RawClient::connected(broker.addr, "sys-late", true);
        late.subscribe(1, &[("$SYS/broker/version", QoS::AtMostOnce)]);
        let version = late.expect_publish();
        assert!(version.retain, "{rt:?}");
        assert_eq!(String::from_utf8_lossy(&version.payload), seen["version"], "{rt:?}");
        // Leading wildcards match no retained $SYS topic.
        let mut all = RawClient::connected(broker.addr, "sys-all", true);
        all.subscribe(1, &[("#", QoS::AtMostOnce), ("+/broker/#", QoS::AtMostOnce), ("+/+/version", QoS::AtMostOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "sys-pub", true);
        let got = fence(&mut publisher, &mut all, "fence");
        assert!(got.is_empty(), "{rt:?}: {got:?}");
    });
}

#[test]
fn a_slow_consumer_loses_qos_0_first_then_is_disconnected_without_stalling_others() {
    const N: usize = 3000;
    const WINDOW: usize = 50;
    for rt in Rt::ALL {
        let mut config = config();
        config.router.max_queued_messages = 100;
        let broker = TestBroker::start_with(rt, config);
        // Subscribes, then never reads its socket again.
        let mut slow = RawClient::connected(broker.addr, "slow", true);
        slow.subscribe(1, &[("fc/#", QoS::AtLeastOnce)]);
        let slow_addr = slow.local_addr();
        let mut fast = RawClient::connected(broker.addr, "fast", true);
        fast.subscribe(1, &[("fc/#", QoS::AtLeastOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "fc-pub", true);
        let progress = AtomicUsize::new(0);
        let started = Instant::now();
        let (received, slow_gone_at) = std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("test-fast-reader".into())
                .spawn_scoped(scope, || {
                    let mut order = Vec::with_capacity(N);
                    for _ in 0..N {
                        let publish = fast.receive();
                        order.push(u32::from_be_bytes(publish.payload[..4].try_into().unwrap()) as usize);
                        progress.fetch_add(1, Ordering::Release);
                    }
                    order
                })
                .expect("spawn");
            let mut slow_gone_at = None;
            let mut payload = vec![0u8; 1024];
            for i in 0..N {
                // Keep the fast reader within its queue: it must get everything.
                while progress.load(Ordering::Acquire) + WINDOW < i {
                    assert!(!reader.is_finished(), "{rt:?}: the fast reader stopped");
                    std::thread::sleep(Duration::from_micros(200));
                }
                payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
                let qos = if i % 2 == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                publisher.publish("fc/data", qos, (i % 60000 + 1) as u16, &payload, false);
                if slow_gone_at.is_none() && i % 100 == 0 && broker.stats().slow_consumers > 0 {
                    slow_gone_at = Some(i);
                }
            }
            (reader.join().expect("fast reader"), slow_gone_at)
        });
        let elapsed = started.elapsed();
        assert_eq!(received, (0..N).collect::<Vec<_>>(), "{rt:?}: the reading subscriber got every message");
        assert!(elapsed < Duration::from_secs(30), "{rt:?}: publishing took {elapsed:?}");
        let gone = slow_gone_at.unwrap_or_else(|| panic!("{rt:?}: slow consumer still there: {:?}", broker.stats()));
        assert!(gone < N / 2, "{rt:?}: the slow consumer went at message {gone} of {N}");
        let stats = broker.stats();
        assert_eq!(stats.slow_consumers, 1, "{rt:?}");
        assert!(stats.queue_evictions > 0, "{rt:?}: QoS 0 evicted first: {stats:?}");
        assert!(stats.publish_dropped > stats.queue_evictions, "{rt:?}: {stats:?}");
        assert!(slow.is_closed_within(Duration::from_secs(5)), "{rt:?}: the slow consumer's socket is closed");
        close_reason(slow_addr, "slow consumer");
    }
}

#[test]
fn a_qos_0_subscriber_that_stops_reading_loses_messages_but_stays_connected() {
    const N: usize = 3000;
    const WINDOW: usize = 50;
    for rt in Rt::ALL {
        let mut config = config();
        config.router.max_queued_messages = 100;
        let broker = TestBroker::start_with(rt, config);
        let mut stalled = RawClient::connected(broker.addr, "stalled", true);
        stalled.subscribe(1, &[("big/#", QoS::AtMostOnce)]);
        let mut fast = RawClient::connected(broker.addr, "big-fast", true);
        fast.subscribe(1, &[("big/#", QoS::AtLeastOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "big-pub", true);
        let progress = AtomicUsize::new(0);
        let started = Instant::now();
        let received = std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("test-big-reader".into())
                .spawn_scoped(scope, || {
                    let mut order = Vec::with_capacity(N);
                    for _ in 0..N {
                        let publish = fast.receive();
                        order.push(u32::from_be_bytes(publish.payload[..4].try_into().unwrap()) as usize);
                        progress.fetch_add(1, Ordering::Release);
                    }
                    order
                })
                .expect("spawn");
            let mut payload = vec![0u8; 8 * 1024];
            for i in 0..N {
                while progress.load(Ordering::Acquire) + WINDOW < i {
                    assert!(!reader.is_finished(), "{rt:?}: the fast reader stopped");
                    std::thread::sleep(Duration::from_micros(200));
                }
                payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
                let qos = if i % 2 == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                publisher.publish("big/data", qos, (i % 60000 + 1) as u16, &payload, false);
            }
            reader.join().expect("fast reader")
        });
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(30), "{rt:?}: publishing took {elapsed:?}");
        assert_eq!(received, (0..N).collect::<Vec<_>>(), "{rt:?}: the reading subscriber got every message");
        let stats = broker.stats();
        assert_eq!(stats.slow_consumers, 0, "{rt:?}");
        assert!(stats.publish_dropped > 0, "{rt:?}: {stats:?}");
        // It is still connected: once it reads again, it gets what was not dropped, in order,
        // and answers a PINGREQ; every message is either delivered or counted as dropped.
        stalled.send(&Packet::Pingreq);
        let (mut got, mut last, mut pong) = (0, None, false);
        while let Ok(packet) = stalled.recv_within(QUIET) {
            match packet {
                Packet::Publish(p) => {
                    let i = u32::from_be_bytes(p.payload[..4].try_into().unwrap());
                    assert!(last < Some(i), "{rt:?}: {i} after {last:?}");
                    (got, last) = (got + 1, Some(i));
                }
                Packet::Pingresp => pong = true,
                other => panic!("{rt:?}: {other:?}"),
            }
        }
        let stats = broker.stats();
        assert!(pong, "{rt:?}: no PINGRESP");
        assert_eq!((got + stats.publish_dropped, stats.stored), (N as u64, 0), "{rt:?}: got {got}; {stats:?}");
    }
}

#[test]
fn a_clean_connect_discards_a_stored_session_and_its_counters() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut publisher = RawClient::connected(broker.addr, "discard-pub", true);
        let mut client = RawClient::connected(broker.addr, "discard", false);
        client.subscribe(1, &[("d/#", QoS::AtLeastOnce)]);
        publisher.publish("d/0", QoS::AtLeastOnce, 1, b"in flight", false);
        let _unacknowledged = client.expect_publish();
        let addr = client.local_addr();
        client.disconnect();
        close_reason(addr, "client disconnected");
        for i in 1..4u16 {
            publisher.publish("d/x", QoS::AtLeastOnce, i + 1, b"queued", false);
        }
        let stats = broker.stats();
        assert_eq!((stats.inflight, stats.stored, stats.clients_disconnected), (1, 3, 1), "{rt:?}: {stats:?}");

        let (mut client, ack) = RawClient::connect(broker.addr, "discard", true);
        assert_eq!((ack.reason, ack.session_present), (ReasonCode::Success, false), "{rt:?}");
        client.subscribe(1, &[("d/fence", QoS::AtMostOnce)]);
        assert!(fence(&mut publisher, &mut client, "d/fence").is_empty(), "{rt:?}: the old session's messages");
        let stats = broker.stats();
        assert_eq!(
            (stats.inflight, stats.stored, stats.clients_disconnected),
            (0, 0, 0),
            "{rt:?}: the discarded session's messages are still counted: {stats:?}"
        );
    }
}

#[test]
fn a_will_cannot_publish_to_sys() {
    for rt in Rt::ALL {
        let mut config = config();
        config.router.sys_interval = Some(Duration::from_secs(3600));
        let broker = TestBroker::start_with(rt, config);
        let mut watcher = RawClient::connected(broker.addr, "sys-watch", true);
        watcher.subscribe(1, &[("$SYS/#", QoS::AtMostOnce), ("will-fence", QoS::AtMostOnce)]);
        // The retained $SYS values published at start.
        while watcher.recv_nothing_within(QUIET).is_some() {}
        let mut forger = RawClient::open(broker.addr);
        let Packet::Connect(mut connect) = connect_with_will("forger", 60, "$SYS/broker/version", "forged") else {
            unreachable!()
        };
        connect.will.as_mut().unwrap().retain = true;
        forger.send(&Packet::Connect(connect));
        assert_eq!(forger.recv(), connack(ReasonCode::Success, false));
        let addr = forger.local_addr();
        drop(forger);
        close_reason(addr, "connection lost");
        let mut publisher = RawClient::connected(broker.addr, "will-fence-pub", true);
        let got = fence(&mut publisher, &mut watcher, "will-fence");
        assert_eq!(payloads(&got), Vec::<String>::new(), "{rt:?}: a will was delivered on $SYS");
        let mut late = RawClient::connected(broker.addr, "sys-late", true);
        late.subscribe(1, &[("$SYS/broker/version", QoS::AtMostOnce)]);
        assert_ne!(&late.expect_publish().payload[..], b"forged", "{rt:?}: a will replaced a retained $SYS value");
    }
}

#[test]
fn dollar_sys_prefix_means_the_sys_level_only() {
    for rt in Rt::ALL {
        let broker = start(rt);
        let mut subscriber = RawClient::connected(broker.addr, "system-sub", true);
        subscriber.subscribe(1, &[("$SYSTEM/#", QoS::AtMostOnce), ("system-fence", QoS::AtMostOnce)]);
        let mut publisher = RawClient::connected(broker.addr, "system-pub", true);
        publisher.publish("$SYSTEM/x", QoS::AtLeastOnce, 1, b"not $SYS", false);
        let got = fence(&mut publisher, &mut subscriber, "system-fence");
        assert_eq!(payloads(&got), ["not $SYS"], "{rt:?}: `$SYSTEM/x` is not under `$SYS`");
    }
}
