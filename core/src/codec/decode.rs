//! The streaming decoder.

use bytes::BytesMut;

use super::property::PropertyPlace;
use super::wire::Reader;
use super::{
    Ack, Auth, Connack, Connect, DecodeError, Disconnect, MAX_REMAINING_LENGTH, Packet, PacketType, PayloadFormat,
    Properties, Property, PropertyId, ProtocolLevel, Publish, QoS, ReasonCode, RetainHandling, Suback, Subscribe,
    SubscriptionOptions, Unsuback, Unsubscribe, Will,
};
use crate::topic::{TopicFilter, TopicName};

/// The maximum packet size used unless another is configured: 1 MiB, fixed header included.
///
/// MQTT itself allows 256 MiB; a bound this size keeps one connection's receive buffer small
/// while fitting ordinary messages with room to spare.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Turns received bytes into packets, one at a time, in any chunking.
///
/// The caller appends what it receives to a [`BytesMut`] and calls [`Decoder::decode`] until it
/// returns `Ok(None)`, meaning "need more". A partial packet stays in the buffer untouched.
/// A decoded packet's payload and strings are slices of the buffer's memory, not copies.
///
/// The protocol level decides the format of every packet but CONNECT, which states its own
/// level: a broker decodes CONNECT, then sets the level it announced with
/// [`Decoder::set_level`].
#[derive(Debug, Clone)]
pub struct Decoder {
    level: ProtocolLevel,
    max_packet_size: usize,
}

impl Decoder {
    /// A decoder for `level` with the [`DEFAULT_MAX_PACKET_SIZE`].
    #[must_use]
    pub fn new(level: ProtocolLevel) -> Self {
        Self { level, max_packet_size: DEFAULT_MAX_PACKET_SIZE }
    }

    /// Sets the largest packet accepted, in bytes with the fixed header; larger packets are
    /// refused as soon as their fixed header is read. Values above what MQTT can express are
    /// treated as no limit.
    #[must_use]
    pub fn with_max_packet_size(mut self, max: usize) -> Self {
        self.max_packet_size = max;
        self
    }

    /// The largest packet accepted.
    #[must_use]
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// The level packets are read at.
    #[must_use]
    pub fn level(&self) -> ProtocolLevel {
        self.level
    }

    /// Changes the level packets are read at, as a broker does after CONNECT.
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.level = level;
    }

    /// Takes the next whole packet off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole packet; it then reserves room for
    /// the rest of the packet (never more than the maximum packet size) and consumes nothing.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes break the protocol. Reserved packet types, bad fixed-header
    /// flags and oversize packets are reported as soon as the fixed header is read, without
    /// waiting for the body. After an error the connection must be closed: the buffer's content
    /// is unspecified.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = self.fixed_header(buf)? else {
            return Ok(None);
        };
        let total = header.header_len + header.remaining;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut packet = buf.split_to(total).freeze();
        bytes::Buf::advance(&mut packet, header.header_len);
        let reader = Reader::new(packet, header.packet_type);
        let level = self.level;
        match header.packet_type {
            PacketType::Connect => read_connect(reader),
            PacketType::Connack => read_connack(reader, level),
            PacketType::Publish => read_publish(reader, header.flags, level),
            PacketType::Puback => read_ack(reader, level).map(Packet::Puback),
            PacketType::Pubrec => read_ack(reader, level).map(Packet::Pubrec),
            PacketType::Pubrel => read_ack(reader, level).map(Packet::Pubrel),
            PacketType::Pubcomp => read_ack(reader, level).map(Packet::Pubcomp),
            PacketType::Subscribe => read_subscribe(reader, level),
            PacketType::Suback => read_suback(reader, level),
            PacketType::Unsubscribe => read_unsubscribe(reader, level),
            PacketType::Unsuback => read_unsuback(reader, level),
            PacketType::Pingreq => reader.finish().map(|()| Packet::Pingreq),
            PacketType::Pingresp => reader.finish().map(|()| Packet::Pingresp),
            PacketType::Disconnect => read_disconnect(reader, level),
            PacketType::Auth => read_auth(reader),
        }
        .map(Some)
    }

    /// Reads and checks the fixed header at the front of `buf`, consuming nothing.
    fn fixed_header(&self, buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = PacketType::from_nibble(first >> 4).ok_or(DecodeError::ReservedPacketType)?;
        let flags = first & 0x0F;
        check_flags(packet_type, flags, self.level)?;
        let mut remaining = 0usize;
        for i in 0..4 {
            let Some(&byte) = buf.get(1 + i) else {
                return Ok(None);
            };
            remaining |= usize::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                let header_len = 2 + i;
                let size = header_len + remaining;
                if size > self.max_packet_size.min(MAX_REMAINING_LENGTH + 5) {
                    return Err(DecodeError::PacketTooLarge { size, max: self.max_packet_size });
                }
                return Ok(Some(FixedHeader { packet_type, flags, header_len, remaining }));
            }
        }
        Err(DecodeError::VariableIntegerTooLong { field: "remaining length" })
    }
}

