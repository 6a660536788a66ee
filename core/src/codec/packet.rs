//! The packet model shared by all protocol levels.

use std::num::NonZeroU16;

use bytes::Bytes;
use bytestring::ByteString;

use super::{Properties, ReasonCode};
use crate::topic::{TopicFilter, TopicName};

/// A packet identifier: never 0 on the wire (MQTT-2.3.1-1), so 0 cannot be represented.
pub type PacketId = NonZeroU16;

/// The protocol level a CONNECT announces, which decides the wire format of every later packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolLevel {
    /// MQTT 3.1, protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1, protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0, protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolLevel {
    /// The level byte of CONNECT.
    #[must_use]
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name CONNECT carries at this level.
    #[must_use]
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// The level for a CONNECT's level byte, if it is one this crate speaks.
    #[must_use]
    pub const fn from_level(level: u8) -> Option<Self> {
        match level {
            3 => Some(Self::V3_1),
            4 => Some(Self::V3_1_1),
            5 => Some(Self::V5),
            _ => None,
        }
    }

    /// True for MQTT 5, the level with properties and reason codes.
    #[must_use]
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }
}

/// Quality of service: how hard delivery is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// QoS 0: at most once, no acknowledgement.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: at least once, acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: exactly once, by PUBREC, PUBREL and PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value 0..=2; 3 and above are not a QoS.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

/// The kind of a control packet: the high nibble of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names are the specification's
pub enum PacketType {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The type for the high nibble of a first byte; 0 is reserved and has none.
    #[must_use]
    pub const fn from_nibble(nibble: u8) -> Option<Self> {
        Some(match nibble {
            1 => Self::Connect,
            2 => Self::Connack,
            3 => Self::Publish,
            4 => Self::Puback,
            5 => Self::Pubrec,
            6 => Self::Pubrel,
            7 => Self::Pubcomp,
            8 => Self::Subscribe,
            9 => Self::Suback,
            10 => Self::Unsubscribe,
            11 => Self::Unsuback,
            12 => Self::Pingreq,
            13 => Self::Pingresp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            _ => return None,
        })
    }

    /// The packet's name as the specification writes it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Connack => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::Puback => "PUBACK",
            Self::Pubrec => "PUBREC",
            Self::Pubrel => "PUBREL",
            Self::Pubcomp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::Suback => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::Unsuback => "UNSUBACK",
            Self::Pingreq => "PINGREQ",
            Self::Pingresp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An MQTT control packet of any protocol level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Client to broker: open a session.
    Connect(Connect),
    /// Broker to client: the answer to CONNECT.
    Connack(Connack),
    /// Either way: an application message.
    Publish(Publish),
    /// QoS 1 acknowledgement.
    Puback(Ack),
    /// QoS 2, first answer: publish received.
    Pubrec(Ack),
    /// QoS 2, second step: publish release.
    Pubrel(Ack),
    /// QoS 2, last step: publish complete.
    Pubcomp(Ack),
    /// Client to broker: subscribe to topic filters.
    Subscribe(Subscribe),
    /// Broker to client: the answer to SUBSCRIBE.
    Suback(Suback),
    /// Client to broker: remove subscriptions.
    Unsubscribe(Unsubscribe),
    /// Broker to client: the answer to UNSUBSCRIBE.
    Unsuback(Unsuback),
    /// Client to broker: keep-alive probe.
    Pingreq,
    /// Broker to client: keep-alive answer.
    Pingresp,
    /// Either way (broker to client only in MQTT 5): close the connection.
    Disconnect(Disconnect),
    /// MQTT 5 only, either way: extended authentication exchange.
    Auth(Auth),
}

impl Packet {
    /// This packet's type.
    #[must_use]
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::Connack(_) => PacketType::Connack,
            Self::Publish(_) => PacketType::Publish,
            Self::Puback(_) => PacketType::Puback,
            Self::Pubrec(_) => PacketType::Pubrec,
            Self::Pubrel(_) => PacketType::Pubrel,
            Self::Pubcomp(_) => PacketType::Pubcomp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::Suback(_) => PacketType::Suback,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::Unsuback(_) => PacketType::Unsuback,
            Self::Pingreq => PacketType::Pingreq,
            Self::Pingresp => PacketType::Pingresp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }
}

/// CONNECT: the first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol level, which also fixes the protocol name on the wire.
    pub level: ProtocolLevel,
    /// Clean Session (3.1, 3.1.1) or Clean Start (5): begin without stored session state.
    pub clean_start: bool,
    /// Seconds the client promises between packets; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// The client identifier; may be empty, asking the broker to assign one.
    pub client_id: ByteString,
    /// The will message, published if the connection ends without DISCONNECT.
    pub will: Option<Will>,
    /// The user name, if any.
    pub username: Option<ByteString>,
    /// The password, if any (before MQTT 5 only together with a user name).
    pub password: Option<Bytes>,
    /// MQTT 5 CONNECT properties; empty at earlier levels.
    pub properties: Properties,
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Where the will is published.
    pub topic: TopicName,
    /// The message body.
    pub payload: Bytes,
    /// The QoS to publish it with.
    pub qos: QoS,
    /// Whether it is published as a retained message.
    pub retain: bool,
    /// MQTT 5 will properties (delay, expiry, content type, ...); empty at earlier levels.
    pub properties: Properties,
}

