//! One bench connection: the MQTT handshake ([`handshake`]), then a hand-written poll over
//! reading, writing and one timer ([`Link`]) that publishes, subscribes or just holds the
//! connection open.
//!
//! It speaks MQTT 3.1.1 through the core's codec directly: a publisher copies a pre-encoded
//! PUBLISH and patches its header ([`PublishTemplate`]), writes in batches of up to
//! [`BATCH_BYTES`], and reads acknowledgements in big chunks; a subscriber decodes whole
//! chunks and answers QoS 1/2 in one write. Counts go to a local [`Delta`] that is handed to
//! the shared totals once per poll, so no lock is taken per message.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::channel::oneshot;
use futures::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use moat_mqtt_core::codec::{
    Ack, Connect, Decoder, Disconnect, Packet, PacketId, Properties, ProtocolLevel, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, encode,
};
use moat_mqtt_core::driver::{BoxFuture, Runtime};
use moat_mqtt_core::topic::TopicFilter;

use super::payload::{Header, PublishTemplate, now_ns};
use super::stats::{Delta, SeqTracker, Shared};
use crate::client_opts::without_os_error;

/// Bytes of PUBLISH packets a publisher puts in one write.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// The largest read; reads grow towards it while they come back full.
const MAX_READ: usize = 256 * 1024;

/// The first read of a link that expects little (an idle connection or a publisher's acks).
const SMALL_READ: usize = 512;

/// Unwritten output beyond which a link stops reading (and so stops making more output).
const OUTPUT_LIMIT: usize = 1024 * 1024;

/// Read-process-write rounds in one poll before the link lets other tasks run.
const ROUNDS_PER_POLL: usize = 32;

/// The protocol level bench connections speak.
const LEVEL: ProtocolLevel = ProtocolLevel::V3_1_1;

/// How a connection logs in.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    /// Keep-alive in seconds; 0: none.
    pub(crate) keep_alive: u16,
    /// User name, if any.
    pub(crate) username: Option<String>,
    /// Password, if any.
    pub(crate) password: Option<String>,
}

/// Opens the MQTT session on a fresh transport: CONNECT (clean session) and CONNACK, then
/// SUBSCRIBE and SUBACK if `filters` is not empty. Returns whatever was read beyond them.
///
/// # Errors
/// A message naming the client and what went wrong: I/O, a refusal, a refused filter, or an
/// unexpected packet.
pub(crate) async fn handshake<S>(
    stream: &mut S,
    client_id: &str,
    login: &Login,
    filters: &[TopicFilter],
    qos: QoS,
) -> Result<BytesMut, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connect = Connect {
        level: LEVEL,
        clean_start: true,
        keep_alive: login.keep_alive,
        client_id: client_id.into(),
        will: None,
        username: login.username.as_deref().map(Into::into),
        password: login.password.as_ref().map(|p| bytes::Bytes::copy_from_slice(p.as_bytes())),
        properties: Properties::new(),
    };
    let mut out = Vec::new();
    encode(&Packet::Connect(connect), LEVEL, &mut out)
        .map_err(|e| format!("{client_id}: cannot encode CONNECT: {e}"))?;
    let io = |what: &str, e: io::Error| format!("{client_id}: {what}: {}", without_os_error(&e.to_string()));
    stream.write_all(&out).await.map_err(|e| io("cannot send CONNECT", e))?;
    stream.flush().await.map_err(|e| io("cannot send CONNECT", e))?;
    let decoder = Decoder::new(LEVEL);
    let mut inbox = BytesMut::new();
    match read_packet(stream, &decoder, &mut inbox).await.map_err(|e| io("no CONNACK", e))? {
        Packet::Connack(ack) if ack.reason == ReasonCode::Success => {}
        Packet::Connack(ack) => return Err(format!("{client_id}: the broker refused the connection: {}", ack.reason)),
        other => return Err(format!("{client_id}: expected CONNACK, got {}", other.packet_type())),
    }
    if filters.is_empty() {
        return Ok(inbox);
    }
    let subscribe = Subscribe {
        packet_id: PacketId::MIN,
        filters: filters.iter().map(|f| (f.clone(), SubscriptionOptions::qos(qos))).collect(),
        properties: Properties::new(),
    };
    out.clear();
    encode(&Packet::Subscribe(subscribe), LEVEL, &mut out)
        .map_err(|e| format!("{client_id}: cannot encode SUBSCRIBE: {e}"))?;
    stream.write_all(&out).await.map_err(|e| io("cannot send SUBSCRIBE", e))?;
    stream.flush().await.map_err(|e| io("cannot send SUBSCRIBE", e))?;
    match read_packet(stream, &decoder, &mut inbox).await.map_err(|e| io("no SUBACK", e))? {
        Packet::Suback(ack) => {
            if let Some((filter, reason)) = filters.iter().zip(&ack.reasons).find(|(_, r)| r.granted_qos().is_none()) {
                return Err(format!(
                    "{client_id}: the broker refused the subscription to {}: {reason}",
                    filter.as_str()
                ));
            }
            Ok(inbox)
        }
        other => Err(format!("{client_id}: expected SUBACK, got {}", other.packet_type())),
    }
}

