//! The client's session state: what outlives one network connection.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::RequestId;
use super::packet_ids::PacketIds;
use crate::codec::{Ack, Packet, PacketId, Publish, QoS, Subscribe, Unsubscribe};

/// The acknowledgement an outgoing QoS 1/2 publish waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutState {
    /// QoS 1, sent (or to be sent): PUBACK completes it.
    Puback,
    /// QoS 2, first phase: PUBREC moves it on.
    Pubrec,
    /// QoS 2, second phase: PUBREL sent, PUBCOMP completes it.
    Pubcomp,
}

/// An operation holding a packet identifier until it is answered.
#[derive(Debug, Clone)]
pub(super) enum Op {
    /// A QoS 1/2 publish in the inflight window.
    Publish {
        /// The caller's handle.
        request: RequestId,
        /// The packet, with its packet id; DUP is set when it is resent.
        publish: Publish,
        /// What it waits for.
        state: OutState,
        /// Whether it went out on some connection (a resend of it then carries DUP).
        sent: bool,
    },
    /// A SUBSCRIBE waiting for SUBACK.
    Subscribe {
        /// The caller's handle.
        request: RequestId,
        /// The packet.
        subscribe: Subscribe,
    },
    /// An UNSUBSCRIBE waiting for UNSUBACK.
    Unsubscribe {
        /// The caller's handle.
        request: RequestId,
        /// The packet.
        unsubscribe: Unsubscribe,
    },
}

impl Op {
    fn packet_id(&self) -> Option<PacketId> {
        match self {
            Self::Publish { publish, .. } => publish.packet_id,
            Self::Subscribe { subscribe, .. } => Some(subscribe.packet_id),
            Self::Unsubscribe { unsubscribe, .. } => Some(unsubscribe.packet_id),
        }
    }
}

/// Session state: operations in flight in the order they were queued, the publishes waiting
/// for a slot, and the QoS 2 messages received and not yet released.
#[derive(Debug)]
pub(super) struct Session {
    /// Operations holding a packet id, by the order they entered the session.
    ops: BTreeMap<u64, Op>,
    /// Packet id to the operation's key in `ops`.
    by_id: HashMap<PacketId, u64>,
    next_seq: u64,
    ids: PacketIds,
    /// How many of `ops` are publishes: the inflight window's fill.
    publishes: usize,
    /// QoS 1/2 publishes waiting for a slot, first in first out; no packet id yet.
    pending: VecDeque<(RequestId, Publish)>,
    /// Packet ids of QoS 2 messages received (and delivered) whose PUBREL has not come yet.
    inbound_qos2: HashSet<PacketId>,
}

impl Session {
    pub(super) fn new() -> Self {
        Self {
            ops: BTreeMap::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            ids: PacketIds::new(),
            publishes: 0,
            pending: VecDeque::new(),
            inbound_qos2: HashSet::new(),
        }
    }

    /// QoS 1/2 publishes in the inflight window.
    pub(super) fn inflight_len(&self) -> usize {
        self.publishes
    }

    /// QoS 1/2 publishes waiting for a slot.
    pub(super) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A packet identifier no operation in flight holds.
    pub(super) fn allocate_id(&mut self) -> Option<PacketId> {
        let by_id = &self.by_id;
        self.ids.allocate(|id| by_id.contains_key(&id))
    }

