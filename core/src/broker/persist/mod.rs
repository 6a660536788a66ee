//! Persistence: what the router asks a store to keep, what a store gives back at startup, and
//! the trait a storage back end implements.
//!
//! The router stays pure: when [`RouterConfig::persistence`](super::RouterConfig) is on, every
//! change to durable state becomes a [`StoreOp`] the driver collects with
//! [`Router::take_store_ops`](super::Router::take_store_ops) and hands to a [`Store`], in order.
//! At startup the driver calls [`Store::load`] and gives the [`Snapshot`] to
//! [`Router::restore`](super::Router::restore) before any link is served.
//!
//! What is kept: retained messages (not `$SYS`), persistent sessions (clean-session state is
//! never written) with their subscriptions, queued and in-flight QoS 1/2 messages (with the
//! packet id and QoS 2 phase of each one in flight), the ids of incoming QoS 2 messages not yet
//! released, and the `$SYS` totals that accumulate. Not kept: QoS 0 messages, wills, and
//! connections (every session is offline after a restart).
//!
//! Records are MQTT 5 packets ([`record`]), so the codec that guards the network also guards
//! what is read back from disk: a damaged record is a clear error, never a panic.

mod memory;
pub mod record;
pub mod tables;

use std::sync::Arc;

use bytestring::ByteString;
use thiserror::Error;

pub use memory::MemoryStore;

use super::Message;
use crate::codec::{PacketId, ProtocolLevel, QoS, SubscriptionOptions};
use crate::topic::{TopicFilter, TopicName};

/// Where an outgoing QoS 1/2 message stands: the acknowledgement it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutState {
    /// QoS 1, PUBLISH sent, waiting for PUBACK.
    Puback,
    /// QoS 2, PUBLISH sent, waiting for PUBREC.
    Pubrec,
    /// QoS 2, PUBREL sent, waiting for PUBCOMP.
    Pubcomp,
}

impl OutState {
    /// The byte a store keeps for it.
    #[must_use]
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Puback => 1,
            Self::Pubrec => 2,
            Self::Pubcomp => 3,
        }
    }

    /// The state for a byte from [`to_u8`](Self::to_u8).
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Puback),
            2 => Some(Self::Pubrec),
            3 => Some(Self::Pubcomp),
            _ => None,
        }
    }
}

/// One change to durable state, in the order the router made it.
///
/// A session's messages are numbered by `seq`, unique in the broker and increasing, so a store
/// that keeps them by `(client_id, seq)` gives them back in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// A retained message was set or replaced on its topic.
    Retain(Arc<Message>),
    /// The retained message of a topic was cleared.
    Unretain(TopicName),
    /// A persistent session was created or resumed (written again: level and user may change).
    Session {
        /// The client identifier.
        client_id: ByteString,
        /// The protocol level of its last connection.
        level: ProtocolLevel,
        /// The user name its last connection authenticated with.
        username: Option<ByteString>,
    },
    /// A session ended: it and everything kept for it are removed.
    DropSession {
        /// The client identifier.
        client_id: ByteString,
    },
    /// A persistent session subscribed (or changed the options of a subscription).
    Subscribe {
        /// The client identifier.
        client_id: ByteString,
        /// The filter.
        filter: TopicFilter,
        /// Its options.
        options: SubscriptionOptions,
    },
    /// A persistent session unsubscribed.
    Unsubscribe {
        /// The client identifier.
        client_id: ByteString,
        /// The filter.
        filter: TopicFilter,
    },
    /// A QoS 1/2 message was queued for a persistent session.
    Queue {
        /// The client identifier.
        client_id: ByteString,
        /// Its number.
        seq: u64,
        /// The QoS it is delivered with.
        qos: QoS,
        /// The RETAIN flag it is delivered with.
        retain: bool,
        /// The message.
        message: Arc<Message>,
    },
    /// A queued message was sent with `packet_id`, or its QoS 2 exchange moved on.
    Inflight {
        /// The client identifier.
        client_id: ByteString,
        /// The message's number.
        seq: u64,
        /// The packet id it was sent with.
        packet_id: PacketId,
        /// The acknowledgement it waits for.
        state: OutState,
    },
    /// A queued or in-flight message is done (acknowledged) and forgotten.
    Unqueue {
        /// The client identifier.
        client_id: ByteString,
        /// The message's number.
        seq: u64,
    },
    /// An incoming QoS 2 PUBLISH was received: its id stays taken until PUBREL.
    Qos2Received {
        /// The client identifier.
        client_id: ByteString,
        /// The packet id.
        packet_id: PacketId,
    },
    /// The client released an incoming QoS 2 id (PUBREL).
    Qos2Released {
        /// The client identifier.
        client_id: ByteString,
        /// The packet id.
        packet_id: PacketId,
    },
    /// The `$SYS` totals now.
    Totals(Totals),
}

/// The `$SYS` counters that accumulate over the broker's life (not the ones that describe now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Totals {
    /// Connections accepted.
    pub clients_total: u64,
    /// The most clients connected at once.
    pub clients_maximum: u64,
    /// Bytes received from clients.
    pub bytes_received: u64,
    /// Bytes sent to clients.
    pub bytes_sent: u64,
    /// Packets received.
    pub messages_received: u64,
    /// Packets sent.
    pub messages_sent: u64,
    /// PUBLISH received.
    pub publish_received: u64,
    /// PUBLISH sent.
    pub publish_sent: u64,
    /// Messages dropped.
    pub publish_dropped: u64,
    /// PUBLISH refused by an authoriser.
    pub publish_denied: u64,
    /// SUBSCRIBE filters refused by an authoriser.
    pub subscribe_denied: u64,
    /// QoS 0 messages evicted for QoS 1/2 ones.
    pub queue_evictions: u64,
    /// Slow consumers disconnected.
    pub slow_consumers: u64,
    /// Messages dropped by full offline queues.
    pub offline_overflow: u64,
}

