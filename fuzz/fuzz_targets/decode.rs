//! Feeds arbitrary bytes, in arbitrary chunks, to the streaming decoder at every level.
//!
//! Invariants: decoding never panics; a packet that decodes re-encodes without error, and the
//! re-encoded bytes decode to an equal packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use moat_mqtt_core::codec::{Decoder, Packet, ProtocolLevel, encode};

fuzz_target!(|data: &[u8]| {
    let [selector, chunking, stream @ ..] = data else { return };
    let level = [ProtocolLevel::V3_1, ProtocolLevel::V3_1_1, ProtocolLevel::V5][usize::from(selector % 3)];
    // A small limit now and then, so that the size check is exercised too.
    let max = if selector & 0x80 != 0 { 64 } else { 1 << 20 };
    let decoder = Decoder::new(level).with_max_packet_size(max);
    let chunk = usize::from(chunking % 16) + 1;
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(packet)) => check_round_trip(&packet, level),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});

fn check_round_trip(packet: &Packet, level: ProtocolLevel) {
    // CONNECT carries its own level; every later packet is read at the decoder's level.
    let level = match packet {
        Packet::Connect(c) => c.level,
        _ => level,
    };
    let mut out = Vec::new();
    let written = encode(packet, level, &mut out).expect("a decoded packet must re-encode");
    assert_eq!(written, out.len());
    let mut again = BytesMut::from(&out[..]);
    let decoded = Decoder::new(level)
        .with_max_packet_size(usize::MAX)
        .decode(&mut again)
        .expect("re-encoded bytes must decode")
        .expect("re-encoded bytes must hold a whole packet");
    assert_eq!(&decoded, packet);
    assert!(again.is_empty(), "re-encoded packet left {} bytes over", again.len());
}
