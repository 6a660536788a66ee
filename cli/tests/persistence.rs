//! Persistence as an operator meets it: `moat mqtt broker` with a store, killed with SIGKILL
//! under load and started again; a store that is damaged.
#![allow(missing_docs)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{moat, runtimes, scratch, start_broker, write_file};
use moat_mqtt_core::codec::{
    Ack, Connect, Decoder, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, Subscribe, SubscriptionOptions,
    encode,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

/// A blocking MQTT 3.1.1 peer made of a socket and the codec.
struct Peer {
    stream: TcpStream,
    decoder: Decoder,
    inbox: BytesMut,
}

/// The connection is gone (the broker was killed).
#[derive(Debug)]
struct Gone;

impl Peer {
    /// Connects as `client_id`; returns the peer and the CONNACK's session-present flag.
    fn connect(port: u16, client_id: &str, clean: bool) -> (Self, bool) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        let mut peer = Self { stream, decoder: Decoder::new(ProtocolLevel::V3_1_1), inbox: BytesMut::new() };
        peer.send(&Packet::Connect(Connect {
            level: ProtocolLevel::V3_1_1,
            clean_start: clean,
            keep_alive: 0,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        }))
        .expect("send CONNECT");
        match peer.recv(Duration::from_secs(10)) {
            Ok(Some(Packet::Connack(ack))) if !ack.reason.is_error() => (peer, ack.session_present),
            other => panic!("{client_id}: expected CONNACK, got {other:?}"),
        }
    }

    fn send(&mut self, packet: &Packet) -> Result<(), Gone> {
        let mut bytes = Vec::new();
        encode(packet, ProtocolLevel::V3_1_1, &mut bytes).expect("encode");
        self.stream.write_all(&bytes).map_err(|_| Gone)
    }

    /// The next packet, or `None` if none came within `wait`.
    fn recv(&mut self, wait: Duration) -> Result<Option<Packet>, Gone> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.inbox).map_err(|_| Gone)? {
                return Ok(Some(packet));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left)).map_err(|_| Gone)?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Gone),
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(_) => return Err(Gone),
            }
        }
    }
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

/// Publishes `prefix-N` at `qos` to `topic`, N = 1, 2, ..., with up to 16 in flight, until
/// the connection is lost; records each message the broker acknowledged (PUBACK; PUBREC for
/// QoS 2, after which the broker owns it).
fn publisher(port: u16, topic: &str, qos: QoS, prefix: &str, acked: Arc<Mutex<Vec<String>>>) {
    let (mut peer, _) = Peer::connect(port, &format!("pub-{prefix}"), true);
    let topic = TopicName::new(topic).expect("topic");
    let mut in_flight: HashMap<u16, String> = HashMap::new();
    let mut next = 1u64;
    let mut next_id = 0u16;
    loop {
        while in_flight.len() < 16 {
            next_id = next_id % 60_000 + 1;
            let payload = format!("{prefix}-{next}");
            next += 1;
            let publish = Publish {
                dup: false,
                qos,
                retain: false,
                topic: topic.clone(),
                packet_id: Some(pid(next_id)),
                properties: Properties::new(),
                payload: payload.clone().into(),
            };
            if peer.send(&Packet::Publish(publish)).is_err() {
                return;
            }
            in_flight.insert(next_id, payload);
        }
        match peer.recv(Duration::from_millis(20)) {
            Err(Gone) => return,
            Ok(Some(Packet::Puback(ack))) => {
                if let Some(payload) = in_flight.remove(&ack.packet_id.get()) {
                    acked.lock().unwrap().push(payload);
                }
            }
            Ok(Some(Packet::Pubrec(ack))) => {
                if let Some(payload) = in_flight.get(&ack.packet_id.get()) {
                    acked.lock().unwrap().push(payload.clone());
                }
                if peer.send(&Packet::Pubrel(Ack::new(ack.packet_id))).is_err() {
                    return;
                }
            }
            Ok(Some(Packet::Pubcomp(ack))) => {
                in_flight.remove(&ack.packet_id.get());
            }
            Ok(_) => {}
        }
    }
}

