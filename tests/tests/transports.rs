//! TLS and WebSocket, end to end and on both runtimes: certificates made here with rcgen; our
//! client over mqtts, ws and wss against our broker, and over mqtts against mosquitto (whose
//! Debian build here cannot open a WebSocket listener); mosquitto's clients
//! over TLS and paho over WebSocket against our broker; refusals (unknown CA, wrong name,
//! missing client certificate, WebSocket handshakes without the mqtt subprotocol) that leave
//! the broker serving.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use moat_mqtt_core::broker::{BrokerConfig, ListenerConfig, ListenerTls, ListenerWebSocket};
use moat_mqtt_core::client::options::ClientOptions;
use moat_mqtt_core::codec::{Decoder, Packet, ProtocolLevel, QoS, ReasonCode, encode};
use moat_mqtt_core::driver::{Client, ClientError};
use moat_mqtt_tests::certs::TestPki;
use moat_mqtt_tests::external::{self, MosquittoBroker, MqttVersion, Proc, TIMEOUT};
use moat_mqtt_tests::helpers::{
    Witness, block_on, broker_panics, client_connect, connect_packet, on_both_runtimes, publish_packet,
    subscribe_packet, wait_until, watch_panics,
};
use moat_mqtt_tests::{Rt, TestBroker, logs};

const TLS: &str = "tls";
const TLS_REQUIRED: &str = "tls-required";
const TLS_OTHER: &str = "tls-other";
const WS: &str = "ws";
const WSS: &str = "wss";
const WS_PATH: &str = "ws-path";

/// How long one step of a test may take on a busy machine.
const STEP: Duration = Duration::from_secs(20);

fn listener(name: &str, tls: Option<ListenerTls>, websocket: Option<ListenerWebSocket>) -> ListenerConfig {
    ListenerConfig { name: name.into(), bind: "127.0.0.1:0".into(), tls, websocket, ..ListenerConfig::default() }
}

fn tls_of(pki: &TestPki, require_certificate: bool) -> ListenerTls {
    ListenerTls {
        certfile: pki.server_cert.clone(),
        keyfile: pki.server_key.clone(),
        cafile: Some(pki.ca.clone()),
        require_certificate,
        ..ListenerTls::default()
    }
}

/// A broker with every kind of listener, and the certificates it serves.
struct Setup {
    broker: TestBroker,
    /// The CA of every listener but `tls-other`; its server certificate names localhost and
    /// 127.0.0.1.
    pki: TestPki,
    /// The CA of `tls-other`, whose certificate names only other.example.
    other: TestPki,
}

impl Setup {
    fn start(rt: Rt) -> Self {
        let pki = TestPki::new(&format!("{rt:?}"));
        let other = TestPki::for_names(&format!("{rt:?}-other"), &["other.example"]);
        let listeners = vec![
            listener("tcp", None, None),
            listener(TLS, Some(tls_of(&pki, false)), None),
            listener(TLS_REQUIRED, Some(tls_of(&pki, true)), None),
            listener(TLS_OTHER, Some(tls_of(&other, false)), None),
            listener(WS, None, Some(ListenerWebSocket::default())),
            listener(WSS, Some(tls_of(&pki, false)), Some(ListenerWebSocket::default())),
            listener(WS_PATH, None, Some(ListenerWebSocket { path: Some("/mqtt".into()) })),
        ];
        let config = BrokerConfig { listeners, ..BrokerConfig::default() };
        Self { broker: TestBroker::start_listeners(rt, config), pki, other }
    }

    fn port(&self, name: &str) -> u16 {
        self.broker.addr_of(name).port()
    }
}

/// Client options for `url` that trust `ca` and do not reconnect.
fn options(url: &str, id: &str, ca: Option<&Path>) -> ClientOptions {
    ClientOptions {
        url: url.parse().unwrap_or_else(|e| panic!("{url}: {e}")),
        client_id: Some(id.to_owned()),
        ca_file: ca.map(Path::to_path_buf),
        auto_reconnect: false,
        ..ClientOptions::default()
    }
}

/// `fut`, or a panic naming `what` after [`STEP`].
async fn within<T>(rt: Rt, what: &str, fut: impl Future<Output = T>) -> T {
    let done = match rt {
        Rt::Tokio => tokio::time::timeout(STEP, fut).await.ok(),
        Rt::Smol => {
            smol::future::or(async { Some(fut.await) }, async {
                smol::Timer::after(STEP).await;
                None
            })
            .await
        }
    };
    done.unwrap_or_else(|| panic!("{rt:?}: {what}: not done within {STEP:?}"))
}

