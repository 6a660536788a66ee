//! The client core against a scripted broker: exact packets in and out, time jumped by hand.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::{
    Ack, Connack, DecodeError, Decoder, Disconnect, Packet, PacketId, PacketType, Properties, Property, ProtocolLevel,
    Publish, QoS, ReasonCode, Suback, SubscriptionOptions, Unsuback, Will, encode,
};
use crate::topic::{TopicFilter, TopicName};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

fn connack(session_present: bool, reason: ReasonCode) -> Packet {
    Packet::Connack(Connack { session_present, reason, properties: Properties::new() })
}

fn incoming(t: &str, payload: &'static str, qos: QoS, id: Option<u16>, dup: bool) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic: topic(t),
        packet_id: id.map(pid),
        properties: Properties::new(),
        payload: Bytes::from_static(payload.as_bytes()),
    })
}

/// (packet id, DUP, payload) of a PUBLISH.
fn publish_summary(p: &Packet) -> (Option<u16>, bool, String) {
    match p {
        Packet::Publish(p) => (p.packet_id.map(PacketId::get), p.dup, String::from_utf8_lossy(&p.payload).into_owned()),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// One client and the broker's end of its transport, played by the test.
struct Script {
    now: Instant,
    client: Connection,
    level: ProtocolLevel,
    /// The broker's decoder of what the client sends.
    server: Decoder,
    inbox: BytesMut,
    /// Events that followed `Connected` in [`Script::connect`], not yet read by the test.
    unread: Vec<Event>,
}

impl Script {
    fn new(options: ConnectOptions) -> Self {
        let level = options.level;
        Self {
            now: Instant::now(),
            client: Connection::new(options),
            level,
            server: Decoder::new(level),
            inbox: BytesMut::new(),
            unread: Vec::new(),
        }
    }

    /// Starts a connection; events of the last one are dropped.
    fn start(&mut self) {
        self.events();
        self.client.start(self.now).unwrap();
        self.server = Decoder::new(self.level);
        self.inbox.clear();
    }

    /// Starts and accepts the connection; returns the CONNECT the client sent.
    fn connect(&mut self, session_present: bool) -> Packet {
        self.start();
        let sent = self.sent();
        assert!(matches!(sent[..], [Packet::Connect(_)]), "{sent:?}");
        self.feed(&connack(session_present, ReasonCode::Success));
        let mut events = self.events();
        assert_eq!(events.remove(0), Event::Connected { session_present });
        self.unread = events;
        sent.into_iter().next().unwrap()
    }

    /// Everything the client transmitted since the last call, decoded as a broker would.
    fn sent(&mut self) -> Vec<Packet> {
        let mut bytes = Vec::new();
        self.client.poll_transmit(self.now, &mut bytes);
        self.inbox.extend_from_slice(&bytes);
        let mut packets = Vec::new();
        while let Some(p) = self.server.decode(&mut self.inbox).unwrap() {
            packets.push(p);
        }
        assert!(self.inbox.is_empty(), "the client sent part of a packet");
        self.client.check_invariants().unwrap();
        packets
    }

    fn feed(&mut self, packet: &Packet) {
        let mut bytes = Vec::new();
        encode(packet, self.level, &mut bytes).unwrap();
        self.client.handle_bytes(self.now, &bytes);
    }

    fn events(&mut self) -> Vec<Event> {
        let mut events = std::mem::take(&mut self.unread);
        events.extend(std::iter::from_fn(|| self.client.poll_event()));
        events
    }

    /// Moves time on by `by` and lets the client act on its deadlines.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
    }

    fn publish(&mut self, payload: &'static str, qos: QoS) -> RequestId {
        self.client.publish(self.now, topic("t"), Bytes::from_static(payload.as_bytes()), qos, false).unwrap()
    }

    fn disconnected_with(&mut self) -> DisconnectReason {
        match self.events().pop() {
            Some(Event::Disconnected(reason)) => reason,
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
}

#[test]
fn connect_carries_will_credentials_clean_flag_and_keep_alive() {
    let will = Will {
        topic: topic("status/c1"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::new(),
    };
    let options = ConnectOptions {
        clean_session: false,
        keep_alive: secs(30),
        will: Some(will.clone()),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret")),
        ..ConnectOptions::new("c1")
    };
    let mut s = Script::new(options);
    assert_eq!(s.client.state(), ConnectionState::Disconnected);
    s.start();
    assert_eq!(s.client.state(), ConnectionState::Connecting);
    let Packet::Connect(connect) = &s.sent()[0] else { panic!("no CONNECT") };
    assert_eq!(&*connect.client_id, "c1");
    assert!(!connect.clean_start);
    assert_eq!(connect.keep_alive, 30);
    assert_eq!(connect.will, Some(will));
    assert_eq!(connect.username.as_deref(), Some("user"));
    assert_eq!(connect.password.as_deref(), Some(&b"secret"[..]));
    assert_eq!(connect.level, ProtocolLevel::V3_1_1);
    s.feed(&connack(false, ReasonCode::Success));
    assert_eq!(s.events(), [Event::Connected { session_present: false }]);
    assert!(s.client.is_connected());
}

#[test]
fn mqtt_3_1_and_5_connect_at_their_level() {
    for level in [ProtocolLevel::V3_1, ProtocolLevel::V5] {
        let mut s = Script::new(ConnectOptions { level, ..ConnectOptions::new("c") });
        let Packet::Connect(connect) = s.connect(false) else { panic!() };
        assert_eq!(connect.level, level);
        assert!(connect.properties.is_empty());
        let request = s.publish("x", QoS::AtLeastOnce);
        assert_eq!(publish_summary(&s.sent()[0]), (Some(1), false, "x".into()));
        s.feed(&Packet::Puback(Ack::new(pid(1))));
        assert_eq!(s.events(), [Event::Published(request)]);
    }
}

#[test]
fn refused_connack_ends_the_connection() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.start();
    s.sent();
    s.feed(&connack(false, ReasonCode::NotAuthorized));
    assert_eq!(
        s.events(),
        [
            Event::Refused(ReasonCode::NotAuthorized),
            Event::Disconnected(DisconnectReason::Refused(ReasonCode::NotAuthorized))
        ]
    );
    assert_eq!(s.client.state(), ConnectionState::Disconnected);
    assert_eq!(s.client.poll_timeout(), None);
    // A refused client can start again.
    s.connect(false);
}

#[test]
fn only_connack_may_come_first_and_it_must_come_in_time() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.start();
    s.feed(&Packet::Pingresp);
    assert_eq!(s.disconnected_with(), DisconnectReason::Protocol(ProtocolError::ExpectedConnack(PacketType::Pingresp)));

    let mut s = Script::new(ConnectOptions { connect_timeout: secs(5), ..ConnectOptions::new("c") });
    s.start();
    assert_eq!(s.client.poll_timeout(), Some(s.now + secs(5)));
    s.advance(Duration::from_millis(4999));
    assert!(s.events().is_empty());
    s.advance(Duration::from_millis(1));
    assert_eq!(s.events(), [Event::Disconnected(DisconnectReason::ConnectTimeout(secs(5)))]);
    // A late CONNACK on the dead transport is ignored.
    s.feed(&connack(false, ReasonCode::Success));
    assert!(s.events().is_empty());
}

#[test]
fn outbound_qos_0_1_2() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    let r0 = s.publish("zero", QoS::AtMostOnce);
    let r1 = s.publish("one", QoS::AtLeastOnce);
    let r2 = s.publish("two", QoS::ExactlyOnce);
    assert_eq!(s.events(), [Event::Published(r0)]);
    let sent: Vec<_> = s.sent().iter().map(publish_summary).collect();
    assert_eq!(sent, [(None, false, "zero".into()), (Some(1), false, "one".into()), (Some(2), false, "two".into())]);
    assert_eq!(s.client.inflight_len(), 2);
    s.feed(&Packet::Puback(Ack::new(pid(1))));
    s.feed(&Packet::Pubrec(Ack::new(pid(2))));
    assert_eq!(s.events(), [Event::Published(r1)]);
    assert_eq!(s.sent(), [Packet::Pubrel(Ack::new(pid(2)))]);
    s.feed(&Packet::Pubcomp(Ack::new(pid(2))));
    assert_eq!(s.events(), [Event::Published(r2)]);
    assert_eq!(s.client.inflight_len(), 0);
}

#[test]
fn inbound_qos1_and_qos2_exactly_once() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    s.feed(&incoming("a", "q0", QoS::AtMostOnce, None, false));
    s.feed(&incoming("a", "q1", QoS::AtLeastOnce, Some(5), false));
    assert_eq!(s.sent(), [Packet::Puback(Ack::new(pid(5)))]);
    s.feed(&incoming("a", "q2", QoS::ExactlyOnce, Some(6), false));
    s.feed(&incoming("a", "q2", QoS::ExactlyOnce, Some(6), true));
    assert_eq!(s.sent(), [Packet::Pubrec(Ack::new(pid(6))), Packet::Pubrec(Ack::new(pid(6)))]);
    let payloads: Vec<_> = s
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Message(p) => String::from_utf8_lossy(&p.payload).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(payloads, ["q0", "q1", "q2"], "the QoS 2 resend before PUBREL is not delivered again");
    s.feed(&Packet::Pubrel(Ack::new(pid(6))));
    assert_eq!(s.sent(), [Packet::Pubcomp(Ack::new(pid(6)))]);
    // Released: the id is free, and a new message with it is delivered.
    s.feed(&incoming("a", "next", QoS::ExactlyOnce, Some(6), false));
    assert!(matches!(&s.events()[..], [Event::Message(p)] if p.payload == "next"));
    // A PUBREL for an id never seen (e.g. after a PUBCOMP got lost) is still answered.
    s.feed(&Packet::Pubrel(Ack::new(pid(9))));
    assert_eq!(s.sent(), [Packet::Pubrec(Ack::new(pid(6))), Packet::Pubcomp(Ack::new(pid(9)))]);
    assert!(s.client.is_connected());
}

