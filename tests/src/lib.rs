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

/// A broker running on its own thread; shut down (gracefully) on drop.
pub struct TestBroker {
    /// Where its one listener listens.
    pub addr: SocketAddr,
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
        config.listeners = vec![ListenerConfig { name: "test".into(), bind: "127.0.0.1:0".into(), max_connections }];
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
                    let handle = broker.handle();
                    let (addr, stop, stats) = (broker.local_addrs()[0].1, handle.clone(), handle);
                    tx.send((
                        addr,
                        Box::new(move || stop.shutdown()) as Box<dyn Fn() + Send>,
                        Box::new(move || stats.stats()) as Box<dyn Fn() -> Stats + Send>,
                    ))
                    .expect("test alive");
                    broker.run_until(std::future::pending()).await;
                });
            }),
            Rt::Smol => std::thread::spawn(move || {
                smol::block_on(async move {
                    let broker = moat_mqtt_smol::Broker::bind(config).await.expect("bind");
                    let handle = broker.handle();
                    let (addr, stop, stats) = (broker.local_addrs()[0].1, handle.clone(), handle);
                    tx.send((
                        addr,
                        Box::new(move || stop.shutdown()) as Box<dyn Fn() + Send>,
                        Box::new(move || stats.stats()) as Box<dyn Fn() -> Stats + Send>,
                    ))
                    .expect("test alive");
                    broker.run_until(std::future::pending()).await;
                });
            }),
        };
        let (addr, stop, stats) = rx.recv_timeout(Duration::from_secs(10)).expect("broker started");
        Self { addr, stop, stats, thread: Some(thread) }
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