async fn connect(rt: Rt, options: ClientOptions) -> Client {
    let url = options.url.to_string();
    within(rt, &format!("connect to {url}"), client_connect(rt, options))
        .await
        .unwrap_or_else(|e| panic!("{rt:?}: connect to {url}: {e}"))
}

async fn refused(rt: Rt, options: ClientOptions) -> String {
    let url = options.url.to_string();
    match within(rt, &format!("connect to {url}"), client_connect(rt, options)).await {
        Ok(_) => panic!("{rt:?}: {url}: connected, but must be refused"),
        Err(e) => e.to_string(),
    }
}

/// A QoS 0, 1 and 2 round trip under `topic` from `publisher` to `subscriber`.
async fn round_trip(rt: Rt, subscriber: ClientOptions, publisher: ClientOptions, topic: &str) {
    let sub = connect(rt, subscriber).await;
    let mut stream =
        within(rt, "subscribe", sub.subscription(&format!("{topic}/#"), QoS::ExactlyOnce)).await.expect("subscribed");
    let publisher = connect(rt, publisher).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let payload = format!("{topic} q{}", qos as u8);
        within(rt, "publish", publisher.publish(&format!("{topic}/{}", qos as u8), payload, qos, false))
            .await
            .unwrap_or_else(|e| panic!("{rt:?}: publish on {topic}: {e}"));
    }
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let message = within(rt, &format!("message on {topic}"), stream.next()).await.expect("a message");
        assert_eq!(message.topic.as_str(), format!("{topic}/{}", qos as u8), "{rt:?}");
        assert_eq!(message.payload, format!("{topic} q{}", qos as u8).into_bytes(), "{rt:?}");
        assert_eq!(message.qos, qos, "{rt:?}");
    }
    publisher.disconnect().await;
    sub.disconnect().await;
}