#[test]
fn keep_alive_pings_before_it_runs_out_and_judges_a_dead_broker() {
    let mut s = Script::new(ConnectOptions::new("c")); // keep-alive 10 s, ping delay 1 s
    let t0 = s.now;
    s.connect(false);
    assert_eq!(s.client.poll_timeout(), Some(t0 + secs(9)));
    s.advance(Duration::from_millis(8999));
    assert!(s.sent().is_empty());
    s.advance(Duration::from_millis(1));
    assert_eq!(s.sent(), [Packet::Pingreq]);
    // Waiting for the answer: the broker has the whole keep-alive to give it.
    assert_eq!(s.client.poll_timeout(), Some(t0 + secs(19)));
    s.advance(secs(1));
    s.feed(&Packet::Pingresp);
    // The next ping is due keep-alive minus ping delay after the last one.
    assert_eq!(s.client.poll_timeout(), Some(t0 + secs(18)));
    s.advance(secs(8));
    assert_eq!(s.sent(), [Packet::Pingreq]);
    s.advance(Duration::from_millis(9999));
    assert!(s.events().is_empty());
    s.advance(Duration::from_millis(1));
    assert_eq!(s.events(), [Event::Disconnected(DisconnectReason::KeepAliveTimeout(secs(10)))]);
    assert_eq!(s.client.poll_timeout(), None);
}

