//! What every listener does with an accepted connection, whatever the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::io::{AsyncRead, AsyncWrite};

use super::{BrokerCore, Runtime};
use crate::broker::{LinkId, ListenerConfig};

/// One listener's bookkeeping: its name for log lines and its `max-connections` limit.
///
/// A runtime crate's accept loop calls [`accept`](Self::accept) for each connection;
/// connections beyond the limit are closed at once, with a log
/// line naming the listener and the peer.
#[derive(Debug, Clone)]
pub struct ListenerGate {
    name: Arc<str>,
    max_connections: Option<usize>,
    open: Arc<AtomicUsize>,
}

impl ListenerGate {
    /// The gate of the listener `config` describes.
    #[must_use]
    pub fn new(config: &ListenerConfig) -> Self {
        Self { name: config.name.as_str().into(), max_connections: config.max_connections, open: Arc::default() }
    }

    /// The listener's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connections of this listener open now.
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Takes an accepted connection and serves it, returning its link id; or `None` (and the
    /// stream dropped, which closes it) when the listener is at its limit.
    pub fn accept<R, S>(&self, broker: &BrokerCore<R>, stream: S, peer: &str) -> Option<LinkId>
    where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = self.max_connections
            && open >= max
        {
            self.open.fetch_sub(1, Ordering::AcqRel);
            log::warn!("listener {}: refused {peer}: max-connections ({max}) reached", self.name);
            return None;
        }
        let open = OpenConnection(Arc::clone(&self.open));
        Some(broker.serve_counted(stream, &format!("{peer} via {}", self.name), Some(open)))
    }
}

/// One open connection of a listener, counted until dropped.
#[derive(Debug)]
pub(super) struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
