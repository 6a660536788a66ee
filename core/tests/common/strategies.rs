//! Proptest strategies for valid MQTT packets of every protocol level.
//!
//! At MQTT 5 every field varies, properties included (each packet's allow-list, single-use
//! properties at most once, User Property and PUBLISH's Subscription Identifier repeated, value
//! ranges respected, in any order). At levels 3 and 4 the packets are the "canonical" ones that
//! those levels can carry: no properties, success reasons for acknowledgements and DISCONNECT,
//! CONNACK and SUBACK reasons that have an old return code, UNSUBACK without reasons, no AUTH,
//! and a CONNECT password only together with a user name.
//!
//! The property allow-list below is written from the specification (MQTT 5.0, table 2-4),
//! independently of the codec's own copy, so that the tests check the codec against it.

use std::num::NonZeroU16;

use bytes::Bytes;
use bytestring::ByteString;
use moat_mqtt_core::codec::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, PacketId, PacketType, PayloadFormat, Properties, Property,
    PropertyId, ProtocolLevel, Publish, QoS, ReasonCode, RetainHandling, Suback, Subscribe, SubscriptionOptions,
    Unsuback, Unsubscribe, Will,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Where a property list sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The property section of a packet of this type.
    Packet(PacketType),
    /// The will properties of a CONNECT.
    Will,
}

/// Every protocol level.
pub(crate) const LEVELS: [ProtocolLevel; 3] = [ProtocolLevel::V3_1, ProtocolLevel::V3_1_1, ProtocolLevel::V5];

// ---------------------------------------------------------------------------------------------
// Scalars, strings and binary data

/// Any character allowed in a UTF-8 Encoded String (everything but U+0000), mostly ASCII.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        3 => proptest::char::range('\u{1}', '\u{7F}'),
        2 => any::<char>().prop_filter("U+0000 is not allowed in strings", |c| *c != '\0'),
    ]
}

/// A character of a topic level: no separator, no wildcard, no U+0000.
fn level_char() -> impl Strategy<Value = char> {
    text_char().prop_filter("not a separator or a wildcard", |c| !matches!(c, '/' | '+' | '#'))
}

/// A UTF-8 Encoded String of up to `max_chars` characters, possibly empty, non-ASCII included.
pub(crate) fn mqtt_string(max_chars: usize) -> impl Strategy<Value = ByteString> {
    vec(text_char(), 0..=max_chars).prop_map(|chars| ByteString::from(chars.into_iter().collect::<String>()))
}

/// Binary Data of up to `max_len` bytes.
pub(crate) fn binary(max_len: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max_len).prop_map(Bytes::from)
}

/// A PUBLISH payload: mostly small, sometimes past 127 bytes (two-byte remaining length), rarely
/// past 16 KiB (three-byte remaining length; filled by a pattern to keep generation cheap).
pub(crate) fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => binary(64),
        2 => vec(any::<u8>(), 65..400).prop_map(Bytes::from),
        1 => (any::<u8>(), 16_300usize..17_000)
            .prop_map(|(seed, len)| (0..len).map(|i| seed.wrapping_add(i as u8)).collect::<Bytes>()),
    ]
}

/// A non-zero packet identifier.
pub(crate) fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|v| NonZeroU16::new(v).expect("range starts at 1"))
}

/// Any QoS.
pub(crate) fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

/// A variable byte integer value in 1..=268,435,455, spread over the 1- to 4-byte encodings.
fn varint_value() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..128, 128u32..16_384, 16_384u32..2_097_152, 2_097_152u32..=268_435_455]
}

// ---------------------------------------------------------------------------------------------
// Topics

/// One level of a topic name or filter (possibly empty).
fn topic_level() -> impl Strategy<Value = String> {
    vec(level_char(), 0..6).prop_map(|chars| chars.into_iter().collect())
}

