//! One network connection to a client, as the broker sees it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::{CloseReason, ProtocolError};
use crate::codec::{
    Connack, Connect, DecodeError, Decoder, EncodeError, Packet, PacketId, ProtocolLevel, Publish, ReasonCode,
    Subscribe, Unsubscribe, encode,
};

/// Receive-buffer capacity an idle link may keep; a larger one is given back once drained.
const IDLE_RECV_CAPACITY: usize = 4096;

/// The limits one link works within.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The largest packet accepted from the client, fixed header included.
    pub max_packet_size: usize,
    /// How long a new connection may take to send CONNECT (`timeout-disconnect-delay`).
    pub connect_timeout: Duration,
    /// The highest protocol level accepted. Until MQTT 5 sessions land this is 3.1.1, and a
    /// level-5 CONNECT is answered with CONNACK 1 (unacceptable protocol version) in the 3.1.1
    /// format, which MQTT 5 clients understand as "fall back to 3.1.1".
    pub max_level: ProtocolLevel,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            max_packet_size: crate::codec::DEFAULT_MAX_PACKET_SIZE,
            connect_timeout: Duration::from_secs(2),
            max_level: ProtocolLevel::V3_1_1,
        }
    }
}

/// What a link reports to the router, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The client's CONNECT; answer it by sending the router's CONNACK.
    Connect(Connect),
    /// An application message from the client.
    Publish(Publish),
    /// The client acknowledged a QoS 1 delivery.
    Puback(PacketId),
    /// The client received a QoS 2 delivery (first step).
    Pubrec(PacketId),
    /// The client releases a QoS 2 message it published.
    Pubrel(PacketId),
    /// The client completed a QoS 2 delivery (last step).
    Pubcomp(PacketId),
    /// The client subscribes.
    Subscribe(Subscribe),
    /// The client unsubscribes.
    Unsubscribe(Unsubscribe),
    /// The link is over; always the last event, exactly once.
    Closed(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for CONNECT until the deadline.
    AwaitingConnect { deadline: Instant },
    /// CONNECT received, CONNACK not yet sent.
    Connecting,
    /// Accepted: packets flow.
    Connected,
    /// Over: output may still be flushed, input is ignored.
    Closed,
}

/// What a link holds only while it has something in hand: bytes received and not yet decoded,
/// events not yet taken, bytes encoded and not yet taken.
#[derive(Debug, Default)]
struct Buffers {
    recv: BytesMut,
    events: VecDeque<LinkEvent>,
    pending: Vec<u8>,
}

/// The broker's side of one network connection: framing, the CONNECT phase, keep-alive.
///
/// It decodes what the client sends into [`LinkEvent`]s for the router and encodes what the
/// router sends back. Session state (subscriptions, QoS flows, queues) is the router's, so a
/// link can run on any thread and only meets the router to hand over events and collect packets.
///
/// Calling contract, with `now` from the caller's clock, never decreasing:
/// 1. feed input: [`handle_bytes`](Self::handle_bytes), [`handle_eof`](Self::handle_eof),
///    [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) passes;
/// 2. drain [`poll_event`](Self::poll_event) and hand each event to the router;
/// 3. send what the router answers with [`send`](Self::send), CONNACK included;
/// 4. write [`poll_transmit`](Self::poll_transmit)'s bytes to the network; once
///    [`is_finished`](Self::is_finished), close the network connection.
#[derive(Debug)]
pub struct ServerConnection {
    /// The highest protocol level accepted (the rest of the link's config lives in the decoder
    /// and the connect deadline).
    max_level: ProtocolLevel,
    decoder: Decoder,
    /// Boxed, and dropped while empty: an idle link holds none of them.
    buffers: Option<Box<Buffers>>,
    phase: Phase,
    level: ProtocolLevel,
    /// 1.5 times the client's keep-alive, or `None` when keep-alive is off.
    keep_alive_limit: Option<Duration>,
    last_packet: Instant,
    /// Packets decoded and encoded since [`take_packet_counts`](Self::take_packet_counts).
    packets_received: u32,
    packets_sent: u32,
    /// PINGREQs received between CONNECT and CONNACK, answered after the CONNACK.
    pings_owed: u32,
}

