//! What `moat mqtt pub` and `moat mqtt sub` share: the connection options, their merge with
//! the configuration file, the runtime they run on and how client errors are told.
//!
//! Precedence: the command line, then the configuration file (its client keys, at the top
//! level or under `client:`), then the defaults. Two settings differ from the library's
//! defaults, as in the original: the client id is generated (`moat-pub-<pid>`,
//! `moat-sub-<pid>`), and the session is persistent unless `--clean-session` is given (or the
//! file sets `cleansession`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use futures::future::LocalBoxFuture;
use moat_mqtt_cli::config;
use moat_mqtt_core::client::options::{BrokerUrl, ClientOptions};
use moat_mqtt_core::codec::{Properties, QoS, Will};
use moat_mqtt_core::driver::{Client, ClientError};
use moat_mqtt_core::payload::Codec;
use moat_mqtt_core::topic::TopicName;

use crate::broker_cmd::{DEFAULT_RUNTIME, Failure, RuntimeChoice};

/// The options `pub` and `sub` share.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientArgs {
    /// The broker: mqtt://user:password@host:port/path, where the scheme may also be mqtts,
    /// ws or wss and all but the host may be left out [default: the configuration's `uri`,
    /// else mqtt://localhost:1883/]
    #[arg(long = "url", visible_alias = "uri", value_name = "URL")]
    url: Option<String>,
    /// The client identifier [default: the configuration's `id`, else moat-pub-PID or
    /// moat-sub-PID].
    #[arg(short = 'i', long = "client-id", value_name = "ID")]
    client_id: Option<String>,
    /// The QoS: 0, 1 or 2 [default: the configuration's `topics` / `default_qos`, else 0].
    #[arg(short = 'q', long = "qos", value_name = "QOS", value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: Option<u8>,
    /// The payload codec: noop/binary, utf8, json, msgpack, cbor, bool, null, or a
    /// `codec_params` entry of the configuration [default: the configuration's, else noop].
    #[arg(short = 'C', long = "codec", value_name = "NAME")]
    codec: Option<String>,
    /// The keep-alive in seconds, 0 for none [default: the configuration's, else 10].
    #[arg(short = 'k', long = "keep-alive", value_name = "SECS")]
    keep_alive: Option<u16>,
    /// Start with a clean session (without it the session is persistent).
    #[arg(long = "clean-session")]
    clean_session: bool,
    /// A file of trusted CA certificates (PEM), for mqtts:// and wss://.
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A directory of trusted CA certificates, for mqtts:// and wss://.
    #[arg(long = "ca-path", value_name = "DIR")]
    ca_path: Option<PathBuf>,
    /// Trusted CA certificates as PEM text, for mqtts:// and wss://.
    #[arg(long = "ca-data", value_name = "PEM")]
    ca_data: Option<String>,
    /// The topic of the last will (published if the connection is lost without DISCONNECT).
    #[arg(long = "will-topic", value_name = "TOPIC")]
    will_topic: Option<String>,
    /// The will's message, encoded by the codec [default: empty].
    #[arg(long = "will-message", value_name = "MSG", requires = "will_topic")]
    will_message: Option<String>,
    /// The will's QoS [default: 0].
    #[arg(long = "will-qos", value_name = "QOS", requires = "will_topic", value_parser = clap::value_parser!(u8).range(0..=2))]
    will_qos: Option<u8>,
    /// Publish the will retained.
    #[arg(long = "will-retain", requires = "will_topic")]
    will_retain: bool,
    /// Extra HTTP headers for the WebSocket handshake: a file with `Name: value` lines (a
    /// YAML or JSON mapping), or an inline JSON object.
    #[arg(long = "extra-headers", value_name = "FILE")]
    extra_headers: Option<String>,
    /// Less log output (repeat for less); `-q` is the QoS here, `moat -q ...` works too.
    #[arg(long = "quiet", action = clap::ArgAction::Count)]
    pub(crate) quiet: u8,
    /// The async runtime [default: tokio when built in, else smol].
    #[arg(long, value_enum, value_name = "RUNTIME")]
    runtime: Option<RuntimeChoice>,
}

/// Which command the options are for: it names the generated client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `moat mqtt pub`.
    Pub,
    /// `moat mqtt sub`.
    Sub,
}

