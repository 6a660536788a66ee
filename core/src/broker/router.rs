//! The router: the broker's shared state, as a pure function of its inputs.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;

use super::message::Delivery;
use super::persist::{Snapshot, StoreOp};
use super::queue::Offer;
use super::session::{Inflight, OutState, Session};
use super::stats::Stats;
use super::{CloseReason, LinkEvent, Message};
use crate::auth::{AuthDecision, AuthStep, ClientInfo, Credentials, Plugins, TopicAccess};
use crate::codec::{
    Ack, Connack, Connect, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, ReasonCode, Suback, Subscribe,
    SubscriptionOptions, Unsuback, Unsubscribe, Will,
};
use crate::topic::{Matches, SubscriptionTree, TopicName};

/// Identifies one network connection; chosen by the driver, unique while the link lives.
/// Never 0, so that an `Option<LinkId>` (in every session) takes no more room than the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(std::num::NonZeroU64);

impl LinkId {
    /// The link numbered `n`.
    #[must_use]
    pub const fn new(n: std::num::NonZeroU64) -> Self {
        Self(n)
    }

    /// Its number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The router's limits and settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// QoS 1/2 messages in flight to one client at once (`max-inflight`).
    pub max_inflight: usize,
    /// Messages queued for one client beyond its inflight window, online or offline
    /// (`max-queued-messages`).
    pub max_queued_messages: usize,
    /// How often `$SYS/broker/...` is published; `None` turns it off (`sys_interval: 0`).
    pub sys_interval: Option<Duration>,
    /// The text published as `$SYS/broker/version`.
    pub version: String,
    /// Seed for the client identifiers assigned to clients that send an empty one.
    pub client_id_seed: u64,
    /// Authentication, topic authorisation and hooks; none: everyone may do everything.
    pub plugins: Plugins,
    /// Whether durable state changes become [`StoreOp`]s for a store
    /// ([`Router::take_store_ops`]).
    pub persistence: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            max_inflight: 20,
            max_queued_messages: 1000,
            sys_interval: Some(Duration::from_secs(20)),
            version: concat!("moat-mqtt ", env!("CARGO_PKG_VERSION")).to_owned(),
            client_id_seed: 0,
            plugins: Plugins::new(),
            persistence: false,
        }
    }
}

/// Something the driver should know about, for logging and hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterEvent {
    /// A client connected on a link.
    Connected {
        /// The link.
        link: LinkId,
        /// Its client identifier (assigned, if it sent none).
        client_id: ByteString,
        /// Whether a stored session was resumed.
        session_present: bool,
    },
    /// A CONNECT was refused.
    Refused {
        /// The link.
        link: LinkId,
        /// Why.
        reason: ReasonCode,
    },
    /// An authenticator needs time to decide about the CONNECT on `link`. Await
    /// [`Authenticator::authenticate_later`](crate::auth::Authenticator::authenticate_later) of
    /// authenticator number `plugin` (see [`Router::authenticator`]) with `credentials`, then
    /// call [`Router::resolve_auth`] with `link`, `id` and the answer. Meanwhile the link's
    /// packets are held; other links go on.
    AuthPending {
        /// The link.
        link: LinkId,
        /// Which decision this is (a link may be asked again by a later plugin).
        id: u64,
        /// The index of the authenticator that answered `Pending`.
        plugin: usize,
        /// What the client presented.
        credentials: Credentials,
    },
    /// An authenticator refused a CONNECT (a [`Refused`](Self::Refused) event follows).
    AuthRefused {
        /// The link.
        link: LinkId,
        /// The user name the client gave.
        username: Option<ByteString>,
        /// The name of the authenticator that refused, or why nobody accepted.
        by: String,
    },
    /// An authoriser refused a PUBLISH; it was acknowledged and dropped.
    PublishDenied {
        /// The publishing client.
        client_id: ByteString,
        /// The topic it published to.
        topic: String,
    },
    /// A client's link ended.
    Disconnected {
        /// The link.
        link: LinkId,
        /// Its client identifier.
        client_id: ByteString,
        /// Why.
        reason: CloseReason,
    },
}

/// The broker's shared state: sessions, subscriptions, retained messages, wills and `$SYS`.
///
/// Links ([`super::ServerConnection`]) hand it their [`LinkEvent`]s; it answers with packets for
/// that link, queues messages for others, and says which links have deliveries waiting and
/// which must be closed. It never touches a socket or a clock.
///
/// Calling contract, with `now` never decreasing:
/// - [`handle_event`](Self::handle_event) for each event of a link; packets for that link are
///   appended to `out` (CONNACK, acknowledgements, resends);
/// - [`poll_deliveries`](Self::poll_deliveries) for a link whenever it can take more: after
///   its own events, and when [`poll_wake`](Self::poll_wake) names it;
/// - [`poll_close`](Self::poll_close): links the router detached (taken over, too slow); close
///   them after sending what they have;
/// - [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) passes.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    /// Boxed: a map slot stays small, and most of a session's size is rarely touched.
    sessions: HashMap<ByteString, Box<Session>>,
    links: HashMap<LinkId, ByteString>,
    subscriptions: SubscriptionTree<ByteString, SubscriptionOptions>,
    retained: HashMap<TopicName, Arc<Message>>,
    wakes: VecDeque<LinkId>,
    closes: VecDeque<(LinkId, CloseReason)>,
    events: VecDeque<RouterEvent>,
    /// Wills of links that ended, published once the current operation is done.
    pending_wills: Vec<Message>,
    assigned_ids: u64,
    /// Reused buffer for the subscriptions a message matches.
    matches: Matches<ByteString, SubscriptionOptions>,
    /// Turns taken in shared-subscription groups (round robin).
    share_turn: usize,
    stats: Stats,
    next_sys: Option<Instant>,
    /// Links whose CONNECT waits for an authenticator, with what they sent meanwhile.
    pending_auth: HashMap<LinkId, PendingAuth>,
    next_auth_id: u64,
    /// Packets for links that were answered outside their own events (a resolved login);
    /// handed over by [`Router::poll_deliveries`].
    outbox: HashMap<LinkId, Vec<Packet>>,
    stopped: bool,
    /// Changes to durable state not yet taken by the driver.
    journal: Journal,
    /// Back-pressure: publishing links paused, with the clients whose queues they wait for.
    paused: HashMap<LinkId, Vec<ByteString>>,
    /// Paused links that may read again.
    resumes: VecDeque<LinkId>,
    /// The link whose event is being handled: the publisher of what is routed now.
    current_link: Option<LinkId>,
    /// The number the next queued message gets.
    next_seq: u64,
}

