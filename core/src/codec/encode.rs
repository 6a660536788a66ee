//! The encoder: one packet at a time, appended to a caller-owned buffer.

use super::property::PropertyPlace;
use super::wire::{Counter, Sink, varint_len};
use super::{
    Ack, Connack, Connect, EncodeError, MAX_REMAINING_LENGTH, Packet, PacketType, Properties, Property, ProtocolLevel,
    Publish, QoS, ReasonCode, Suback, Subscribe, SubscriptionOptions, Unsuback, Unsubscribe,
};

/// Appends `packet`, encoded for protocol `level`, to `out`, and returns how many bytes it took.
///
/// At levels 3 and 4 properties are left out and reason codes become the older return codes
/// (see [`ReasonCode::v3_connack_code`] and [`ReasonCode::v3_suback_code`]); reasons of
/// acknowledgements and DISCONNECT, which those levels cannot carry, are left out too.
///
/// # Errors
/// [`EncodeError`] when the packet cannot be sent as it is; `out` is then left unchanged.
pub fn encode(packet: &Packet, level: ProtocolLevel, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let mut counter = Counter::default();
    let first_byte = body(packet, level, &mut counter)?;
    let remaining = counter.0;
    if remaining > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(remaining));
    }
    let start = out.len();
    out.reserve(1 + varint_len(remaining) + remaining);
    out.put_u8(first_byte);
    out.put_varint(remaining as u32);
    if let Err(e) = body(packet, level, out) {
        out.truncate(start);
        return Err(e);
    }
    Ok(out.len() - start)
}

/// The number of bytes [`encode`] would append for `packet` at `level`.
///
/// # Errors
/// The same as [`encode`].
pub fn encoded_len(packet: &Packet, level: ProtocolLevel) -> Result<usize, EncodeError> {
    let mut counter = Counter::default();
    body(packet, level, &mut counter)?;
    if counter.0 > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(counter.0));
    }
    Ok(1 + varint_len(counter.0) + counter.0)
}

/// Writes the body of `packet` to `sink` and returns the fixed header's first byte.
fn body(packet: &Packet, level: ProtocolLevel, s: &mut impl Sink) -> Result<u8, EncodeError> {
    let packet_type = packet.packet_type();
    let flags = match packet {
        Packet::Connect(p) => write_connect(p, s).map(|()| 0)?,
        Packet::Connack(p) => write_connack(p, level, s).map(|()| 0)?,
        Packet::Publish(p) => write_publish(p, level, s)?,
        Packet::Puback(p) | Packet::Pubrec(p) | Packet::Pubcomp(p) => {
            write_ack(p, packet_type, level, s).map(|()| 0)?
        }
        Packet::Pubrel(p) => write_ack(p, packet_type, level, s).map(|()| 0b0010)?,
        Packet::Subscribe(p) => write_subscribe(p, level, s).map(|()| 0b0010)?,
        Packet::Suback(p) => write_suback(p, level, s).map(|()| 0)?,
        Packet::Unsubscribe(p) => write_unsubscribe(p, level, s).map(|()| 0b0010)?,
        Packet::Unsuback(p) => write_unsuback(p, level, s).map(|()| 0)?,
        Packet::Pingreq | Packet::Pingresp => 0,
        Packet::Disconnect(p) => {
            if level.is_v5() {
                write_reason_and_properties(p.reason, &p.properties, packet_type, false, s)?;
            }
            0
        }
        Packet::Auth(p) => {
            if !level.is_v5() {
                return Err(EncodeError::PacketTypeNotInLevel { packet_type, level });
            }
            write_reason_and_properties(p.reason, &p.properties, packet_type, true, s)?;
            0
        }
    };
    Ok((packet_type as u8) << 4 | flags)
}

/// Validates `props` for `place` and writes them with their length, at MQTT 5 only.
///
/// The rules are checked in the measuring pass only; the writing pass measures the list once
/// more for its length, then writes it.
fn write_properties<S: Sink>(props: &Properties, place: PropertyPlace, s: &mut S) -> Result<(), EncodeError> {
    if props.is_empty() {
        s.put_u8(0);
        return Ok(());
    }
    if S::MEASURING {
        check_property_list(props, place)?;
    }
    let mut counter = Counter::default();
    write_property_list(props, &mut counter)?;
    s.put_varint(u32::try_from(counter.0).map_err(|_| EncodeError::PacketTooLarge(counter.0))?);
    s.put_measured(counter.0, |s| write_property_list(props, s))
}

/// Checks that every property may appear at `place`, single ones once, with values in range.
fn check_property_list(props: &Properties, place: PropertyPlace) -> Result<(), EncodeError> {
    let mut seen = 0u64;
    for property in props {
        let id = property.id();
        if !id.allowed_in(place) {
            return Err(EncodeError::PropertyNotAllowed { property: id, place: place.to_string() });
        }
        let bit = 1u64 << (id as u8);
        if seen & bit != 0 && !id.repeatable_in(place) {
            return Err(EncodeError::DuplicateProperty(id));
        }
        seen |= bit;
        if let Some(reason) = property.range_error() {
            return Err(EncodeError::InvalidPropertyValue { property: id, reason });
        }
    }
    Ok(())
}