/// A valid, non-empty topic name: levels without wildcards joined by `/`, empty levels and a
/// leading `$` possible.
pub(crate) fn topic_name() -> impl Strategy<Value = TopicName> {
    (any::<bool>(), vec(topic_level(), 1..5)).prop_map(|(dollar, levels)| {
        let mut text = levels.join("/");
        if dollar {
            text.insert(0, '$');
        }
        if text.is_empty() {
            text.push('t');
        }
        TopicName::new(text).expect("strategy builds valid topic names")
    })
}

/// The pattern of a topic filter: levels that are text or `+`, optionally ending in `#`.
fn filter_pattern() -> impl Strategy<Value = String> {
    let level = prop_oneof![3 => topic_level(), 1 => Just("+".to_owned())];
    (vec(level, 0..5), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash {
            levels.push("#".to_owned());
        }
        let text = levels.join("/");
        if text.is_empty() { "+".to_owned() } else { text }
    })
}

/// A valid topic filter: wildcards placed validly, sometimes `$share/<group>/<pattern>`.
pub(crate) fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let group = vec(level_char(), 1..6).prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![
        4 => filter_pattern().prop_map(|mut text| {
            // Starting with `$share/` would make it a shared subscription, which is the other arm.
            if text.starts_with("$share/") {
                text.insert(0, 'x');
            }
            text
        }),
        1 => (group, filter_pattern()).prop_map(|(group, pattern)| format!("$share/{group}/{pattern}")),
    ]
    .prop_map(|text| TopicFilter::new(text).expect("strategy builds valid topic filters"))
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Whether MQTT 5 allows property `id` at `place` (specification table 2-4).
pub(crate) fn property_allowed(id: PropertyId, place: Place) -> bool {
    use PacketType as T;
    use PropertyId as I;
    let packet = |types: &[PacketType]| matches!(place, Place::Packet(t) if types.contains(&t));
    match id {
        I::PayloadFormatIndicator
        | I::MessageExpiryInterval
        | I::ContentType
        | I::ResponseTopic
        | I::CorrelationData => place == Place::Will || packet(&[T::Publish]),
        I::SubscriptionIdentifier => packet(&[T::Publish, T::Subscribe]),
        I::SessionExpiryInterval => packet(&[T::Connect, T::Connack, T::Disconnect]),
        I::AssignedClientIdentifier | I::ServerKeepAlive | I::ResponseInformation | I::MaximumQoS => {
            packet(&[T::Connack])
        }
        I::RetainAvailable
        | I::WildcardSubscriptionAvailable
        | I::SubscriptionIdentifierAvailable
        | I::SharedSubscriptionAvailable => packet(&[T::Connack]),
        I::AuthenticationMethod | I::AuthenticationData => packet(&[T::Connect, T::Connack, T::Auth]),
        I::RequestProblemInformation | I::RequestResponseInformation => packet(&[T::Connect]),
        I::WillDelayInterval => place == Place::Will,
        I::ServerReference => packet(&[T::Connack, T::Disconnect]),
        I::ReasonString => packet(&[
            T::Connack,
            T::Puback,
            T::Pubrec,
            T::Pubrel,
            T::Pubcomp,
            T::Suback,
            T::Unsuback,
            T::Disconnect,
            T::Auth,
        ]),
        I::ReceiveMaximum | I::TopicAliasMaximum | I::MaximumPacketSize => packet(&[T::Connect, T::Connack]),
        I::TopicAlias => packet(&[T::Publish]),
        I::UserProperty => !packet(&[T::Pingreq, T::Pingresp]),
    }
}

/// Every property identifier the specification defines.
pub(crate) fn all_property_ids() -> impl Iterator<Item = PropertyId> {
    (0..=u8::MAX).filter_map(PropertyId::from_u8)
}

