//! Deterministic simulations: client cores against the broker core (links and router), bytes
//! moved by hand, time jumped to the next deadline, the network cut or made to lose packets.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::broker::{CloseReason, LinkConfig, LinkEvent, LinkId, Router, RouterConfig, ServerConnection};
use crate::codec::{Publish, QoS, ReasonCode, SubscriptionOptions};
use crate::topic::{TopicFilter, TopicName};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One client core, its link in the broker (while connected), and the network between them.
struct Peer {
    client: Connection,
    link: Option<(LinkId, ServerConnection)>,
    events: Vec<Event>,
    /// Drop what the client sends (the broker never sees it).
    drop_up: bool,
    /// Hold what the broker sends instead of delivering it.
    hold_down: bool,
    held: Vec<u8>,
    /// Bytes the broker sent while the client's transport was gone.
    broker_closed: Option<CloseReason>,
}

struct World {
    now: Instant,
    router: Router,
    peers: Vec<Peer>,
    next_link: u64,
}

impl World {
    fn new() -> Self {
        let now = Instant::now();
        let config = RouterConfig { sys_interval: None, ..RouterConfig::default() };
        Self { now, router: Router::new(now, config), peers: Vec::new(), next_link: 1 }
    }

    fn add(&mut self, options: ConnectOptions) -> usize {
        self.peers.push(Peer {
            client: Connection::new(options),
            link: None,
            events: Vec::new(),
            drop_up: false,
            hold_down: false,
            held: Vec::new(),
            broker_closed: None,
        });
        self.peers.len() - 1
    }

    /// Opens a transport for peer `i`, starts the client on it and pumps.
    fn start(&mut self, i: usize) {
        let link = LinkId::new(std::num::NonZeroU64::new(self.next_link).expect("link numbers start at 1"));
        self.next_link += 1;
        let now = self.now;
        let peer = &mut self.peers[i];
        peer.link = Some((link, ServerConnection::new(now, &LinkConfig::default())));
        peer.broker_closed = None;
        peer.held.clear();
        peer.client.start(now).unwrap();
        self.pump();
    }

    /// Starts peer `i` and expects the connection accepted, with `session_present`. Earlier
    /// events of the peer are dropped.
    fn connect(&mut self, i: usize, session_present: bool) {
        self.take_events(i);
        self.start(i);
        let events = self.take_events(i);
        assert_eq!(events.first(), Some(&Event::Connected { session_present }), "{events:?}");
        self.peers[i].events = events[1..].to_vec();
    }

    /// The network between peer `i` and the broker breaks: both ends see EOF.
    fn cut(&mut self, i: usize) {
        let now = self.now;
        let peer = &mut self.peers[i];
        peer.client.handle_eof(now);
        if let Some((_, link)) = &mut peer.link {
            link.handle_eof(now);
        }
        self.pump();
    }

    fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.peers[i].events)
    }

    fn messages(&mut self, i: usize) -> Vec<Publish> {
        let events = self.take_events(i);
        let (messages, others): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| matches!(e, Event::Message(_)));
        self.peers[i].events = others;
        messages
            .into_iter()
            .map(|e| match e {
                Event::Message(p) => p,
                _ => unreachable!(),
            })
            .collect()
    }

    fn publish(&mut self, i: usize, topic: &str, payload: &'static str, qos: QoS) -> RequestId {
        let now = self.now;
        let topic = TopicName::new(topic).unwrap();
        let id = self.peers[i].client.publish(now, topic, Bytes::from_static(payload.as_bytes()), qos, false).unwrap();
        self.pump();
        id
    }

    fn subscribe(&mut self, i: usize, filter: &str, qos: QoS) {
        let now = self.now;
        let filters = vec![(TopicFilter::new(filter).unwrap(), SubscriptionOptions::qos(qos))];
        let id = self.peers[i].client.subscribe(now, filters).unwrap();
        self.pump();
        let events = self.take_events(i);
        assert!(events.contains(&Event::Subscribed { id, granted: vec![ReasonCode::granted(qos)] }), "{events:?}");
    }

    /// Jumps to the earliest deadline of any client, link or the router, and handles it.
    fn jump(&mut self) -> Duration {
        let deadlines = self.peers.iter().flat_map(|p| {
            let link = p.link.as_ref().and_then(|(_, l)| l.poll_timeout());
            [p.client.poll_timeout(), link]
        });
        let next = deadlines.flatten().min().expect("a deadline");
        let by = next.saturating_duration_since(self.now);
        self.advance(by);
        by
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for peer in &mut self.peers {
            peer.client.handle_timeout(now);
            if let Some((_, link)) = &mut peer.link {
                link.handle_timeout(now);
            }
        }
        self.pump();
    }

    /// Moves bytes, events and packets until nothing moves, as the drivers do.
    fn pump(&mut self) {
        let now = self.now;
        for _ in 0..10_000 {
            let mut moved = false;
            for peer in &mut self.peers {
                peer.client.check_invariants().unwrap();
                let mut up = Vec::new();
                peer.client.poll_transmit(now, &mut up);
                peer.events.extend(std::iter::from_fn(|| peer.client.poll_event()));
                let Some((id, link)) = &mut peer.link else { continue };
                if !up.is_empty() && !peer.drop_up {
                    moved = true;
                    link.handle_bytes(now, &up);
                }
                let mut out = Vec::new();
                while let Some(event) = link.poll_event() {
                    moved = true;
                    if let LinkEvent::Closed(reason) = &event {
                        peer.broker_closed = Some(reason.clone());
                    }
                    self.router.handle_event(now, *id, event, &mut out);
                }
                self.router.poll_deliveries(*id, usize::MAX, &mut out);
                for packet in &out {
                    moved = true;
                    link.send(packet).unwrap();
                }
                let mut down = Vec::new();
                link.poll_transmit(now, &mut down);
                if peer.hold_down {
                    peer.held.extend_from_slice(&down);
                } else if !down.is_empty() {
                    moved = true;
                    peer.client.handle_bytes(now, &down);
                }
                if link.is_finished() {
                    // The broker closed the transport: the client sees EOF.
                    peer.client.handle_eof(now);
                    peer.link = None;
                    moved = true;
                }
            }
            while let Some((link, reason)) = self.router.poll_close() {
                moved = true;
                for peer in &mut self.peers {
                    if let Some((id, conn)) = &mut peer.link
                        && *id == link
                    {
                        conn.close(reason.clone());
                    }
                }
            }
            while self.router.poll_wake().is_some() {
                moved = true;
            }
            while self.router.poll_event().is_some() {}
            self.router.check_invariants().unwrap();
            if !moved {
                return;
            }
        }
        panic!("the pump does not settle");
    }

    /// Delivers what the broker sent to peer `i` while held, and stops holding.
    fn release(&mut self, i: usize) {
        let now = self.now;
        let peer = &mut self.peers[i];
        peer.hold_down = false;
        let held = std::mem::take(&mut peer.held);
        peer.client.handle_bytes(now, &held);
        self.pump();
    }
}

fn persistent(id: &str) -> ConnectOptions {
    ConnectOptions { clean_session: false, ..ConnectOptions::new(id) }
}

fn payloads(messages: &[Publish]) -> Vec<(String, QoS, bool)> {
    messages.iter().map(|m| (String::from_utf8_lossy(&m.payload).into_owned(), m.qos, m.dup)).collect()
}

#[test]
fn connect_and_qos_0_1_2_both_directions() {
    let mut w = World::new();
    let sub = w.add(ConnectOptions::new("sub"));
    let publ = w.add(ConnectOptions::new("pub"));
    w.connect(sub, false);
    w.connect(publ, false);
    w.subscribe(sub, "t/#", QoS::ExactlyOnce);
    let ids = [
        w.publish(publ, "t/a", "zero", QoS::AtMostOnce),
        w.publish(publ, "t/a", "one", QoS::AtLeastOnce),
        w.publish(publ, "t/a", "two", QoS::ExactlyOnce),
    ];
    assert_eq!(w.take_events(publ), ids.map(Event::Published));
    let got = w.messages(sub);
    assert_eq!(
        payloads(&got),
        [
            ("zero".into(), QoS::AtMostOnce, false),
            ("one".into(), QoS::AtLeastOnce, false),
            ("two".into(), QoS::ExactlyOnce, false)
        ]
    );
    // Every QoS flow finished on both sides.
    assert_eq!(w.peers[publ].client.inflight_len(), 0);
    assert_eq!(w.router.stats().inflight, 0);
    // A lower subscription QoS caps delivery.
    w.subscribe(sub, "t/#", QoS::AtMostOnce);
    w.publish(publ, "t/b", "capped", QoS::ExactlyOnce);
    assert_eq!(payloads(&w.messages(sub)), [("capped".into(), QoS::AtMostOnce, false)]);
}

