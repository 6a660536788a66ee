//! Why a link ends.

use std::time::Duration;

use thiserror::Error;

use crate::codec::{DecodeError, PacketType, ReasonCode};

/// The client broke the protocol. The link is closed; the will (if any) is published.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The bytes were not a valid packet.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The first packet was not CONNECT (MQTT-3.1.0-1).
    #[error("the first packet must be CONNECT, got {0}")]
    ExpectedConnect(PacketType),
    /// A second CONNECT on the same link (MQTT-3.1.0-2).
    #[error("a second CONNECT on the same connection")]
    SecondConnect,
    /// A packet only a broker may send (CONNACK, SUBACK, PINGRESP, ...).
    #[error("a client may not send {0}")]
    UnexpectedPacket(PacketType),
    /// An acknowledgement for a packet identifier that is not in flight.
    #[error("{packet_type} for packet identifier {packet_id}, which is not in flight")]
    UnknownPacketId {
        /// The acknowledgement's type.
        packet_type: PacketType,
        /// Its packet identifier.
        packet_id: u16,
    },
}

impl ProtocolError {
    /// The MQTT 5 reason code for a DISCONNECT reporting this error.
    #[must_use]
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Decode(e) => e.reason_code(),
            _ => ReasonCode::ProtocolError,
        }
    }
}

/// Why a link ended. Every reason but [`CloseReason::ClientDisconnected`] publishes the will.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent DISCONNECT: a clean close, no will.
    #[error("client disconnected")]
    ClientDisconnected,
    /// The network connection ended without DISCONNECT.
    #[error("connection lost")]
    ConnectionLost,
    /// No CONNECT arrived within the connect timeout.
    #[error("no CONNECT within {0:?}")]
    ConnectTimeout(Duration),
    /// Nothing arrived for one and a half keep-alive periods (MQTT-3.1.2-24).
    #[error("keep-alive expired: nothing received for {0:?}")]
    KeepAliveTimeout(Duration),
    /// The client broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// CONNECT asked for a protocol level this broker does not serve; CONNACK 1 was sent.
    #[error("client asked for protocol level {0}; this broker serves 3 (MQTT 3.1) and 4 (MQTT 3.1.1)")]
    UnsupportedProtocolLevel(u8),
    /// The broker refused the CONNECT (the CONNACK said why).
    #[error("connection refused: {0}")]
    Refused(ReasonCode),
    /// Another connection with the same client identifier took the session over.
    #[error("session taken over by a new connection")]
    SessionTakenOver,
    /// The client read too slowly and its queue of QoS 1/2 messages filled up.
    #[error("slow consumer: outbound queue full")]
    SlowConsumer,
    /// The client sent more packets than the broker holds while its login is being checked.
    #[error("sent more than {0} packets while its login was being checked")]
    TooManyPacketsBeforeConnack(usize),
    /// The broker is shutting down.
    #[error("broker shutting down")]
    ServerShuttingDown,
}

impl CloseReason {
    /// Whether the will message is published for this close (MQTT-3.1.2-8): always, except
    /// after DISCONNECT.
    #[must_use]
    pub fn publishes_will(&self) -> bool {
        !matches!(self, Self::ClientDisconnected)
    }
}
