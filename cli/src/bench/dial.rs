//! Dialing a resolved address: the broker's host name is looked up once, before the run,
//! rather than once per connection (tokio resolves names on its blocking thread pool, which
//! cost more than the connection itself). The URL keeps the name, so TLS still checks the
//! certificate against it and WebSocket still sends it as `Host`. Each connection's unsent
//! data is bounded here too (`--max-unsent`).

use std::io;
use std::net::{IpAddr, ToSocketAddrs as _};
use std::os::fd::AsFd;

use moat_mqtt_core::driver::{ConnectFuture, Dialer};

/// A [`Dialer`] that connects every connection to one address, whatever host it is given.
#[derive(Debug, Clone)]
pub(crate) struct Resolved<D> {
    inner: D,
    ip: String,
    max_unsent: Option<u32>,
}

/// `--max-unsent`'s default: enough unsent data to keep a loopback or LAN connection busy
/// between two wake-ups of the tool, little enough that the tool's own socket does not
/// queue for a tenth of a second.
pub(crate) const DEFAULT_MAX_UNSENT: u32 = 128 * 1024;

impl<D: Dialer> Resolved<D> {
    /// Resolves `host` once for `inner`; its connections hold at most `max_unsent` bytes
    /// unsent (where the OS can say so: Linux).
    ///
    /// # Errors
    /// A message naming the host, when it does not resolve.
    pub(crate) fn new(inner: D, host: &str, port: u16, max_unsent: Option<u32>) -> Result<Self, String> {
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
        Ok(Self { inner, ip: ip.to_string(), max_unsent })
    }
}

impl<D: Dialer> Dialer for Resolved<D>
where
    D::Tcp: AsFd,
{
    type Tcp = D::Tcp;

    fn dial(&self, _host: String, port: u16) -> ConnectFuture<Self::Tcp> {
        let connect = self.inner.dial(self.ip.clone(), port);
        let max_unsent = self.max_unsent;
        Box::pin(async move {
            let stream = connect.await?;
            if let Some(bytes) = max_unsent {
                limit_unsent(&stream, bytes)?;
            }
            Ok(stream)
        })
    }
}

/// Sets `TCP_NOTSENT_LOWAT`: the kernel takes no more writes while `bytes` wait unsent.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn limit_unsent(stream: &impl AsFd, bytes: u32) -> io::Result<()> {
    socket2::SockRef::from(stream)
        .set_tcp_notsent_lowat(bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("--max-unsent {bytes}: TCP_NOTSENT_LOWAT: {e}")))
}

/// Elsewhere the OS has no such limit: connections keep the OS's send buffer.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn limit_unsent(_stream: &impl AsFd, _bytes: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, feature = "runtime-tokio", any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn connections_hold_at_most_max_unsent_bytes_unsent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            for (max_unsent, expected) in
                [(Some(4096), 4096), (Some(DEFAULT_MAX_UNSENT), DEFAULT_MAX_UNSENT), (None, 0)]
            {
                let dialer = Resolved::new(moat_mqtt_tokio::TcpConnector, "127.0.0.1", port, max_unsent).unwrap();
                let stream = dialer.dial("broker.example".into(), port).await.unwrap();
                let lowat = socket2::SockRef::from(&stream).tcp_notsent_lowat().unwrap();
                // 0: not set on the socket, which then follows the system's setting.
                assert_eq!(lowat, expected, "--max-unsent {max_unsent:?}");
            }
        });
    }
}