struct FixedHeader {
    packet_type: PacketType,
    flags: u8,
    header_len: usize,
    remaining: usize,
}

fn check_flags(packet_type: PacketType, flags: u8, level: ProtocolLevel) -> Result<(), DecodeError> {
    let expected = match packet_type {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::InvalidQos(3));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::DupOnQos0);
            }
            return Ok(());
        }
        PacketType::Auth if !level.is_v5() => {
            return Err(DecodeError::PacketTypeNotInLevel { packet_type, level });
        }
        // MQTT 3.1 (section 2.1, "DUP") sets DUP when it re-sends a PUBREL, SUBSCRIBE or
        // UNSUBSCRIBE; the packet model has no place for it, so it is accepted and dropped.
        PacketType::Pubrel | PacketType::Subscribe | PacketType::Unsubscribe
            if level == ProtocolLevel::V3_1 && flags == 0b1010 =>
        {
            0b1010
        }
        PacketType::Pubrel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
        _ => 0,
    };
    if flags == expected { Ok(()) } else { Err(DecodeError::InvalidFixedHeaderFlags { packet_type, flags }) }
}

fn read_properties(r: &mut Reader, place: PropertyPlace) -> Result<Properties, DecodeError> {
    let len = r.varint("property length")? as usize;
    if len == 0 {
        return Ok(Properties::new());
    }
    let outer = r.start_section(len, "properties")?;
    let mut props = Properties::new();
    let mut seen = 0u64;
    while !r.is_empty() {
        let raw_id = r.varint("property identifier")?;
        let id = u8::try_from(raw_id).ok().and_then(PropertyId::from_u8).ok_or(DecodeError::UnknownProperty(raw_id))?;
        if !id.allowed_in(place) {
            return Err(DecodeError::PropertyNotAllowed { property: id, place: place.to_string() });
        }
        let bit = 1u64 << (id as u8);
        if seen & bit != 0 && !id.repeatable_in(place) {
            return Err(DecodeError::DuplicateProperty(id));
        }
        seen |= bit;
        let property = read_property_value(r, id)?;
        if let Some(reason) = property.range_error() {
            return Err(DecodeError::InvalidPropertyValue { property: id, reason });
        }
        props.push(property);
    }
    r.end_section(outer);
    Ok(props)
}

fn read_property_value(r: &mut Reader, id: PropertyId) -> Result<Property, DecodeError> {
    use PropertyId as I;
    let flag = |r: &mut Reader| -> Result<bool, DecodeError> {
        match r.u8("property value")? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidPropertyValue { property: id, reason: "a flag must be 0 or 1" }),
        }
    };
    Ok(match id {
        I::PayloadFormatIndicator => Property::PayloadFormatIndicator(match r.u8("property value")? {
            0 => PayloadFormat::Unspecified,
            1 => PayloadFormat::Utf8,
            _ => {
                return Err(DecodeError::InvalidPropertyValue {
                    property: id,
                    reason: "payload format must be 0 or 1",
                });
            }
        }),
        I::MessageExpiryInterval => Property::MessageExpiryInterval(r.u32("property value")?),
        I::ContentType => Property::ContentType(r.string("content type")?),
        I::ResponseTopic => Property::ResponseTopic(TopicName::new(r.utf8("response topic")?).map_err(|_| {
            DecodeError::InvalidPropertyValue { property: id, reason: "response topic must be a valid topic name" }
        })?),
        I::CorrelationData => Property::CorrelationData(r.binary("correlation data")?),
        I::SubscriptionIdentifier => Property::SubscriptionIdentifier(r.varint("subscription identifier")?),
        I::SessionExpiryInterval => Property::SessionExpiryInterval(r.u32("property value")?),
        I::AssignedClientIdentifier => Property::AssignedClientIdentifier(r.string("assigned client identifier")?),
        I::ServerKeepAlive => Property::ServerKeepAlive(r.u16("property value")?),
        I::AuthenticationMethod => Property::AuthenticationMethod(r.string("authentication method")?),
        I::AuthenticationData => Property::AuthenticationData(r.binary("authentication data")?),
        I::RequestProblemInformation => Property::RequestProblemInformation(flag(r)?),
        I::WillDelayInterval => Property::WillDelayInterval(r.u32("property value")?),
        I::RequestResponseInformation => Property::RequestResponseInformation(flag(r)?),
        I::ResponseInformation => Property::ResponseInformation(r.string("response information")?),
        I::ServerReference => Property::ServerReference(r.string("server reference")?),
        I::ReasonString => Property::ReasonString(r.string("reason string")?),
        I::ReceiveMaximum => Property::ReceiveMaximum(r.u16("property value")?),
        I::TopicAliasMaximum => Property::TopicAliasMaximum(r.u16("property value")?),
        I::TopicAlias => Property::TopicAlias(r.u16("property value")?),
        I::MaximumQoS => Property::MaximumQoS(match r.u8("property value")? {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => return Err(DecodeError::InvalidPropertyValue { property: id, reason: "maximum QoS must be 0 or 1" }),
        }),
        I::RetainAvailable => Property::RetainAvailable(flag(r)?),
        I::UserProperty => Property::UserProperty(r.string("user property name")?, r.string("user property value")?),
        I::MaximumPacketSize => Property::MaximumPacketSize(r.u32("property value")?),
        I::WildcardSubscriptionAvailable => Property::WildcardSubscriptionAvailable(flag(r)?),
        I::SubscriptionIdentifierAvailable => Property::SubscriptionIdentifierAvailable(flag(r)?),
        I::SharedSubscriptionAvailable => Property::SharedSubscriptionAvailable(flag(r)?),
    })
}