/// The options checked and merged, ready to connect.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// What the client connects with.
    pub(crate) options: ClientOptions,
    /// The payload codec (`-C`, else the configuration's).
    pub(crate) codec: Codec,
    /// `-q`, if given.
    pub(crate) qos: Option<QoS>,
    /// The runtime to run on.
    pub(crate) runtime: RuntimeChoice,
}

impl ClientArgs {
    /// Reads the configuration file (if any) and lays the command line over it.
    ///
    /// # Errors
    /// [`Failure::Usage`] for a bad configuration, URL, codec, will or header file.
    pub(crate) fn prepare(&self, config_file: Option<&Path>, role: Role) -> Result<Prepared, Failure> {
        let (mut options, file_sets_clean_session) = match config_file {
            Some(path) => {
                let loaded = config::load_client_file(path)?;
                let clean = loaded.has(&["cleansession", "clean_session"]);
                (loaded.options, clean)
            }
            None => (ClientOptions::default(), false),
        };
        if let Some(url) = &self.url {
            options.url = url.parse().map_err(|e| usage(format!("--url {url:?}: {e}")))?;
        }
        if let Some(id) = &self.client_id {
            options.client_id = Some(id.clone()).filter(|id| !id.is_empty());
        } else if options.client_id.is_none() {
            let prefix = match role {
                Role::Pub => "moat-pub",
                Role::Sub => "moat-sub",
            };
            options.client_id = Some(format!("{prefix}-{}", std::process::id()));
        }
        if let Some(secs) = self.keep_alive {
            options.keep_alive = Duration::from_secs(secs.into());
        }
        if self.clean_session {
            options.clean_session = true;
        } else if !file_sets_clean_session {
            options.clean_session = false;
        }
        if let Some(name) = &self.codec {
            options.codec.clone_from(name);
        }
        let codec = Codec::from_options(&options).map_err(usage)?;
        if let Some(topic) = &self.will_topic {
            let topic = TopicName::new(topic.clone()).map_err(|e| usage(format!("--will-topic {topic:?}: {e}")))?;
            let payload = match &self.will_message {
                Some(text) => {
                    encode_text(&codec, text.as_bytes()).map_err(|e| usage(format!("--will-message {text:?}: {e}")))?
                }
                None => bytes::Bytes::new(),
            };
            options.will = Some(Will {
                topic,
                payload,
                qos: qos(self.will_qos).unwrap_or(QoS::AtMostOnce),
                retain: self.will_retain,
                properties: Properties::new(),
            });
        }
        if let Some(file) = &self.ca_file {
            options.ca_file = Some(file.clone());
        }
        if let Some(dir) = &self.ca_path {
            options.ca_path = Some(dir.clone());
        }
        if let Some(pem) = &self.ca_data {
            options.ca_data = Some(pem.clone());
        }
        if let Some(headers) = &self.extra_headers {
            let value = if headers.trim_start().starts_with('{') && !Path::new(headers).exists() {
                config::load_mapping_str(headers, "--extra-headers")?
            } else {
                config::load_mapping_file(Path::new(headers))?
            };
            options.set("extra_headers", value).map_err(|e| usage(format!("--extra-headers: {e}")))?;
        }
        if !options.url.scheme.is_tls()
            && (options.ca_file.is_some() || options.ca_path.is_some() || options.ca_data.is_some())
        {
            log::warn!("CA certificates are only used with mqtts:// and wss://, not {}://", options.url.scheme);
        }
        if !options.url.scheme.is_websocket() && !options.extra_headers.is_empty() {
            log::warn!("extra headers are only used with ws:// and wss://, not {}://", options.url.scheme);
        }
        Ok(Prepared { options, codec, qos: qos(self.qos), runtime: self.runtime.unwrap_or(DEFAULT_RUNTIME) })
    }
}

/// The QoS of a level clap has checked to be 0..=2.
fn qos(level: Option<u8>) -> Option<QoS> {
    level.and_then(QoS::from_u8)
}

/// A command-line error (exit code 2).
pub(crate) fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::Usage(anyhow!("{message}"))
}

/// A failure while running (exit code 1).
pub(crate) fn failed(message: impl std::fmt::Display) -> Failure {
    Failure::Run(anyhow!("{message}"))
}

/// The payload for message text given on the command line, in a file or on stdin: the bytes
/// as they are for the `binary` codec (so any file can be sent), else the text (which must be
/// UTF-8) as the codec reads it.
pub(crate) fn encode_text(codec: &Codec, text: &[u8]) -> Result<bytes::Bytes, String> {
    if *codec == Codec::Binary {
        return Ok(bytes::Bytes::copy_from_slice(text));
    }
    let text =
        std::str::from_utf8(text).map_err(|_| format!("not UTF-8 text, which the {} codec needs", codec.name()))?;
    codec.encode_text(text).map_err(|e| e.to_string())
}