/// A value for property `id`, within its allowed range.
pub(crate) fn property_value(id: PropertyId) -> BoxedStrategy<Property> {
    use Property as P;
    use PropertyId as I;
    let string = || mqtt_string(12);
    match id {
        I::PayloadFormatIndicator => prop_oneof![Just(PayloadFormat::Unspecified), Just(PayloadFormat::Utf8)]
            .prop_map(P::PayloadFormatIndicator)
            .boxed(),
        I::MessageExpiryInterval => any::<u32>().prop_map(P::MessageExpiryInterval).boxed(),
        I::ContentType => string().prop_map(P::ContentType).boxed(),
        I::ResponseTopic => topic_name().prop_map(P::ResponseTopic).boxed(),
        I::CorrelationData => binary(16).prop_map(P::CorrelationData).boxed(),
        I::SubscriptionIdentifier => varint_value().prop_map(P::SubscriptionIdentifier).boxed(),
        I::SessionExpiryInterval => any::<u32>().prop_map(P::SessionExpiryInterval).boxed(),
        I::AssignedClientIdentifier => string().prop_map(P::AssignedClientIdentifier).boxed(),
        I::ServerKeepAlive => any::<u16>().prop_map(P::ServerKeepAlive).boxed(),
        I::AuthenticationMethod => string().prop_map(P::AuthenticationMethod).boxed(),
        I::AuthenticationData => binary(16).prop_map(P::AuthenticationData).boxed(),
        I::RequestProblemInformation => any::<bool>().prop_map(P::RequestProblemInformation).boxed(),
        I::WillDelayInterval => any::<u32>().prop_map(P::WillDelayInterval).boxed(),
        I::RequestResponseInformation => any::<bool>().prop_map(P::RequestResponseInformation).boxed(),
        I::ResponseInformation => string().prop_map(P::ResponseInformation).boxed(),
        I::ServerReference => string().prop_map(P::ServerReference).boxed(),
        I::ReasonString => string().prop_map(P::ReasonString).boxed(),
        I::ReceiveMaximum => (1..=u16::MAX).prop_map(P::ReceiveMaximum).boxed(),
        I::TopicAliasMaximum => any::<u16>().prop_map(P::TopicAliasMaximum).boxed(),
        I::TopicAlias => (1..=u16::MAX).prop_map(P::TopicAlias).boxed(),
        I::MaximumQoS => prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)].prop_map(P::MaximumQoS).boxed(),
        I::RetainAvailable => any::<bool>().prop_map(P::RetainAvailable).boxed(),
        I::UserProperty => (string(), string()).prop_map(|(k, v)| P::UserProperty(k, v)).boxed(),
        I::MaximumPacketSize => (1..=u32::MAX).prop_map(P::MaximumPacketSize).boxed(),
        I::WildcardSubscriptionAvailable => any::<bool>().prop_map(P::WildcardSubscriptionAvailable).boxed(),
        I::SubscriptionIdentifierAvailable => any::<bool>().prop_map(P::SubscriptionIdentifierAvailable).boxed(),
        I::SharedSubscriptionAvailable => any::<bool>().prop_map(P::SharedSubscriptionAvailable).boxed(),
    }
}

/// Whether a property list at `place` may hold `id` more than once.
fn repeatable(id: PropertyId, place: Place) -> bool {
    id == PropertyId::UserProperty
        || (id == PropertyId::SubscriptionIdentifier && place == Place::Packet(PacketType::Publish))
}

/// An MQTT 5 property list valid at `place`, in any order; often empty.
pub(crate) fn properties_at(place: Place) -> BoxedStrategy<Properties> {
    let singles: Vec<BoxedStrategy<Option<Property>>> = all_property_ids()
        .filter(|&id| property_allowed(id, place) && !repeatable(id, place))
        .map(|id| proptest::option::weighted(0.3, property_value(id)).boxed())
        .collect();
    let repeated: Vec<BoxedStrategy<Vec<Property>>> = all_property_ids()
        .filter(|&id| property_allowed(id, place) && repeatable(id, place))
        .map(|id| vec(property_value(id), 0..3).boxed())
        .collect();
    let full = (singles, repeated)
        .prop_map(|(singles, repeated)| {
            singles.into_iter().flatten().chain(repeated.into_iter().flatten()).collect::<Vec<_>>()
        })
        .prop_shuffle()
        .prop_map(Properties::from_iter);
    prop_oneof![1 => Just(Properties::new()), 3 => full].boxed()
}

