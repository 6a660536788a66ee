//! Drives the broker core (links and router) with arbitrary sequences of link opens and closes,
//! byte chunks, well-formed packets, acknowledgements and time steps, pumped the way the driver
//! (and `core/src/broker/sim_tests.rs`) pumps them, and checks invariants after every event.
//!
//! Input: one header byte (`max_inflight` 1..=4, `max_queued_messages` 1..=8, `$SYS` on or off,
//! persistence on or off),
//! then operations, each a code byte (low nibble: the kind; high nibble: which link) followed by
//! the argument bytes that kind reads (missing bytes read as 0):
//!
//! | kind | operation | arguments |
//! |---|---|---|
//! | 0 | open a link (at most [`MAX_LINKS`]) | flags: bit 0 a 64-byte max packet size |
//! | 1 | EOF: the client's side closes abruptly | |
//! | 2 | a raw byte chunk | length (0..=32), the bytes |
//! | 3 | CONNECT, maybe with PINGREQ, PUBLISH in the same chunk | id, clean, keep-alive, will; level |
//! | 4 | SUBSCRIBE | filter and QoS, packet id |
//! | 5 | UNSUBSCRIBE | filter, packet id |
//! | 6 | PUBLISH (unique payload) | topic / QoS / DUP / retain / empty / padded, packet id |
//! | 7 | resend one of the link's last PUBLISHes with DUP set | which |
//! | 8 | PUBACK / PUBREC / PUBCOMP a delivery, or all outstanding | kind and which |
//! | 9 | PUBREL (the link as publisher) | packet id |
//! | 10 | PINGREQ | |
//! | 11 | DISCONNECT | |
//! | 12 | advance time by 0..=200 s | seconds |
//! | 13 | reading budget: unlimited, 0 (stopped reading) or 1 PUBLISH per visit | which |
//! | 14 | open a link and CONNECT on it | as kind 3 |
//! | 15 | jump time to the next deadline of any link or the router | |
//!
//! Invariants, checked after every event handed to the router and after every operation:
//! - nothing panics, and the pump settles (no endless ping-pong between links and router);
//! - [`Router::check_invariants`] holds (queues and inflight windows within their bounds,
//!   link and session maps consistent, counters agree);
//! - bounded output: one link event yields at most one packet (CONNECT: CONNACK plus at most
//!   `max_inflight` resends), one `poll_deliveries` at most `max_queued_messages + max_inflight`
//!   packets, a link's pending output never exceeds what it was handed plus what it was fed,
//!   and everything a link transmits decodes into whole packets (the harness inbox ends empty);
//! - the first packet on a link is CONNACK, and `session_present` agrees with a model of the
//!   sessions (false for a clean session; true exactly when a session for the id is kept);
//! - exactly once: every PUBLISH and will gets a unique payload; a session (client id, from a
//!   CONNACK without `session_present` to the next one) never gets the same QoS 2 message twice
//!   except as a DUP resend with the same packet id before the harness sent PUBREC for it
//!   (retained copies sent at SUBSCRIBE, and payloads a client itself published twice, are
//!   exempt). The model follows the events the router actually sees, so raw chunks that happen
//!   to be packets are accounted for too;
//! - clients cannot publish into `$SYS`: no delivery on a `$SYS` topic carries a client payload;
//! - no silent loss: at the end every persistent session is resumed on a fresh link that
//!   acknowledges everything; the QoS 1/2 messages routed to it by a subscription (not retained
//!   copies) that never arrived must not outnumber the router's `publish_dropped` counter;
//! - with persistence on, the changes the router records are applied to a `MemoryStore` after
//!   every pump round; at the end the store reads back, a router restored from it (a restart)
//!   keeps its invariants, and every stored message is queued, in flight or counted as over
//!   the limit.
//!
//! To read a crash: `BROKER_TRACE=1 fuzz/target/<triple>/release/broker <file>` prints every
//! operation, event and packet. `BROKER_RELAX=connack-first` switches that check off, to fuzz
//! on past a known bug (see [`relaxed`]).
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use moat_mqtt_core::broker::persist::{MemoryStore, Store as _};
use moat_mqtt_core::broker::{CloseReason, LinkConfig, LinkEvent, LinkId, Router, RouterConfig, ServerConnection};
use moat_mqtt_core::codec::{
    Ack, Connect, Decoder, Disconnect, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, ReasonCode,
    Subscribe, SubscriptionOptions, Unsubscribe, Will, encode, encoded_len,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

/// Operations beyond this many are ignored, to keep each run quick.
const MAX_OPS: usize = 256;
/// Links the operations may open (the final drain opens more).
const MAX_LINKS: usize = 8;
/// Pump rounds after which links and router are taken to be ping-ponging forever.
const MAX_PUMP_ROUNDS: usize = 1000;

const CLIENTS: [&str; 4] = ["a", "b", "c", ""];
const FILTERS: [&str; 5] = ["t", "t/+", "#", "$SYS/#", "t/#"];
const TOPICS: [&str; 4] = ["t", "t/x", "u", "$SYS/x"];
const WILL_TOPICS: [&str; 4] = ["t", "t/x", "w", "$SYS/w"];
/// Payloads the harness makes start with this byte (never valid UTF-8 at the start), so they
/// cannot be mistaken for the router's `$SYS` values.
const MARK: u8 = 0xF0;

fn qos_of(bits: u8) -> QoS {
    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(bits % 3)]
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n.max(1)).unwrap_or(PacketId::MIN)
}

