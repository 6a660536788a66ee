//! MQTT 5 properties and the rules for which packet may carry which.

use bytes::Bytes;
use bytestring::ByteString;

use super::{PacketType, QoS};
use crate::topic::TopicName;

/// What a PUBLISH payload is, per its Payload Format Indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    Unspecified = 0,
    /// 1: UTF-8 encoded character data.
    Utf8 = 1,
}

/// Identifies a property on the wire (specification 2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the names are the specification's
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

/// Where a property sits: in a packet of some type, or in the will of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PropertyPlace {
    /// The property section of a packet.
    Packet(PacketType),
    /// The will properties of a CONNECT.
    Will,
}

impl std::fmt::Display for PropertyPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Packet(t) => write!(f, "{t}"),
            Self::Will => f.write_str("will properties of CONNECT"),
        }
    }
}

impl PropertyId {
    /// The property for an identifier byte, if the specification defines one.
    #[must_use]
    pub const fn from_u8(id: u8) -> Option<Self> {
        Some(match id {
            0x01 => Self::PayloadFormatIndicator,
            0x02 => Self::MessageExpiryInterval,
            0x03 => Self::ContentType,
            0x08 => Self::ResponseTopic,
            0x09 => Self::CorrelationData,
            0x0B => Self::SubscriptionIdentifier,
            0x11 => Self::SessionExpiryInterval,
            0x12 => Self::AssignedClientIdentifier,
            0x13 => Self::ServerKeepAlive,
            0x15 => Self::AuthenticationMethod,
            0x16 => Self::AuthenticationData,
            0x17 => Self::RequestProblemInformation,
            0x18 => Self::WillDelayInterval,
            0x19 => Self::RequestResponseInformation,
            0x1A => Self::ResponseInformation,
            0x1C => Self::ServerReference,
            0x1F => Self::ReasonString,
            0x21 => Self::ReceiveMaximum,
            0x22 => Self::TopicAliasMaximum,
            0x23 => Self::TopicAlias,
            0x24 => Self::MaximumQoS,
            0x25 => Self::RetainAvailable,
            0x26 => Self::UserProperty,
            0x27 => Self::MaximumPacketSize,
            0x28 => Self::WildcardSubscriptionAvailable,
            0x29 => Self::SubscriptionIdentifierAvailable,
            0x2A => Self::SharedSubscriptionAvailable,
            _ => return None,
        })
    }

    /// Whether a packet may carry this property more than once: only User Property, and
    /// Subscription Identifier in a PUBLISH (one per matching subscription).
    #[must_use]
    pub(crate) fn repeatable_in(self, place: PropertyPlace) -> bool {
        match self {
            Self::UserProperty => true,
            Self::SubscriptionIdentifier => place == PropertyPlace::Packet(PacketType::Publish),
            _ => false,
        }
    }

    /// Whether the property may appear at `place` (specification 2.2.2.2, table 2-4).
    #[must_use]
    pub(crate) fn allowed_in(self, place: PropertyPlace) -> bool {
        use PacketType as T;
        use PropertyPlace::{Packet, Will};
        match self {
            Self::UserProperty => true,
            Self::PayloadFormatIndicator
            | Self::MessageExpiryInterval
            | Self::ContentType
            | Self::ResponseTopic
            | Self::CorrelationData => matches!(place, Packet(T::Publish) | Will),
            Self::WillDelayInterval => place == Will,
            Self::SubscriptionIdentifier => matches!(place, Packet(T::Publish | T::Subscribe)),
            Self::TopicAlias => place == Packet(T::Publish),
            Self::SessionExpiryInterval => matches!(place, Packet(T::Connect | T::Connack | T::Disconnect)),
            Self::AuthenticationMethod | Self::AuthenticationData => {
                matches!(place, Packet(T::Connect | T::Connack | T::Auth))
            }
            Self::RequestProblemInformation | Self::RequestResponseInformation => place == Packet(T::Connect),
            Self::ReceiveMaximum | Self::TopicAliasMaximum | Self::MaximumPacketSize => {
                matches!(place, Packet(T::Connect | T::Connack))
            }
            Self::AssignedClientIdentifier
            | Self::ServerKeepAlive
            | Self::ResponseInformation
            | Self::MaximumQoS
            | Self::RetainAvailable
            | Self::WildcardSubscriptionAvailable
            | Self::SubscriptionIdentifierAvailable
            | Self::SharedSubscriptionAvailable => place == Packet(T::Connack),
            Self::ServerReference => matches!(place, Packet(T::Connack | T::Disconnect)),
            Self::ReasonString => matches!(
                place,
                Packet(
                    T::Connack
                        | T::Puback
                        | T::Pubrec
                        | T::Pubrel
                        | T::Pubcomp
                        | T::Suback
                        | T::Unsuback
                        | T::Disconnect
                        | T::Auth
                )
            ),
        }
    }
}

