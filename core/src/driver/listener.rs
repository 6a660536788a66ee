//! What every listener does, whatever the runtime: accept connections and serve them.

use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
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

/// Binds the listening socket `config` describes: its `bind` address (the first of its
/// resolved addresses that binds), `SO_REUSEADDR` (a restarted broker binds again at once,
/// whatever its old connections' `TIME_WAIT`), `TCP_NODELAY` (inherited by the connections it
/// accepts, where the OS does so) and its `backlog`. Errors name the listener and the address.
///
/// The name, if not an address, is resolved here, blocking: a broker binds before it serves.
pub(super) fn bind(config: &ListenerConfig) -> io::Result<TcpListener> {
    let failed =
        |e: io::Error| io::Error::new(e.kind(), format!("listener {}: cannot bind {}: {e}", config.name, config.bind));
    let mut last = None;
    for address in config.bind.to_socket_addrs().map_err(failed)? {
        match bind_one(address, config.backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(failed(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))))
}

fn bind_one(address: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&address.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Whether accepted connections come with `TCP_NODELAY` already (inherited from the
/// listening socket, as on Linux), learnt from the first one: then the others need no
/// system call for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoDelay {
    Unknown,
    Inherited,
    PerSocket,
}

impl NoDelay {
    /// Sees that `stream`, just accepted, has `TCP_NODELAY`.
    fn apply(&mut self, stream: &std::net::TcpStream) -> io::Result<()> {
        if *self == Self::Unknown {
            *self = if stream.nodelay().unwrap_or(false) { Self::Inherited } else { Self::PerSocket };
        }
        if *self == Self::PerSocket { stream.set_nodelay(true) } else { Ok(()) }
    }
}

/// Accepts connections on `listener` (see [`BrokerCore::listen`]) and serves them,
/// through `transport`'s handshakes and `gate`'s limit, until the future is dropped: the
/// accept loop of every runtime.
///
/// Each accepted socket has `TCP_NODELAY` (small packets are the norm: send them at once):
/// inherited from the listening socket, or else set; it goes to a link group's socket
/// poller. Errors are logged naming the listener.
pub async fn serve_listener<R: Runtime>(
    core: BrokerCore<R>,
    gate: ListenerGate,
    transport: ListenerTransport,
    mut listener: PolledListener,
) {
    let mut in_a_row = 0;
    let mut no_delay = NoDelay::Unknown;
    loop {
        match poll_fn(|cx| listener.poll_accept(cx)).await {
            Ok((stream, peer)) => {
                if let Err(e) = no_delay.apply(&stream) {
                    log::debug!("listener {}: TCP_NODELAY for {peer}: {e}", gate.name());
                }
                match core.poll_accepted(stream) {
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

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    fn config(backlog: u32) -> ListenerConfig {
        ListenerConfig { name: "test".into(), bind: "127.0.0.1:0".into(), backlog, ..ListenerConfig::default() }
    }

    /// Connections that complete their handshake against `listener`, which accepts none,
    /// out of `tries`.
    fn handshakes(listener: &TcpListener, tries: usize) -> Vec<TcpStream> {
        let address = listener.local_addr().unwrap();
        (0..tries).filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok()).collect()
    }

    #[test]
    fn the_listen_backlog_is_the_listeners() {
        // Linux holds backlog + 1 finished handshakes; the next SYNs are dropped.
        let small = bind(&config(2)).unwrap();
        let held = handshakes(&small, 6);
        assert!((2..=3).contains(&held.len()), "backlog 2 held {} connections", held.len());
        let default = bind(&config(crate::broker::DEFAULT_BACKLOG)).unwrap();
        assert_eq!(handshakes(&default, 40).len(), 40);
    }

    #[test]
    fn a_bind_that_fails_names_the_listener_and_its_address() {
        let taken = bind(&config(8)).unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let error = bind(&ListenerConfig { bind: address.clone(), ..config(8) }).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(error.to_string().starts_with(&format!("listener test: cannot bind {address}: ")), "{error}");
        let error = bind(&ListenerConfig { bind: "no-such-host.invalid:1883".into(), ..config(8) }).unwrap_err();
        assert!(error.to_string().starts_with("listener test: cannot bind no-such-host.invalid:1883: "), "{error}");
    }

    #[test]
    fn accepted_connections_get_tcp_nodelay_inherited_or_set() {
        // A listener of ours: inherited where the OS does so (Linux), else set on each.
        let ours = bind(&config(8)).unwrap();
        let _client = TcpStream::connect(ours.local_addr().unwrap()).unwrap();
        let (accepted, _) = ours.accept().unwrap();
        let mut no_delay = NoDelay::Unknown;
        no_delay.apply(&accepted).unwrap();
        assert!(accepted.nodelay().unwrap());
        if cfg!(target_os = "linux") {
            assert_eq!(no_delay, NoDelay::Inherited);
        }
        // A listener bound elsewhere, without it: set on each connection.
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let _clients: Vec<_> = (0..2).map(|_| TcpStream::connect(plain.local_addr().unwrap()).unwrap()).collect();
        let mut no_delay = NoDelay::Unknown;
        for _ in 0..2 {
            let (accepted, _) = plain.accept().unwrap();
            assert!(!accepted.nodelay().unwrap());
            no_delay.apply(&accepted).unwrap();
            assert!(accepted.nodelay().unwrap());
        }
        assert_eq!(no_delay, NoDelay::PerSocket);
    }
}