#[test]
fn qos1_is_resent_with_dup_after_reconnect() {
    let mut w = World::new();
    let sub = w.add(ConnectOptions::new("sub"));
    let publ = w.add(persistent("pub"));
    w.connect(sub, false);
    w.subscribe(sub, "t", QoS::AtLeastOnce);
    w.connect(publ, false);
    w.peers[publ].hold_down = true; // the PUBACK is lost
    let id = w.publish(publ, "t", "m", QoS::AtLeastOnce);
    w.cut(publ);
    assert_eq!(w.take_events(publ), [Event::Disconnected(DisconnectReason::ConnectionLost)]);
    w.peers[publ].hold_down = false;
    w.connect(publ, true);
    assert_eq!(w.take_events(publ), [Event::Published(id)]);
    // At least once: the resend reached the subscriber again, marked by the broker as new.
    assert_eq!(payloads(&w.messages(sub)).len(), 2);
}

#[test]
fn qos2_first_phase_is_resent_with_dup_and_delivered_once() {
    let mut w = World::new();
    let sub = w.add(ConnectOptions::new("sub"));
    let publ = w.add(persistent("pub"));
    w.connect(sub, false);
    w.subscribe(sub, "t", QoS::ExactlyOnce);
    w.connect(publ, false);
    w.peers[publ].hold_down = true; // the PUBREC is lost
    let id = w.publish(publ, "t", "once", QoS::ExactlyOnce);
    w.cut(publ);
    w.peers[publ].hold_down = false;
    w.connect(publ, true);
    assert_eq!(w.take_events(publ), [Event::Published(id)]);
    assert_eq!(payloads(&w.messages(sub)), [("once".into(), QoS::ExactlyOnce, false)]);
}

#[test]
fn qos2_second_phase_resends_pubrel_after_reconnect() {
    let mut w = World::new();
    let sub = w.add(ConnectOptions::new("sub"));
    let publ = w.add(persistent("pub"));
    w.connect(sub, false);
    w.subscribe(sub, "t", QoS::ExactlyOnce);
    w.connect(publ, false);
    w.peers[publ].hold_down = true;
    let id = w.publish(publ, "t", "once", QoS::ExactlyOnce);
    // The PUBREC arrives, but the PUBREL it causes is lost.
    w.peers[publ].drop_up = true;
    w.release(publ);
    w.cut(publ);
    w.peers[publ].drop_up = false;
    assert_eq!(w.take_events(publ), [Event::Disconnected(DisconnectReason::ConnectionLost)]);
    assert_eq!(w.peers[publ].client.inflight_len(), 1);
    w.connect(publ, true);
    assert_eq!(w.take_events(publ), [Event::Published(id)]);
    assert_eq!(w.peers[publ].client.inflight_len(), 0);
    assert_eq!(payloads(&w.messages(sub)), [("once".into(), QoS::ExactlyOnce, false)]);
}

#[test]
fn inbound_qos2_is_delivered_once_across_a_reconnect() {
    let mut w = World::new();
    let sub = w.add(persistent("sub"));
    let publ = w.add(ConnectOptions::new("pub"));
    w.connect(sub, false);
    w.subscribe(sub, "t", QoS::ExactlyOnce);
    w.connect(publ, false);
    w.peers[sub].drop_up = true; // the subscriber's PUBREC is lost
    w.publish(publ, "t", "exactly", QoS::ExactlyOnce);
    assert_eq!(w.messages(sub).len(), 1);
    w.cut(sub);
    w.peers[sub].drop_up = false;
    w.connect(sub, true);
    // The broker resent the PUBLISH with DUP; the client answered it without delivering it.
    assert!(w.messages(sub).is_empty());
    assert_eq!(w.router.stats().inflight, 0, "the QoS 2 flow to the subscriber completed");
}

