//! The client on tokio: TCP streams for the shared transports (TCP, TLS, WebSocket) and client.

use moat_mqtt_core::client::options::ClientOptions;
use moat_mqtt_core::driver::{self, ClientError, ConnectFuture, Dialer, TransportConnector};

use crate::{TcpConnection, TokioRuntime};

/// The async MQTT client on tokio; see [`moat_mqtt_core::driver::Client`] for the API.
pub type Client = driver::Client;

/// Opens TCP connections with tokio, for a [`TransportConnector`], which adds TLS and
/// WebSocket on top.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Dialer for TcpConnector {
    type Tcp = TcpConnection;

    fn dial(&self, host: String, port: u16) -> ConnectFuture<Self::Tcp> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(TcpConnection(stream))
        })
    }
}

/// Connects a client with `options` (its `url` says where and over which transport), on the
/// current tokio runtime.
///
/// # Errors
/// [`ClientError::Unreachable`] when the TLS files of `options` cannot be used, and see
/// [`Client::connect`](moat_mqtt_core::driver::Client::connect).
pub async fn connect(options: ClientOptions) -> Result<Client, ClientError> {
    let connector = TransportConnector::new(TcpConnector, &options)
        .map_err(|e| ClientError::Unreachable { url: options.url.to_string(), reason: e.to_string() })?;
    Client::connect(TokioRuntime, connector, options).await
}

/// Connects to `url` (`{mqtt,ws}[s]://[user[:password]@]host[:port][/path]`) with the
/// default options.
///
/// # Errors
/// [`ClientError::Unreachable`] for a URL that does not parse, and as [`connect`].
pub async fn connect_url(url: &str) -> Result<Client, ClientError> {
    connect(driver::options_for_url(url)?).await
}
