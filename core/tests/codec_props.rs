//! Property tests of the codec: arbitrary valid packets of every protocol level survive an
//! encode/decode round trip, decode identically in any chunking of the byte stream, and
//! `encoded_len` predicts `encode`.
//!
//! Each property runs `CASES` cases per protocol level unless `PROPTEST_CASES` says otherwise
//! (e.g. `PROPTEST_CASES=5000 cargo test -p moat-mqtt-core --test codec_props` for a longer run).

#[path = "common/strategies.rs"]
mod strategies;

use bytes::BytesMut;
use moat_mqtt_core::codec::{Decoder, Packet, ProtocolLevel, encode, encoded_len};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestRunner};

use strategies::{LEVELS, level_and_packet, loose_packet, packet};

/// Cases per property and level by default: the whole file runs in a few seconds in debug mode.
const CASES: u32 = 1000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(CASES);
    // Failures print the minimal input; no regression files are written into the source tree.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Runs `test` on `strategy` at every protocol level.
fn at_every_level<S, F>(strategy: impl Fn(ProtocolLevel) -> S, test: F)
where
    S: Strategy,
    F: Fn(ProtocolLevel, S::Value) -> Result<(), TestCaseError>,
{
    for level in LEVELS {
        let mut runner = TestRunner::new(config());
        if let Err(e) = runner.run(&strategy(level), |value| test(level, value)) {
            panic!("at protocol level {}: {e}", level.level());
        }
    }
}

/// The level a packet is written and read at: CONNECT carries its own.
fn wire_level(packet: &Packet, level: ProtocolLevel) -> ProtocolLevel {
    match packet {
        Packet::Connect(c) => c.level,
        _ => level,
    }
}

fn encode_ok(packet: &Packet, level: ProtocolLevel) -> Result<Vec<u8>, TestCaseError> {
    let mut out = Vec::new();
    let n = encode(packet, level, &mut out).map_err(|e| TestCaseError::fail(format!("encode failed: {e}")))?;
    prop_assert_eq!(n, out.len());
    Ok(out)
}

/// Property 1: decode(encode(p)) == p, consuming exactly the encoded bytes.
fn round_trip(level: ProtocolLevel, packet: Packet) -> Result<(), TestCaseError> {
    let level = wire_level(&packet, level);
    // encode appends: what is already in the buffer stays.
    let mut out = vec![0xA5, 0x5A];
    let n = encode(&packet, level, &mut out).map_err(|e| TestCaseError::fail(format!("encode failed: {e}")))?;
    prop_assert_eq!(&out[..2], &[0xA5, 0x5A]);
    prop_assert_eq!(n, out.len() - 2);

    // A trailing byte of the next packet must stay in the buffer.
    let mut buf = BytesMut::from(&out[2..]);
    buf.extend_from_slice(&[0xC0]);
    let decoded = Decoder::new(level).decode(&mut buf).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(decoded.as_ref(), Some(&packet));
    prop_assert_eq!(&buf[..], &[0xC0]);

    // A CONNECT states its own level, whatever level the decoder is at.
    if matches!(packet, Packet::Connect(_)) {
        for decoder_level in LEVELS {
            let mut buf = BytesMut::from(&out[2..]);
            let decoded = Decoder::new(decoder_level).decode(&mut buf);
            prop_assert_eq!(decoded, Ok(Some(packet.clone())));
        }
    }
    Ok(())
}

/// Property 3: encoded_len(p) == encode(p).len().
fn length_agrees(level: ProtocolLevel, packet: Packet) -> Result<(), TestCaseError> {
    let level = wire_level(&packet, level);
    let bytes = encode_ok(&packet, level)?;
    prop_assert_eq!(encoded_len(&packet, level), Ok(bytes.len()));
    Ok(())
}

/// Property 2: a stream of packets split at arbitrary points decodes to the same packets.
fn chunking(level: ProtocolLevel, (packets, cuts, byte_by_byte): (Vec<Packet>, Vec<Index>, bool)) -> TestResult {
    let mut stream = Vec::new();
    for p in &packets {
        stream.extend_from_slice(&encode_ok(p, wire_level(p, level))?);
    }
    let mut cuts: Vec<usize> = if byte_by_byte {
        (0..=stream.len()).collect()
    } else {
        cuts.iter().map(|i| i.index(stream.len() + 1)).collect()
    };
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    cuts.dedup();

    let decoder = Decoder::new(level);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for window in cuts.windows(2) {
        buf.extend_from_slice(&stream[window[0]..window[1]]);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(p)) => decoded.push(p),
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before, "need-more must consume nothing");
                    break;
                }
                Err(e) => {
                    return Err(TestCaseError::fail(format!("decode failed after {} packets: {e}", decoded.len())));
                }
            }
        }
    }
    prop_assert_eq!(decoded, packets);
    prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(())
}

type TestResult = Result<(), TestCaseError>;

fn stream(level: ProtocolLevel) -> impl Strategy<Value = (Vec<Packet>, Vec<Index>, bool)> {
    (vec(packet(level), 1..6), vec(any::<Index>(), 0..12), proptest::bool::weighted(0.1))
}

#[test]
fn decode_inverts_encode() {
    at_every_level(packet, round_trip);
}

#[test]
fn any_chunking_decodes_the_same_packets() {
    at_every_level(stream, chunking);
}

#[test]
fn encoded_len_is_the_encoded_length() {
    at_every_level(packet, length_agrees);
}

/// Property 4: encode refuses what the decoder would refuse. Whatever it accepts decodes again
/// (exactly at MQTT 5, where nothing is dropped; at 3.1/3.1.1 to a packet that encodes to the
/// same bytes), and when it refuses, the buffer is left as it was.
fn encode_accepts_only_decodable(level: ProtocolLevel, packet: Packet) -> TestResult {
    let level = wire_level(&packet, level);
    let mut out = vec![0x5A];
    match encode(&packet, level, &mut out) {
        Err(_) => prop_assert_eq!(out, vec![0x5A], "a failed encode must write nothing"),
        Ok(_) => {
            let bytes = &out[1..];
            let decoded = Decoder::new(level).decode(&mut BytesMut::from(bytes));
            let decoded = match decoded {
                Ok(Some(p)) => p,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "encoded {packet:?} as {bytes:02X?}, decoded as {other:?}"
                    )));
                }
            };
            if level.is_v5() {
                prop_assert_eq!(decoded, packet);
            } else {
                prop_assert_eq!(encode_ok(&decoded, level)?, bytes);
            }
        }
    }
    Ok(())
}

#[test]
fn encode_refuses_what_decode_refuses() {
    at_every_level(loose_packet, encode_accepts_only_decodable);
}

proptest! {
    #![proptest_config(config())]

    /// Packets of any level decode alike whether the decoder's level was fixed beforehand or
    /// is taken over from a CONNECT (as a broker does with `set_level`).
    #[test]
    fn set_level_matches_new((level, packet) in level_and_packet()) {
        let level = wire_level(&packet, level);
        let bytes = encode_ok(&packet, level)?;
        let mut decoder = Decoder::new(ProtocolLevel::V3_1_1);
        decoder.set_level(level);
        prop_assert_eq!(decoder.decode(&mut BytesMut::from(&bytes[..])), Ok(Some(packet)));
    }
}
