//! What can go wrong: the caller's mistakes, the broker's, and why a connection ends.

use std::time::Duration;

use thiserror::Error;

use crate::codec::{DecodeError, EncodeError, PacketType, ReasonCode};

/// The caller asked for something the client cannot do now. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// QoS 0 publishes, subscribe and unsubscribe need an accepted connection.
    #[error("not connected")]
    NotConnected,
    /// `start` while a connection is being made or is open; end it first.
    #[error("a connection is already in progress or open")]
    AlreadyStarted,
    /// The queue of QoS 1/2 publishes waiting for an inflight slot is full (`max_pending`).
    #[error("too many publishes waiting for the inflight window")]
    TooManyPending,
    /// All 65,535 packet identifiers are held by operations in flight.
    #[error("every packet identifier is in use")]
    PacketIdsExhausted,
    /// SUBSCRIBE or UNSUBSCRIBE needs at least one topic filter.
    #[error("no topic filters given")]
    NoFilters,
    /// The packet cannot be sent as asked (a field too long, a topic alias without MQTT 5, ...).
    #[error("cannot send that: {0}")]
    InvalidPacket(EncodeError),
    /// The options cannot make a valid CONNECT (a field too long, password without user name, ...).
    #[error("invalid connect options: {0}")]
    InvalidOptions(EncodeError),
    /// An empty client id needs a clean session before MQTT 5 (MQTT-3.1.3-7).
    #[error("an empty client id needs a clean session")]
    EmptyClientIdNeedsCleanSession,
    /// The keep-alive does not fit CONNECT's 16-bit count of seconds.
    #[error("keep-alive {0:?} is longer than 65535 s")]
    KeepAliveTooLong(Duration),
}

/// The broker broke the protocol; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The bytes were not a valid packet (or the packet was larger than `max_packet_size`).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The broker's first packet was not CONNACK (MQTT-3.2.0-1).
    #[error("the broker's first packet must be CONNACK, got {0}")]
    ExpectedConnack(PacketType),
    /// A packet a broker may not send now (CONNECT, SUBSCRIBE, PINGREQ, a second CONNACK, AUTH).
    #[error("unexpected {0} from the broker")]
    UnexpectedPacket(PacketType),
    /// An acknowledgement for a packet identifier not in flight in the state it answers.
    #[error("{packet_type} for packet identifier {packet_id}, which is not in flight awaiting it")]
    UnknownPacketId {
        /// The acknowledgement's type.
        packet_type: PacketType,
        /// Its packet identifier.
        packet_id: u16,
    },
    /// CONNACK said session present to a clean-session CONNECT (MQTT-3.2.2-1).
    #[error("CONNACK says session present, but a clean session was asked for")]
    SessionPresentOnCleanSession,
    /// SUBACK (or an MQTT 5 UNSUBACK) with a different number of reason codes than filters.
    #[error("{packet_type} has {got} reason codes for {expected} topic filters")]
    ReasonCountMismatch {
        /// SUBACK or UNSUBACK.
        packet_type: PacketType,
        /// Filters in the request.
        expected: usize,
        /// Reason codes in the answer.
        got: usize,
    },
    /// A PUBLISH using a topic alias, which this client never allows (Topic Alias Maximum 0).
    #[error("PUBLISH uses a topic alias, which the client did not allow")]
    TopicAlias,
}

impl ProtocolError {
    /// The MQTT 5 reason code for a DISCONNECT reporting this error.
    #[must_use]
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Decode(e) => e.reason_code(),
            Self::TopicAlias => ReasonCode::TopicAliasInvalid,
            _ => ReasonCode::ProtocolError,
        }
    }
}

/// Why a connection ended. Reported once per [`start`](super::Connection::start), last.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The caller asked for it with [`disconnect`](super::Connection::disconnect); DISCONNECT
    /// was sent and the will is not published.
    #[error("disconnected")]
    Local,
    /// The transport ended ([`handle_eof`](super::Connection::handle_eof)).
    #[error("connection lost")]
    ConnectionLost,
    /// No CONNACK within the connect timeout.
    #[error("no CONNACK within {0:?}")]
    ConnectTimeout(Duration),
    /// The broker is dead: nothing came back within the keep-alive after a PINGREQ.
    #[error("broker not answering: no PINGRESP within {0:?}")]
    KeepAliveTimeout(Duration),
    /// The broker broke the protocol.
    #[error("protocol error by the broker: {0}")]
    Protocol(ProtocolError),
    /// CONNACK refused the connection with this reason.
    #[error("connection refused: {0}")]
    Refused(ReasonCode),
    /// The broker sent DISCONNECT (MQTT 5) with this reason.
    #[error("disconnected by the broker: {0}")]
    ByBroker(ReasonCode),
}
