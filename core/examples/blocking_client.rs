//! The client core driven by a blocking `std::net::TcpStream`, without any async runtime: the
//! whole calling contract of [`Connection`] in one file.
//!
//! It connects, subscribes to a topic of its own, publishes one message to it at QoS 1, prints
//! the message when it comes back, and disconnects. Exit status 0 on success, 1 on failure.
//!
//! ```sh
//! cargo run --release --bin moat -- mqtt broker          # in another terminal
//! cargo run -p moat-mqtt-core --example blocking_client  # or: ... -- HOST:PORT
//! ```
//!
//! The loop is the contract: write what `poll_transmit` gives, handle every `poll_event`,
//! then wait for bytes no longer than `poll_timeout` says; bytes go to `handle_bytes`, end of
//! stream to `handle_eof`, a passed deadline to `handle_timeout`. The core never reads the
//! clock; this file does, and passes `now` in.
#![allow(clippy::print_stdout, missing_docs)]

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moat_mqtt_core::client::{ConnectOptions, Connection, DisconnectReason, Event, RequestId};
use moat_mqtt_core::codec::{QoS, SubscriptionOptions};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

/// The whole exchange must be over by then.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let broker = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:1883".to_owned());
    match run(&broker) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking_client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the example has done so far; the events move it on.
#[derive(Default)]
struct Progress {
    publish: Option<RequestId>,
    published: bool,
    received: bool,
}

fn run(broker: &str) -> Result<(), Box<dyn Error>> {
    let mut stream = TcpStream::connect(broker).map_err(|e| format!("cannot connect to {broker}: {e}"))?;
    stream.set_nodelay(true)?;
    let client_id = format!("blocking-{}", std::process::id());
    let topic = format!("moat/example/{client_id}");
    let options = ConnectOptions { keep_alive: Duration::from_secs(30), ..ConnectOptions::new(client_id) };
    let mut client = Connection::new(options);

    let give_up = Instant::now() + GIVE_UP_AFTER;
    client.start(Instant::now())?; // queues CONNECT
    let mut progress = Progress::default();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // 1. Write everything the core wants sent.
        client.poll_transmit(Instant::now(), &mut out);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }

        // 2. React to what happened. Commands queue more output, so loop back to step 1.
        let mut acted = false;
        while let Some(event) = client.poll_event() {
            acted = true;
            let now = Instant::now();
            match event {
                Event::Connected { session_present } => {
                    println!("connected to {broker} (session present: {session_present})");
                    let filter = TopicFilter::new(topic.as_str())?;
                    client.subscribe(now, vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))])?;
                }
                Event::Subscribed { granted, .. } => {
                    println!("subscribed to {topic}: {granted:?}");
                    let payload = Bytes::from_static(b"hello from a blocking client");
                    let id = client.publish(now, TopicName::new(topic.as_str())?, payload, QoS::AtLeastOnce, false)?;
                    progress.publish = Some(id);
                }
                Event::Published(id) if Some(id) == progress.publish => {
                    println!("published (PUBACK received)");
                    progress.published = true;
                }
                Event::Message(message) => {
                    println!("received on {}: {}", message.topic, String::from_utf8_lossy(&message.payload));
                    progress.received = true;
                }
                Event::Disconnected(DisconnectReason::Local) => {
                    // DISCONNECT is queued: write it, then close.
                    client.poll_transmit(now, &mut out);
                    stream.write_all(&out)?;
                    stream.shutdown(Shutdown::Both)?;
                    println!("disconnected");
                    return Ok(());
                }
                Event::Disconnected(reason) => return Err(format!("connection ended: {reason}").into()),
                Event::Refused(reason) => return Err(format!("broker refused the connection: {reason}").into()),
                other => println!("{other:?}"),
            }
            if progress.published && progress.received {
                client.disconnect(now);
            }
        }
        if acted {
            continue;
        }

        // 3. Wait for bytes, but no longer than the core's next deadline.
        let now = Instant::now();
        if now >= give_up {
            return Err(format!("no answer within {GIVE_UP_AFTER:?}").into());
        }
        let deadline = client.poll_timeout().map_or(give_up, |t| t.min(give_up));
        // A zero timeout means "block forever" to the socket, so wait at least a millisecond.
        let wait = deadline.saturating_duration_since(now).max(Duration::from_millis(1));
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut buf) {
            Ok(0) => client.handle_eof(Instant::now()),
            Ok(n) => client.handle_bytes(Instant::now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                client.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("blocking_client: read failed: {e}");
                client.handle_eof(Instant::now());
            }
        }
    }
}
