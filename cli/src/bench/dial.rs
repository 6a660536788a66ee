//! Dialing a resolved address: the broker's host name is looked up once, before the run,
//! rather than once per connection (tokio resolves names on its blocking thread pool, which
//! cost more than the connection itself). The URL keeps the name, so TLS still checks the
//! certificate against it and WebSocket still sends it as `Host`.

use std::net::{IpAddr, ToSocketAddrs as _};

use moat_mqtt_core::driver::{ConnectFuture, Dialer};

/// A [`Dialer`] that connects every connection to one address, whatever host it is given.
#[derive(Debug, Clone)]
pub(crate) struct Resolved<D> {
    inner: D,
    ip: String,
}

impl<D: Dialer> Resolved<D> {
    /// Resolves `host` once for `inner`.
    ///
    /// # Errors
    /// A message naming the host, when it does not resolve.
    pub(crate) fn new(inner: D, host: &str, port: u16) -> Result<Self, String> {
        let ip = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => (host, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve the broker's host {host:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("the broker's host {host:?} has no address"))?
                .ip(),
        };
        log::debug!("{host} is {ip}");
        Ok(Self { inner, ip: ip.to_string() })
    }
}

impl<D: Dialer> Dialer for Resolved<D> {
    type Tcp = D::Tcp;

    fn dial(&self, _host: String, port: u16) -> ConnectFuture<Self::Tcp> {
        self.inner.dial(self.ip.clone(), port)
    }
}