/// The changes to durable state, kept only with persistence on.
#[derive(Debug, Default)]
struct Journal {
    enabled: bool,
    ops: Vec<StoreOp>,
}

impl Journal {
    /// Records the op `make` builds, if persistence is on (and only then builds it).
    fn record(&mut self, make: impl FnOnce() -> StoreOp) {
        if self.enabled {
            self.ops.push(make());
        }
    }
}

/// The most messages a connected client's queue holds before publishers into it are paused
/// (lower if `max-queued-messages` is small); they go on below a quarter of it.
pub(crate) const PRESSURE_HIGH: usize = 32;

/// Events a link may send between its CONNECT and the end of a pending authentication; more
/// close the link.
const MAX_HELD_EVENTS: usize = 256;

/// A CONNECT waiting for an authenticator.
#[derive(Debug)]
struct PendingAuth {
    id: u64,
    plugin: usize,
    allowed: bool,
    connect: Connect,
    credentials: Credentials,
    held: Vec<LinkEvent>,
}

impl Router {
    /// A router with no sessions, started at `now`.
    #[must_use]
    pub fn new(now: Instant, config: RouterConfig) -> Self {
        for hooks in config.plugins.hooks() {
            hooks.broker_started();
        }
        Self {
            next_sys: config.sys_interval.map(|_| now),
            stats: Stats::new(now),
            journal: Journal { enabled: config.persistence, ops: Vec::new() },
            config,
            sessions: HashMap::new(),
            links: HashMap::new(),
            subscriptions: SubscriptionTree::new(),
            retained: HashMap::new(),
            wakes: VecDeque::new(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            pending_wills: Vec::new(),
            assigned_ids: 0,
            matches: Matches::new(),
            share_turn: 0,
            pending_auth: HashMap::new(),
            next_auth_id: 0,
            outbox: HashMap::new(),
            stopped: false,
            next_seq: 1,
            paused: HashMap::new(),
            resumes: VecDeque::new(),
            current_link: None,
        }
    }

    /// The broker is stopping: tells the hooks (once).
    pub fn stop(&mut self) {
        if !std::mem::replace(&mut self.stopped, true) {
            for hooks in self.config.plugins.hooks() {
                hooks.broker_stopped();
            }
        }
    }

    /// Authenticator number `index`, for [`RouterEvent::AuthPending`].
    #[must_use]
    pub fn authenticator(&self, index: usize) -> Option<Arc<dyn crate::auth::Authenticator>> {
        self.config.plugins.authenticators().get(index).cloned()
    }

    /// Hands in the answer to [`RouterEvent::AuthPending`] `id` of `link`. The link's CONNACK
    /// and the answers to the packets it sent meanwhile wait for it in
    /// [`poll_deliveries`](Self::poll_deliveries), and the link is named by
    /// [`poll_wake`](Self::poll_wake). An answer for a link that has gone, or a stale `id`, is
    /// ignored; returns whether the answer was used. [`AuthDecision::Pending`] counts as no
    /// opinion.
    pub fn resolve_auth(&mut self, now: Instant, link: LinkId, id: u64, decision: AuthDecision) -> bool {
        if self.pending_auth.get(&link).is_none_or(|p| p.id != id) {
            return false;
        }
        let Some(pending) = self.pending_auth.remove(&link) else { return false };
        let step = match decision {
            AuthDecision::Deny(refusal) => AuthStep::Refuse { refusal, plugin: Some(pending.plugin) },
            AuthDecision::Allow => {
                self.config.plugins.authenticate_from(pending.plugin + 1, true, &pending.credentials)
            }
            AuthDecision::NoOpinion | AuthDecision::Pending => {
                self.config.plugins.authenticate_from(pending.plugin + 1, pending.allowed, &pending.credentials)
            }
        };
        let mut out = self.outbox.remove(&link).unwrap_or_default();
        let PendingAuth { connect, credentials, held, .. } = pending;
        self.after_auth(link, step, connect, credentials, held, &mut out);
        if !out.is_empty() {
            self.outbox.insert(link, out);
            self.wakes.push_back(link);
        }
        self.publish_pending_wills();
        let _ = now;
        true
    }

    /// Moves the changes to durable state made since the last call to the end of `into`, in
    /// the order they were made; a store must apply them in that order. Empty unless
    /// [`RouterConfig::persistence`] is on. Call it after every call that may change state
    /// (the driver does, under the same lock).
    pub fn take_store_ops(&mut self, into: &mut Vec<StoreOp>) {
        into.append(&mut self.journal.ops);
    }

    /// Whether changes wait in [`take_store_ops`](Self::take_store_ops).
    #[must_use]
    pub fn has_store_ops(&self) -> bool {
        !self.journal.ops.is_empty()
    }

    /// Records the `$SYS` totals for the store (also done at every `$SYS` update); the driver
    /// calls it once more before the last write of a shutdown.
    pub fn save_totals(&mut self) {
        let totals = self.stats.totals();
        self.journal.record(|| StoreOp::Totals(totals));
    }

    /// Restores what a store kept ([`Store::load`](super::persist::Store::load)): retained
    /// messages, persistent sessions (all offline) with their subscriptions, queues, in-flight
    /// messages and QoS 2 ids, and the `$SYS` totals. Call it once, before the first link.
    ///
    /// Stored state beyond the configured limits (a queue longer than `max-queued-messages`
    /// after the limit was lowered) is dropped, counted, and removed from the store.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let Snapshot { retained, sessions, totals } = snapshot;
        for message in retained {
            if !message.payload.is_empty() && !is_sys(&message.topic) {
                self.retained.insert(message.topic.clone(), Arc::new(message));
            }
        }
        for stored in sessions {
            let client_id = stored.client_id;
            let mut session = Session::new(false, stored.level);
            session.username = stored.username.map(|name| Box::from(&*name));
            for (filter, options) in stored.subscriptions {
                self.subscriptions.insert(&filter, client_id.clone(), options);
                session.subscriptions.insert(filter, options);
            }
            session.flow_mut().qos2_received.extend(stored.qos2_received);
            let mut messages = stored.messages;
            messages.sort_by_key(|m| m.seq);
            for stored in messages {
                self.next_seq = self.next_seq.max(stored.seq + 1);
                let delivery = Delivery {
                    message: Arc::new(stored.message),
                    qos: stored.qos,
                    retain: stored.retain,
                    seq: stored.seq,
                };
                match stored.inflight {
                    Some((packet_id, state))
                        if session.flow().inflight.len() < self.config.max_inflight
                            && session.flow().queue.is_empty()
                            && session.flow().inflight_position(packet_id).is_none() =>
                    {
                        session.flow_mut().inflight.push_back(Inflight { packet_id, delivery, state });
                        self.stats.inflight += 1;
                    }
                    _ => match session.flow_mut().queue.offer(delivery, self.config.max_queued_messages) {
                        Offer::Full => {
                            self.stats.publish_dropped += 1;
                            self.stats.offline_overflow += 1;
                            let seq = stored.seq;
                            self.journal.record(|| StoreOp::Unqueue { client_id: client_id.clone(), seq });
                        }
                        Offer::Queued | Offer::DroppedQos0 => self.stats.stored += 1,
                    },
                }
            }
            self.stats.clients_disconnected += 1;
            self.sessions.insert(client_id, Box::new(session));
        }
        self.stats.add_totals(&totals);
        self.stats.retained = self.retained.len() as u64;
        self.stats.subscriptions = self.subscriptions.len() as u64;
    }