/// Reads until one whole packet is decoded.
async fn read_packet<S: AsyncRead + Unpin>(
    stream: &mut S,
    decoder: &Decoder,
    inbox: &mut BytesMut,
) -> io::Result<Packet> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(packet) = decoder.decode(inbox).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
            return Ok(packet);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the broker closed the connection"));
        }
        inbox.extend_from_slice(&chunk[..n]);
    }
}

/// What a publishing link sends and how fast.
#[derive(Debug)]
pub(crate) struct PublishPlan {
    /// The packet to copy.
    pub(crate) template: PublishTemplate,
    /// Its QoS.
    pub(crate) qos: QoS,
    /// Messages to send; `None`: until `end` or a stop.
    pub(crate) limit: Option<u64>,
    /// Messages per second; `None`: as fast as the connection takes them.
    pub(crate) rate: Option<f64>,
    /// When to send the first message.
    pub(crate) start: Instant,
    /// When to stop sending, if a time bound was set.
    pub(crate) end: Option<Instant>,
    /// QoS 1/2 messages unacknowledged at once, at most.
    pub(crate) window: u16,
    /// How long to wait for the last acknowledgements once sending is over.
    pub(crate) drain: Duration,
}

/// The state of a publishing link.
#[derive(Debug)]
struct Publisher {
    plan: PublishPlan,
    /// Messages sent, which is also the next sequence number.
    seq: u64,
    /// QoS 1/2 messages not yet completed.
    inflight: u32,
    /// Packet ids in use, one bit each.
    in_use: Vec<u64>,
    /// Where to look for a free packet id first.
    next_id: u16,
}

impl Publisher {
    fn new(plan: PublishPlan) -> Self {
        let in_use = if plan.qos == QoS::AtMostOnce { Vec::new() } else { vec![0; 1024] };
        Self { plan, seq: 0, inflight: 0, in_use, next_id: 1 }
    }

    /// Takes a free packet id (the window keeps one free).
    fn take_id(&mut self) -> u16 {
        loop {
            let id = self.next_id;
            self.next_id = if id == u16::MAX { 1 } else { id + 1 };
            let (word, bit) = (usize::from(id / 64), id % 64);
            if self.in_use[word] & (1 << bit) == 0 {
                self.in_use[word] |= 1 << bit;
                return id;
            }
        }
    }

    /// Frees packet id `id`; false if it was not in use.
    fn free_id(&mut self, id: u16) -> bool {
        let (word, bit) = (usize::from(id / 64), id % 64);
        let Some(w) = self.in_use.get_mut(word) else { return false };
        let was = *w & (1 << bit) != 0;
        *w &= !(1 << bit);
        was
    }