/// Waits for a broker log line containing every one of `parts`; panics naming them if none
/// comes.
fn logged(parts: &[&str]) -> String {
    let mut found = None;
    wait_until(STEP, || {
        found = logs::matching(parts).pop();
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no broker log line with {parts:?}"))
}

#[test]
fn our_client_over_mqtts_ws_and_wss_on_both_runtimes() {
    on_both_runtimes(|rt| {
        let setup = Setup::start(rt);
        // Peers that connect and never start their handshakes must not hold up accepting.
        let _silent_tls = TcpStream::connect(setup.broker.addr_of(TLS)).expect("connect");
        let _silent_ws = TcpStream::connect(setup.broker.addr_of(WS)).expect("connect");
        let ca = setup.pki.ca.clone();
        let (tls, tls_required, ws, wss, ws_path) =
            (setup.port(TLS), setup.port(TLS_REQUIRED), setup.port(WS), setup.port(WSS), setup.port(WS_PATH));
        let (client_cert, client_key, pki_dir, ca_pem) =
            (setup.pki.client_cert.clone(), setup.pki.client_key.clone(), setup.pki.dir.clone(), setup.pki.ca_pem());
        block_on(rt, async move |rt| {
            // wss (name localhost) to mqtts (IP address 127.0.0.1).
            round_trip(
                rt,
                options(&format!("wss://localhost:{wss}/"), "wss-sub", Some(&ca)),
                options(&format!("mqtts://127.0.0.1:{tls}"), "tls-pub", Some(&ca)),
                "a",
            )
            .await;
            // Plain ws on a listener with a path, with extra headers; the publisher trusts
            // the CA as PEM text and shows a client certificate to a listener that requires one.
            let mut sub = options(&format!("ws://127.0.0.1:{ws_path}/mqtt"), "ws-sub", None);
            sub.extra_headers = BTreeMap::from([("X-Moat-Test".to_owned(), "yes".to_owned())]);
            let mut publisher = options(&format!("mqtts://localhost:{tls_required}"), "cert-pub", None);
            publisher.ca_data = Some(ca_pem);
            publisher.certfile = Some(client_cert);
            publisher.keyfile = Some(client_key);
            round_trip(rt, sub, publisher, "b").await;
            // ws on a listener serving any path; the CA from a directory.
            let mut publisher = options(&format!("mqtts://localhost:{tls}"), "capath-pub", None);
            publisher.ca_path = Some(pki_dir);
            round_trip(rt, options(&format!("ws://localhost:{ws}/any/path"), "ws-any", None), publisher, "c").await;
        });
        assert!(setup.broker.is_running(), "{rt:?}");
    });
}

#[test]
fn unknown_ca_wrong_name_and_missing_client_certificate_are_refused_on_both_runtimes() {
    watch_panics();
    on_both_runtimes(|rt| {
        let setup = Setup::start(rt);
        let (tls, tls_required, tls_other, wss) =
            (setup.port(TLS), setup.port(TLS_REQUIRED), setup.port(TLS_OTHER), setup.port(WSS));
        let (ca, other_ca) = (setup.pki.ca.clone(), setup.other.ca.clone());
        block_on(rt, async move |rt| {
            // A broker whose CA the client does not trust.
            let e = refused(rt, options(&format!("mqtts://localhost:{tls}"), "unknown-ca", Some(&other_ca))).await;
            assert!(e.contains("UnknownIssuer") || e.contains("unknown issuer"), "{rt:?}: {e}");
            let e = refused(rt, options(&format!("wss://localhost:{wss}/"), "unknown-ca-ws", Some(&other_ca))).await;
            assert!(e.contains("UnknownIssuer") || e.contains("unknown issuer"), "{rt:?}: {e}");
            // A trusted certificate for another name: refused unless check_hostname is off.
            let url = format!("mqtts://127.0.0.1:{tls_other}");
            let e = refused(rt, options(&url, "wrong-name", Some(&other_ca))).await;
            assert!(e.contains("not valid for name"), "{rt:?}: {e}");
            let mut unchecked = options(&url, "unchecked-name", Some(&other_ca));
            unchecked.check_hostname = false;
            let client = connect(rt, unchecked).await;
            within(rt, "publish", client.publish("x", "y", QoS::AtLeastOnce, false)).await.expect("published");
            client.disconnect().await;
            // No client certificate where one is required.
            let e = refused(rt, options(&format!("mqtts://localhost:{tls_required}"), "no-cert", Some(&ca))).await;
            assert!(!e.is_empty(), "{rt:?}");
        });
        // The broker says why, per listener, and goes on serving.
        logged(&["listener tls: 127.0.0.1:", "TLS handshake failed"]);
        logged(&["listener tls-other: 127.0.0.1:", "TLS handshake failed"]);
        logged(&["listener tls-required: 127.0.0.1:", "TLS handshake failed"]);
        Witness::new(setup.broker.addr_of("tcp")).check();
        assert!(setup.broker.is_running(), "{rt:?}");
    });
    assert_eq!(broker_panics(), Vec::<String>::new());
}

/// `mosquitto_sub` / `mosquitto_pub` aimed at our TLS listener `addr`, with `args`.
fn mosquitto_tls(tool: &str, addr: SocketAddr, args: &[&str]) -> std::process::Command {
    let mut cmd = external::mosquitto(tool, addr, MqttVersion::V311);
    cmd.args(args);
    cmd
}

#[test]
fn mosquitto_clients_over_tls_to_our_broker_on_both_runtimes() {
    on_both_runtimes(|rt| {
        let setup = Setup::start(rt);
        let ca = setup.pki.ca.to_str().expect("utf-8 path").to_owned();
        let (cert, key) = (setup.pki.client_cert.to_str().unwrap(), setup.pki.client_key.to_str().unwrap());
        let tls = setup.broker.addr_of(TLS);
        let mut sub = Proc::spawn(mosquitto_tls(
            "mosquitto_sub",
            tls,
            &["--cafile", &ca, "-d", "-F", external::SUB_FORMAT, "-t", "tls/#", "-q", "1", "-C", "2"],
        ));
        sub.wait_line("received SUBACK");
        let publish = |addr, args: &[&str]| Proc::spawn(mosquitto_tls("mosquitto_pub", addr, args)).wait(TIMEOUT);
        publish(tls, &["--cafile", &ca, "-t", "tls/1", "-m", "over tls", "-q", "1"]).assert_success("mosquitto_pub");
        // With a client certificate, to the listener that requires one.
        let required = setup.broker.addr_of(TLS_REQUIRED);
        publish(required, &["--cafile", &ca, "--cert", cert, "--key", key, "-t", "tls/2", "-m", "with cert"])
            .assert_success("mosquitto_pub --cert");
        let got = sub.wait(TIMEOUT);
        got.assert_success("mosquitto_sub");
        let messages: Vec<(String, String)> =
            external::parse_messages(&got.stdout).into_iter().map(|m| (m.topic, m.payload)).collect();
        assert_eq!(
            messages,
            [("tls/1".to_owned(), "over tls".to_owned()), ("tls/2".to_owned(), "with cert".to_owned())],
            "{rt:?}"
        );
        // Without one it is refused, and so is a client that does not trust our CA.
        let no_cert = publish(required, &["--cafile", &ca, "-t", "tls/3", "-m", "no cert"]);
        assert!(!no_cert.status.success(), "{rt:?}: {}", no_cert.dump());
        let other_ca = setup.other.ca.to_str().unwrap().to_owned();
        let untrusted = publish(tls, &["--cafile", &other_ca, "-t", "tls/4", "-m", "untrusted"]);
        assert!(!untrusted.status.success(), "{rt:?}: {}", untrusted.dump());
        logged(&["listener tls-required: 127.0.0.1:", "TLS handshake failed"]);
        Witness::new(setup.broker.addr_of("tcp")).check();
    });
}

#[test]
fn our_client_against_mosquittos_tls_listener_on_both_runtimes() {
    let pki = TestPki::new("mosquitto");
    let other = TestPki::new("mosquitto-other");
    let tls = MosquittoBroker::start_tls(&pki.ca, &pki.server_cert, &pki.server_key);
    let tls_port = tls.addr.port();
    for rt in Rt::ALL {
        let (ca, other_ca) = (pki.ca.clone(), other.ca.clone());
        block_on(rt, async move |rt| {
            let id = |name: &str| format!("{name}-{rt:?}");
            round_trip(
                rt,
                options(&format!("mqtts://localhost:{tls_port}"), &id("m-sub"), Some(&ca)),
                options(&format!("mqtts://127.0.0.1:{tls_port}"), &id("m-pub"), Some(&ca)),
                &format!("mosq-tls-{rt:?}"),
            )
            .await;
            let e =
                refused(rt, options(&format!("mqtts://localhost:{tls_port}"), &id("m-unknown"), Some(&other_ca))).await;
            assert!(e.contains("UnknownIssuer") || e.contains("unknown issuer"), "{rt:?}: {e}");
        });
    }
}

#[test]
fn paho_over_websocket_to_our_broker_on_both_runtimes() {
    on_both_runtimes(|rt| {
        let setup = Setup::start(rt);
        let ca = setup.pki.ca.to_str().expect("utf-8 path").to_owned();
        for (listener, args) in [(WS, vec!["/"]), (WS_PATH, vec!["/mqtt"]), (WSS, vec!["/mqtt", ca.as_str()])] {
            let result = external::run_python("paho_ws.py", setup.broker.addr_of(listener), &args, TIMEOUT * 3);
            assert_eq!(result.get("received").map(String::as_str), Some("3"), "{rt:?} {listener}: {result:?}");
        }
    });
}

/// The head of the HTTP answer to a WebSocket upgrade request for `path` offering
/// `protocols` (none: no Sec-WebSocket-Protocol header), and the stream.
fn ws_upgrade(addr: SocketAddr, path: &str, protocols: Option<&str>) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(STEP)).expect("timeout");
    let protocol = protocols.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )
    .expect("send upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), stream)
}