/// A persistent subscriber's side of the QoS flows, kept across its connections: what it
/// received, and (QoS 2) the ids it answered with PUBREC and has not seen PUBREL for.
#[derive(Default)]
struct Receiver {
    received: Vec<String>,
    awaiting_release: HashSet<u16>,
}

impl Receiver {
    /// Takes messages until the connection is lost or `until` says stop (checked between
    /// packets).
    fn run(&mut self, peer: &mut Peer, until: &dyn Fn(&Receiver) -> bool) {
        while !until(self) {
            let packet = match peer.recv(Duration::from_millis(50)) {
                Err(Gone) => return,
                Ok(None) => continue,
                Ok(Some(packet)) => packet,
            };
            let reply = match packet {
                Packet::Publish(p) => {
                    let id = p.packet_id.expect("QoS 1/2 deliveries only");
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    if p.qos == QoS::ExactlyOnce {
                        // A PUBLISH with an id awaiting release is a resend: not delivered again.
                        if self.awaiting_release.insert(id.get()) {
                            self.received.push(payload);
                        }
                        Packet::Pubrec(Ack::new(id))
                    } else {
                        self.received.push(payload);
                        Packet::Puback(Ack::new(id))
                    }
                }
                Packet::Pubrel(ack) => {
                    self.awaiting_release.remove(&ack.packet_id.get());
                    Packet::Pubcomp(ack)
                }
                _ => continue,
            };
            if peer.send(&reply).is_err() {
                return;
            }
        }
    }
}

