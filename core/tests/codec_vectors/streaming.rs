//! The decoder as a stream reader: several packets in one buffer, the same bytes one at a time,
//! and decoded payloads that share the received buffer's memory.

use std::ops::Range;

use bytes::BytesMut;
use moat_mqtt_core::codec::{
    Ack, Connect, Decoder, Disconnect, Packet, Properties, Property, Publish, QoS, Subscribe, SubscriptionOptions,
};

use crate::{V4, V5, b, cat, filter, pid, s, topic};

/// Six 3.1.1 packets, each as its bytes and its value.
fn session() -> Vec<(Vec<u8>, Packet)> {
    vec![
        (
            vec![0x10, 12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00],
            Packet::Connect(Connect {
                level: V4,
                clean_start: true,
                keep_alive: 60,
                client_id: s(""),
                will: None,
                username: None,
                password: None,
                properties: Properties::new(),
            }),
        ),
        (
            cat(&[&[0x32, 9, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A], b"hi"]),
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: topic("a/b"),
                packet_id: Some(pid(10)),
                properties: Properties::new(),
                payload: b(b"hi"),
            }),
        ),
        (vec![0xC0, 0x00], Packet::Pingreq),
        (
            vec![0x82, 0x08, 0x00, 0x0B, 0x00, 0x03, b'a', b'/', b'#', 0x02],
            Packet::Subscribe(Subscribe {
                packet_id: pid(11),
                filters: vec![(filter("a/#"), SubscriptionOptions::qos(QoS::ExactlyOnce))],
                properties: Properties::new(),
            }),
        ),
        (vec![0x40, 0x02, 0x00, 0x0A], Packet::Puback(Ack::new(pid(10)))),
        (vec![0xE0, 0x00], Packet::Disconnect(Disconnect::normal())),
    ]
}

#[test]
fn several_packets_from_one_buffer() {
    let session = session();
    let all: Vec<u8> = session.iter().flat_map(|(bytes, _)| bytes.clone()).collect();
    let mut buf = BytesMut::from(&all[..]);
    let decoder = Decoder::new(V4);
    let mut got = Vec::new();
    while let Some(packet) = decoder.decode(&mut buf).expect("valid stream") {
        got.push(packet);
    }
    let want: Vec<Packet> = session.into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, want);
    assert!(buf.is_empty());
    assert_eq!(decoder.decode(&mut buf), Ok(None), "an empty buffer needs more");
}

/// Fed one byte at a time, the decoder answers `Ok(None)` until a packet is whole, leaves the
/// partial bytes in the buffer, and yields each packet exactly when its last byte arrives.
#[test]
fn one_byte_at_a_time() {
    let session = session();
    let all: Vec<u8> = session.iter().flat_map(|(bytes, _)| bytes.clone()).collect();
    let mut ends = Vec::new();
    let mut end = 0;
    for (bytes, _) in &session {
        end += bytes.len();
        ends.push(end);
    }

    let decoder = Decoder::new(V4);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut consumed = 0;
    for (fed, byte) in all.iter().enumerate().map(|(i, byte)| (i + 1, byte)) {
        buf.extend_from_slice(&[*byte]);
        match decoder.decode(&mut buf).expect("valid stream") {
            Some(packet) => {
                assert!(ends.contains(&fed), "a packet appeared after {fed} bytes, inside a packet");
                got.push(packet);
                consumed = fed;
                assert!(buf.is_empty(), "one packet at a time, nothing past it yet");
            }
            None => {
                assert!(!ends.contains(&fed), "no packet after {fed} bytes, at the end of one");
                assert_eq!(&buf[..], &all[consumed..fed], "the partial packet stays in the buffer");
            }
        }
        // Asking again without new bytes changes nothing.
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &all[consumed..fed]);
    }
    let want: Vec<Packet> = session.into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, want);
}

/// A broker reads CONNECT at whatever level it starts with, then switches to the level CONNECT
/// announced; the rest of the same buffer is read at that level.
#[test]
fn level_switch_after_connect() {
    let bytes = cat(&[
        &[0x10, 13, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00],
        &[0x40, 0x03, 0x00, 0x01, 0x10],
    ]);
    let mut buf = BytesMut::from(&bytes[..]);
    let mut decoder = Decoder::new(V4);
    let Some(Packet::Connect(connect)) = decoder.decode(&mut buf).unwrap() else { panic!("expected CONNECT") };
    assert_eq!(connect.level, V5);
    decoder.set_level(connect.level);
    let Some(Packet::Puback(ack)) = decoder.decode(&mut buf).unwrap() else { panic!("expected PUBACK") };
    assert_eq!(ack.reason, moat_mqtt_core::codec::ReasonCode::NoMatchingSubscribers);
}

fn addresses(slice: &[u8]) -> Range<usize> {
    let start = slice.as_ptr() as usize;
    start..start + slice.len()
}

#[track_caller]
fn assert_within(part: &[u8], whole: &Range<usize>, what: &str) {
    let part = addresses(part);
    assert!(whole.start <= part.start && part.end <= whole.end, "{what} is a copy, not a slice of the buffer");
}

/// Payload, topic and binary properties of a decoded PUBLISH point into the received buffer.
#[test]
fn publish_payload_is_a_slice_of_the_received_buffer() {
    let bytes = cat(&[
        &[0x32, 22, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01],
        &[0x05, 0x09, 0x00, 0x02, 0xC0, 0xDE], // Correlation Data
        b"payload!!",
    ]);
    let mut buf = BytesMut::with_capacity(bytes.len() + 2);
    buf.extend_from_slice(&bytes);
    buf.extend_from_slice(&[0xC0, 0x00]); // a PINGREQ behind it
    let whole = addresses(&buf);
    let Some(Packet::Publish(publish)) = Decoder::new(V5).decode(&mut buf).unwrap() else { panic!("expected PUBLISH") };
    assert_eq!(&publish.payload[..], b"payload!!");
    assert_eq!(addresses(&publish.payload).start, whole.start + bytes.len() - 9, "payload at its wire offset");
    assert_within(&publish.payload, &whole, "the payload");
    assert_within(publish.topic.as_str().as_bytes(), &whole, "the topic");
    let Some(Property::CorrelationData(data)) = publish.properties.iter().next() else { panic!("correlation data") };
    assert_within(data, &whole, "the correlation data");
    assert_eq!(&buf[..], &[0xC0, 0x00], "the next packet stays");
}
