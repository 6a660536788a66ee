//! How the client reaches a broker: the transport is the runtime's business.

use std::future::Future;
use std::io;
use std::pin::Pin;

use futures::io::{AsyncRead, AsyncWrite};

use crate::client::options::BrokerUrl;

/// A future that opens a transport.
pub type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send + 'static>>;

/// Opens byte streams to a broker URL. The runtime crates implement it for TCP (and, later,
/// TLS and WebSocket); a test may implement it over anything.
pub trait Connector: Send + Sync + 'static {
    /// The stream a connection runs over.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to `url`'s host and port (and performs its transport handshake).
    fn connect(&self, url: &BrokerUrl) -> ConnectFuture<Self::Stream>;
}