/// Set `BROKER_TRACE=1` to print every operation, event and packet (to read a crash).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BROKER_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// Checks switched off by `BROKER_RELAX` (comma-separated names), to keep fuzzing past a known
/// core bug until it is fixed: `connack-first` (the first packet on a link is CONNACK).
fn relaxed(name: &str) -> bool {
    static RELAX: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    RELAX
        .get_or_init(|| {
            std::env::var("BROKER_RELAX").unwrap_or_default().split(',').map(|s| s.trim().to_owned()).collect()
        })
        .iter()
        .any(|r| r == name)
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

/// Which acknowledgement a delivery is waiting for from the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckKind {
    Puback,
    Pubrec,
    Pubcomp,
}

/// One QoS 2 delivery seen by a session.
#[derive(Debug, Clone, Copy)]
struct Seen {
    packet_id: u16,
    /// The harness sent PUBREC for it on a link the router listened to: no more PUBLISH.
    pubrec_sent: bool,
}

/// The harness' model of one session: one client id from a CONNACK without `session_present`
/// until the session ends.
#[derive(Debug, Default)]
struct SessionModel {
    client_id: String,
    clean: bool,
    alive: bool,
    /// The link the router maps to it.
    link: Option<usize>,
    will: Option<Will>,
    subscriptions: Vec<(TopicFilter, QoS)>,
    /// Incoming QoS 2 packet ids not yet released (MQTT-4.3.3-2).
    qos2_received: BTreeSet<u16>,
    /// QoS 2 deliveries by payload.
    seen_qos2: HashMap<Bytes, Seen>,
    /// The payload of the latest QoS 2 delivery with each packet id.
    qos2_by_id: HashMap<u16, Bytes>,
    /// QoS 1/2 messages routed to it while persistent.
    expected: BTreeSet<Bytes>,
    delivered: BTreeSet<Bytes>,
}

struct Link {
    id: LinkId,
    conn: ServerConnection,
    /// The client's decoder of what the broker sends.
    decoder: Decoder,
    inbox: BytesMut,
    /// PUBLISH packets taken per visit.
    budget: usize,
    /// The session model it was accepted into.
    session: Option<usize>,
    /// Whether the router maps this link to its session now.
    mapped: bool,
    got_connack: bool,
    /// Bytes fed and bytes of packets handed to `send` since the last transmit that sent something.
    fed: usize,
    handed: usize,
    /// Deliveries waiting for an acknowledgement the ops may send.
    outstanding: Vec<(AckKind, PacketId)>,
    /// The last PUBLISH packets the harness sent on it, for resends.
    sent: Vec<Publish>,
    /// Acknowledge everything automatically (the final drain's links).
    auto_ack: bool,
    auto: Vec<Packet>,
}

struct World {
    start: Instant,
    now: Instant,
    router: Router,
    max_inflight: usize,
    max_queued: usize,
    links: Vec<Link>,
    next_link: u64,
    sessions: Vec<SessionModel>,
    /// The current session model of each client id.
    current: HashMap<String, usize>,
    /// How many times each payload was routed as a fresh message (at most).
    routes: HashMap<Bytes, u32>,
    counter: u32,
    /// With persistence on (a header bit): every change the router records, applied after each
    /// pump round, as the driver applies them.
    store: Option<MemoryStore>,
}