    /// True when the limit is reached or the end time has passed.
    fn finished(&self, now: Instant) -> bool {
        self.plan.limit.is_some_and(|limit| self.seq >= limit) || self.plan.end.is_some_and(|end| now >= end)
    }

    /// Messages that may go out now, and when more may if none can.
    fn allowance(&self, now: Instant) -> (u64, Option<Instant>) {
        let mut n = u64::MAX;
        if let Some(limit) = self.plan.limit {
            n = n.min(limit - self.seq);
        }
        if self.plan.qos != QoS::AtMostOnce {
            n = n.min(u64::from(self.plan.window).saturating_sub(u64::from(self.inflight)));
        }
        if let Some(rate) = self.plan.rate {
            let elapsed = now.saturating_duration_since(self.plan.start).as_secs_f64();
            // Message k is due at start + k / rate; those due by now and not yet sent may go.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let due = (elapsed * rate).floor() as u64 + 1;
            let allowed = due.saturating_sub(self.seq);
            if allowed == 0 {
                #[allow(clippy::cast_precision_loss)]
                let next = self.plan.start + Duration::from_secs_f64(self.seq as f64 / rate);
                return (0, Some(next));
            }
            n = n.min(allowed);
        }
        (n, None)
    }
}

/// What a link does once connected.
#[derive(Debug)]
pub(crate) enum Role {
    /// Publishes.
    Publisher(Box<PublishPlan>),
    /// Receives and acknowledges what its subscriptions bring.
    Subscriber,
    /// Holds the connection open (answering nothing but keep-alive).
    Idle,
}

/// The role's state while running.
#[derive(Debug)]
enum State {
    Publisher(Box<Publisher>),
    Subscriber(Box<SeqTracker>),
    Idle,
}

/// How far a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Publishing, or receiving.
    Running,
    /// A publisher that has sent everything, waiting for its acknowledgements until then.
    Draining(Instant),
    /// DISCONNECT queued: writing it, then closing.
    Closing,
}

/// What a link reports when it ends.
#[derive(Debug)]
pub(crate) enum LinkReport {
    /// A publisher and the messages it sent.
    Publisher {
        /// PUBLISH packets written.
        sent: u64,
    },
    /// A subscriber and what it saw of each publisher.
    Subscriber(Box<SeqTracker>),
    /// An idle connection.
    Idle,
}

/// A connection driven by its own poll: a future that ends when the link is closed.
pub(crate) struct Link<S, R> {
    stream: S,
    runtime: R,
    shared: Arc<Shared>,
    client_id: String,
    decoder: Decoder,
    inbox: BytesMut,
    read_size: usize,
    out: Vec<u8>,
    written: usize,
    needs_flush: bool,
    state: State,
    phase: Phase,
    stop: Option<oneshot::Receiver<()>>,
    keep_alive: Option<Duration>,
    last_write: Instant,
    timer: Option<(Instant, BoxFuture)>,
    delta: Delta,
}

