//! Drives the client core (`client::Connection`) with arbitrary broker bytes, well-formed broker
//! packets, commands, transport changes and time steps, and checks invariants after each.
//!
//! Input: two header bytes, then operations. Header `a`: bits 0-1 `max_inflight` - 1, bits 2-3
//! `max_pending`, bits 4-5 the level (2: 3.1, 3: 5.0, else 3.1.1), bit 6 clean session, bit 7 a
//! 64-byte `max_packet_size`. Header `b`: bits 0-1 keep-alive (0, 1, 5 or 10 s), bits 2-3 ping
//! delay (0, 1, 3 or 20 s), bit 4 no connect timeout. Each operation is a code byte (low
//! nibble: the kind) followed by the argument bytes that kind reads (missing bytes read as 0):
//!
//! | kind | operation | arguments |
//! |---|---|---|
//! | 0 | `start` on a fresh transport | |
//! | 1 | EOF | |
//! | 2 | a raw byte chunk from the broker | length (0..=32), the bytes |
//! | 3 | CONNACK | session present, reason, MQTT 5 properties |
//! | 4 | PUBLISH from the broker (unique payload) | QoS / DUP / retain / topic, packet id |
//! | 5 | resend one of the broker's last PUBLISHes with DUP | which |
//! | 6 | PUBACK/PUBREC/PUBREL/PUBCOMP/SUBACK/UNSUBACK, id from a small set or one in use | kind, id |
//! | 7 | PINGRESP | |
//! | 8 | command: publish (unique payload) | QoS / retain / topic |
//! | 9 | command: subscribe (unique filters) | count and QoS |
//! | 10 | command: unsubscribe (unique filters) | count |
//! | 11 | command: disconnect | |
//! | 12 | advance time by 0..=25.5 s | tenths of a second |
//! | 13 | jump time to the client's next deadline | |
//! | 14 | the broker answers what the client sent, as a broker would | how many answers |
//! | 15 | a packet a broker may not send, or DISCONNECT | which |
//!
//! Invariants, checked after every operation:
//! - nothing panics (debug assertions included) and `Connection::check_invariants` holds;
//!   `inflight_len() <= max_inflight`, `pending_len() <= max_pending`;
//! - everything the client transmits decodes, as a broker decodes it, into whole packets of
//!   the kinds a client may send: CONNECT first on each transport and only then, nothing after
//!   DISCONNECT, nothing at all while disconnected;
//! - no packet id is used by two operations in flight at once: a PUBLISH, SUBSCRIBE or
//!   UNSUBSCRIBE carrying an id held by a different operation (not yet completed by an event)
//!   is a failure; PUBREL only for a QoS 2 publish in flight; DUP only on a resend;
//! - events: `Connected` at most once per `start`, `Disconnected` exactly once per `start` and
//!   last, every request completed at most once, a QoS 0 publish completed at once;
//! - inbound QoS 2 is delivered once: no second `Message` for a packet id before the harness
//!   sent PUBREL for it (the model is set aside after raw chunks until a new session begins).
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use moat_mqtt_core::client::{ConnectOptions, Connection, ConnectionState, Event, RequestId};
use moat_mqtt_core::codec::{
    Ack, Connack, Decoder, Disconnect, Packet, PacketId, Properties, Property, ProtocolLevel, Publish, QoS, ReasonCode,
    Suback, SubscriptionOptions, Unsuback, encode,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

/// Operations beyond this many are ignored, to keep each run quick.
const MAX_OPS: usize = 256;

const TOPICS: [&str; 4] = ["t", "t/x", "u", "$SYS/x"];
const REASONS: [ReasonCode; 8] = [
    ReasonCode::Success,
    ReasonCode::Success,
    ReasonCode::Success,
    ReasonCode::Success,
    ReasonCode::NotAuthorized,
    ReasonCode::BadUserNameOrPassword,
    ReasonCode::ServerUnavailable,
    ReasonCode::UnsupportedProtocolVersion,
];

fn qos_of(bits: u8) -> QoS {
    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(bits % 3)]
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap_or(PacketId::MIN)
}

/// Set `CLIENT_TRACE=1` to print every operation, packet and event (to read a crash).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CLIENT_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// The operations' bytes, read front to back; past the end every byte is 0.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// What an operation holding a packet id is, as seen on the wire: unique per command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Fingerprint {
    /// A publish, by its payload.
    Publish(Bytes, QoS),
    /// A subscribe or unsubscribe, by its first filter.
    Filters(String),
}