/// The properties of a packet of type `packet_type` at `level`: none before MQTT 5.
pub(crate) fn properties(level: ProtocolLevel, place: Place) -> BoxedStrategy<Properties> {
    if level.is_v5() { properties_at(place) } else { Just(Properties::new()).boxed() }
}

// ---------------------------------------------------------------------------------------------
// Reason codes

/// A reason code MQTT 5 allows in a packet of type `packet_type`, Success often.
pub(crate) fn v5_reason(packet_type: PacketType) -> BoxedStrategy<ReasonCode> {
    let allowed: Vec<ReasonCode> =
        (0..=u8::MAX).filter_map(ReasonCode::from_u8).filter(|r| r.allowed_in(packet_type)).collect();
    assert!(!allowed.is_empty(), "{packet_type} has reason codes");
    prop_oneof![1 => Just(ReasonCode::Success), 3 => select(allowed)].boxed()
}

/// The CONNACK reasons that have an MQTT 3.1/3.1.1 return code of their own.
const V3_CONNACK_REASONS: [ReasonCode; 6] = [
    ReasonCode::Success,
    ReasonCode::UnsupportedProtocolVersion,
    ReasonCode::ClientIdentifierNotValid,
    ReasonCode::ServerUnavailable,
    ReasonCode::BadUserNameOrPassword,
    ReasonCode::NotAuthorized,
];

/// The SUBACK reasons MQTT 3.1/3.1.1 can carry.
const V3_SUBACK_REASONS: [ReasonCode; 4] =
    [ReasonCode::Success, ReasonCode::GrantedQoS1, ReasonCode::GrantedQoS2, ReasonCode::UnspecifiedError];

// ---------------------------------------------------------------------------------------------
// Packets

/// A will message for a CONNECT at `level`.
pub(crate) fn will(level: ProtocolLevel) -> impl Strategy<Value = Will> {
    (topic_name(), binary(32), qos(), any::<bool>(), properties(level, Place::Will))
        .prop_map(|(topic, payload, qos, retain, properties)| Will { topic, payload, qos, retain, properties })
}

/// A CONNECT announcing `level`.
pub(crate) fn connect(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        any::<u16>(),
        mqtt_string(23),
        proptest::option::of(will(level)),
        proptest::option::of(mqtt_string(12)),
        proptest::option::of(binary(16)),
        properties(level, Place::Packet(PacketType::Connect)),
    )
        .prop_map(move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
            // Before MQTT 5 a password needs a user name (MQTT-3.1.2-22).
            let password = if level.is_v5() || username.is_some() { password } else { None };
            Packet::Connect(Connect { level, clean_start, keep_alive, client_id, will, username, password, properties })
        })
}

/// A CONNACK at `level`.
pub(crate) fn connack(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    let reason =
        if level.is_v5() { v5_reason(PacketType::Connack) } else { select(V3_CONNACK_REASONS.to_vec()).boxed() };
    (any::<bool>(), reason, properties(level, Place::Packet(PacketType::Connack))).prop_map(
        |(session_present, reason, properties)| {
            // A refusal never reports a session (MQTT-3.2.2-4 in 3.1.1, MQTT-3.2.2-6 in 5.0).
            let session_present = session_present && reason == ReasonCode::Success;
            Packet::Connack(Connack { session_present, reason, properties })
        },
    )
}

/// A PUBLISH at `level`; at MQTT 5 sometimes with an empty topic and a Topic Alias.
pub(crate) fn publish(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        properties(level, Place::Packet(PacketType::Publish)),
        payload(),
        any::<bool>(),
    )
        .prop_map(|(qos, dup, retain, topic, id, properties, payload, alias_only)| {
            let topic = if alias_only && properties.topic_alias().is_some() { TopicName::alias_only() } else { topic };
            let qos0 = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !qos0,
                qos,
                retain,
                topic,
                packet_id: (!qos0).then_some(id),
                properties,
                payload,
            })
        })
}

