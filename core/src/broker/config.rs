//! What a whole broker is configured with: its listeners, and the limits of links and router.

use std::path::PathBuf;

use super::{LinkConfig, RouterConfig};

/// A broker's configuration, as the CLI reads it from YAML or an embedding program builds it.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to accept connections. Empty means one TCP listener on `0.0.0.0:1883`.
    pub listeners: Vec<ListenerConfig>,
    /// Limits of each network connection (packet size, connect timeout).
    pub link: LinkConfig,
    /// Limits and settings of the shared router (inflight window, queues, `$SYS`).
    pub router: RouterConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listeners: vec![ListenerConfig::default()],
            link: LinkConfig::default(),
            router: RouterConfig::default(),
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The name it has in the configuration file, used in log lines.
    pub name: String,
    /// `host:port` to bind, e.g. `0.0.0.0:1883` or `[::1]:1883`.
    pub bind: String,
    /// The most connections this listener serves at once; more are accepted and closed at
    /// once, with a log line. `None`: no limit.
    pub max_connections: Option<usize>,
    /// TLS settings (`ssl: on`); `None`: plain TCP.
    pub tls: Option<ListenerTls>,
    /// WebSocket settings (`type: ws`); `None`: MQTT directly on the (TLS or TCP) stream.
    pub websocket: Option<ListenerWebSocket>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            bind: "0.0.0.0:1883".to_owned(),
            max_connections: None,
            tls: None,
            websocket: None,
        }
    }
}

/// A TLS listener's files and client-certificate policy (`ssl: on`), as written in the
/// configuration: nothing is read here; the driver loads the files when the listener binds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerTls {
    /// The server's certificate chain, PEM, leaf first (`certfile`).
    pub certfile: PathBuf,
    /// The server's private key, PEM: PKCS#8, PKCS#1 or SEC1 (`keyfile`).
    pub keyfile: PathBuf,
    /// A PEM file of CA certificates that client certificates are checked against (`cafile`).
    pub cafile: Option<PathBuf>,
    /// A directory of PEM CA certificate files, for the same (`capath`).
    pub capath: Option<PathBuf>,
    /// PEM text of CA certificates, for the same (`cadata`).
    pub cadata: Option<String>,
    /// Refuse clients that present no valid certificate (`require-certificate`). Without it, a
    /// certificate a client presents is still checked against the CAs, if any are given.
    pub require_certificate: bool,
}

/// A WebSocket listener's settings (`type: ws`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerWebSocket {
    /// The only request path served (`path`, e.g. `/mqtt`); `None`: any path.
    pub path: Option<String>,
}