impl ServerConnection {
    /// A link whose network connection was accepted at `now`.
    #[must_use]
    pub fn new(now: Instant, config: &LinkConfig) -> Self {
        let decoder = Decoder::new(ProtocolLevel::V3_1_1).with_max_packet_size(config.max_packet_size);
        Self {
            phase: Phase::AwaitingConnect { deadline: now + config.connect_timeout },
            max_level: config.max_level,
            decoder,
            level: ProtocolLevel::V3_1_1,
            keep_alive_limit: None,
            last_packet: now,
            buffers: None,
            packets_received: 0,
            packets_sent: 0,
            pings_owed: 0,
        }
    }

    /// The protocol level the client connected with (3.1.1 until CONNECT says otherwise).
    #[must_use]
    pub fn level(&self) -> ProtocolLevel {
        self.level
    }

    /// True once the link is over and everything it had to send has been taken.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Closed && self.pending_len() == 0
    }

    /// True once the link is over (output may still be waiting).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Packets decoded from the client and encoded for it since the last call, for the
    /// broker's counters; the counts start again at zero.
    #[must_use]
    pub fn take_packet_counts(&mut self) -> (u64, u64) {
        let counts = (u64::from(self.packets_received), u64::from(self.packets_sent));
        (self.packets_received, self.packets_sent) = (0, 0);
        counts
    }

    /// Bytes encoded and not yet taken by [`poll_transmit`](Self::poll_transmit).
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.pending.len())
    }

    /// The buffers, made on first use.
    fn buffers(&mut self) -> &mut Buffers {
        self.buffers.get_or_insert_with(Box::default)
    }

    /// Gives back the memory of buffers that are empty now, so that an idle link holds as
    /// little as possible. Call it when the link goes quiet (the driver does before waiting).
    pub fn shrink_idle(&mut self) {
        let Some(buffers) = &mut self.buffers else { return };
        if buffers.events.is_empty() && buffers.pending.is_empty() && buffers.recv.is_empty() {
            self.buffers = None;
            return;
        }
        if buffers.events.is_empty() {
            buffers.events = VecDeque::new();
        }
        if buffers.pending.is_empty() {
            buffers.pending = Vec::new();
        }
        if buffers.recv.is_empty() {
            buffers.recv = BytesMut::new();
        }
    }

    /// Feeds bytes received from the client.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.buffers().recv.extend_from_slice(data);
        while self.phase != Phase::Closed {
            let recv = &mut self.buffers.get_or_insert_with(Box::default).recv;
            match self.decoder.decode(recv) {
                Ok(Some(packet)) => {
                    self.last_packet = now;
                    self.packets_received = self.packets_received.saturating_add(1);
                    self.on_packet(packet);
                }
                Ok(None) => break,
                Err(e) => {
                    self.on_decode_error(e);
                    break;
                }
            }
        }
        let closed = self.phase == Phase::Closed;
        let recv = &mut self.buffers().recv;
        if closed || (recv.is_empty() && recv.capacity() > IDLE_RECV_CAPACITY) {
            // An idle link keeps no large buffer; packets still alive keep their own slices.
            *recv = BytesMut::new();
        }
    }

    /// The client closed its side of the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        self.close(CloseReason::ConnectionLost);
    }

    /// Checks deadlines: the connect timeout and keep-alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::AwaitingConnect { deadline } if now >= deadline => {
                // Until a whole packet arrives, `last_packet` is when the link was accepted.
                self.close(CloseReason::ConnectTimeout(deadline.saturating_duration_since(self.last_packet)));
            }
            Phase::Connected | Phase::Connecting => {
                if let Some(limit) = self.keep_alive_limit
                    && now >= self.last_packet + limit
                {
                    self.close(CloseReason::KeepAliveTimeout(limit));
                }
            }
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingConnect { deadline } => Some(deadline),
            Phase::Connected | Phase::Connecting => self.keep_alive_limit.map(|limit| self.last_packet + limit),
            Phase::Closed => None,
        }
    }

    /// The next event for the router.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.buffers.as_mut()?.events.pop_front()
    }

    /// Appends the bytes to send to `out`.
    pub fn poll_transmit(&mut self, _now: Instant, out: &mut Vec<u8>) {
        let Some(buffers) = &mut self.buffers else { return };
        if out.is_empty() {
            std::mem::swap(out, &mut buffers.pending);
        } else {
            out.append(&mut buffers.pending);
        }
    }

    /// Answers the CONNECT: a successful CONNACK opens the link, any other closes it.
    fn send_connack(&mut self, connack: &Connack) -> Result<(), EncodeError> {
        if self.phase != Phase::Connecting {
            return Ok(());
        }
        encode(&Packet::Connack(connack.clone()), self.level, &mut self.buffers().pending)?;
        self.packets_sent = self.packets_sent.saturating_add(1);
        if connack.reason == ReasonCode::Success {
            self.phase = Phase::Connected;
            for _ in 0..std::mem::take(&mut self.pings_owed) {
                self.send_infallible(&Packet::Pingresp, self.level);
            }
        } else {
            self.close(CloseReason::Refused(connack.reason));
        }
        Ok(())
    }

    /// Sends a packet to the client (ignored once the link is closed).
    ///
    /// A CONNACK answers the CONNECT: success opens the link, anything else closes it after
    /// the CONNACK is sent. Other packets are only sent on an open link.
    ///
    /// # Errors
    /// [`EncodeError`] if the packet cannot be encoded at the client's level.
    pub fn send(&mut self, packet: &Packet) -> Result<(), EncodeError> {
        if let Packet::Connack(connack) = packet {
            return self.send_connack(connack);
        }
        if self.phase != Phase::Connected {
            return Ok(());
        }
        let level = self.level;
        encode(packet, level, &mut self.buffers().pending)?;
        self.packets_sent = self.packets_sent.saturating_add(1);
        Ok(())
    }

    /// Closes the link for `reason`; the router or driver decided it. Output already encoded
    /// is still delivered. Emits [`LinkEvent::Closed`] unless the link was already closed.
    pub fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.buffers().events.push_back(LinkEvent::Closed(reason));
    }

    fn on_packet(&mut self, packet: Packet) {
        let event = match (self.phase, packet) {
            (Phase::AwaitingConnect { .. }, Packet::Connect(connect)) => {
                if connect.level > self.max_level {
                    self.refuse_level(connect.level.level());
                    return;
                }
                self.level = connect.level;
                self.decoder.set_level(connect.level);
                // Keep-alive 0 turns it off (MQTT-3.1.2-10); otherwise allow 1.5 times it.
                self.keep_alive_limit =
                    (connect.keep_alive > 0).then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
                self.phase = Phase::Connecting;
                LinkEvent::Connect(connect)
            }
            (Phase::AwaitingConnect { .. }, other) => {
                return self.protocol_error(ProtocolError::ExpectedConnect(other.packet_type()));
            }
            (_, Packet::Connect(_)) => return self.protocol_error(ProtocolError::SecondConnect),
            (Phase::Connecting, Packet::Pingreq) => {
                // Pipelined behind CONNECT: answered right after the CONNACK (MQTT-3.2.0-1).
                self.pings_owed += 1;
                return;
            }
            (_, Packet::Pingreq) => {
                // Answered here: the router has nothing to say about it.
                self.send_infallible(&Packet::Pingresp, self.level);
                return;
            }
            (_, Packet::Publish(p)) => LinkEvent::Publish(p),
            (_, Packet::Puback(a)) => LinkEvent::Puback(a.packet_id),
            (_, Packet::Pubrec(a)) => LinkEvent::Pubrec(a.packet_id),
            (_, Packet::Pubrel(a)) => LinkEvent::Pubrel(a.packet_id),
            (_, Packet::Pubcomp(a)) => LinkEvent::Pubcomp(a.packet_id),
            (_, Packet::Subscribe(s)) => LinkEvent::Subscribe(s),
            (_, Packet::Unsubscribe(u)) => LinkEvent::Unsubscribe(u),
            (_, Packet::Disconnect(_)) => {
                self.close(CloseReason::ClientDisconnected);
                return;
            }
            (
                _,
                other @ (Packet::Connack(_)
                | Packet::Suback(_)
                | Packet::Unsuback(_)
                | Packet::Pingresp
                | Packet::Auth(_)),
            ) => return self.protocol_error(ProtocolError::UnexpectedPacket(other.packet_type())),
        };
        self.buffers().events.push_back(event);
    }

    fn on_decode_error(&mut self, error: DecodeError) {
        match error {
            // MQTT-3.1.2-2: answer an unknown level with return code 1, then close.
            DecodeError::UnsupportedProtocolLevel(level) if matches!(self.phase, Phase::AwaitingConnect { .. }) => {
                self.refuse_level(level);
            }
            error => self.protocol_error(ProtocolError::Decode(error)),
        }
    }

    /// Answers CONNECT for an unsupported level with CONNACK 1 in the 3.1.1 format, and closes.
    fn refuse_level(&mut self, level: u8) {
        let connack = Connack {
            session_present: false,
            reason: ReasonCode::UnsupportedProtocolVersion,
            properties: crate::codec::Properties::new(),
        };
        self.send_infallible(&Packet::Connack(connack), ProtocolLevel::V3_1_1);
        self.close(CloseReason::UnsupportedProtocolLevel(level));
    }

    /// Encodes a packet that cannot fail to encode (fixed shape, no caller data).
    fn send_infallible(&mut self, packet: &Packet, level: ProtocolLevel) {
        let result = encode(packet, level, &mut self.buffers().pending);
        self.packets_sent = self.packets_sent.saturating_add(1);
        debug_assert!(result.is_ok(), "{packet:?} must encode: {result:?}");
    }

    fn protocol_error(&mut self, error: ProtocolError) {
        self.close(CloseReason::Protocol(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodeError, Properties};

    const CONNECT_311_KA10: &[u8] = &[0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 2, b'i', b'd'];
    const CONNECT_311_KA0: &[u8] = &[0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 2, b'i', b'd'];

    fn link(t0: Instant) -> ServerConnection {
        ServerConnection::new(t0, &LinkConfig::default())
    }

    fn events(c: &mut ServerConnection) -> Vec<LinkEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn output(c: &mut ServerConnection, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        c.poll_transmit(now, &mut out);
        out
    }

    fn accept(c: &mut ServerConnection) {
        let connack = Connack { session_present: false, reason: ReasonCode::Success, properties: Properties::new() };
        c.send(&Packet::Connack(connack)).unwrap();
    }

    fn closed_with(c: &mut ServerConnection) -> CloseReason {
        match events(c).pop() {
            Some(LinkEvent::Closed(reason)) => reason,
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[test]
    fn connect_then_ping() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        assert!(matches!(events(&mut c)[..], [LinkEvent::Connect(ref k)] if &*k.client_id == "id"));
        accept(&mut c);
        assert_eq!(output(&mut c, t0), [0x20, 2, 0, 0]);
        c.handle_bytes(t0, &[0xC0, 0x00]);
        assert_eq!(output(&mut c, t0), [0xD0, 0x00]);
        assert!(events(&mut c).is_empty());
    }

    #[test]
    fn connect_timeout_closes_a_silent_link() {
        let t0 = Instant::now();
        let mut c = link(t0);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        c.handle_timeout(t0 + Duration::from_millis(1999));
        assert!(events(&mut c).is_empty());
        c.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(closed_with(&mut c), CloseReason::ConnectTimeout(Duration::from_secs(2)));
        assert!(c.is_finished());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn half_a_connect_then_silence_times_out() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, &CONNECT_311_KA10[..7]);
        c.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(closed_with(&mut c), CloseReason::ConnectTimeout(Duration::from_secs(2)));
    }

    #[test]
    fn keep_alive_allows_one_and_a_half_periods() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        accept(&mut c);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(15)));
        let t1 = t0 + Duration::from_secs(14);
        c.handle_bytes(t1, &[0xC0, 0x00]);
        c.handle_timeout(t0 + Duration::from_secs(15));
        assert!(!c.is_closed());
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(15)));
        // Half a packet is not a packet: it does not keep the link alive.
        c.handle_bytes(t1 + Duration::from_secs(1), &[0x30]);
        c.handle_timeout(t1 + Duration::from_secs(15));
        let reason = events(&mut c).pop();
        assert_eq!(reason, Some(LinkEvent::Closed(CloseReason::KeepAliveTimeout(Duration::from_secs(15)))));
    }

    #[test]
    fn keep_alive_zero_means_none() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA0);
        accept(&mut c);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn the_first_packet_must_be_connect() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, &[0xC0, 0x00]);
        assert_eq!(
            closed_with(&mut c),
            CloseReason::Protocol(ProtocolError::ExpectedConnect(crate::codec::PacketType::Pingreq))
        );
        assert!(output(&mut c, t0).is_empty());
    }

    #[test]
    fn a_pingreq_pipelined_behind_connect_is_answered_after_the_connack() {
        let t0 = Instant::now();
        let mut c = link(t0);
        let mut bytes = CONNECT_311_KA10.to_vec();
        bytes.extend_from_slice(&[0xC0, 0x00]);
        c.handle_bytes(t0, &bytes);
        assert!(matches!(c.poll_event(), Some(LinkEvent::Connect(_))));
        assert!(output(&mut c, t0).is_empty(), "nothing before the CONNACK");
        accept(&mut c);
        assert_eq!(output(&mut c, t0), [0x20, 0x02, 0x00, 0x00, 0xD0, 0x00]);
    }

    #[test]
    fn a_second_connect_closes_the_link() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        accept(&mut c);
        c.handle_bytes(t0, CONNECT_311_KA10);
        assert_eq!(closed_with(&mut c), CloseReason::Protocol(ProtocolError::SecondConnect));
    }

    #[test]
    fn reserved_type_and_oversize_packets_close_at_once() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, &[0x00]);
        assert_eq!(closed_with(&mut c), CloseReason::Protocol(DecodeError::ReservedPacketType.into()));

        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        accept(&mut c);
        // A PUBLISH announcing 256 MB: refused on its header.
        c.handle_bytes(t0, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
        let reason = closed_with(&mut c);
        assert!(
            matches!(reason, CloseReason::Protocol(ProtocolError::Decode(DecodeError::PacketTooLarge { .. }))),
            "{reason:?}"
        );
    }

    #[test]
    fn mqtt5_and_unknown_levels_get_connack_1() {
        let t0 = Instant::now();
        for level in [5u8, 6] {
            let mut c = link(t0);
            let mut connect = vec![0x10, 0x0F, 0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 10];
            if level == 5 {
                connect.push(0); // empty properties
            } else {
                connect[1] -= 1;
            }
            connect.extend_from_slice(&[0, 2, b'i', b'd']);
            c.handle_bytes(t0, &connect);
            assert_eq!(output(&mut c, t0), [0x20, 2, 0, 1], "level {level}");
            assert_eq!(closed_with(&mut c), CloseReason::UnsupportedProtocolLevel(level));
            assert!(c.is_finished());
        }
    }

    #[test]
    fn disconnect_and_eof_close_once() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        accept(&mut c);
        events(&mut c);
        c.handle_bytes(t0, &[0xE0, 0x00]);
        c.handle_eof(t0);
        assert_eq!(events(&mut c), [LinkEvent::Closed(CloseReason::ClientDisconnected)]);

        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        events(&mut c);
        c.handle_eof(t0);
        c.handle_eof(t0);
        assert_eq!(events(&mut c), [LinkEvent::Closed(CloseReason::ConnectionLost)]);
    }

    #[test]
    fn a_refused_connect_sends_connack_and_closes() {
        let t0 = Instant::now();
        let mut c = link(t0);
        c.handle_bytes(t0, CONNECT_311_KA10);
        events(&mut c);
        let refuse =
            Connack { session_present: false, reason: ReasonCode::NotAuthorized, properties: Properties::new() };
        c.send(&Packet::Connack(refuse)).unwrap();
        assert_eq!(output(&mut c, t0), [0x20, 2, 0, 5]);
        assert_eq!(closed_with(&mut c), CloseReason::Refused(ReasonCode::NotAuthorized));
    }
}
