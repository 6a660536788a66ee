//! MQTT over WebSocket with tungstenite: the handshakes of both sides, and [`WsBytes`], which
//! turns binary messages into a byte stream.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{self, Message};
use bytes::{Buf, Bytes};
use futures::io::{AsyncRead, AsyncWrite};
use futures::{Sink, Stream};

use super::TransportError;
use crate::broker::ListenerWebSocket;
use crate::client::options::BrokerUrl;

/// The subprotocols a listener accepts, in order of preference: `mqtt` (MQTT 3.1.1 and 5) and
/// `mqttv3.1` (old clients).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];
/// Bytes a WebSocket link reads at once (tungstenite's default is 128 KiB per connection).
const WS_BUFFER: usize = 4096;

/// A WebSocket carrying MQTT, read and written as bytes.
///
/// Reading yields the payloads of binary messages one after another, so a packet split across
/// messages and several packets in one message both reach the streaming decoder intact; pings
/// are answered by tungstenite, a close ends the stream, and a text message is an error (MQTT
/// must travel in binary messages). Each write is sent as one binary message.
#[derive(Debug)]
pub struct WsBytes<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary message read.
    pending: Bytes,
}

impl<S> WsBytes<S> {
    fn new(ws: WebSocketStream<S>) -> Self {
        Self { ws, pending: Bytes::new() }
    }
}

/// A tungstenite error as the I/O error the driver reports.
fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(n));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(payload))) => self.pending = payload,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a WebSocket text message: MQTT travels in binary messages",
                    )));
                }
                // tungstenite answers the peer's close; the stream ends here.
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(0)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                    return Poll::Ready(Ok(0));
                }
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
        Pin::new(&mut self.ws).start_send(Message::Binary(Bytes::copy_from_slice(buf))).map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

/// An HTTP error answer to a handshake, with `text` as its body.
fn refuse(status: StatusCode, text: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text));
    *response.status_mut() = status;
    response
}

/// The listener's side of the handshake: checks the path (when one is configured) and picks the
/// MQTT subprotocol, or answers 404 / 400 and fails with the reason.
// tungstenite's callback type returns its (large) HTTP error response by value.
#[allow(clippy::result_large_err)]
pub(super) async fn accept<S>(
    stream: S,
    settings: &ListenerWebSocket,
    who: &str,
    max_message: usize,
) -> Result<WsBytes<S>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let path = settings.path.clone();
    let callback = move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        if let Some(path) = &path
            && request.uri().path() != path
        {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no MQTT at {}: this listener serves {path}", request.uri().path()),
            ));
        }
        let offered: Vec<&str> = request
            .headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let chosen = SUBPROTOCOLS
            .iter()
            .find_map(|wanted| offered.iter().find(|offer| offer.eq_ignore_ascii_case(wanted)))
            .and_then(|offer| HeaderValue::from_str(offer).ok());
        match chosen {
            Some(protocol) => {
                response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, protocol);
                Ok(response)
            }
            None => Err(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "MQTT over WebSocket needs the subprotocol \"mqtt\" (Sec-WebSocket-Protocol); offered: {offered:?}"
                ),
            )),
        }
    };
    // Bounded by the packet limit, not tungstenite's 64 MiB; small buffers, since most links idle.
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(0);
    let ws = async_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await.map_err(|e| {
        TransportError::Handshake {
            who: who.to_owned(),
            reason: match e {
                tungstenite::Error::Http(response) => format!(
                    "WebSocket handshake refused with {}: {}",
                    response.status(),
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                ),
                other => format!("WebSocket handshake failed: {other}"),
            },
        }
    })?;
    Ok(WsBytes::new(ws))
}

/// The client's side of the handshake to `url` (its host, port and path), offering the `mqtt`
/// subprotocol and sending `headers` too.
pub(super) async fn connect<S>(
    stream: S,
    url: &BrokerUrl,
    headers: &BTreeMap<String, String>,
) -> Result<WsBytes<S>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fail = |reason: String| TransportError::Handshake { who: format!("client to {url}"), reason };
    let scheme = if url.scheme.is_tls() { "wss" } else { "ws" };
    let mut request = format!("{scheme}://{}{}", url.authority(), url.request_path())
        .into_client_request()
        .map_err(|e| fail(format!("not a WebSocket request: {e}")))?;
    request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOLS[0]));
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| fail(format!("extra header {name:?} is not a header name: {e}")))?;
        let value =
            HeaderValue::from_str(value).map_err(|e| fail(format!("extra header {name}: value {value:?}: {e}")))?;
        request.headers_mut().insert(header, value);
    }
    let (ws, _) = async_tungstenite::client_async(request, stream).await.map_err(|e| {
        fail(match e {
            tungstenite::Error::Http(response) => format!("WebSocket handshake refused with {}", response.status()),
            other => format!("WebSocket handshake failed: {other}"),
        })
    })?;
    Ok(WsBytes::new(ws))
}
