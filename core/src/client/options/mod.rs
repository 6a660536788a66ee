//! The client's configuration as the original MoaT-MQTT spells it: broker URLs and
//! [`ClientOptions`].
//!
//! - [`BrokerUrl`]: `{mqtt,ws}[s]://[username][:password]@host[:port][/path]`, parsed with
//!   `str::parse` into a [`Transport`], host, port, path and credentials.
//! - [`ClientOptions`]: every client configuration key of the original with its default, as
//!   plain fields. A program sets them directly; the CLI loads its YAML file by converting the
//!   tree it read into [`ConfigValue`]s and calling [`ClientOptions::set`] per key (keys may
//!   be spelled with `-` or `_`).
//! - [`ClientOptions::connect_options`] makes the [`ConnectOptions`] of a
//!   [`Connection`](super::Connection) from them.
//!
//! Nothing here touches the network or the file system: certificate and CA paths are only
//! carried to the transport that needs them.

mod set;
mod url;
mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::ConnectOptions;
use crate::codec::{QoS, Will};
use crate::topic::{TopicFilter, TopicName};

pub use set::OptionError;
pub use url::{BrokerUrl, Transport, UrlError};
pub use value::ConfigValue;

/// How often a lost connection is tried again (`reconnect_retries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retries {
    /// Never give up (a negative `reconnect_retries`).
    Forever,
    /// Give up after this many failed retries, the first attempt not counted.
    Limited(u32),
}

impl Default for Retries {
    /// Two retries, the original's default.
    fn default() -> Self {
        Self::Limited(2)
    }
}

impl Retries {
    /// The original's number: negative means forever.
    #[must_use]
    pub fn from_count(count: i64) -> Self {
        match u32::try_from(count) {
            Ok(n) => Self::Limited(n),
            Err(_) if count < 0 => Self::Forever,
            Err(_) => Self::Limited(u32::MAX),
        }
    }

    /// Whether to try again after `failed` attempts in a row have failed (the first connection
    /// attempt included): `Limited(2)` allows three attempts in all.
    #[must_use]
    pub fn allows(self, failed: u32) -> bool {
        match self {
            Self::Forever => true,
            Self::Limited(n) => failed <= n,
        }
    }
}

/// Per-topic defaults for publishing (an entry of `topics`); an unset field falls back to
/// `default_qos` / `default_retain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicDefaults {
    /// The QoS to publish with.
    pub qos: Option<QoS>,
    /// Whether to publish retained.
    pub retain: Option<bool>,
}

/// A named codec definition (an entry of `codec_params`), e.g. YAML
/// `yesno: {name: bool, on: "yes", off: "no"}`.
///
/// The payload module's `Codec::from_name` resolves the entry's key to the codec `name`
/// (another entry or a built-in codec; absent: the key itself) configured with `params`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodecDef {
    /// The codec this one is built on; `None`: the built-in codec of the entry's own name.
    pub name: Option<String>,
    /// Its parameters (`on`, `off`, ...), as text.
    pub params: BTreeMap<String, String>,
}

