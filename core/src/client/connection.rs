//! One client session, carried over a series of network connections.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::connect::ping_interval;
use super::session::{Op, OutState, Session};
use super::{ConnectOptions, ConnectionState, DisconnectReason, Event, ProtocolError, RequestId, UsageError};
use crate::codec::{
    Ack, Connack, Decoder, Disconnect, Packet, PacketId, PacketType, Properties, ProtocolLevel, Publish, QoS,
    ReasonCode, Suback, Subscribe, SubscriptionOptions, Unsuback, Unsubscribe, encode, encoded_len,
};
use crate::topic::{TopicFilter, TopicName};

/// Receive-buffer capacity an idle connection may keep; a larger one is given back once drained.
const IDLE_RECV_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No transport, or the last one is over.
    Disconnected,
    /// CONNECT queued; waiting for CONNACK until the deadline, if any.
    Connecting { deadline: Option<Instant> },
    /// CONNACK accepted: packets flow.
    Connected,
}

/// An MQTT client: one session with one broker, over one transport at a time. Pure: it never
/// reads the clock or touches a socket.
///
/// Calling contract, with `now` from the caller's clock, never decreasing:
/// 1. open a transport (TCP, TLS, WebSocket, ...) and call [`start`](Self::start), which queues
///    CONNECT;
/// 2. feed input: [`handle_bytes`](Self::handle_bytes) with what the transport read,
///    [`handle_eof`](Self::handle_eof) when it ends or fails, and
///    [`handle_timeout`](Self::handle_timeout) once [`poll_timeout`](Self::poll_timeout)'s
///    instant has passed (keep-alive pings, the dead-broker verdict, the connect timeout);
/// 3. give commands whenever: [`publish`](Self::publish), [`subscribe`](Self::subscribe),
///    [`unsubscribe`](Self::unsubscribe), [`disconnect`](Self::disconnect); each returns a
///    [`RequestId`] that a later [`Event`] completes, or a [`UsageError`] and changes nothing;
/// 4. after every input or command, write what [`poll_transmit`](Self::poll_transmit) gives to
///    the transport, handle every [`poll_event`](Self::poll_event), and wait for input until
///    [`poll_timeout`](Self::poll_timeout);
/// 5. on [`Event::Disconnected`] (exactly once per `start`, always the connection's last
///    event) write what `poll_transmit` still holds if the transport can take it, close the
///    transport, and [`start`](Self::start) again on a new one to resume the session.
///
/// The session survives transports: QoS 1/2 publishes in flight and waiting for a slot,
/// subscribes and unsubscribes not yet answered, and the QoS 2 messages received and not yet
/// released. After CONNACK they are resumed: see [`Event::Connected`] and the rules below.
///
/// Rules it keeps:
/// - QoS 1/2 publishes are accepted while disconnected and sent once connected; QoS 0
///   publishes, subscribes and unsubscribes need a connection ([`UsageError::NotConnected`]).
/// - At most `max_inflight` QoS 1/2 publishes are in flight; later ones wait in a FIFO queue
///   of at most `max_pending` and go out as PUBACK and PUBCOMP free slots.
/// - Packet ids go round 1..=65535, skipping those held by any publish, subscribe or
///   unsubscribe in flight.
/// - Reconnect with session present: unacknowledged PUBLISH packets are resent in their
///   original order with DUP set, and PUBREL for QoS 2 messages in their second phase.
///   Without session present (the broker has no session, whether or not a clean one was asked
///   for): unacknowledged publishes are sent again as new messages (DUP clear), QoS 2 ones in
///   their second phase count as done ([`Event::Published`]: the broker had received them),
///   and the ids of QoS 2 messages received but not released are forgotten. Subscribes and
///   unsubscribes not yet answered are sent again either way.
/// - Incoming QoS 1 is delivered and acknowledged with PUBACK; QoS 2 is delivered on its first
///   PUBLISH and answered with PUBREC, a resend before PUBREL is answered but not delivered
///   again, and PUBREL is answered with PUBCOMP.
/// - Keep-alive: PINGREQ once `keep_alive - ping_delay` has passed since the last packet sent;
///   if nothing arrives within `keep_alive` after it, the broker is dead
///   ([`DisconnectReason::KeepAliveTimeout`]).
/// - Anything from the broker that breaks the protocol (an undecodable or oversized packet,
///   anything but CONNACK first, an acknowledgement for an id not in flight in that state,
///   ...) ends the connection with [`DisconnectReason::Protocol`] (after a DISCONNECT with the
///   reason code at MQTT 5).
#[derive(Debug)]
pub struct Connection {
    options: ConnectOptions,
    phase: Phase,
    decoder: Decoder,
    recv: BytesMut,
    out: Vec<u8>,
    events: VecDeque<Event>,
    session: Session,
    next_request: u64,
    /// The keep-alive in force on this connection (MQTT 5: the broker's Server Keep Alive).
    keep_alive: Option<Duration>,
    ping_interval: Duration,
    /// When the last packet was queued for sending on this connection.
    last_sent: Option<Instant>,
    /// When the unanswered PINGREQ was sent, if one is.
    ping_sent: Option<Instant>,
    /// The inflight window on this connection (MQTT 5: at most the broker's Receive Maximum).
    window: usize,
}

