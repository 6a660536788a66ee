//! Shared helpers for the end-to-end tests in `tests/tests/`.
//!
//! Each test starts a broker on 127.0.0.1 (port 0) on its own thread, on either runtime
//! ([`Rt`]), and talks to it with plain blocking sockets, so one test body covers both
//! runtimes: `for rt in Rt::ALL { ... }`.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use moat_mqtt_core::broker::{BrokerConfig, ListenerConfig, Stats};
use moat_mqtt_core::codec::{Decoder, Packet, ProtocolLevel, encode};

pub mod certs;
pub mod logs;

/// The async runtime a broker runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// `moat-mqtt-tokio`.
    Tokio,
    /// `moat-mqtt-smol`.
    Smol,
}

impl Rt {
    /// Both runtimes, for `for rt in Rt::ALL`.
    pub const ALL: [Rt; 2] = [Rt::Tokio, Rt::Smol];
}

/// What a broker's thread hands back once it listens: its address and how to reach it.
struct Started {
    addrs: Vec<(String, SocketAddr)>,
    stop: Box<dyn Fn() + Send>,
    stats: Box<dyn Fn() -> Stats + Send>,
}

impl Started {
    fn of<R: moat_mqtt_core::driver::Runtime>(
        addrs: Vec<(String, SocketAddr)>,
        handle: moat_mqtt_core::driver::BrokerCore<R>,
    ) -> Self {
        let stats = handle.clone();
        Self { addrs, stop: Box::new(move || handle.shutdown()), stats: Box::new(move || stats.stats()) }
    }
}

/// A broker running on its own thread; shut down (gracefully) on drop.
pub struct TestBroker {
    /// Where its (first) listener listens.
    pub addr: SocketAddr,
    /// Every listener's name and address, in the order configured.
    pub addrs: Vec<(String, SocketAddr)>,
    stop: Box<dyn Fn() + Send>,
    stats: Box<dyn Fn() -> Stats + Send>,
    thread: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// Starts a broker with the defaults and one listener on 127.0.0.1, port 0.
    pub fn start(rt: Rt) -> Self {
        Self::start_with(rt, BrokerConfig::default())
    }

    /// Starts a broker with `config`, its listeners replaced by one on 127.0.0.1, port 0.
    pub fn start_with(rt: Rt, mut config: BrokerConfig) -> Self {
        let max_connections = config.listeners.first().and_then(|l| l.max_connections);
        config.listeners = vec![ListenerConfig {
            name: "test".into(),
            bind: "127.0.0.1:0".into(),
            max_connections,
            ..ListenerConfig::default()
        }];
        Self::start_listeners(rt, config)
    }

    /// Starts a broker with `config` as it is, listeners included (bind them to port 0);
    /// panics if it cannot bind.
    pub fn start_listeners(rt: Rt, config: BrokerConfig) -> Self {
        logs::install();
        let (tx, rx) = mpsc::channel();
        let thread = match rt {
            Rt::Tokio => std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let broker = moat_mqtt_tokio::Broker::bind(config).await.expect("bind");
                    tx.send(Started::of(broker.local_addrs(), broker.handle())).expect("test alive");
                    broker.run_until(std::future::pending()).await;
                });
            }),
            Rt::Smol => std::thread::spawn(move || {
                smol::block_on(async move {
                    let broker = moat_mqtt_smol::Broker::bind(config).await.expect("bind");
                    tx.send(Started::of(broker.local_addrs(), broker.handle())).expect("test alive");
                    broker.run_until(std::future::pending()).await;
                });
            }),
        };
        let Started { addrs, stop, stats } = rx.recv_timeout(Duration::from_secs(10)).expect("broker started");
        Self { addr: addrs[0].1, addrs, stop, stats, thread: Some(thread) }
    }

    /// The address of the listener named `name`.
    pub fn addr_of(&self, name: &str) -> SocketAddr {
        self.addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a).unwrap_or_else(|| panic!("no listener {name}"))
    }

    /// The broker's counters now.
    pub fn stats(&self) -> Stats {
        (self.stats)()
    }

    /// Shuts the broker down and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        (self.stop)();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A client made of a blocking socket and the codec: says exactly what a test tells it to.
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
    decoder: Decoder,
    level: ProtocolLevel,
    inbox: BytesMut,
}

