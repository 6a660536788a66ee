//! The Remaining Length examples of the specification's table (3.1.1 section 2.2.3, table 2.4;
//! 5.0 section 1.5.5, table 1-1): the boundaries of the one- to four-byte encodings.

use bytes::{Bytes, BytesMut};
use moat_mqtt_core::codec::{Decoder, MAX_REMAINING_LENGTH, Packet, Properties, Publish, QoS, encoded_len};

use crate::{V4, assert_vector, cat, topic};

/// A QoS 0 PUBLISH to `a` whose body is `remaining` bytes long: 3 bytes of topic, the rest payload.
fn publish_of(remaining: usize, payload: Bytes) -> Packet {
    assert_eq!(payload.len() + 3, remaining);
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic("a"),
        packet_id: None,
        properties: Properties::new(),
        payload,
    })
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[track_caller]
fn check(remaining: usize, encoded: &[u8]) {
    let payload = patterned(remaining - 3);
    let bytes = cat(&[&[0x30], encoded, &[0x00, 0x01, b'a'], &payload]);
    assert_vector(V4, &bytes, &publish_of(remaining, Bytes::from(payload)));
}

#[test]
fn zero_is_one_byte() {
    assert_vector(V4, &[0xC0, 0x00], &Packet::Pingreq);
}

#[test]
fn one_byte_up_to_127() {
    check(3, &[0x03]);
    check(127, &[0x7F]);
}

#[test]
fn two_bytes_from_128_to_16383() {
    check(128, &[0x80, 0x01]);
    check(16_383, &[0xFF, 0x7F]);
}

#[test]
fn three_bytes_from_16384_to_2097151() {
    check(16_384, &[0x80, 0x80, 0x01]);
    check(2_097_151, &[0xFF, 0xFF, 0x7F]);
}

#[test]
fn four_bytes_from_2097152() {
    check(2_097_152, &[0x80, 0x80, 0x80, 0x01]);
}

/// 268,435,455 = `FF FF FF 7F`, the largest value. Without writing 256 MiB: `encoded_len` counts
/// 1 + 4 + 268,435,455 bytes, and a decoder without a size limit accepts the header and waits for
/// the body, consuming nothing.
#[test]
fn the_largest_is_ff_ff_ff_7f() {
    assert_eq!(MAX_REMAINING_LENGTH, 268_435_455);
    // Zeroed memory is mapped lazily, so this costs no real memory until written.
    let payload = Bytes::from(vec![0u8; MAX_REMAINING_LENGTH - 3]);
    let packet = publish_of(MAX_REMAINING_LENGTH, payload);
    assert_eq!(encoded_len(&packet, V4), Ok(1 + 4 + MAX_REMAINING_LENGTH));

    let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, b'a'];
    let mut buf = BytesMut::from(&header[..]);
    let decoder = Decoder::new(V4).with_max_packet_size(usize::MAX);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], &header[..], "nothing consumed");
}