    /// The counters published under `$SYS`.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Checks the router's internal consistency and its bounds; for tests and fuzzing.
    ///
    /// # Errors
    /// A description of the first broken invariant: a queue or inflight window over its
    /// configured bound, a link mapped to a session that does not point back at it, or a
    /// counter that disagrees with what is stored.
    pub fn check_invariants(&self) -> Result<(), String> {
        let (mut inflight, mut stored) = (0u64, 0u64);
        for (client_id, session) in &self.sessions {
            if session.flow().queue.len() > self.config.max_queued_messages {
                return Err(format!(
                    "{client_id}: {} queued > {}",
                    session.flow().queue.len(),
                    self.config.max_queued_messages
                ));
            }
            if session.flow().inflight.len() > self.config.max_inflight {
                return Err(format!(
                    "{client_id}: {} in flight > {}",
                    session.flow().inflight.len(),
                    self.config.max_inflight
                ));
            }
            if let Some(link) = session.link
                && self.links.get(&link) != Some(client_id)
            {
                return Err(format!("{client_id}: its link {link} does not map back to it"));
            }
            inflight += session.flow().inflight.len() as u64;
            stored += session.flow().queue.len() as u64;
        }
        for (link, client_id) in &self.links {
            if self.sessions.get(client_id).and_then(|s| s.link) != Some(*link) {
                return Err(format!("link {link} maps to {client_id}, whose session is elsewhere"));
            }
        }
        if inflight != self.stats.inflight || stored != self.stats.stored {
            return Err(format!(
                "counters say {} in flight and {} stored; sessions hold {inflight} and {stored}",
                self.stats.inflight, self.stats.stored
            ));
        }
        Ok(())
    }

    /// Counts traffic that links saw: bytes and packets, each way.
    pub fn count_traffic(&mut self, bytes_received: u64, bytes_sent: u64, packets_received: u64, packets_sent: u64) {
        self.stats.bytes_received += bytes_received;
        self.stats.bytes_sent += bytes_sent;
        self.stats.messages_received += packets_received;
        self.stats.messages_sent += packets_sent;
    }

    /// Handles one event of `link`; packets for that link are appended to `out`.
    pub fn handle_event(&mut self, now: Instant, link: LinkId, event: LinkEvent, out: &mut Vec<Packet>) {
        self.current_link = Some(link);
        self.handle_event_of(link, event, out);
        self.current_link = None;
        self.publish_pending_wills();
        let _ = now;
    }