/// A PUBACK, PUBREC, PUBREL or PUBCOMP at `level`.
pub(crate) fn ack(level: ProtocolLevel, packet_type: PacketType) -> impl Strategy<Value = Packet> {
    let reason = if level.is_v5() { v5_reason(packet_type) } else { Just(ReasonCode::Success).boxed() };
    (packet_id(), reason, properties(level, Place::Packet(packet_type))).prop_map(
        move |(packet_id, reason, properties)| {
            let ack = Ack { packet_id, reason, properties };
            match packet_type {
                PacketType::Puback => Packet::Puback(ack),
                PacketType::Pubrec => Packet::Pubrec(ack),
                PacketType::Pubrel => Packet::Pubrel(ack),
                PacketType::Pubcomp => Packet::Pubcomp(ack),
                other => unreachable!("{other} is not an acknowledgement"),
            }
        },
    )
}

/// Subscription options at `level`: before MQTT 5 only the QoS.
pub(crate) fn subscription_options(level: ProtocolLevel) -> BoxedStrategy<SubscriptionOptions> {
    if !level.is_v5() {
        return qos().prop_map(SubscriptionOptions::qos).boxed();
    }
    let retain_handling = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendAtNewSubscribe),
        Just(RetainHandling::DoNotSend),
    ];
    (qos(), any::<bool>(), any::<bool>(), retain_handling)
        .prop_map(|(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        })
        .boxed()
}

/// A SUBSCRIBE at `level` with 1 to 4 filters.
pub(crate) fn subscribe(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    let entry = (topic_filter(), subscription_options(level)).prop_map(|(filter, mut options)| {
        // No Local on a shared subscription is a protocol error (MQTT-3.8.3-4).
        if filter.share_group().is_some() {
            options.no_local = false;
        }
        (filter, options)
    });
    (packet_id(), vec(entry, 1..5), properties(level, Place::Packet(PacketType::Subscribe)))
        .prop_map(|(packet_id, filters, properties)| Packet::Subscribe(Subscribe { packet_id, filters, properties }))
}

/// A SUBACK at `level` with 1 to 4 reasons.
pub(crate) fn suback(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    let reason = if level.is_v5() { v5_reason(PacketType::Suback) } else { select(V3_SUBACK_REASONS.to_vec()).boxed() };
    (packet_id(), vec(reason, 1..5), properties(level, Place::Packet(PacketType::Suback)))
        .prop_map(|(packet_id, reasons, properties)| Packet::Suback(Suback { packet_id, reasons, properties }))
}

/// An UNSUBSCRIBE at `level` with 1 to 4 filters.
pub(crate) fn unsubscribe(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    (packet_id(), vec(topic_filter(), 1..5), properties(level, Place::Packet(PacketType::Unsubscribe))).prop_map(
        |(packet_id, filters, properties)| Packet::Unsubscribe(Unsubscribe { packet_id, filters, properties }),
    )
}

/// An UNSUBACK at `level`: 1 to 4 reasons at MQTT 5, none before.
pub(crate) fn unsuback(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    let reasons =
        if level.is_v5() { vec(v5_reason(PacketType::Unsuback), 1..5).boxed() } else { Just(Vec::new()).boxed() };
    (packet_id(), reasons, properties(level, Place::Packet(PacketType::Unsuback)))
        .prop_map(|(packet_id, reasons, properties)| Packet::Unsuback(Unsuback { packet_id, reasons, properties }))
}

/// A DISCONNECT at `level`.
pub(crate) fn disconnect(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    let reason = if level.is_v5() { v5_reason(PacketType::Disconnect) } else { Just(ReasonCode::Success).boxed() };
    (reason, properties(level, Place::Packet(PacketType::Disconnect)))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
}