#[test]
fn any_packet_from_the_broker_answers_a_ping() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    s.advance(secs(9));
    assert_eq!(s.sent(), [Packet::Pingreq]);
    s.advance(secs(9));
    s.feed(&incoming("a", "alive", QoS::AtMostOnce, None, false));
    s.advance(secs(9));
    assert!(s.client.is_connected());
}

#[test]
fn no_ping_while_traffic_flows_and_none_without_keep_alive() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    for _ in 0..20 {
        s.advance(secs(5));
        s.publish("tick", QoS::AtMostOnce);
        assert!(s.client.poll_timeout().unwrap() > s.now + secs(8));
    }
    let pings = s.sent().into_iter().filter(|p| *p == Packet::Pingreq).count();
    assert_eq!(pings, 0);

    let mut s = Script::new(ConnectOptions { keep_alive: Duration::ZERO, ..ConnectOptions::new("c") });
    let Packet::Connect(connect) = s.connect(false) else { panic!() };
    assert_eq!(connect.keep_alive, 0);
    assert_eq!(s.client.poll_timeout(), None);
}

#[test]
fn inflight_window_and_pending_queue() {
    let mut s = Script::new(ConnectOptions { max_inflight: 2, max_pending: 2, ..ConnectOptions::new("c") });
    s.connect(false);
    let requests: Vec<_> = ["a", "b", "c", "d"].iter().map(|p| s.publish(p, QoS::AtLeastOnce)).collect();
    let too_many = s.client.publish(s.now, topic("t"), Bytes::new(), QoS::AtLeastOnce, false);
    assert_eq!(too_many, Err(UsageError::TooManyPending));
    assert_eq!((s.client.inflight_len(), s.client.pending_len()), (2, 2));
    let sent: Vec<_> = s.sent().iter().map(publish_summary).collect();
    assert_eq!(sent, [(Some(1), false, "a".into()), (Some(2), false, "b".into())]);
    // Acknowledging the second frees a slot for the first waiting one, in order.
    s.feed(&Packet::Puback(Ack::new(pid(2))));
    assert_eq!(s.events(), [Event::Published(requests[1])]);
    assert_eq!(publish_summary(&s.sent()[0]), (Some(3), false, "c".into()));
    s.feed(&Packet::Puback(Ack::new(pid(1))));
    assert_eq!(publish_summary(&s.sent()[0]), (Some(4), false, "d".into()));
    assert_eq!((s.client.inflight_len(), s.client.pending_len()), (2, 0));
    // QoS 0 does not wait for the window.
    s.publish("now", QoS::AtMostOnce);
    assert_eq!(publish_summary(&s.sent()[0]), (None, false, "now".into()));
}

