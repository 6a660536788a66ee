//! MQTT 3.1.1 (protocol level 4) vectors, from the OASIS standard's chapter 3.

use moat_mqtt_core::codec::{
    Ack, Connack, Connect, Disconnect, Packet, Properties, Publish, QoS, ReasonCode, Suback, Subscribe,
    SubscriptionOptions, Unsuback, Unsubscribe, Will,
};

use crate::{V4, assert_vector, b, cat, filter, pid, s, topic};

/// CONNECT with the variable header of the specification's example (3.1.2.10, figure 3.6):
/// `00 04 'MQTT' 04 CE 00 0A`: user name, password, will QoS 1, will flag, clean session, keep
/// alive 10. The payload holds the fields in the order of 3.1.3.
#[test]
fn connect_spec_example_with_will_user_and_password() {
    let bytes = cat(&[
        &[0x10, 37],
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A],
        &[0x00, 0x03, b'a', b'b', b'c'], // client identifier
        &[0x00, 0x03, b'w', b'/', b't'], // will topic
        &[0x00, 0x03, b'b', b'y', b'e'], // will message
        &[0x00, 0x04, b'u', b's', b'e', b'r'],
        &[0x00, 0x04, b'p', b'a', b's', b's'],
    ]);
    let packet = Packet::Connect(Connect {
        level: V4,
        clean_start: true,
        keep_alive: 10,
        client_id: s("abc"),
        will: Some(Will {
            topic: topic("w/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::new(),
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        properties: Properties::new(),
    });
    assert_vector(V4, &bytes, &packet);
}

/// The smallest CONNECT: clean session, keep alive 60, zero-length client identifier (3.1.3.1).
#[test]
fn connect_minimal_with_empty_client_id() {
    let bytes = [0x10, 12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00];
    let packet = Packet::Connect(Connect {
        level: V4,
        clean_start: true,
        keep_alive: 60,
        client_id: s(""),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    });
    assert_vector(V4, &bytes, &packet);
}

/// Will QoS 2 with will retain, no clean session, user name only: flags 1011 0100 = 0xB4.
#[test]
fn connect_will_qos2_retained_user_name_only() {
    let bytes = cat(&[
        &[0x10, 24],
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xB4, 0xFF, 0xFF],
        &[0x00, 0x02, b'i', b'd'],
        &[0x00, 0x01, b'w'],
        &[0x00, 0x00], // empty will message
        &[0x00, 0x03, b'b', b'o', b'b'],
    ]);
    let packet = Packet::Connect(Connect {
        level: V4,
        clean_start: false,
        keep_alive: 0xFFFF,
        client_id: s("id"),
        will: Some(Will {
            topic: topic("w"),
            payload: b(b""),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::new(),
        }),
        username: Some(s("bob")),
        password: None,
        properties: Properties::new(),
    });
    assert_vector(V4, &bytes, &packet);
}

fn connack(session_present: bool, reason: ReasonCode) -> Packet {
    Packet::Connack(Connack { session_present, reason, properties: Properties::new() })
}

/// CONNACK (3.2): acknowledge flags, then the return code; session present is bit 0.
#[test]
fn connack_accepted_with_and_without_session() {
    assert_vector(V4, &[0x20, 0x02, 0x00, 0x00], &connack(false, ReasonCode::Success));
    assert_vector(V4, &[0x20, 0x02, 0x01, 0x00], &connack(true, ReasonCode::Success));
}

/// The six return codes of table 3.1, both ways.
#[test]
fn connack_return_codes_0_to_5() {
    let codes = [
        (0x00, ReasonCode::Success),
        (0x01, ReasonCode::UnsupportedProtocolVersion),
        (0x02, ReasonCode::ClientIdentifierNotValid),
        (0x03, ReasonCode::ServerUnavailable),
        (0x04, ReasonCode::BadUserNameOrPassword),
        (0x05, ReasonCode::NotAuthorized),
    ];
    for (code, reason) in codes {
        assert_vector(V4, &[0x20, 0x02, 0x00, code], &connack(false, reason));
    }
}

/// MQTT 5 reasons without a 3.1.1 return code go out as the nearest one (encoding only).
#[test]
fn connack_mqtt5_reasons_map_to_nearest_return_code() {
    let out = crate::encode_one(&connack(false, ReasonCode::ServerBusy), V4);
    assert_eq!(out, [0x20, 0x02, 0x00, 0x03]);
    let out = crate::encode_one(&connack(false, ReasonCode::Banned), V4);
    assert_eq!(out, [0x20, 0x02, 0x00, 0x05]);
}

fn publish(qos: QoS, dup: bool, retain: bool, t: &str, id: Option<u16>, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos,
        retain,
        topic: topic(t),
        packet_id: id.map(pid),
        properties: Properties::new(),
        payload: b(payload),
    })
}

#[test]
fn publish_qos0() {
    let bytes = cat(&[&[0x30, 10], &[0x00, 0x03, b'a', b'/', b'b'], b"hello"]);
    assert_vector(V4, &bytes, &publish(QoS::AtMostOnce, false, false, "a/b", None, b"hello"));
}