/// Connects a persistent subscriber to `filter` at `qos`.
fn subscriber(port: u16, client_id: &str, filter: &str, qos: QoS) -> Peer {
    let (mut peer, _) = Peer::connect(port, client_id, false);
    let subscribe = Subscribe {
        packet_id: pid(1),
        filters: vec![(TopicFilter::new(filter).expect("filter"), SubscriptionOptions::qos(qos))],
        properties: Properties::new(),
    };
    peer.send(&Packet::Subscribe(subscribe)).expect("send SUBSCRIBE");
    match peer.recv(Duration::from_secs(10)) {
        Ok(Some(Packet::Suback(_))) => peer,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn broker_config(store: &Path, extra: &str) -> std::path::PathBuf {
    write_file(
        "persist.yaml",
        &format!(
            "listeners:\n  default:\n    bind: 127.0.0.1:0\nsys-interval: 0\npersistence:\n  path: {}\n{extra}",
            store.display()
        ),
    )
}

#[test]
fn sigkill_under_qos1_and_qos2_load_loses_nothing_acknowledged() {
    for runtime in runtimes() {
        let store = scratch("store");
        let config = broker_config(&store, "  sync: always\n");
        let (mut broker, port) = start_broker(&config, &["--runtime", runtime]);

        // Online persistent subscribers: messages are queued, in flight, in QoS 2 phases when
        // the broker dies.
        let mut receivers: Vec<(Peer, Receiver, &str)> = vec![
            (subscriber(port, "keep-1", "load/1/#", QoS::AtLeastOnce), Receiver::default(), "keep-1"),
            (subscriber(port, "keep-2", "load/2/#", QoS::ExactlyOnce), Receiver::default(), "keep-2"),
        ];
        let acked: [Arc<Mutex<Vec<String>>>; 2] = Default::default();
        let publishers: Vec<_> = [("load/1/x", QoS::AtLeastOnce, "one"), ("load/2/x", QoS::ExactlyOnce, "two")]
            .into_iter()
            .zip(acked.clone())
            .map(|((topic, qos, prefix), acked)| thread::spawn(move || publisher(port, topic, qos, prefix, acked)))
            .collect();
        let killed = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = receivers
            .drain(..)
            .map(|(mut peer, mut receiver, name)| {
                let killed = Arc::clone(&killed);
                thread::spawn(move || {
                    // Until the broker dies (the connection is lost), or long after it should have.
                    let started = Instant::now();
                    receiver.run(&mut peer, &|_| started.elapsed() > Duration::from_secs(30));
                    assert!(killed.load(Ordering::SeqCst), "{name} lost its connection before the kill");
                    (receiver, name)
                })
            })
            .collect();

        // Load until both flows have a few hundred acknowledged messages, then SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.iter().any(|a| a.lock().unwrap().len() < 300) {
            assert!(
                Instant::now() < deadline,
                "too few acknowledgements: {:?}",
                acked.each_ref().map(|a| a.lock().unwrap().len())
            );
            thread::sleep(Duration::from_millis(20));
        }
        killed.store(true, Ordering::SeqCst);
        broker.child.kill().expect("SIGKILL the broker");
        broker.child.wait().expect("reap the broker");
        for publisher in publishers {
            publisher.join().expect("publisher thread");
        }
        let mut receivers: Vec<(Receiver, &str)> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
        let acked: Vec<HashSet<String>> = acked.iter().map(|a| a.lock().unwrap().iter().cloned().collect()).collect();

        // A new broker on the same store; the subscribers come back to their sessions.
        let (broker, port) = start_broker(&config, &["--runtime", runtime]);
        for ((receiver, name), acked) in receivers.iter_mut().zip(&acked) {
            let (mut peer, present) = Peer::connect(port, name, false);
            assert!(present, "{runtime}: {name}'s session did not survive the kill");
            let deadline = Instant::now() + Duration::from_secs(20);
            receiver.run(&mut peer, &|r| Instant::now() > deadline || acked.iter().all(|p| r.received.contains(p)));
            // Anything still on its way (a duplicate) gets a moment to arrive.
            receiver.run(&mut peer, &{
                let until = Instant::now() + Duration::from_millis(300);
                move |_| Instant::now() > until
            });
            let got: HashSet<&String> = receiver.received.iter().collect();
            let missing: Vec<&String> = acked.iter().filter(|p| !got.contains(p)).collect();
            assert!(
                missing.is_empty(),
                "{runtime}: {name} never got {} of {} acknowledged messages, e.g. {:?}",
                missing.len(),
                acked.len(),
                &missing[..missing.len().min(5)]
            );
            if *name == "keep-2" {
                let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
                for payload in &receiver.received {
                    *counts.entry(payload).or_default() += 1;
                }
                let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
                assert!(twice.is_empty(), "{runtime}: QoS 2 messages delivered more than once: {twice:?}");
            }
        }
        broker.signal("TERM");
        let finished = broker.finish();
        assert!(finished.status.success(), "{runtime}: the broker did not stop cleanly: {finished:?}");
    }
}

#[test]
fn a_corrupt_store_is_an_error_or_moved_aside() {
    let store = scratch("corrupt-store");
    std::fs::create_dir_all(&store).expect("mkdir");
    let file = store.join("moat-mqtt.redb");
    std::fs::write(&file, vec![0x5a; 64 * 1024]).expect("write garbage");

    let config = broker_config(&store, "");
    let mut cmd = moat();
    cmd.args(["mqtt", "broker", "-c"]).arg(&config);
    let finished = common::Proc::spawn(cmd, None).finish();
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    assert!(
        finished.stderr.contains(&file.display().to_string())
            && finished.stderr.contains("corrupt")
            && finished.stderr.contains("on-corrupt: fresh"),
        "the error should name the store, say it is corrupt and how to go on: {}",
        finished.stderr
    );
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    assert_eq!(std::fs::read(&file).expect("the store is left alone").len(), 64 * 1024);

    let config = broker_config(&store, "  on-corrupt: fresh\n");
    let (broker, port) = start_broker(&config, &[]);
    assert!(broker.stderr.text().contains("moved to"), "{}", broker.stderr.text());
    let moved: Vec<_> = std::fs::read_dir(&store)
        .expect("list the store directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("moat-mqtt.redb.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "the damaged store is kept aside");
    // The fresh store works.
    let (_peer, present) = Peer::connect(port, "after", false);
    assert!(!present);
    broker.signal("TERM");
    assert!(broker.finish().status.success());
}