#[test]
fn keep_alive_against_the_broker() {
    let mut w = World::new();
    let c = w.add(ConnectOptions::new("c")); // keep-alive 10 s, ping delay 1 s
    w.connect(c, false);
    let start = w.now;
    // Pings every 9 s keep the connection up on both sides for ten minutes.
    while w.now < start + secs(600) {
        let by = w.jump();
        assert_eq!(by, secs(9));
    }
    assert!(w.peers[c].client.is_connected());
    assert!(w.peers[c].link.as_ref().is_some_and(|(_, l)| !l.is_closed()));
    // The broker goes silent: the client pings at 9 s and gives up 10 s later.
    w.peers[c].hold_down = true;
    assert_eq!(w.jump(), secs(9));
    assert_eq!(w.jump(), secs(10));
    assert_eq!(w.take_events(c), [Event::Disconnected(DisconnectReason::KeepAliveTimeout(secs(10)))]);
}

#[test]
fn window_and_pending_queue_against_the_broker() {
    let mut w = World::new();
    let sub = w.add(ConnectOptions::new("sub"));
    let publ = w.add(ConnectOptions { max_inflight: 2, ..ConnectOptions::new("pub") });
    w.connect(sub, false);
    w.subscribe(sub, "t", QoS::AtLeastOnce);
    w.connect(publ, false);
    // Queued while the broker's answers are held: two in flight, the rest waiting.
    w.peers[publ].hold_down = true;
    let payloads_sent: [&'static str; 6] = ["0", "1", "2", "3", "4", "5"];
    let ids: Vec<_> = payloads_sent.iter().map(|p| w.publish(publ, "t", p, QoS::AtLeastOnce)).collect();
    assert_eq!((w.peers[publ].client.inflight_len(), w.peers[publ].client.pending_len()), (2, 4));
    for _ in 0..3 {
        w.release(publ);
        w.peers[publ].hold_down = true;
    }
    w.release(publ);
    let done: Vec<_> = ids.into_iter().map(Event::Published).collect();
    assert_eq!(w.take_events(publ), done);
    let order: Vec<_> = payloads(&w.messages(sub)).into_iter().map(|p| p.0).collect();
    assert_eq!(order, payloads_sent);
}

#[test]
fn publish_while_disconnected_then_connect() {
    let mut w = World::new();
    let sub = w.add(ConnectOptions::new("sub"));
    let publ = w.add(ConnectOptions::new("pub"));
    w.connect(sub, false);
    w.subscribe(sub, "t", QoS::ExactlyOnce);
    let now = w.now;
    let topic = TopicName::new("t").unwrap();
    let early = w.peers[publ].client.publish(now, topic.clone(), Bytes::from_static(b"early"), QoS::ExactlyOnce, false);
    let qos0 = w.peers[publ].client.publish(now, topic, Bytes::new(), QoS::AtMostOnce, false);
    assert_eq!(qos0, Err(UsageError::NotConnected));
    w.connect(publ, false);
    assert_eq!(w.take_events(publ), [Event::Published(early.unwrap())]);
    assert_eq!(payloads(&w.messages(sub)), [("early".into(), QoS::ExactlyOnce, false)]);
}

#[test]
fn refused_by_the_broker_and_clean_disconnect() {
    let mut w = World::new();
    // The broker serves up to 3.1.1 and answers MQTT 5 with CONNACK 1 in the 3.1.1 format.
    let v5 = w.add(ConnectOptions { level: crate::codec::ProtocolLevel::V5, ..ConnectOptions::new("five") });
    w.start(v5);
    let events = w.take_events(v5);
    let refused = ReasonCode::UnsupportedProtocolVersion;
    assert_eq!(events, [Event::Refused(refused), Event::Disconnected(DisconnectReason::Refused(refused))]);

    // A clean DISCONNECT: the broker closes without publishing the will.
    let watch = w.add(ConnectOptions::new("watch"));
    w.connect(watch, false);
    w.subscribe(watch, "will", QoS::AtMostOnce);
    let will = crate::codec::Will {
        topic: TopicName::new("will").unwrap(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: crate::codec::Properties::new(),
    };
    let polite = w.add(ConnectOptions { will: Some(will.clone()), ..ConnectOptions::new("polite") });
    w.connect(polite, false);
    let now = w.now;
    w.peers[polite].client.disconnect(now);
    w.pump();
    assert_eq!(w.take_events(polite), [Event::Disconnected(DisconnectReason::Local)]);
    assert_eq!(w.peers[polite].broker_closed, Some(CloseReason::ClientDisconnected));
    let rude = w.add(ConnectOptions { will: Some(will), ..ConnectOptions::new("rude") });
    w.connect(rude, false);
    w.cut(rude);
    assert_eq!(payloads(&w.messages(watch)), [("gone".into(), QoS::AtMostOnce, false)]);
}