struct World {
    now: Instant,
    client: Connection,
    level: ProtocolLevel,
    max_inflight: usize,
    max_pending: usize,
    // ---- the transport, as the broker's end sees it ----
    server: Decoder,
    inbox: BytesMut,
    got_connect: bool,
    got_disconnect: bool,
    /// Answers a broker would give to what the client sent, in order.
    answers: Vec<Packet>,
    /// The broker's last PUBLISHes, for resends.
    sent: Vec<Publish>,
    // ---- the model ----
    /// A `start` has not yet been matched by `Disconnected`.
    active: bool,
    connected_seen: bool,
    /// Packet ids held by operations in flight, as seen on the wire.
    open: HashMap<u16, Fingerprint>,
    /// Every fingerprint that went out, for DUP checks.
    ever_sent: std::collections::HashSet<Fingerprint>,
    /// Requests not yet completed, with what they are.
    requests: HashMap<RequestId, Fingerprint>,
    /// QoS 2 packet ids delivered and not released, as far as the harness knows.
    unreleased: HashMap<u16, Bytes>,
    /// Raw chunks make the inbound model unreliable until a new session begins.
    tainted: bool,
    counter: u32,
}

impl World {
    fn new(a: u8, b: u8) -> Self {
        let level = match (a >> 4) & 3 {
            2 => ProtocolLevel::V3_1,
            3 => ProtocolLevel::V5,
            _ => ProtocolLevel::V3_1_1,
        };
        let max_inflight = 1 + usize::from(a & 3);
        let max_pending = usize::from((a >> 2) & 3);
        let options = ConnectOptions {
            clean_session: a & 0x40 != 0,
            keep_alive: Duration::from_secs([0, 1, 5, 10][usize::from(b & 3)]),
            ping_delay: Duration::from_secs([0, 1, 3, 20][usize::from((b >> 2) & 3)]),
            connect_timeout: if b & 0x10 != 0 { Duration::ZERO } else { Duration::from_secs(10) },
            level,
            max_inflight,
            max_pending,
            max_packet_size: if a & 0x80 != 0 { 64 } else { 1 << 20 },
            ..ConnectOptions::new("fuzz")
        };
        Self {
            now: Instant::now(),
            client: Connection::new(options),
            level,
            max_inflight,
            max_pending,
            server: Decoder::new(level).with_max_packet_size(usize::MAX),
            inbox: BytesMut::new(),
            got_connect: false,
            got_disconnect: false,
            answers: Vec::new(),
            sent: Vec::new(),
            active: false,
            connected_seen: false,
            open: HashMap::new(),
            ever_sent: std::collections::HashSet::new(),
            requests: HashMap::new(),
            unreleased: HashMap::new(),
            tainted: false,
            counter: 0,
        }
    }

    fn unique(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    // ---- feeding the client ----

    fn feed_bytes(&mut self, bytes: &[u8]) {
        trace!("  <- {bytes:02x?}");
        self.client.handle_bytes(self.now, bytes);
    }

    fn feed(&mut self, packet: &Packet) {
        let mut bytes = Vec::new();
        if encode(packet, self.level, &mut bytes).is_err() {
            return;
        }
        trace!("op: broker sends {packet:?}");
        let connected = self.client.state() == ConnectionState::Connected;
        if let Packet::Pubrel(ack) = packet
            && connected
        {
            // A connected client answers every well-formed PUBREL and releases the id.
            self.unreleased.remove(&ack.packet_id.get());
        }
        self.feed_bytes(&bytes);
    }

    fn connack(&mut self, a: u8) {
        let mut properties = Properties::new();
        if self.level.is_v5() {
            if a & 0x10 != 0 {
                properties.push(Property::ServerKeepAlive(u16::from(a >> 6)));
            }
            if a & 0x20 != 0 {
                properties.push(Property::ReceiveMaximum(1));
            }
        }
        let reason = REASONS[usize::from((a >> 1) & 7)];
        self.feed(&Packet::Connack(Connack { session_present: a & 1 != 0, reason, properties }));
    }

    fn broker_publish(&mut self, a: u8, b: u8) {
        let qos = qos_of(a);
        let payload = Bytes::from(format!("in-{}", self.unique()));
        let publish = Publish {
            dup: a & 4 != 0 && qos != QoS::AtMostOnce,
            qos,
            retain: a & 8 != 0,
            topic: TopicName::new(TOPICS[usize::from(a >> 4) % TOPICS.len()]).expect("valid topic"),
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(u16::from(b % 4) + 1)),
            properties: Properties::new(),
            payload,
        };
        if self.sent.len() == 8 {
            self.sent.remove(0);
        }
        self.sent.push(publish.clone());
        self.feed(&Packet::Publish(publish));
    }

