//! Hostile and broken input, each on both runtimes: the offending connection is closed, the
//! broker says why (naming the peer), other clients go on being served, and nothing panics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use moat_mqtt_core::broker::BrokerConfig;
use moat_mqtt_core::codec::{Connack, Packet, QoS, ReasonCode};
use moat_mqtt_tests::helpers::{
    Witness, broker_panics, close_reason, connect_packet, mqtt_string, on_both_runtimes, raw_packet, wait_until,
    watch_panics,
};
use moat_mqtt_tests::{RawClient, Rt, TestBroker};

/// A 3.1.1 CONNECT, clean session, keep-alive 10 s, client id "id".
const CONNECT: &[u8] = &[0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 2, b'i', b'd'];

fn config() -> BrokerConfig {
    let mut config = BrokerConfig::default();
    config.router.sys_interval = None;
    config.link.connect_timeout = Duration::from_secs(1);
    config
}

/// What every bad-input test ends with: the broker is alive, did not panic, still routes for
/// the witness, and counts only the clients that are really there.
fn assert_still_serving(rt: Rt, broker: &TestBroker, witness: &mut Witness) {
    witness.check();
    assert!(broker.is_running(), "{rt:?}: the broker's thread ended");
    assert_eq!(broker_panics(), Vec::<String>::new(), "{rt:?}: a broker thread panicked");
    // The witness's own PUBACK may still be on its way.
    assert!(
        wait_until(Duration::from_secs(2), || {
            let stats = broker.stats();
            (stats.clients_connected, stats.inflight, stats.stored) == (1, 0, 0)
        }),
        "{rt:?}: {:?}",
        broker.stats()
    );
}

/// Opens a connection (after a successful CONNECT if `connect_first`), sends `bytes`, and checks
/// the broker closes it within `within` and logs a reason containing `reason`.
fn closes(rt: Rt, broker: &TestBroker, connect_first: bool, bytes: &[u8], within: Duration, reason: &str) {
    let mut bad = RawClient::open(broker.addr);
    let addr = bad.local_addr();
    if connect_first {
        bad.send(&connect_packet(&format!("bad-{}", addr.port()), true, 60));
        assert!(matches!(bad.recv(), Packet::Connack(Connack { reason: ReasonCode::Success, .. })), "{rt:?}");
    }
    bad.send_bytes(bytes);
    assert!(bad.is_closed_within(within), "{rt:?}: {bytes:02x?} did not close the link within {within:?}");
    let line = close_reason(addr, reason);
    assert!(line.starts_with("WARN"), "{rt:?}: {line}");
}

/// Runs `bad` against a fresh broker on each runtime, between a witness's round trips.
fn with_broker(bad: impl Fn(Rt, &TestBroker)) {
    watch_panics();
    for rt in Rt::ALL {
        let broker = TestBroker::start_with(rt, config());
        let mut witness = Witness::new(broker.addr);
        witness.check();
        bad(rt, &broker);
        assert_still_serving(rt, &broker, &mut witness);
    }
}

const QUICK: Duration = Duration::from_millis(500);

#[test]
fn reserved_packet_types_after_connect() {
    with_broker(|rt, broker| {
        closes(rt, broker, true, &[0x00, 0x00], QUICK, "packet type 0 is reserved");
        // Type 15 is AUTH in MQTT 5 and reserved before.
        closes(rt, broker, true, &[0xF0, 0x00], QUICK, "AUTH does not exist in protocol level 4");
    });
}

#[test]
fn garbage_before_connect() {
    with_broker(|rt, broker| {
        closes(rt, broker, false, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", QUICK, "reserved fixed-header flags");
        closes(rt, broker, false, &[0x00, 0x00], QUICK, "packet type 0 is reserved");
        // A well-formed packet, but not CONNECT.
        closes(rt, broker, false, &[0xC0, 0x00], QUICK, "the first packet must be CONNECT, got PINGREQ");
    });
}

#[test]
fn a_huge_remaining_length_is_refused_on_the_header() {
    with_broker(|rt, broker| {
        // 2 MiB, then 256 MiB - 1 (the most MQTT allows): over the 1 MiB limit, refused at once
        // without waiting for the body.
        for bytes in [&[0x30, 0x80, 0x80, 0x80, 0x01][..], &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]] {
            closes(rt, broker, true, bytes, QUICK, "exceeds the maximum packet size");
            // Before CONNECT as well.
            closes(rt, broker, false, &[&[0x10][..], &bytes[1..]].concat(), QUICK, "exceeds the maximum packet size");
        }
    });
}

#[test]
fn the_packet_size_limit_is_exact() {
    watch_panics();
    for rt in Rt::ALL {
        let mut config = config();
        config.link.max_packet_size = 1000;
        let broker = TestBroker::start_with(rt, config);
        let mut witness = Witness::new(broker.addr);
        let mut subscriber = RawClient::connected(broker.addr, "limit-sub", true);
        subscriber.subscribe(1, &[("t", QoS::AtMostOnce)]);
        // 1000 bytes: 0x30, a 2-byte remaining length of 997, topic "t" (3 bytes), 994 bytes.
        let packet = |size: usize| {
            let remaining = size - 3;
            let mut bytes = vec![0x30, 0x80 | (remaining & 0x7F) as u8, (remaining >> 7) as u8];
            bytes.extend_from_slice(&mqtt_string(b"t"));
            bytes.resize(size, b'x');
            bytes
        };
        let mut publisher = RawClient::connected(broker.addr, "limit-pub", true);
        let addr = publisher.local_addr();
        publisher.send_bytes(&packet(1000));
        let got = subscriber.expect_publish();
        assert_eq!(got.payload.len(), 994, "{rt:?}: a packet of exactly the limit passes");
        publisher.send_bytes(&packet(1001));
        assert!(publisher.is_closed_within(QUICK), "{rt:?}");
        close_reason(addr, "packet of 1001 bytes exceeds the maximum packet size of 1000 bytes");
        drop(subscriber);
        assert_still_serving(rt, &broker, &mut witness);
    }
}

