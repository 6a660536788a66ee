//! The broker answers CONNECT, routes a message and shuts down, on both runtimes.

use moat_mqtt_core::codec::{
    Connack, Connect, Packet, Properties, ProtocolLevel, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};
use moat_mqtt_tests::{RawClient, Rt, TestBroker};

fn connect(id: &str) -> Packet {
    Packet::Connect(Connect {
        level: ProtocolLevel::V3_1_1,
        clean_start: true,
        keep_alive: 30,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    })
}

#[test]
fn connect_subscribe_publish_on_both_runtimes() {
    for rt in Rt::ALL {
        let broker = TestBroker::start(rt);
        let mut sub = RawClient::open(broker.addr);
        sub.send(&connect("sub"));
        assert_eq!(
            sub.recv(),
            Packet::Connack(Connack {
                session_present: false,
                reason: ReasonCode::Success,
                properties: Properties::new()
            })
        );
        sub.send(&Packet::Subscribe(Subscribe {
            packet_id: 1.try_into().unwrap(),
            filters: vec![(TopicFilter::new("a/#").unwrap(), SubscriptionOptions::qos(QoS::AtLeastOnce))],
            properties: Properties::new(),
        }));
        assert!(matches!(sub.recv(), Packet::Suback(_)), "{rt:?}");
        let mut publ = RawClient::open(broker.addr);
        publ.send(&connect("pub"));
        publ.recv();
        publ.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("a/b").unwrap(),
            packet_id: Some(7.try_into().unwrap()),
            properties: Properties::new(),
            payload: "hello".into(),
        }));
        assert!(matches!(publ.recv(), Packet::Puback(_)), "{rt:?}");
        let Packet::Publish(got) = sub.recv() else { panic!("{rt:?}: expected PUBLISH") };
        assert_eq!(&got.payload[..], b"hello");
        broker.stop();
        assert!(sub.is_closed_within(std::time::Duration::from_secs(2)), "{rt:?}: shutdown closes links");
    }
}