    fn resend(&mut self, a: u8) {
        if self.sent.is_empty() {
            return;
        }
        let mut p = self.sent[usize::from(a) % self.sent.len()].clone();
        p.dup = p.qos != QoS::AtMostOnce;
        self.feed(&Packet::Publish(p));
    }

    fn acknowledge(&mut self, a: u8, b: u8) {
        let open: Vec<u16> = {
            let mut ids: Vec<u16> = self.open.keys().copied().collect();
            ids.sort_unstable();
            ids
        };
        let id = if a & 8 != 0 && !open.is_empty() { open[usize::from(b) % open.len()] } else { u16::from(b % 4) + 1 };
        let mut ack = Ack::new(pid(id));
        if a & 0x80 != 0 && self.level.is_v5() {
            ack.reason = ReasonCode::NotAuthorized;
        }
        let count = usize::from((a >> 4) & 3) + 1;
        let packet = match a & 7 {
            0 => Packet::Puback(ack),
            1 => Packet::Pubrec(ack),
            2 => Packet::Pubrel(Ack::new(pid(id))),
            3 => Packet::Pubcomp(Ack::new(pid(id))),
            4 | 5 => Packet::Suback(Suback {
                packet_id: pid(id),
                reasons: vec![ReasonCode::GrantedQoS1; count],
                properties: Properties::new(),
            }),
            _ => Packet::Unsuback(Unsuback {
                packet_id: pid(id),
                reasons: if self.level.is_v5() { vec![ReasonCode::Success; count] } else { Vec::new() },
                properties: Properties::new(),
            }),
        };
        self.feed(&packet);
    }

    /// Feeds up to `n` of the answers a broker would give, one packet per chunk.
    fn answer(&mut self, n: usize) {
        let take = n.min(self.answers.len());
        let answers: Vec<Packet> = self.answers.drain(..take).collect();
        for packet in answers {
            self.feed(&packet);
            self.check();
        }
    }

    fn unexpected(&mut self, a: u8) {
        let packet = match a % 4 {
            0 => Packet::Pingreq,
            1 => {
                Packet::Disconnect(Disconnect { reason: ReasonCode::ServerShuttingDown, properties: Properties::new() })
            }
            2 => Packet::Unsubscribe(moat_mqtt_core::codec::Unsubscribe {
                packet_id: pid(1),
                filters: vec![TopicFilter::new("t").expect("valid filter")],
                properties: Properties::new(),
            }),
            _ => Packet::Connack(Connack {
                session_present: false,
                reason: ReasonCode::Success,
                properties: Properties::new(),
            }),
        };
        self.feed(&packet);
    }

    // ---- commands ----

    fn start(&mut self) {
        let was = self.client.state();
        match self.client.start(self.now) {
            Ok(()) => {
                assert_eq!(was, ConnectionState::Disconnected, "start succeeded while {was:?}");
                assert!(!self.active, "start succeeded before the last connection's Disconnected");
                self.active = true;
                self.connected_seen = false;
                self.server = Decoder::new(self.level).with_max_packet_size(usize::MAX);
                self.inbox.clear();
                self.got_connect = false;
                self.got_disconnect = false;
                self.answers.clear();
            }
            Err(e) => trace!("  start refused: {e}"),
        }
    }

    fn publish(&mut self, a: u8) {
        let qos = qos_of(a);
        let payload = Bytes::from(format!("out-{}", self.unique()));
        let topic = TopicName::new(TOPICS[usize::from(a >> 4) % TOPICS.len()]).expect("valid topic");
        let (inflight, pending) = (self.client.inflight_len(), self.client.pending_len());
        match self.client.publish(self.now, topic, payload.clone(), qos, a & 8 != 0) {
            Ok(id) => {
                trace!("op: publish {payload:?} at {qos:?} -> {id}");
                assert!(self.requests.insert(id, Fingerprint::Publish(payload, qos)).is_none(), "{id} reused");
            }
            Err(e) => {
                trace!("op: publish refused: {e}");
                assert_eq!((inflight, pending), (self.client.inflight_len(), self.client.pending_len()));
            }
        }
    }

    fn filters(&mut self, prefix: &str, n: usize) -> Vec<TopicFilter> {
        (0..n).map(|_| TopicFilter::new(format!("{prefix}/{}", self.unique())).expect("valid filter")).collect()
    }

