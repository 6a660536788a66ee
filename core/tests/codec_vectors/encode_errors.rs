//! Packets the encoder refuses; after each refusal the output buffer is as it was (checked by
//! `encode_err`).

use bytes::Bytes;
use moat_mqtt_core::codec::{
    Ack, Auth, Connect, EncodeError, Packet, PacketType, Properties, Property, PropertyId, Publish, QoS, ReasonCode,
    Suback, Subscribe, SubscriptionOptions, Unsuback, Unsubscribe, encode,
};
use moat_mqtt_core::topic::TopicName;

use crate::{V3, V4, V5, b, encode_err, filter, pid, s, topic};

fn publish(qos: QoS, packet_id: Option<u16>) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic("t"),
        packet_id: packet_id.map(pid),
        properties: Properties::new(),
        payload: b(b"x"),
    }
}

fn connect(level: moat_mqtt_core::codec::ProtocolLevel) -> Connect {
    Connect {
        level,
        clean_start: true,
        keep_alive: 0,
        client_id: s("c"),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    }
}

#[test]
fn publish_packet_id_must_match_qos() {
    for level in [V3, V4, V5] {
        assert_eq!(
            encode_err(&Packet::Publish(publish(QoS::AtLeastOnce, None)), level),
            EncodeError::PacketIdMismatch { qos: "QoS 1", has_packet_id: false }
        );
        assert_eq!(
            encode_err(&Packet::Publish(publish(QoS::ExactlyOnce, None)), level),
            EncodeError::PacketIdMismatch { qos: "QoS 2", has_packet_id: false }
        );
        assert_eq!(
            encode_err(&Packet::Publish(publish(QoS::AtMostOnce, Some(1))), level),
            EncodeError::PacketIdMismatch { qos: "QoS 0", has_packet_id: true }
        );
    }
}

#[test]
fn publish_dup_on_qos0() {
    let p = Publish { dup: true, ..publish(QoS::AtMostOnce, None) };
    assert_eq!(encode_err(&Packet::Publish(p), V4), EncodeError::DupOnQos0);
}

/// Only an MQTT 5 PUBLISH with a Topic Alias may have an empty topic.
#[test]
fn publish_empty_topic() {
    let p = Publish { topic: TopicName::alias_only(), ..publish(QoS::AtMostOnce, None) };
    assert_eq!(encode_err(&Packet::Publish(p.clone()), V5), EncodeError::EmptyTopic);
    let aliased = Publish { properties: Properties::new().with(Property::TopicAlias(1)), ..p };
    assert_eq!(encode_err(&Packet::Publish(aliased.clone()), V4), EncodeError::EmptyTopic);
    assert_eq!(encode_err(&Packet::Publish(aliased), V3), EncodeError::EmptyTopic);
}

/// A string or binary field holds at most 65,535 bytes (1.5.4, 1.5.6).
#[test]
fn field_over_65535_bytes() {
    let long = "x".repeat(65_536);
    let c = Connect { client_id: s(&long), ..connect(V4) };
    assert_eq!(
        encode_err(&Packet::Connect(c), V4),
        EncodeError::FieldTooLong { field: "client identifier", len: 65_536 }
    );
    // The last field of a CONNECT, after everything else was measured.
    let c = Connect { username: Some(s("u")), password: Some(Bytes::from(vec![0u8; 70_000])), ..connect(V4) };
    assert_eq!(encode_err(&Packet::Connect(c), V4), EncodeError::FieldTooLong { field: "password", len: 70_000 });
    let ack = Ack {
        packet_id: pid(1),
        reason: ReasonCode::Success,
        properties: Properties::new().with(Property::UserProperty(s("k"), s(&long))),
    };
    assert_eq!(
        encode_err(&Packet::Puback(ack), V5),
        EncodeError::FieldTooLong { field: "user property value", len: 65_536 }
    );
    // Exactly 65,535 fits.
    let c = Connect { client_id: s(&long[..65_535]), ..connect(V4) };
    let mut out = Vec::new();
    assert_eq!(encode(&Packet::Connect(c), V4, &mut out), Ok(1 + 3 + 10 + 2 + 65_535));
}

/// The whole body may not exceed the largest Remaining Length.
#[test]
fn packet_over_268435455_bytes() {
    // Zeroed memory is mapped lazily: nothing of it is touched before the refusal.
    let p = Publish { payload: Bytes::from(vec![0u8; 268_435_456 - 3]), ..publish(QoS::AtMostOnce, None) };
    assert_eq!(encode_err(&Packet::Publish(p), V4), EncodeError::PacketTooLarge(268_435_456));
}

#[test]
fn auth_before_mqtt5() {
    let auth = Packet::Auth(Auth { reason: ReasonCode::Success, properties: Properties::new() });
    for level in [V3, V4] {
        assert_eq!(
            encode_err(&auth, level),
            EncodeError::PacketTypeNotInLevel { packet_type: PacketType::Auth, level }
        );
    }
}

