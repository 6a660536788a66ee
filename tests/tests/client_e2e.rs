//! Our async client against our broker and against a real mosquitto, on both runtimes.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use moat_mqtt_core::client::options::ClientOptions;
use moat_mqtt_core::codec::{QoS, ReasonCode};
use moat_mqtt_core::driver::{Client, ClientError, ConnectionEvent};
use moat_mqtt_tests::external::MosquittoBroker;
use moat_mqtt_tests::{Rt, TestBroker};

fn options(addr: SocketAddr, id: &str) -> ClientOptions {
    let mut options = ClientOptions {
        url: format!("mqtt://{addr}").parse().expect("url"),
        client_id: Some(id.to_owned()),
        ..ClientOptions::default()
    };
    options.keep_alive = Duration::from_secs(5);
    options
}

/// Runs `body` to completion on runtime `rt`, with a client connector for that runtime.
fn on(rt: Rt, body: impl AsyncFnOnce(Rt) + Send + 'static) {
    match rt {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio")
            .block_on(body(rt)),
        Rt::Smol => smol::block_on(body(rt)),
    }
}

async fn connect(rt: Rt, options: ClientOptions) -> Result<Client, ClientError> {
    match rt {
        Rt::Tokio => moat_mqtt_tokio::connect(options).await,
        Rt::Smol => moat_mqtt_smol::connect(options).await,
    }
}

async fn sleep(rt: Rt, duration: Duration) {
    match rt {
        Rt::Tokio => tokio::time::sleep(duration).await,
        Rt::Smol => {
            smol::Timer::after(duration).await;
        }
    }
}

async fn round_trip(rt: Rt, addr: SocketAddr) {
    let sub = connect(rt, options(addr, "rt-sub")).await.expect("subscriber connects");
    let mut stream = sub.subscription("rt/#", QoS::ExactlyOnce).await.expect("subscribed");
    let publisher = connect(rt, options(addr, "rt-pub")).await.expect("publisher connects");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        publisher
            .publish(&format!("rt/{}", qos as u8), format!("q{}", qos as u8), qos, false)
            .await
            .expect("published");
    }
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let message = stream.next().await.expect("a message");
        assert_eq!(message.topic.as_str(), format!("rt/{}", qos as u8), "{rt:?}");
        assert_eq!(message.payload, format!("q{}", qos as u8).into_bytes(), "{rt:?}");
        assert_eq!(message.qos, qos, "{rt:?}");
    }
    // A message no subscription claims goes to deliver_message.
    let codes = sub.subscribe(&[("other", QoS::AtLeastOnce)]).await.expect("subscribe");
    assert_eq!(codes, [ReasonCode::GrantedQoS1]);
    publisher.publish("other", "unclaimed", QoS::AtLeastOnce, false).await.expect("published");
    let message = sub.deliver_message().await.expect("unclaimed message");
    assert_eq!(message.payload, "unclaimed".as_bytes());
    publisher.disconnect().await;
    sub.disconnect().await;
    assert!(matches!(publisher.publish("x", "y", QoS::AtMostOnce, false).await, Err(ClientError::Closed)));
}

#[test]
fn round_trip_through_our_broker_on_both_runtimes() {
    for rt in Rt::ALL {
        let broker = TestBroker::start(rt);
        let addr = broker.addr;
        on(rt, async move |rt| round_trip(rt, addr).await);
    }
}

#[test]
fn round_trip_through_mosquitto_on_both_runtimes() {
    for rt in Rt::ALL {
        let broker = MosquittoBroker::start();
        let addr = broker.addr;
        on(rt, async move |rt| round_trip(rt, addr).await);
    }
}

#[test]
fn unreachable_and_refused_are_clear_errors() {
    for rt in Rt::ALL {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        on(rt, async move |rt| {
            let error = connect(rt, options(closed, "x")).await.expect_err("nobody listens");
            assert!(matches!(error, ClientError::Unreachable { .. }), "{rt:?}: {error}");
        });
    }
}

