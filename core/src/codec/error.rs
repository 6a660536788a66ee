//! What can go wrong reading or writing packets.

use thiserror::Error;

use super::{PacketType, PropertyId, ProtocolLevel, ReasonCode};
use crate::topic::TopicError;

/// The peer sent bytes that are not a valid packet. Each variant names the rule broken.
///
/// Every decode error ends the connection; [`DecodeError::reason_code`] gives the MQTT 5 reason
/// to report in a DISCONNECT or CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0 is reserved (MQTT-2.2.1).
    #[error("packet type 0 is reserved; the peer is not speaking MQTT")]
    ReservedPacketType,
    /// AUTH (type 15) arrived at a level before MQTT 5, where type 15 is reserved.
    #[error("{packet_type} does not exist in protocol level {}", level.level())]
    PacketTypeNotInLevel {
        /// The packet type seen.
        packet_type: PacketType,
        /// The level in force.
        level: ProtocolLevel,
    },
    /// The four flag bits of the fixed header hold a reserved value (MQTT-2.2.2-2).
    #[error("{packet_type} has reserved fixed-header flags {flags:#06b}")]
    InvalidFixedHeaderFlags {
        /// The packet type seen.
        packet_type: PacketType,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// The Remaining Length (or another variable byte integer) runs past 4 bytes (MQTT-1.5.5).
    #[error("variable byte integer ({field}) is longer than 4 bytes")]
    VariableIntegerTooLong {
        /// Which integer: "remaining length", "property length", ...
        field: &'static str,
    },
    /// The packet is larger than the maximum packet size; refused before reading its body.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// The whole packet's size, fixed header included.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The packet's body ended before a field it must hold.
    #[error("{packet_type} ends before its {field}")]
    UnexpectedEnd {
        /// The packet type being read.
        packet_type: PacketType,
        /// The field that was cut off.
        field: &'static str,
    },
    /// The packet's body holds bytes after its last field.
    #[error("{packet_type} has {count} unexpected bytes after its last field")]
    TrailingBytes {
        /// The packet type being read.
        packet_type: PacketType,
        /// How many bytes were left over.
        count: usize,
    },
    /// CONNECT's protocol name is neither `MQTT` nor `MQIsdp` (MQTT-3.1.2-1).
    #[error("CONNECT names protocol {0:?}; expected \"MQTT\" or \"MQIsdp\"")]
    InvalidProtocolName(String),
    /// CONNECT's protocol level is not 3, 4 or 5 (MQTT-3.1.2-2).
    #[error("CONNECT asks for protocol level {0}; supported levels are 3 (3.1), 4 (3.1.1) and 5 (5.0)")]
    UnsupportedProtocolLevel(u8),
    /// The protocol name does not belong to the level (`MQIsdp` is level 3, `MQTT` is 4 or 5).
    #[error("CONNECT protocol name {name:?} does not go with level {level}")]
    ProtocolNameLevelMismatch {
        /// The protocol name sent.
        name: &'static str,
        /// The level byte sent.
        level: u8,
    },
    /// Bit 0 of CONNECT's flags is reserved and must be 0 (MQTT-3.1.2-3).
    #[error("CONNECT sets the reserved flag bit 0")]
    ReservedConnectFlag,
    /// Will QoS or Will Retain set without the Will Flag (MQTT-3.1.2-11/13/15).
    #[error("CONNECT sets will QoS or will retain without the will flag")]
    InconsistentWillFlags,
    /// Password flag without user name flag, before MQTT 5 (MQTT-3.1.2-22).
    #[error("CONNECT carries a password without a user name, which protocol level {0} forbids")]
    PasswordWithoutUsername(u8),
    /// A string is not valid UTF-8 (MQTT-1.5.3-1).
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string.
        field: &'static str,
    },
    /// A string holds U+0000 (MQTT-1.5.3-2).
    #[error("{field} contains the null character U+0000")]
    NulInString {
        /// Which string.
        field: &'static str,
    },
    /// The topic of a PUBLISH or will is not a valid topic name.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A filter of a SUBSCRIBE or UNSUBSCRIBE is not a valid topic filter.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A packet identifier of 0 where one is required (MQTT-2.3.1-1).
    #[error("{0} carries packet identifier 0, which is not allowed")]
    ZeroPacketId(PacketType),
    /// A QoS of 3 (MQTT-3.3.1-4).
    #[error("QoS {0} does not exist; QoS is 0, 1 or 2")]
    InvalidQos(u8),
    /// DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2).
    #[error("PUBLISH with QoS 0 has the DUP flag set")]
    DupOnQos0,
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    #[error("{0} holds no topic filter")]
    NoTopicFilters(PacketType),
    /// SUBACK or UNSUBACK (MQTT 5) with no reason code.
    #[error("{0} holds no reason code")]
    NoReasonCodes(PacketType),
    /// Reserved bits of a subscription options byte are set (MQTT-3.8.3-5).
    #[error("subscription options {0:#010b} set reserved bits")]
    ReservedSubscriptionOptions(u8),
    /// Retain Handling of 3 (MQTT 5, 3.8.3.1).
    #[error("retain handling 3 does not exist; it is 0, 1 or 2")]
    InvalidRetainHandling,
    /// No Local on a shared subscription (MQTT-3.8.3-4).
    #[error("no-local is set on shared subscription {0:?}")]
    NoLocalOnSharedSubscription(String),
    /// A property identifier the specification does not define.
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u32),
    /// A property that this packet may not carry (MQTT 5, 2.2.2.2).
    #[error("property {property:?} is not allowed in {place}")]
    PropertyNotAllowed {
        /// The property.
        property: PropertyId,
        /// The packet (or "will properties") it appeared in.
        place: String,
    },
    /// A property that may appear once appeared twice.
    #[error("property {0:?} appears more than once")]
    DuplicateProperty(PropertyId),
    /// A property value outside its allowed range.
    #[error("property {property:?} has an invalid value: {reason}")]
    InvalidPropertyValue {
        /// The property.
        property: PropertyId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A reason code that the packet may not carry.
    #[error("{packet_type} carries reason code {code:#04x}, which it may not")]
    InvalidReasonCode {
        /// The packet type being read.
        packet_type: PacketType,
        /// The code seen.
        code: u8,
    },
    /// Reserved bits of CONNACK's acknowledge flags are set (MQTT-3.2.2-1).
    #[error("CONNACK sets reserved acknowledge flags {0:#010b}")]
    ReservedConnackFlags(u8),
}