/// The variable header of the specification's example (3.3.2.3, figure 3.11): topic `a/b`,
/// packet identifier 10; here with RETAIN set.
#[test]
fn publish_qos1_retained_spec_example() {
    let bytes = cat(&[&[0x33, 9], &[0x00, 0x03, 0x61, 0x2F, 0x62, 0x00, 0x0A], b"hi"]);
    assert_vector(V4, &bytes, &publish(QoS::AtLeastOnce, false, true, "a/b", Some(10), b"hi"));
}

/// QoS 2, DUP set, empty payload (a zero-length payload is valid, 3.3.3).
#[test]
fn publish_qos2_dup_empty_payload() {
    let bytes = [0x3C, 5, 0x00, 0x01, b't', 0x12, 0x34];
    assert_vector(V4, &bytes, &publish(QoS::ExactlyOnce, true, false, "t", Some(0x1234), b""));
}

/// PUBACK, PUBREC, PUBREL (flags 0010), PUBCOMP: remaining length 2, the packet identifier.
#[test]
fn acknowledgements() {
    assert_vector(V4, &[0x40, 0x02, 0x00, 0x0A], &Packet::Puback(Ack::new(pid(10))));
    assert_vector(V4, &[0x50, 0x02, 0x01, 0x00], &Packet::Pubrec(Ack::new(pid(256))));
    assert_vector(V4, &[0x62, 0x02, 0xFF, 0xFF], &Packet::Pubrel(Ack::new(pid(65535))));
    assert_vector(V4, &[0x70, 0x02, 0x00, 0x01], &Packet::Pubcomp(Ack::new(pid(1))));
}

/// The specification's SUBSCRIBE example (3.8.3.1, figure 3.22): packet identifier 10, `a/b`
/// at QoS 1 and `c/d` at QoS 2.
#[test]
fn subscribe_spec_example() {
    let bytes =
        cat(&[&[0x82, 14, 0x00, 0x0A], &[0x00, 0x03, b'a', b'/', b'b', 0x01], &[0x00, 0x03, b'c', b'/', b'd', 0x02]]);
    let packet = Packet::Subscribe(Subscribe {
        packet_id: pid(10),
        filters: vec![
            (filter("a/b"), SubscriptionOptions::qos(QoS::AtLeastOnce)),
            (filter("c/d"), SubscriptionOptions::qos(QoS::ExactlyOnce)),
        ],
        properties: Properties::new(),
    });
    assert_vector(V4, &bytes, &packet);
}

/// Wildcard filters are ordinary filters on the wire.
#[test]
fn subscribe_wildcards_qos0() {
    let bytes = cat(&[&[0x82, 12, 0x00, 0x02], &[0x00, 0x03, b'a', b'/', b'+', 0x00], &[0x00, 0x01, b'#', 0x00]]);
    let packet = Packet::Subscribe(Subscribe {
        packet_id: pid(2),
        filters: vec![(filter("a/+"), SubscriptionOptions::default()), (filter("#"), SubscriptionOptions::default())],
        properties: Properties::new(),
    });
    assert_vector(V4, &bytes, &packet);
}

/// The specification's SUBACK example (3.9.3, figure 3.26): granted QoS 0, granted QoS 2,
/// failure 0x80.
#[test]
fn suback_spec_example() {
    let packet = Packet::Suback(Suback {
        packet_id: pid(10),
        reasons: vec![ReasonCode::Success, ReasonCode::GrantedQoS2, ReasonCode::UnspecifiedError],
        properties: Properties::new(),
    });
    assert_vector(V4, &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80], &packet);
}

/// Any MQTT 5 failure is sent as 0x80 at 3.1.1 (encoding only).
#[test]
fn suback_failures_are_0x80() {
    let packet = Packet::Suback(Suback {
        packet_id: pid(1),
        reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized, ReasonCode::TopicFilterInvalid],
        properties: Properties::new(),
    });
    assert_eq!(crate::encode_one(&packet, V4), [0x90, 0x05, 0x00, 0x01, 0x01, 0x80, 0x80]);
}

/// The specification's UNSUBSCRIBE example (3.10.3.1, figure 3.30): `a/b` and `c/d`.
#[test]
fn unsubscribe_spec_example() {
    let bytes = cat(&[&[0xA2, 12, 0x00, 0x0A], &[0x00, 0x03, b'a', b'/', b'b'], &[0x00, 0x03, b'c', b'/', b'd']]);
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(10),
        filters: vec![filter("a/b"), filter("c/d")],
        properties: Properties::new(),
    });
    assert_vector(V4, &bytes, &packet);
}

#[test]
fn unsuback() {
    let packet = Packet::Unsuback(Unsuback { packet_id: pid(10), reasons: vec![], properties: Properties::new() });
    assert_vector(V4, &[0xB0, 0x02, 0x00, 0x0A], &packet);
}

#[test]
fn pingreq_pingresp_disconnect() {
    assert_vector(V4, &[0xC0, 0x00], &Packet::Pingreq);
    assert_vector(V4, &[0xD0, 0x00], &Packet::Pingresp);
    assert_vector(V4, &[0xE0, 0x00], &Packet::Disconnect(Disconnect::normal()));
}
