//! Byte vectors for every control packet at every protocol level, written by hand from the
//! MQTT 3.1, 3.1.1 (OASIS, 2014) and 5.0 (OASIS, 2019) specifications.
//!
//! Each vector is checked both ways: decoding the bytes gives the packet, and encoding the packet
//! gives exactly the bytes. Then come the refusals, one test per validation rule with the exact
//! error, the streaming behaviour of the decoder, and the encoder's refusals.

mod decode_errors;
mod encode_errors;
mod remaining_length;
mod streaming;
mod v3_1;
mod v3_1_1;
mod v5;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use moat_mqtt_core::codec::{DecodeError, Decoder, EncodeError, Packet, PacketId, ProtocolLevel, encode, encoded_len};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

pub(crate) const V3: ProtocolLevel = ProtocolLevel::V3_1;
pub(crate) const V4: ProtocolLevel = ProtocolLevel::V3_1_1;
pub(crate) const V5: ProtocolLevel = ProtocolLevel::V5;

/// Concatenates byte pieces, so that vectors can be written field by field.
pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub(crate) fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("test packet ids are not 0")
}

pub(crate) fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("valid test topic")
}

pub(crate) fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("valid test filter")
}

pub(crate) fn s(text: &str) -> ByteString {
    ByteString::from(text)
}

pub(crate) fn b(bytes: &'static [u8]) -> Bytes {
    Bytes::from_static(bytes)
}

/// Decodes exactly one packet from `bytes` at `level`, which must use all of them.
pub(crate) fn decode_all(level: ProtocolLevel, bytes: &[u8]) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = Decoder::new(level)
        .with_max_packet_size(usize::MAX)
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("decoding {bytes:02X?} at level {}: {e}", level.level()))
        .unwrap_or_else(|| panic!("decoding {bytes:02X?}: the decoder wants more bytes"));
    assert!(buf.is_empty(), "{} bytes left after the packet", buf.len());
    packet
}

/// Encodes `packet` at `level`, checking that the returned size and `encoded_len` agree.
pub(crate) fn encode_one(packet: &Packet, level: ProtocolLevel) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode(packet, level, &mut out)
        .unwrap_or_else(|e| panic!("encoding {packet:?} at level {}: {e}", level.level()));
    assert_eq!(n, out.len(), "encode's returned size");
    assert_eq!(encoded_len(packet, level), Ok(out.len()), "encoded_len");
    out
}

/// The vector check: `bytes` decode to `packet`, and `packet` encodes to `bytes`.
#[track_caller]
pub(crate) fn assert_vector(level: ProtocolLevel, bytes: &[u8], packet: &Packet) {
    assert_eq!(&decode_all(level, bytes), packet, "decoding {bytes:02X?}");
    assert_eq!(encode_one(packet, level), bytes, "encoding {packet:?}");
}

/// `bytes` decode to `packet`, which the encoder writes in another (canonical) form, `canonical`.
#[track_caller]
pub(crate) fn assert_decodes_then_canonical(level: ProtocolLevel, bytes: &[u8], packet: &Packet, canonical: &[u8]) {
    assert_eq!(&decode_all(level, bytes), packet, "decoding {bytes:02X?}");
    assert_eq!(encode_one(packet, level), canonical, "encoding {packet:?}");
}

/// The error decoding `bytes` at `level` gives (with the default maximum packet size).
#[track_caller]
pub(crate) fn decode_err(level: ProtocolLevel, bytes: &[u8]) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match Decoder::new(level).decode(&mut buf) {
        Err(e) => e,
        Ok(p) => panic!("decoding {bytes:02X?} at level {} should fail, got {p:?}", level.level()),
    }
}

/// The error encoding `packet` at `level` gives; the output buffer must be left as it was.
#[track_caller]
pub(crate) fn encode_err(packet: &Packet, level: ProtocolLevel) -> EncodeError {
    let before = vec![0xAA, 0xBB, 0xCC];
    let mut out = before.clone();
    let err = match encode(packet, level, &mut out) {
        Err(e) => e,
        Ok(n) => panic!("encoding {packet:?} at level {} should fail, wrote {n} bytes", level.level()),
    };
    assert_eq!(out, before, "the output changed although encoding failed");
    assert_eq!(encoded_len(packet, level), Err(err.clone()), "encoded_len disagrees with encode");
    err
}