#[test]
fn reconnects_and_resends_after_the_broker_restarts() {
    moat_mqtt_tests::logs::install();
    for rt in Rt::ALL {
        let broker = MosquittoBroker::start();
        let addr = broker.addr;
        let (restart_tx, restart_rx) = std::sync::mpsc::channel::<()>();
        let (restarted_tx, restarted_rx) = std::sync::mpsc::channel::<MosquittoBroker>();
        let restarter = std::thread::spawn(move || {
            restart_rx.recv().unwrap();
            drop(broker);
            std::thread::sleep(Duration::from_millis(300));
            restarted_tx.send(MosquittoBroker::start_on(addr)).unwrap();
        });
        on(rt, async move |rt| {
            let mut o = options(addr, "survivor");
            o.reconnect_retries = moat_mqtt_core::client::options::Retries::Forever;
            o.reconnect_max_interval = Duration::from_secs(1);
            let client = connect(rt, o).await.expect("connects");
            let mut events = client.events();
            let mut stream = client.subscription("back/#", QoS::AtLeastOnce).await.expect("subscribed");
            restart_tx.send(()).unwrap();
            let lost = events.next().await.expect("an event");
            assert!(matches!(lost, ConnectionEvent::Disconnected { .. }), "{rt:?}: {lost:?}");
            // Published while the broker is down: waits for the reconnect, then completes.
            client.publish("elsewhere", "during", QoS::AtLeastOnce, false).await.expect("published after reconnect");
            // mosquitto kept no session (it restarted): the client subscribed again by itself.
            let other = connect(rt, options(addr, "other")).await.expect("second client");
            let mut delivered = None;
            for _ in 0..50 {
                other.publish("back/1", "after", QoS::AtLeastOnce, false).await.expect("published");
                let wait = futures::future::select(stream.next(), Box::pin(sleep(rt, Duration::from_millis(100))));
                if let futures::future::Either::Left((message, _)) = wait.await {
                    delivered = message;
                    break;
                }
            }
            let message = delivered.expect("delivered after resubscribing");
            assert_eq!(message.payload, "after".as_bytes(), "{rt:?}");
            let mut seen = Vec::new();
            while let Ok(event) = events.try_recv() {
                seen.push(event);
            }
            assert!(seen.iter().any(|e| matches!(e, ConnectionEvent::Reconnecting { .. })), "{rt:?}: {seen:?}");
            assert!(
                seen.iter().any(|e| matches!(e, ConnectionEvent::Connected { session_present: false })),
                "{rt:?}: {seen:?}"
            );
            client.disconnect().await;
        });
        let _broker = restarted_rx.recv().unwrap();
        restarter.join().unwrap();
    }
}