/// CONNACK: the broker's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connack {
    /// Whether the broker resumed a stored session.
    pub session_present: bool,
    /// The outcome. Before MQTT 5 this maps to a return code 0..=5: [`ReasonCode::Success`],
    /// `UnsupportedProtocolVersion` (1), `ClientIdentifierNotValid` (2), `ServerUnavailable` (3),
    /// `BadUserNameOrPassword` (4), `NotAuthorized` (5); other failures are sent as the nearest.
    pub reason: ReasonCode,
    /// MQTT 5 CONNACK properties; empty at earlier levels.
    pub properties: Properties,
}

/// PUBLISH: an application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Set on a redelivery of a QoS 1 or 2 message; never on QoS 0.
    pub dup: bool,
    /// The QoS the message is sent with.
    pub qos: QoS,
    /// Whether the broker should retain it (to the broker), or it is a retained one (from it).
    pub retain: bool,
    /// The topic; empty only in an MQTT 5 PUBLISH that carries a Topic Alias.
    pub topic: TopicName,
    /// The packet identifier: present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// MQTT 5 PUBLISH properties; empty at earlier levels.
    pub properties: Properties,
    /// The message body, a slice of the received bytes.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: one step of a QoS 1 or QoS 2 exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The packet identifier of the PUBLISH being acknowledged.
    pub packet_id: PacketId,
    /// MQTT 5 reason code; [`ReasonCode::Success`] at earlier levels.
    pub reason: ReasonCode,
    /// MQTT 5 properties (reason string, user properties); empty at earlier levels.
    pub properties: Properties,
}

impl Ack {
    /// A successful acknowledgement of `packet_id` with no properties.
    #[must_use]
    pub fn new(packet_id: PacketId) -> Self {
        Self { packet_id, reason: ReasonCode::Success, properties: Properties::new() }
    }
}

/// How retained messages are sent when a subscription is made (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe time.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist yet.
    SendAtNewSubscribe = 1,
    /// 2: do not send retained messages at subscribe time.
    DoNotSend = 2,
}

/// The options of one topic filter in a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// The maximum QoS the client wants for this filter.
    pub qos: QoS,
    /// MQTT 5: do not send the client its own publications back.
    pub no_local: bool,
    /// MQTT 5: keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    /// MQTT 5: when retained messages are sent.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options asking for `qos` with every MQTT 5 option at its default.
    #[must_use]
    pub fn qos(qos: QoS) -> Self {
        Self { qos, ..Self::default() }
    }
}

/// SUBSCRIBE: one or more topic filters with their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier the SUBACK answers.
    pub packet_id: PacketId,
    /// The filters, never empty on the wire.
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// MQTT 5 properties (subscription identifier, user properties); empty at earlier levels.
    pub properties: Properties,
}

/// SUBACK: one reason code per filter of the SUBSCRIBE, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suback {
    /// The packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// `GrantedQoS0..2` or a failure. Before MQTT 5 every failure is sent as 0x80.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties; empty at earlier levels.
    pub properties: Properties,
}

/// UNSUBSCRIBE: topic filters to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier the UNSUBACK answers.
    pub packet_id: PacketId,
    /// The filters, never empty on the wire.
    pub filters: Vec<TopicFilter>,
    /// MQTT 5 properties (user properties); empty at earlier levels.
    pub properties: Properties,
}

/// UNSUBACK: the answer to UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsuback {
    /// The packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// MQTT 5: one reason code per filter. Before MQTT 5 UNSUBACK has none: this is empty when
    /// decoded and not sent when encoded.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties; empty at earlier levels.
    pub properties: Properties,
}

/// DISCONNECT: the connection is being closed on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// MQTT 5 reason; [`ReasonCode::Success`] (normal disconnection) at earlier levels.
    pub reason: ReasonCode,
    /// MQTT 5 properties; empty at earlier levels.
    pub properties: Properties,
}

impl Disconnect {
    /// A normal disconnection with no properties.
    #[must_use]
    pub fn normal() -> Self {
        Self { reason: ReasonCode::Success, properties: Properties::new() }
    }
}

/// AUTH (MQTT 5 only): one step of an extended authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// `Success`, `ContinueAuthentication` or `ReAuthenticate`.
    pub reason: ReasonCode,
    /// Authentication method and data, reason string, user properties.
    pub properties: Properties,
}
