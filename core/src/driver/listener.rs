//! What every listener does with an accepted connection, whatever the runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use super::{BrokerCore, Runtime};
use crate::broker::ListenerConfig;

/// One listener's bookkeeping: its name for log lines and its `max-connections` limit.
///
/// A runtime crate's accept loop calls [`accept`](Self::accept) for each connection and
/// spawns the future it returns; connections beyond the limit are closed at once, with a log
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

    /// Takes an accepted connection: the future serving it, or `None` (and the stream
    /// dropped, which closes it) when the listener is at its limit or the broker is stopping.
    pub fn accept<R, S>(
        &self,
        broker: &BrokerCore<R>,
        stream: S,
        peer: String,
    ) -> Option<impl Future<Output = ()> + Send + 'static>
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
        let (_, serve) = broker.serve(stream, format!("{peer} via {}", self.name));
        // A named wrapper rather than an `async` block, which would hold the link's future
        // twice (captured and awaited) and double every connection's task.
        Some(Counted { inner: serve, _open: OpenConnection(Arc::clone(&self.open)) })
    }
}

/// One open connection of a listener, counted until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A link's future that keeps its listener's count while it lives.
struct Counted<F> {
    inner: F,
    _open: OpenConnection,
}

impl<F: Future<Output = ()> + Unpin> Future for Counted<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}
