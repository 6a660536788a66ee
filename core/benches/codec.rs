//! Codec benchmarks: moat-mqtt-core against rumqttc's `mqttbytes`, on the same bytes.
//!
//! Every group measures both codecs side by side (`<group>/<case>/moat` and `.../rumqttc`).
//! Before measuring, each case checks that both encoders produce the very same bytes and that
//! both decoders read them back, so the two sides do the same work.
//!
//! Decoding gets a fresh `BytesMut` holding one packet per iteration, made in untimed setup
//! (`iter_batched`), for both sides alike; the decoded packet and the emptied buffer are dropped
//! outside the timing too. Encoding appends to a reused buffer that is cleared each iteration,
//! which is how the encoder is meant to be used.
//!
//! Run with `cargo bench -p moat-mqtt-core --bench codec` (about two minutes).

use std::hint::black_box;
use std::num::NonZeroU16;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use moat_mqtt_core::codec::{
    Connect, Decoder, Packet, Properties, Property, ProtocolLevel, Publish, QoS, Subscribe, SubscriptionOptions, Will,
    encode,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};
use rumqttc::mqttbytes::v4 as r4;
use rumqttc::v5::mqttbytes::v5 as r5;

/// The maximum packet size both decoders are given.
const MAX_PACKET: usize = 1024 * 1024;

const TOPIC: &str = "sensors/house/kitchen/temperature";
const PACKET_ID: u16 = 7;
const PAYLOAD_SIZES: [(&str, usize); 3] = [("16B", 16), ("1KiB", 1024), ("64KiB", 64 * 1024)];

fn payload(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn topic_name(s: &str) -> TopicName {
    TopicName::new(s).expect("valid topic")
}

fn id(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v).expect("non-zero")
}

/// One packet in both codecs' models, and its bytes.
struct Case<T> {
    name: String,
    level: ProtocolLevel,
    ours: Packet,
    theirs: T,
    bytes: Vec<u8>,
}

/// How rumqttc reads and writes one of its packet models.
trait Theirs: Sized + PartialEq + std::fmt::Debug {
    fn read(buf: &mut BytesMut) -> Self;
    fn write(&self, out: &mut BytesMut) -> usize;
}

impl Theirs for r4::Packet {
    fn read(buf: &mut BytesMut) -> Self {
        r4::Packet::read(buf, MAX_PACKET).expect("rumqttc v4 decodes")
    }
    fn write(&self, out: &mut BytesMut) -> usize {
        r4::Packet::write(self, out, MAX_PACKET).expect("rumqttc v4 encodes")
    }
}

impl Theirs for r5::Packet {
    fn read(buf: &mut BytesMut) -> Self {
        r5::Packet::read(buf, Some(MAX_PACKET as u32)).expect("rumqttc v5 decodes")
    }
    fn write(&self, out: &mut BytesMut) -> usize {
        r5::Packet::write(self, out, Some(MAX_PACKET as u32)).expect("rumqttc v5 encodes")
    }
}

impl<T: Theirs> Case<T> {
    /// Encodes with both codecs, checks the bytes agree and both decoders read them back.
    fn new(name: impl Into<String>, level: ProtocolLevel, ours: Packet, theirs: T) -> Self {
        let name = name.into();
        let mut bytes = Vec::new();
        encode(&ours, level, &mut bytes).expect("moat encodes");
        let mut their_bytes = BytesMut::new();
        theirs.write(&mut their_bytes);
        assert_eq!(bytes, &their_bytes[..], "{name}: both encoders must produce the same bytes");
        let decoded = Decoder::new(level).with_max_packet_size(MAX_PACKET).decode(&mut BytesMut::from(&bytes[..]));
        assert_eq!(decoded, Ok(Some(ours.clone())), "{name}: moat decodes its bytes");
        assert_eq!(T::read(&mut BytesMut::from(&bytes[..])), theirs, "{name}: rumqttc decodes the bytes");
        Self { name, level, ours, theirs, bytes }
    }
}