impl World {
    fn new(header: u8) -> Self {
        let start = Instant::now();
        let max_inflight = 1 + usize::from(header & 3);
        let max_queued = 1 + usize::from((header >> 2) & 7);
        let config = RouterConfig {
            max_inflight,
            max_queued_messages: max_queued,
            sys_interval: (header & 0x20 != 0).then(|| Duration::from_secs(10)),
            persistence: header & 0x40 != 0,
            ..RouterConfig::default()
        };
        let store = config.persistence.then(MemoryStore::new);
        Self {
            start,
            now: start,
            router: Router::new(start, config),
            max_inflight,
            max_queued,
            links: Vec::new(),
            next_link: 1,
            sessions: Vec::new(),
            current: HashMap::new(),
            routes: HashMap::new(),
            counter: 0,
            store,
        }
    }

    /// Hands the router's changes to the store.
    fn save(&mut self) {
        if let Some(store) = &mut self.store {
            let mut ops = Vec::new();
            self.router.take_store_ops(&mut ops);
            store.apply(&ops, true).expect("the memory store takes every change");
        }
    }

    /// The store reads back, and a router restored from it (a restart after a crash) keeps
    /// its invariants, with every stored message counted.
    fn check_store(&self) {
        let Some(store) = &self.store else { return };
        let snapshot = store.clone().load().unwrap_or_else(|e| panic!("the store does not read back: {e}"));
        let messages: usize = snapshot.sessions.iter().map(|s| s.messages.len()).sum();
        let config = RouterConfig {
            max_inflight: self.max_inflight,
            max_queued_messages: self.max_queued,
            sys_interval: None,
            persistence: true,
            ..RouterConfig::default()
        };
        // The $SYS totals come back too: overflow counted before the restart is not this
        // restore's.
        let earlier_overflow = snapshot.totals.offline_overflow;
        let mut restored = Router::new(self.now, config);
        restored.restore(snapshot);
        if let Err(e) = restored.check_invariants() {
            panic!("a router restored from the store breaks an invariant: {e}");
        }
        let stats = restored.stats();
        let overflow = stats.offline_overflow - earlier_overflow;
        assert!(
            (stats.stored + stats.inflight + overflow) as usize == messages,
            "{messages} stored messages, restored as {} queued, {} in flight, {overflow} over the limit",
            stats.stored,
            stats.inflight,
        );
    }

    fn payload(&mut self, kind: u8, pad: usize) -> Bytes {
        self.counter += 1;
        let mut p = vec![MARK, kind];
        p.extend_from_slice(&self.counter.to_be_bytes());
        p.resize(p.len() + pad, b'.');
        p.into()
    }

    // ---- operations ----

    fn open(&mut self, small: bool) -> usize {
        let mut config = LinkConfig::default();
        if small {
            config.max_packet_size = 64;
        }
        let id = LinkId::new(std::num::NonZeroU64::new(self.next_link).unwrap_or(std::num::NonZeroU64::MIN));
        self.next_link += 1;
        trace!("op: open link {id} (max packet size {})", config.max_packet_size);
        self.links.push(Link {
            id,
            conn: ServerConnection::new(self.now, &config),
            decoder: Decoder::new(ProtocolLevel::V3_1_1).with_max_packet_size(usize::MAX),
            inbox: BytesMut::new(),
            budget: usize::MAX,
            session: None,
            mapped: false,
            got_connack: false,
            fed: 0,
            handed: 0,
            outstanding: Vec::new(),
            sent: Vec::new(),
            auto_ack: false,
            auto: Vec::new(),
        });
        self.links.len() - 1
    }

    fn feed(&mut self, i: usize, bytes: &[u8]) {
        trace!("  link {} <- {} bytes {bytes:02x?}", self.links[i].id, bytes.len());
        let now = self.now;
        let link = &mut self.links[i];
        link.fed += bytes.len();
        link.conn.handle_bytes(now, bytes);
        self.pump();
    }

    fn send(&mut self, i: usize, packet: &Packet) {
        self.send_all(i, std::slice::from_ref(packet));
    }

    /// Sends packets in one chunk, as a client that pipelines them.
    fn send_all(&mut self, i: usize, packets: &[Packet]) {
        let mut bytes = Vec::new();
        for packet in packets {
            // Well-formed by construction; a packet that fails to encode is simply not sent.
            if encode(packet, self.links[i].conn.level(), &mut bytes).is_err() {
                return;
            }
            trace!("op: link {} sends {packet:?}", self.links[i].id);
            if let Packet::Publish(p) = packet {
                let sent = &mut self.links[i].sent;
                if sent.len() == 8 {
                    sent.remove(0);
                }
                sent.push(p.clone());
            }
        }
        self.feed(i, &bytes);
    }

