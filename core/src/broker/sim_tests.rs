//! Deterministic tests of the broker core: links and router stepped by hand, time jumped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;

/// The link numbered `id` (the simulator numbers its links from 1).
fn lid(id: u64) -> LinkId {
    LinkId::new(std::num::NonZeroU64::new(id).expect("simulated links are numbered from 1"))
}
use crate::codec::{
    Ack, Connect, Decoder, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, Unsubscribe, Will, encode,
};
use crate::topic::{TopicFilter, TopicName};

/// The waker the simulator polls slow checks with: it notes that it was woken.
struct Woken {
    thread: std::thread::Thread,
    flag: AtomicBool,
}

impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// A broker core and its clients' links, pumped like the driver pumps them.
struct Sim {
    now: Instant,
    router: Router,
    links: BTreeMap<u64, Client>,
    next_link: u64,
    /// How many PUBLISHes a link takes per visit; 0 simulates a client that stopped reading.
    budget: BTreeMap<u64, usize>,
    /// Slow authentication checks not finished yet, polled at every pump.
    waiting: Vec<(LinkId, u64, crate::auth::AuthFuture)>,
    /// With persistence on: the store every pump round's changes go to, as one batch.
    store: Option<persist::MemoryStore>,
    /// Links the router let read again (back-pressure over), in order.
    resumed: Vec<u64>,
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
        Self {
            now,
            router: Router::new(now, config),
            links: BTreeMap::new(),
            next_link: 1,
            budget: BTreeMap::new(),
            waiting: Vec::new(),
            store: None,
            resumed: Vec::new(),
        }
    }

    /// A simulator whose router writes to a [`persist::MemoryStore`].
    fn persistent() -> Self {
        let mut sim = Self::with(RouterConfig { sys_interval: None, persistence: true, ..RouterConfig::default() });
        sim.store = Some(persist::MemoryStore::new());
        sim
    }

    /// The broker process dies (`kill -9`: links vanish without a word, nothing more is
    /// written) and a new one starts from the store.
    fn crash_and_restart(&mut self) {
        use persist::Store as _;
        let snapshot = self.store.as_mut().expect("a persistent sim").load().expect("the store loads");
        let config = RouterConfig { sys_interval: None, persistence: true, ..RouterConfig::default() };
        self.router = Router::new(self.now, config);
        self.router.restore(snapshot);
        self.links.clear();
        self.pump();
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
                    self.router.handle_event(now, lid(id), event, &mut out);
                }
                self.router.poll_deliveries(lid(id), budget, &mut out);
                for packet in &out {
                    moved = true;
                    client.conn.send(packet).unwrap();
                }
                let mut bytes = Vec::new();
                client.conn.poll_transmit(now, &mut bytes);
                client.inbox.extend_from_slice(&bytes);
            }
            while let Some((link, reason)) = self.router.poll_close() {
                let id = link.get();
                moved = true;
                if let Some(client) = self.links.get_mut(&id) {
                    client.conn.close(reason);
                }
            }
            while self.router.poll_wake().is_some() {
                moved = true;
            }
            while let Some(link) = self.router.poll_resume() {
                let id = link.get();
                self.resumed.push(id);
            }
            while let Some(event) = self.router.poll_event() {
                if let RouterEvent::AuthPending { link, id, plugin, credentials } = event {
                    moved = true;
                    let check = self.router.authenticator(plugin).unwrap().authenticate_later(credentials);
                    self.waiting.push((link, id, check));
                }
            }
            // As the driver does, outside the router: poll the slow checks, hand in answers.
            let woken = Arc::new(Woken { thread: std::thread::current(), flag: AtomicBool::new(false) });
            let waker = std::task::Waker::from(Arc::clone(&woken));
            let mut cx = std::task::Context::from_waker(&waker);
            let mut i = 0;
            while i < self.waiting.len() {
                if let std::task::Poll::Ready(decision) = self.waiting[i].2.as_mut().poll(&mut cx) {
                    let (link, id, _) = self.waiting.remove(i);
                    self.router.resolve_auth(now, link, id, decision);
                    moved = true;
                } else {
                    i += 1;
                }
            }
            drop(waker);
            // A check that kept the waker will wake it (a password checked on another thread):
            // wait for that, as the driver's task would, rather than give up.
            if !moved && Arc::strong_count(&woken) > 1 {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !woken.flag.load(Ordering::Acquire) && Instant::now() < deadline {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
                continue;
            }
            if let Some(store) = &mut self.store {
                let mut ops = Vec::new();
                self.router.take_store_ops(&mut ops);
                persist::Store::apply(store, &ops, true).unwrap();
            }
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

// --- authentication and authorisation -------------------------------------------------------

mod security {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::auth::{
        AclFile, AnonymousAuthenticator, AuthDecision, AuthFuture, Authenticator, BrokerHooks, ClientInfo, Credentials,
        FileAuthenticator, PasswordFile, Plugins, Refusal, TopicAcl,
    };

    /// alice / secret, written by mosquitto_passwd 2.0.11.
    const PASSWD: &str = "alice:$7$101$ii1USBgtQHuWHktC$2+QDASCECko17qQC/7WMhSSvQqI28zX7+1LoSfDS2qJXzeFN7Ibcmn/e5eC84reaVunT9PJyocnsGNGUG4720g==\n";

    fn sim(plugins: Plugins) -> Sim {
        Sim::with(RouterConfig { sys_interval: None, plugins, ..RouterConfig::default() })
    }

    fn login(id: &str, user: Option<&str>, password: Option<&'static str>) -> Connect {
        Connect {
            username: user.map(Into::into),
            password: password.map(|p| bytes::Bytes::from_static(p.as_bytes())),
            ..connect(id, true)
        }
    }

    fn file_and_anonymous(allow_anonymous: bool) -> Plugins {
        Plugins::new()
            .with_authenticator(Arc::new(AnonymousAuthenticator::new(allow_anonymous)))
            .with_authenticator(Arc::new(FileAuthenticator::new(PasswordFile::parse("p", PASSWD).unwrap())))
    }

    fn code(p: &Packet) -> ReasonCode {
        match p {
            Packet::Connack(c) => c.reason,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    #[test]
    fn connack_codes_for_passwords_and_anonymous() {
        let mut sim = sim(file_and_anonymous(false));
        let (_, ok) = sim.connect(login("a", Some("alice"), Some("secret")));
        assert_eq!(code(&ok), ReasonCode::Success);
        let (wrong, got) = sim.connect(login("b", Some("alice"), Some("wrong")));
        assert_eq!(code(&got), ReasonCode::BadUserNameOrPassword);
        assert!(matches!(sim.closed(wrong), Some(CloseReason::Refused(ReasonCode::BadUserNameOrPassword))));
        let (_, got) = sim.connect(login("c", Some("mallory"), Some("secret")));
        assert_eq!(code(&got), ReasonCode::BadUserNameOrPassword);
        let (_, got) = sim.connect(login("d", Some("alice"), None));
        assert_eq!(code(&got), ReasonCode::BadUserNameOrPassword);
        let (anon, got) = sim.connect(login("e", None, None));
        assert_eq!(code(&got), ReasonCode::NotAuthorized);
        assert!(matches!(sim.closed(anon), Some(CloseReason::Refused(ReasonCode::NotAuthorized))));
        assert_eq!(sim.router.stats().clients_connected, 1);

        let mut open = sim_with_anonymous();
        let (_, got) = open.connect(login("e", None, None));
        assert_eq!(code(&got), ReasonCode::Success);
    }

    fn sim_with_anonymous() -> Sim {
        sim(file_and_anonymous(true))
    }

    #[test]
    fn no_authenticator_with_an_opinion_refuses_and_none_at_all_accepts() {
        let mut only_file =
            sim(Plugins::new().with_authenticator(Arc::new(FileAuthenticator::new(PasswordFile::default()))));
        let (_, got) = only_file.connect(login("a", None, None));
        assert_eq!(code(&got), ReasonCode::NotAuthorized);
        let mut open = Sim::new();
        let (_, got) = open.connect(login("a", Some("anyone"), Some("anything")));
        assert_eq!(code(&got), ReasonCode::Success);
    }

    /// Answers `Pending` for every client; the answer comes when the test sets it.
    #[derive(Debug, Default)]
    struct Gate {
        answer: Arc<Mutex<Option<AuthDecision>>>,
        asked: Mutex<u32>,
    }

    impl Authenticator for Gate {
        fn name(&self) -> &str {
            "gate"
        }

        fn authenticate(&self, credentials: &Credentials) -> AuthDecision {
            *self.asked.lock().unwrap() += 1;
            if credentials.username.as_deref() == Some("slow") { AuthDecision::Pending } else { AuthDecision::Allow }
        }

        fn authenticate_later(&self, _credentials: Credentials) -> AuthFuture {
            let answer = Arc::clone(&self.answer);
            Box::pin(std::future::poll_fn(move |_| match *answer.lock().unwrap() {
                Some(decision) => std::task::Poll::Ready(decision),
                None => std::task::Poll::Pending,
            }))
        }
    }

    #[test]
    fn pending_authentication_holds_the_link_and_not_the_others() {
        let gate = Arc::new(Gate::default());
        let mut sim = sim(Plugins::new().with_authenticator(gate.clone()));
        let slow = sim.open();
        sim.send(slow, &Packet::Connect(login("slow-client", Some("slow"), Some("pw"))));
        // Pipelined behind the CONNECT: held until the answer.
        sim.send(slow, &subscribe(1, &[("t/#", QoS::AtLeastOnce)]));
        sim.send(slow, &publish("t/held", "from slow", QoS::AtLeastOnce, Some(5), false));
        assert!(sim.received(slow).is_empty(), "nothing before the answer");

        // Meanwhile other clients connect, subscribe and publish.
        let (other, ok) = sim.connect(login("other", Some("quick"), None));
        assert_eq!(code(&ok), ReasonCode::Success);
        sim.send(other, &subscribe(1, &[("t/#", QoS::AtMostOnce)]));
        sim.received(other);
        sim.send(other, &publish("t/x", "meanwhile", QoS::AtMostOnce, None, false));
        assert_eq!(sim.publishes(other).len(), 1);
        assert!(sim.received(slow).is_empty());

        *gate.answer.lock().unwrap() = Some(AuthDecision::Allow);
        sim.pump();
        let got = sim.received(slow);
        assert_eq!(code(&got[0]), ReasonCode::Success);
        assert!(matches!(&got[1], Packet::Suback(s) if s.reasons == [ReasonCode::GrantedQoS1]), "{got:?}");
        assert_eq!(got[2], Packet::Puback(Ack::new(pid(5))));
        // Its own publication reached its new subscription and the other client.
        assert_eq!(got.iter().filter(|p| matches!(p, Packet::Publish(_))).count(), 1, "{got:?}");
        assert_eq!(sim.publishes(other), [("t/held".into(), "from slow".into(), QoS::AtMostOnce, false, false)]);
        assert!(sim.closed(slow).is_none());
    }

    #[test]
    fn pending_authentication_denied_later_or_abandoned() {
        let gate = Arc::new(Gate::default());
        let mut sim = sim(Plugins::new().with_authenticator(gate.clone()));
        let slow = sim.open();
        sim.send(slow, &Packet::Connect(login("s", Some("slow"), Some("pw"))));
        sim.send(slow, &publish("t", "never", QoS::AtLeastOnce, Some(1), false));
        *gate.answer.lock().unwrap() = Some(AuthDecision::Deny(Refusal::BadCredentials));
        sim.pump();
        let got = sim.received(slow);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(code(&got[0]), ReasonCode::BadUserNameOrPassword);
        assert_eq!(sim.router.stats().publish_received, 0);

        // A client that leaves while it waits: the late answer is ignored.
        *gate.answer.lock().unwrap() = None;
        let gone = sim.open();
        sim.send(gone, &Packet::Connect(login("g", Some("slow"), Some("pw"))));
        sim.eof(gone);
        *gate.answer.lock().unwrap() = Some(AuthDecision::Allow);
        sim.pump();
        assert_eq!(sim.router.stats().clients_connected, 0);
        assert!(!sim.router.resolve_auth(sim.now, lid(gone), 2, AuthDecision::Allow));
    }

    #[test]
    fn too_many_packets_while_pending_close_the_link() {
        let gate = Arc::new(Gate::default());
        let mut sim = sim(Plugins::new().with_authenticator(gate));
        let slow = sim.open();
        sim.send(slow, &Packet::Connect(login("s", Some("slow"), Some("pw"))));
        for i in 0..300u16 {
            sim.send(slow, &publish("t", "x", QoS::AtLeastOnce, Some(i + 1), false));
        }
        assert!(matches!(sim.closed(slow), Some(CloseReason::TooManyPacketsBeforeConnack(_))));
    }

    fn acl_sim() -> Sim {
        let acl = TopicAcl::new([
            ("alice", vec!["a/+", "calendar/#"]),
            ("anonymous", vec!["public/#"]),
            ("admin", vec!["#", "$SYS/#"]),
        ])
        .unwrap();
        sim(Plugins::new().with_authorizer(Arc::new(acl)))
    }

    fn suback(sim: &mut Sim, link: u64, filters: &[&str]) -> Vec<ReasonCode> {
        let filters: Vec<_> = filters.iter().map(|f| (*f, QoS::AtLeastOnce)).collect();
        sim.send(link, &subscribe(9, &filters));
        match &sim.received(link)[..] {
            [Packet::Suback(s), ..] => s.reasons.clone(),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    #[test]
    fn subscribe_acl_plus_does_not_grant_hash() {
        let mut sim = acl_sim();
        let (alice, _) = sim.connect(login("al", Some("alice"), None));
        let reasons = suback(&mut sim, alice, &["a/+", "a/#", "a/b", "calendar/x/#", "#", "$SYS/#", "b"]);
        use ReasonCode::{GrantedQoS1 as Ok1, UnspecifiedError as No};
        assert_eq!(reasons, [Ok1, No, Ok1, Ok1, No, No, No]);
        assert_eq!(sim.router.stats().subscribe_denied, 4);
        // On the wire of MQTT 3.1.1 the refusal is 0x80.
        assert_eq!(ReasonCode::NotAuthorized.v3_suback_code(), 0x80);
        let (anon, _) = sim.connect(login("an", None, None));
        assert_eq!(suback(&mut sim, anon, &["public/#", "a/+"]), [Ok1, No]);
        let (admin, _) = sim.connect(login("ad", Some("admin"), None));
        assert_eq!(suback(&mut sim, admin, &["#", "$SYS/#", "$SYS/broker/uptime"]), [Ok1, Ok1, Ok1]);
    }

    #[test]
    fn refused_publish_is_acknowledged_dropped_and_counted() {
        let mut sim = acl_sim();
        let (admin, _) = sim.connect(login("ad", Some("admin"), None));
        suback(&mut sim, admin, &["#"]);
        let (alice, _) = sim.connect(login("al", Some("alice"), None));
        sim.send(alice, &publish("b/x", "no", QoS::AtLeastOnce, Some(1), false));
        sim.send(alice, &publish("a/x/y", "no", QoS::ExactlyOnce, Some(2), false));
        sim.send(alice, &publish("a/x", "yes", QoS::AtLeastOnce, Some(3), false));
        assert_eq!(
            sim.received(alice),
            [Packet::Puback(Ack::new(pid(1))), Packet::Pubrec(Ack::new(pid(2))), Packet::Puback(Ack::new(pid(3)))]
        );
        let got = sim.publishes(admin);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, "yes");
        assert_eq!(sim.router.stats().publish_denied, 2);
        assert!(sim.router.stats().publish_dropped >= 2);
    }

    #[test]
    fn acl_file_deny_line_refuses_that_subscription_and_its_deliveries() {
        let acl = AclFile::parse("acl", "topic deny test/nosubscribe\ntopic readwrite #\n").unwrap();
        let mut sim = sim(Plugins::new().with_authorizer(Arc::new(acl)));
        let (c, _) = sim.connect(login("c", None, None));
        use ReasonCode::{GrantedQoS1 as Ok1, UnspecifiedError as No};
        assert_eq!(suback(&mut sim, c, &["test/nosubscribe", "test/subscribe", "#"]), [No, Ok1, Ok1]);
        let (p, _) = sim.connect(login("p", None, None));
        sim.send(p, &publish("test/subscribe", "1", QoS::AtMostOnce, None, false));
        sim.send(p, &publish("test/nosubscribe", "2", QoS::AtMostOnce, None, false));
        let got: Vec<_> = sim.publishes(c).into_iter().map(|g| g.0).collect();
        assert_eq!(got, ["test/subscribe"]);
    }

    #[test]
    fn acl_file_patterns_use_user_name_and_client_id() {
        let acl = AclFile::parse("acl", "pattern readwrite users/%u/#\npattern write status/%c\n").unwrap();
        let mut sim = sim(Plugins::new().with_authorizer(Arc::new(acl)));
        let (bob, _) = sim.connect(login("dev-7", Some("bob"), None));
        use ReasonCode::{GrantedQoS1 as Ok1, UnspecifiedError as No};
        assert_eq!(suback(&mut sim, bob, &["users/bob/#", "users/+/x", "status/dev-7"]), [Ok1, No, No]);
        sim.send(bob, &publish("status/dev-7", "up", QoS::AtMostOnce, None, false));
        sim.send(bob, &publish("status/dev-8", "up", QoS::AtMostOnce, None, false));
        assert_eq!(sim.router.stats().publish_denied, 1);
    }

    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl BrokerHooks for Recorder {
        fn broker_started(&self) {
            self.0.lock().unwrap().push("started".into());
        }
        fn broker_stopped(&self) {
            self.0.lock().unwrap().push("stopped".into());
        }
        fn client_connected(&self, c: &ClientInfo<'_>) {
            self.0.lock().unwrap().push(format!("connected {} {:?}", c.client_id, c.username));
        }
        fn client_disconnected(&self, c: &ClientInfo<'_>, reason: &CloseReason) {
            self.0.lock().unwrap().push(format!("disconnected {}: {reason}", c.client_id));
        }
        fn subscribed(&self, c: &ClientInfo<'_>, filter: &TopicFilter, qos: QoS) {
            self.0.lock().unwrap().push(format!("subscribed {} {filter} {qos:?}", c.client_id));
        }
        fn unsubscribed(&self, c: &ClientInfo<'_>, filter: &TopicFilter) {
            self.0.lock().unwrap().push(format!("unsubscribed {} {filter}", c.client_id));
        }
        fn message_received(&self, c: &ClientInfo<'_>, m: &Message) {
            self.0.lock().unwrap().push(format!("message {} {}", c.client_id, m.topic));
        }
    }

    #[test]
    fn hooks_hear_every_event() {
        let recorder = Arc::new(Recorder::default());
        let mut sim = sim(Plugins::new().with_hooks(recorder.clone()));
        let (c, _) = sim.connect(login("c", Some("u"), None));
        sim.send(c, &subscribe(1, &[("t", QoS::AtMostOnce)]));
        sim.send(c, &publish("t", "x", QoS::AtMostOnce, None, false));
        sim.send(
            c,
            &Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                filters: vec![TopicFilter::new("t").unwrap()],
                properties: Properties::new(),
            }),
        );
        sim.send(c, &Packet::Disconnect(crate::codec::Disconnect::normal()));
        sim.router.stop();
        sim.router.stop();
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [
                "started",
                "connected c Some(\"u\")",
                "subscribed c t AtMostOnce",
                "message c t",
                "unsubscribed c t",
                "disconnected c: client disconnected",
                "stopped",
            ]
        );
    }
}

/// Persistence: what the router records, and a router restored from it.
mod persistence {
    use super::*;
    use crate::broker::persist::tables::Table;
    use crate::broker::persist::{Store, StoreError};

    fn store(sim: &Sim) -> &persist::MemoryStore {
        sim.store.as_ref().unwrap()
    }

    #[test]
    fn sessions_queues_and_retained_messages_survive_a_crash() {
        let mut sim = Sim::persistent();
        let (sub, _) = sim.connect(connect("sub", false));
        sim.send(sub, &subscribe(1, &[("q/#", QoS::AtLeastOnce)]));
        sim.received(sub);
        sim.eof(sub);
        let (publ, _) = sim.connect(connect("pub", true));
        for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
            sim.send(publ, &publish("q/a", body, QoS::AtLeastOnce, Some(i as u16 + 1), false));
        }
        sim.send(publ, &publish("q/a", "offline QoS 0 is not kept", QoS::AtMostOnce, None, false));
        sim.send(publ, &publish("r", "kept", QoS::AtMostOnce, None, true));
        sim.send(publ, &publish("gone", "set", QoS::AtMostOnce, None, true));
        sim.send(publ, &publish("gone", "", QoS::AtMostOnce, None, true));
        assert_eq!(store(&sim).len(Table::Messages), 3);
        assert_eq!(store(&sim).len(Table::Retained), 1);

        sim.crash_and_restart();
        assert_eq!(sim.router.stats().clients_disconnected, 1);
        assert_eq!(sim.router.stats().stored, 3);
        let (sub, ack) = sim.connect(connect("sub", false));
        assert_eq!(ack, connack(true, ReasonCode::Success));
        let got: Vec<String> = sim.publishes(sub).into_iter().map(|p| p.1).collect();
        assert_eq!(got, ["one", "two", "three"]);
        // The subscription came back too: a new message reaches it.
        let (publ, _) = sim.connect(connect("pub", true));
        sim.send(publ, &publish("q/b", "four", QoS::AtLeastOnce, Some(9), false));
        assert_eq!(sim.publishes(sub).len(), 1);
        let (other, _) = sim.connect(connect("other", true));
        sim.send(other, &subscribe(1, &[("#", QoS::AtMostOnce)]));
        assert_eq!(sim.publishes(other), [("r".into(), "kept".into(), QoS::AtMostOnce, true, false)]);
    }

    #[test]
    fn messages_in_flight_are_resent_with_their_id_and_phase() {
        let mut sim = Sim::persistent();
        let (sub, _) = sim.connect(connect("sub", false));
        sim.send(sub, &subscribe(1, &[("q", QoS::ExactlyOnce)]));
        sim.received(sub);
        let (publ, _) = sim.connect(connect("pub", true));
        sim.send(publ, &publish("q", "released", QoS::ExactlyOnce, Some(1), false));
        sim.send(publ, &publish("q", "unacknowledged", QoS::ExactlyOnce, Some(2), false));
        sim.send(publ, &Packet::Pubrel(Ack::new(pid(1))));
        sim.send(publ, &Packet::Pubrel(Ack::new(pid(2))));
        let ids: Vec<PacketId> = sim
            .received(sub)
            .into_iter()
            .filter_map(|p| if let Packet::Publish(p) = p { p.packet_id } else { None })
            .collect();
        assert_eq!(ids.len(), 2);
        // The first one gets to PUBREL; the second waits for PUBREC.
        sim.send(sub, &Packet::Pubrec(Ack::new(ids[0])));
        assert!(sim.received(sub).contains(&Packet::Pubrel(Ack::new(ids[0]))));

        sim.crash_and_restart();
        let (sub, _) = sim.connect(connect("sub", false));
        let got = sim.received(sub);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Packet::Pubrel(Ack::new(ids[0])));
        match &got[1] {
            Packet::Publish(p) => {
                assert_eq!((p.packet_id, p.dup, &p.payload[..]), (Some(ids[1]), true, &b"unacknowledged"[..]));
            }
            other => panic!("expected the PUBLISH again, got {other:?}"),
        }
        sim.send(sub, &Packet::Pubcomp(Ack::new(ids[0])));
        sim.send(sub, &Packet::Pubrec(Ack::new(ids[1])));
        sim.send(sub, &Packet::Pubcomp(Ack::new(ids[1])));
        assert_eq!(store(&sim).len(Table::Messages), 0);
        assert_eq!(store(&sim).len(Table::Inflight), 0);
    }

    #[test]
    fn incoming_qos2_ids_survive_so_a_resend_is_not_delivered_twice() {
        let mut sim = Sim::persistent();
        let (sub, _) = sim.connect(connect("sub", true));
        sim.send(sub, &subscribe(1, &[("q", QoS::ExactlyOnce)]));
        sim.received(sub);
        let (publ, _) = sim.connect(connect("pub", false));
        sim.send(publ, &publish("q", "once", QoS::ExactlyOnce, Some(7), false));
        assert_eq!(sim.publishes(sub).len(), 1);
        assert_eq!(store(&sim).len(Table::Qos2), 1);

        sim.crash_and_restart();
        let (sub, _) = sim.connect(connect("sub", true));
        sim.send(sub, &subscribe(1, &[("q", QoS::ExactlyOnce)]));
        sim.received(sub);
        let (publ, _) = sim.connect(connect("pub", false));
        let Packet::Publish(mut again) = publish("q", "once", QoS::ExactlyOnce, Some(7), false) else { unreachable!() };
        again.dup = true;
        sim.send(publ, &Packet::Publish(again));
        assert!(sim.received(publ).contains(&Packet::Pubrec(Ack::new(pid(7)))));
        assert!(sim.publishes(sub).is_empty(), "a resent QoS 2 message was delivered again");
        sim.send(publ, &Packet::Pubrel(Ack::new(pid(7))));
        assert_eq!(store(&sim).len(Table::Qos2), 0);
    }

    #[test]
    fn clean_sessions_are_never_written() {
        let mut sim = Sim::persistent();
        let (sub, _) = sim.connect(connect("sub", true));
        sim.send(sub, &subscribe(1, &[("q", QoS::ExactlyOnce)]));
        let (publ, _) = sim.connect(connect("pub", true));
        sim.send(publ, &publish("q", "x", QoS::ExactlyOnce, Some(1), false));
        sim.send(publ, &publish("q", "y", QoS::AtLeastOnce, Some(2), false));
        sim.eof(sub);
        sim.eof(publ);
        assert!(store(&sim).is_empty(), "{:?}", store(&sim));
        // A clean connection replacing a persistent session removes it from the store.
        let (old, _) = sim.connect(connect("p", false));
        sim.send(old, &subscribe(1, &[("q", QoS::AtLeastOnce)]));
        sim.eof(old);
        assert_eq!(store(&sim).len(Table::Sessions), 1);
        assert_eq!(store(&sim).len(Table::Subscriptions), 1);
        let (_, ack) = sim.connect(connect("p", true));
        assert_eq!(ack, connack(false, ReasonCode::Success));
        assert!(store(&sim).is_empty(), "{:?}", store(&sim));
    }

    #[test]
    fn a_message_queued_and_acknowledged_in_one_batch_costs_the_store_nothing() {
        let mut store = persist::MemoryStore::new();
        let message = std::sync::Arc::new(Message {
            topic: topic("q"),
            payload: "x".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::new(),
        });
        let client_id = bytestring::ByteString::from("c");
        let ops = [
            persist::StoreOp::Session { client_id: client_id.clone(), level: ProtocolLevel::V3_1_1, username: None },
            persist::StoreOp::Queue {
                client_id: client_id.clone(),
                seq: 5,
                qos: QoS::AtLeastOnce,
                retain: false,
                message,
            },
            persist::StoreOp::Inflight {
                client_id: client_id.clone(),
                seq: 5,
                packet_id: pid(1),
                state: persist::OutState::Puback,
            },
            persist::StoreOp::Unqueue { client_id, seq: 5 },
        ];
        store.apply(&ops, true).unwrap();
        assert_eq!((store.len(Table::Messages), store.len(Table::Inflight), store.len(Table::Sessions)), (0, 0, 1));
        // Split over two batches, the message is written, then removed.
        store.apply(&ops[..3], true).unwrap();
        assert_eq!(store.len(Table::Messages), 1);
        store.apply(&ops[3..], true).unwrap();
        assert_eq!(store.len(Table::Messages), 0);
    }

    #[test]
    fn totals_accumulate_across_restarts() {
        let mut sim = Sim::persistent();
        let (publ, _) = sim.connect(connect("pub", true));
        sim.send(publ, &publish("q", "x", QoS::AtMostOnce, None, false));
        sim.router.save_totals();
        sim.pump();
        sim.crash_and_restart();
        assert_eq!((sim.router.stats().publish_received, sim.router.stats().clients_total), (1, 1));
        let (publ, _) = sim.connect(connect("pub", true));
        sim.send(publ, &publish("q", "x", QoS::AtMostOnce, None, false));
        assert_eq!((sim.router.stats().publish_received, sim.router.stats().clients_total), (2, 2));
    }

    #[test]
    fn damaged_records_are_reported_not_panicked_on() {
        let mut sim = Sim::persistent();
        let (sub, _) = sim.connect(connect("sub", false));
        sim.send(sub, &subscribe(1, &[("q", QoS::AtLeastOnce)]));
        let good = sim.store.clone().unwrap();
        for (table, key, value) in [
            (Table::Sessions, &b"sub"[..], &b"\x10\x00"[..]),
            (Table::Subscriptions, b"sub\0q", b"garbage"),
            (
                Table::Subscriptions,
                b"nobody\0q",
                &persist::record::encode_subscription(&TopicFilter::new("q").unwrap(), SubscriptionOptions::default()),
            ),
            (Table::Messages, b"sub", b""),
            (Table::Inflight, b"sub\0\0\0\0\0\0\0\0\x01", b"\x00\x01\x01"),
            (Table::Qos2, b"sub\0\x00", b""),
            (Table::Totals, b"bytes_sent", b"1234"),
        ] {
            let mut store = good.clone();
            store.put_raw(table, key, value);
            match store.load() {
                Err(StoreError::Corrupt { reason, .. }) => assert!(!reason.is_empty()),
                other => panic!("{table:?} {key:?}: expected a corrupt store, got {other:?}"),
            }
        }
    }
}