/// A masked binary WebSocket frame (as a client must send) carrying `payload`.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x82];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | u8::try_from(n).expect("small")),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).expect("under 64 KiB").to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

fn encoded(packets: &[Packet]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for packet in packets {
        encode(packet, ProtocolLevel::V3_1_1, &mut bytes).expect("encodable");
    }
    bytes
}

/// Reads the broker's WebSocket frames into MQTT packets.
struct WsReader {
    frames: Vec<u8>,
    payload: BytesMut,
    decoder: Decoder,
}

impl WsReader {
    fn new() -> Self {
        Self { frames: Vec::new(), payload: BytesMut::new(), decoder: Decoder::new(ProtocolLevel::V3_1_1) }
    }

    fn next(&mut self, stream: &mut TcpStream) -> Packet {
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.payload).expect("valid packets") {
                return packet;
            }
            // One whole unmasked frame from the server, if buffered.
            if self.frames.len() >= 2 {
                let (len, start) = match self.frames[1] & 0x7f {
                    126 if self.frames.len() >= 4 => {
                        (usize::from(u16::from_be_bytes([self.frames[2], self.frames[3]])), 4)
                    }
                    126 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.frames.len() >= start + len {
                    let opcode = self.frames[0] & 0x0f;
                    assert_eq!(opcode, 2, "the broker sends binary frames");
                    self.payload.extend_from_slice(&self.frames[start..start + len]);
                    self.frames.drain(..start + len);
                    continue;
                }
            }
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).expect("read from the broker");
            assert!(n > 0, "the broker closed the WebSocket");
            self.frames.extend_from_slice(&buf[..n]);
        }
    }
}

