//! Deterministic tests of the broker core: links and router stepped by hand, time jumped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;
use crate::codec::{
    Ack, Connect, Decoder, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, Unsubscribe, Will, encode,
};
use crate::topic::{TopicFilter, TopicName};

/// A broker core and its clients' links, pumped like the driver pumps them.
struct Sim {
    now: Instant,
    router: Router,
    links: BTreeMap<u64, Client>,
    next_link: u64,
    /// How many PUBLISHes a link takes per visit; 0 simulates a client that stopped reading.
    budget: BTreeMap<u64, usize>,
}

struct Client {
    conn: ServerConnection,
    decoder: Decoder,
    inbox: BytesMut,
    /// Packets decoded but not yet handed to the test (what followed a CONNACK).
    unread: Vec<Packet>,
    closed: Option<CloseReason>,
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

fn connect(id: &str, clean: bool) -> Connect {
    Connect {
        level: ProtocolLevel::V3_1_1,
        clean_start: clean,
        keep_alive: 60,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    }
}

fn publish(t: &str, payload: &'static str, qos: QoS, id: Option<u16>, retain: bool) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic: topic(t),
        packet_id: id.map(pid),
        properties: Properties::new(),
        payload: payload.into(),
    })
}

fn subscribe(id: u16, filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(id),
        filters: filters.iter().map(|(f, q)| (TopicFilter::new(*f).unwrap(), SubscriptionOptions::qos(*q))).collect(),
        properties: Properties::new(),
    })
}

/// (topic, payload, qos, retain, dup) of a PUBLISH.
fn summary(p: &Packet) -> Option<(String, String, QoS, bool, bool)> {
    match p {
        Packet::Publish(p) => {
            Some((p.topic.to_string(), String::from_utf8_lossy(&p.payload).into_owned(), p.qos, p.retain, p.dup))
        }
        _ => None,
    }
}

impl Sim {
    fn new() -> Self {
        Self::with(RouterConfig { sys_interval: None, ..RouterConfig::default() })
    }

    fn with(config: RouterConfig) -> Self {
        let now = Instant::now();
        Self { now, router: Router::new(now, config), links: BTreeMap::new(), next_link: 1, budget: BTreeMap::new() }
    }

    fn open(&mut self) -> u64 {
        let id = self.next_link;
        self.next_link += 1;
        let conn = ServerConnection::new(self.now, &LinkConfig::default());
        let client = Client {
            conn,
            decoder: Decoder::new(ProtocolLevel::V3_1_1),
            inbox: BytesMut::new(),
            unread: Vec::new(),
            closed: None,
        };
        self.links.insert(id, client);
        id
    }

    /// Opens a link and connects it; returns the link and the CONNACK.
    fn connect(&mut self, c: Connect) -> (u64, Packet) {
        let link = self.open();
        self.send(link, &Packet::Connect(c));
        let mut got = self.received(link);
        assert!(!got.is_empty(), "no CONNACK");
        let connack = got.remove(0);
        self.links.get_mut(&link).unwrap().unread = got;
        (link, connack)
    }

    fn send(&mut self, link: u64, packet: &Packet) {
        let mut bytes = Vec::new();
        encode(packet, ProtocolLevel::V3_1_1, &mut bytes).unwrap();
        self.send_bytes(link, &bytes);
    }

    fn send_bytes(&mut self, link: u64, bytes: &[u8]) {
        let now = self.now;
        self.links.get_mut(&link).unwrap().conn.handle_bytes(now, bytes);
        self.pump();
    }

    fn eof(&mut self, link: u64) {
        let now = self.now;
        self.links.get_mut(&link).unwrap().conn.handle_eof(now);
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for client in self.links.values_mut() {
            client.conn.handle_timeout(now);
        }
        self.router.handle_timeout(now, 1_700_000_000);
        self.pump();
    }

