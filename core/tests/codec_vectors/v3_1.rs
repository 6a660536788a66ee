//! MQTT 3.1 (protocol name `MQIsdp`, level 3) vectors, from the IBM/Eurotech V3.1 specification.
//! Its packets are those of 3.1.1 except for CONNECT's protocol name and level.

use moat_mqtt_core::codec::{
    Ack, Connack, Connect, Disconnect, Packet, Properties, Publish, QoS, ReasonCode, Suback, Subscribe,
    SubscriptionOptions, Unsuback, Unsubscribe, Will,
};

use crate::{V3, assert_decodes_then_canonical, assert_vector, b, cat, filter, pid, s, topic};

/// CONNECT (3.1 section 3.1): protocol name `MQIsdp`, version 3, flags C2 (user name, password,
/// clean session), keep alive 60.
#[test]
fn connect_mqisdp_with_user_and_password() {
    let bytes = cat(&[
        &[0x10, 27],
        &[0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0xC2, 0x00, 0x3C],
        &[0x00, 0x03, b'a', b'b', b'c'],
        &[0x00, 0x04, b'u', b's', b'e', b'r'],
        &[0x00, 0x02, b'p', b'w'],
    ]);
    let packet = Packet::Connect(Connect {
        level: V3,
        clean_start: true,
        keep_alive: 60,
        client_id: s("abc"),
        will: None,
        username: Some(s("user")),
        password: Some(b(b"pw")),
        properties: Properties::new(),
    });
    assert_vector(V3, &bytes, &packet);
}

/// CONNECT with a retained QoS 1 will: flags 0010 1110 = 0x2E.
#[test]
fn connect_mqisdp_with_will() {
    let bytes = cat(&[
        &[0x10, 21],
        &[0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x2E, 0x00, 0x0A],
        &[0x00, 0x01, b'c'],
        &[0x00, 0x01, b'w'],
        &[0x00, 0x01, b'm'],
    ]);
    let packet = Packet::Connect(Connect {
        level: V3,
        clean_start: true,
        keep_alive: 10,
        client_id: s("c"),
        will: Some(Will {
            topic: topic("w"),
            payload: b(b"m"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::new(),
        }),
        username: None,
        password: None,
        properties: Properties::new(),
    });
    assert_vector(V3, &bytes, &packet);
}

/// CONNACK return codes 0 to 5 (3.1 section 3.2), both ways.
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
        let packet = Packet::Connack(Connack { session_present: false, reason, properties: Properties::new() });
        assert_vector(V3, &[0x20, 0x02, 0x00, code], &packet);
    }
}

#[test]
fn publish_qos0_qos1_qos2() {
    let qos0 = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: topic("a/b"),
        packet_id: None,
        properties: Properties::new(),
        payload: b(b"x"),
    });
    assert_vector(V3, &cat(&[&[0x31, 6], &[0x00, 0x03, b'a', b'/', b'b'], b"x"]), &qos0);
    let qos1 = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic("a/b"),
        packet_id: Some(pid(1)),
        properties: Properties::new(),
        payload: b(b"x"),
    });
    assert_vector(V3, &cat(&[&[0x32, 8], &[0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01], b"x"]), &qos1);
    let qos2 = Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: topic("a/b"),
        packet_id: Some(pid(2)),
        properties: Properties::new(),
        payload: b(b"x"),
    });
    assert_vector(V3, &cat(&[&[0x3C, 8], &[0x00, 0x03, b'a', b'/', b'b', 0x00, 0x02], b"x"]), &qos2);
}

/// PUBREL, SUBSCRIBE and UNSUBSCRIBE carry QoS 1 in the fixed header (3.1 sections 3.6, 3.8, 3.10).
#[test]
fn acknowledgements() {
    assert_vector(V3, &[0x40, 0x02, 0x00, 0x07], &Packet::Puback(Ack::new(pid(7))));
    assert_vector(V3, &[0x50, 0x02, 0x00, 0x07], &Packet::Pubrec(Ack::new(pid(7))));
    assert_vector(V3, &[0x62, 0x02, 0x00, 0x07], &Packet::Pubrel(Ack::new(pid(7))));
    assert_vector(V3, &[0x70, 0x02, 0x00, 0x07], &Packet::Pubcomp(Ack::new(pid(7))));
}

/// 3.1 section 2.1: "[DUP] is set when the client or server attempts to re-deliver a PUBLISH,
/// PUBREL, SUBSCRIBE or UNSUBSCRIBE message". Such re-sends are accepted at level 3; the model has
/// no DUP for them, so they are written again without it.
#[test]
fn dup_on_resent_pubrel_subscribe_unsubscribe_is_accepted() {
    assert_decodes_then_canonical(
        V3,
        &[0x6A, 0x02, 0x00, 0x05],
        &Packet::Pubrel(Ack::new(pid(5))),
        &[0x62, 0x02, 0x00, 0x05],
    );
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![(filter("a/b"), SubscriptionOptions::qos(QoS::AtLeastOnce))],
        properties: Properties::new(),
    });
    let body = [0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b', 0x01];
    assert_decodes_then_canonical(V3, &cat(&[&[0x8A, 8], &body]), &subscribe, &cat(&[&[0x82, 8], &body]));
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(1),
        filters: vec![filter("a/b")],
        properties: Properties::new(),
    });
    let body = [0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b'];
    assert_decodes_then_canonical(V3, &cat(&[&[0xAA, 7], &body]), &unsubscribe, &cat(&[&[0xA2, 7], &body]));
}

#[test]
fn subscribe_and_suback_with_failure_0x80() {
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![(filter("a/b"), SubscriptionOptions::qos(QoS::AtLeastOnce))],
        properties: Properties::new(),
    });
    assert_vector(V3, &[0x82, 8, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b', 0x01], &subscribe);
    let suback = Packet::Suback(Suback {
        packet_id: pid(1),
        reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError],
        properties: Properties::new(),
    });
    assert_vector(V3, &[0x90, 0x04, 0x00, 0x01, 0x01, 0x80], &suback);
}

#[test]
fn unsubscribe_and_unsuback() {
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        filters: vec![filter("a/b")],
        properties: Properties::new(),
    });
    assert_vector(V3, &[0xA2, 7, 0x00, 0x03, 0x00, 0x03, b'a', b'/', b'b'], &unsubscribe);
    let unsuback = Packet::Unsuback(Unsuback { packet_id: pid(3), reasons: vec![], properties: Properties::new() });
    assert_vector(V3, &[0xB0, 0x02, 0x00, 0x03], &unsuback);
}

#[test]
fn pingreq_pingresp_disconnect() {
    assert_vector(V3, &[0xC0, 0x00], &Packet::Pingreq);
    assert_vector(V3, &[0xD0, 0x00], &Packet::Pingresp);
    assert_vector(V3, &[0xE0, 0x00], &Packet::Disconnect(Disconnect::normal()));
}
