//! `moat mqtt sub`: subscribe to filters and print each message as `topic<TAB>payload`.
//!
//! The payload is decoded by the codec (`-C`) and printed as [`Codec::render`] gives it (raw
//! bytes for `binary`, text for `utf8`, compact JSON for `json`, `msgpack` and `cbor`); a
//! payload the codec cannot decode is warned about and printed raw. stdout is flushed after
//! every message. `-n N` ends the run after N messages; otherwise it runs until Ctrl-C or
//! SIGTERM, which disconnect cleanly (no will) and exit 0.
//!
//! A lost connection is made again as the client options say (`auto_reconnect`,
//! `reconnect_retries`), with a warning per event; once reconnecting is given up the run
//! ends with exit code 1. Messages of a resumed persistent session that arrive before the
//! SUBACK are printed too.

use std::io::{self, Write as _};
use std::path::Path;

use futures::{FutureExt as _, StreamExt as _};
use moat_mqtt_core::client::options::BrokerUrl;
use moat_mqtt_core::codec::QoS;
use moat_mqtt_core::driver::{ConnectionEvent, Message};
use moat_mqtt_core::payload::Codec;
use moat_mqtt_core::topic::TopicFilter;

use crate::broker_cmd::Failure;
use crate::client_opts::{ClientArgs, Role, connect_error, failed, run_error, run_on, usage};

/// Options of `moat mqtt sub`.
#[derive(Debug, clap::Args)]
pub(crate) struct SubArgs {
    /// A topic filter to subscribe to; repeat for several.
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    topics: Vec<String>,
    /// Exit after N messages.
    #[arg(short = 'n', long = "count", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// Subscribes and prints messages until `-n N` of them came, a signal, or the connection is
/// lost for good.
///
/// # Errors
/// [`Failure::Usage`] for a bad filter or configuration; [`Failure::Run`] when the broker
/// cannot be reached, refuses the connection or a subscription, or the connection is lost.
pub(crate) fn run(config_file: Option<&Path>, args: &SubArgs) -> Result<(), Failure> {
    let prepared = args.client.prepare(config_file, Role::Sub)?;
    let options = prepared.options;
    for filter in &args.topics {
        TopicFilter::new(filter.clone()).map_err(|e| usage(format!("-t {filter:?}: {e}")))?;
    }
    let qos = prepared.qos.unwrap_or(options.default_qos);
    let codec = prepared.codec;
    let url = options.url.clone();
    let topics = args.topics.clone();
    let limit = args.count;
    let reconnect = options.auto_reconnect;
    run_on(prepared.runtime, move |connect, stop| async move {
        let client = connect(options).await.map_err(|e| connect_error(&e, &url))?;
        let mut events = client.events();
        log::info!("connected to {url} as {}", client.options().client_id.as_deref().unwrap_or("?"));
        let filters: Vec<(&str, QoS)> = topics.iter().map(|t| (t.as_str(), qos)).collect();
        let codes = match client.subscribe(&filters).await {
            Ok(codes) => codes,
            Err(e) => {
                client.disconnect().await;
                return Err(run_error(&e, &url));
            }
        };
        let refused: Vec<String> = topics
            .iter()
            .zip(codes.iter().map(Some).chain(std::iter::repeat(None)))
            .filter_map(|(topic, code)| match code {
                Some(code) if !code.is_error() => {
                    log::info!("subscribed to {topic:?}, granted QoS {}", code.v3_suback_code());
                    None
                }
                Some(code) => Some(format!("{topic:?} ({code})")),
                None => Some(format!("{topic:?} (no answer)")),
            })
            .collect();
        if !refused.is_empty() {
            client.disconnect().await;
            return Err(failed(format!("the broker refused the subscription to {}", refused.join(", "))));
        }
        let mut stop = stop.fuse();
        let mut printed = 0u64;
        let mut last_reason = None;
        let result = loop {
            if limit.is_some_and(|n| printed >= n) {
                break Ok(());
            }
            futures::select_biased! {
                message = client.deliver_message().fuse() => match message {
                    Some(message) => match print(&message, &codec) {
                        Ok(()) => printed += 1,
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                            log::info!("stdout closed; stopping");
                            break Ok(());
                        }
                        Err(e) => break Err(failed(format!("cannot write to stdout: {e}"))),
                    },
                    None => {
                        while let Ok(event) = events.try_recv() {
                            last_reason = report(&event, &url).or(last_reason);
                        }
                        let reason = last_reason.take().unwrap_or_else(|| "connection lost".to_owned());
                        break Err(failed(format!(
                            "lost the connection to the broker at {url}: {reason}{}",
                            if reconnect { "; reconnecting failed" } else { "" }
                        )));
                    }
                },
                event = events.next() => {
                    if let Some(event) = event {
                        last_reason = report(&event, &url).or(last_reason);
                    }
                },
                () = stop => break Ok(()),
            }
        };
        client.disconnect().await;
        log::info!("{printed} message(s) received");
        result
    })
}

/// Logs a connection event; returns the reason the connection was lost, if it says.
fn report(event: &ConnectionEvent, url: &BrokerUrl) -> Option<String> {
    match event {
        ConnectionEvent::Connected { session_present } => {
            log::warn!("reconnected to {url} (session {})", if *session_present { "resumed" } else { "new" });
            None
        }
        ConnectionEvent::Disconnected { reason } => {
            log::warn!("lost the connection to {url}: {reason}");
            Some(reason.clone())
        }
        ConnectionEvent::Reconnecting { attempt, delay } => {
            log::warn!("reconnecting to {url} in {delay:?} (attempt {attempt})");
            None
        }
        ConnectionEvent::GaveUp { reason } => {
            log::info!("gave up reconnecting: {reason}");
            None
        }
        other => {
            log::info!("{other:?}");
            None
        }
    }
}

/// Writes `topic<TAB>payload<LF>` for `message` to stdout and flushes it.
fn print(message: &Message, codec: &Codec) -> io::Result<()> {
    let payload = match message.decode(codec) {
        Ok(value) => codec.render(&value),
        Err(e) => {
            log::warn!("message on {:?} printed raw: {e}", message.topic.as_str());
            message.payload.to_vec()
        }
    };
    let topic = message.topic.as_str().as_bytes();
    let mut line = Vec::with_capacity(topic.len() + payload.len() + 2);
    line.extend_from_slice(topic);
    line.push(b'\t');
    line.extend_from_slice(&payload);
    line.push(b'\n');
    let mut out = io::stdout().lock();
    out.write_all(&line)?;
    out.flush()
}