impl DecodeError {
    /// The MQTT 5 reason code that reports this error to the peer.
    #[must_use]
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::UnsupportedProtocolLevel(_)
            | Self::InvalidProtocolName(_)
            | Self::ProtocolNameLevelMismatch { .. } => ReasonCode::UnsupportedProtocolVersion,
            Self::InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            Self::InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            Self::DuplicateProperty(_)
            | Self::PropertyNotAllowed { .. }
            | Self::InvalidPropertyValue { .. }
            | Self::InvalidRetainHandling
            | Self::NoLocalOnSharedSubscription(_)
            | Self::ZeroPacketId(_)
            | Self::PacketTypeNotInLevel { .. } => ReasonCode::ProtocolError,
            _ => ReasonCode::MalformedPacket,
        }
    }
}

/// A packet cannot be encoded as asked. Nothing was written. This is the caller's mistake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field is longer than its 16-bit length allows.
    #[error("{field} is {len} bytes long; at most 65535 fit")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The packet would exceed the largest Remaining Length, 268,435,455 bytes.
    #[error("packet body of {0} bytes exceeds the protocol's limit of 268435455")]
    PacketTooLarge(usize),
    /// The packet type does not exist at this level (AUTH before MQTT 5).
    #[error("{packet_type} cannot be sent at protocol level {}", level.level())]
    PacketTypeNotInLevel {
        /// The packet type.
        packet_type: PacketType,
        /// The level asked for.
        level: ProtocolLevel,
    },
    /// QoS and packet identifier disagree: QoS 0 needs none, QoS 1 and 2 need one.
    #[error("PUBLISH with {qos} has {}", if *.has_packet_id { "a packet identifier" } else { "no packet identifier" })]
    PacketIdMismatch {
        /// The QoS, as text ("QoS 0", ...).
        qos: &'static str,
        /// Whether a packet identifier was given.
        has_packet_id: bool,
    },
    /// DUP set on a QoS 0 PUBLISH.
    #[error("PUBLISH with QoS 0 may not have DUP set")]
    DupOnQos0,
    /// An empty topic, which only an MQTT 5 PUBLISH with a Topic Alias may have.
    #[error("PUBLISH has an empty topic but no topic alias (or the level is before MQTT 5)")]
    EmptyTopic,
    /// SUBSCRIBE or UNSUBSCRIBE with no filters, or SUBACK with no reason codes.
    #[error("{0} needs at least one entry")]
    EmptyList(PacketType),
    /// A password without a user name, which levels before MQTT 5 cannot carry.
    #[error("a password without a user name cannot be sent before MQTT 5")]
    PasswordWithoutUsername,
    /// A property that this packet may not carry.
    #[error("property {property:?} is not allowed in {place}")]
    PropertyNotAllowed {
        /// The property.
        property: PropertyId,
        /// Where it was put.
        place: String,
    },
    /// A property that may appear once was given twice.
    #[error("property {0:?} is given more than once")]
    DuplicateProperty(PropertyId),
    /// A property value outside its allowed range.
    #[error("property {property:?} has an invalid value: {reason}")]
    InvalidPropertyValue {
        /// The property.
        property: PropertyId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An MQTT 5 reason code the packet may not carry.
    #[error("{packet_type} may not carry reason code {reason}")]
    ReasonNotAllowed {
        /// The packet type.
        packet_type: PacketType,
        /// The reason code.
        reason: ReasonCode,
    },
    /// No Local on a shared subscription.
    #[error("no-local may not be set on shared subscription {0:?}")]
    NoLocalOnSharedSubscription(String),
    /// A string holds U+0000, which no UTF-8 string field may carry (MQTT-1.5.4-2).
    #[error("{field} contains the null character U+0000")]
    NulInString {
        /// Which string.
        field: &'static str,
    },
}