/// One MQTT 5 property with its value.
///
/// Values that the specification restricts are restricted by their types (booleans for the
/// 0/1 bytes, [`TopicName`] for the response topic); numeric ranges (a Receive Maximum of 0, a
/// Subscription Identifier of 0, a Maximum QoS of 2) are checked when decoding and encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the property of the same name
pub enum Property {
    PayloadFormatIndicator(PayloadFormat),
    MessageExpiryInterval(u32),
    ContentType(ByteString),
    ResponseTopic(TopicName),
    CorrelationData(Bytes),
    /// 1..=268,435,455.
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(ByteString),
    ServerKeepAlive(u16),
    AuthenticationMethod(ByteString),
    AuthenticationData(Bytes),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(ByteString),
    ServerReference(ByteString),
    ReasonString(ByteString),
    /// 1..=65,535.
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    /// 1..=65,535.
    TopicAlias(u16),
    /// QoS 0 or 1 only: a broker that supports QoS 2 sends no Maximum QoS.
    MaximumQoS(QoS),
    RetainAvailable(bool),
    /// A name and a value.
    UserProperty(ByteString, ByteString),
    /// 1..=4,294,967,295.
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

impl Property {
    /// The identifier of this property.
    #[must_use]
    pub const fn id(&self) -> PropertyId {
        match self {
            Self::PayloadFormatIndicator(_) => PropertyId::PayloadFormatIndicator,
            Self::MessageExpiryInterval(_) => PropertyId::MessageExpiryInterval,
            Self::ContentType(_) => PropertyId::ContentType,
            Self::ResponseTopic(_) => PropertyId::ResponseTopic,
            Self::CorrelationData(_) => PropertyId::CorrelationData,
            Self::SubscriptionIdentifier(_) => PropertyId::SubscriptionIdentifier,
            Self::SessionExpiryInterval(_) => PropertyId::SessionExpiryInterval,
            Self::AssignedClientIdentifier(_) => PropertyId::AssignedClientIdentifier,
            Self::ServerKeepAlive(_) => PropertyId::ServerKeepAlive,
            Self::AuthenticationMethod(_) => PropertyId::AuthenticationMethod,
            Self::AuthenticationData(_) => PropertyId::AuthenticationData,
            Self::RequestProblemInformation(_) => PropertyId::RequestProblemInformation,
            Self::WillDelayInterval(_) => PropertyId::WillDelayInterval,
            Self::RequestResponseInformation(_) => PropertyId::RequestResponseInformation,
            Self::ResponseInformation(_) => PropertyId::ResponseInformation,
            Self::ServerReference(_) => PropertyId::ServerReference,
            Self::ReasonString(_) => PropertyId::ReasonString,
            Self::ReceiveMaximum(_) => PropertyId::ReceiveMaximum,
            Self::TopicAliasMaximum(_) => PropertyId::TopicAliasMaximum,
            Self::TopicAlias(_) => PropertyId::TopicAlias,
            Self::MaximumQoS(_) => PropertyId::MaximumQoS,
            Self::RetainAvailable(_) => PropertyId::RetainAvailable,
            Self::UserProperty(..) => PropertyId::UserProperty,
            Self::MaximumPacketSize(_) => PropertyId::MaximumPacketSize,
            Self::WildcardSubscriptionAvailable(_) => PropertyId::WildcardSubscriptionAvailable,
            Self::SubscriptionIdentifierAvailable(_) => PropertyId::SubscriptionIdentifierAvailable,
            Self::SharedSubscriptionAvailable(_) => PropertyId::SharedSubscriptionAvailable,
        }
    }

    /// Why the value is out of its allowed range, if it is.
    pub(crate) fn range_error(&self) -> Option<&'static str> {
        match self {
            Self::SubscriptionIdentifier(0) => Some("subscription identifier 0"),
            Self::SubscriptionIdentifier(v) if *v > super::MAX_REMAINING_LENGTH as u32 => {
                Some("subscription identifier above 268,435,455")
            }
            Self::ReceiveMaximum(0) => Some("receive maximum 0"),
            Self::TopicAlias(0) => Some("topic alias 0"),
            Self::MaximumPacketSize(0) => Some("maximum packet size 0"),
            Self::MaximumQoS(QoS::ExactlyOnce) => Some("maximum QoS 2 (only 0 or 1 may be sent)"),
            Self::ResponseTopic(topic) if topic.is_empty() => {
                Some("empty response topic (a topic name is never empty)")
            }
            _ => None,
        }
    }
}

