//! One test per validation rule: the bytes that break it and the exact error the decoder gives.

use bytes::BytesMut;
use moat_mqtt_core::codec::{DEFAULT_MAX_PACKET_SIZE, DecodeError, Decoder, PacketType, PropertyId, ProtocolLevel};
use moat_mqtt_core::topic::TopicError;

use crate::{V3, V4, V5, cat, decode_err};

/// A packet with the given first byte and body; the body must be shorter than 128 bytes.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).ok().filter(|l| *l < 128).expect("short test body");
    cat(&[&[first, len], body])
}

/// A CONNECT with protocol `name`, `level` and `flags`, keep alive 60, and `rest` after that.
fn connect(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let name_len = u8::try_from(name.len()).unwrap();
    packet(0x10, &cat(&[&[0x00, name_len], name, &[level, flags, 0x00, 0x3C], rest]))
}

/// An MQTT 5 CONNECT with clean start, the properties `props` and an empty client identifier.
fn connect_v5_props(props: &[u8]) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    connect(b"MQTT", 5, 0x02, &cat(&[&[len], props, &[0x00, 0x00]]))
}

/// A QoS 0 PUBLISH to `t` at MQTT 5 with the properties `props`.
fn publish_v5_props(props: &[u8]) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    packet(0x30, &cat(&[&[0x00, 0x01, b't', len], props]))
}

/// A SUBSCRIBE with packet identifier 1, MQTT 5 properties `props` and one filter.
fn subscribe_v5(props: &[u8], filter: &[u8], options: u8) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    let filter_len = u8::try_from(filter.len()).unwrap();
    packet(0x82, &cat(&[&[0x00, 0x01, len], props, &[0x00, filter_len], filter, &[options]]))
}

/// A SUBSCRIBE at 3.1.1 with packet identifier 1 and one filter.
fn subscribe_v4(filter: &[u8], options: u8) -> Vec<u8> {
    let filter_len = u8::try_from(filter.len()).unwrap();
    packet(0x82, &cat(&[&[0x00, 0x01, 0x00, filter_len], filter, &[options]]))
}

// ---------------------------------------------------------------------------------------------
// Fixed header

/// Type 0 is reserved (3.1.1 2.2.1, 5.0 2.1.2); known from the first byte alone.
#[test]
fn reserved_packet_type_0() {
    assert_eq!(decode_err(V4, &[0x00, 0x00]), DecodeError::ReservedPacketType);
    assert_eq!(decode_err(V5, &[0x00]), DecodeError::ReservedPacketType);
    assert_eq!(decode_err(V3, &[0x0F, 0x00]), DecodeError::ReservedPacketType);
}

/// Type 15 is reserved before MQTT 5 (3.1.1 2.2.1) and AUTH at MQTT 5.
#[test]
fn auth_before_mqtt5() {
    for level in [V3, V4] {
        assert_eq!(
            decode_err(level, &[0xF0, 0x00]),
            DecodeError::PacketTypeNotInLevel { packet_type: PacketType::Auth, level }
        );
    }
}

/// Reserved fixed-header flags (MQTT-2.2.2-2; 5.0 2.1.3): PUBREL, SUBSCRIBE and UNSUBSCRIBE need
/// 0010, every other packet but PUBLISH 0000. Refused from the first byte alone.
#[test]
fn reserved_fixed_header_flags() {
    let cases: &[(ProtocolLevel, &[u8], PacketType, u8)] = &[
        (V4, &[0x60, 0x02, 0x00, 0x01], PacketType::Pubrel, 0),
        (V4, &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00], PacketType::Subscribe, 0),
        (V4, &[0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], PacketType::Unsubscribe, 0),
        (V4, &[0xC1, 0x00], PacketType::Pingreq, 1),
        (V4, &[0xD2, 0x00], PacketType::Pingresp, 2),
        (V4, &[0x41, 0x02, 0x00, 0x01], PacketType::Puback, 1),
        (V4, &[0x52, 0x02, 0x00, 0x01], PacketType::Pubrec, 2),
        (V4, &[0x74, 0x02, 0x00, 0x01], PacketType::Pubcomp, 4),
        (V4, &[0x28, 0x02, 0x00, 0x00], PacketType::Connack, 8),
        (V4, &[0x11], PacketType::Connect, 1),
        (V4, &[0x9F], PacketType::Suback, 0xF),
        (V4, &[0xB1], PacketType::Unsuback, 1),
        (V4, &[0xE8, 0x00], PacketType::Disconnect, 8),
        (V5, &[0xF1, 0x00], PacketType::Auth, 1),
        // DUP on a re-sent PUBREL is MQTT 3.1 only; 3.1.1 and 5.0 refuse it.
        (V4, &[0x6A, 0x02, 0x00, 0x01], PacketType::Pubrel, 0b1010),
        (V5, &[0x8A], PacketType::Subscribe, 0b1010),
        // MQTT 3.1 allows DUP, nothing else.
        (V3, &[0x63, 0x02, 0x00, 0x01], PacketType::Pubrel, 0b0011),
        (V3, &[0x80], PacketType::Subscribe, 0),
    ];
    for &(level, bytes, packet_type, flags) in cases {
        assert_eq!(
            decode_err(level, bytes),
            DecodeError::InvalidFixedHeaderFlags { packet_type, flags },
            "{bytes:02X?}"
        );
    }
}