/// Back-pressure: publishers wait while a reading subscriber's queue is long, and a subscriber
/// that stops reading is waited for once only.
mod back_pressure {
    use super::*;

    /// The pressure mark with the default queue limit.
    const HIGH: usize = super::super::router::PRESSURE_HIGH;

    /// A QoS 0 subscriber on `t` that has taken deliveries once, then takes `budget` per visit.
    fn subscriber(sim: &mut Sim, id: &str, budget: usize) -> u64 {
        let (sub, _) = sim.connect(connect(id, true));
        sim.send(sub, &subscribe(1, &[("t", QoS::AtMostOnce)]));
        sim.received(sub);
        sim.budget.insert(sub, budget);
        sub
    }

    fn publish_n(sim: &mut Sim, publ: u64, n: usize) {
        for _ in 0..n {
            sim.send(publ, &publish("t", "x", QoS::AtMostOnce, None, false));
        }
    }

    #[test]
    fn a_publisher_waits_for_a_long_queue_and_goes_on_when_it_drains() {
        let mut sim = Sim::new();
        let sub = subscriber(&mut sim, "sub", 0);
        let (publ, _) = sim.connect(connect("pub", true));
        publish_n(&mut sim, publ, HIGH - 1);
        assert!(!sim.router.is_paused(lid(publ)), "below the mark");
        publish_n(&mut sim, publ, 1);
        assert!(sim.router.is_paused(lid(publ)), "the mark reached: the publisher waits");
        assert!(!sim.router.is_paused(lid(sub)));
        // The subscriber reads again: its queue drains and the publisher is resumed.
        sim.budget.insert(sub, 10);
        sim.pump();
        assert!(sim.resumed.contains(&publ), "resumed once the queue drained");
        assert!(!sim.router.is_paused(lid(publ)));
        assert_eq!(sim.publishes(sub).len(), HIGH, "nothing lost");
    }