impl RawClient {
    /// Connects the socket (no MQTT yet); reads time out after 5 s.
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the broker");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self::with_level(stream, ProtocolLevel::V3_1_1)
    }

    fn with_level(stream: TcpStream, level: ProtocolLevel) -> Self {
        Self { stream, decoder: Decoder::new(level), level, inbox: BytesMut::new() }
    }

    /// The local address, as the broker's log lines name this client.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    /// Sends one packet at 3.1.1 (or the level set with [`RawClient::set_level`]).
    pub fn send(&mut self, packet: &Packet) {
        let mut bytes = Vec::new();
        encode(packet, self.level, &mut bytes).expect("encodable test packet");
        self.send_bytes(&bytes);
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the broker");
    }

    /// Sets the protocol level packets are encoded and decoded at.
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.level = level;
        self.decoder.set_level(level);
    }

    /// The next packet, or an error if the broker closed the connection or sent nothing in
    /// `timeout`.
    pub fn recv_within(&mut self, timeout: Duration) -> io::Result<Packet> {
        self.stream.set_read_timeout(Some(timeout))?;
        loop {
            match self.decoder.decode(&mut self.inbox) {
                Ok(Some(packet)) => return Ok(packet),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.inbox.extend_from_slice(&buf[..n]);
        }
    }

    /// The next packet; panics after 5 s of silence or if the connection closes.
    pub fn recv(&mut self) -> Packet {
        self.recv_within(Duration::from_secs(5)).expect("a packet from the broker")
    }

    /// Whether the broker closes the connection within `timeout` (packets before the close are
    /// skipped).
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.recv_within(left) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return false,
                Err(_) => return true,
            }
        }
    }
}

/// Helpers for the protocol-rule and bad-input tests: packets, client steps, a witness client,
/// panic watching, and running a body on both runtimes at once.
pub mod helpers {
    use std::net::SocketAddr;
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::{Duration, Instant};

    use moat_mqtt_core::codec::{
        Ack, Connack, Connect, Disconnect, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, ReasonCode,
        Subscribe, SubscriptionOptions, Will,
    };
    use moat_mqtt_core::topic::{TopicFilter, TopicName};

    use super::{RawClient, Rt, TestBroker, logs};

    /// A packet identifier; panics on 0.
    pub fn pid(n: u16) -> PacketId {
        PacketId::new(n).expect("packet id 0")
    }

    /// A 3.1.1 CONNECT.
    pub fn connect_packet(client_id: &str, clean: bool, keep_alive: u16) -> Packet {
        Packet::Connect(Connect {
            level: ProtocolLevel::V3_1_1,
            clean_start: clean,
            keep_alive,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        })
    }

    /// A 3.1.1 CONNECT with a QoS 0 will on `will_topic`.
    pub fn connect_with_will(client_id: &str, keep_alive: u16, will_topic: &str, will_payload: &str) -> Packet {
        let Packet::Connect(mut connect) = connect_packet(client_id, true, keep_alive) else { unreachable!() };
        connect.will = Some(Will {
            topic: TopicName::new(will_topic).expect("valid will topic"),
            payload: will_payload.to_owned().into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        });
        Packet::Connect(connect)
    }