#[test]
fn packet_ids_skip_those_in_flight_and_wrap_around() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    s.publish("held", QoS::AtLeastOnce); // id 1, never acknowledged
    let sub = s.client.subscribe(s.now, vec![(filter("x"), SubscriptionOptions::default())]).unwrap(); // id 2
    let sent = s.sent();
    assert!(matches!(&sent[1], Packet::Subscribe(p) if p.packet_id == pid(2)));
    for expected in (3..=u16::MAX).chain([3, 4]) {
        s.publish("cycle", QoS::AtLeastOnce);
        let Packet::Publish(p) = &s.sent()[0] else { panic!() };
        assert_eq!(p.packet_id, Some(pid(expected)));
        s.feed(&Packet::Puback(Ack::new(pid(expected))));
    }
    s.feed(&Packet::Suback(Suback {
        packet_id: pid(2),
        reasons: vec![ReasonCode::Success],
        properties: Properties::new(),
    }));
    let events = s.events();
    assert!(events.contains(&Event::Subscribed { id: sub, granted: vec![ReasonCode::Success] }));
    assert!(s.client.is_connected());
}

#[test]
fn publish_while_disconnected_waits_for_the_connection() {
    let mut s = Script::new(ConnectOptions::new("c"));
    let r1 = s.publish("early", QoS::AtLeastOnce);
    assert_eq!(
        s.client.publish(s.now, topic("t"), Bytes::new(), QoS::AtMostOnce, false),
        Err(UsageError::NotConnected)
    );
    let sub = s.client.subscribe(s.now, vec![(filter("x"), SubscriptionOptions::default())]);
    assert_eq!(sub, Err(UsageError::NotConnected));
    assert_eq!(s.client.unsubscribe(s.now, vec![filter("x")]), Err(UsageError::NotConnected));
    assert!(s.sent().is_empty());
    s.start();
    let r2 = s.publish("connecting", QoS::ExactlyOnce);
    assert!(matches!(s.sent()[..], [Packet::Connect(_)]), "nothing before CONNACK");
    s.feed(&connack(false, ReasonCode::Success));
    let sent: Vec<_> = s.sent().iter().map(publish_summary).collect();
    assert_eq!(sent, [(Some(1), false, "early".into()), (Some(2), false, "connecting".into())]);
    s.feed(&Packet::Puback(Ack::new(pid(1))));
    assert_eq!(s.events(), [Event::Connected { session_present: false }, Event::Published(r1)]);
    let _ = r2;
}