    /// Moves events and packets between links and router until nothing moves, as the driver does.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            let ids: Vec<u64> = self.links.keys().copied().collect();
            for id in ids {
                let budget = self.budget.get(&id).copied().unwrap_or(usize::MAX);
                let client = self.links.get_mut(&id).unwrap();
                let mut out = Vec::new();
                while let Some(event) = client.conn.poll_event() {
                    moved = true;
                    if let LinkEvent::Closed(reason) = &event {
                        client.closed = Some(reason.clone());
                    }
                    self.router.handle_event(now, LinkId(id), event, &mut out);
                }
                self.router.poll_deliveries(LinkId(id), budget, &mut out);
                for packet in &out {
                    moved = true;
                    client.conn.send(packet).unwrap();
                }
                let mut bytes = Vec::new();
                client.conn.poll_transmit(now, &mut bytes);
                client.inbox.extend_from_slice(&bytes);
            }
            while let Some((LinkId(id), reason)) = self.router.poll_close() {
                moved = true;
                if let Some(client) = self.links.get_mut(&id) {
                    client.conn.close(reason);
                }
            }
            while self.router.poll_wake().is_some() {
                moved = true;
            }
            while self.router.poll_event().is_some() {}
            if let Err(broken) = self.router.check_invariants() {
                panic!("router invariant broken: {broken}");
            }
            if !moved {
                break;
            }
        }
    }

    /// Everything the broker sent to `link` since the last call, decoded.
    fn received(&mut self, link: u64) -> Vec<Packet> {
        let client = self.links.get_mut(&link).unwrap();
        let mut packets = std::mem::take(&mut client.unread);
        while let Some(p) = client.decoder.decode(&mut client.inbox).unwrap() {
            packets.push(p);
        }
        packets
    }

    /// Reads what `link` received and acknowledges every QoS 1 PUBLISH; returns how many
    /// PUBLISH packets there were.
    fn acknowledge_all(&mut self, link: u64) -> usize {
        let got = self.received(link);
        for packet in &got {
            if let Packet::Publish(Publish { qos: QoS::AtLeastOnce, packet_id: Some(id), .. }) = packet {
                self.send(link, &Packet::Puback(Ack::new(*id)));
            }
        }
        got.iter().filter(|p| matches!(p, Packet::Publish(_))).count()
    }

    fn publishes(&mut self, link: u64) -> Vec<(String, String, QoS, bool, bool)> {
        self.received(link).iter().filter_map(summary).collect()
    }

    fn closed(&self, link: u64) -> Option<&CloseReason> {
        self.links[&link].closed.as_ref()
    }
}

fn connack(session_present: bool, reason: ReasonCode) -> Packet {
    Packet::Connack(crate::codec::Connack { session_present, reason, properties: Properties::new() })
}

#[test]
fn qos0_1_2_round_trip_with_delivered_qos_the_minimum() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("a/+", QoS::AtLeastOnce)]));
    assert!(matches!(&sim.received(sub)[..], [Packet::Suback(s)] if s.reasons == [ReasonCode::GrantedQoS1]));
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("a/x", "zero", QoS::AtMostOnce, None, false));
    sim.send(publ, &publish("a/x", "one", QoS::AtLeastOnce, Some(7), false));
    sim.send(publ, &publish("a/x", "two", QoS::ExactlyOnce, Some(8), false));
    assert_eq!(sim.received(publ), [Packet::Puback(Ack::new(pid(7))), Packet::Pubrec(Ack::new(pid(8)))]);
    sim.send(publ, &Packet::Pubrel(Ack::new(pid(8))));
    assert_eq!(sim.received(publ), [Packet::Pubcomp(Ack::new(pid(8)))]);
    let got = sim.publishes(sub);
    let qos: Vec<_> = got.iter().map(|g| (g.1.as_str(), g.2)).collect();
    assert_eq!(qos, [("zero", QoS::AtMostOnce), ("one", QoS::AtLeastOnce), ("two", QoS::AtLeastOnce)]);
}

