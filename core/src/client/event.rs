//! What the client reports to its caller.

use std::fmt;

use super::DisconnectReason;
use crate::codec::{Publish, ReasonCode};

/// Identifies one command (publish, subscribe, unsubscribe) so that its completion can be
/// matched to it. Unique within one [`Connection`](super::Connection), never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(super) u64);

impl RequestId {
    /// The number behind the identifier, for logging.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request {}", self.0)
    }
}

/// Where a [`Connection`](super::Connection) stands with its current transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// No connection: before [`start`](super::Connection::start) or after one ended.
    Disconnected,
    /// CONNECT queued, waiting for CONNACK.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
}

/// Something the caller should know, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// CONNACK accepted the connection. Resends of the session's messages follow it.
    Connected {
        /// Whether the broker resumed a stored session.
        session_present: bool,
    },
    /// CONNACK refused the connection; [`Event::Disconnected`] follows.
    Refused(ReasonCode),
    /// An application message from the broker, delivered once (QoS 2: exactly once).
    Message(Publish),
    /// A publish is done: QoS 0 once in the output, QoS 1 at PUBACK, QoS 2 at PUBCOMP (or,
    /// for QoS 2 past PUBREC, when the broker lost the session: it had received the message).
    Published(RequestId),
    /// MQTT 5: the broker refused a publish (PUBACK or PUBREC with a failure reason). It is done.
    PublishRejected {
        /// The publish.
        id: RequestId,
        /// The broker's reason.
        reason: ReasonCode,
    },
    /// SUBACK answered a subscribe.
    Subscribed {
        /// The subscribe.
        id: RequestId,
        /// One code per filter, in order: `GrantedQoS0..2` or a failure.
        granted: Vec<ReasonCode>,
    },
    /// UNSUBACK answered an unsubscribe.
    Unsubscribed {
        /// The unsubscribe.
        id: RequestId,
    },
    /// The connection ended: exactly once per started connection, its last event. Write what
    /// [`poll_transmit`](super::Connection::poll_transmit) still gives, then close the transport.
    Disconnected(DisconnectReason),
}
