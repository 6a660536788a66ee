//! What every listener does, whatever the runtime: accept connections and serve them.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite};

use super::poller::PolledListener;
use super::{BrokerCore, ListenerTransport, Runtime};
use crate::broker::{LinkId, ListenerConfig};

/// Connections accepted in a row before the accept loop lets other tasks of its thread run.
const ACCEPTS_PER_TURN: usize = 64;
/// How long the accept loop pauses after a failed accept (out of file descriptors, say), so
/// that it does not spin on an error that persists.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` (see [`BrokerCore::poll_listener`]) and serves them,
/// through `transport`'s handshakes and `gate`'s limit, until the future is dropped: the
/// accept loop of every runtime.
///
/// Each accepted socket gets `TCP_NODELAY` (small packets are the norm: send them at once)
/// and goes to a link group's socket poller; errors are logged naming the listener.
pub async fn serve_listener<R: Runtime>(
    core: BrokerCore<R>,
    gate: ListenerGate,
    transport: ListenerTransport,
    mut listener: PolledListener,
) {
    let mut in_a_row = 0;
    loop {
        match poll_fn(|cx| listener.poll_accept(cx)).await {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    log::debug!("listener {}: TCP_NODELAY for {peer}: {e}", gate.name());
                }
                match core.poll_socket(stream) {
                    Ok(stream) => transport.accept(&core, &gate, stream, peer.to_string()),
                    Err(e) => log::error!("listener {}: cannot poll the connection from {peer}: {e}", gate.name()),
                }
                in_a_row += 1;
                if in_a_row == ACCEPTS_PER_TURN {
                    in_a_row = 0;
                    yield_now().await;
                }
            }
            Err(e) => {
                log::error!("listener {}: accept failed: {e}", gate.name());
                let runtime = core.runtime();
                runtime.sleep_until(runtime.now() + ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Lets the other tasks of the thread run once.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// One listener's bookkeeping: its name for log lines and its `max-connections` limit.
///
/// The accept loop ([`serve_listener`]) calls [`accept`](Self::accept) for each connection;
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