#[test]
fn qos2_resend_before_release_is_delivered_once() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("t", QoS::ExactlyOnce)]));
    sim.received(sub);
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("t", "once", QoS::ExactlyOnce, Some(3), false));
    let mut again = publish("t", "once", QoS::ExactlyOnce, Some(3), false);
    if let Packet::Publish(p) = &mut again {
        p.dup = true;
    }
    sim.send(publ, &again);
    assert_eq!(sim.received(publ), [Packet::Pubrec(Ack::new(pid(3))), Packet::Pubrec(Ack::new(pid(3)))]);
    assert_eq!(sim.publishes(sub).len(), 1);
    // After PUBREL the id is free again: a new message with it is delivered.
    sim.send(publ, &Packet::Pubrel(Ack::new(pid(3))));
    sim.send(publ, &publish("t", "next", QoS::ExactlyOnce, Some(3), false));
    assert_eq!(sim.publishes(sub).len(), 1);
}

#[test]
fn overlapping_subscriptions_get_one_copy_at_the_highest_qos() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("a/#", QoS::AtMostOnce), ("a/+", QoS::ExactlyOnce), ("a/b", QoS::AtLeastOnce)]));
    sim.received(sub);
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("a/b", "m", QoS::ExactlyOnce, Some(1), false));
    let got = sim.publishes(sub);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].2, QoS::ExactlyOnce);
}

#[test]
fn retained_messages_are_stored_replaced_cleared_and_flagged() {
    let mut sim = Sim::new();
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("r/1", "first", QoS::AtMostOnce, None, true));
    sim.send(publ, &publish("r/1", "second", QoS::AtMostOnce, None, true));
    sim.send(publ, &publish("r/2", "gone", QoS::AtMostOnce, None, true));
    sim.send(publ, &publish("r/2", "", QoS::AtMostOnce, None, true));
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("r/#", QoS::AtMostOnce)]));
    let got = sim.publishes(sub);
    assert_eq!(got, [("r/1".into(), "second".into(), QoS::AtMostOnce, true, false)]);
    // To an existing subscription a retained publication goes without RETAIN.
    sim.send(publ, &publish("r/1", "third", QoS::AtMostOnce, None, true));
    assert_eq!(sim.publishes(sub), [("r/1".into(), "third".into(), QoS::AtMostOnce, false, false)]);
}

#[test]
fn will_on_abnormal_close_never_after_disconnect() {
    let mut sim = Sim::new();
    // The watcher has no keep-alive, so that it outlives the sleepy client's expiry.
    let (watch, _) = sim.connect(Connect { keep_alive: 0, ..connect("watch", true) });
    sim.send(watch, &subscribe(1, &[("will/#", QoS::AtMostOnce)]));
    sim.received(watch);
    let with_will = |id: &str| {
        let mut c = connect(id, true);
        c.will = Some(Will {
            topic: topic(&format!("will/{id}")),
            payload: "gone".into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        });
        c
    };
    let (polite, _) = sim.connect(with_will("polite"));
    sim.send(polite, &Packet::Disconnect(crate::codec::Disconnect::normal()));
    let (lost, _) = sim.connect(with_will("lost"));
    sim.eof(lost);
    let (rude, _) = sim.connect(with_will("rude"));
    sim.send_bytes(rude, &[0x00]);
    let (sleepy, _) = sim.connect(with_will("sleepy"));
    sim.advance(Duration::from_secs(89));
    let topics: Vec<_> = sim.publishes(watch).into_iter().map(|p| p.0).collect();
    assert_eq!(topics, ["will/lost", "will/rude"]);
    // keep-alive 60 s: silence for 90 s closes the link and publishes the will.
    sim.advance(Duration::from_secs(1));
    assert!(matches!(sim.closed(sleepy), Some(CloseReason::KeepAliveTimeout(_))));
    let topics: Vec<_> = sim.publishes(watch).into_iter().map(|p| p.0).collect();
    assert_eq!(topics, ["will/sleepy"]);
    assert_eq!(sim.closed(polite), Some(&CloseReason::ClientDisconnected));
}

#[test]
fn empty_client_id_is_assigned_or_refused() {
    let mut sim = Sim::new();
    let (_, ack) = sim.connect(connect("", true));
    assert_eq!(ack, connack(false, ReasonCode::Success));
    let (link, ack) = sim.connect(connect("", false));
    assert_eq!(ack, connack(false, ReasonCode::ClientIdentifierNotValid));
    assert!(matches!(sim.closed(link), Some(CloseReason::Refused(ReasonCode::ClientIdentifierNotValid))));
}