/// Writes the properties, unchecked but for string contents in the measuring pass.
fn write_property_list(props: &Properties, s: &mut impl Sink) -> Result<(), EncodeError> {
    for property in props {
        s.put_u8(property.id() as u8);
        match property {
            Property::PayloadFormatIndicator(v) => s.put_u8(*v as u8),
            Property::MaximumQoS(v) => s.put_u8(*v as u8),
            Property::RequestProblemInformation(v)
            | Property::RequestResponseInformation(v)
            | Property::RetainAvailable(v)
            | Property::WildcardSubscriptionAvailable(v)
            | Property::SubscriptionIdentifierAvailable(v)
            | Property::SharedSubscriptionAvailable(v) => s.put_u8(u8::from(*v)),
            Property::MessageExpiryInterval(v)
            | Property::SessionExpiryInterval(v)
            | Property::WillDelayInterval(v)
            | Property::MaximumPacketSize(v) => s.put_u32(*v),
            Property::ServerKeepAlive(v)
            | Property::ReceiveMaximum(v)
            | Property::TopicAliasMaximum(v)
            | Property::TopicAlias(v) => s.put_u16(*v),
            Property::SubscriptionIdentifier(v) => s.put_varint(*v),
            Property::ContentType(v) => s.put_string("content type", v)?,
            Property::ResponseTopic(v) => s.put_validated_string("response topic", v.as_str())?,
            Property::AssignedClientIdentifier(v) => s.put_string("assigned client identifier", v)?,
            Property::AuthenticationMethod(v) => s.put_string("authentication method", v)?,
            Property::ResponseInformation(v) => s.put_string("response information", v)?,
            Property::ServerReference(v) => s.put_string("server reference", v)?,
            Property::ReasonString(v) => s.put_string("reason string", v)?,
            Property::CorrelationData(v) => s.put_binary("correlation data", v)?,
            Property::AuthenticationData(v) => s.put_binary("authentication data", v)?,
            Property::UserProperty(k, v) => {
                s.put_string("user property name", k)?;
                s.put_string("user property value", v)?;
            }
        }
    }
    Ok(())
}

fn write_packet_properties(
    props: &Properties,
    packet_type: PacketType,
    level: ProtocolLevel,
    s: &mut impl Sink,
) -> Result<(), EncodeError> {
    if level.is_v5() { write_properties(props, PropertyPlace::Packet(packet_type), s) } else { Ok(()) }
}

fn check_reason(reason: ReasonCode, packet_type: PacketType) -> Result<(), EncodeError> {
    if reason.allowed_in(packet_type) { Ok(()) } else { Err(EncodeError::ReasonNotAllowed { packet_type, reason }) }
}

fn write_connect(p: &Connect, s: &mut impl Sink) -> Result<(), EncodeError> {
    let level = p.level;
    if p.password.is_some() && p.username.is_none() && !level.is_v5() {
        return Err(EncodeError::PasswordWithoutUsername);
    }
    s.put_string("protocol name", level.protocol_name())?;
    s.put_u8(level.level());
    let mut flags = 0u8;
    if p.clean_start {
        flags |= 0x02;
    }
    if let Some(will) = &p.will {
        flags |= 0x04 | (will.qos as u8) << 3;
        if will.retain {
            flags |= 0x20;
        }
    }
    if p.password.is_some() {
        flags |= 0x40;
    }
    if p.username.is_some() {
        flags |= 0x80;
    }
    s.put_u8(flags);
    s.put_u16(p.keep_alive);
    write_packet_properties(&p.properties, PacketType::Connect, level, s)?;
    s.put_string("client identifier", &p.client_id)?;
    if let Some(will) = &p.will {
        if level.is_v5() {
            write_properties(&will.properties, PropertyPlace::Will, s)?;
        }
        if will.topic.is_empty() {
            return Err(EncodeError::EmptyTopic);
        }
        s.put_validated_string("will topic", will.topic.as_str())?;
        s.put_binary("will payload", &will.payload)?;
    }
    if let Some(username) = &p.username {
        s.put_string("user name", username)?;
    }
    if let Some(password) = &p.password {
        s.put_binary("password", password)?;
    }
    Ok(())
}

fn write_connack(p: &Connack, level: ProtocolLevel, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.put_u8(u8::from(p.session_present));
    if level.is_v5() {
        check_reason(p.reason, PacketType::Connack)?;
        s.put_u8(p.reason as u8);
    } else {
        s.put_u8(p.reason.v3_connack_code());
    }
    write_packet_properties(&p.properties, PacketType::Connack, level, s)
}