impl<S, R> Link<S, R>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Runtime,
{
    /// A link over `stream` after [`handshake`] (with `inbox`, what it read beyond), in
    /// `role`. It stops when `stop` fires (or its sender is dropped): a publisher then stops
    /// sending and waits for its acknowledgements, the others disconnect at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        stream: S,
        runtime: R,
        shared: Arc<Shared>,
        client_id: String,
        inbox: BytesMut,
        role: Role,
        keep_alive: u16,
        stop: oneshot::Receiver<()>,
    ) -> Self {
        let (state, read_size) = match role {
            Role::Publisher(plan) => (State::Publisher(Box::new(Publisher::new(*plan))), SMALL_READ),
            Role::Subscriber => (State::Subscriber(Box::default()), 16 * 1024),
            Role::Idle => (State::Idle, SMALL_READ),
        };
        let now = runtime.now();
        Self {
            stream,
            runtime,
            shared,
            client_id,
            decoder: Decoder::new(LEVEL),
            inbox,
            read_size,
            out: Vec::new(),
            written: 0,
            needs_flush: false,
            state,
            phase: Phase::Running,
            stop: Some(stop),
            keep_alive: (keep_alive > 0).then(|| Duration::from_secs(keep_alive.into())),
            last_write: now,
            timer: None,
            delta: Delta::default(),
        }
    }

    /// One round: stop signal, read, publish, write, keep-alive, phase changes, timer.
    fn round(&mut self, cx: &mut Context<'_>) -> Step {
        let now = self.runtime.now();
        let mut progress = false;
        if let Some(stop) = &mut self.stop
            && Pin::new(stop).poll(cx).is_ready()
        {
            // Sent, or its sender dropped: either way, stop.
            self.stop = None;
            progress = true;
            self.begin_stop(now);
        }
        // Read, unless too much output is waiting already.
        if self.out.len() - self.written < OUTPUT_LIMIT {
            match self.poll_read(cx, now) {
                Poll::Ready(Ok(true)) => progress = true,
                Poll::Ready(Ok(false)) if self.phase == Phase::Closing => return Step::Closed,
                Poll::Ready(Ok(false)) => return Step::Failed("the broker closed the connection".to_owned()),
                Poll::Ready(Err(e)) => return Step::Failed(e),
                Poll::Pending => {}
            }
        }
        let mut wake_at = None;
        let mut produced = false;
        if self.phase == Phase::Running && self.written == self.out.len() {
            match self.publish(now) {
                Some(Ok(())) => produced = true,
                Some(Err(at)) => wake_at = Some(at),
                None => {}
            }
        }
        match self.poll_write(cx) {
            Ok(moved) => progress |= moved,
            Err(e) => return Step::Failed(e),
        }
        if self.written == self.out.len() && !self.needs_flush {
            if let Some(keep_alive) = self.keep_alive {
                let due = self.last_write + keep_alive * 3 / 4;
                if now >= due {
                    self.queue(&Packet::Pingreq);
                    self.last_write = now;
                    progress = true;
                } else {
                    wake_at = earliest(wake_at, due);
                }
            }
            match self.phase {
                Phase::Running => {
                    if let State::Publisher(p) = &self.state
                        && let Some(end) = p.plan.end
                    {
                        wake_at = earliest(wake_at, end);
                    }
                }
                Phase::Draining(until) => {
                    let inflight = match &self.state {
                        State::Publisher(p) => p.inflight,
                        _ => 0,
                    };
                    if inflight == 0 || now >= until {
                        if inflight > 0 {
                            self.shared.error(format!(
                                "{}: {inflight} message(s) still unacknowledged after the drain time",
                                self.client_id
                            ));
                        }
                        self.queue(&Packet::Disconnect(Disconnect::normal()));
                        self.phase = Phase::Closing;
                        progress = true;
                    } else {
                        wake_at = earliest(wake_at, until);
                    }
                }
                Phase::Closing if self.out.is_empty() => {
                    // DISCONNECT is out: close our side; the broker closes its own.
                    return match Pin::new(&mut self.stream).poll_close(cx) {
                        Poll::Ready(_) => Step::Closed,
                        Poll::Pending => Step::Waiting,
                    };
                }
                Phase::Closing => {}
            }
        }
        // One timer for whatever comes next.
        match wake_at {
            Some(at) => {
                if self.timer.as_ref().is_none_or(|(t, _)| *t != at) {
                    self.timer = Some((at, self.runtime.sleep_until(at)));
                }
                if let Some((_, sleep)) = &mut self.timer
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    self.timer = None;
                    progress = true;
                }
            }
            None => self.timer = None,
        }
        if produced {
            Step::Produced
        } else if progress {
            Step::Moved
        } else {
            Step::Waiting
        }
    }

    /// Stops sending: a publisher drains its acknowledgements, others disconnect.
    fn begin_stop(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        match &self.state {
            State::Publisher(p) => self.phase = Phase::Draining(now + p.plan.drain),
            _ => {
                self.queue(&Packet::Disconnect(Disconnect::normal()));
                self.phase = Phase::Closing;
            }
        }
    }

    /// Appends `packet` to the output.
    fn queue(&mut self, packet: &Packet) {
        if let Err(e) = encode(packet, LEVEL, &mut self.out) {
            // Only fixed, valid packets are queued.
            log::error!("{}: cannot encode {}: {e}", self.client_id, packet.packet_type());
        }
    }

    /// Reads one chunk and handles the packets in it. `Ready(Ok(false))` at end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<Result<bool, String>> {
        let had = self.inbox.len();
        self.inbox.resize(had + self.read_size, 0);
        let read = Pin::new(&mut self.stream).poll_read(cx, &mut self.inbox[had..]);
        let n = match read {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => {
                self.inbox.truncate(had);
                return Poll::Ready(Err(format!("read failed: {}", without_os_error(&e.to_string()))));
            }
            Poll::Pending => {
                self.inbox.truncate(had);
                return Poll::Pending;
            }
        };
        self.inbox.truncate(had + n);
        if n == 0 {
            return Poll::Ready(Ok(false));
        }
        // Grow the reads while they come back full, shrink them when they do not.
        if n == self.read_size {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(SMALL_READ);
        }
        self.handle_input(now).map(|()| true).into()
    }

    /// Handles every whole packet in the inbox.
    fn handle_input(&mut self, now: Instant) -> Result<(), String> {
        let mut received_at_ns = None;
        while let Some(packet) = self.decoder.decode(&mut self.inbox).map_err(|e| format!("bad packet: {e}"))? {
            match (packet, &mut self.state) {
                (Packet::Publish(p), state) => {
                    let qos = p.qos as u8;
                    self.delta.received += 1;
                    self.delta.last_receive = Some(now);
                    if let State::Subscriber(tracker) = state {
                        match Header::read(&p.payload) {
                            Some(header) => {
                                let at = *received_at_ns.get_or_insert_with(now_ns);
                                self.delta.latencies.push(at.saturating_sub(header.sent_ns));
                                tracker.record(header.publisher, header.seq, qos);
                            }
                            None => tracker.record_foreign(qos),
                        }
                    }
                    match (p.qos, p.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => self.queue(&Packet::Puback(Ack::new(id))),
                        (QoS::ExactlyOnce, Some(id)) => self.queue(&Packet::Pubrec(Ack::new(id))),
                        _ => {}
                    }
                }
                (Packet::Pubrel(ack), _) => self.queue(&Packet::Pubcomp(Ack::new(ack.packet_id))),
                (Packet::Puback(ack), State::Publisher(p)) if p.plan.qos == QoS::AtLeastOnce => {
                    self.complete(ack.packet_id)?;
                }
                (Packet::Pubrec(ack), State::Publisher(p)) if p.plan.qos == QoS::ExactlyOnce => {
                    self.queue(&Packet::Pubrel(Ack::new(ack.packet_id)));
                }
                (Packet::Pubcomp(ack), State::Publisher(p)) if p.plan.qos == QoS::ExactlyOnce => {
                    self.complete(ack.packet_id)?;
                }
                (Packet::Pingresp | Packet::Suback(_) | Packet::Unsuback(_), _) => {}
                (Packet::Disconnect(_), _) => return Err("the broker sent DISCONNECT".to_owned()),
                (other, _) => return Err(format!("unexpected {} from the broker", other.packet_type())),
            }
        }
        Ok(())
    }

    /// Completes the QoS 1/2 message with `id`.
    fn complete(&mut self, id: PacketId) -> Result<(), String> {
        let State::Publisher(p) = &mut self.state else { return Ok(()) };
        if !p.free_id(id.get()) {
            return Err(format!("acknowledgement for packet id {id}, which is not in flight"));
        }
        p.inflight -= 1;
        self.delta.acked += 1;
        Ok(())
    }

    /// A publisher fills the (empty) output with the messages it may send now. `None` if it
    /// is not a publisher or has nothing to send; `Some(Err(at))` if more may go at `at`.
    fn publish(&mut self, now: Instant) -> Option<Result<(), Instant>> {
        let State::Publisher(p) = &mut self.state else { return None };
        if p.finished(now) {
            self.phase = Phase::Draining(now + p.plan.drain);
            return Some(Ok(()));
        }
        let (allowed, next) = p.allowance(now);
        if allowed == 0 {
            return next.map(Err);
        }
        let per_batch = (BATCH_BYTES / p.plan.template.len()).max(1) as u64;
        let n = allowed.min(per_batch);
        let sent_ns = now_ns();
        self.out.reserve(p.plan.template.len() * usize::try_from(n).unwrap_or(usize::MAX));
        let qos = p.plan.qos != QoS::AtMostOnce;
        for _ in 0..n {
            let id = if qos { p.take_id() } else { 0 };
            p.plan.template.append(&mut self.out, p.seq, sent_ns, id);
            p.seq += 1;
        }
        if qos {
            p.inflight += u32::try_from(n).unwrap_or(u32::MAX);
        }
        self.delta.sent += n;
        self.delta.last_send = Some(now);
        Some(Ok(()))
    }

    /// Writes what is waiting, then flushes. `Ok(true)` if anything was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<bool, String> {
        let mut moved = false;
        while self.written < self.out.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => return Err("the connection takes no more bytes".to_owned()),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.needs_flush = true;
                    moved = true;
                }
                Poll::Ready(Err(e)) => return Err(format!("write failed: {}", without_os_error(&e.to_string()))),
                Poll::Pending => break,
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        if self.needs_flush && self.out.is_empty() {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.needs_flush = false;
                    self.last_write = self.runtime.now();
                }
                Poll::Ready(Err(e)) => return Err(format!("write failed: {}", without_os_error(&e.to_string()))),
                Poll::Pending => {}
            }
        }
        Ok(moved)
    }

    /// What the link reports at its end.
    fn report(&mut self) -> LinkReport {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Publisher(p) => LinkReport::Publisher { sent: p.seq },
            State::Subscriber(tracker) => LinkReport::Subscriber(tracker),
            State::Idle => LinkReport::Idle,
        }
    }
}