    #[test]
    fn a_stalled_subscriber_is_waited_for_once() {
        let mut sim = Sim::new();
        let sub = subscriber(&mut sim, "sub", 0);
        let other = subscriber(&mut sim, "other", usize::MAX);
        let (publ, _) = sim.connect(connect("pub", true));
        publish_n(&mut sim, publ, HIGH);
        assert!(sim.router.is_paused(lid(publ)));
        // The publisher's pause runs out: the subscriber is marked stalled, nobody waits for it.
        sim.router.pause_expired(lid(publ));
        assert!(!sim.router.is_paused(lid(publ)));
        publish_n(&mut sim, publ, 500);
        assert!(!sim.router.is_paused(lid(publ)), "a stalled subscriber holds nobody up");
        assert_eq!(sim.publishes(other).len(), HIGH + 500, "the other subscriber got everything");
        // Once it drains, it is waited for again.
        sim.budget.insert(sub, usize::MAX);
        sim.pump();
        sim.budget.insert(sub, 0);
        publish_n(&mut sim, publ, HIGH);
        assert!(sim.router.is_paused(lid(publ)), "waited for again after draining");
        // A subscriber that leaves releases its waiters.
        sim.eof(sub);
        assert!(!sim.router.is_paused(lid(publ)));
        assert!(sim.resumed.contains(&publ));
    }
}