/// An AUTH (MQTT 5 only).
pub(crate) fn auth() -> impl Strategy<Value = Packet> {
    (v5_reason(PacketType::Auth), properties_at(Place::Packet(PacketType::Auth)))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

/// Any valid packet of `level`, every type equally likely; a CONNECT announces `level`.
pub(crate) fn packet(level: ProtocolLevel) -> BoxedStrategy<Packet> {
    let mut arms: Vec<BoxedStrategy<Packet>> = vec![
        connect(level).boxed(),
        connack(level).boxed(),
        publish(level).boxed(),
        ack(level, PacketType::Puback).boxed(),
        ack(level, PacketType::Pubrec).boxed(),
        ack(level, PacketType::Pubrel).boxed(),
        ack(level, PacketType::Pubcomp).boxed(),
        subscribe(level).boxed(),
        suback(level).boxed(),
        unsubscribe(level).boxed(),
        unsuback(level).boxed(),
        Just(Packet::Pingreq).boxed(),
        Just(Packet::Pingresp).boxed(),
        disconnect(level).boxed(),
    ];
    if level.is_v5() {
        arms.push(auth().boxed());
    }
    proptest::strategy::Union::new(arms).boxed()
}

/// A level and a valid packet of it.
pub(crate) fn level_and_packet() -> impl Strategy<Value = (ProtocolLevel, Packet)> {
    select(LEVELS.to_vec()).prop_flat_map(|level| (Just(level), packet(level)))
}

// ---------------------------------------------------------------------------------------------
// Loose packets: valid ones with one change that may make them invalid

/// Any property at all, allowed or not, sometimes with a value out of range or a string the
/// protocol forbids.
pub(crate) fn loose_property() -> BoxedStrategy<Property> {
    use Property as P;
    let ids: Vec<PropertyId> = all_property_ids().collect();
    prop_oneof![
        2 => select(ids).prop_flat_map(property_value),
        1 => select(vec![
            P::SubscriptionIdentifier(0),
            P::SubscriptionIdentifier(268_435_456),
            P::SubscriptionIdentifier(u32::MAX),
            P::ReceiveMaximum(0),
            P::TopicAlias(0),
            P::MaximumPacketSize(0),
            P::MaximumQoS(QoS::ExactlyOnce),
            P::ResponseTopic(TopicName::alias_only()),
            P::UserProperty(ByteString::from_static("a\0b"), ByteString::new()),
            P::UserProperty(ByteString::new(), ByteString::from_static("\0")),
            P::ReasonString(ByteString::from_static("\0")),
            P::ContentType(ByteString::from_static("x\0")),
            P::AuthenticationMethod(ByteString::from_static("\0")),
        ]),
    ]
    .boxed()
}

/// One change to a valid packet.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    /// Insert a property into the packet's (or its will's) properties.
    AddProperty { property: Property, at: proptest::sample::Index, to_will: bool },
    /// Replace the packet's reason code(s) with this one.
    Reason(ReasonCode),
    /// Put U+0000 into the client identifier or user name.
    Nul { in_username: bool },
    /// Make the topic of a PUBLISH or will empty.
    EmptyTopic,
    /// Change the QoS of a PUBLISH without touching DUP or the packet identifier.
    Qos(QoS),
    /// Set No Local on every subscription.
    NoLocal,
    /// Empty the filter or reason list.
    EmptyList,
    /// Drop the user name, keeping the password.
    DropUsername,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (loose_property(), any::<proptest::sample::Index>(), any::<bool>())
            .prop_map(|(property, at, to_will)| Mutation::AddProperty { property, at, to_will }),
        2 => (0..=u8::MAX).prop_filter_map("a defined reason code", ReasonCode::from_u8).prop_map(Mutation::Reason),
        1 => any::<bool>().prop_map(|in_username| Mutation::Nul { in_username }),
        1 => Just(Mutation::EmptyTopic),
        1 => qos().prop_map(Mutation::Qos),
        1 => Just(Mutation::NoLocal),
        1 => Just(Mutation::EmptyList),
        1 => Just(Mutation::DropUsername),
    ]
}