impl<S, R> Future for Link<S, R>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Runtime + Unpin,
{
    type Output = LinkReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LinkReport> {
        let this = self.get_mut();
        let mut outcome = Poll::Pending;
        for round in 1..=ROUNDS_PER_POLL {
            match this.round(cx) {
                Step::Moved if round == ROUNDS_PER_POLL => {
                    // Let the other links run; come back at once.
                    cx.waker().wake_by_ref();
                }
                Step::Moved => {}
                Step::Produced => {
                    // One batch per poll: a flat-out publisher must not starve the
                    // subscribers that share its thread.
                    cx.waker().wake_by_ref();
                    break;
                }
                Step::Waiting => break,
                Step::Closed => {
                    outcome = Poll::Ready(this.report());
                    break;
                }
                Step::Failed(e) => {
                    this.shared.error(format!("{}: {e}", this.client_id));
                    outcome = Poll::Ready(this.report());
                    break;
                }
            }
        }
        this.shared.flush(&mut this.delta);
        outcome
    }
}

/// What one round of a link's poll came to.
#[derive(Debug)]
enum Step {
    /// Something moved: go round again.
    Moved,
    /// A publisher made a batch: let the other links run, then come back.
    Produced,
    /// Everything waits for a wake-up.
    Waiting,
    /// The link closed as planned.
    Closed,
    /// The link failed, for this reason.
    Failed(String),
}

/// The earlier of an optional instant and another.
fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}
