//! MQTT 5.0 (protocol level 5) vectors, from the OASIS standard's chapters 2 and 3; property
//! identifiers and types from table 2-4 (2.2.2.2), reason codes from table 2-6 (2.4).

use moat_mqtt_core::codec::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, PayloadFormat, Properties, Property, Publish, QoS, ReasonCode,
    RetainHandling, Suback, Subscribe, SubscriptionOptions, Unsuback, Unsubscribe, Will,
};
use moat_mqtt_core::topic::TopicName;

use crate::{V5, assert_decodes_then_canonical, assert_vector, b, cat, filter, pid, s, topic};

fn props(list: Vec<Property>) -> Properties {
    list.into_iter().collect()
}

/// The specification's CONNECT variable header example (3.1.2.11, figure 3-7): `00 04 'MQTT' 05
/// C2 00 0A 05 11 00 00 00 0A`: user name, password, clean start, keep alive 10, property length
/// 5, Session Expiry Interval 10.
#[test]
fn connect_spec_example_session_expiry() {
    let bytes = cat(&[
        &[0x10, 27],
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xC2, 0x00, 0x0A],
        &[0x05, 0x11, 0x00, 0x00, 0x00, 0x0A],
        &[0x00, 0x03, b'a', b'b', b'c'],
        &[0x00, 0x01, b'u'],
        &[0x00, 0x01, b'p'],
    ]);
    let packet = Packet::Connect(Connect {
        level: V5,
        clean_start: true,
        keep_alive: 10,
        client_id: s("abc"),
        will: None,
        username: Some(s("u")),
        password: Some(b(b"p")),
        properties: props(vec![Property::SessionExpiryInterval(10)]),
    });
    assert_vector(V5, &bytes, &packet);
}