/// A Variable Byte Integer has at most 4 bytes (1.5.5): a fifth is refused at once, while four
/// continuation bytes may still be followed by a final one.
#[test]
fn remaining_length_over_4_bytes() {
    assert_eq!(
        decode_err(V4, &[0xC0, 0xFF, 0xFF, 0xFF, 0xFF]),
        DecodeError::VariableIntegerTooLong { field: "remaining length" }
    );
    let mut buf = BytesMut::from(&[0xC0, 0xFF, 0xFF, 0xFF][..]);
    let decoder = Decoder::new(V4).with_max_packet_size(usize::MAX);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 4);
}

/// 256 MiB announced against the default 1 MiB limit: refused from the 5-byte header alone.
#[test]
fn oversize_packet_refused_from_the_header() {
    assert_eq!(DEFAULT_MAX_PACKET_SIZE, 1024 * 1024);
    assert_eq!(
        decode_err(V4, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]),
        DecodeError::PacketTooLarge { size: 268_435_455 + 5, max: DEFAULT_MAX_PACKET_SIZE }
    );
    // 1 MiB of body plus its 4-byte header is 5 bytes over.
    assert_eq!(
        decode_err(V4, &[0x30, 0x80, 0x80, 0x40]),
        DecodeError::PacketTooLarge { size: 1024 * 1024 + 4, max: DEFAULT_MAX_PACKET_SIZE }
    );
}

/// The limit counts the whole packet, fixed header included: exactly at it is fine.
#[test]
fn packet_at_the_limit_accepted_one_over_refused() {
    let decoder = Decoder::new(V4).with_max_packet_size(10);
    let mut at = BytesMut::from(&[0x30, 0x08, 0x00, 0x01, b't', b'1', b'2', b'3', b'4', b'5'][..]);
    assert!(matches!(decoder.decode(&mut at), Ok(Some(_))));
    let mut over = BytesMut::from(&[0x30, 0x09][..]);
    assert_eq!(decoder.decode(&mut over), Err(DecodeError::PacketTooLarge { size: 11, max: 10 }));
}

// ---------------------------------------------------------------------------------------------
// CONNECT

/// MQTT-3.1.2-1: the protocol name is `MQTT` (or `MQIsdp` for 3.1).
#[test]
fn connect_protocol_name_wrong() {
    assert_eq!(
        decode_err(V4, &connect(b"MQTX", 4, 0x02, &[0x00, 0x00])),
        DecodeError::InvalidProtocolName("MQTX".to_owned())
    );
}

/// MQTT-3.1.2-2: a level this side does not speak.
#[test]
fn connect_protocol_level_6() {
    assert_eq!(decode_err(V4, &connect(b"MQTT", 6, 0x02, &[0x00, 0x00])), DecodeError::UnsupportedProtocolLevel(6));
}

/// `MQIsdp` belongs to level 3 and `MQTT` to levels 4 and 5.
#[test]
fn connect_protocol_name_level_mismatch() {
    assert_eq!(
        decode_err(V4, &connect(b"MQIsdp", 4, 0x02, &[0x00, 0x00])),
        DecodeError::ProtocolNameLevelMismatch { name: "MQIsdp", level: 4 }
    );
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 3, 0x02, &[0x00, 0x00])),
        DecodeError::ProtocolNameLevelMismatch { name: "MQTT", level: 3 }
    );
}