/// A session with a QoS 1 publish unacknowledged, a QoS 2 one before PUBREC, a QoS 2 one
/// after PUBREC, and a received QoS 2 message not yet released, whose transport then breaks.
fn broken_session() -> (Script, [RequestId; 3]) {
    let mut s = Script::new(ConnectOptions { clean_session: false, ..ConnectOptions::new("c") });
    s.connect(false);
    let requests =
        [s.publish("one", QoS::AtLeastOnce), s.publish("two", QoS::ExactlyOnce), s.publish("three", QoS::ExactlyOnce)];
    s.feed(&Packet::Pubrec(Ack::new(pid(3))));
    s.feed(&incoming("in", "inbound", QoS::ExactlyOnce, Some(7), false));
    assert_eq!(s.sent().len(), 5);
    s.events();
    s.client.handle_eof(s.now);
    s.client.handle_eof(s.now);
    assert_eq!(s.events(), [Event::Disconnected(DisconnectReason::ConnectionLost)]);
    assert_eq!(s.client.inflight_len(), 3);
    (s, requests)
}

#[test]
fn reconnect_with_session_resends_publish_with_dup_and_pubrel() {
    let (mut s, [r1, r2, r3]) = broken_session();
    s.connect(true);
    let sent = s.sent();
    assert_eq!(publish_summary(&sent[0]), (Some(1), true, "one".into()));
    assert_eq!(publish_summary(&sent[1]), (Some(2), true, "two".into()));
    assert_eq!(sent[2], Packet::Pubrel(Ack::new(pid(3))));
    assert_eq!(sent.len(), 3);
    // The broker resends the unreleased QoS 2 message: answered, not delivered again.
    s.feed(&incoming("in", "inbound", QoS::ExactlyOnce, Some(7), true));
    assert_eq!(s.sent(), [Packet::Pubrec(Ack::new(pid(7)))]);
    s.feed(&Packet::Puback(Ack::new(pid(1))));
    s.feed(&Packet::Pubrec(Ack::new(pid(2))));
    s.feed(&Packet::Pubcomp(Ack::new(pid(3))));
    s.feed(&Packet::Pubcomp(Ack::new(pid(2))));
    assert_eq!(s.events(), [Event::Published(r1), Event::Published(r3), Event::Published(r2)]);
    assert_eq!(s.client.inflight_len(), 0);
}

#[test]
fn reconnect_without_session_sends_again_as_new_and_completes_released_qos2() {
    let (mut s, [r1, r2, r3]) = broken_session();
    s.connect(false);
    assert_eq!(s.events(), [Event::Published(r3)], "the broker had received it before losing the session");
    let sent: Vec<_> = s.sent().iter().map(publish_summary).collect();
    assert_eq!(sent, [(Some(1), false, "one".into()), (Some(2), false, "two".into())]);
    // The unreleased inbound id was forgotten with the broker's session.
    s.feed(&incoming("in", "fresh", QoS::ExactlyOnce, Some(7), false));
    assert!(matches!(&s.events()[..], [Event::Message(p)] if p.payload == "fresh"));
    s.feed(&Packet::Puback(Ack::new(pid(1))));
    s.feed(&Packet::Pubrec(Ack::new(pid(2))));
    s.feed(&Packet::Pubcomp(Ack::new(pid(2))));
    assert_eq!(s.events(), [Event::Published(r1), Event::Published(r2)]);
}

