//! Persistence across a graceful restart, on both runtimes and in every sync mode: retained
//! messages, subscriptions and offline queues come back; a store in use or damaged is a clear
//! error.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_mqtt_core::broker::{BrokerConfig, OnCorrupt, PersistenceConfig, SyncMode};
use moat_mqtt_core::codec::{Ack, Packet, QoS};
use moat_mqtt_tests::helpers::{publish_packet, subscribe_packet};
use moat_mqtt_tests::{RawClient, Rt, TestBroker};

fn store_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-persist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &Path, sync: SyncMode) -> BrokerConfig {
    let mut config = BrokerConfig::default();
    config.router.sys_interval = None;
    config.persistence = Some(PersistenceConfig { path: dir.to_owned(), sync, on_corrupt: OnCorrupt::Fail });
    config
}

/// The PUBLISH packets among the next `n` packets, acknowledged as they come; (topic, payload,
/// retain).
fn take_publishes(client: &mut RawClient, n: usize) -> Vec<(String, String, bool)> {
    let mut got = Vec::new();
    while got.len() < n {
        match client.recv() {
            Packet::Publish(p) => {
                match (p.qos, p.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => client.send(&Packet::Puback(Ack::new(id))),
                    (QoS::ExactlyOnce, Some(id)) => client.send(&Packet::Pubrec(Ack::new(id))),
                    _ => {}
                }
                got.push((p.topic.to_string(), String::from_utf8_lossy(&p.payload).into_owned(), p.retain));
            }
            Packet::Pubrel(ack) => client.send(&Packet::Pubcomp(ack)),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

#[test]
fn graceful_restart_keeps_retained_messages_subscriptions_and_offline_queues() {
    for rt in Rt::ALL {
        for sync in [SyncMode::Always, SyncMode::Interval(Duration::from_secs(60)), SyncMode::Never] {
            let what = format!("{rt:?} {sync:?}");
            let dir = store_dir(&format!("{rt:?}-restart"));
            let broker = TestBroker::start_with(rt, config(&dir, sync));
            let mut keeper = RawClient::connected(broker.addr, "keeper", false);
            keeper.send(&subscribe_packet(1, &[("q/#", QoS::AtLeastOnce), ("r/#", QoS::ExactlyOnce)]));
            assert!(matches!(keeper.recv(), Packet::Suback(_)), "{what}");
            keeper.disconnect();

            let mut publisher = RawClient::connected(broker.addr, "publisher", true);
            publisher.send(&publish_packet("r/state", QoS::AtLeastOnce, 1, b"on", true));
            assert!(matches!(publisher.recv(), Packet::Puback(_)), "{what}");
            for i in 0..5u16 {
                publisher.send(&publish_packet("q/a", QoS::AtLeastOnce, 10 + i, format!("q{i}").as_bytes(), false));
                assert!(matches!(publisher.recv(), Packet::Puback(_)), "{what}");
            }
            publisher.send(&publish_packet("r/b", QoS::ExactlyOnce, 20, b"exactly", false));
            assert!(matches!(publisher.recv(), Packet::Pubrec(_)), "{what}");
            publisher.send(&Packet::Pubrel(Ack::new(moat_mqtt_tests::helpers::pid(20))));
            assert!(matches!(publisher.recv(), Packet::Pubcomp(_)), "{what}");
            drop(publisher);
            broker.stop();

            let broker = TestBroker::start_with(rt, config(&dir, sync));
            let stats = broker.stats();
            assert_eq!((stats.stored, stats.clients_disconnected), (7, 1), "{what}: restored counters");
            let (mut keeper, connack) = RawClient::connect(broker.addr, "keeper", false);
            assert!(connack.session_present, "{what}: the session was not restored");
            let mut got = take_publishes(&mut keeper, 7);
            got.sort();
            let mut expected: Vec<(String, String, bool)> = (0..5)
                .map(|i| ("q/a".to_owned(), format!("q{i}"), false))
                .chain([
                    ("r/b".to_owned(), "exactly".to_owned(), false),
                    ("r/state".to_owned(), "on".to_owned(), false),
                ])
                .collect();
            expected.sort();
            assert_eq!(got, expected, "{what}: the offline queue");
            // The subscriptions came back: a new message reaches the keeper.
            let mut publisher = RawClient::connected(broker.addr, "publisher", true);
            publisher.send(&publish_packet("q/new", QoS::AtLeastOnce, 1, b"after", false));
            assert_eq!(take_publishes(&mut keeper, 1), [("q/new".into(), "after".into(), false)], "{what}");
            // The retained message came back.
            let mut newcomer = RawClient::connected(broker.addr, "newcomer", true);
            newcomer.send(&subscribe_packet(1, &[("r/#", QoS::AtMostOnce)]));
            assert!(matches!(newcomer.recv(), Packet::Suback(_)), "{what}");
            assert_eq!(take_publishes(&mut newcomer, 1), [("r/state".into(), "on".into(), true)], "{what}");
            drop((keeper, publisher, newcomer));
            broker.stop();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn a_store_in_use_or_damaged_is_a_clear_error() {
    for rt in Rt::ALL {
        let dir = store_dir(&format!("{rt:?}-in-use"));
        let first = TestBroker::start_with(rt, config(&dir, SyncMode::Always));
        let error = bind_error(rt, config(&dir, SyncMode::Always));
        assert!(error.contains("already in use"), "{rt:?}: {error}");
        first.stop();

        let file = dir.join(moat_mqtt_core::driver::STORE_FILE);
        let mut bytes = std::fs::read(&file).expect("the store file");
        // Damage the file's header and everything after it.
        for byte in bytes.iter_mut() {
            *byte ^= 0xa5;
        }
        std::fs::write(&file, &bytes).expect("damage the store");
        let error = bind_error(rt, config(&dir, SyncMode::Always));
        assert!(error.contains("corrupt") && error.contains(&file.display().to_string()), "{rt:?}: {error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The error `Broker::bind` gives for `config`, which must fail.
fn bind_error(rt: Rt, config: BrokerConfig) -> String {
    let result = match rt {
        Rt::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(moat_mqtt_tokio::Broker::bind(config))
            .map(drop),
        Rt::Smol => smol::block_on(moat_mqtt_smol::Broker::bind(config)).map(drop),
    };
    match result {
        Ok(()) => panic!("{rt:?}: the broker started"),
        Err(error) => error.to_string(),
    }
}