/// Setup makes this many input buffers at a time: few for large packets to bound memory.
fn batch_size(len: usize) -> BatchSize {
    BatchSize::NumIterations(if len > 4096 { 32 } else { 512 })
}

fn bench_decode<T: Theirs>(group: &mut BenchmarkGroup<'_, WallTime>, case: &Case<T>) {
    let input = &case.bytes[..];
    group.throughput(Throughput::Bytes(input.len() as u64));
    let decoder = Decoder::new(case.level).with_max_packet_size(MAX_PACKET);
    group.bench_function(format!("{}/moat", case.name), |b| {
        b.iter_batched(
            || BytesMut::from(input),
            |mut buf| {
                let packet = decoder.decode(&mut buf).expect("valid").expect("whole");
                (packet, buf)
            },
            batch_size(input.len()),
        );
    });
    group.bench_function(format!("{}/rumqttc", case.name), |b| {
        b.iter_batched(
            || BytesMut::from(input),
            |mut buf| {
                let packet = T::read(&mut buf);
                (packet, buf)
            },
            batch_size(input.len()),
        );
    });
}

fn bench_encode<T: Theirs>(group: &mut BenchmarkGroup<'_, WallTime>, case: &Case<T>) {
    let len = case.bytes.len();
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(format!("{}/moat", case.name), |b| {
        let mut out = Vec::with_capacity(len);
        b.iter(|| {
            out.clear();
            encode(black_box(&case.ours), case.level, &mut out).expect("encodes")
        });
    });
    group.bench_function(format!("{}/rumqttc", case.name), |b| {
        let mut out = BytesMut::with_capacity(len);
        b.iter(|| {
            out.clear();
            black_box(&case.theirs).write(&mut out)
        });
    });
}

// ---------------------------------------------------------------------------------------------
// The packets

fn publish_v4(name: &str, size: usize) -> Case<r4::Packet> {
    let payload = payload(size);
    let ours = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic_name(TOPIC),
        packet_id: Some(id(PACKET_ID)),
        properties: Properties::new(),
        payload: payload.clone(),
    });
    let mut theirs = r4::Publish::from_bytes(TOPIC, rumqttc::mqttbytes::QoS::AtLeastOnce, payload);
    theirs.pkid = PACKET_ID;
    Case::new(name, ProtocolLevel::V3_1_1, ours, r4::Packet::Publish(theirs))
}

fn publish_v5(name: &str, size: usize) -> Case<r5::Packet> {
    let payload = payload(size);
    let properties = Properties::new()
        .with(Property::MessageExpiryInterval(3600))
        .with(Property::UserProperty(ByteString::from_static("unit"), ByteString::from_static("celsius")));
    let ours = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic_name(TOPIC),
        packet_id: Some(id(PACKET_ID)),
        properties,
        payload: payload.clone(),
    });
    let their_properties = r5::PublishProperties {
        message_expiry_interval: Some(3600),
        user_properties: vec![("unit".to_owned(), "celsius".to_owned())],
        ..Default::default()
    };
    let mut theirs = r5::Publish::new(TOPIC, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, payload, Some(their_properties));
    theirs.pkid = PACKET_ID;
    Case::new(name, ProtocolLevel::V5, ours, r5::Packet::Publish(theirs))
}

const CLIENT_ID: &str = "moat-bench-client-0001";
const WILL_TOPIC: &str = "clients/moat-bench-client-0001/status";
const WILL_PAYLOAD: &[u8] = b"offline";
const USERNAME: &str = "sensor-gateway";
const PASSWORD: &str = "correct horse battery staple";