/// The properties of one packet (or of a will), in wire order.
///
/// Empty properties cost no allocation, which is what MQTT 3.1 and 3.1.1 packets always have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties(Vec<Property>);

macro_rules! single_getters {
    ($( $(#[$doc:meta])* $fn:ident -> $ty:ty = $variant:ident; )*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $fn(&self) -> Option<$ty> {
                self.0.iter().find_map(|p| match p {
                    Property::$variant(v) => Some(v.clone()),
                    _ => None,
                })
            }
        )*
    };
}

impl Properties {
    /// No properties.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds a property at the end. Whether the packet may carry it is checked when encoding.
    pub fn push(&mut self, property: Property) {
        self.0.push(property);
    }

    /// Adds a property, builder style.
    #[must_use]
    pub fn with(mut self, property: Property) -> Self {
        self.0.push(property);
        self
    }

    /// Removes every property with identifier `id`.
    pub fn remove(&mut self, id: PropertyId) {
        self.0.retain(|p| p.id() != id);
    }

    /// The properties in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Property> {
        self.0.iter()
    }

    /// The first property with identifier `id`.
    #[must_use]
    pub fn get(&self, id: PropertyId) -> Option<&Property> {
        self.0.iter().find(|p| p.id() == id)
    }

    /// The user properties as name/value pairs, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((&**k, &**v)),
            _ => None,
        })
    }

    /// Every Subscription Identifier, in order (a PUBLISH may carry several).
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::SubscriptionIdentifier(v) => Some(*v),
            _ => None,
        })
    }

    single_getters! {
        /// Payload Format Indicator.
        payload_format -> PayloadFormat = PayloadFormatIndicator;
        /// Message Expiry Interval, seconds.
        message_expiry_interval -> u32 = MessageExpiryInterval;
        /// Content Type.
        content_type -> ByteString = ContentType;
        /// Response Topic.
        response_topic -> TopicName = ResponseTopic;
        /// Correlation Data.
        correlation_data -> Bytes = CorrelationData;
        /// Session Expiry Interval, seconds.
        session_expiry_interval -> u32 = SessionExpiryInterval;
        /// Assigned Client Identifier.
        assigned_client_identifier -> ByteString = AssignedClientIdentifier;
        /// Server Keep Alive, seconds.
        server_keep_alive -> u16 = ServerKeepAlive;
        /// Authentication Method.
        authentication_method -> ByteString = AuthenticationMethod;
        /// Authentication Data.
        authentication_data -> Bytes = AuthenticationData;
        /// Request Problem Information.
        request_problem_information -> bool = RequestProblemInformation;
        /// Will Delay Interval, seconds.
        will_delay_interval -> u32 = WillDelayInterval;
        /// Request Response Information.
        request_response_information -> bool = RequestResponseInformation;
        /// Response Information.
        response_information -> ByteString = ResponseInformation;
        /// Server Reference.
        server_reference -> ByteString = ServerReference;
        /// Reason String.
        reason_string -> ByteString = ReasonString;
        /// Receive Maximum.
        receive_maximum -> u16 = ReceiveMaximum;
        /// Topic Alias Maximum.
        topic_alias_maximum -> u16 = TopicAliasMaximum;
        /// Topic Alias.
        topic_alias -> u16 = TopicAlias;
        /// Maximum QoS.
        maximum_qos -> QoS = MaximumQoS;
        /// Retain Available.
        retain_available -> bool = RetainAvailable;
        /// Maximum Packet Size, bytes.
        maximum_packet_size -> u32 = MaximumPacketSize;
        /// Wildcard Subscription Available.
        wildcard_subscription_available -> bool = WildcardSubscriptionAvailable;
        /// Subscription Identifier Available.
        subscription_identifier_available -> bool = SubscriptionIdentifierAvailable;
        /// Shared Subscription Available.
        shared_subscription_available -> bool = SharedSubscriptionAvailable;
    }
}

impl FromIterator<Property> for Properties {
    fn from_iter<I: IntoIterator<Item = Property>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = &'a Property;
    type IntoIter = std::slice::Iter<'a, Property>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