#[test]
fn unanswered_subscribe_is_sent_again_after_reconnect() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    let request = s.client.subscribe(s.now, vec![(filter("a/#"), SubscriptionOptions::qos(QoS::AtLeastOnce))]).unwrap();
    let unsub = s.client.unsubscribe(s.now, vec![filter("b")]).unwrap();
    assert_eq!(s.sent().len(), 2);
    s.client.handle_eof(s.now);
    s.connect(false);
    let sent = s.sent();
    assert!(
        matches!(&sent[..], [Packet::Subscribe(a), Packet::Unsubscribe(b)] if a.packet_id == pid(1) && b.packet_id == pid(2))
    );
    s.feed(&Packet::Suback(Suback {
        packet_id: pid(1),
        reasons: vec![ReasonCode::GrantedQoS1],
        properties: Properties::new(),
    }));
    s.feed(&Packet::Unsuback(Unsuback { packet_id: pid(2), reasons: vec![], properties: Properties::new() }));
    assert_eq!(
        s.events(),
        [Event::Subscribed { id: request, granted: vec![ReasonCode::GrantedQoS1] }, Event::Unsubscribed { id: unsub }]
    );
}

#[test]
fn broker_protocol_errors_close_the_connection_once() {
    let suback = |id, n| {
        Packet::Suback(Suback {
            packet_id: pid(id),
            reasons: vec![ReasonCode::Success; n],
            properties: Properties::new(),
        })
    };
    let cases: Vec<(Vec<Packet>, ProtocolError)> = vec![
        (
            vec![Packet::Puback(Ack::new(pid(1)))],
            ProtocolError::UnknownPacketId { packet_type: PacketType::Puback, packet_id: 1 },
        ),
        (vec![suback(9, 1)], ProtocolError::UnknownPacketId { packet_type: PacketType::Suback, packet_id: 9 }),
        (
            vec![suback(2, 2)],
            ProtocolError::ReasonCountMismatch { packet_type: PacketType::Suback, expected: 1, got: 2 },
        ),
        (
            // PUBACK for a QoS 2 message.
            vec![Packet::Puback(Ack::new(pid(1)))],
            ProtocolError::UnknownPacketId { packet_type: PacketType::Puback, packet_id: 1 },
        ),
        (
            vec![Packet::Pubcomp(Ack::new(pid(1)))],
            ProtocolError::UnknownPacketId { packet_type: PacketType::Pubcomp, packet_id: 1 },
        ),
        (vec![connack(false, ReasonCode::Success)], ProtocolError::UnexpectedPacket(PacketType::Connack)),
        (vec![Packet::Pingreq], ProtocolError::UnexpectedPacket(PacketType::Pingreq)),
    ];
    for (i, (packets, error)) in cases.into_iter().enumerate() {
        let mut s = Script::new(ConnectOptions::new("c"));
        s.connect(false);
        if i >= 3 {
            s.publish("two", QoS::ExactlyOnce);
        } else if i == 2 {
            s.publish("one", QoS::AtLeastOnce);
            s.client.subscribe(s.now, vec![(filter("x"), SubscriptionOptions::default())]).unwrap();
        }
        for p in &packets {
            s.feed(p);
        }
        assert_eq!(s.disconnected_with(), DisconnectReason::Protocol(error), "case {i}");
        // Nothing more is read from this transport, and nothing more is reported.
        s.feed(&incoming("a", "late", QoS::AtMostOnce, None, false));
        s.client.handle_eof(s.now);
        assert!(s.events().is_empty(), "case {i}");
    }
}

#[test]
fn malformed_and_oversized_bytes_are_protocol_errors() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    s.client.handle_bytes(s.now, &[0x00, 0x00]);
    assert_eq!(
        s.disconnected_with(),
        DisconnectReason::Protocol(ProtocolError::Decode(DecodeError::ReservedPacketType))
    );

    let mut s = Script::new(ConnectOptions { max_packet_size: 64, ..ConnectOptions::new("c") });
    s.connect(false);
    // The fixed header of a 100-byte PUBLISH is enough to refuse it.
    s.client.handle_bytes(s.now, &[0x30, 98]);
    assert_eq!(
        s.disconnected_with(),
        DisconnectReason::Protocol(ProtocolError::Decode(DecodeError::PacketTooLarge { size: 100, max: 64 }))
    );

    // A PUBLISH with QoS 3 in its header.
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    s.client.handle_bytes(s.now, &[0x36, 0x05, 0, 1, b't', 0, 1]);
    assert!(matches!(s.disconnected_with(), DisconnectReason::Protocol(ProtocolError::Decode(_))));
}