#[test]
fn takeover_closes_the_old_link() {
    let mut sim = Sim::new();
    let (old, _) = sim.connect(connect("same", false));
    let (new, ack) = sim.connect(connect("same", false));
    assert_eq!(ack, connack(true, ReasonCode::Success));
    assert_eq!(sim.closed(old), Some(&CloseReason::SessionTakenOver));
    assert!(sim.closed(new).is_none());
    // The old link's own close event does not disturb the new link's session.
    sim.eof(old);
    sim.send(new, &subscribe(1, &[("x", QoS::AtMostOnce)]));
    assert_eq!(sim.received(new).len(), 1);
}

#[test]
fn persistent_session_queues_offline_and_resends_unacknowledged() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("sub", false));
    sim.send(sub, &subscribe(1, &[("q", QoS::AtLeastOnce)]));
    sim.received(sub);
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("q", "inflight", QoS::AtLeastOnce, Some(1), false));
    assert_eq!(sim.publishes(sub).len(), 1);
    sim.eof(sub); // never acknowledged
    sim.send(publ, &publish("q", "queued", QoS::AtLeastOnce, Some(2), false));
    sim.send(publ, &publish("q", "qos0 dropped offline", QoS::AtMostOnce, None, false));
    let (sub, ack) = sim.connect(connect("sub", false));
    assert_eq!(ack, connack(true, ReasonCode::Success));
    let got = sim.publishes(sub);
    assert_eq!(
        got,
        [
            ("q".into(), "inflight".into(), QoS::AtLeastOnce, false, true),
            ("q".into(), "queued".into(), QoS::AtLeastOnce, false, false)
        ]
    );
}

#[test]
fn clean_session_drops_everything_at_disconnect() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("c", true));
    sim.send(sub, &subscribe(1, &[("q", QoS::AtLeastOnce)]));
    sim.eof(sub);
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("q", "lost", QoS::AtLeastOnce, Some(1), false));
    let (sub, ack) = sim.connect(connect("c", false));
    assert_eq!(ack, connack(false, ReasonCode::Success));
    assert!(sim.publishes(sub).is_empty());
    assert_eq!(sim.router.stats().subscriptions, 0);
}

#[test]
fn dollar_topics_skip_leading_wildcards_and_sys_is_read_only() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("#", QoS::AtMostOnce), ("$SYS/#", QoS::AtMostOnce)]));
    sim.received(sub);
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("$SYS/broker/fake", "x", QoS::AtLeastOnce, Some(1), false));
    assert_eq!(sim.received(publ), [Packet::Puback(Ack::new(pid(1)))]);
    sim.send(publ, &publish("$other/x", "y", QoS::AtMostOnce, None, false));
    assert!(sim.publishes(sub).is_empty());
}

#[test]
fn slow_consumer_loses_qos0_first_then_is_disconnected() {
    let mut sim =
        Sim::with(RouterConfig { max_queued_messages: 3, max_inflight: 1, sys_interval: None, ..Default::default() });
    let (slow, _) = sim.connect(connect("slow", true));
    sim.send(slow, &subscribe(1, &[("s/#", QoS::AtLeastOnce)]));
    let (fast, _) = sim.connect(connect("fast", true));
    sim.send(fast, &subscribe(1, &[("s/#", QoS::AtLeastOnce)]));
    sim.received(slow);
    sim.received(fast);
    sim.budget.insert(slow, 0); // stops reading
    let (publ, _) = sim.connect(connect("pub", true));
    let mut fast_got = 0;
    for _ in 0..3 {
        sim.send(publ, &publish("s/0", "zero", QoS::AtMostOnce, None, false));
        fast_got += sim.acknowledge_all(fast);
    }
    for i in 1..=3u16 {
        sim.send(publ, &publish("s/1", "one", QoS::AtLeastOnce, Some(i), false));
        fast_got += sim.acknowledge_all(fast);
    }
    // The three QoS 0 messages made room for the QoS 1 ones; the queue now holds 3 QoS 1.
    assert!(sim.closed(slow).is_none());
    assert_eq!(sim.router.stats().publish_dropped, 3);
    sim.send(publ, &publish("s/1", "one", QoS::AtLeastOnce, Some(4), false));
    fast_got += sim.acknowledge_all(fast);
    assert_eq!(sim.closed(slow), Some(&CloseReason::SlowConsumer));
    assert_eq!(sim.router.stats().slow_consumers, 1);
    // The fast subscriber got everything, and the publisher every acknowledgement.
    assert_eq!(fast_got, 7);
    assert_eq!(sim.received(publ).len(), 4);
}