fn read_packet_properties(r: &mut Reader, level: ProtocolLevel) -> Result<Properties, DecodeError> {
    if level.is_v5() { read_properties(r, PropertyPlace::Packet(r.packet_type())) } else { Ok(Properties::new()) }
}

fn read_reason(r: &mut Reader) -> Result<ReasonCode, DecodeError> {
    let code = r.u8("reason code")?;
    ReasonCode::from_u8(code)
        .filter(|reason| reason.allowed_in(r.packet_type()))
        .ok_or(DecodeError::InvalidReasonCode { packet_type: r.packet_type(), code })
}

fn read_connect(mut r: Reader) -> Result<Packet, DecodeError> {
    let name = r.binary("protocol name")?;
    let level_byte = r.u8("protocol level")?;
    let name = match &name[..] {
        b"MQTT" => "MQTT",
        b"MQIsdp" => "MQIsdp",
        other => return Err(DecodeError::InvalidProtocolName(String::from_utf8_lossy(other).into_owned())),
    };
    let level = ProtocolLevel::from_level(level_byte).ok_or(DecodeError::UnsupportedProtocolLevel(level_byte))?;
    if level.protocol_name() != name {
        return Err(DecodeError::ProtocolNameLevelMismatch { name, level: level_byte });
    }
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ReservedConnectFlag);
    }
    let clean_start = flags & 0x02 != 0;
    let has_will = flags & 0x04 != 0;
    let will_qos_bits = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !has_will && (will_qos_bits != 0 || will_retain) {
        return Err(DecodeError::InconsistentWillFlags);
    }
    let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQos(will_qos_bits))?;
    if has_password && !has_username && !level.is_v5() {
        return Err(DecodeError::PasswordWithoutUsername(level.level()));
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = read_packet_properties(&mut r, level)?;
    let client_id = r.string("client identifier")?;
    let will = if has_will {
        let properties = if level.is_v5() { read_properties(&mut r, PropertyPlace::Will)? } else { Properties::new() };
        let topic = TopicName::new(r.utf8("will topic")?).map_err(DecodeError::InvalidTopicName)?;
        let payload = r.binary("will payload")?;
        Some(Will { topic, payload, qos: will_qos, retain: will_retain, properties })
    } else {
        None
    };
    let username = if has_username { Some(r.string("user name")?) } else { None };
    let password = if has_password { Some(r.binary("password")?) } else { None };
    r.finish()?;
    Ok(Packet::Connect(Connect { level, clean_start, keep_alive, client_id, will, username, password, properties }))
}

fn read_connack(mut r: Reader, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let flags = r.u8("acknowledge flags")?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::ReservedConnackFlags(flags));
    }
    let reason = if level.is_v5() {
        read_reason(&mut r)?
    } else {
        let code = r.u8("return code")?;
        ReasonCode::from_v3_connack_code(code)
            .ok_or(DecodeError::InvalidReasonCode { packet_type: PacketType::Connack, code })?
    };
    let properties = read_packet_properties(&mut r, level)?;
    r.finish()?;
    Ok(Packet::Connack(Connack { session_present: flags & 1 != 0, reason, properties }))
}