/// CONNECT with every kind of CONNECT property and a will with every will property (3.1.2.11,
/// 3.1.3.2). Flags 1110 1110: user name, password, will retain, will QoS 1, will, clean start.
#[test]
fn connect_with_properties_and_will_properties() {
    let bytes = cat(&[
        &[0x10, 0x74],
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xEE, 0x00, 0x0A],
        &[0x28],                                           // property length 40
        &[0x11, 0x00, 0x00, 0x00, 0x0A],                   // Session Expiry Interval 10
        &[0x21, 0x00, 0x14],                               // Receive Maximum 20
        &[0x27, 0x00, 0x00, 0x10, 0x00],                   // Maximum Packet Size 4096
        &[0x22, 0x00, 0x05],                               // Topic Alias Maximum 5
        &[0x19, 0x01],                                     // Request Response Information 1
        &[0x17, 0x00],                                     // Request Problem Information 0
        &[0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'],       // User Property k=v
        &[0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M'], // Authentication Method
        &[0x16, 0x00, 0x02, 0x01, 0x02],                   // Authentication Data
        &[0x00, 0x03, b'c', b'i', b'd'],                   // client identifier
        &[0x2C],                                           // will property length 44
        &[0x18, 0x00, 0x00, 0x00, 0x05],                   // Will Delay Interval 5
        &[0x01, 0x01],                                     // Payload Format Indicator: UTF-8
        &[0x02, 0x00, 0x00, 0x00, 0x3C],                   // Message Expiry Interval 60
        &[0x03, 0x00, 0x0A],
        b"text/plain",                               // Content Type
        &[0x08, 0x00, 0x04, b'r', b'e', b's', b'p'], // Response Topic
        &[0x09, 0x00, 0x02, 0xCA, 0xFE],             // Correlation Data
        &[0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b'], // User Property a=b
        &[0x00, 0x01, b'w'],                         // will topic
        &[0x00, 0x03, b'b', b'y', b'e'],             // will payload
        &[0x00, 0x01, b'u'],                         // user name
        &[0x00, 0x02, b'p', b'w'],                   // password
    ]);
    let packet = Packet::Connect(Connect {
        level: V5,
        clean_start: true,
        keep_alive: 10,
        client_id: s("cid"),
        will: Some(Will {
            topic: topic("w"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: props(vec![
                Property::WillDelayInterval(5),
                Property::PayloadFormatIndicator(PayloadFormat::Utf8),
                Property::MessageExpiryInterval(60),
                Property::ContentType(s("text/plain")),
                Property::ResponseTopic(topic("resp")),
                Property::CorrelationData(b(&[0xCA, 0xFE])),
                Property::UserProperty(s("a"), s("b")),
            ]),
        }),
        username: Some(s("u")),
        password: Some(b(b"pw")),
        properties: props(vec![
            Property::SessionExpiryInterval(10),
            Property::ReceiveMaximum(20),
            Property::MaximumPacketSize(4096),
            Property::TopicAliasMaximum(5),
            Property::RequestResponseInformation(true),
            Property::RequestProblemInformation(false),
            Property::UserProperty(s("k"), s("v")),
            Property::AuthenticationMethod(s("SCRAM")),
            Property::AuthenticationData(b(&[0x01, 0x02])),
        ]),
    });
    assert_vector(V5, &bytes, &packet);
}

/// MQTT 5 allows a password without a user name (3.1.2.9): flags 0100 0010.
#[test]
fn connect_password_without_user_name() {
    let bytes = cat(&[
        &[0x10, 17],
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x42, 0x00, 0x00],
        &[0x00],       // no properties
        &[0x00, 0x00], // empty client identifier
        &[0x00, 0x02, b'p', b'w'],
    ]);
    let packet = Packet::Connect(Connect {
        level: V5,
        clean_start: true,
        keep_alive: 0,
        client_id: s(""),
        will: None,
        username: None,
        password: Some(b(b"pw")),
        properties: Properties::new(),
    });
    assert_vector(V5, &bytes, &packet);
}

/// CONNACK with every property a server may send (3.2.2.3).
#[test]
fn connack_with_server_properties() {
    let bytes = cat(&[
        &[0x20, 0x48, 0x01, 0x00], // session present, success
        &[0x45],                   // property length 69
        &[0x11, 0x00, 0x00, 0x0E, 0x10],
        &[0x21, 0x00, 0x0A],
        &[0x24, 0x01],
        &[0x25, 0x00],
        &[0x27, 0x00, 0x01, 0x00, 0x00],
        &[0x12, 0x00, 0x04, b'a', b'u', b't', b'o'],
        &[0x22, 0x00, 0x08],
        &[0x1F, 0x00, 0x02, b'o', b'k'],
        &[0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y'],
        &[0x28, 0x00],
        &[0x29, 0x00],
        &[0x2A, 0x01],
        &[0x13, 0x00, 0x1E],
        &[0x1A, 0x00, 0x04, b'i', b'n', b'f', b'o'],
        &[0x1C, 0x00, 0x03, b's', b'r', b'v'],
        &[0x15, 0x00, 0x01, b'M'],
        &[0x16, 0x00, 0x01, 0x00],
    ]);
    let packet = Packet::Connack(Connack {
        session_present: true,
        reason: ReasonCode::Success,
        properties: props(vec![
            Property::SessionExpiryInterval(3600),
            Property::ReceiveMaximum(10),
            Property::MaximumQoS(QoS::AtLeastOnce),
            Property::RetainAvailable(false),
            Property::MaximumPacketSize(65536),
            Property::AssignedClientIdentifier(s("auto")),
            Property::TopicAliasMaximum(8),
            Property::ReasonString(s("ok")),
            Property::UserProperty(s("x"), s("y")),
            Property::WildcardSubscriptionAvailable(false),
            Property::SubscriptionIdentifierAvailable(false),
            Property::SharedSubscriptionAvailable(true),
            Property::ServerKeepAlive(30),
            Property::ResponseInformation(s("info")),
            Property::ServerReference(s("srv")),
            Property::AuthenticationMethod(s("M")),
            Property::AuthenticationData(b(&[0x00])),
        ]),
    });
    assert_vector(V5, &bytes, &packet);
}

/// CONNACK always carries the property length, even when it is 0 (3.2.2.3.1).
#[test]
fn connack_refusals() {
    let refused = Packet::Connack(Connack {
        session_present: false,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::new(),
    });
    assert_vector(V5, &[0x20, 0x03, 0x00, 0x87, 0x00], &refused);
    let moved = Packet::Connack(Connack {
        session_present: false,
        reason: ReasonCode::UseAnotherServer,
        properties: props(vec![Property::ServerReference(s("srv"))]),
    });
    assert_vector(V5, &[0x20, 0x09, 0x00, 0x9C, 0x06, 0x1C, 0x00, 0x03, b's', b'r', b'v'], &moved);
    let accepted =
        Packet::Connack(Connack { session_present: false, reason: ReasonCode::Success, properties: Properties::new() });
    assert_vector(V5, &[0x20, 0x03, 0x00, 0x00, 0x00], &accepted);
}

#[test]
fn publish_qos0_without_properties() {
    let bytes = cat(&[&[0x30, 8], &[0x00, 0x03, b'a', b'/', b'b'], &[0x00], b"hi"]);
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic("a/b"),
        packet_id: None,
        properties: Properties::new(),
        payload: b(b"hi"),
    });
    assert_vector(V5, &bytes, &packet);
}

/// PUBLISH with the PUBLISH properties of 3.3.2.3, three Subscription Identifiers among them
/// (1, 128 and 268,435,455: one-, two- and four-byte Variable Byte Integers).
#[test]
fn publish_qos1_with_properties_and_several_subscription_identifiers() {
    let bytes = cat(&[
        &[0x32, 0x3D],
        &[0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01],
        &[0x30],                                           // property length 48
        &[0x23, 0x00, 0x05],                               // Topic Alias 5
        &[0x01, 0x01],                                     // Payload Format Indicator: UTF-8
        &[0x02, 0x00, 0x00, 0x00, 0x78],                   // Message Expiry Interval 120
        &[0x08, 0x00, 0x05, b'r', b'e', b'p', b'l', b'y'], // Response Topic
        &[0x09, 0x00, 0x03, 0x01, 0x02, 0x03],             // Correlation Data
        &[0x03, 0x00, 0x04, b'j', b's', b'o', b'n'],       // Content Type
        &[0x0B, 0x01],                                     // Subscription Identifier 1
        &[0x0B, 0x80, 0x01],                               // Subscription Identifier 128
        &[0x0B, 0xFF, 0xFF, 0xFF, 0x7F],                   // Subscription Identifier 268,435,455
        &[0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'],       // User Property
        b"hello",
    ]);
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic("a/b"),
        packet_id: Some(pid(1)),
        properties: props(vec![
            Property::TopicAlias(5),
            Property::PayloadFormatIndicator(PayloadFormat::Utf8),
            Property::MessageExpiryInterval(120),
            Property::ResponseTopic(topic("reply")),
            Property::CorrelationData(b(&[1, 2, 3])),
            Property::ContentType(s("json")),
            Property::SubscriptionIdentifier(1),
            Property::SubscriptionIdentifier(128),
            Property::SubscriptionIdentifier(268_435_455),
            Property::UserProperty(s("k"), s("v")),
        ]),
        payload: b(b"hello"),
    });
    assert_vector(V5, &bytes, &packet);
}