#[test]
fn inflight_window_holds_back_until_acknowledged() {
    let mut sim = Sim::with(RouterConfig { max_inflight: 2, sys_interval: None, ..Default::default() });
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("w", QoS::AtLeastOnce)]));
    sim.received(sub);
    let (publ, _) = sim.connect(connect("pub", true));
    for i in 1..=5u16 {
        sim.send(publ, &publish("w", "m", QoS::AtLeastOnce, Some(i), false));
    }
    let first = sim.received(sub);
    assert_eq!(first.len(), 2);
    let Packet::Publish(p) = &first[0] else { panic!() };
    sim.send(sub, &Packet::Puback(Ack::new(p.packet_id.unwrap())));
    assert_eq!(sim.received(sub).len(), 1);
}

#[test]
fn unsubscribe_stops_delivery() {
    let mut sim = Sim::new();
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(sub, &subscribe(1, &[("u", QoS::AtMostOnce)]));
    sim.send(
        sub,
        &Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(2),
            filters: vec![TopicFilter::new("u").unwrap()],
            properties: Properties::new(),
        }),
    );
    assert_eq!(sim.received(sub).len(), 2);
    let (publ, _) = sim.connect(connect("pub", true));
    sim.send(publ, &publish("u", "x", QoS::AtMostOnce, None, false));
    assert!(sim.publishes(sub).is_empty());
}

#[test]
fn sys_topics_are_published_retained_on_schedule() {
    let mut sim = Sim::with(RouterConfig { sys_interval: Some(Duration::from_secs(10)), ..RouterConfig::default() });
    sim.advance(Duration::ZERO);
    let (sub, _) = sim.connect(connect("sub", true));
    sim.send(
        sub,
        &subscribe(1, &[("$SYS/broker/clients/connected", QoS::AtMostOnce), ("$SYS/broker/version", QoS::AtMostOnce)]),
    );
    let got = sim.publishes(sub);
    assert!(got.iter().any(|g| g.0 == "$SYS/broker/version" && g.3), "{got:?}");
    sim.advance(Duration::from_secs(10));
    let got = sim.publishes(sub);
    assert!(got.iter().any(|g| g.0 == "$SYS/broker/clients/connected" && g.1 == "1"), "{got:?}");
}

#[test]
fn shared_subscription_gives_each_message_to_one_member_in_turn() {
    let mut sim = Sim::new();
    let mut members = Vec::new();
    for id in ["m1", "m2"] {
        let (link, _) = sim.connect(connect(id, true));
        sim.send(link, &subscribe(1, &[("$share/g/jobs/+", QoS::AtLeastOnce)]));
        sim.received(link);
        members.push(link);
    }
    let (plain, _) = sim.connect(connect("plain", true));
    sim.send(plain, &subscribe(1, &[("jobs/#", QoS::AtMostOnce)]));
    sim.received(plain);
    let (publ, _) = sim.connect(connect("pub", true));
    for i in 1..=4u16 {
        sim.send(publ, &publish("jobs/a", "job", QoS::AtLeastOnce, Some(i), false));
    }
    let counts: Vec<usize> = members.iter().map(|&m| sim.publishes(m).len()).collect();
    assert_eq!(counts, [2, 2], "each message to exactly one member, in turn");
    // The ordinary subscription still gets every message, at its own QoS.
    assert_eq!(sim.publishes(plain).len(), 4);
    // An offline member is skipped while another is online.
    sim.eof(members[0]);
    for i in 5..=6u16 {
        sim.send(publ, &publish("jobs/b", "job", QoS::AtLeastOnce, Some(i), false));
    }
    assert_eq!(sim.publishes(members[1]).len(), 2);
}