fn read_publish(mut r: Reader, flags: u8, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQos(3))?;
    let topic = r.utf8("topic name")?;
    let packet_id = if qos == QoS::AtMostOnce { None } else { Some(r.packet_id()?) };
    let properties = read_packet_properties(&mut r, level)?;
    let topic = if topic.is_empty() && properties.topic_alias().is_some() {
        TopicName::alias_only()
    } else {
        TopicName::new(topic).map_err(DecodeError::InvalidTopicName)?
    };
    Ok(Packet::Publish(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    }))
}

fn read_ack(mut r: Reader, level: ProtocolLevel) -> Result<Ack, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut ack = Ack::new(packet_id);
    if level.is_v5() && !r.is_empty() {
        ack.reason = read_reason(&mut r)?;
        if !r.is_empty() {
            ack.properties = read_packet_properties(&mut r, level)?;
        }
    }
    r.finish()?;
    Ok(ack)
}

fn subscription_options(
    byte: u8,
    level: ProtocolLevel,
    filter: &TopicFilter,
) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if level.is_v5() { 0b1100_0000 } else { 0b1111_1100 };
    if byte & reserved != 0 {
        return Err(DecodeError::ReservedSubscriptionOptions(byte));
    }
    let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidQos(byte & 0b11))?;
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtNewSubscribe,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::InvalidRetainHandling),
    };
    let no_local = byte & 0b0100 != 0;
    if no_local && filter.share_group().is_some() {
        return Err(DecodeError::NoLocalOnSharedSubscription(filter.as_str().to_owned()));
    }
    Ok(SubscriptionOptions { qos, no_local, retain_as_published: byte & 0b1000 != 0, retain_handling })
}

fn read_filter(r: &mut Reader) -> Result<TopicFilter, DecodeError> {
    TopicFilter::new(r.utf8("topic filter")?).map_err(DecodeError::InvalidTopicFilter)
}

fn read_subscribe(mut r: Reader, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = read_packet_properties(&mut r, level)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = read_filter(&mut r)?;
        let options = subscription_options(r.u8("subscription options")?, level, &filter)?;
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Subscribe));
    }
    Ok(Packet::Subscribe(Subscribe { packet_id, filters, properties }))
}

fn read_suback(mut r: Reader, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = read_packet_properties(&mut r, level)?;
    let mut reasons = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        reasons.push(if level.is_v5() {
            read_reason(&mut r)?
        } else {
            match r.u8("return code")? {
                0 => ReasonCode::Success,
                1 => ReasonCode::GrantedQoS1,
                2 => ReasonCode::GrantedQoS2,
                0x80 => ReasonCode::UnspecifiedError,
                code => return Err(DecodeError::InvalidReasonCode { packet_type: PacketType::Suback, code }),
            }
        });
    }
    if reasons.is_empty() {
        return Err(DecodeError::NoReasonCodes(PacketType::Suback));
    }
    Ok(Packet::Suback(Suback { packet_id, reasons, properties }))
}

fn read_unsubscribe(mut r: Reader, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = read_packet_properties(&mut r, level)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(read_filter(&mut r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Unsubscribe));
    }
    Ok(Packet::Unsubscribe(Unsubscribe { packet_id, filters, properties }))
}

fn read_unsuback(mut r: Reader, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = read_packet_properties(&mut r, level)?;
    let mut reasons = Vec::new();
    if level.is_v5() {
        while !r.is_empty() {
            reasons.push(read_reason(&mut r)?);
        }
        if reasons.is_empty() {
            return Err(DecodeError::NoReasonCodes(PacketType::Unsuback));
        }
    }
    r.finish()?;
    Ok(Packet::Unsuback(Unsuback { packet_id, reasons, properties }))
}

fn read_disconnect(mut r: Reader, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let mut disconnect = Disconnect::normal();
    if level.is_v5() && !r.is_empty() {
        disconnect.reason = read_reason(&mut r)?;
        if !r.is_empty() {
            disconnect.properties = read_packet_properties(&mut r, level)?;
        }
    }
    r.finish()?;
    Ok(Packet::Disconnect(disconnect))
}

fn read_auth(mut r: Reader) -> Result<Packet, DecodeError> {
    let mut auth = Auth { reason: ReasonCode::Success, properties: Properties::new() };
    if !r.is_empty() {
        auth.reason = read_reason(&mut r)?;
        if !r.is_empty() {
            auth.properties = read_properties(&mut r, PropertyPlace::Packet(PacketType::Auth))?;
        }
    }
    r.finish()?;
    Ok(Packet::Auth(auth))
}
