//! The transports under MQTT, for listeners and clients alike: plain TCP, TLS (rustls) and
//! WebSocket (tungstenite), the latter two over any futures-io stream, so each runtime crate
//! only supplies TCP streams.
//!
//! - Broker: [`ListenerTransport::new`] loads a listener's certificates when it binds (errors
//!   name the listener and the file); the runtime's accept loop hands each accepted TCP stream
//!   to [`ListenerTransport::accept`] and spawns the future it returns. A plain TCP connection
//!   goes straight to the [`ListenerGate`]; a TLS or WebSocket one first completes its handshake
//!   within the listener's `handshake_timeout` in a task of its own, so a slow peer never holds up
//!   accepting, and a failed handshake is a log line naming the listener, the peer and the
//!   reason.
//! - Client: [`TransportConnector`] opens `mqtt://`, `mqtts://`, `ws://` and `wss://` URLs over
//!   the TCP streams of a runtime's [`Dialer`].
//!
//! Every listener and client connection is one type, [`TransportStream`], whatever its layers.

mod tls;
mod ws;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::Either;
use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::{TlsAcceptor, TlsConnector};

use super::{BrokerCore, ConnectFuture, Connector, ListenerGate, Runtime};
use crate::broker::{ListenerConfig, ListenerWebSocket};
use crate::client::options::{BrokerUrl, ClientOptions};

pub use ws::WsBytes;

/// Why a transport cannot be set up or a handshake failed. Each names who it concerns (a
/// listener, a peer, the client) so the line says where to look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A certificate, key or CA file (or directory) named in the configuration cannot be read
    /// or holds nothing usable.
    #[error("{who}: cannot read {what} {}: {reason}", path.display())]
    File {
        /// The listener or client it belongs to.
        who: String,
        /// The setting naming it (`certfile`, `keyfile`, `cafile`, `capath`).
        what: &'static str,
        /// The path as configured.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings do not fit together (e.g. a certificate without its key).
    #[error("{who}: {reason}")]
    Config {
        /// The listener or client they belong to.
        who: String,
        /// What is wrong, and what to set.
        reason: String,
    },
    /// A TLS or WebSocket handshake failed or timed out.
    #[error("{who}: {reason}")]
    Handshake {
        /// The listener and peer, or the client and URL.
        who: String,
        /// The reason the handshake gave.
        reason: String,
    },
}

impl From<TransportError> for io::Error {
    fn from(e: TransportError) -> Self {
        let kind = match &e {
            TransportError::File { .. } | TransportError::Config { .. } => io::ErrorKind::InvalidInput,
            TransportError::Handshake { .. } => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, e)
    }
}

/// A connection over TCP, TLS over TCP, or WebSocket over either; `S` is the runtime's TCP
/// stream. Plain TCP is stored inline, the other layers boxed, so the common case stays small.
pub enum TransportStream<S> {
    /// Plain TCP.
    Tcp(S),
    /// TLS over TCP (the server or client side).
    Tls(Box<futures_rustls::TlsStream<S>>),
    /// WebSocket over TCP or TLS, carrying MQTT in binary messages.
    Ws(Box<WsBytes<TransportStream<S>>>),
}