#[test]
fn property_not_allowed() {
    let c = Connect { properties: Properties::new().with(Property::TopicAlias(1)), ..connect(V5) };
    assert_eq!(
        encode_err(&Packet::Connect(c), V5),
        EncodeError::PropertyNotAllowed { property: PropertyId::TopicAlias, place: "CONNECT".to_owned() }
    );
    let p =
        Publish { properties: Properties::new().with(Property::ServerKeepAlive(1)), ..publish(QoS::AtMostOnce, None) };
    assert_eq!(
        encode_err(&Packet::Publish(p), V5),
        EncodeError::PropertyNotAllowed { property: PropertyId::ServerKeepAlive, place: "PUBLISH".to_owned() }
    );
}

#[test]
fn duplicate_and_out_of_range_properties() {
    let c = Connect {
        properties: Properties::new().with(Property::SessionExpiryInterval(1)).with(Property::SessionExpiryInterval(2)),
        ..connect(V5)
    };
    assert_eq!(encode_err(&Packet::Connect(c), V5), EncodeError::DuplicateProperty(PropertyId::SessionExpiryInterval));
    let c = Connect { properties: Properties::new().with(Property::ReceiveMaximum(0)), ..connect(V5) };
    assert!(matches!(
        encode_err(&Packet::Connect(c), V5),
        EncodeError::InvalidPropertyValue { property: PropertyId::ReceiveMaximum, .. }
    ));
    let sub = Subscribe {
        packet_id: pid(1),
        filters: vec![(filter("a"), SubscriptionOptions::default())],
        properties: Properties::new().with(Property::SubscriptionIdentifier(0)),
    };
    assert!(matches!(
        encode_err(&Packet::Subscribe(sub), V5),
        EncodeError::InvalidPropertyValue { property: PropertyId::SubscriptionIdentifier, .. }
    ));
}

#[test]
fn empty_lists() {
    let sub = Subscribe { packet_id: pid(1), filters: vec![], properties: Properties::new() };
    let unsub = Unsubscribe { packet_id: pid(1), filters: vec![], properties: Properties::new() };
    let suback = Suback { packet_id: pid(1), reasons: vec![], properties: Properties::new() };
    for level in [V3, V4, V5] {
        assert_eq!(encode_err(&Packet::Subscribe(sub.clone()), level), EncodeError::EmptyList(PacketType::Subscribe));
        assert_eq!(
            encode_err(&Packet::Unsubscribe(unsub.clone()), level),
            EncodeError::EmptyList(PacketType::Unsubscribe)
        );
        assert_eq!(encode_err(&Packet::Suback(suback.clone()), level), EncodeError::EmptyList(PacketType::Suback));
    }
    let unsuback = Unsuback { packet_id: pid(1), reasons: vec![], properties: Properties::new() };
    assert_eq!(encode_err(&Packet::Unsuback(unsuback), V5), EncodeError::EmptyList(PacketType::Unsuback));
}

#[test]
fn password_without_user_name_before_mqtt5() {
    for level in [V3, V4] {
        let c = Connect { password: Some(b(b"pw")), ..connect(level) };
        assert_eq!(encode_err(&Packet::Connect(c), level), EncodeError::PasswordWithoutUsername);
    }
}

#[test]
fn reason_not_allowed_in_packet() {
    let ack = Ack { packet_id: pid(1), reason: ReasonCode::ContinueAuthentication, properties: Properties::new() };
    assert_eq!(
        encode_err(&Packet::Puback(ack), V5),
        EncodeError::ReasonNotAllowed { packet_type: PacketType::Puback, reason: ReasonCode::ContinueAuthentication }
    );
    let auth = Auth { reason: ReasonCode::NotAuthorized, properties: Properties::new() };
    assert_eq!(
        encode_err(&Packet::Auth(auth), V5),
        EncodeError::ReasonNotAllowed { packet_type: PacketType::Auth, reason: ReasonCode::NotAuthorized }
    );
}

#[test]
fn no_local_on_shared_subscription() {
    let options = SubscriptionOptions { no_local: true, ..SubscriptionOptions::default() };
    let sub = Subscribe {
        packet_id: pid(1),
        filters: vec![(filter("a"), options), (filter("$share/g/a"), options)],
        properties: Properties::new(),
    };
    assert_eq!(
        encode_err(&Packet::Subscribe(sub), V5),
        EncodeError::NoLocalOnSharedSubscription("$share/g/a".to_owned())
    );
}

/// A successful encode appends to what the buffer held.
#[test]
fn encode_appends() {
    let mut out = vec![0xAA];
    assert_eq!(encode(&Packet::Pingreq, V4, &mut out), Ok(2));
    assert_eq!(encode(&Packet::Pingresp, V4, &mut out), Ok(2));
    assert_eq!(out, [0xAA, 0xC0, 0x00, 0xD0, 0x00]);
}