/// MQTT-3.1.2-3: bit 0 of the connect flags is reserved.
#[test]
fn connect_reserved_flag_bit_0() {
    assert_eq!(decode_err(V4, &connect(b"MQTT", 4, 0x03, &[0x00, 0x00])), DecodeError::ReservedConnectFlag);
}

/// MQTT-3.1.2-13 and -15: will QoS and will retain are 0 without the will flag.
#[test]
fn connect_will_qos_or_retain_without_will_flag() {
    assert_eq!(decode_err(V4, &connect(b"MQTT", 4, 0x0A, &[0x00, 0x00])), DecodeError::InconsistentWillFlags);
    assert_eq!(decode_err(V4, &connect(b"MQTT", 4, 0x22, &[0x00, 0x00])), DecodeError::InconsistentWillFlags);
    assert_eq!(decode_err(V5, &connect(b"MQTT", 5, 0x12, &[0x00, 0x00, 0x00])), DecodeError::InconsistentWillFlags);
}

/// MQTT-3.1.2-14: will QoS 3 (flags 0001 1100).
#[test]
fn connect_will_qos_3() {
    let rest = [0x00, 0x00, 0x00, 0x01, b'w', 0x00, 0x00];
    assert_eq!(decode_err(V4, &connect(b"MQTT", 4, 0x1C, &rest)), DecodeError::InvalidQos(3));
}

/// MQTT-3.1.2-22: a password needs a user name before MQTT 5; MQTT 5 allows it alone (see the
/// `v5::connect_password_without_user_name` vector).
#[test]
fn connect_password_without_user_name_before_mqtt5() {
    let rest = [0x00, 0x00, 0x00, 0x02, b'p', b'w'];
    assert_eq!(decode_err(V4, &connect(b"MQTT", 4, 0x42, &rest)), DecodeError::PasswordWithoutUsername(4));
    assert_eq!(decode_err(V3, &connect(b"MQIsdp", 3, 0x42, &rest)), DecodeError::PasswordWithoutUsername(3));
}

// ---------------------------------------------------------------------------------------------
// Strings

/// MQTT-1.5.3-1: strings are well-formed UTF-8.
#[test]
fn invalid_utf8_in_client_id() {
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 4, 0x02, &[0x00, 0x02, 0xC3, 0x28])),
        DecodeError::InvalidUtf8 { field: "client identifier" }
    );
    // An encoded UTF-16 surrogate (U+D800) is not UTF-8 either (MQTT-1.5.3-1).
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 4, 0x02, &[0x00, 0x03, 0xED, 0xA0, 0x80])),
        DecodeError::InvalidUtf8 { field: "client identifier" }
    );
}

#[test]
fn invalid_utf8_in_topic() {
    assert_eq!(
        decode_err(V4, &packet(0x30, &[0x00, 0x02, 0xC3, 0x28])),
        DecodeError::InvalidUtf8 { field: "topic name" }
    );
    assert_eq!(decode_err(V4, &subscribe_v4(&[0xFF], 0)), DecodeError::InvalidUtf8 { field: "topic filter" });
}

/// MQTT-1.5.3-2: no U+0000 in any string.
#[test]
fn nul_character_in_strings() {
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 4, 0x02, &[0x00, 0x02, b'a', 0x00])),
        DecodeError::NulInString { field: "client identifier" }
    );
    assert_eq!(
        decode_err(V4, &packet(0x30, &[0x00, 0x02, b'a', 0x00])),
        DecodeError::InvalidTopicName(TopicError::NulCharacter)
    );
    assert_eq!(
        decode_err(V5, &publish_v5_props(&[0x26, 0x00, 0x01, 0x00, 0x00, 0x01, b'v'])),
        DecodeError::NulInString { field: "user property name" }
    );
}

// ---------------------------------------------------------------------------------------------
// PUBLISH

/// MQTT-3.3.2-2: no wildcards in a topic name.
#[test]
fn wildcards_in_publish_topic() {
    assert_eq!(
        decode_err(V4, &packet(0x30, &[0x00, 0x03, b'a', b'/', b'+'])),
        DecodeError::InvalidTopicName(TopicError::WildcardInName('+'))
    );
    assert_eq!(
        decode_err(V4, &packet(0x30, &[0x00, 0x01, b'#'])),
        DecodeError::InvalidTopicName(TopicError::WildcardInName('#'))
    );
}

