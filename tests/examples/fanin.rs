//! A quick fan-in probe: P publishers blast QoS 0 (or QoS 1) PUBLISH at one subscriber through
//! a broker, and the subscriber's receive rate is printed. For side-by-side runs against
//! mosquitto until `moat mqtt bench` exists:
//!
//! `cargo run --release -p moat-mqtt-tests --example fanin -- HOST:PORT [PUBLISHERS] [MESSAGES_EACH] [QOS] [persistent|clean] [WINDOW]`
//!
//! With `persistent`, the subscriber keeps a persistent session (clean session 0), so a broker
//! with persistence stores every QoS 1/2 message on its way to it. With a `WINDOW`, each QoS 1
//! publisher keeps at most that many PUBLISH unacknowledged (as real QoS 1 clients do), so its
//! rate follows the broker's acknowledgements; without, publishers write flat out.
#![allow(clippy::print_stdout, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use moat_mqtt_core::codec::{
    Connect, Decoder, Packet, Properties, ProtocolLevel, Publish, QoS, Subscribe, SubscriptionOptions, encode,
};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

fn connect(addr: &str, id: &str, clean: bool) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let c = Connect {
        level: ProtocolLevel::V3_1_1,
        clean_start: clean,
        keep_alive: 60,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    };
    encode(&Packet::Connect(c), ProtocolLevel::V3_1_1, &mut buf).unwrap();
    s.write_all(&buf).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack[3], 0, "CONNACK refused");
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:1883".into());
    let publishers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let each: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let qos = match args.get(4).map(String::as_str) {
        Some("1") => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let persistent = args.get(5).is_some_and(|a| a == "persistent");
    let window: usize = args.get(6).and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut sub = connect(&addr, "fanin-sub", !persistent);
    let mut buf = Vec::new();
    let subscribe = Subscribe {
        packet_id: 1.try_into().unwrap(),
        filters: vec![(TopicFilter::new("fanin/#").unwrap(), SubscriptionOptions::qos(qos))],
        properties: Properties::new(),
    };
    encode(&Packet::Subscribe(subscribe), ProtocolLevel::V3_1_1, &mut buf).unwrap();
    sub.write_all(&buf).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let total = publishers * each;
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..publishers)
        .map(|p| {
            let addr = addr.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut s = connect(&addr, &format!("fanin-pub-{p}"), true);
                let mut drain = s.try_clone().unwrap();
                // Acknowledgements are counted (PUBACK is 4 bytes) for the window.
                let acked = Arc::new((Mutex::new(0usize), Condvar::new()));
                let counter = Arc::clone(&acked);
                std::thread::spawn(move || {
                    let mut sink = [0u8; 65536];
                    let mut bytes = 0usize;
                    while !done.load(Ordering::Relaxed) {
                        match drain.read(&mut sink) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                bytes += n;
                                *counter.0.lock().unwrap() = bytes / 4;
                                counter.1.notify_one();
                            }
                        }
                    }
                });
                let topic = TopicName::new(format!("fanin/{p}")).unwrap();
                let mut batch = Vec::new();
                for i in 0..each {
                    if window > 0 && qos != QoS::AtMostOnce {
                        let mut done = acked.0.lock().unwrap();
                        while i >= *done + window {
                            if !batch.is_empty() {
                                drop(done);
                                s.write_all(&batch).unwrap();
                                batch.clear();
                                done = acked.0.lock().unwrap();
                                continue;
                            }
                            done = acked.1.wait(done).unwrap();
                        }
                    }
                    let publish = Publish {
                        dup: false,
                        qos,
                        retain: false,
                        topic: topic.clone(),
                        packet_id: (qos != QoS::AtMostOnce).then(|| ((i % 65535) as u16 + 1).try_into().unwrap()),
                        properties: Properties::new(),
                        payload: vec![b'x'; 64].into(),
                    };
                    encode(&Packet::Publish(publish), ProtocolLevel::V3_1_1, &mut batch).unwrap();
                    if batch.len() > 16 * 1024 {
                        s.write_all(&batch).unwrap();
                        batch.clear();
                    }
                }
                s.write_all(&batch).unwrap();
                s
            })
        })
        .collect();
    let decoder = Decoder::new(ProtocolLevel::V3_1_1);
    let mut inbox = BytesMut::new();
    let mut got = 0usize;
    let mut last = Instant::now();
    sub.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut chunk = vec![0u8; 256 * 1024];
    let mut acks = Vec::new();
    while got < total {
        match sub.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => inbox.extend_from_slice(&chunk[..n]),
        }
        while let Some(p) = decoder.decode(&mut inbox).unwrap() {
            if let Packet::Publish(p) = p {
                got += 1;
                last = Instant::now();
                if let Some(id) = p.packet_id {
                    encode(&Packet::Puback(moat_mqtt_core::codec::Ack::new(id)), ProtocolLevel::V3_1_1, &mut acks)
                        .unwrap();
                }
            }
        }
        if !acks.is_empty() {
            sub.write_all(&acks).unwrap();
            acks.clear();
        }
    }
    done.store(true, Ordering::Relaxed);
    let elapsed = last.duration_since(started).as_secs_f64();
    println!(
        "{addr}: {got}/{total} messages in {elapsed:.3} s = {:.0} msg/s ({publishers} publishers, QoS {})",
        got as f64 / elapsed,
        qos as u8
    );
    drop(threads);
}
