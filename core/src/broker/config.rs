//! What a whole broker is configured with: its listeners, and the limits of links and router.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Where and how durable state is kept (`persistence:`); `None`: in memory only.
    pub persistence: Option<PersistenceConfig>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listeners: vec![ListenerConfig::default()],
            link: LinkConfig::default(),
            router: RouterConfig::default(),
            persistence: None,
        }
    }
}

/// The `persistence:` section: the embedded store and when it reaches the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// The directory of the store (`path`); created if missing.
    pub path: PathBuf,
    /// When writes are made durable (`sync`, `interval`).
    pub sync: SyncMode,
    /// What to do with a store that cannot be read back (`on-corrupt`).
    pub on_corrupt: OnCorrupt,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self { path: PathBuf::from("/var/lib/moat-mqtt"), sync: SyncMode::default(), on_corrupt: OnCorrupt::Fail }
    }
}

/// When the store's writes are made durable (flushed to the disk with fsync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Before anything that depends on them is sent: a QoS 1/2 PUBLISH is acknowledged only once
    /// it is on disk, so `kill -9` or a power cut loses nothing acknowledged. Concurrent writes
    /// share one flush (group commit).
    #[default]
    Always,
    /// At most this long after they are made; a crash loses at most this window.
    Interval(Duration),
    /// Only at a graceful shutdown; a crash loses everything since the broker started.
    Never,
}

/// What to do when the store exists but cannot be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorrupt {
    /// Refuse to start, naming the store and what is wrong (`on-corrupt: fail`).
    #[default]
    Fail,
    /// Move the damaged store aside (renamed with a `.corrupt-<time>` suffix), log it, and
    /// start empty (`on-corrupt: fresh`).
    Fresh,
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
    /// How long a connection has for its TLS and WebSocket handshakes before it is closed
    /// (`handshake-timeout`; unused by plain TCP listeners).
    pub handshake_timeout: Duration,
    /// How many connections the OS may hold, handshake done, before the broker accepts them
    /// (`backlog`, the `listen` backlog; capped by the OS: `net.core.somaxconn` on Linux).
    /// Connections beyond it have their SYN dropped and retry after a second or more.
    pub backlog: u32,
}

/// [`ListenerConfig::handshake_timeout`]'s default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`ListenerConfig::backlog`]'s default: room for a fleet reconnecting at once (mosquitto
/// uses 100, EMQX 1,024).
pub const DEFAULT_BACKLOG: u32 = 1024;

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            bind: "0.0.0.0:1883".to_owned(),
            max_connections: None,
            tls: None,
            websocket: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            backlog: DEFAULT_BACKLOG,
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