#[test]
fn session_present_to_a_clean_session_is_a_protocol_error() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.start();
    s.feed(&connack(true, ReasonCode::Success));
    assert_eq!(s.disconnected_with(), DisconnectReason::Protocol(ProtocolError::SessionPresentOnCleanSession));
}

#[test]
fn disconnect_sends_disconnect_and_the_session_stays() {
    let mut s = Script::new(ConnectOptions { clean_session: false, ..ConnectOptions::new("c") });
    s.connect(false);
    assert_eq!(s.client.start(s.now), Err(UsageError::AlreadyStarted));
    s.publish("kept", QoS::AtLeastOnce);
    s.sent();
    s.client.disconnect(s.now);
    s.client.disconnect(s.now);
    assert_eq!(s.events(), [Event::Disconnected(DisconnectReason::Local)]);
    assert_eq!(s.sent(), [Packet::Disconnect(Disconnect::normal())]);
    assert_eq!(s.client.inflight_len(), 1);
    s.connect(true);
    assert_eq!(publish_summary(&s.sent()[0]), (Some(1), true, "kept".into()));
}

#[test]
fn invalid_commands_change_nothing() {
    let mut s = Script::new(ConnectOptions::new("c"));
    s.connect(false);
    assert_eq!(s.client.subscribe(s.now, vec![]), Err(UsageError::NoFilters));
    assert_eq!(s.client.unsubscribe(s.now, vec![]), Err(UsageError::NoFilters));
    let alias = s.client.publish(s.now, TopicName::alias_only(), Bytes::new(), QoS::AtLeastOnce, false);
    assert!(matches!(alias, Err(UsageError::InvalidPacket(_))));
    assert!(s.sent().is_empty());
    assert_eq!(s.client.inflight_len(), 0);
    // The next request still gets packet id 1.
    s.publish("first", QoS::AtLeastOnce);
    assert_eq!(publish_summary(&s.sent()[0]).0, Some(1));

    let mut bad = Script::new(ConnectOptions { keep_alive: secs(70_000), ..ConnectOptions::new("c") });
    assert_eq!(bad.client.start(bad.now), Err(UsageError::KeepAliveTooLong(secs(70_000))));
    assert_eq!(bad.client.state(), ConnectionState::Disconnected);
}

#[test]
fn mqtt5_rejections_disconnect_reasons_and_server_keep_alive() {
    let options = ConnectOptions { level: ProtocolLevel::V5, ..ConnectOptions::new("c") };
    let mut s = Script::new(options.clone());
    s.start();
    s.sent();
    let connack = Connack {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::new().with(Property::ServerKeepAlive(30)).with(Property::ReceiveMaximum(1)),
    };
    s.feed(&Packet::Connack(connack));
    s.events();
    assert_eq!(s.client.poll_timeout(), Some(s.now + secs(29)));
    let r1 = s.publish("no", QoS::AtLeastOnce);
    s.publish("waits", QoS::AtLeastOnce);
    assert_eq!((s.client.inflight_len(), s.client.pending_len()), (1, 1), "Receive Maximum 1");
    s.sent();
    let mut refused = Ack::new(pid(1));
    refused.reason = ReasonCode::NotAuthorized;
    s.feed(&Packet::Puback(refused));
    assert_eq!(s.events(), [Event::PublishRejected { id: r1, reason: ReasonCode::NotAuthorized }]);
    assert_eq!(publish_summary(&s.sent()[0]), (Some(2), false, "waits".into()));
    // A protocol error at MQTT 5 is reported to the broker in DISCONNECT.
    s.feed(&Packet::Pubcomp(Ack::new(pid(2))));
    let sent = s.sent();
    assert!(matches!(&sent[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::ProtocolError), "{sent:?}");
    s.events();

    // The broker's DISCONNECT ends the connection with its reason.
    let mut s = Script::new(options);
    s.connect(false);
    s.feed(&Packet::Disconnect(Disconnect { reason: ReasonCode::ServerShuttingDown, properties: Properties::new() }));
    assert_eq!(s.disconnected_with(), DisconnectReason::ByBroker(ReasonCode::ServerShuttingDown));
}