/// Why connecting failed, in one line.
pub(crate) fn connect_error(err: &ClientError, url: &BrokerUrl) -> Failure {
    match err {
        ClientError::Unreachable { url, reason } => {
            failed(format!("cannot reach the broker at {url}: {}", without_os_error(reason)))
        }
        ClientError::Refused(code) => failed(format!("the broker refused the connection: {code}")),
        ClientError::GaveUp(reason) => {
            failed(format!("no MQTT connection with the broker at {url}: {}", without_os_error(reason)))
        }
        other => failed(other),
    }
}

/// Why a call on a connected client failed, in one line.
pub(crate) fn run_error(err: &ClientError, url: &BrokerUrl) -> Failure {
    match err {
        ClientError::GaveUp(reason) => {
            failed(format!("lost the connection to the broker at {url}: {}", without_os_error(reason)))
        }
        other => failed(other),
    }
}

/// `reason` without the " (os error N)" the standard library appends.
pub(crate) fn without_os_error(reason: &str) -> &str {
    match reason.rfind(" (os error ") {
        Some(at) if reason.ends_with(')') => &reason[..at],
        _ => reason,
    }
}

/// Opens a client with the given options on the chosen runtime.
pub(crate) type Connect = Box<dyn FnOnce(ClientOptions) -> LocalBoxFuture<'static, Result<Client, ClientError>>>;

/// Completes on Ctrl-C or SIGTERM.
pub(crate) type Stop = LocalBoxFuture<'static, ()>;

/// Runs `job` to completion on `runtime`, handing it the runtime's way to connect and a
/// future that completes when the user asks to stop.
///
/// # Errors
/// What `job` returns; [`Failure::Usage`] for a runtime that was not built in.
pub(crate) fn run_on<F, Fut>(runtime: RuntimeChoice, job: F) -> Result<(), Failure>
where
    F: FnOnce(Connect, Stop) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    log::debug!("running on {runtime:?}");
    match runtime {
        #[cfg(feature = "runtime-tokio")]
        RuntimeChoice::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| failed(format!("cannot start the tokio runtime: {e}")))?;
            rt.block_on(async {
                let connect: Connect = Box::new(|options| Box::pin(moat_mqtt_tokio::connect(options)));
                job(connect, tokio_stop()).await
            })
        }
        #[cfg(feature = "runtime-smol")]
        RuntimeChoice::Smol => smol::block_on(async {
            let connect: Connect = Box::new(|options| Box::pin(moat_mqtt_smol::connect(options)));
            job(connect, smol_stop()).await
        }),
        #[cfg(not(all(feature = "runtime-tokio", feature = "runtime-smol")))]
        missing => {
            let _ = job;
            let (name, feature) = missing.names();
            Err(usage(format!("this moat was built without the {name} runtime: build it with `--features {feature}`")))
        }
    }
}

/// Ctrl-C or SIGTERM on tokio; never, if the handlers cannot be installed. The handlers are
/// installed at once (in the runtime's context), not when the future is first polled.
#[cfg(feature = "runtime-tokio")]
pub(crate) fn tokio_stop() -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => Box::pin(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                log::info!("stopping: signal received");
            }),
            (Err(e), _) | (_, Err(e)) => {
                log::debug!("cannot watch for signals: {e}");
                Box::pin(std::future::pending())
            }
        }
    }
    #[cfg(not(unix))]
    Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        log::info!("stopping: signal received");
    })
}

/// Ctrl-C or SIGTERM on smol; never, if the handlers cannot be installed. The handlers are
/// installed at once, not when the future is first polled.
#[cfg(feature = "runtime-smol")]
pub(crate) fn smol_stop() -> Stop {
    use futures::StreamExt as _;
    match async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term]) {
        Ok(mut signals) => Box::pin(async move {
            if signals.next().await.is_none() {
                std::future::pending::<()>().await;
            }
            log::info!("stopping: signal received");
        }),
        Err(e) => {
            log::debug!("cannot watch for signals: {e}");
            Box::pin(std::future::pending())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_os_error;

    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(without_os_error("Connection refused (os error 111)"), "Connection refused");
        assert_eq!(without_os_error("connection lost"), "connection lost");
    }
}
