//! The client on tokio: TCP transport for the shared async client.

use moat_mqtt_core::client::options::{BrokerUrl, ClientOptions, Transport};
use moat_mqtt_core::driver::{self, ClientError, ConnectFuture, Connector};

use crate::{TcpConnection, TokioRuntime};

/// The async MQTT client on tokio; see [`moat_mqtt_core::driver::Client`] for the API.
pub type Client = driver::Client;

/// Opens TCP connections with tokio (TLS and WebSocket arrive with the transports issue).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    type Stream = TcpConnection;

    fn connect(&self, url: &BrokerUrl) -> ConnectFuture<Self::Stream> {
        let target = (url.host.clone(), url.port);
        let transport = url.scheme;
        Box::pin(async move {
            if transport != Transport::Tcp {
                return Err(driver::unsupported_transport(transport));
            }
            let stream = tokio::net::TcpStream::connect(target).await?;
            stream.set_nodelay(true)?;
            Ok(TcpConnection(stream))
        })
    }
}

/// Connects a client with `options` (its `url` says where), on the current tokio runtime.
///
/// # Errors
/// See [`Client::connect`](moat_mqtt_core::driver::Client::connect).
pub async fn connect(options: ClientOptions) -> Result<Client, ClientError> {
    Client::connect(TokioRuntime, TcpConnector, options).await
}

/// Connects to `url` (`mqtt://[user[:password]@]host[:port]`) with the default options.
///
/// # Errors
/// [`ClientError::Unreachable`] for a URL that does not parse, and as [`connect`].
pub async fn connect_url(url: &str) -> Result<Client, ClientError> {
    connect(driver::options_for_url(url)?).await
}