/// MQTT-4.7.3-1: a topic name has at least one character.
#[test]
fn empty_topic_at_3_1_1() {
    assert_eq!(decode_err(V4, &packet(0x30, &[0x00, 0x00, b'x'])), DecodeError::InvalidTopicName(TopicError::Empty));
}

/// 5.0 3.3.2.1: a zero-length topic without a Topic Alias is a Protocol Error.
#[test]
fn empty_topic_at_v5_without_alias() {
    assert_eq!(
        decode_err(V5, &packet(0x30, &[0x00, 0x00, 0x00, b'x'])),
        DecodeError::InvalidTopicName(TopicError::Empty)
    );
    // Some other property does not stand in for the alias.
    assert_eq!(
        decode_err(V5, &packet(0x30, &[0x00, 0x00, 0x02, 0x01, 0x01])),
        DecodeError::InvalidTopicName(TopicError::Empty)
    );
}

/// MQTT-3.3.1-4: QoS 3 in the PUBLISH flags, known from the first byte.
#[test]
fn publish_qos_3() {
    assert_eq!(decode_err(V4, &[0x36]), DecodeError::InvalidQos(3));
    assert_eq!(decode_err(V5, &packet(0x37, &[0x00, 0x01, b't', 0x00, 0x01, 0x00])), DecodeError::InvalidQos(3));
}

/// MQTT-3.3.1-2: DUP is 0 on QoS 0.
#[test]
fn dup_on_qos0() {
    assert_eq!(decode_err(V4, &packet(0x38, &[0x00, 0x01, b't'])), DecodeError::DupOnQos0);
}

/// MQTT-2.3.1-1: packet identifiers are non-zero.
#[test]
fn packet_id_0() {
    assert_eq!(
        decode_err(V4, &packet(0x32, &[0x00, 0x01, b't', 0x00, 0x00])),
        DecodeError::ZeroPacketId(PacketType::Publish)
    );
    assert_eq!(decode_err(V4, &[0x40, 0x02, 0x00, 0x00]), DecodeError::ZeroPacketId(PacketType::Puback));
    assert_eq!(decode_err(V5, &[0x62, 0x02, 0x00, 0x00]), DecodeError::ZeroPacketId(PacketType::Pubrel));
    assert_eq!(
        decode_err(V4, &packet(0x82, &[0x00, 0x00, 0x00, 0x01, b'a', 0x00])),
        DecodeError::ZeroPacketId(PacketType::Subscribe)
    );
    assert_eq!(
        decode_err(V4, &packet(0xA2, &[0x00, 0x00, 0x00, 0x01, b'a'])),
        DecodeError::ZeroPacketId(PacketType::Unsubscribe)
    );
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE and UNSUBSCRIBE

/// MQTT-3.8.3-3, MQTT-3.10.3-2: at least one topic filter.
#[test]
fn subscribe_and_unsubscribe_without_filters() {
    assert_eq!(decode_err(V4, &[0x82, 0x02, 0x00, 0x01]), DecodeError::NoTopicFilters(PacketType::Subscribe));
    assert_eq!(decode_err(V5, &[0x82, 0x03, 0x00, 0x01, 0x00]), DecodeError::NoTopicFilters(PacketType::Subscribe));
    assert_eq!(decode_err(V4, &[0xA2, 0x02, 0x00, 0x01]), DecodeError::NoTopicFilters(PacketType::Unsubscribe));
    assert_eq!(decode_err(V5, &[0xA2, 0x03, 0x00, 0x01, 0x00]), DecodeError::NoTopicFilters(PacketType::Unsubscribe));
}

/// MQTT-4.7.1-2/3: `+` fills a whole level, `#` a whole last level.
#[test]
fn invalid_topic_filters() {
    assert_eq!(
        decode_err(V4, &subscribe_v4(b"a/+b", 0)),
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard { wildcard: '+', level: "+b".to_owned() })
    );
    assert_eq!(
        decode_err(V4, &subscribe_v4(b"a/#/b", 0)),
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard { wildcard: '#', level: "#".to_owned() })
    );
    assert_eq!(
        decode_err(V4, &packet(0xA2, &[0x00, 0x01, 0x00, 0x02, b'a', b'#'])),
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard { wildcard: '#', level: "a#".to_owned() })
    );
    assert_eq!(decode_err(V4, &subscribe_v4(b"", 0)), DecodeError::InvalidTopicFilter(TopicError::Empty));
}