#[test]
fn websocket_handshakes_and_framing_on_both_runtimes() {
    watch_panics();
    on_both_runtimes(|rt| {
        let setup = Setup::start(rt);
        let ws = setup.broker.addr_of(WS);
        // No subprotocol, or none of ours: an HTTP error, and the broker says why.
        let (head, _) = ws_upgrade(ws, "/", None);
        assert!(head.starts_with("HTTP/1.1 400"), "{rt:?}: {head}");
        let (head, _) = ws_upgrade(ws, "/", Some("chat, superchat"));
        assert!(head.starts_with("HTTP/1.1 400"), "{rt:?}: {head}");
        logged(&["listener ws: 127.0.0.1:", "refused with 400", "subprotocol \"mqtt\""]);
        // The wrong path on a listener that has one.
        let (head, _) = ws_upgrade(setup.broker.addr_of(WS_PATH), "/other", Some("mqtt"));
        assert!(head.starts_with("HTTP/1.1 404"), "{rt:?}: {head}");
        // Not HTTP at all, and not TLS at all.
        for listener in [WS, TLS, WSS] {
            let mut junk = TcpStream::connect(setup.broker.addr_of(listener)).expect("connect");
            junk.set_read_timeout(Some(STEP)).expect("timeout");
            junk.write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\r\n\r\n").expect("write");
            let mut rest = Vec::new();
            let _ = junk.read_to_end(&mut rest);
        }
        logged(&["listener tls: 127.0.0.1:", "TLS handshake failed"]);

        // An old client's mqttv3.1 is accepted and echoed.
        let (head, _) = ws_upgrade(ws, "/", Some("mqttv3.1"));
        assert!(head.starts_with("HTTP/1.1 101"), "{rt:?}: {head}");
        assert!(head.to_ascii_lowercase().contains("sec-websocket-protocol: mqttv3.1\r\n"), "{rt:?}: {head}");

        // A packet split across frames, and several packets in one frame.
        let (head, mut stream) = ws_upgrade(setup.broker.addr_of(WS_PATH), "/mqtt", Some("mqtt"));
        assert!(head.starts_with("HTTP/1.1 101"), "{rt:?}: {head}");
        assert!(head.to_ascii_lowercase().contains("sec-websocket-protocol: mqtt\r\n"), "{rt:?}: {head}");
        let connect = encoded(&[connect_packet(&format!("frames-{rt:?}"), true, 60)]);
        let (first, second) = connect.split_at(5);
        stream.write_all(&ws_frame(first)).expect("write");
        stream.write_all(&ws_frame(second)).expect("write");
        let mut reader = WsReader::new();
        assert!(matches!(reader.next(&mut stream), Packet::Connack(c) if c.reason == ReasonCode::Success), "{rt:?}");
        let both = encoded(&[
            subscribe_packet(1, &[("frames/#", QoS::AtMostOnce)]),
            publish_packet("frames/x", QoS::AtMostOnce, 0, &[7u8; 300], false),
        ]);
        stream.write_all(&ws_frame(&both)).expect("write");
        assert!(matches!(reader.next(&mut stream), Packet::Suback(_)), "{rt:?}");
        match reader.next(&mut stream) {
            Packet::Publish(p) => assert_eq!((p.topic.as_str(), &p.payload[..]), ("frames/x", &[7u8; 300][..])),
            other => panic!("{rt:?}: expected PUBLISH, got {other:?}"),
        }

        // A frame larger than max-packet-size is refused from its header: the link closes at
        // once rather than buffering the 16 MiB it announces.
        let (head, mut big) = ws_upgrade(ws, "/", Some("mqtt"));
        assert!(head.starts_with("HTTP/1.1 101"), "{rt:?}: {head}");
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(16u64 << 20).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        big.write_all(&header).expect("write");
        // Less than the CONNECT timeout (2 s), which would close it too.
        big.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
        let mut rest = Vec::new();
        match big.read_to_end(&mut rest) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("{rt:?}: the broker kept a link that announced a 16 MiB frame")
            }
            _ => {}
        }

        // Still serving, over TCP and WebSocket.
        Witness::new(setup.broker.addr_of("tcp")).check();
        let ws_port = ws.port();
        block_on(rt, async move |rt| {
            round_trip(
                rt,
                options(&format!("ws://127.0.0.1:{ws_port}/"), "after-sub", None),
                options(&format!("ws://127.0.0.1:{ws_port}/"), "after-pub", None),
                "after",
            )
            .await;
        });
        assert!(setup.broker.is_running(), "{rt:?}");
    });
    assert_eq!(broker_panics(), Vec::<String>::new());
}