/// Every client configuration key of the original MoaT-MQTT, with its default.
///
/// The YAML keys are the field names, except where a field's doc names them. The defaults are
/// the original's: keep-alive 10 s, ping 1 s before it runs out, QoS 0, not retained,
/// reconnecting with back-off up to 10 s and 2 retries, clean session, codec `noop`, hostname
/// checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// The broker (`uri`, also `url`). Default `mqtt://localhost:1883/`.
    pub url: BrokerUrl,
    /// The client identifier (`id`, also `client_id`). `None`: the caller generates one
    /// (the core has no source of randomness).
    pub client_id: Option<String>,
    /// The keep-alive announced in CONNECT, at most 65,535 s; zero turns it off. Default 10 s.
    pub keep_alive: Duration,
    /// How long before the keep-alive runs out a PINGREQ is sent. Default 1 s.
    pub ping_delay: Duration,
    /// The QoS of a publish that names none and whose topic has no `topics` entry. Default 0.
    pub default_qos: QoS,
    /// Whether such a publish is retained. Default false.
    pub default_retain: bool,
    /// Whether a lost connection is made again. Default true.
    pub auto_reconnect: bool,
    /// The longest wait between reconnect attempts; the wait doubles from 1 s up to it.
    /// Default 10 s.
    pub reconnect_max_interval: Duration,
    /// How often reconnecting is retried. Default [`Retries::Limited`]`(2)`.
    pub reconnect_retries: Retries,
    /// Clean session (`cleansession`, also `clean_session`). Default true.
    pub clean_session: bool,
    /// The last will (`will: {topic, message, qos, retain}`; the message is taken as UTF-8
    /// bytes, not passed through the codec). Default none.
    pub will: Option<Will>,
    /// The codec name payloads are encoded with unless a subscription or publish names
    /// another: a built-in codec or a `codec_params` entry. Default `noop`.
    pub codec: String,
    /// Named codec definitions, by name.
    pub codec_params: BTreeMap<String, CodecDef>,
    /// Per-topic publish defaults, keyed by topic name, or by topic filter to cover several
    /// topics (see [`ClientOptions::defaults_for`]).
    pub topics: BTreeMap<String, TopicDefaults>,
    /// The client certificate for TLS, PEM (`certfile`).
    pub certfile: Option<PathBuf>,
    /// The client certificate's private key, PEM (`keyfile`).
    pub keyfile: Option<PathBuf>,
    /// Whether the broker's certificate must name the host connected to. Default true.
    pub check_hostname: bool,
    /// A file of trusted CA certificates (`cafile`, `ca_file` or `ca: {file}`).
    pub ca_file: Option<PathBuf>,
    /// A directory of trusted CA certificates (`capath`, `ca_path` or `ca: {path}`).
    pub ca_path: Option<PathBuf>,
    /// Trusted CA certificates as PEM text (`cadata`, `ca_data` or `ca: {data}`).
    pub ca_data: Option<String>,
    /// Extra HTTP headers for the WebSocket handshake.
    pub extra_headers: BTreeMap<String, String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            url: BrokerUrl::default(),
            client_id: None,
            keep_alive: Duration::from_secs(10),
            ping_delay: Duration::from_secs(1),
            default_qos: QoS::AtMostOnce,
            default_retain: false,
            auto_reconnect: true,
            reconnect_max_interval: Duration::from_secs(10),
            reconnect_retries: Retries::default(),
            clean_session: true,
            will: None,
            codec: "noop".to_owned(),
            codec_params: BTreeMap::new(),
            topics: BTreeMap::new(),
            certfile: None,
            keyfile: None,
            check_hostname: true,
            ca_file: None,
            ca_path: None,
            ca_data: None,
            extra_headers: BTreeMap::new(),
        }
    }
}

impl ClientOptions {
    /// The QoS and retain flag for a publish to `topic` that names neither.
    ///
    /// Each field comes from the first of these that sets it: the `topics` entry for exactly
    /// this topic; the entries whose key is a wildcard filter matching it, the longest key
    /// first (so `a/b/+` wins over `a/#`); `default_qos` / `default_retain`.
    #[must_use]
    pub fn defaults_for(&self, topic: &TopicName) -> (QoS, bool) {
        let mut qos = None;
        let mut retain = None;
        let mut apply = |d: &TopicDefaults| {
            qos = qos.or(d.qos);
            retain = retain.or(d.retain);
        };
        if let Some(exact) = self.topics.get(topic.as_str()) {
            apply(exact);
        }
        let mut filters: Vec<(&str, &TopicDefaults)> = self
            .topics
            .iter()
            .filter(|(key, _)| key.contains(['+', '#']))
            .filter(|(key, _)| TopicFilter::new(key.as_str()).is_ok_and(|filter| filter.matches(topic)))
            .map(|(key, d)| (key.as_str(), d))
            .collect();
        filters.sort_by_key(|(key, _)| std::cmp::Reverse(key.len()));
        for (_, d) in filters {
            apply(d);
        }
        (qos.unwrap_or(self.default_qos), retain.unwrap_or(self.default_retain))
    }

    /// How long to wait before reconnect attempt `failed + 1`, after `failed` failures:
    /// 2^`failed` seconds (1 s before the first), at most `reconnect_max_interval`.
    #[must_use]
    pub fn reconnect_delay(&self, failed: u32) -> Duration {
        let secs = 1u64.checked_shl(failed).unwrap_or(u64::MAX);
        Duration::from_secs(secs).min(self.reconnect_max_interval)
    }

    /// The settings of a [`Connection`](super::Connection): client id (empty when `None`:
    /// the broker assigns one), clean session, keep-alive, ping delay, will, and user name
    /// and password from the URL. The rest are [`ConnectOptions`]' defaults.
    #[must_use]
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            client_id: self.client_id.clone().unwrap_or_default().into(),
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            ping_delay: self.ping_delay,
            will: self.will.clone(),
            username: self.url.username.clone().map(Into::into),
            password: self.url.password.clone().map(|p| Bytes::from(p.into_bytes())),
            ..ConnectOptions::default()
        }
    }
}

#[cfg(test)]
mod tests;