impl Totals {
    /// The names a store may keep the counters under, in a fixed order, with their values.
    #[must_use]
    pub fn fields(&self) -> [(&'static str, u64); 14] {
        [
            ("clients_total", self.clients_total),
            ("clients_maximum", self.clients_maximum),
            ("bytes_received", self.bytes_received),
            ("bytes_sent", self.bytes_sent),
            ("messages_received", self.messages_received),
            ("messages_sent", self.messages_sent),
            ("publish_received", self.publish_received),
            ("publish_sent", self.publish_sent),
            ("publish_dropped", self.publish_dropped),
            ("publish_denied", self.publish_denied),
            ("subscribe_denied", self.subscribe_denied),
            ("queue_evictions", self.queue_evictions),
            ("slow_consumers", self.slow_consumers),
            ("offline_overflow", self.offline_overflow),
        ]
    }

    /// Sets the counter `name` (as in [`fields`](Self::fields)); unknown names are ignored,
    /// so a store written by a newer version still loads.
    pub fn set(&mut self, name: &str, value: u64) {
        let field = match name {
            "clients_total" => &mut self.clients_total,
            "clients_maximum" => &mut self.clients_maximum,
            "bytes_received" => &mut self.bytes_received,
            "bytes_sent" => &mut self.bytes_sent,
            "messages_received" => &mut self.messages_received,
            "messages_sent" => &mut self.messages_sent,
            "publish_received" => &mut self.publish_received,
            "publish_sent" => &mut self.publish_sent,
            "publish_dropped" => &mut self.publish_dropped,
            "publish_denied" => &mut self.publish_denied,
            "subscribe_denied" => &mut self.subscribe_denied,
            "queue_evictions" => &mut self.queue_evictions,
            "slow_consumers" => &mut self.slow_consumers,
            "offline_overflow" => &mut self.offline_overflow,
            _ => return,
        };
        *field = value;
    }
}

/// Everything a store holds, as [`Store::load`] returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Retained messages.
    pub retained: Vec<Message>,
    /// Persistent sessions.
    pub sessions: Vec<StoredSession>,
    /// The accumulated `$SYS` counters.
    pub totals: Totals,
}

/// A persistent session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The client identifier.
    pub client_id: ByteString,
    /// The protocol level of its last connection.
    pub level: ProtocolLevel,
    /// The user name of its last connection.
    pub username: Option<ByteString>,
    /// Its subscriptions.
    pub subscriptions: Vec<(TopicFilter, SubscriptionOptions)>,
    /// Its queued and in-flight messages, in any order (the router sorts them by `seq`).
    pub messages: Vec<StoredMessage>,
    /// Incoming QoS 2 packet ids received and not yet released.
    pub qos2_received: Vec<PacketId>,
}

impl StoredSession {
    /// A session with nothing in it yet.
    #[must_use]
    pub fn new(client_id: ByteString, level: ProtocolLevel, username: Option<ByteString>) -> Self {
        Self { client_id, level, username, subscriptions: Vec::new(), messages: Vec::new(), qos2_received: Vec::new() }
    }
}

/// A queued or in-flight message of a stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its number (queue order).
    pub seq: u64,
    /// The QoS it is delivered with.
    pub qos: QoS,
    /// The RETAIN flag it is delivered with.
    pub retain: bool,
    /// The message.
    pub message: Message,
    /// The packet id and state, if it was in flight.
    pub inflight: Option<(PacketId, OutState)>,
}

/// Why a store cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be opened, read or written (permissions, disk full, I/O error).
    #[error("persistence store {path}: {reason}")]
    Unusable {
        /// Where the store is.
        path: String,
        /// What went wrong, and what to do about it.
        reason: String,
    },
    /// The store's content is damaged or not a moat-mqtt store.
    #[error(
        "persistence store {path} is corrupt: {reason} (set `persistence: on-corrupt: fresh` to move it aside and start empty)"
    )]
    Corrupt {
        /// Where the store is.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A storage back end: gives back everything at startup, then applies changes in order.
///
/// Called from one thread at a time, never from the router: the driver runs it beside the
/// broker. [`apply`](Self::apply) with `durable` set must return only once the changes (and all
/// earlier ones) survive a crash of the process and of the machine; without it they may wait for
/// the next durable call.
pub trait Store: Send {
    /// Where the store is, for log lines (a path, a URL).
    fn location(&self) -> String;

    /// Everything kept, to restore the router from.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a record cannot be read back, [`StoreError::Unusable`] when
    /// the store cannot be read at all.
    fn load(&mut self) -> Result<Snapshot, StoreError>;

    /// Applies `ops` in order, as one atomic change.
    ///
    /// # Errors
    /// [`StoreError::Unusable`] when the change could not be written; none of it is then kept,
    /// and the caller may try again.
    fn apply(&mut self, ops: &[StoreOp], durable: bool) -> Result<(), StoreError>;
}