    /// Whether `link` should stop reading: a PUBLISH it sent went to a connected client whose
    /// queue is past the pressure mark. It may read again when [`poll_resume`](Self::poll_resume)
    /// names it, or after a pause of its own choosing, which it reports with
    /// [`pause_expired`](Self::pause_expired).
    ///
    /// Back-pressure slows publishers to what their subscribers take, instead of filling queues
    /// (and then dropping); a subscriber that stops reading is waited for once, then marked as
    /// stalled and not waited for again until it drains, so it cannot hold publishers up.
    #[must_use]
    pub fn is_paused(&self, link: LinkId) -> bool {
        self.paused.contains_key(&link)
    }

    /// The next paused link that may read again.
    #[must_use]
    pub fn poll_resume(&mut self) -> Option<LinkId> {
        self.resumes.pop_front()
    }

    /// `link` waited as long as it will: the clients it waited for are marked as stalled and
    /// every link waiting for them may read again.
    pub fn pause_expired(&mut self, link: LinkId) {
        let Some(clients) = self.paused.remove(&link) else { return };
        for client_id in clients {
            if let Some(session) = self.sessions.get_mut(&client_id) {
                session.flow_mut().stalled = true;
            }
            self.release_waiters(&client_id);
        }
    }

    /// The queue mark past which publishers into a connected client's queue are paused, and
    /// the mark below which they go on.
    fn pressure_marks(&self) -> (usize, usize) {
        let high = (self.config.max_queued_messages / 2).clamp(1, PRESSURE_HIGH);
        (high, high / 4)
    }

    /// Lets every link waiting for `client_id`'s queue go on (unless it waits for another).
    fn release_waiters(&mut self, client_id: &ByteString) {
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        if session.flow().waiters.is_empty() {
            return;
        }
        for waiter in std::mem::take(&mut session.flow_mut().waiters) {
            if let Some(waits_for) = self.paused.get_mut(&waiter) {
                waits_for.retain(|c| c != client_id);
                if waits_for.is_empty() {
                    self.paused.remove(&waiter);
                    self.resumes.push_back(waiter);
                }
            }
        }
        session.shrink();
    }

    fn handle_event_of(&mut self, link: LinkId, event: LinkEvent, out: &mut Vec<Packet>) {
        match event {
            LinkEvent::Connect(connect) => self.connect(link, connect, out),
            LinkEvent::Closed(reason) => {
                self.pending_auth.remove(&link);
                self.outbox.remove(&link);
                // A paused publisher that leaves waits for nobody (the clients' lists are
                // cleaned when they release).
                self.paused.remove(&link);
                if let Some(client_id) = self.links.remove(&link) {
                    self.detach(&client_id, link, reason);
                }
            }
            event if self.pending_auth.contains_key(&link) => {
                // Held until the authenticator answers, then handled in order.
                if let Some(pending) = self.pending_auth.get_mut(&link) {
                    if pending.held.len() < MAX_HELD_EVENTS {
                        pending.held.push(event);
                    } else {
                        self.pending_auth.remove(&link);
                        self.closes.push_back((link, CloseReason::TooManyPacketsBeforeConnack(MAX_HELD_EVENTS)));
                    }
                }
            }
            event => self.handle_event_connected(link, event, out),
        }
    }

    /// An event of a link past its CONNECT (ignored if the link has no session).
    fn handle_event_connected(&mut self, link: LinkId, event: LinkEvent, out: &mut Vec<Packet>) {
        let Some(client_id) = self.links.get(&link).cloned() else { return };
        match event {
            LinkEvent::Publish(publish) => self.publish_from(&client_id, publish, out),
            LinkEvent::Puback(id) => self.acknowledged(&client_id, id, OutState::Puback),
            LinkEvent::Pubrec(id) => {
                if let Some(session) = self.sessions.get_mut(&client_id)
                    && let Some(i) = session.flow().inflight_position(id)
                    && session.flow().inflight[i].state == OutState::Pubrec
                {
                    let clean = session.clean;
                    let flight = &mut session.flow_mut().inflight[i];
                    flight.state = OutState::Pubcomp;
                    if !clean {
                        let seq = flight.delivery.seq;
                        self.journal.record(|| StoreOp::Inflight {
                            client_id: client_id.clone(),
                            seq,
                            packet_id: id,
                            state: OutState::Pubcomp,
                        });
                    }
                }
                // PUBREL even for an unknown id, so that the client can finish its side.
                out.push(Packet::Pubrel(Ack::new(id)));
            }
            LinkEvent::Pubrel(id) => {
                if let Some(session) = self.sessions.get_mut(&client_id)
                    && session.flow().qos2_received.contains(&id)
                    && session.flow_mut().qos2_received.remove(&id)
                    && !session.clean
                {
                    self.journal.record(|| StoreOp::Qos2Released { client_id: client_id.clone(), packet_id: id });
                }
                if let Some(session) = self.sessions.get_mut(&client_id) {
                    session.shrink();
                }
                out.push(Packet::Pubcomp(Ack::new(id)));
            }
            LinkEvent::Pubcomp(id) => self.acknowledged(&client_id, id, OutState::Pubcomp),
            LinkEvent::Subscribe(subscribe) => self.subscribe(&client_id, subscribe, out),
            LinkEvent::Unsubscribe(unsubscribe) => self.unsubscribe(&client_id, unsubscribe, out),
            LinkEvent::Connect(_) | LinkEvent::Closed(_) => {}
        }
    }

