//! The MQTT wire format for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0).
//!
//! One packet model serves every level: [`Packet`] and its parts carry MQTT 5's properties and
//! reason codes, and the [`ProtocolLevel`] passed to [`encode`] and [`Decoder`] decides what goes
//! on the wire. At levels 3 and 4 properties are not sent and reason codes map to the older
//! return codes; decoding such packets yields empty properties and the matching reason codes.
//!
//! Decoding is streaming and zero-copy: append received bytes to a [`bytes::BytesMut`] and call
//! [`Decoder::decode`] until it answers `Ok(None)` ("need more"). The packet size is checked
//! against the limit as soon as the fixed header is read, before the body is waited for.
//! Payloads, topics and strings in decoded packets are slices of the received bytes.
//!
//! Encoding appends one whole packet to a caller-owned `Vec<u8>`, or nothing if it fails.
//!
//! ```
//! use bytes::BytesMut;
//! use moat_mqtt_core::codec::{encode, Decoder, Packet, ProtocolLevel};
//!
//! let decoder = Decoder::new(ProtocolLevel::V3_1_1); // max packet size: 1 MiB unless set
//! let mut received = BytesMut::new();
//! received.extend_from_slice(&[0xC0, 0x00]); // PINGREQ, as read from a socket
//! let mut out = Vec::new();
//! while let Some(packet) = decoder.decode(&mut received)? {
//!     // Ok(None) means "need more bytes"; a partial packet stays in `received`.
//!     if packet == Packet::Pingreq {
//!         encode(&Packet::Pingresp, ProtocolLevel::V3_1_1, &mut out)?;
//!     }
//! }
//! assert_eq!(out, [0xD0, 0x00]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod decode;
mod encode;
mod error;
mod packet;
mod property;
mod reason;
mod wire;

pub use decode::{DEFAULT_MAX_PACKET_SIZE, Decoder};
pub use encode::{encode, encoded_len};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, PacketId, PacketType, ProtocolLevel, Publish, QoS, RetainHandling,
    Suback, Subscribe, SubscriptionOptions, Unsuback, Unsubscribe, Will,
};
pub use property::{PayloadFormat, Properties, Property, PropertyId};
pub use reason::ReasonCode;

/// The largest value the 4-byte Remaining Length field can hold: 268,435,455.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