/// MQTT-3.8.3-4 (3.1.1): QoS 3 in a subscription is malformed.
#[test]
fn subscription_qos_3() {
    assert_eq!(decode_err(V4, &subscribe_v4(b"a", 0x03)), DecodeError::InvalidQos(3));
    assert_eq!(decode_err(V5, &subscribe_v5(&[], b"a", 0x03)), DecodeError::InvalidQos(3));
}

/// 3.1.1 (MQTT-3-8.3-4): bits 7-2 of the requested QoS byte are reserved.
#[test]
fn reserved_subscription_option_bits_v4() {
    assert_eq!(decode_err(V4, &subscribe_v4(b"a", 0x04)), DecodeError::ReservedSubscriptionOptions(0x04));
    assert_eq!(decode_err(V4, &subscribe_v4(b"a", 0x81)), DecodeError::ReservedSubscriptionOptions(0x81));
    assert_eq!(decode_err(V3, &subscribe_v4(b"a", 0x10)), DecodeError::ReservedSubscriptionOptions(0x10));
}

/// 5.0 (MQTT-3.8.3-5): bits 7-6 of the subscription options are reserved.
#[test]
fn reserved_subscription_option_bits_v5() {
    assert_eq!(decode_err(V5, &subscribe_v5(&[], b"a", 0x40)), DecodeError::ReservedSubscriptionOptions(0x40));
    assert_eq!(decode_err(V5, &subscribe_v5(&[], b"a", 0x81)), DecodeError::ReservedSubscriptionOptions(0x81));
}

/// 5.0 3.8.3.1: Retain Handling 3 is a Protocol Error.
#[test]
fn retain_handling_3() {
    assert_eq!(decode_err(V5, &subscribe_v5(&[], b"a", 0x30)), DecodeError::InvalidRetainHandling);
}

