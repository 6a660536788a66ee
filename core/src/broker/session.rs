//! A client's session: what outlives one network connection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::LinkId;
use super::message::Delivery;
pub(crate) use super::persist::OutState;
use super::queue::OutQueue;
use crate::codec::{PacketId, ProtocolLevel, SubscriptionOptions, Will};
use crate::topic::TopicFilter;

/// An outgoing QoS 1/2 message in flight.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) packet_id: PacketId,
    pub(crate) delivery: Delivery,
    pub(crate) state: OutState,
}

/// The state of one client identifier (the key it is stored under).
///
/// Kept small: every connected client has one, and most are idle. Ordered maps cost nothing
/// while empty and 24 bytes where a hash map costs 48.
#[derive(Debug)]
pub(crate) struct Session {
    /// Clean session: everything is dropped when the link ends.
    pub(crate) clean: bool,
    /// The link serving it, if the client is connected.
    pub(crate) link: Option<LinkId>,
    pub(crate) level: ProtocolLevel,
    /// The user name its current (or last) link authenticated with; used by authorisers.
    pub(crate) username: Option<Box<str>>,
    /// The will of the current link.
    pub(crate) will: Option<Box<Will>>,
    /// Subscriptions by filter, kept to remove them from the trie when the session ends.
    pub(crate) subscriptions: BTreeMap<TopicFilter, SubscriptionOptions>,
    /// Queues and packet ids, boxed and made on first use: most sessions are idle.
    flow: Option<Box<Flow>>,
    /// Whether the link was already told it has deliveries waiting.
    pub(crate) wake_pending: bool,
    /// Whether the current link has asked for deliveries since it connected; until it has,
    /// a full queue does not make it a slow consumer.
    pub(crate) has_taken_deliveries: bool,
}

impl Session {
    pub(crate) fn new(clean: bool, level: ProtocolLevel) -> Self {
        Self {
            clean,
            link: None,
            level,
            username: None,
            will: None,
            subscriptions: BTreeMap::new(),
            flow: None,
            wake_pending: false,
            has_taken_deliveries: false,
        }
    }

    /// The session's messages and packet ids (empty ones if it has none).
    pub(crate) fn flow(&self) -> &Flow {
        static EMPTY: Flow = Flow::new();
        self.flow.as_deref().unwrap_or(&EMPTY)
    }

    /// The session's messages and packet ids, made if it had none.
    pub(crate) fn flow_mut(&mut self) -> &mut Flow {
        self.flow.get_or_insert_with(|| Box::new(Flow::new()))
    }

    /// Gives the flow's memory back once nothing is queued, in flight or awaiting release.
    pub(crate) fn shrink(&mut self) {
        if self.flow.as_ref().is_some_and(|f| {
            f.queue.is_empty() && f.inflight.is_empty() && f.qos2_received.is_empty() && f.waiters.is_empty()
        }) {
            self.flow = None;
        }
    }
}

/// What a session has in motion: queued and in-flight messages, incoming QoS 2 ids.
#[derive(Debug)]
pub(crate) struct Flow {
    /// Messages waiting for the inflight window or for the client to come back.
    pub(crate) queue: OutQueue,
    /// Outgoing QoS 1/2 messages in flight, oldest first (resent in this order).
    pub(crate) inflight: VecDeque<Inflight>,
    /// Incoming QoS 2 packet ids received and not yet released: a PUBLISH with one of these
    /// ids is a resend and is not delivered again.
    pub(crate) qos2_received: BTreeSet<PacketId>,
    /// The last packet id handed out.
    pub(crate) last_packet_id: u16,
    /// Publishing links paused because this queue passed the pressure mark (back-pressure).
    pub(crate) waiters: Vec<LinkId>,
    /// The client did not drain its queue while publishers waited: it is not waited for
    /// again until it drains (its queue's overflow policy applies instead).
    pub(crate) stalled: bool,
}

impl Flow {
    const fn new() -> Self {
        Self {
            queue: OutQueue::new(),
            inflight: VecDeque::new(),
            qos2_received: BTreeSet::new(),
            last_packet_id: 0,
            waiters: Vec::new(),
            stalled: false,
        }
    }

    /// The next packet id not in flight, or `None` if all 65,535 are.
    pub(crate) fn next_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            self.last_packet_id = self.last_packet_id.wrapping_add(1);
            let Some(id) = PacketId::new(self.last_packet_id) else { continue };
            if !self.inflight.iter().any(|f| f.packet_id == id) {
                return Some(id);
            }
        }
        None
    }

    pub(crate) fn inflight_position(&self, packet_id: PacketId) -> Option<usize> {
        self.inflight.iter().position(|f| f.packet_id == packet_id)
    }
}
