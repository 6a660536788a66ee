//! What a whole broker is configured with: its listeners, and the limits of links and router.

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
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self { name: "default".to_owned(), bind: "0.0.0.0:1883".to_owned(), max_connections: None }
    }
}
