//! What a bench message carries, and PUBLISH packets built from one template.
//!
//! Every payload starts with a [`HEADER_LEN`]-byte header, then zeros up to the payload size:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `MQB1` (messages without it are counted, but not timed or sequenced) |
//! | 4..8 | publisher index, big-endian `u32` (the `%i` of its topic) |
//! | 8..16 | sequence number, big-endian `u64`, from 0 per publisher and run |
//! | 16..24 | send time, big-endian `u64` nanoseconds since the UNIX epoch |
//!
//! The send time is wall-clock time, so a `sub` in one process can time a `pub` in another on
//! the same machine. It is read once per batch of packets, just before the batch is written.

use std::time::{SystemTime, UNIX_EPOCH};

use moat_mqtt_core::codec::{EncodeError, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, encode};
use moat_mqtt_core::topic::TopicName;

/// Bytes of the header at the start of every payload: the smallest payload size.
pub(crate) const HEADER_LEN: usize = 24;

/// The first four bytes of every bench payload.
const MAGIC: [u8; 4] = *b"MQB1";

/// The header of a received bench payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The publisher's index.
    pub(crate) publisher: u32,
    /// Its sequence number.
    pub(crate) seq: u64,
    /// When it was sent, in nanoseconds since the UNIX epoch.
    pub(crate) sent_ns: u64,
}

impl Header {
    /// Reads the header at the start of `payload`; `None` if it is not a bench payload.
    pub(crate) fn read(payload: &[u8]) -> Option<Self> {
        let head = payload.get(..HEADER_LEN)?;
        if head[..4] != MAGIC {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut p = [0u8; 4];
        p.copy_from_slice(&head[4..8]);
        Some(Self { publisher: u32::from_be_bytes(p), seq: u64_at(8), sent_ns: u64_at(16) })
    }
}

/// Nanoseconds since the UNIX epoch (0 if the clock is set before it).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A PUBLISH packet encoded once, copied and patched for every message: the packet id and the
/// payload header are the only bytes that change.
#[derive(Debug, Clone)]
pub(crate) struct PublishTemplate {
    bytes: Vec<u8>,
    /// Where the payload starts in `bytes`.
    payload_at: usize,
    /// Where the packet id is (QoS 1 and 2).
    packet_id_at: Option<usize>,
}

impl PublishTemplate {
    /// The packet for publisher `publisher` on `topic` with a `size`-byte payload
    /// (`size >= HEADER_LEN`).
    ///
    /// # Errors
    /// The encoder's, for a packet MQTT 3.1.1 cannot carry (e.g. beyond 256 MiB).
    pub(crate) fn new(
        topic: TopicName,
        qos: QoS,
        retain: bool,
        size: usize,
        publisher: u32,
    ) -> Result<Self, EncodeError> {
        debug_assert!(size >= HEADER_LEN);
        let mut payload = vec![0u8; size];
        payload[..4].copy_from_slice(&MAGIC);
        payload[4..8].copy_from_slice(&publisher.to_be_bytes());
        let packet_id = (qos != QoS::AtMostOnce).then_some(PacketId::MIN);
        let publish = Publish {
            dup: false,
            qos,
            retain,
            topic,
            packet_id,
            properties: Properties::new(),
            payload: payload.into(),
        };
        let mut bytes = Vec::new();
        encode(&Packet::Publish(publish), ProtocolLevel::V3_1_1, &mut bytes)?;
        // At 3.1.1 a PUBLISH is: fixed header, topic, packet id (QoS > 0), payload; the
        // payload is last, so it ends the packet.
        let payload_at = bytes.len() - size;
        let packet_id_at = packet_id.map(|_| payload_at - 2);
        Ok(Self { bytes, payload_at, packet_id_at })
    }

    /// Bytes of one packet.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends the packet for sequence number `seq`, sent at `sent_ns`, with `packet_id`
    /// (ignored at QoS 0).
    pub(crate) fn append(&self, out: &mut Vec<u8>, seq: u64, sent_ns: u64, packet_id: u16) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let packet = &mut out[start..];
        let header = &mut packet[self.payload_at..];
        header[8..16].copy_from_slice(&seq.to_be_bytes());
        header[16..24].copy_from_slice(&sent_ns.to_be_bytes());
        if let Some(at) = self.packet_id_at {
            packet[at..at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use moat_mqtt_core::codec::{Decoder, Packet, ProtocolLevel, QoS};
    use moat_mqtt_core::topic::TopicName;

    use super::{HEADER_LEN, Header, PublishTemplate};

    fn decode(bytes: &[u8]) -> Vec<Packet> {
        let decoder = Decoder::new(ProtocolLevel::V3_1_1);
        let mut buf = BytesMut::from(bytes);
        let mut packets = Vec::new();
        while let Some(p) = decoder.decode(&mut buf).expect("decodes") {
            packets.push(p);
        }
        assert!(buf.is_empty());
        packets
    }

    #[test]
    fn patched_packets_decode_with_their_header() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for size in [HEADER_LEN, 64, 300] {
                let topic = TopicName::new("bench/7").unwrap();
                let template = PublishTemplate::new(topic, qos, false, size, 7).unwrap();
                let mut out = Vec::new();
                template.append(&mut out, 0, 11, 1);
                template.append(&mut out, 1 << 40, 22, 65535);
                assert_eq!(out.len(), 2 * template.len());
                let packets = decode(&out);
                assert_eq!(packets.len(), 2);
                for (packet, (seq, sent_ns, id)) in packets.iter().zip([(0, 11, 1), (1 << 40, 22, 65535)]) {
                    let Packet::Publish(p) = packet else { panic!("not a PUBLISH: {packet:?}") };
                    assert_eq!(p.qos, qos);
                    assert_eq!(p.topic.as_str(), "bench/7");
                    assert_eq!(p.payload.len(), size);
                    assert_eq!(p.packet_id.map(u16::from), (qos != QoS::AtMostOnce).then_some(id));
                    assert_eq!(Header::read(&p.payload), Some(Header { publisher: 7, seq, sent_ns }));
                }
            }
        }
    }

    #[test]
    fn foreign_payloads_have_no_header() {
        assert_eq!(Header::read(b"hello"), None);
        assert_eq!(Header::read(&[0u8; 64]), None);
    }
}