    /// CONNECT, and in the same chunk a PINGREQ and/or a QoS 1 PUBLISH if `b` says so.
    fn connect(&mut self, i: usize, a: u8, b: u8) {
        let mut packets = vec![self.connect_packet(a, b)];
        if b & 0x20 != 0 {
            packets.push(Packet::Pingreq);
        }
        if b & 0x40 != 0 {
            packets.push(Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: TopicName::new("t").expect("valid topic"),
                packet_id: Some(pid(1)),
                properties: Properties::new(),
                payload: self.payload(b'm', 0),
            }));
        }
        self.send_all(i, &packets);
    }

    fn connect_packet(&mut self, a: u8, b: u8) -> Packet {
        let will = (a & 0x20 != 0).then(|| Will {
            topic: TopicName::new(WILL_TOPICS[usize::from((b >> 1) & 3)]).expect("valid topic"),
            payload: self.payload(b'w', 0),
            qos: qos_of(a >> 6),
            retain: b & 1 != 0,
            properties: Properties::new(),
        });
        let level = match (b >> 3) & 3 {
            2 => ProtocolLevel::V3_1,
            3 => ProtocolLevel::V5,
            _ => ProtocolLevel::V3_1_1,
        };
        Packet::Connect(Connect {
            level,
            clean_start: a & 4 != 0,
            keep_alive: [0, 1, 5, 60][usize::from((a >> 3) & 3)],
            client_id: CLIENTS[usize::from(a & 3)].into(),
            will,
            username: None,
            password: None,
            properties: Properties::new(),
        })
    }

    fn publish(&mut self, i: usize, a: u8, b: u8) {
        let qos = qos_of(a >> 2);
        let payload = if a & 0x40 != 0 { Bytes::new() } else { self.payload(b'm', if a & 0x80 != 0 { 80 } else { 0 }) };
        let publish = Publish {
            dup: a & 0x10 != 0 && qos != QoS::AtMostOnce,
            qos,
            retain: a & 0x20 != 0,
            topic: TopicName::new(TOPICS[usize::from(a & 3)]).expect("valid topic"),
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(u16::from(b % 8) + 1)),
            properties: Properties::new(),
            payload,
        };
        self.send(i, &Packet::Publish(publish));
    }

    fn resend(&mut self, i: usize, a: u8) {
        let sent = &self.links[i].sent;
        if sent.is_empty() {
            return;
        }
        let mut p = sent[usize::from(a) % sent.len()].clone();
        p.dup = p.qos != QoS::AtMostOnce;
        self.send(i, &Packet::Publish(p));
    }

    fn acknowledge(&mut self, i: usize, a: u8) {
        let kind = match a >> 6 {
            0 => AckKind::Puback,
            1 => AckKind::Pubrec,
            2 => AckKind::Pubcomp,
            _ => {
                let all = std::mem::take(&mut self.links[i].outstanding);
                for (kind, id) in all {
                    self.send(i, &ack_packet(kind, id));
                }
                return;
            }
        };
        let link = &mut self.links[i];
        let candidates: Vec<usize> = (0..link.outstanding.len()).filter(|&n| link.outstanding[n].0 == kind).collect();
        let id = if a & 0x20 != 0 || candidates.is_empty() {
            pid(u16::from(a & 0x0F) + 1)
        } else {
            link.outstanding.remove(candidates[usize::from(a & 0x1F) % candidates.len()]).1
        };
        self.send(i, &ack_packet(kind, id));
    }

    fn advance(&mut self, by: Duration) {
        trace!("op: time +{by:?}");
        self.now += by;
        let now = self.now;
        for link in &mut self.links {
            link.conn.handle_timeout(now);
        }
        self.router.handle_timeout(now, 1_700_000_000 + (now - self.start).as_secs());
        self.pump();
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.links.iter().filter_map(|l| l.conn.poll_timeout()).chain(self.router.poll_timeout()).min()
    }

    // ---- the pump ----

    /// Moves events and packets between links and router until nothing moves, as the driver
    /// does, checking the invariants after every event.
    fn pump(&mut self) {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut moved = false;
            for i in 0..self.links.len() {
                while let Some(event) = self.links[i].conn.poll_event() {
                    moved = true;
                    self.event(i, event);
                }
                let mut out = Vec::new();
                let (id, budget) = (self.links[i].id, self.links[i].budget);
                self.router.poll_deliveries(id, budget, &mut out);
                assert!(
                    out.len() <= self.max_queued + self.max_inflight,
                    "poll_deliveries gave {} packets, over the queue and inflight bounds",
                    out.len()
                );
                moved |= !out.is_empty();
                self.hand(i, &out);
                self.transmit(i);
                self.check_router("after poll_deliveries");
            }
            while self.router.poll_wake().is_some() {
                moved = true;
            }
            while self.router.poll_event().is_some() {}
            self.save();
            if !moved {
                return;
            }
        }
        panic!("the pump did not settle in {MAX_PUMP_ROUNDS} rounds");
    }

    fn event(&mut self, i: usize, event: LinkEvent) {
        let mut out = Vec::new();
        trace!("  link {} -> router: {event:?}", self.links[i].id);
        self.router.handle_event(self.now, self.links[i].id, event.clone(), &mut out);
        let bound = if matches!(event, LinkEvent::Connect(_)) { 1 + self.max_inflight } else { 1 };
        assert!(out.len() <= bound, "one event {event:?} yielded {} packets: {out:?}", out.len());
        self.model_event(i, &event, &out);
        self.hand(i, &out);
        while let Some((id, reason)) = self.router.poll_close() {
            trace!("  router closes link {id}: {reason}");
            let Some(j) = self.links.iter().position(|l| l.id == id) else {
                panic!("router closes unknown link {id}");
            };
            if self.links[j].mapped {
                let will = self.detach(j, &reason);
                self.route_will(will);
            }
            self.links[j].conn.close(reason);
        }
        self.check_router("after an event");
    }

    fn hand(&mut self, i: usize, packets: &[Packet]) {
        let link = &mut self.links[i];
        for packet in packets {
            link.handed += encoded_len(packet, link.conn.level()).unwrap_or(0);
            if let Err(e) = link.conn.send(packet) {
                panic!("the router's {packet:?} does not encode: {e}");
            }
        }
    }

    fn transmit(&mut self, i: usize) {
        let link = &mut self.links[i];
        let pending = link.conn.pending_len();
        assert!(
            pending <= link.fed + link.handed,
            "link {} holds {pending} bytes of output; it was fed {} and handed {}",
            link.id,
            link.fed,
            link.handed
        );
        let mut bytes = Vec::new();
        link.conn.poll_transmit(self.now, &mut bytes);
        assert_eq!(link.conn.pending_len(), 0, "poll_transmit left output behind");
        if bytes.is_empty() {
            // Nothing answered yet: what was fed still counts (a packet may arrive in pieces
            // over several turns and be answered after the last one).
            return;
        }
        link.fed = 0;
        link.handed = 0;
        link.inbox.extend_from_slice(&bytes);
        link.decoder.set_level(link.conn.level());
        let mut packets = Vec::new();
        loop {
            match link.decoder.decode(&mut link.inbox) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => panic!("link {} sent bytes that do not decode: {e}", link.id),
            }
        }
        assert!(link.inbox.is_empty(), "link {} sent a partial packet ({} bytes over)", link.id, link.inbox.len());
        for packet in packets {
            trace!("  link {} -> client: {packet:?}", self.links[i].id);
            self.received(i, packet);
        }
    }

    fn check_router(&self, when: &str) {
        if let Err(e) = self.router.check_invariants() {
            panic!("router invariant broken {when}: {e}");
        }
    }

    // ---- the model ----

    fn model_event(&mut self, i: usize, event: &LinkEvent, out: &[Packet]) {
        if let LinkEvent::Connect(connect) = event {
            self.model_connect(i, connect, out);
            return;
        }
        if !self.links[i].mapped {
            return; // the router ignores events of links it does not know
        }
        let Some(s) = self.links[i].session else { return };
        match event {
            LinkEvent::Closed(reason) => {
                let will = self.detach(i, reason);
                self.route_will(will);
            }
            LinkEvent::Publish(p) => {
                let fresh = match (p.qos, p.packet_id) {
                    (QoS::ExactlyOnce, Some(id)) => self.sessions[s].qos2_received.insert(id.get()),
                    _ => true,
                };
                if fresh && !is_sys(&p.topic) {
                    self.route(&p.topic, &p.payload, p.qos);
                }
            }
            LinkEvent::Pubrel(id) => {
                self.sessions[s].qos2_received.remove(&id.get());
            }
            LinkEvent::Pubrec(id) => {
                let session = &mut self.sessions[s];
                if let Some(payload) = session.qos2_by_id.get(&id.get())
                    && let Some(seen) = session.seen_qos2.get_mut(payload)
                    && seen.packet_id == id.get()
                {
                    seen.pubrec_sent = true;
                }
            }
            LinkEvent::Subscribe(sub) => {
                let subs = &mut self.sessions[s].subscriptions;
                for (filter, options) in &sub.filters {
                    subs.retain(|(f, _)| f != filter);
                    subs.push((filter.clone(), options.qos));
                }
            }
            LinkEvent::Unsubscribe(unsub) => {
                self.sessions[s].subscriptions.retain(|(f, _)| !unsub.filters.contains(f));
            }
            LinkEvent::Puback(_) | LinkEvent::Pubcomp(_) | LinkEvent::Connect(_) => {}
        }
    }

    fn model_connect(&mut self, i: usize, connect: &Connect, out: &[Packet]) {
        let Some(Packet::Connack(connack)) = out.first() else {
            panic!("CONNECT answered with {out:?}, not CONNACK first");
        };
        if connack.reason != ReasonCode::Success {
            return;
        }
        let client_id = if connect.client_id.is_empty() {
            format!("auto {}", self.links[i].id)
        } else {
            connect.client_id.to_string()
        };
        // MQTT-3.1.4-2: the session's old link is taken over; its will waits until the new
        // link is set up, as in the router.
        let mut will = None;
        if let Some(&s) = self.current.get(&client_id)
            && self.sessions[s].alive
            && let Some(old) = self.sessions[s].link
        {
            will = self.detach(old, &CloseReason::SessionTakenOver);
        }
        let existing = self.current.get(&client_id).copied().filter(|&s| self.sessions[s].alive);
        let want_present = !connect.clean_start && existing.is_some();
        assert_eq!(
            connack.session_present, want_present,
            "CONNACK session_present for {client_id:?} (clean {}) on link {}",
            connect.clean_start, self.links[i].id
        );
        let s = match existing {
            Some(s) if !connect.clean_start => {
                self.sessions[s].clean = false;
                s
            }
            _ => {
                if let Some(old) = existing {
                    self.sessions[old].alive = false;
                }
                self.sessions.push(SessionModel {
                    client_id: client_id.clone(),
                    clean: connect.clean_start,
                    alive: true,
                    ..SessionModel::default()
                });
                let s = self.sessions.len() - 1;
                self.current.insert(client_id, s);
                s
            }
        };
        self.sessions[s].link = Some(i);
        self.sessions[s].will = connect.will.clone();
        let link = &mut self.links[i];
        link.session = Some(s);
        link.mapped = true;
        self.route_will(will);
    }

    /// The router lets go of link `i`: the session is kept or dropped; returns the will to
    /// publish, if the reason publishes it.
    fn detach(&mut self, i: usize, reason: &CloseReason) -> Option<Will> {
        let link = &mut self.links[i];
        link.mapped = false;
        let s = link.session?;
        let session = &mut self.sessions[s];
        if session.link != Some(i) {
            return None;
        }
        session.link = None;
        let will = session.will.take().filter(|_| reason.publishes_will());
        if session.clean {
            session.alive = false;
        }
        will
    }

    fn route_will(&mut self, will: Option<Will>) {
        // Like a PUBLISH, a will may not reach `$SYS`.
        if let Some(w) = will.filter(|w| !is_sys(&w.topic)) {
            self.route(&w.topic, &w.payload, w.qos);
        }
    }

    /// A message is routed: note who should get it at QoS 1/2.
    fn route(&mut self, topic: &TopicName, payload: &Bytes, qos: QoS) {
        *self.routes.entry(payload.clone()).or_default() += 1;
        if payload.is_empty() || qos == QoS::AtMostOnce {
            return;
        }
        for session in self.sessions.iter_mut().filter(|s| s.alive && !s.clean) {
            // Shared subscriptions are not modelled (the router does not route to them yet).
            let granted = session
                .subscriptions
                .iter()
                .filter(|(f, _)| f.share_group().is_none() && f.matches(topic))
                .map(|(_, q)| *q)
                .max();
            if granted.is_some_and(|g| g.min(qos) != QoS::AtMostOnce) {
                session.expected.insert(payload.clone());
            }
        }
    }

    /// A packet link `i` transmitted, as its client decoded it.
    fn received(&mut self, i: usize, packet: Packet) {
        let link = &mut self.links[i];
        if !link.got_connack && !relaxed("connack-first") {
            assert!(
                matches!(packet, Packet::Connack(_)),
                "link {}: the first packet sent must be CONNACK, got {packet:?}",
                link.id
            );
        }
        match packet {
            Packet::Connack(_) => {
                assert!(!link.got_connack, "link {}: a second CONNACK", link.id);
                link.got_connack = true;
            }
            Packet::Pubrel(a) => {
                link.outstanding.push((AckKind::Pubcomp, a.packet_id));
                if link.auto_ack {
                    link.auto.push(Packet::Pubcomp(Ack::new(a.packet_id)));
                }
            }
            Packet::Publish(p) => self.delivered(i, p),
            _ => {}
        }
    }

    fn delivered(&mut self, i: usize, p: Publish) {
        let link = &mut self.links[i];
        let Some(s) = link.session else {
            panic!("link {} got {p:?} before it was accepted", link.id);
        };
        if let Some(id) = p.packet_id {
            let kind = if p.qos == QoS::AtLeastOnce { AckKind::Puback } else { AckKind::Pubrec };
            link.outstanding.push((kind, id));
            if link.auto_ack {
                link.auto.push(ack_packet(kind, id));
            }
        }
        if link.outstanding.len() > 64 {
            link.outstanding.drain(..32);
        }
        if p.payload.first() == Some(&MARK) {
            assert!(!is_sys(&p.topic), "a client's message was delivered on {} to link {}", p.topic.as_str(), link.id);
        }
        if p.payload.is_empty() {
            return;
        }
        let session = &mut self.sessions[s];
        session.delivered.insert(p.payload.clone());
        let Some(id) = p.packet_id else { return };
        if p.qos != QoS::ExactlyOnce {
            session.qos2_by_id.remove(&id.get());
            return;
        }
        session.qos2_by_id.insert(id.get(), p.payload.clone());
        if p.retain || self.routes.get(&p.payload).copied().unwrap_or(0) > 1 {
            return;
        }
        match session.seen_qos2.get(&p.payload) {
            None => {
                session.seen_qos2.insert(p.payload.clone(), Seen { packet_id: id.get(), pubrec_sent: false });
            }
            Some(seen) if p.dup && seen.packet_id == id.get() && !seen.pubrec_sent => {}
            Some(seen) => panic!(
                "QoS 2 message {:?} delivered twice to session {:?} (link {}): first as id {} \
                 (PUBREC sent: {}), again as id {} with DUP {}",
                p.payload, session.client_id, self.links[i].id, seen.packet_id, seen.pubrec_sent, id, p.dup
            ),
        }
    }

    // ---- the end ----

    /// Sends the acknowledgements the drain links owe, until none are owed.
    fn auto_acknowledge(&mut self) {
        for _ in 0..64 {
            let mut any = false;
            for j in 0..self.links.len() {
                for packet in std::mem::take(&mut self.links[j].auto) {
                    any = true;
                    self.send(j, &packet);
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Resumes every persistent session on a fresh link that acknowledges everything, then
    /// checks that what was routed to it arrived or was counted as dropped.
    fn drain(&mut self) {
        trace!("drain: resume every persistent session");
        // A resumed link can itself be closed at once (a slow consumer, when the will of the
        // link it took over overflows a full queue): such sessions are resumed again.
        for _ in 0..8 {
            let mut todo: Vec<String> = self
                .current
                .values()
                .map(|&s| &self.sessions[s])
                .filter(|s| s.alive && !s.clean)
                .filter(|s| !s.link.is_some_and(|l| self.links[l].auto_ack && !self.links[l].conn.is_closed()))
                .map(|s| s.client_id.clone())
                .collect();
            if todo.is_empty() {
                break;
            }
            todo.sort();
            for client_id in todo {
                let i = self.open(false);
                self.links[i].auto_ack = true;
                let connect = Connect {
                    level: ProtocolLevel::V3_1_1,
                    clean_start: false,
                    keep_alive: 0,
                    client_id: client_id.as_str().into(),
                    will: None,
                    username: None,
                    password: None,
                    properties: Properties::new(),
                };
                self.send(i, &Packet::Connect(connect));
                self.auto_acknowledge();
            }
        }
        let mut missing = Vec::new();
        for s in self.current.values().copied() {
            let session = &self.sessions[s];
            if session.alive && !session.clean {
                missing.extend(session.expected.difference(&session.delivered).map(|p| (session.client_id.clone(), p)));
            }
        }
        let dropped = self.router.stats().publish_dropped;
        assert!(
            missing.len() as u64 <= dropped,
            "{} QoS 1/2 messages routed to persistent sessions never arrived, and only {dropped} drops \
             were counted: {missing:?}",
            missing.len()
        );
    }
}

/// Topics only the broker publishes to: `$SYS` and below.
fn is_sys(topic: &TopicName) -> bool {
    let t = topic.as_str();
    t == "$SYS" || t.starts_with("$SYS/")
}

fn ack_packet(kind: AckKind, id: PacketId) -> Packet {
    match kind {
        AckKind::Puback => Packet::Puback(Ack::new(id)),
        AckKind::Pubrec => Packet::Pubrec(Ack::new(id)),
        AckKind::Pubcomp => Packet::Pubcomp(Ack::new(id)),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut world = World::new(input.byte());
    for _ in 0..MAX_OPS {
        if input.0.is_empty() {
            break;
        }
        let code = input.byte();
        let target = usize::from(code >> 4);
        // Every kind but opening needs a link; the high nibble picks one of those opened.
        let link = (!world.links.is_empty()).then(|| target % world.links.len());
        match (code & 0x0F, link) {
            (0, _) => {
                let small = input.byte() & 1 != 0;
                if world.links.len() < MAX_LINKS {
                    world.open(small);
                }
            }
            (14, _) => {
                let (a, b) = (input.byte(), input.byte());
                if world.links.len() < MAX_LINKS {
                    let i = world.open(false);
                    world.connect(i, a, b);
                }
            }
            (12, _) => {
                let secs = input.byte() % 201;
                world.advance(Duration::from_secs(secs.into()));
            }
            (15, _) => {
                if let Some(deadline) = world.next_deadline() {
                    let by = deadline.saturating_duration_since(world.now).min(Duration::from_secs(86_400));
                    world.advance(by);
                }
            }
            (_, None) => {}
            (1, Some(i)) => {
                trace!("op: link {} EOF", world.links[i].id);
                let now = world.now;
                world.links[i].conn.handle_eof(now);
                world.pump();
            }
            (2, Some(i)) => {
                let len = usize::from(input.byte() % 33);
                let chunk = input.bytes(len).to_vec();
                trace!("op: link {} raw chunk", world.links[i].id);
                world.feed(i, &chunk);
            }
            (3, Some(i)) => {
                let (a, b) = (input.byte(), input.byte());
                world.connect(i, a, b);
            }
            (4, Some(i)) => {
                let (a, b) = (input.byte(), input.byte());
                let filter = TopicFilter::new(FILTERS[usize::from(a & 7) % FILTERS.len()]).expect("valid filter");
                let packet = Packet::Subscribe(Subscribe {
                    packet_id: pid(b.into()),
                    filters: vec![(filter, SubscriptionOptions::qos(qos_of(a >> 3)))],
                    properties: Properties::new(),
                });
                world.send(i, &packet);
            }
            (5, Some(i)) => {
                let (a, b) = (input.byte(), input.byte());
                let filter = TopicFilter::new(FILTERS[usize::from(a) % FILTERS.len()]).expect("valid filter");
                let packet = Packet::Unsubscribe(Unsubscribe {
                    packet_id: pid(b.into()),
                    filters: vec![filter],
                    properties: Properties::new(),
                });
                world.send(i, &packet);
            }
            (6, Some(i)) => {
                let (a, b) = (input.byte(), input.byte());
                world.publish(i, a, b);
            }
            (7, Some(i)) => {
                let a = input.byte();
                world.resend(i, a);
            }
            (8, Some(i)) => {
                let a = input.byte();
                world.acknowledge(i, a);
            }
            (9, Some(i)) => {
                let a = input.byte();
                world.send(i, &Packet::Pubrel(Ack::new(pid(u16::from(a % 8) + 1))));
            }
            (10, Some(i)) => world.send(i, &Packet::Pingreq),
            (11, Some(i)) => world.send(i, &Packet::Disconnect(Disconnect::normal())),
            (13, Some(i)) => {
                world.links[i].budget = [usize::MAX, 0, 1][usize::from(input.byte() % 3)];
                trace!("op: link {} budget {}", world.links[i].id, world.links[i].budget);
                world.pump();
            }
            (_, Some(_)) => {}
        }
        world.check_router("after an operation");
    }
    world.drain();
    world.check_router("after the drain");
    world.save();
    world.check_store();
});