/// A zero-length topic with a Topic Alias names the topic by the alias alone (3.3.2.3.4).
#[test]
fn publish_alias_only_empty_topic() {
    let bytes = [0x30, 7, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05, b'x'];
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::alias_only(),
        packet_id: None,
        properties: props(vec![Property::TopicAlias(5)]),
        payload: b(b"x"),
    });
    assert_vector(V5, &bytes, &packet);
}

#[test]
fn publish_qos2_dup_retain() {
    let bytes = [0x3D, 7, 0x00, 0x01, b't', 0x00, 0x07, 0x00, b'z'];
    let packet = Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: true,
        topic: topic("t"),
        packet_id: Some(pid(7)),
        properties: Properties::new(),
        payload: b(b"z"),
    });
    assert_vector(V5, &bytes, &packet);
}

fn ack(id: u16, reason: ReasonCode, properties: Properties) -> Ack {
    Ack { packet_id: pid(id), reason, properties }
}

/// PUBACK (3.4.2): remaining length 2 for success without properties, 3 for a reason alone,
/// more for a reason with properties.
#[test]
fn puback_forms() {
    assert_vector(V5, &[0x40, 0x02, 0x00, 0x01], &Packet::Puback(Ack::new(pid(1))));
    assert_vector(
        V5,
        &[0x40, 0x03, 0x00, 0x01, 0x10],
        &Packet::Puback(ack(1, ReasonCode::NoMatchingSubscribers, Properties::new())),
    );
    let with_string = cat(&[&[0x40, 0x0C, 0x00, 0x01, 0x97, 0x08, 0x1F, 0x00, 0x05], b"quota"]);
    assert_vector(
        V5,
        &with_string,
        &Packet::Puback(ack(1, ReasonCode::QuotaExceeded, props(vec![Property::ReasonString(s("quota"))]))),
    );
    let success_with_user_property = [0x40, 0x0B, 0x00, 0x01, 0x00, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'];
    assert_vector(
        V5,
        &success_with_user_property,
        &Packet::Puback(ack(1, ReasonCode::Success, props(vec![Property::UserProperty(s("k"), s("v"))]))),
    );
}

/// The longer forms of a plain success are accepted and written back in the shortest form.
#[test]
fn puback_success_in_longer_forms() {
    let plain = Packet::Puback(Ack::new(pid(1)));
    assert_decodes_then_canonical(V5, &[0x40, 0x03, 0x00, 0x01, 0x00], &plain, &[0x40, 0x02, 0x00, 0x01]);
    assert_decodes_then_canonical(V5, &[0x40, 0x04, 0x00, 0x01, 0x00, 0x00], &plain, &[0x40, 0x02, 0x00, 0x01]);
}

#[test]
fn pubrec_pubrel_pubcomp() {
    assert_vector(V5, &[0x50, 0x02, 0x00, 0x02], &Packet::Pubrec(Ack::new(pid(2))));
    assert_vector(
        V5,
        &[0x50, 0x03, 0x00, 0x02, 0x80],
        &Packet::Pubrec(ack(2, ReasonCode::UnspecifiedError, Properties::new())),
    );
    assert_vector(
        V5,
        &[0x50, 0x03, 0x00, 0x02, 0x91],
        &Packet::Pubrec(ack(2, ReasonCode::PacketIdentifierInUse, Properties::new())),
    );
    assert_vector(V5, &[0x62, 0x02, 0x00, 0x02], &Packet::Pubrel(Ack::new(pid(2))));
    assert_vector(
        V5,
        &[0x62, 0x03, 0x00, 0x02, 0x92],
        &Packet::Pubrel(ack(2, ReasonCode::PacketIdentifierNotFound, Properties::new())),
    );
    assert_vector(V5, &[0x70, 0x02, 0x00, 0x02], &Packet::Pubcomp(Ack::new(pid(2))));
    assert_vector(
        V5,
        &[0x70, 0x09, 0x00, 0x02, 0x92, 0x05, 0x1F, 0x00, 0x02, b'n', b'o'],
        &Packet::Pubcomp(ack(2, ReasonCode::PacketIdentifierNotFound, props(vec![Property::ReasonString(s("no"))]))),
    );
}

/// SUBSCRIBE with a Subscription Identifier, a user property and every subscription option
/// (3.8.3.1): `a/+` with QoS 1, No Local, Retain As Published, Retain Handling 2 (0010 1101), and
/// a shared subscription with QoS 2, Retain Handling 1 (0001 0010).
#[test]
fn subscribe_with_options_and_properties() {
    let bytes = cat(&[
        &[0x82, 0x1F, 0x00, 0x01],
        &[0x09, 0x0B, 0x0A, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'],
        &[0x00, 0x03, b'a', b'/', b'+', 0x2D],
        &[0x00, 0x0A],
        b"$share/g/x",
        &[0x12],
    ]);
    let packet = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![
            (
                filter("a/+"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                filter("$share/g/x"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtNewSubscribe,
                },
            ),
        ],
        properties: props(vec![Property::SubscriptionIdentifier(10), Property::UserProperty(s("k"), s("v"))]),
    });
    assert_vector(V5, &bytes, &packet);
}

/// SUBACK with a reason string and every SUBACK reason code of 3.9.3.
#[test]
fn suback_all_reason_codes() {
    let bytes = cat(&[
        &[0x90, 0x14, 0x00, 0x01],
        &[0x05, 0x1F, 0x00, 0x02, b'n', b'o'],
        &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2],
    ]);
    let packet = Packet::Suback(Suback {
        packet_id: pid(1),
        reasons: vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
            ReasonCode::ImplementationSpecificError,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::PacketIdentifierInUse,
            ReasonCode::QuotaExceeded,
            ReasonCode::SharedSubscriptionsNotSupported,
            ReasonCode::SubscriptionIdentifiersNotSupported,
            ReasonCode::WildcardSubscriptionsNotSupported,
        ],
        properties: props(vec![Property::ReasonString(s("no"))]),
    });
    assert_vector(V5, &bytes, &packet);
}