fn insert_property(props: &mut Properties, property: Property, at: proptest::sample::Index) {
    let mut list: Vec<Property> = props.iter().cloned().collect();
    list.insert(at.index(list.len() + 1), property);
    *props = Properties::from_iter(list);
}

fn with_nul(s: &ByteString) -> ByteString {
    ByteString::from(format!("{s}\0"))
}

/// Applies `m` to `p` where it makes sense; otherwise leaves `p` as it is.
pub(crate) fn mutate(p: &mut Packet, m: Mutation) {
    match (p, m) {
        (Packet::Connect(c), Mutation::AddProperty { property, at, to_will: true }) if c.will.is_some() => {
            insert_property(&mut c.will.as_mut().expect("checked").properties, property, at);
        }
        (p, Mutation::AddProperty { property, at, .. }) => {
            if let Some(props) = properties_mut(p) {
                insert_property(props, property, at);
            }
        }
        (Packet::Connack(c), Mutation::Reason(r)) => c.reason = r,
        (Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a), Mutation::Reason(r)) => {
            a.reason = r;
        }
        (Packet::Suback(s), Mutation::Reason(r)) => s.reasons.push(r),
        (Packet::Unsuback(u), Mutation::Reason(r)) => u.reasons.push(r),
        (Packet::Disconnect(d), Mutation::Reason(r)) => d.reason = r,
        (Packet::Auth(a), Mutation::Reason(r)) => a.reason = r,
        (Packet::Connect(c), Mutation::Nul { in_username: true }) if c.username.is_some() => {
            c.username = c.username.as_ref().map(with_nul);
        }
        (Packet::Connect(c), Mutation::Nul { .. }) => c.client_id = with_nul(&c.client_id),
        (Packet::Connect(c), Mutation::EmptyTopic) => {
            if let Some(w) = &mut c.will {
                w.topic = TopicName::alias_only();
            }
        }
        (Packet::Publish(p), Mutation::EmptyTopic) => p.topic = TopicName::alias_only(),
        (Packet::Publish(p), Mutation::Qos(q)) => p.qos = q,
        (Packet::Subscribe(s), Mutation::NoLocal) => s.filters.iter_mut().for_each(|(_, o)| o.no_local = true),
        (Packet::Subscribe(s), Mutation::EmptyList) => s.filters.clear(),
        (Packet::Unsubscribe(u), Mutation::EmptyList) => u.filters.clear(),
        (Packet::Suback(s), Mutation::EmptyList) => s.reasons.clear(),
        (Packet::Unsuback(u), Mutation::EmptyList) => u.reasons.clear(),
        (Packet::Connect(c), Mutation::DropUsername) => c.username = None,
        _ => {}
    }
}

fn properties_mut(p: &mut Packet) -> Option<&mut Properties> {
    Some(match p {
        Packet::Connect(c) => &mut c.properties,
        Packet::Connack(c) => &mut c.properties,
        Packet::Publish(p) => &mut p.properties,
        Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => &mut a.properties,
        Packet::Subscribe(s) => &mut s.properties,
        Packet::Suback(s) => &mut s.properties,
        Packet::Unsubscribe(u) => &mut u.properties,
        Packet::Unsuback(u) => &mut u.properties,
        Packet::Disconnect(d) => &mut d.properties,
        Packet::Auth(a) => &mut a.properties,
        Packet::Pingreq | Packet::Pingresp => return None,
    })
}

/// A packet of `level` that may break a rule: a valid one with one or two [`Mutation`]s.
pub(crate) fn loose_packet(level: ProtocolLevel) -> impl Strategy<Value = Packet> {
    (packet(level), vec(mutation(), 1..3)).prop_map(|(mut p, mutations)| {
        for m in mutations {
            mutate(&mut p, m);
        }
        p
    })
}