    /// Appends up to `max` PUBLISH packets waiting for `link`, as far as its inflight window
    /// allows, and returns how many. Fewer than `max` means the link has nothing more to take
    /// until it is woken again (by [`poll_wake`](Self::poll_wake) or its own events).
    pub fn poll_deliveries(&mut self, link: LinkId, max: usize, out: &mut Vec<Packet>) -> usize {
        if let Some(packets) = self.outbox.remove(&link) {
            out.extend(packets);
        }
        let (_, low) = self.pressure_marks();
        let Some(client_id) = self.links.get(&link) else { return 0 };
        let Some(session) = self.sessions.get_mut(client_id) else { return 0 };
        session.wake_pending = false;
        session.has_taken_deliveries = true;
        let mut sent = 0;
        for _ in 0..max {
            let Some(qos) = session.flow().queue.front_qos() else { break };
            let packet_id = if qos == QoS::AtMostOnce {
                None
            } else {
                if session.flow().inflight.len() >= self.config.max_inflight {
                    break;
                }
                let Some(id) = session.flow_mut().next_packet_id() else { break };
                Some(id)
            };
            let Some(delivery) = session.flow_mut().queue.pop() else { break };
            out.push(Packet::Publish(publish_packet(&delivery, packet_id, false, session.level)));
            if let Some(packet_id) = packet_id {
                let state = if qos == QoS::AtLeastOnce { OutState::Puback } else { OutState::Pubrec };
                if !session.clean {
                    let seq = delivery.seq;
                    self.journal.record(|| StoreOp::Inflight { client_id: client_id.clone(), seq, packet_id, state });
                }
                session.flow_mut().inflight.push_back(Inflight { packet_id, delivery, state });
                self.stats.inflight += 1;
            }
            self.stats.publish_sent += 1;
            self.stats.stored = self.stats.stored.saturating_sub(1);
            sent += 1;
        }
        let drained = session.flow().queue.len() <= low;
        if drained && session.flow().stalled {
            session.flow_mut().stalled = false;
        }
        let release = drained && !session.flow().waiters.is_empty();
        session.shrink();
        if release {
            let client_id = client_id.clone();
            self.release_waiters(&client_id);
        }
        sent
    }

    /// The next link that has deliveries waiting and should call
    /// [`poll_deliveries`](Self::poll_deliveries).
    #[must_use]
    pub fn poll_wake(&mut self) -> Option<LinkId> {
        self.wakes.pop_front()
    }

    /// The next link the router detached and the driver must close, with the reason.
    #[must_use]
    pub fn poll_close(&mut self) -> Option<(LinkId, CloseReason)> {
        self.closes.pop_front()
    }