#[test]
fn unsubscribe_with_user_property() {
    let bytes = cat(&[
        &[0xA2, 0x1B, 0x00, 0x01],
        &[0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'],
        &[0x00, 0x03, b'a', b'/', b'b'],
        &[0x00, 0x0A],
        b"$share/g/#",
    ]);
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(1),
        filters: vec![filter("a/b"), filter("$share/g/#")],
        properties: props(vec![Property::UserProperty(s("k"), s("v"))]),
    });
    assert_vector(V5, &bytes, &packet);
}

/// UNSUBACK (3.11): properties, then one reason code per filter.
#[test]
fn unsuback_reason_codes() {
    let packet = Packet::Unsuback(Unsuback {
        packet_id: pid(1),
        reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        properties: Properties::new(),
    });
    assert_vector(V5, &[0xB0, 0x05, 0x00, 0x01, 0x00, 0x00, 0x11], &packet);
    let packet = Packet::Unsuback(Unsuback {
        packet_id: pid(2),
        reasons: vec![ReasonCode::NotAuthorized],
        properties: props(vec![Property::ReasonString(s("no"))]),
    });
    assert_vector(V5, &[0xB0, 0x09, 0x00, 0x02, 0x05, 0x1F, 0x00, 0x02, b'n', b'o', 0x87], &packet);
}