impl<S> fmt::Debug for TransportStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp(_) => "TransportStream::Tcp",
            Self::Tls(_) => "TransportStream::Tls",
            Self::Ws(_) => "TransportStream::Ws",
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TransportStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Self::Ws(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TransportStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Self::Ws(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Self::Ws(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_close(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_close(cx),
            Self::Ws(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

/// What a listener does to an accepted TCP connection before MQTT: nothing, TLS, WebSocket,
/// or both. Cheap to clone.
#[derive(Clone)]
pub struct ListenerTransport {
    name: Arc<str>,
    tls: Option<TlsAcceptor>,
    websocket: Option<Arc<ListenerWebSocket>>,
    /// The largest WebSocket message or frame accepted.
    max_message: usize,
    /// How long the handshakes may take.
    handshake_timeout: Duration,
}

impl fmt::Debug for ListenerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerTransport")
            .field("name", &self.name)
            .field("tls", &self.tls.is_some())
            .field("websocket", &self.websocket)
            .finish()
    }
}

impl ListenerTransport {
    /// The transport of the listener `config` describes, its certificate files loaded.
    ///
    /// # Errors
    /// A [`TransportError`] naming the listener and the file or setting that is wrong.
    /// A WebSocket message may hold one packet of up to `max_packet_size` bytes (a larger
    /// message is refused before it is buffered whole).
    pub fn new(config: &ListenerConfig, max_packet_size: usize) -> Result<Self, TransportError> {
        let who = format!("listener {}", config.name);
        let tls = match &config.tls {
            Some(settings) => Some(TlsAcceptor::from(tls::server_config(&who, settings)?)),
            None => None,
        };
        Ok(Self {
            name: config.name.as_str().into(),
            tls,
            websocket: config.websocket.clone().map(Arc::new),
            max_message: max_packet_size,
            handshake_timeout: config.handshake_timeout,
        })
    }

    /// What the listener speaks: `mqtt`, `mqtts`, `ws` or `wss`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        match (self.tls.is_some(), self.websocket.is_some()) {
            (false, false) => "mqtt",
            (true, false) => "mqtts",
            (false, true) => "ws",
            (true, true) => "wss",
        }
    }

    /// Performs the TLS and WebSocket handshakes this listener needs on `stream`, from `peer`
    /// (no time limit: [`accept`](Self::accept) sets one).
    ///
    /// # Errors
    /// [`TransportError::Handshake`] naming the listener, the peer and the reason.
    pub async fn handshake<S>(&self, stream: S, peer: &str) -> Result<TransportStream<S>, TransportError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let who = format!("listener {}: {peer}", self.name);
        let stream = match &self.tls {
            None => TransportStream::Tcp(stream),
            Some(acceptor) => {
                let tls = acceptor.accept(stream).await.map_err(|e| TransportError::Handshake {
                    who: who.clone(),
                    reason: format!("TLS handshake failed: {e}"),
                })?;
                TransportStream::Tls(Box::new(futures_rustls::TlsStream::Server(tls)))
            }
        };
        match &self.websocket {
            None => Ok(stream),
            Some(settings) => {
                Ok(TransportStream::Ws(Box::new(ws::accept(stream, settings, &who, self.max_message).await?)))
            }
        }
    }

    /// Takes an accepted TCP connection and serves it (see [`ListenerGate::accept`], which
    /// may refuse it at once).
    ///
    /// Plain TCP is served as it is. Otherwise a task on the broker's runtime performs the
    /// handshakes (at most the listener's `handshake_timeout`; a failure or timeout is logged and the
    /// connection closed) and then hands the stream to `gate`, so a slow handshake never holds
    /// up the accept loop.
    pub fn accept<R, S>(&self, core: &BrokerCore<R>, gate: &ListenerGate, stream: S, peer: String)
    where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if self.tls.is_none() && self.websocket.is_none() {
            gate.accept(core, stream, &peer);
            return;
        }
        let (this, core, gate) = (self.clone(), core.clone(), gate.clone());
        let runtime = core.runtime().clone();
        runtime.spawn(Box::pin(async move {
            let runtime = core.runtime().clone();
            let limit = this.handshake_timeout;
            let timeout = runtime.sleep_until(runtime.now() + limit);
            let handshake = Box::pin(this.handshake(stream, &peer));
            let outcome = match futures::future::select(handshake, timeout).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(((), _)) => Err(TransportError::Handshake {
                    who: format!("listener {}: {peer}", this.name),
                    reason: format!("no {} handshake within {limit:?}; closed", this.scheme()),
                }),
            };
            match outcome {
                Ok(stream) => {
                    gate.accept(&core, stream, &peer);
                }
                Err(e) => log::warn!("{e}"),
            }
        }));
    }
}

/// Opens TCP connections for a [`TransportConnector`]: what a runtime crate supplies.
pub trait Dialer: Send + Sync + 'static {
    /// The runtime's TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Connects to `host` (a name or an IP address) and `port`.
    fn dial(&self, host: String, port: u16) -> ConnectFuture<Self::Tcp>;
}

/// Opens `mqtt://`, `mqtts://`, `ws://` and `wss://` connections over a [`Dialer`]'s TCP
/// streams, with the TLS and WebSocket settings of a client's options.
pub struct TransportConnector<D> {
    dialer: D,
    tls: Option<TlsConnector>,
    extra_headers: Arc<BTreeMap<String, String>>,
}

impl<D> fmt::Debug for TransportConnector<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConnector")
            .field("tls", &self.tls.is_some())
            .field("extra_headers", &self.extra_headers)
            .finish_non_exhaustive()
    }
}

impl<D: Dialer> TransportConnector<D> {
    /// A connector for `options.url` with `options`' CA, certificate, hostname-check and
    /// extra-header settings. For a TLS URL the files are read here.
    ///
    /// # Errors
    /// A [`TransportError`] naming the file or setting that cannot be used.
    pub fn new(dialer: D, options: &ClientOptions) -> Result<Self, TransportError> {
        let tls =
            if options.url.scheme.is_tls() { Some(TlsConnector::from(tls::client_config(options)?)) } else { None };
        Ok(Self { dialer, tls, extra_headers: Arc::new(options.extra_headers.clone()) })
    }
}

impl<D: Dialer> Connector for TransportConnector<D> {
    type Stream = TransportStream<D::Tcp>;

    fn connect(&self, url: &BrokerUrl) -> ConnectFuture<Self::Stream> {
        let dial = self.dialer.dial(url.host.clone(), url.port);
        let tls = self.tls.clone();
        let headers = Arc::clone(&self.extra_headers);
        let url = url.clone();
        Box::pin(async move {
            let tcp = dial.await?;
            let stream = if url.scheme.is_tls() {
                let Some(connector) = tls else {
                    return Err(TransportError::Config {
                        who: "client".to_owned(),
                        reason: format!("{url} needs TLS, but this connector was made for a URL without it"),
                    }
                    .into());
                };
                let name = tls::server_name(&url.host)?;
                let tls = connector.connect(name, tcp).await.map_err(|e| TransportError::Handshake {
                    who: format!("client to {url}"),
                    reason: format!("TLS handshake failed: {e}"),
                })?;
                TransportStream::Tls(Box::new(futures_rustls::TlsStream::Client(tls)))
            } else {
                TransportStream::Tcp(tcp)
            };
            if url.scheme.is_websocket() {
                Ok(TransportStream::Ws(Box::new(ws::connect(stream, &url, &headers).await?)))
            } else {
                Ok(stream)
            }
        })
    }
}