    /// A PUBLISH; `packet_id` is ignored at QoS 0.
    pub fn publish_packet(topic: &str, qos: QoS, packet_id: u16, payload: &[u8], retain: bool) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: TopicName::new(topic).expect("valid topic"),
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(packet_id)),
            properties: Properties::new(),
            payload: bytes::Bytes::copy_from_slice(payload),
        })
    }

    /// A SUBSCRIBE for `filters`.
    pub fn subscribe_packet(packet_id: u16, filters: &[(&str, QoS)]) -> Packet {
        Packet::Subscribe(Subscribe {
            packet_id: pid(packet_id),
            filters: filters
                .iter()
                .map(|(f, qos)| (TopicFilter::new(*f).expect("valid filter"), SubscriptionOptions::qos(*qos)))
                .collect(),
            properties: Properties::new(),
        })
    }

    /// Encodes a UTF-8 string field (length prefix, then the bytes) by hand.
    pub fn mqtt_string(bytes: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(bytes.len()).expect("short string").to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// A whole packet by hand: first byte, remaining length (one byte: `body` under 128 bytes),
    /// body.
    pub fn raw_packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first, u8::try_from(body.len()).expect("body under 128 bytes")];
        assert!(body.len() < 128, "body under 128 bytes");
        out.extend_from_slice(body);
        out
    }

    impl RawClient {
        /// Opens a socket, sends a 3.1.1 CONNECT (keep-alive 60 s) and returns the CONNACK.
        pub fn connect(addr: SocketAddr, client_id: &str, clean: bool) -> (Self, Connack) {
            let mut client = Self::open(addr);
            client.send(&connect_packet(client_id, clean, 60));
            match client.recv() {
                Packet::Connack(connack) => (client, connack),
                other => panic!("{client_id}: expected CONNACK, got {other:?}"),
            }
        }

        /// [`RawClient::connect`] that insists on CONNACK 0.
        pub fn connected(addr: SocketAddr, client_id: &str, clean: bool) -> Self {
            let (client, connack) = Self::connect(addr, client_id, clean);
            assert_eq!(connack.reason, ReasonCode::Success, "{client_id}: CONNACK {connack:?}");
            client
        }

        /// Subscribes and returns the SUBACK's return codes.
        pub fn subscribe(&mut self, packet_id: u16, filters: &[(&str, QoS)]) -> Vec<ReasonCode> {
            self.send(&subscribe_packet(packet_id, filters));
            match self.recv() {
                Packet::Suback(suback) => {
                    assert_eq!(suback.packet_id, pid(packet_id));
                    suback.reasons
                }
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }

        /// Publishes and completes the publisher's side of the QoS handshake. The client must
        /// not receive other packets meanwhile (it is not subscribed to what it publishes).
        pub fn publish(&mut self, topic: &str, qos: QoS, packet_id: u16, payload: &[u8], retain: bool) {
            self.send(&publish_packet(topic, qos, packet_id, payload, retain));
            match qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => assert_eq!(self.recv(), Packet::Puback(Ack::new(pid(packet_id)))),
                QoS::ExactlyOnce => {
                    assert_eq!(self.recv(), Packet::Pubrec(Ack::new(pid(packet_id))));
                    self.send(&Packet::Pubrel(Ack::new(pid(packet_id))));
                    assert_eq!(self.recv(), Packet::Pubcomp(Ack::new(pid(packet_id))));
                }
            }
        }

        /// The next packet, which must be a PUBLISH.
        pub fn expect_publish(&mut self) -> Publish {
            match self.recv() {
                Packet::Publish(publish) => publish,
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }

        /// Completes the receiver's side of the QoS handshake of `publish`.
        pub fn ack(&mut self, publish: &Publish) {
            let Some(id) = publish.packet_id else { return };
            match publish.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => self.send(&Packet::Puback(Ack::new(id))),
                QoS::ExactlyOnce => {
                    self.send(&Packet::Pubrec(Ack::new(id)));
                    assert_eq!(self.recv(), Packet::Pubrel(Ack::new(id)));
                    self.send(&Packet::Pubcomp(Ack::new(id)));
                }
            }
        }

        /// The next PUBLISH, acknowledged.
        pub fn receive(&mut self) -> Publish {
            let publish = self.expect_publish();
            self.ack(&publish);
            publish
        }

        /// The packet received within `timeout`, if any (a closed connection counts as none).
        pub fn recv_nothing_within(&mut self, timeout: Duration) -> Option<Packet> {
            self.recv_within(timeout).ok()
        }

        /// Sends DISCONNECT and drops the socket.
        pub fn disconnect(mut self) {
            self.send(&Packet::Disconnect(Disconnect::normal()));
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
        }
    }

    /// A connected client that proves the broker still routes: it publishes to a topic of its
    /// own and must get the message back.
    pub struct Witness {
        client: RawClient,
        topic: String,
        next_id: u16,
    }

    impl Witness {
        /// Connects a client named `witness-<port>` subscribed (QoS 1) to its own topic.
        pub fn new(addr: SocketAddr) -> Self {
            let mut client = RawClient::open(addr);
            let name = format!("witness-{}", client.local_addr().port());
            client.send(&connect_packet(&name, true, 0));
            assert!(matches!(client.recv(), Packet::Connack(Connack { reason: ReasonCode::Success, .. })));
            let topic = format!("witness/{name}");
            assert_eq!(client.subscribe(1, &[(&topic, QoS::AtLeastOnce)]), [ReasonCode::GrantedQoS1]);
            Self { client, topic, next_id: 1 }
        }

        /// One QoS 1 round trip through the broker; panics if it does not complete.
        pub fn check(&mut self) {
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let payload = format!("ping {}", self.next_id);
            self.client.send(&publish_packet(&self.topic, QoS::AtLeastOnce, self.next_id, payload.as_bytes(), false));
            let (mut acked, mut received) = (false, false);
            while !(acked && received) {
                match self.client.recv() {
                    Packet::Puback(ack) if ack.packet_id == pid(self.next_id) => acked = true,
                    Packet::Publish(publish) => {
                        assert_eq!(&publish.payload[..], payload.as_bytes());
                        self.client.ack(&publish);
                        received = true;
                    }
                    other => panic!("witness: unexpected {other:?}"),
                }
            }
        }
    }

    impl TestBroker {
        /// Whether the broker's thread is still running (it did not panic or stop).
        pub fn is_running(&self) -> bool {
            self.thread.as_ref().is_some_and(|t| !t.is_finished())
        }
    }

    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

    /// Records every panic (the default hook still prints it), once per process.
    pub fn watch_panics() {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let thread = std::thread::current().name().unwrap_or("<unnamed>").to_owned();
                PANICS
                    .get_or_init(Mutex::default)
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("{thread}: {info}"));
                previous(info);
            }));
        });
    }

    /// Panics recorded on the brokers' threads (tokio workers, smol executor threads, the
    /// unnamed thread a [`TestBroker`] runs on). Test threads and named helper threads are
    /// not counted.
    pub fn broker_panics() -> Vec<String> {
        let panics = PANICS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
        panics
            .iter()
            .filter(|p| p.starts_with("tokio") || p.starts_with("moat-smol") || p.starts_with("<unnamed>"))
            .cloned()
            .collect()
    }

    /// Runs `body` for each runtime, both at once on threads of their own (for tests that
    /// mostly wait); a panic in either fails the caller.
    pub fn on_both_runtimes(body: impl Fn(Rt) + Sync) {
        std::thread::scope(|scope| {
            let body = &body;
            let handles: Vec<_> = Rt::ALL
                .into_iter()
                .map(|rt| {
                    std::thread::Builder::new()
                        .name(format!("test-{rt:?}"))
                        .spawn_scoped(scope, move || body(rt))
                        .expect("spawn")
                })
                .collect();
            let failed: Vec<_> =
                handles.into_iter().zip(Rt::ALL).filter_map(|(h, rt)| h.join().is_err().then_some(rt)).collect();
            assert!(failed.is_empty(), "failed on {failed:?}");
        });
    }

    /// Runs `body` to completion on runtime `rt` (a fresh 2-thread tokio runtime, or
    /// `smol::block_on`), for tests that drive our async client.
    pub fn block_on(rt: Rt, body: impl AsyncFnOnce(Rt) + Send + 'static) {
        match rt {
            Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio")
                .block_on(body(rt)),
            Rt::Smol => smol::block_on(body(rt)),
        }
    }

    /// Connects our async client with `options` on runtime `rt`.
    pub async fn client_connect(
        rt: Rt,
        options: moat_mqtt_core::client::options::ClientOptions,
    ) -> Result<moat_mqtt_core::driver::Client, moat_mqtt_core::driver::ClientError> {
        match rt {
            Rt::Tokio => moat_mqtt_tokio::connect(options).await,
            Rt::Smol => moat_mqtt_smol::connect(options).await,
        }
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
    pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to 3 s for the broker's line saying the connection from `addr` closed with a
    /// reason containing `reason`, and returns it; panics, showing what was logged about
    /// `addr`, if none comes.
    pub fn close_reason(addr: SocketAddr, reason: &str) -> String {
        let opened = format!(": connection from {addr} via test");
        let mut found = None;
        wait_until(Duration::from_secs(3), || {
            // Two brokers' connections can share a client port (the kernel reuses a local port
            // towards a different remote address), so every link opened from `addr` is checked.
            found = logs::matching(&[&opened]).into_iter().rev().find_map(|line| {
                // "INFO #12: connection from ...": later lines about the link carry only "#12".
                let id = line.split_whitespace().nth(1)?.trim_end_matches(':').to_owned();
                logs::matching(&[&format!("{id}: closed: "), reason]).pop()
            });
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!("no close line for {addr} with {reason:?}; lines: {:#?}", logs::matching(&[&addr.to_string()]))
        })
    }
}
pub mod external;