    /// The next event for logging and hooks.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RouterEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sys
    }

    /// Publishes `$SYS/broker/...` when due. `unix_time` is the wall-clock time in seconds
    /// since 1970, for `$SYS/broker/time`.
    pub fn handle_timeout(&mut self, now: Instant, unix_time: u64) {
        let (Some(due), Some(interval)) = (self.next_sys, self.config.sys_interval) else { return };
        if now < due {
            return;
        }
        self.next_sys = Some(now + interval);
        self.save_totals();
        self.stats.retained = self.retained.len() as u64;
        self.stats.subscriptions = self.subscriptions.len() as u64;
        self.stats.update_load(now);
        for (topic, value) in self.stats.sys_topics(now, unix_time, &self.config.version) {
            let Ok(topic) = TopicName::new(topic) else { continue };
            let message = Message {
                topic,
                payload: value.into(),
                qos: QoS::AtMostOnce,
                retain: true,
                properties: Properties::new(),
            };
            self.route(Arc::new(message));
        }
    }

    fn connect(&mut self, link: LinkId, connect: Connect, out: &mut Vec<Packet>) {
        // Copied out of the receive buffer: they may be kept while an authenticator thinks.
        let credentials = Credentials {
            client_id: ByteString::from(connect.client_id.to_string()),
            username: connect.username.as_ref().map(|u| ByteString::from(u.to_string())),
            password: connect.password.as_ref().map(|p| Bytes::copy_from_slice(p)),
        };
        let step = self.config.plugins.authenticate_from(0, false, &credentials);
        self.after_auth(link, step, connect, credentials, Vec::new(), out);
    }

    /// Acts on where the authenticator chain stands for the CONNECT of `link`; `held` are the
    /// events the link sent while it waited.
    fn after_auth(
        &mut self,
        link: LinkId,
        step: AuthStep,
        connect: Connect,
        credentials: Credentials,
        held: Vec<LinkEvent>,
        out: &mut Vec<Packet>,
    ) {
        match step {
            AuthStep::Accept => {
                self.accept(link, connect, credentials.username, out);
                for event in held {
                    if self.links.contains_key(&link) {
                        self.handle_event_connected(link, event, out);
                    }
                }
            }
            AuthStep::Refuse { refusal, plugin } => {
                let by = plugin
                    .and_then(|i| self.config.plugins.authenticators().get(i))
                    .map_or("no authenticator vouched for it", |p| p.name());
                self.events.push_back(RouterEvent::AuthRefused {
                    link,
                    username: credentials.username.clone(),
                    by: by.to_owned(),
                });
                self.refuse(link, refusal.reason_code(), out);
            }
            AuthStep::Pending { plugin, allowed } => {
                self.next_auth_id += 1;
                let id = self.next_auth_id;
                self.events.push_back(RouterEvent::AuthPending { link, id, plugin, credentials: credentials.clone() });
                self.pending_auth.insert(link, PendingAuth { id, plugin, allowed, connect, credentials, held });
            }
        }
    }

    fn accept(&mut self, link: LinkId, connect: Connect, username: Option<ByteString>, out: &mut Vec<Packet>) {
        let Connect { level, clean_start: clean, client_id, will, .. } = connect;
        let client_id = if client_id.is_empty() {
            // MQTT-3.1.3-7/8: only a clean session may ask for an identifier (3.1 may not at all).
            if !clean || level == ProtocolLevel::V3_1 {
                self.refuse(link, ReasonCode::ClientIdentifierNotValid, out);
                return;
            }
            self.assign_client_id()
        } else {
            // Stored for the session's life: copied out of the receive buffer.
            ByteString::from(client_id.to_string())
        };
        // MQTT-3.1.4-2: a second connection with the same identifier takes the session over.
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.link) {
            self.links.remove(&old);
            self.closes.push_back((old, CloseReason::SessionTakenOver));
            self.detach(&client_id, old, CloseReason::SessionTakenOver);
        }
        let session_present = match self.sessions.entry(client_id.clone()) {
            // A persistent session resumed. (A clean one that a takeover left behind lasted
            // only as long as its connection, MQTT-3.1.2-6: it is replaced below.)
            Entry::Occupied(e) if !clean && !e.get().clean => {
                self.stats.session_resumed();
                true
            }
            Entry::Occupied(e) => {
                // A clean session replaces the stored one and everything it held.
                let old = e.remove();
                self.stats.session_resumed();
                self.discard(&client_id, &old);
                if !old.clean {
                    self.journal.record(|| StoreOp::DropSession { client_id: client_id.clone() });
                }
                self.sessions.insert(client_id.clone(), Box::new(Session::new(clean, level)));
                false
            }
            Entry::Vacant(e) => {
                e.insert(Box::new(Session::new(clean, level)));
                false
            }
        };
        let Some(session) = self.sessions.get_mut(&client_id) else { return };
        session.has_taken_deliveries = false;
        session.link = Some(link);
        session.username = username.as_ref().map(|name| Box::from(&**name));
        session.level = level;
        if !clean {
            self.journal.record(|| StoreOp::Session { client_id: client_id.clone(), level, username });
        }
        session.will = will.map(|will| {
            Box::new(Will { topic: will.topic.detached(), payload: Bytes::copy_from_slice(&will.payload), ..will })
        });
        session.wake_pending = false;
        self.links.insert(link, client_id.clone());
        out.push(Packet::Connack(Connack {
            session_present,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }));
        // MQTT-4.4.0-1: resend what was in flight, PUBLISH with DUP, or PUBREL.
        for flight in &session.flow().inflight {
            out.push(match flight.state {
                OutState::Puback | OutState::Pubrec => {
                    Packet::Publish(publish_packet(&flight.delivery, Some(flight.packet_id), true, level))
                }
                OutState::Pubcomp => Packet::Pubrel(Ack::new(flight.packet_id)),
            });
        }
        self.stats.client_connected();
        let info = ClientInfo { client_id: &client_id, username: session.username.as_deref() };
        for hooks in self.config.plugins.hooks() {
            hooks.client_connected(&info);
        }
        self.events.push_back(RouterEvent::Connected { link, client_id, session_present });
    }

    fn refuse(&mut self, link: LinkId, reason: ReasonCode, out: &mut Vec<Packet>) {
        out.push(Packet::Connack(Connack { session_present: false, reason, properties: Properties::new() }));
        self.events.push_back(RouterEvent::Refused { link, reason });
    }

    fn assign_client_id(&mut self) -> ByteString {
        loop {
            self.assigned_ids += 1;
            let id: ByteString = format!(
                "auto-{:08x}-{}",
                (self.config.client_id_seed ^ (self.config.client_id_seed >> 32)) as u32,
                self.assigned_ids
            )
            .into();
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// The link of `client_id` is gone: keep or drop the session, and queue its will.
    fn detach(&mut self, client_id: &ByteString, link: LinkId, reason: CloseReason) {
        if self.sessions.get(client_id).is_none_or(|s| s.link != Some(link)) {
            return;
        }
        // Nobody waits for a client that is gone.
        self.release_waiters(client_id);
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        if session.flow().stalled {
            session.flow_mut().stalled = false;
        }
        session.link = None;
        session.wake_pending = false;
        let info = ClientInfo { client_id, username: session.username.as_deref() };
        for hooks in self.config.plugins.hooks() {
            hooks.client_disconnected(&info, &reason);
        }
        let will = session.will.take();
        if reason.publishes_will()
            && let Some(will) = will
        {
            self.pending_wills.push(Message {
                topic: will.topic,
                payload: will.payload,
                qos: will.qos,
                retain: will.retain,
                properties: will.properties,
            });
        }
        if session.clean {
            if let Some(session) = self.sessions.remove(client_id) {
                self.discard(client_id, &session);
            }
        } else {
            let dropped = if session.flow().queue.is_empty() { 0 } else { session.flow_mut().queue.drop_qos0() as u64 };
            session.shrink();
            self.stats.publish_dropped += dropped;
            self.stats.stored = self.stats.stored.saturating_sub(dropped);
        }
        self.stats.client_disconnected(!self.sessions.contains_key(client_id));
        self.events.push_back(RouterEvent::Disconnected { link, client_id: client_id.clone(), reason });
    }

    /// A session ends: its subscriptions leave the trie, its messages leave the counters.
    fn discard(&mut self, client_id: &ByteString, session: &Session) {
        self.stats.inflight = self.stats.inflight.saturating_sub(session.flow().inflight.len() as u64);
        self.stats.stored = self.stats.stored.saturating_sub(session.flow().queue.len() as u64);
        for filter in session.subscriptions.keys() {
            self.subscriptions.remove(filter, client_id);
        }
    }

    fn publish_pending_wills(&mut self) {
        while let Some(will) = self.pending_wills.pop() {
            if is_sys(&will.topic) {
                // A will may not forge $SYS any more than a PUBLISH may.
                self.stats.publish_dropped += 1;
                continue;
            }
            self.route(Arc::new(will));
        }
    }

    fn publish_from(&mut self, client_id: &ByteString, publish: Publish, out: &mut Vec<Packet>) {
        self.stats.publish_received += 1;
        let (qos, packet_id) = (publish.qos, publish.packet_id);
        let fresh = match (qos, packet_id) {
            // MQTT-4.3.3-2: a resent QoS 2 PUBLISH with an unreleased id is not delivered again.
            (QoS::ExactlyOnce, Some(id)) => {
                let Some(session) = self.sessions.get_mut(client_id) else { return };
                let fresh = session.flow_mut().qos2_received.insert(id);
                if fresh && !session.clean {
                    self.journal.record(|| StoreOp::Qos2Received { client_id: client_id.clone(), packet_id: id });
                }
                fresh
            }
            _ => true,
        };
        if fresh {
            let session = self.sessions.get(client_id);
            let info = ClientInfo { client_id, username: session.and_then(|s| s.username.as_deref()) };
            if is_sys(&publish.topic) {
                // Clients may not publish to $SYS: acknowledged, counted, not delivered.
                self.stats.publish_dropped += 1;
            } else if !self.config.plugins.authorize(&info, TopicAccess::Publish(&publish.topic)) {
                // Refused by an authoriser: acknowledged (so the client does not retry),
                // counted, not delivered.
                self.stats.publish_dropped += 1;
                self.stats.publish_denied += 1;
                self.events.push_back(RouterEvent::PublishDenied {
                    client_id: client_id.clone(),
                    topic: publish.topic.to_string(),
                });
            } else {
                let message = Message::from_publish(publish);
                for hooks in self.config.plugins.hooks() {
                    hooks.message_received(&info, &message);
                }
                self.route(Arc::new(message));
            }
        }
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => out.push(Packet::Puback(Ack::new(id))),
            (QoS::ExactlyOnce, Some(id)) => out.push(Packet::Pubrec(Ack::new(id))),
            _ => {}
        }
    }

    /// A client acknowledged an outgoing message that was in `expected` state: it is done.
    fn acknowledged(&mut self, client_id: &ByteString, id: PacketId, expected: OutState) {
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        if let Some(i) = session.flow().inflight_position(id)
            && session.flow().inflight[i].state == expected
            && let Some(done) = session.flow_mut().inflight.remove(i)
        {
            self.stats.inflight = self.stats.inflight.saturating_sub(1);
            if !session.clean {
                let seq = done.delivery.seq;
                self.journal.record(|| StoreOp::Unqueue { client_id: client_id.clone(), seq });
            }
            session.shrink();
        }
    }

    fn subscribe(&mut self, client_id: &ByteString, subscribe: Subscribe, out: &mut Vec<Packet>) {
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        let plugins = &self.config.plugins;
        let check_receive = !plugins.authorizers().is_empty();
        for (filter, options) in subscribe.filters {
            let info = ClientInfo { client_id, username: session.username.as_deref() };
            if !plugins.authorize(&info, TopicAccess::Subscribe(&filter)) {
                // Refused by an authoriser: SUBACK failure (0x80 before MQTT 5).
                reasons.push(ReasonCode::NotAuthorized);
                self.stats.subscribe_denied += 1;
                continue;
            }
            let filter = filter.detached();
            session.subscriptions.insert(filter.clone(), options);
            self.subscriptions.insert(&filter, client_id.clone(), options);
            if !session.clean {
                let filter = filter.clone();
                self.journal.record(|| StoreOp::Subscribe { client_id: client_id.clone(), filter, options });
            }
            reasons.push(ReasonCode::granted(options.qos));
            for hooks in plugins.hooks() {
                hooks.subscribed(&info, &filter, options.qos);
            }
            // MQTT-3.3.1-6: retained messages go to the new subscription, with RETAIN set.
            if filter.share_group().is_none() {
                for message in self.retained.values().filter(|m| {
                    filter.matches(&m.topic)
                        && (!check_receive || plugins.authorize(&info, TopicAccess::Receive(&m.topic)))
                }) {
                    retained.push(Delivery {
                        qos: message.qos.min(options.qos),
                        retain: true,
                        message: Arc::clone(message),
                        seq: 0,
                    });
                }
            }
        }
        out.push(Packet::Suback(Suback { packet_id: subscribe.packet_id, reasons, properties: Properties::new() }));
        for delivery in retained {
            self.deliver(client_id, delivery);
        }
    }

    fn unsubscribe(&mut self, client_id: &ByteString, unsubscribe: Unsubscribe, out: &mut Vec<Packet>) {
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = session.subscriptions.remove(filter).is_some();
            self.subscriptions.remove(filter, client_id);
            if existed && !session.clean {
                let filter = filter.detached();
                self.journal.record(|| StoreOp::Unsubscribe { client_id: client_id.clone(), filter });
            }
            if existed {
                let info = ClientInfo { client_id, username: session.username.as_deref() };
                for hooks in self.config.plugins.hooks() {
                    hooks.unsubscribed(&info, filter);
                }
            }
            reasons.push(if existed { ReasonCode::Success } else { ReasonCode::NoSubscriptionExisted });
        }
        out.push(Packet::Unsuback(Unsuback {
            packet_id: unsubscribe.packet_id,
            reasons,
            properties: Properties::new(),
        }));
    }

    /// Stores or clears a retained message and queues `message` for every matching session:
    /// one copy per session at the highest QoS it was granted (capped by the message's QoS),
    /// and one copy per shared-subscription group, to one member in turn.
    fn route(&mut self, message: Arc<Message>) {
        if message.retain {
            // MQTT-3.3.1-10/11: an empty retained message clears the topic's retained message.
            if message.payload.is_empty() {
                if self.retained.remove(&message.topic).is_some() && !is_sys(&message.topic) {
                    self.journal.record(|| StoreOp::Unretain(message.topic.detached()));
                }
            } else {
                let stored = Arc::new(message.detached());
                if !is_sys(&stored.topic) {
                    self.journal.record(|| StoreOp::Retain(Arc::clone(&stored)));
                }
                self.retained.insert(stored.topic.clone(), stored);
            }
        }
        let mut matches = std::mem::take(&mut self.matches);
        matches.collect(&self.subscriptions, &message.topic);
        let check_receive = !self.config.plugins.authorizers().is_empty();
        for client in matches.clients() {
            if check_receive && !self.may_receive(client.key(), &message.topic) {
                self.stats.publish_dropped += 1;
                continue;
            }
            let granted = client.subscriptions().iter().map(|(_, options)| options.qos).max().unwrap_or_default();
            // MQTT-3.3.1-9: forwarded to existing subscriptions with RETAIN cleared.
            let delivery =
                Delivery { qos: message.qos.min(granted), retain: false, message: Arc::clone(&message), seq: 0 };
            self.deliver(client.key(), delivery);
        }
        for group in matches.shared() {
            let members = group.members();
            if members.is_empty() {
                continue;
            }
            // Round robin, skipping members that are offline while any member is online.
            self.share_turn = self.share_turn.wrapping_add(1);
            let start = self.share_turn % members.len();
            let online = (0..members.len())
                .map(|i| &members[(start + i) % members.len()])
                .find(|(client_id, _)| self.sessions.get(client_id).is_some_and(|s| s.link.is_some()));
            let (client_id, options) = online.unwrap_or(&members[start]);
            if check_receive && !self.may_receive(client_id, &message.topic) {
                self.stats.publish_dropped += 1;
                continue;
            }
            let delivery =
                Delivery { qos: message.qos.min(options.qos), retain: false, message: Arc::clone(&message), seq: 0 };
            self.deliver(client_id, delivery);
        }
        self.matches = matches;
    }

    /// Whether the authorisers let `client_id` receive a message on `topic`.
    fn may_receive(&self, client_id: &ByteString, topic: &TopicName) -> bool {
        let username = self.sessions.get(client_id).and_then(|s| s.username.as_deref());
        self.config.plugins.authorize(&ClientInfo { client_id, username }, TopicAccess::Receive(topic))
    }

    /// Queues a delivery for one session, applying the queue's overflow policy.
    fn deliver(&mut self, client_id: &ByteString, mut delivery: Delivery) {
        let (high, _) = self.pressure_marks();
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let qos = delivery.qos;
        if session.link.is_none() && qos == QoS::AtMostOnce {
            // Offline sessions keep QoS 1 and 2 messages only (MQTT-3.1.2-5).
            self.stats.publish_dropped += 1;
            return;
        }
        delivery.seq = self.next_seq;
        self.next_seq += 1;
        let stored = (qos != QoS::AtMostOnce && !session.clean).then(|| StoreOp::Queue {
            client_id: client_id.clone(),
            seq: delivery.seq,
            qos,
            retain: delivery.retain,
            message: Arc::clone(&delivery.message),
        });
        match session.flow_mut().queue.offer(delivery, self.config.max_queued_messages) {
            Offer::Queued => {
                self.stats.stored += 1;
                if let Some(op) = stored {
                    self.journal.record(|| op);
                }
            }
            Offer::DroppedQos0 => {
                if let Some(op) = stored {
                    self.journal.record(|| op);
                }
                self.stats.publish_dropped += 1;
                if qos != QoS::AtMostOnce {
                    // A QoS 1/2 message took an evicted QoS 0 message's place.
                    self.stats.queue_evictions += 1;
                }
            }
            Offer::Full => {
                self.stats.publish_dropped += 1;
                if let Some(link) = session.link
                    && session.has_taken_deliveries
                {
                    // Its reader stalled with a full queue of QoS 1/2 messages: a slow consumer.
                    // (A link that has not yet been offered its backlog is not judged: it may
                    // have just reconnected to a queue that filled while it was away.)
                    self.stats.slow_consumers += 1;
                    self.links.remove(&link);
                    self.closes.push_back((link, CloseReason::SlowConsumer));
                    self.detach(client_id, link, CloseReason::SlowConsumer);
                } else {
                    self.stats.offline_overflow += 1;
                }
                return;
            }
        }
        // Back-pressure: the publisher waits while a connected, reading client's queue is long.
        if let (Some(publisher), Some(link)) = (self.current_link, session.link)
            && publisher != link
            && session.has_taken_deliveries
            && session.flow().queue.len() >= high
            && !session.flow().stalled
            && !session.flow().waiters.contains(&publisher)
        {
            session.flow_mut().waiters.push(publisher);
            self.paused.entry(publisher).or_default().push(client_id.clone());
        }
        if let Some(link) = session.link
            && !session.wake_pending
        {
            session.wake_pending = true;
            self.wakes.push_back(link);
        }
    }
}

/// Whether `topic` is under `$SYS/` (or is `$SYS`), where only the broker publishes.
fn is_sys(topic: &TopicName) -> bool {
    let topic = topic.as_str();
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// The PUBLISH that carries `delivery` to a client at `level`.
fn publish_packet(delivery: &Delivery, packet_id: Option<PacketId>, dup: bool, level: ProtocolLevel) -> Publish {
    let message = &delivery.message;
    Publish {
        dup,
        qos: delivery.qos,
        retain: delivery.retain,
        topic: message.topic.clone(),
        packet_id,
        properties: if level.is_v5() { message.properties.clone() } else { Properties::new() },
        payload: message.payload.clone(),
    }
}