#[test]
fn pingreq_pingresp() {
    assert_vector(V5, &[0xC0, 0x00], &Packet::Pingreq);
    assert_vector(V5, &[0xD0, 0x00], &Packet::Pingresp);
}

/// DISCONNECT (3.14.2): remaining length 0 for a normal disconnection, 1 for a reason alone.
#[test]
fn disconnect_forms() {
    assert_vector(V5, &[0xE0, 0x00], &Packet::Disconnect(Disconnect::normal()));
    let with_will = Disconnect { reason: ReasonCode::DisconnectWithWillMessage, properties: Properties::new() };
    assert_vector(V5, &[0xE0, 0x01, 0x04], &Packet::Disconnect(with_will));
    let with_expiry = Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: props(vec![Property::SessionExpiryInterval(3600)]),
    };
    assert_vector(V5, &[0xE0, 0x07, 0x04, 0x05, 0x11, 0x00, 0x00, 0x0E, 0x10], &Packet::Disconnect(with_expiry));
    let moved = Disconnect {
        reason: ReasonCode::UseAnotherServer,
        properties: props(vec![Property::ServerReference(s("srv")), Property::ReasonString(s("bye"))]),
    };
    let bytes = cat(&[&[0xE0, 0x0E, 0x9C, 0x0C], &[0x1C, 0x00, 0x03], b"srv", &[0x1F, 0x00, 0x03], b"bye"]);
    assert_vector(V5, &bytes, &Packet::Disconnect(moved));
    assert_decodes_then_canonical(
        V5,
        &[0xE0, 0x02, 0x00, 0x00],
        &Packet::Disconnect(Disconnect::normal()),
        &[0xE0, 0x00],
    );
}

/// AUTH (3.15): remaining length 0 for success without properties; otherwise the reason code and
/// the properties with their length.
#[test]
fn auth_forms() {
    let success = Auth { reason: ReasonCode::Success, properties: Properties::new() };
    assert_vector(V5, &[0xF0, 0x00], &Packet::Auth(success));
    let cont = Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: props(vec![
            Property::AuthenticationMethod(s("SCRAM")),
            Property::AuthenticationData(b(&[1, 2, 3])),
        ]),
    };
    let bytes = cat(&[&[0xF0, 0x10, 0x18, 0x0E, 0x15, 0x00, 0x05], b"SCRAM", &[0x16, 0x00, 0x03, 0x01, 0x02, 0x03]]);
    assert_vector(V5, &bytes, &Packet::Auth(cont));
    let reauth = Auth { reason: ReasonCode::ReAuthenticate, properties: Properties::new() };
    assert_vector(V5, &[0xF0, 0x02, 0x19, 0x00], &Packet::Auth(reauth));
}