/// MQTT-3.8.3-4 (5.0): No Local on a shared subscription is a Protocol Error.
#[test]
fn no_local_on_shared_subscription() {
    assert_eq!(
        decode_err(V5, &subscribe_v5(&[], b"$share/g/x", 0x04)),
        DecodeError::NoLocalOnSharedSubscription("$share/g/x".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Properties (5.0 2.2.2)

/// Session Expiry Interval may appear once (3.1.2.11.2).
#[test]
fn duplicate_single_use_property() {
    let props = [0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02];
    assert_eq!(
        decode_err(V5, &connect_v5_props(&props)),
        DecodeError::DuplicateProperty(PropertyId::SessionExpiryInterval)
    );
}

/// Table 2-4: Topic Alias belongs to PUBLISH only; Session Expiry not to the will.
#[test]
fn property_not_allowed_in_packet() {
    assert_eq!(
        decode_err(V5, &connect_v5_props(&[0x23, 0x00, 0x01])),
        DecodeError::PropertyNotAllowed { property: PropertyId::TopicAlias, place: "CONNECT".to_owned() }
    );
    assert_eq!(
        decode_err(V5, &publish_v5_props(&[0x11, 0x00, 0x00, 0x00, 0x01])),
        DecodeError::PropertyNotAllowed { property: PropertyId::SessionExpiryInterval, place: "PUBLISH".to_owned() }
    );
    // Will flag, will properties holding Session Expiry Interval.
    let rest = [0x00, 0x00, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, b'w', 0x00, 0x00];
    assert!(matches!(
        decode_err(V5, &connect(b"MQTT", 5, 0x06, &rest)),
        DecodeError::PropertyNotAllowed { property: PropertyId::SessionExpiryInterval, .. }
    ));
}

/// An identifier table 2-4 does not define.
#[test]
fn unknown_property_identifier() {
    assert_eq!(decode_err(V5, &publish_v5_props(&[0x05, 0x00])), DecodeError::UnknownProperty(0x05));
    assert_eq!(decode_err(V5, &publish_v5_props(&[0x00])), DecodeError::UnknownProperty(0x00));
    // A two-byte Variable Byte Integer identifier, 128.
    assert_eq!(decode_err(V5, &publish_v5_props(&[0x80, 0x01])), DecodeError::UnknownProperty(128));
}

/// 3.3.2.3.8: PUBLISH may carry several Subscription Identifiers (see the vector
/// `v5::publish_qos1_with_properties_and_several_subscription_identifiers`); 3.8.2.1.2: SUBSCRIBE
/// may carry one.
#[test]
fn repeated_subscription_identifier_refused_in_subscribe() {
    assert_eq!(
        decode_err(V5, &subscribe_v5(&[0x0B, 0x01, 0x0B, 0x02], b"a", 0x00)),
        DecodeError::DuplicateProperty(PropertyId::SubscriptionIdentifier)
    );
}

/// 3.8.2.1.2: Subscription Identifier 0 is a Protocol Error.
#[test]
fn subscription_identifier_0() {
    assert!(matches!(
        decode_err(V5, &subscribe_v5(&[0x0B, 0x00], b"a", 0x00)),
        DecodeError::InvalidPropertyValue { property: PropertyId::SubscriptionIdentifier, .. }
    ));
    assert!(matches!(
        decode_err(V5, &publish_v5_props(&[0x0B, 0x00])),
        DecodeError::InvalidPropertyValue { property: PropertyId::SubscriptionIdentifier, .. }
    ));
}

/// 3.1.2.11.3: Receive Maximum 0 is a Protocol Error.
#[test]
fn receive_maximum_0() {
    assert!(matches!(
        decode_err(V5, &connect_v5_props(&[0x21, 0x00, 0x00])),
        DecodeError::InvalidPropertyValue { property: PropertyId::ReceiveMaximum, .. }
    ));
}

/// Other values out of range: Topic Alias 0 (3.3.2.3.4), Maximum Packet Size 0 (3.1.2.11.4),
/// Payload Format 2 (3.3.2.3.2), a byte flag of 2 (3.1.2.11.7), Maximum QoS 2 (3.2.2.3.4).
#[test]
fn property_values_out_of_range() {
    let cases: &[(Vec<u8>, PropertyId)] = &[
        (publish_v5_props(&[0x23, 0x00, 0x00]), PropertyId::TopicAlias),
        (connect_v5_props(&[0x27, 0x00, 0x00, 0x00, 0x00]), PropertyId::MaximumPacketSize),
        (publish_v5_props(&[0x01, 0x02]), PropertyId::PayloadFormatIndicator),
        (connect_v5_props(&[0x17, 0x02]), PropertyId::RequestProblemInformation),
        (packet(0x20, &[0x00, 0x00, 0x02, 0x24, 0x02]), PropertyId::MaximumQoS),
    ];
    for (bytes, id) in cases {
        match decode_err(V5, bytes) {
            DecodeError::InvalidPropertyValue { property, .. } => assert_eq!(property, *id),
            other => panic!("{bytes:02X?}: expected an invalid {id:?}, got {other:?}"),
        }
    }
}

/// A property length running past 4 bytes.
#[test]
fn property_length_over_4_bytes() {
    assert_eq!(
        decode_err(V5, &packet(0x40, &[0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])),
        DecodeError::VariableIntegerTooLong { field: "property length" }
    );
}

// ---------------------------------------------------------------------------------------------
// Reason codes (5.0 2.4) and return codes

/// Each packet allows only its own reason codes.
#[test]
fn invalid_reason_code_for_packet() {
    let cases: &[(ProtocolLevel, &[u8], PacketType, u8)] = &[
        (V5, &[0x40, 0x03, 0x00, 0x01, 0x04], PacketType::Puback, 0x04),
        (V5, &[0x50, 0x03, 0x00, 0x01, 0x92], PacketType::Pubrec, 0x92),
        (V5, &[0x62, 0x03, 0x00, 0x01, 0x10], PacketType::Pubrel, 0x10),
        (V5, &[0x70, 0x03, 0x00, 0x01, 0x80], PacketType::Pubcomp, 0x80),
        (V5, &[0x20, 0x03, 0x00, 0x01, 0x00], PacketType::Connack, 0x01),
        (V5, &[0x90, 0x04, 0x00, 0x01, 0x00, 0x10], PacketType::Suback, 0x10),
        (V5, &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x02], PacketType::Unsuback, 0x02),
        (V5, &[0xE0, 0x01, 0x8A], PacketType::Disconnect, 0x8A),
        (V5, &[0xE0, 0x01, 0x03], PacketType::Disconnect, 0x03),
        (V5, &[0xF0, 0x02, 0x87, 0x00], PacketType::Auth, 0x87),
        // 3.1.1 return codes: CONNACK 0..=5 (table 3.1), SUBACK 0, 1, 2, 0x80 (3.9.3).
        (V4, &[0x20, 0x02, 0x00, 0x06], PacketType::Connack, 0x06),
        (V3, &[0x20, 0x02, 0x00, 0x87], PacketType::Connack, 0x87),
        (V4, &[0x90, 0x03, 0x00, 0x01, 0x03], PacketType::Suback, 0x03),
        (V4, &[0x90, 0x03, 0x00, 0x01, 0x87], PacketType::Suback, 0x87),
    ];
    for &(level, bytes, packet_type, code) in cases {
        assert_eq!(
            decode_err(level, bytes),
            DecodeError::InvalidReasonCode { packet_type, code },
            "{bytes:02X?} at level {}",
            level.level()
        );
    }
}

/// MQTT-3.2.2-1 (3.1.1) and 3.2.2.1 (5.0): bits 7-1 of the acknowledge flags are reserved.
#[test]
fn connack_reserved_flags() {
    assert_eq!(decode_err(V4, &[0x20, 0x02, 0x02, 0x00]), DecodeError::ReservedConnackFlags(0x02));
    assert_eq!(decode_err(V5, &[0x20, 0x03, 0x80, 0x00, 0x00]), DecodeError::ReservedConnackFlags(0x80));
}

/// A v5 SUBACK and UNSUBACK hold one reason code per filter, so at least one.
#[test]
fn suback_and_unsuback_without_reason_codes() {
    assert_eq!(decode_err(V5, &[0x90, 0x03, 0x00, 0x01, 0x00]), DecodeError::NoReasonCodes(PacketType::Suback));
    assert_eq!(decode_err(V4, &[0x90, 0x02, 0x00, 0x01]), DecodeError::NoReasonCodes(PacketType::Suback));
    assert_eq!(decode_err(V5, &[0xB0, 0x03, 0x00, 0x01, 0x00]), DecodeError::NoReasonCodes(PacketType::Unsuback));
}

// ---------------------------------------------------------------------------------------------
// Lengths

/// Bytes after the last field: the remaining length disagrees with the content.
#[test]
fn trailing_bytes() {
    let cases: &[(ProtocolLevel, &[u8], PacketType)] = &[
        (V4, &[0xC0, 0x01, 0x00], PacketType::Pingreq),
        (V5, &[0xD0, 0x01, 0x00], PacketType::Pingresp),
        (V4, &[0x40, 0x03, 0x00, 0x01, 0x00], PacketType::Puback),
        (V3, &[0x62, 0x03, 0x00, 0x01, 0x00], PacketType::Pubrel),
        (V4, &[0x20, 0x03, 0x00, 0x00, 0x00], PacketType::Connack),
        (V4, &[0xB0, 0x03, 0x00, 0x01, 0x00], PacketType::Unsuback),
        (V4, &[0xE0, 0x01, 0x00], PacketType::Disconnect),
        (V5, &[0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xAA], PacketType::Puback),
    ];
    for &(level, bytes, packet_type) in cases {
        assert_eq!(decode_err(level, bytes), DecodeError::TrailingBytes { packet_type, count: 1 }, "{bytes:02X?}");
    }
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 4, 0x02, &[0x00, 0x00, 0xAA, 0xBB])),
        DecodeError::TrailingBytes { packet_type: PacketType::Connect, count: 2 }
    );
}

/// The body ends before a field it must hold, or before the length a field announces.
#[test]
fn body_shorter_than_a_field_says() {
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 4, 0x02, &[0x00, 0x05, b'a', b'b'])),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Connect, field: "client identifier" }
    );
    assert_eq!(
        decode_err(V4, &packet(0x30, &[0x00, 0x0A, b'a', b'b'])),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Publish, field: "topic name" }
    );
    assert_eq!(
        decode_err(V4, &packet(0x32, &[0x00, 0x01, b't', 0x00])),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Publish, field: "packet identifier" }
    );
    assert_eq!(
        decode_err(V4, &[0x20, 0x01, 0x00]),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Connack, field: "return code" }
    );
    assert_eq!(
        decode_err(V5, &[0x40, 0x04, 0x00, 0x01, 0x00, 0x05]),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Puback, field: "properties" }
    );
    assert_eq!(
        decode_err(V5, &[0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x1F, 0x00, 0x05]),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Puback, field: "reason string" }
    );
    // A will announced by the flags but missing.
    assert_eq!(
        decode_err(V4, &connect(b"MQTT", 4, 0x06, &[0x00, 0x00])),
        DecodeError::UnexpectedEnd { packet_type: PacketType::Connect, field: "will topic" }
    );
}