fn qos_name(qos: QoS) -> &'static str {
    match qos {
        QoS::AtMostOnce => "QoS 0",
        QoS::AtLeastOnce => "QoS 1",
        QoS::ExactlyOnce => "QoS 2",
    }
}

fn write_publish(p: &Publish, level: ProtocolLevel, s: &mut impl Sink) -> Result<u8, EncodeError> {
    if (p.qos == QoS::AtMostOnce) == p.packet_id.is_some() {
        return Err(EncodeError::PacketIdMismatch { qos: qos_name(p.qos), has_packet_id: p.packet_id.is_some() });
    }
    if p.dup && p.qos == QoS::AtMostOnce {
        return Err(EncodeError::DupOnQos0);
    }
    if p.topic.is_empty() && !(level.is_v5() && p.properties.topic_alias().is_some()) {
        return Err(EncodeError::EmptyTopic);
    }
    s.put_validated_string("topic name", p.topic.as_str())?;
    if let Some(id) = p.packet_id {
        s.put_u16(id.get());
    }
    write_packet_properties(&p.properties, PacketType::Publish, level, s)?;
    s.put_slice(&p.payload);
    Ok(u8::from(p.dup) << 3 | (p.qos as u8) << 1 | u8::from(p.retain))
}

/// The tail of PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT and AUTH at MQTT 5, in its shortest
/// form: nothing for success without properties, the reason alone when there are no
/// properties (except AUTH, which then needs a property length), else both.
fn write_reason_and_properties(
    reason: ReasonCode,
    props: &Properties,
    packet_type: PacketType,
    needs_property_length: bool,
    s: &mut impl Sink,
) -> Result<(), EncodeError> {
    check_reason(reason, packet_type)?;
    if reason == ReasonCode::Success && props.is_empty() {
        return Ok(());
    }
    s.put_u8(reason as u8);
    if !props.is_empty() || needs_property_length {
        write_properties(props, PropertyPlace::Packet(packet_type), s)?;
    }
    Ok(())
}

fn write_ack(p: &Ack, packet_type: PacketType, level: ProtocolLevel, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.put_u16(p.packet_id.get());
    if level.is_v5() {
        write_reason_and_properties(p.reason, &p.properties, packet_type, false, s)?;
    }
    Ok(())
}

fn options_byte(options: &SubscriptionOptions, level: ProtocolLevel) -> u8 {
    let mut byte = options.qos as u8;
    if level.is_v5() {
        byte |= u8::from(options.no_local) << 2
            | u8::from(options.retain_as_published) << 3
            | (options.retain_handling as u8) << 4;
    }
    byte
}

fn write_subscribe(p: &Subscribe, level: ProtocolLevel, s: &mut impl Sink) -> Result<(), EncodeError> {
    if p.filters.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::Subscribe));
    }
    s.put_u16(p.packet_id.get());
    write_packet_properties(&p.properties, PacketType::Subscribe, level, s)?;
    for (filter, options) in &p.filters {
        if options.no_local && level.is_v5() && filter.share_group().is_some() {
            return Err(EncodeError::NoLocalOnSharedSubscription(filter.as_str().to_owned()));
        }
        s.put_validated_string("topic filter", filter.as_str())?;
        s.put_u8(options_byte(options, level));
    }
    Ok(())
}

fn write_suback(p: &Suback, level: ProtocolLevel, s: &mut impl Sink) -> Result<(), EncodeError> {
    if p.reasons.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::Suback));
    }
    s.put_u16(p.packet_id.get());
    write_packet_properties(&p.properties, PacketType::Suback, level, s)?;
    for reason in &p.reasons {
        if level.is_v5() {
            check_reason(*reason, PacketType::Suback)?;
            s.put_u8(*reason as u8);
        } else {
            s.put_u8(reason.v3_suback_code());
        }
    }
    Ok(())
}

fn write_unsubscribe(p: &Unsubscribe, level: ProtocolLevel, s: &mut impl Sink) -> Result<(), EncodeError> {
    if p.filters.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::Unsubscribe));
    }
    s.put_u16(p.packet_id.get());
    write_packet_properties(&p.properties, PacketType::Unsubscribe, level, s)?;
    for filter in &p.filters {
        s.put_validated_string("topic filter", filter.as_str())?;
    }
    Ok(())
}

fn write_unsuback(p: &Unsuback, level: ProtocolLevel, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.put_u16(p.packet_id.get());
    if level.is_v5() {
        if p.reasons.is_empty() {
            return Err(EncodeError::EmptyList(PacketType::Unsuback));
        }
        write_packet_properties(&p.properties, PacketType::Unsuback, level, s)?;
        for reason in &p.reasons {
            check_reason(*reason, PacketType::Unsuback)?;
            s.put_u8(*reason as u8);
        }
    }
    Ok(())
}