impl Connection {
    /// A client with `options` and an empty session, not connected.
    #[must_use]
    pub fn new(options: ConnectOptions) -> Self {
        let decoder = Decoder::new(options.level).with_max_packet_size(options.max_packet_size);
        let window = options.window();
        Self {
            options,
            phase: Phase::Disconnected,
            decoder,
            recv: BytesMut::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            session: Session::new(),
            next_request: 1,
            keep_alive: None,
            ping_interval: Duration::ZERO,
            last_sent: None,
            ping_sent: None,
            window,
        }
    }

    // ---- queries ----

    /// The options it was made with.
    #[must_use]
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Where the current connection stands.
    #[must_use]
    pub fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::Disconnected => ConnectionState::Disconnected,
            Phase::Connecting { .. } => ConnectionState::Connecting,
            Phase::Connected => ConnectionState::Connected,
        }
    }

    /// True between an accepting CONNACK and the end of that connection.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// QoS 1/2 publishes in the inflight window (sent, or to be sent at the next CONNACK).
    #[must_use]
    pub fn inflight_len(&self) -> usize {
        self.session.inflight_len()
    }

    /// QoS 1/2 publishes waiting for a slot in the inflight window.
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.session.pending_len()
    }

    /// Checks the session's bookkeeping and bounds; for tests and fuzzing.
    ///
    /// # Errors
    /// A description of the first broken invariant: a packet id held twice, an index that
    /// disagrees with what it indexes, more than `max_inflight` publishes in flight or more
    /// than `max_pending` waiting.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.session.check_invariants(self.options.window(), self.options.max_pending)?;
        if self.ping_sent.is_some() && self.phase != Phase::Connected {
            return Err("a PINGREQ is outstanding without a connection".to_owned());
        }
        Ok(())
    }

    // ---- inputs ----

    /// Begins a connection attempt on a fresh transport: forgets what the last transport left
    /// unread and unsent, and queues CONNECT.
    ///
    /// # Errors
    /// [`UsageError::AlreadyStarted`] while a connection is in progress or open, and the
    /// options' errors ([`UsageError::InvalidOptions`], ...) when they make no valid CONNECT.
    pub fn start(&mut self, now: Instant) -> Result<(), UsageError> {
        if self.phase != Phase::Disconnected {
            return Err(UsageError::AlreadyStarted);
        }
        let connect = self.options.connect_packet()?;
        let keep_alive = Duration::from_secs(self.options.keep_alive_secs()?.into());
        self.decoder = Decoder::new(self.options.level).with_max_packet_size(self.options.max_packet_size);
        self.recv = BytesMut::new();
        self.out.clear();
        self.set_keep_alive(keep_alive);
        self.ping_sent = None;
        self.window = self.options.window();
        let timeout = self.options.connect_timeout;
        self.phase = Phase::Connecting { deadline: (!timeout.is_zero()).then(|| now + timeout) };
        self.send(now, &connect);
        Ok(())
    }

    /// Feeds bytes read from the transport. Ignored while disconnected.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if self.phase == Phase::Disconnected {
            return;
        }
        self.recv.extend_from_slice(data);
        if let Some(reason) = self.old_format_refusal() {
            self.events.push_back(Event::Refused(reason));
            self.close(DisconnectReason::Refused(reason));
        }
        while self.phase != Phase::Disconnected {
            match self.decoder.decode(&mut self.recv) {
                Ok(Some(packet)) => {
                    // Any packet shows the broker is alive.
                    self.ping_sent = None;
                    self.on_packet(now, packet);
                }
                Ok(None) => break,
                Err(e) => self.protocol_error(now, e.into()),
            }
        }
        if self.phase == Phase::Disconnected || (self.recv.is_empty() && self.recv.capacity() > IDLE_RECV_CAPACITY) {
            // Decoded packets keep their own slices; an idle client keeps no large buffer.
            self.recv = BytesMut::new();
        }
    }

    /// The transport ended (closed by the broker, or failed): the connection is lost.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.phase != Phase::Disconnected {
            self.close(DisconnectReason::ConnectionLost);
        }
    }

    /// Acts on deadlines that have passed: the connect timeout, the keep-alive ping and the
    /// dead-broker verdict.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Connecting { deadline: Some(deadline) } if now >= deadline => {
                self.close(DisconnectReason::ConnectTimeout(self.options.connect_timeout));
            }
            Phase::Connected => {
                let Some(keep_alive) = self.keep_alive else { return };
                if let Some(sent) = self.ping_sent {
                    if now >= sent + keep_alive {
                        self.close(DisconnectReason::KeepAliveTimeout(keep_alive));
                    }
                } else if let Some(last) = self.last_sent
                    && now >= last + self.ping_interval
                {
                    self.send(now, &Packet::Pingreq);
                    self.ping_sent = Some(now);
                }
            }
            _ => {}
        }
    }

    // ---- commands ----

    /// Publishes `payload` to `topic`.
    ///
    /// QoS 0 goes out at once and is done ([`Event::Published`] follows immediately). QoS 1
    /// and 2 take a slot in the inflight window, or wait for one; they are accepted while
    /// disconnected too and sent once connected. [`Event::Published`] reports the end of the
    /// QoS flow.
    ///
    /// # Errors
    /// [`UsageError::NotConnected`] for QoS 0 without a connection,
    /// [`UsageError::TooManyPending`] when the window and the queue are full,
    /// [`UsageError::InvalidPacket`] when the PUBLISH cannot be encoded (a topic alias without
    /// MQTT 5, a payload beyond 256 MiB).
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<RequestId, UsageError> {
        let mut publish =
            Publish { dup: false, qos, retain, topic, packet_id: None, properties: Properties::new(), payload };
        let probe = Publish { packet_id: (qos != QoS::AtMostOnce).then_some(PacketId::MIN), ..publish.clone() };
        encoded_len(&Packet::Publish(probe), self.options.level).map_err(UsageError::InvalidPacket)?;
        if qos == QoS::AtMostOnce {
            if self.phase != Phase::Connected {
                return Err(UsageError::NotConnected);
            }
            self.send(now, &Packet::Publish(publish));
            let request = self.next_request();
            self.events.push_back(Event::Published(request));
            return Ok(request);
        }
        if !self.session.has_pending()
            && self.session.inflight_len() < self.window
            && let Some(id) = self.session.allocate_id()
        {
            publish.packet_id = Some(id);
            let connected = self.phase == Phase::Connected;
            if connected {
                self.send(now, &Packet::Publish(publish.clone()));
            }
            let request = self.next_request();
            let state = if qos == QoS::ExactlyOnce { OutState::Pubrec } else { OutState::Puback };
            self.session.insert(Op::Publish { request, publish, state, sent: connected });
            return Ok(request);
        }
        if self.session.pending_len() >= self.options.max_pending {
            return Err(UsageError::TooManyPending);
        }
        let request = self.next_request();
        self.session.push_pending(request, publish);
        Ok(request)
    }

    /// Subscribes to topic filters; [`Event::Subscribed`] reports the granted QoS per filter.
    /// Not answered before the connection ends, it is sent again on the next one.
    ///
    /// # Errors
    /// [`UsageError::NotConnected`], [`UsageError::NoFilters`],
    /// [`UsageError::PacketIdsExhausted`], [`UsageError::InvalidPacket`] (no-local on a
    /// shared subscription, a filter list too long for one packet).
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    ) -> Result<RequestId, UsageError> {
        self.check_request(filters.is_empty())?;
        let mut subscribe = Subscribe { packet_id: PacketId::MIN, filters, properties: Properties::new() };
        let packet = Packet::Subscribe(subscribe.clone());
        encoded_len(&packet, self.options.level).map_err(UsageError::InvalidPacket)?;
        subscribe.packet_id = self.session.allocate_id().ok_or(UsageError::PacketIdsExhausted)?;
        self.send(now, &Packet::Subscribe(subscribe.clone()));
        let request = self.next_request();
        self.session.insert(Op::Subscribe { request, subscribe });
        Ok(request)
    }

    /// Removes subscriptions; [`Event::Unsubscribed`] reports the answer. Not answered before
    /// the connection ends, it is sent again on the next one.
    ///
    /// # Errors
    /// [`UsageError::NotConnected`], [`UsageError::NoFilters`],
    /// [`UsageError::PacketIdsExhausted`], [`UsageError::InvalidPacket`].
    pub fn unsubscribe(&mut self, now: Instant, filters: Vec<TopicFilter>) -> Result<RequestId, UsageError> {
        self.check_request(filters.is_empty())?;
        let mut unsubscribe = Unsubscribe { packet_id: PacketId::MIN, filters, properties: Properties::new() };
        let packet = Packet::Unsubscribe(unsubscribe.clone());
        encoded_len(&packet, self.options.level).map_err(UsageError::InvalidPacket)?;
        unsubscribe.packet_id = self.session.allocate_id().ok_or(UsageError::PacketIdsExhausted)?;
        self.send(now, &Packet::Unsubscribe(unsubscribe.clone()));
        let request = self.next_request();
        self.session.insert(Op::Unsubscribe { request, unsubscribe });
        Ok(request)
    }

    /// Ends the connection cleanly: queues DISCONNECT (so the broker drops the will) and reports
    /// [`Event::Disconnected`] with [`DisconnectReason::Local`]. Write the remaining output,
    /// then close the transport. The session stays for a later [`start`](Self::start). Does
    /// nothing while disconnected.
    pub fn disconnect(&mut self, now: Instant) {
        if self.phase == Phase::Disconnected {
            return;
        }
        self.send(now, &Packet::Disconnect(Disconnect::normal()));
        self.close(DisconnectReason::Local);
    }

    // ---- outputs ----

    /// Appends the bytes to write to the transport (whole packets) to `out`.
    pub fn poll_transmit(&mut self, _now: Instant, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    /// The next event, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connecting { deadline } => deadline,
            Phase::Connected => {
                let keep_alive = self.keep_alive?;
                match self.ping_sent {
                    Some(sent) => Some(sent + keep_alive),
                    None => self.last_sent.map(|last| last + self.ping_interval),
                }
            }
            Phase::Disconnected => None,
        }
    }

    // ---- internals ----

    fn next_request(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    fn check_request(&self, no_filters: bool) -> Result<(), UsageError> {
        if self.phase != Phase::Connected {
            return Err(UsageError::NotConnected);
        }
        if no_filters {
            return Err(UsageError::NoFilters);
        }
        Ok(())
    }

    fn set_keep_alive(&mut self, keep_alive: Duration) {
        self.keep_alive = (!keep_alive.is_zero()).then_some(keep_alive);
        self.ping_interval = ping_interval(keep_alive, self.options.ping_delay);
    }

    /// Encodes a packet for the transport. Every packet reaching here was checked (commands
    /// probe with `encoded_len`) or cannot fail (acknowledgements, pings).
    fn send(&mut self, now: Instant, packet: &Packet) {
        let result = encode(packet, self.options.level, &mut self.out);
        debug_assert!(result.is_ok(), "{packet:?} must encode: {result:?}");
        self.last_sent = Some(now);
    }

    fn close(&mut self, reason: DisconnectReason) {
        self.phase = Phase::Disconnected;
        self.ping_sent = None;
        self.events.push_back(Event::Disconnected(reason));
    }

    fn protocol_error(&mut self, now: Instant, error: ProtocolError) {
        if self.options.level.is_v5() {
            let mut reason = error.reason_code();
            if !reason.allowed_in(PacketType::Disconnect) {
                reason = ReasonCode::ProtocolError;
            }
            self.send(now, &Packet::Disconnect(Disconnect { reason, properties: Properties::new() }));
        }
        self.close(DisconnectReason::Protocol(error));
    }

    fn unknown_id(&mut self, now: Instant, packet_type: PacketType, id: PacketId) {
        self.protocol_error(now, ProtocolError::UnknownPacketId { packet_type, packet_id: id.get() });
    }

    /// Sends waiting publishes as slots free up.
    fn fill_window(&mut self, now: Instant) {
        let connected = self.phase == Phase::Connected;
        for publish in self.session.fill_window(self.window, connected) {
            self.send(now, &Packet::Publish(publish));
        }
    }

    /// A broker that does not speak MQTT 5 may refuse a level-5 CONNECT with a CONNACK in the
    /// 3.1.1 format (return codes 1 to 5, no properties), which the level-5 decoder rejects.
    /// Read it as the refusal it is, so that the caller can fall back to 3.1.1.
    fn old_format_refusal(&self) -> Option<ReasonCode> {
        if !matches!(self.phase, Phase::Connecting { .. }) || !self.options.level.is_v5() {
            return None;
        }
        match self.recv[..] {
            [0x20, 0x02, 0x00, code, ..] if code != 0 => ReasonCode::from_v3_connack_code(code),
            _ => None,
        }
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        if let Phase::Connecting { .. } = self.phase {
            match packet {
                Packet::Connack(connack) => self.on_connack(now, connack),
                other => self.protocol_error(now, ProtocolError::ExpectedConnack(other.packet_type())),
            }
            return;
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(now, publish),
            Packet::Puback(ack) => self.on_puback(now, ack),
            Packet::Pubrec(ack) => self.on_pubrec(now, ack),
            Packet::Pubrel(ack) => {
                let known = self.session.release_qos2(ack.packet_id);
                let mut pubcomp = Ack::new(ack.packet_id);
                if !known && self.options.level.is_v5() {
                    pubcomp.reason = ReasonCode::PacketIdentifierNotFound;
                }
                self.send(now, &Packet::Pubcomp(pubcomp));
            }
            Packet::Pubcomp(ack) => self.on_pubcomp(now, ack),
            Packet::Suback(suback) => self.on_suback(now, suback),
            Packet::Unsuback(unsuback) => self.on_unsuback(now, unsuback),
            Packet::Pingresp => {}
            Packet::Disconnect(disconnect) => self.close(DisconnectReason::ByBroker(disconnect.reason)),
            other @ (Packet::Connect(_)
            | Packet::Connack(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::Pingreq
            | Packet::Auth(_)) => {
                self.protocol_error(now, ProtocolError::UnexpectedPacket(other.packet_type()));
            }
        }
    }

    fn on_connack(&mut self, now: Instant, connack: Connack) {
        if connack.reason != ReasonCode::Success {
            self.events.push_back(Event::Refused(connack.reason));
            self.close(DisconnectReason::Refused(connack.reason));
            return;
        }
        if connack.session_present && self.options.clean_session {
            return self.protocol_error(now, ProtocolError::SessionPresentOnCleanSession);
        }
        if let Some(secs) = connack.properties.server_keep_alive() {
            // MQTT 5: the broker's keep-alive replaces ours (MQTT-3.2.2-21).
            self.set_keep_alive(Duration::from_secs(secs.into()));
        }
        if let Some(max) = connack.properties.receive_maximum() {
            self.window = self.window.min(usize::from(max).max(1));
        }
        self.phase = Phase::Connected;
        let session_present = connack.session_present;
        self.events.push_back(Event::Connected { session_present });
        let (mut resend, mut done) = (Vec::new(), Vec::new());
        self.session.resume(session_present, &mut resend, &mut done);
        for packet in &resend {
            self.send(now, packet);
        }
        self.events.extend(done.into_iter().map(Event::Published));
        self.fill_window(now);
    }

    fn on_publish(&mut self, now: Instant, publish: Publish) {
        if publish.topic.is_empty() || publish.properties.topic_alias().is_some() {
            return self.protocol_error(now, ProtocolError::TopicAlias);
        }
        let Some(id) = publish.packet_id else {
            // QoS 0 (the decoder guarantees a packet id for QoS 1 and 2).
            self.events.push_back(Event::Message(publish));
            return;
        };
        match publish.qos {
            QoS::AtMostOnce | QoS::AtLeastOnce => {
                self.events.push_back(Event::Message(publish));
                self.send(now, &Packet::Puback(Ack::new(id)));
            }
            QoS::ExactlyOnce => {
                if self.session.receive_qos2(id) {
                    self.events.push_back(Event::Message(publish));
                }
                self.send(now, &Packet::Pubrec(Ack::new(id)));
            }
        }
    }

    /// Takes a finished publish out of the window, reports it and lets a waiting one in.
    fn finish_publish(&mut self, now: Instant, id: PacketId, reason: ReasonCode) {
        if let Some(Op::Publish { request, .. }) = self.session.remove(id) {
            self.events.push_back(if reason.is_error() {
                Event::PublishRejected { id: request, reason }
            } else {
                Event::Published(request)
            });
        }
        self.fill_window(now);
    }

    fn on_puback(&mut self, now: Instant, ack: Ack) {
        match self.session.get_mut(ack.packet_id) {
            Some(Op::Publish { state: OutState::Puback, .. }) => self.finish_publish(now, ack.packet_id, ack.reason),
            _ => self.unknown_id(now, PacketType::Puback, ack.packet_id),
        }
    }

    fn on_pubrec(&mut self, now: Instant, ack: Ack) {
        let id = ack.packet_id;
        match self.session.get_mut(id) {
            Some(Op::Publish { state: OutState::Pubrec, .. }) if ack.reason.is_error() => {
                // MQTT 5: a failed PUBREC ends the exchange; no PUBREL follows (4.3.3).
                self.finish_publish(now, id, ack.reason);
            }
            Some(Op::Publish { state: state @ (OutState::Pubrec | OutState::Pubcomp), .. }) => {
                // A repeated PUBREC gets the PUBREL again.
                *state = OutState::Pubcomp;
                self.send(now, &Packet::Pubrel(Ack::new(id)));
            }
            _ => self.unknown_id(now, PacketType::Pubrec, id),
        }
    }

    fn on_pubcomp(&mut self, now: Instant, ack: Ack) {
        match self.session.get_mut(ack.packet_id) {
            // PUBCOMP's reason (MQTT 5) can only say the id was not found: the message is done.
            Some(Op::Publish { state: OutState::Pubcomp, .. }) => {
                self.finish_publish(now, ack.packet_id, ReasonCode::Success);
            }
            _ => self.unknown_id(now, PacketType::Pubcomp, ack.packet_id),
        }
    }

    fn on_suback(&mut self, now: Instant, suback: Suback) {
        let id = suback.packet_id;
        let expected = match self.session.get_mut(id) {
            Some(Op::Subscribe { subscribe, .. }) => subscribe.filters.len(),
            _ => return self.unknown_id(now, PacketType::Suback, id),
        };
        if suback.reasons.len() != expected {
            let got = suback.reasons.len();
            return self.protocol_error(
                now,
                ProtocolError::ReasonCountMismatch { packet_type: PacketType::Suback, expected, got },
            );
        }
        if let Some(Op::Subscribe { request, .. }) = self.session.remove(id) {
            self.events.push_back(Event::Subscribed { id: request, granted: suback.reasons });
        }
    }

    fn on_unsuback(&mut self, now: Instant, unsuback: Unsuback) {
        let id = unsuback.packet_id;
        let expected = match self.session.get_mut(id) {
            Some(Op::Unsubscribe { unsubscribe, .. }) => unsubscribe.filters.len(),
            _ => return self.unknown_id(now, PacketType::Unsuback, id),
        };
        // Before MQTT 5 UNSUBACK carries no reason codes.
        if self.options.level == ProtocolLevel::V5 && unsuback.reasons.len() != expected {
            let got = unsuback.reasons.len();
            return self.protocol_error(
                now,
                ProtocolError::ReasonCountMismatch { packet_type: PacketType::Unsuback, expected, got },
            );
        }
        if let Some(Op::Unsubscribe { request, .. }) = self.session.remove(id) {
            self.events.push_back(Event::Unsubscribed { id: request });
        }
    }
}