#[test]
fn a_silent_connection_is_closed_at_the_listeners_handshake_timeout_on_both_runtimes() {
    watch_panics();
    on_both_runtimes(|rt| {
        let pki = TestPki::new(&format!("{rt:?}-handshake"));
        let limit = Duration::from_millis(300);
        let listeners = vec![
            ListenerConfig { handshake_timeout: limit, ..listener(TLS, Some(tls_of(&pki, false)), None) },
            ListenerConfig { handshake_timeout: limit, ..listener(WS, None, Some(ListenerWebSocket::default())) },
        ];
        let broker = TestBroker::start_listeners(rt, BrokerConfig { listeners, ..BrokerConfig::default() });
        for (name, scheme) in [(TLS, "mqtts"), (WS, "ws")] {
            // Connects and says nothing: closed after 0.3 s, far sooner than the default 10 s.
            let started = std::time::Instant::now();
            let mut silent = TcpStream::connect(broker.addr_of(name)).expect("connect");
            silent.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            let mut buf = [0; 64];
            match silent.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                other => panic!("{rt:?} {name}: expected the broker to close, got {other:?}"),
            }
            let waited = started.elapsed();
            assert!(waited >= limit && waited < Duration::from_secs(5), "{rt:?} {name}: closed after {waited:?}");
            logged(&[&format!("listener {name}: 127.0.0.1:"), &format!("no {scheme} handshake within 300ms; closed")]);
        }
        assert!(broker.is_running(), "{rt:?}");
    });
    assert_eq!(broker_panics(), Vec::<String>::new());
}

#[test]
fn unusable_tls_files_are_named_when_binding() {
    let pki = TestPki::new("files");
    let missing = PathBuf::from("/nonexistent/moat/cert.pem");
    let cases: [(ListenerTls, &str); 4] = [
        (
            ListenerTls { certfile: missing.clone(), ..tls_of(&pki, false) },
            "listener secure: cannot read certfile /nonexistent/moat/cert.pem: No such file",
        ),
        (ListenerTls { keyfile: pki.ca.clone(), ..tls_of(&pki, false) }, "listener secure: cannot read keyfile"),
        (
            ListenerTls { cafile: Some(pki.server_key.clone()), ..tls_of(&pki, false) },
            "listener secure: cannot read cafile",
        ),
        (
            ListenerTls { cafile: None, require_certificate: true, ..tls_of(&pki, false) },
            "listener secure: require-certificate needs",
        ),
    ];
    for (tls, expected) in cases {
        let config = listener("secure", Some(tls), None);
        let e = moat_mqtt_core::driver::ListenerTransport::new(&config, 1 << 20).expect_err("must fail");
        assert!(e.to_string().starts_with(expected), "{e}\nexpected: {expected}");
        for rt in Rt::ALL {
            let config = BrokerConfig { listeners: vec![config.clone()], ..BrokerConfig::default() };
            let e = match rt {
                Rt::Tokio => tokio::runtime::Runtime::new()
                    .expect("tokio")
                    .block_on(moat_mqtt_tokio::Broker::bind(config))
                    .map(drop),
                Rt::Smol => smol::block_on(moat_mqtt_smol::Broker::bind(config)).map(drop),
            }
            .expect_err("bind must fail");
            assert!(e.to_string().starts_with(expected), "{rt:?}: {e}");
        }
    }
    // The client names its files too.
    let mut client = options("mqtts://localhost:1", "files", Some(&missing));
    for rt in Rt::ALL {
        let opts = client.clone();
        block_on(rt, async move |rt| {
            let e = client_connect(rt, opts).await.expect_err("must fail");
            assert!(matches!(e, ClientError::Unreachable { .. }), "{e}");
            assert!(e.to_string().contains("client: cannot read cafile /nonexistent/moat/cert.pem"), "{e}");
        });
    }
    client.ca_file = Some(pki.ca.clone());
    client.certfile = Some(pki.client_cert.clone());
    block_on(Rt::Smol, async move |rt| {
        let e = client_connect(rt, client).await.expect_err("must fail");
        assert!(e.to_string().contains("certfile is set but keyfile is not"), "{e}");
    });
}