/// A QoS 1 or 2 publisher and a subscriber, both with persistent sessions and auto-reconnect,
/// while the broker (mosquitto with persistence) is restarted: every message whose publish
/// returned Ok arrives, and at QoS 2 none arrives twice.
fn nothing_acknowledged_is_lost_across_a_broker_restart(qos: QoS) {
    const MESSAGES: u32 = 60;
    for rt in Rt::ALL {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let broker = MosquittoBroker::start_with(port, true);
        let addr = broker.addr;
        let (restart_tx, restart_rx) = std::sync::mpsc::channel::<()>();
        let restarter = std::thread::spawn(move || {
            restart_rx.recv().unwrap();
            broker.terminate();
            std::thread::sleep(Duration::from_millis(300));
            MosquittoBroker::start_with(addr, true)
        });
        let persistent = |id: &str| {
            let mut o = options(addr, id);
            o.clean_session = false;
            o.reconnect_retries = moat_mqtt_core::client::options::Retries::Forever;
            o.reconnect_max_interval = Duration::from_millis(500);
            o
        };
        let (acknowledged, received) = {
            let (sub_options, pub_options) = (persistent(&format!("keeper-{qos:?}")), persistent("pusher"));
            let result = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
            let shared = std::sync::Arc::clone(&result);
            on(rt, async move |rt| {
                let subscriber = connect(rt, sub_options).await.expect("subscriber");
                let mut stream = subscriber.subscription("seq", qos).await.expect("subscribed");
                let publisher = connect(rt, pub_options).await.expect("publisher");
                let publishing = async {
                    let mut acknowledged = Vec::new();
                    for n in 0..MESSAGES {
                        if n == 20 {
                            restart_tx.send(()).unwrap();
                        }
                        if publisher.publish("seq", n.to_string(), qos, false).await.is_ok() {
                            acknowledged.push(n);
                        }
                    }
                    acknowledged
                };
                let receiving = async {
                    let mut received = Vec::new();
                    loop {
                        let next = futures::future::select(stream.next(), Box::pin(sleep(rt, Duration::from_secs(5))));
                        match next.await {
                            futures::future::Either::Left((Some(m), _)) => {
                                received.push(String::from_utf8_lossy(&m.payload).parse::<u32>().unwrap());
                            }
                            _ => break received,
                        }
                        if received.len() as u32 >= MESSAGES && qos == QoS::ExactlyOnce {
                            break received;
                        }
                    }
                };
                let (acknowledged, received) = futures::join!(publishing, receiving);
                *shared.lock().unwrap() = (acknowledged, received);
                publisher.disconnect().await;
                subscriber.disconnect().await;
            });
            let (a, r) = &*result.lock().unwrap();
            (a.clone(), r.clone())
        };
        let _broker = restarter.join().unwrap();
        assert_eq!(acknowledged.len() as u32, MESSAGES, "{rt:?}: every publish completes after the restart");
        for n in &acknowledged {
            assert!(received.contains(n), "{rt:?} QoS {qos:?}: acknowledged message {n} lost; got {received:?}");
        }
        if qos == QoS::ExactlyOnce {
            let mut unique = received.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), received.len(), "{rt:?}: a QoS 2 message arrived twice: {received:?}");
        }
    }
}

#[test]
fn qos1_nothing_acknowledged_is_lost_across_a_broker_restart() {
    nothing_acknowledged_is_lost_across_a_broker_restart(QoS::AtLeastOnce);
}

#[test]
fn qos2_nothing_acknowledged_is_lost_or_duplicated_across_a_broker_restart() {
    nothing_acknowledged_is_lost_across_a_broker_restart(QoS::ExactlyOnce);
}

/// rumqttc's deadlock, absent: a subscription nobody reads fills up, drops and counts, and
/// the client goes on publishing and receiving elsewhere.
#[test]
fn an_unread_subscription_never_blocks_the_client() {
    for rt in Rt::ALL {
        let broker = TestBroker::start(rt);
        let addr = broker.addr;
        on(rt, async move |rt| {
            let client = connect(rt, options(addr, "lazy")).await.expect("connects");
            let unread = client.subscription("flood", QoS::AtLeastOnce).await.expect("subscribed");
            let mut read = client.subscription("ping", QoS::AtLeastOnce).await.expect("subscribed");
            let flooder = connect(rt, options(addr, "flooder")).await.expect("connects");
            let total = moat_mqtt_core::driver::SUBSCRIPTION_QUEUE + 200;
            for n in 0..total {
                flooder.publish("flood", n.to_string(), QoS::AtLeastOnce, false).await.expect("published");
            }
            // The same client still publishes (QoS 1 completes) and receives on another stream.
            client.publish("ping", "still alive", QoS::AtLeastOnce, false).await.expect("not blocked");
            let message = read.next().await.expect("delivered");
            assert_eq!(message.payload, "still alive".as_bytes(), "{rt:?}");
            assert!(unread.dropped() >= 150, "{rt:?}: dropped {}", unread.dropped());
            client.disconnect().await;
            flooder.disconnect().await;
        });
    }
}