    /// Adds an operation whose packet id came from [`allocate_id`](Self::allocate_id).
    pub(super) fn insert(&mut self, op: Op) {
        let Some(id) = op.packet_id() else { return };
        debug_assert!(!self.by_id.contains_key(&id), "packet id {id} allocated twice");
        if matches!(op, Op::Publish { .. }) {
            self.publishes += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(id, seq);
        self.ops.insert(seq, op);
    }

    /// The operation holding `id`.
    pub(super) fn get_mut(&mut self, id: PacketId) -> Option<&mut Op> {
        let seq = self.by_id.get(&id)?;
        self.ops.get_mut(seq)
    }

    /// Takes the operation holding `id` out of the session, freeing the id.
    pub(super) fn remove(&mut self, id: PacketId) -> Option<Op> {
        let seq = self.by_id.remove(&id)?;
        let op = self.ops.remove(&seq)?;
        if matches!(op, Op::Publish { .. }) {
            self.publishes -= 1;
        }
        Some(op)
    }

    /// Queues a publish for a slot in the window.
    pub(super) fn push_pending(&mut self, request: RequestId, publish: Publish) {
        self.pending.push_back((request, publish));
    }

    /// Whether publishes are waiting for a slot.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Moves waiting publishes into the window while it has room (at most `window`) and
    /// packet ids are free; returns the packets of those moved, in order.
    pub(super) fn fill_window(&mut self, window: usize, mark_sent: bool) -> Vec<Publish> {
        let mut moved = Vec::new();
        while self.publishes < window && !self.pending.is_empty() {
            let Some(id) = self.allocate_id() else { break };
            let Some((request, mut publish)) = self.pending.pop_front() else { break };
            publish.packet_id = Some(id);
            let state = if publish.qos == QoS::ExactlyOnce { OutState::Pubrec } else { OutState::Puback };
            if mark_sent {
                moved.push(publish.clone());
            }
            self.insert(Op::Publish { request, publish, state, sent: mark_sent });
        }
        moved
    }

    /// A QoS 2 PUBLISH with `id` arrived: true if it is new (deliver it), false if it is a
    /// resend of one not yet released.
    pub(super) fn receive_qos2(&mut self, id: PacketId) -> bool {
        self.inbound_qos2.insert(id)
    }

    /// PUBREL for `id` arrived: the message is released. False if no such id was held.
    pub(super) fn release_qos2(&mut self, id: PacketId) -> bool {
        self.inbound_qos2.remove(&id)
    }

    /// Resumes the session on a new connection after CONNACK. Appends what to send, in the
    /// original order, to `out`, and the requests this completes to `done`.
    ///
    /// With `session_present` the broker kept the session: publishes go again with DUP if they
    /// went out before, QoS 2 publishes in their second phase get their PUBREL again.
    /// Without it the broker has no session: publishes go again as new messages, QoS 2 ones in
    /// the second phase are complete (the broker received them before it lost the session), and
    /// the QoS 2 ids received and not yet released are forgotten. SUBSCRIBE and UNSUBSCRIBE
    /// still waiting for their answer are sent again either way.
    pub(super) fn resume(&mut self, session_present: bool, out: &mut Vec<Packet>, done: &mut Vec<RequestId>) {
        if !session_present {
            self.inbound_qos2.clear();
        }
        let mut finished = Vec::new();
        for op in self.ops.values_mut() {
            match op {
                Op::Publish { request, publish, state, sent } => match state {
                    OutState::Puback | OutState::Pubrec => {
                        publish.dup = session_present && *sent;
                        *sent = true;
                        out.push(Packet::Publish(publish.clone()));
                    }
                    OutState::Pubcomp => {
                        if let Some(id) = publish.packet_id {
                            if session_present {
                                out.push(Packet::Pubrel(Ack::new(id)));
                            } else {
                                finished.push(id);
                                done.push(*request);
                            }
                        }
                    }
                },
                Op::Subscribe { subscribe, .. } => out.push(Packet::Subscribe(subscribe.clone())),
                Op::Unsubscribe { unsubscribe, .. } => out.push(Packet::Unsubscribe(unsubscribe.clone())),
            }
        }
        for id in finished {
            self.remove(id);
        }
    }

    /// Checks that the bookkeeping agrees with itself and stays within `window` and
    /// `max_pending`.
    pub(super) fn check_invariants(&self, window: usize, max_pending: usize) -> Result<(), String> {
        if self.by_id.len() != self.ops.len() {
            return Err(format!("{} packet ids index {} operations", self.by_id.len(), self.ops.len()));
        }
        let mut publishes = 0;
        for (seq, op) in &self.ops {
            let Some(id) = op.packet_id() else {
                return Err(format!("operation {seq} has no packet id"));
            };
            if self.by_id.get(&id) != Some(seq) {
                return Err(format!("packet id {id} does not index operation {seq}"));
            }
            if let Op::Publish { publish, state, .. } = op {
                publishes += 1;
                let qos_ok = match state {
                    OutState::Puback => publish.qos == QoS::AtLeastOnce,
                    OutState::Pubrec | OutState::Pubcomp => publish.qos == QoS::ExactlyOnce,
                };
                if !qos_ok {
                    return Err(format!("publish {id} at {:?} waits for {state:?}", publish.qos));
                }
            }
        }
        if publishes != self.publishes {
            return Err(format!("{} publishes counted, {publishes} held", self.publishes));
        }
        if self.publishes > window {
            return Err(format!("{} publishes in flight, window {window}", self.publishes));
        }
        if self.pending.len() > max_pending {
            return Err(format!("{} publishes pending, at most {max_pending}", self.pending.len()));
        }
        if self.pending.iter().any(|(_, p)| p.packet_id.is_some() || p.qos == QoS::AtMostOnce) {
            return Err("a pending publish has a packet id or QoS 0".to_owned());
        }
        Ok(())
    }
}
