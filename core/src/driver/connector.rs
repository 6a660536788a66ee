//! How the client reaches a broker: the transport is the runtime's business.

use std::future::Future;
use std::io;
use std::pin::Pin;

use futures::io::{AsyncRead, AsyncWrite};

use super::ClientError;
use crate::client::options::{BrokerUrl, ClientOptions};

/// A future that opens a transport.
pub type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send + 'static>>;

/// Opens byte streams to a broker URL. [`TransportConnector`](super::TransportConnector)
/// implements it for TCP, TLS and WebSocket over a runtime's TCP streams; a test may implement
/// it over anything.
pub trait Connector: Send + Sync + 'static {
    /// The stream a connection runs over.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to `url`'s host and port (and performs its transport handshake).
    fn connect(&self, url: &BrokerUrl) -> ConnectFuture<Self::Stream>;
}

/// Default client options for `url`, for the runtimes' `connect_url`.
///
/// # Errors
/// [`ClientError::Unreachable`] naming what is wrong with the URL.
pub fn options_for_url(url: &str) -> Result<ClientOptions, ClientError> {
    let parsed: BrokerUrl =
        url.parse().map_err(|e| ClientError::Unreachable { url: url.to_owned(), reason: format!("{e}") })?;
    Ok(ClientOptions { url: parsed, ..ClientOptions::default() })
}