#[test]
fn a_five_byte_remaining_length() {
    with_broker(|rt, broker| {
        let bytes = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        closes(rt, broker, true, &bytes, QUICK, "remaining length) is longer than 4 bytes");
    });
}

#[test]
fn half_a_connect_then_silence_is_closed_by_the_connect_timeout() {
    watch_panics();
    on_both_runtimes(|rt| {
        let broker = TestBroker::start_with(rt, config());
        let mut witness = Witness::new(broker.addr);
        let mut bad = RawClient::open(broker.addr);
        let addr = bad.local_addr();
        bad.send_bytes(&CONNECT[..7]);
        let start = Instant::now();
        assert!(!bad.is_closed_within(Duration::from_millis(600)), "{rt:?}: closed before the timeout");
        assert!(bad.is_closed_within(Duration::from_secs(2)), "{rt:?}: still open");
        assert!(start.elapsed() >= Duration::from_millis(800), "{rt:?}: closed after {:?}", start.elapsed());
        close_reason(addr, "no CONNECT within 1s");
        assert_still_serving(rt, &broker, &mut witness);
    });
}

#[test]
fn a_wildcard_in_a_publish_topic() {
    with_broker(|rt, broker| {
        for (topic, wildcard) in [(&b"a/#"[..], "'#'"), (b"+", "'+'"), (b"a/b+", "'+'")] {
            let body = [mqtt_string(topic), b"payload".to_vec()].concat();
            closes(rt, broker, true, &raw_packet(0x30, &body), QUICK, &format!("contains the wildcard {wildcard}"));
        }
    });
}

#[test]
fn an_invalid_filter_in_subscribe() {
    with_broker(|rt, broker| {
        for filter in [&b"a/+b"[..], b"#/a", b"a#"] {
            let body = [&[0, 1][..], &mqtt_string(filter), &[0x00]].concat();
            closes(rt, broker, true, &raw_packet(0x82, &body), QUICK, "invalid topic filter");
        }
        // Empty: no filter at all.
        closes(rt, broker, true, &raw_packet(0x82, &[0, 1]), QUICK, "SUBSCRIBE holds no topic filter");
    });
}

#[test]
fn qos_3_in_a_publish_header() {
    with_broker(|rt, broker| {
        let body = [&mqtt_string(b"t")[..], &[0, 1], b"x"].concat();
        closes(rt, broker, true, &raw_packet(0x36, &body), QUICK, "QoS 3 does not exist");
    });
}

#[test]
fn invalid_utf8_in_a_topic() {
    with_broker(|rt, broker| {
        for topic in [&[0xC3, 0x28][..], b"a/\xFF", b"\xED\xA0\x80"] {
            let body = [mqtt_string(topic), b"x".to_vec()].concat();
            closes(rt, broker, true, &raw_packet(0x30, &body), QUICK, "not valid UTF-8");
        }
        closes(rt, broker, true, &raw_packet(0x30, &[&mqtt_string(b"a\0b")[..], b"x"].concat()), QUICK, "U+0000");
    });
}

/// A small deterministic generator of junk (xorshift).
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// Sends junk and reports whether (and how soon) the broker closed the connection.
fn junk_connection(addr: SocketAddr, seed: u64, start: &Barrier) -> (SocketAddr, Option<Duration>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let local = stream.local_addr().expect("local addr");
    stream.set_read_timeout(Some(Duration::from_secs(4))).expect("timeout");
    let bytes = junk(seed, 1 + (seed as usize * 37) % 300);
    start.wait();
    let sent = Instant::now();
    // The broker may close before all of it is written.
    let _ = stream.write_all(&bytes);
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (local, Some(sent.elapsed())),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (local, None);
            }
            Err(_) => return (local, Some(sent.elapsed())),
        }
    }
}

#[test]
fn two_hundred_junk_connections_at_once() {
    const JUNK: usize = 200;
    with_broker(|rt, broker| {
        let start = Arc::new(Barrier::new(JUNK));
        let seed_base = if rt == Rt::Tokio { 1 } else { 1_000 };
        let threads: Vec<_> = (0..JUNK)
            .map(|i| {
                let (addr, start) = (broker.addr, Arc::clone(&start));
                std::thread::Builder::new()
                    .name(format!("test-junk-{i}"))
                    .spawn(move || junk_connection(addr, seed_base + i as u64, &start))
                    .expect("spawn")
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().expect("junk thread")).collect();
        let open: Vec<_> = results.iter().filter(|(_, closed)| closed.is_none()).collect();
        assert!(open.is_empty(), "{rt:?}: {} junk connections still open: {open:?}", open.len());
        // Each is logged with its reason; junk that looked like the start of a packet waits for
        // the connect timeout, everything else is refused at once.
        for (local, _) in &results {
            close_reason(*local, "");
        }
        let slowest = results.iter().filter_map(|(_, closed)| *closed).max().unwrap_or_default();
        assert!(slowest < Duration::from_secs(3), "{rt:?}: slowest close after {slowest:?}");

        // A normal client is served afterwards.
        let mut newcomer = Witness::new(broker.addr);
        newcomer.check();
        drop(newcomer);
        let stats = broker.stats();
        assert_eq!(stats.clients_total, 2, "{rt:?}: only the two witnesses connected: {stats:?}");
        assert_eq!(stats.publish_received, 2, "{rt:?}: {stats:?}");
    });
}