    fn subscribe(&mut self, a: u8) {
        let filters = self.filters("s", usize::from(a & 1) + 1);
        let first = filters[0].as_str().to_owned();
        let with_options = filters.into_iter().map(|f| (f, SubscriptionOptions::qos(qos_of(a >> 1)))).collect();
        match self.client.subscribe(self.now, with_options) {
            Ok(id) => {
                trace!("op: subscribe {first} -> {id}");
                assert!(self.requests.insert(id, Fingerprint::Filters(first)).is_none(), "{id} reused");
            }
            Err(e) => trace!("op: subscribe refused: {e}"),
        }
    }

    fn unsubscribe(&mut self, a: u8) {
        let filters = self.filters("u", usize::from(a & 1) + 1);
        let first = filters[0].as_str().to_owned();
        match self.client.unsubscribe(self.now, filters) {
            Ok(id) => {
                trace!("op: unsubscribe {first} -> {id}");
                assert!(self.requests.insert(id, Fingerprint::Filters(first)).is_none(), "{id} reused");
            }
            Err(e) => trace!("op: unsubscribe refused: {e}"),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        trace!("op: time +{by:?}");
        self.client.handle_timeout(self.now);
    }

    // ---- checking ----

    /// Takes the client's output and events and checks them against the model.
    fn check(&mut self) {
        let was_disconnected = !self.active;
        let mut bytes = Vec::new();
        self.client.poll_transmit(self.now, &mut bytes);
        if was_disconnected {
            assert!(bytes.is_empty(), "output while disconnected: {bytes:02x?}");
        }
        self.inbox.extend_from_slice(&bytes);
        loop {
            match self.server.decode(&mut self.inbox) {
                Ok(Some(packet)) => self.sent_by_client(packet),
                Ok(None) => break,
                Err(e) => panic!("the client sent bytes a broker cannot decode: {e}"),
            }
        }
        assert!(self.inbox.is_empty(), "the client sent part of a packet");
        while let Some(event) = self.client.poll_event() {
            self.event(event);
        }
        if let Err(broken) = self.client.check_invariants() {
            panic!("client invariant broken: {broken}");
        }
        assert!(self.client.inflight_len() <= self.max_inflight);
        assert!(self.client.pending_len() <= self.max_pending);
        assert_eq!(self.active, self.client.state() != ConnectionState::Disconnected);
    }

    fn claim(&mut self, id: PacketId, fingerprint: Fingerprint, dup: bool) {
        if let Some(held) = self.open.get(&id.get()) {
            assert_eq!(held, &fingerprint, "packet id {id} reused while in flight");
        }
        if dup {
            assert!(self.ever_sent.contains(&fingerprint), "DUP on a first send: {fingerprint:?}");
        }
        self.ever_sent.insert(fingerprint.clone());
        self.open.insert(id.get(), fingerprint);
    }

    fn sent_by_client(&mut self, packet: Packet) {
        trace!("  -> {packet:?}");
        assert!(!self.got_disconnect, "{packet:?} after DISCONNECT");
        if !self.got_connect {
            assert!(matches!(packet, Packet::Connect(_)), "first packet {packet:?} is not CONNECT");
        }
        match packet {
            Packet::Connect(connect) => {
                assert!(!self.got_connect, "a second CONNECT on one transport");
                assert_eq!(connect.level, self.level);
                self.got_connect = true;
                let session_present = !connect.clean_start;
                self.answers.push(Packet::Connack(Connack {
                    session_present,
                    reason: ReasonCode::Success,
                    properties: Properties::new(),
                }));
            }
            Packet::Publish(p) => {
                if let Some(id) = p.packet_id {
                    self.claim(id, Fingerprint::Publish(p.payload.clone(), p.qos), p.dup);
                    self.answers.push(match p.qos {
                        QoS::ExactlyOnce => Packet::Pubrec(Ack::new(id)),
                        _ => Packet::Puback(Ack::new(id)),
                    });
                } else {
                    assert!(!p.dup, "DUP on QoS 0");
                }
            }
            Packet::Pubrel(ack) => {
                let held = self.open.get(&ack.packet_id.get());
                assert!(
                    matches!(held, Some(Fingerprint::Publish(_, QoS::ExactlyOnce))),
                    "PUBREL {} for {held:?}",
                    ack.packet_id
                );
                self.answers.push(Packet::Pubcomp(Ack::new(ack.packet_id)));
            }
            Packet::Subscribe(s) => {
                self.claim(s.packet_id, Fingerprint::Filters(s.filters[0].0.as_str().to_owned()), false);
                self.answers.push(Packet::Suback(Suback {
                    packet_id: s.packet_id,
                    reasons: s.filters.iter().map(|(_, o)| ReasonCode::granted(o.qos)).collect(),
                    properties: Properties::new(),
                }));
            }
            Packet::Unsubscribe(u) => {
                self.claim(u.packet_id, Fingerprint::Filters(u.filters[0].as_str().to_owned()), false);
                let reasons = if self.level.is_v5() { vec![ReasonCode::Success; u.filters.len()] } else { Vec::new() };
                self.answers.push(Packet::Unsuback(Unsuback {
                    packet_id: u.packet_id,
                    reasons,
                    properties: Properties::new(),
                }));
            }
            Packet::Pubrec(ack) => self.answers.push(Packet::Pubrel(Ack::new(ack.packet_id))),
            Packet::Puback(_) | Packet::Pubcomp(_) => {}
            Packet::Pingreq => self.answers.push(Packet::Pingresp),
            Packet::Disconnect(_) => self.got_disconnect = true,
            other => panic!("a client may not send {other:?}"),
        }
    }

    fn complete(&mut self, id: RequestId) {
        let Some(fingerprint) = self.requests.remove(&id) else {
            panic!("{id} completed twice or never issued");
        };
        self.open.retain(|_, held| *held != fingerprint);
    }

    fn event(&mut self, event: Event) {
        trace!("  event {event:?}");
        assert!(self.active, "{event:?} while disconnected");
        match event {
            Event::Connected { session_present } => {
                assert!(!self.connected_seen, "Connected twice on one transport");
                self.connected_seen = true;
                if !session_present {
                    self.unreleased.clear();
                    self.tainted = false;
                }
            }
            Event::Refused(_) => {}
            Event::Message(p) => {
                if p.qos == QoS::ExactlyOnce
                    && let Some(id) = p.packet_id
                    && !self.tainted
                {
                    if let Some(first) = self.unreleased.get(&id.get()) {
                        panic!("QoS 2 id {id} delivered again before PUBREL: first {first:?}, now {:?}", p.payload);
                    }
                    self.unreleased.insert(id.get(), p.payload.clone());
                }
            }
            Event::Published(id) | Event::PublishRejected { id, .. } => self.complete(id),
            Event::Subscribed { id, .. } | Event::Unsubscribed { id } => self.complete(id),
            Event::Disconnected(reason) => {
                assert!(self.active, "Disconnected twice");
                self.active = false;
                trace!("  disconnected: {reason}");
            }
            other => trace!("  other event {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (a, b) = (input.byte(), input.byte());
    let mut world = World::new(a, b);
    for _ in 0..MAX_OPS {
        if input.0.is_empty() {
            break;
        }
        let code = input.byte();
        match code & 0x0F {
            0 => {
                trace!("op: start");
                world.start();
            }
            1 => {
                trace!("op: EOF");
                world.client.handle_eof(world.now);
            }
            2 => {
                let len = usize::from(input.byte() % 33);
                let chunk = input.bytes(len).to_vec();
                trace!("op: raw chunk");
                world.tainted = true;
                world.feed_bytes(&chunk);
            }
            3 => {
                let a = input.byte();
                world.connack(a);
            }
            4 => {
                let (a, b) = (input.byte(), input.byte());
                world.broker_publish(a, b);
            }
            5 => {
                let a = input.byte();
                world.resend(a);
            }
            6 => {
                let (a, b) = (input.byte(), input.byte());
                world.acknowledge(a, b);
            }
            7 => world.feed(&Packet::Pingresp),
            8 => {
                let a = input.byte();
                world.publish(a);
            }
            9 => {
                let a = input.byte();
                world.subscribe(a);
            }
            10 => {
                let a = input.byte();
                world.unsubscribe(a);
            }
            11 => {
                trace!("op: disconnect");
                world.client.disconnect(world.now);
            }
            12 => {
                let tenths = input.byte();
                world.advance(Duration::from_millis(u64::from(tenths) * 100));
            }
            13 => {
                if let Some(deadline) = world.client.poll_timeout() {
                    let by = deadline.saturating_duration_since(world.now);
                    world.advance(by);
                }
            }
            14 => {
                let n = usize::from(input.byte() % 8) + 1;
                trace!("op: broker answers {n}");
                world.answer(n);
            }
            _ => {
                let a = input.byte();
                world.unexpected(a);
            }
        }
        world.check();
    }
});