fn connect_v4() -> Case<r4::Packet> {
    let ours = Packet::Connect(Connect {
        level: ProtocolLevel::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: ByteString::from_static(CLIENT_ID),
        will: Some(Will {
            topic: topic_name(WILL_TOPIC),
            payload: Bytes::from_static(WILL_PAYLOAD),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::new(),
        }),
        username: Some(ByteString::from_static(USERNAME)),
        password: Some(Bytes::from_static(PASSWORD.as_bytes())),
        properties: Properties::new(),
    });
    let theirs = r4::Connect {
        protocol: rumqttc::mqttbytes::Protocol::V4,
        keep_alive: 60,
        client_id: CLIENT_ID.to_owned(),
        clean_session: true,
        last_will: Some(r4::LastWill::new(WILL_TOPIC, WILL_PAYLOAD, rumqttc::mqttbytes::QoS::AtLeastOnce, false)),
        login: Some(r4::Login::new(USERNAME, PASSWORD)),
    };
    Case::new("3.1.1", ProtocolLevel::V3_1_1, ours, r4::Packet::Connect(theirs))
}

const FILTERS: [(&str, QoS); 3] = [
    ("sensors/+/temperature", QoS::AtLeastOnce),
    ("alerts/#", QoS::ExactlyOnce),
    ("$SYS/broker/uptime", QoS::AtMostOnce),
];

fn their_qos(qos: QoS) -> rumqttc::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::mqttbytes::QoS::ExactlyOnce,
    }
}

fn subscribe_v4() -> Case<r4::Packet> {
    let ours = Packet::Subscribe(Subscribe {
        packet_id: id(42),
        filters: FILTERS
            .iter()
            .map(|&(f, qos)| (TopicFilter::new(f).expect("valid filter"), SubscriptionOptions::qos(qos)))
            .collect(),
        properties: Properties::new(),
    });
    let mut theirs =
        r4::Subscribe::new_many(FILTERS.iter().map(|&(f, qos)| r4::SubscribeFilter::new(f.to_owned(), their_qos(qos))));
    theirs.pkid = 42;
    Case::new("3.1.1", ProtocolLevel::V3_1_1, ours, r4::Packet::Subscribe(theirs))
}

// ---------------------------------------------------------------------------------------------
// The benchmarks

/// A decode group. Its setup (a fresh input buffer per iteration) is not timed but takes real
/// time, up to several times the decoding itself, so it measures for less time.
fn decode_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_millis(2000));
    group
}

fn publish(c: &mut Criterion) {
    let v4: Vec<_> = PAYLOAD_SIZES.iter().map(|&(name, size)| publish_v4(name, size)).collect();
    let v5: Vec<_> = PAYLOAD_SIZES.iter().map(|&(name, size)| publish_v5(name, size)).collect();

    let mut group = decode_group(c, "decode_publish_qos1");
    v4.iter().for_each(|case| bench_decode(&mut group, case));
    group.finish();
    let mut group = decode_group(c, "decode_publish_qos1_v5");
    v5.iter().for_each(|case| bench_decode(&mut group, case));
    group.finish();
    let mut group = c.benchmark_group("encode_publish_qos1");
    v4.iter().for_each(|case| bench_encode(&mut group, case));
    group.finish();
    let mut group = c.benchmark_group("encode_publish_qos1_v5");
    v5.iter().for_each(|case| bench_encode(&mut group, case));
    group.finish();
}

fn connect_and_subscribe(c: &mut Criterion) {
    let connect = connect_v4();
    let subscribe = subscribe_v4();
    let mut group = decode_group(c, "decode_connect");
    bench_decode(&mut group, &connect);
    group.finish();
    let mut group = c.benchmark_group("encode_connect");
    bench_encode(&mut group, &connect);
    group.finish();
    let mut group = decode_group(c, "decode_subscribe");
    bench_decode(&mut group, &subscribe);
    group.finish();
    let mut group = c.benchmark_group("encode_subscribe");
    bench_encode(&mut group, &subscribe);
    group.finish();
}

fn config() -> Criterion {
    // 32 benchmarks, 3 to 5 s each with warm-up, untimed setup and analysis: about two minutes.
    // The default 100,000 bootstrap resamples would take longer than the measuring.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(2500))
        .sample_size(50)
        .nresamples(10_000)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = publish, connect_and_subscribe
}
criterion_main!(benches);
