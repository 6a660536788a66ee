//! One network connection: read, write and deadline handled together in one poll, which its
//! [group](super::group) calls.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncWrite};

use super::broker::Shared;
use super::group::{LinkSignal, Served};
use super::listener::OpenConnection;
use super::runtime::Runtime;
use crate::broker::{CloseReason, LinkEvent, LinkId, ServerConnection};
use crate::codec::{Packet, QoS};

/// Bytes a link may have encoded and not yet written before it stops taking deliveries and
/// stops reading: the link's share of the flow control. Deliveries then wait in the router's
/// bounded queue, where the overflow policy applies.
const HIGH_WATER: usize = 64 * 1024;
/// PUBLISH packets taken from the router per visit to the lock.
const DELIVERY_BATCH: usize = 64;
/// Size of the read buffer (one per thread, so idle links hold none).
const READ_CHUNK: usize = 8 * 1024;

thread_local! {
    /// The read buffer of the links polled on this thread: zeroed once, not at every read
    /// (a fresh buffer on the stack cost a tenth of the broker's instructions, callgrind said).
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}
/// How long a closed link may take to flush what it still has to send.
const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// Rounds of the poll loop before yielding to other links.
const ROUNDS_PER_POLL: usize = 16;
/// An idle write buffer larger than this is given back.
const IDLE_WRITE_CAPACITY: usize = 64 * 1024;
/// The longest a publishing link waits for a congested subscriber to drain (back-pressure)
/// before the router stops waiting for that subscriber.
const PAUSE_LIMIT: Duration = Duration::from_millis(100);
/// Packets a link may hold back for the store (`sync: always`) before it stops reading and
/// taking deliveries.
const HELD_LIMIT: usize = 1024;

/// The state of one link; created by [`super::BrokerCore::serve`] and polled by its group.
pub(super) struct Link<S, R: Runtime> {
    shared: Arc<Shared<R>>,
    id: LinkId,
    stream: S,
    conn: ServerConnection,
    signal: Arc<LinkSignal>,
    /// Bytes being written and the close linger: boxed, and dropped while idle.
    busy: Option<Box<Busy>>,
    /// Traffic not yet added to the router's counters.
    unreported: Traffic,
    needs_flush: bool,
    /// The router said deliveries wait, and they have not all been taken.
    wants_deliveries: bool,
    read_done: bool,
    /// The back-pressure pause ran out: tell the router at the next visit.
    pause_over: bool,
    write_failed: bool,
    /// The router was told this link is over.
    reported_closed: bool,
    finished: bool,
    /// Keeps the listener's count of open connections while the link lives.
    _open: Option<OpenConnection>,
}

/// Packets waiting for the store: each group may go once its batch is durable, in order.
#[derive(Debug, Default)]
struct Held {
    /// (store batch, packets); batch 0: nothing of its own to wait for, only those before it.
    groups: VecDeque<(u64, Vec<Packet>)>,
    packets: usize,
    /// How many of them are PUBLISH.
    publishes: usize,
}

/// What a link has in motion.
#[derive(Debug, Default)]
struct Busy {
    /// Bytes being written, and how far.
    out: Vec<u8>,
    written: usize,
    /// When a closed link stops trying to flush.
    linger_until: Option<Instant>,
    /// Reading is paused (back-pressure) until the router resumes it, or until then.
    paused_until: Option<Instant>,
    /// Packets held back until the store batch they depend on is durable (`sync: always`).
    held: Option<Box<Held>>,
}

impl Busy {
    fn is_idle(&self) -> bool {
        self.written == self.out.len()
            && self.linger_until.is_none()
            && self.paused_until.is_none()
            && self.held.is_none()
    }
}

/// What the link has counted and not yet added to the router's counters (reported at every
/// visit to the router, so 32 bits are plenty; they saturate rather than wrap).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Traffic {
    bytes_received: u32,
    bytes_sent: u32,
}

impl Traffic {
    fn add(counter: &mut u32, bytes: usize) {
        *counter = counter.saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
    }
}

impl<S, R: Runtime> Link<S, R>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) fn new(
        shared: Arc<Shared<R>>,
        id: LinkId,
        stream: S,
        signal: Arc<LinkSignal>,
        open: Option<OpenConnection>,
    ) -> Self {
        let conn = ServerConnection::new(shared.runtime.now(), &shared.link_config);
        Self {
            shared,
            id,
            stream,
            conn,
            signal,
            busy: None,
            unreported: Traffic::default(),
            needs_flush: false,
            wants_deliveries: false,
            read_done: false,
            pause_over: false,
            write_failed: false,
            reported_closed: false,
            finished: false,
            _open: open,
        }
    }

    /// Encoded bytes not yet written.
    fn backlog(&self) -> usize {
        self.conn.pending_len() + self.busy.as_ref().map_or(0, |b| b.out.len() - b.written)
    }

    /// One round of work; returns whether anything moved.
    fn round(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut moved = false;
        if self.signal.take_close()
            && let Some(reason) = self.shared.lock().take_close(self.id)
        {
            self.conn.close(reason);
            moved = true;
        }
        if self.signal.deliveries.swap(false, Ordering::AcqRel) {
            self.wants_deliveries = true;
        }
        if let Some(busy) = self.busy.as_mut()
            && let Some(until) = busy.paused_until
        {
            if self.signal.resume.swap(false, Ordering::AcqRel) {
                busy.paused_until = None;
                moved = true;
            } else if until <= now {
                busy.paused_until = None;
                self.pause_over = true;
                moved = true;
            }
        }
        moved |= self.release_held(cx);
        moved |= self.read(cx, now);
        if self.conn.poll_timeout().is_some_and(|deadline| deadline <= now) {
            self.conn.handle_timeout(now);
            moved = true;
        }
        moved |= self.visit_router(now);
        moved |= self.write(cx, now);
        moved
    }

    /// Packets held back for the store.
    fn held_packets(&self) -> usize {
        self.held().map_or(0, |held| held.packets)
    }

    fn held(&self) -> Option<&Held> {
        self.busy.as_ref().and_then(|busy| busy.held.as_deref())
    }

    fn read(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if self.busy.as_ref().is_some_and(|b| b.paused_until.is_some()) {
            return false;
        }
        if self.read_done || self.conn.is_closed() || self.backlog() >= HIGH_WATER || self.held_packets() >= HELD_LIMIT
        {
            return false;
        }
        READ_BUFFER.with_borrow_mut(|buf| match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Pending => false,
            Poll::Ready(Ok(0)) => {
                self.read_done = true;
                self.conn.handle_eof(now);
                true
            }
            Poll::Ready(Ok(n)) => {
                Traffic::add(&mut self.unreported.bytes_received, n);
                self.conn.handle_bytes(now, &buf[..n]);
                true
            }
            Poll::Ready(Err(error)) => {
                log::debug!("{}: read failed: {error}", self.id);
                self.read_done = true;
                self.conn.handle_eof(now);
                true
            }
        })
    }

    /// Hands events to the router and takes deliveries, under the lock once.
    fn visit_router(&mut self, now: Instant) -> bool {
        // Local buffers: they cost an allocation per busy visit, and nothing while idle.
        let mut events = Vec::new();
        while let Some(event) = self.conn.poll_event() {
            events.push(event);
        }
        let take_deliveries = self.wants_deliveries
            && !self.conn.is_closed()
            && self.backlog() < HIGH_WATER
            && self.held_packets() < HELD_LIMIT;
        if events.is_empty() && !take_deliveries && !self.pause_over {
            return false;
        }
        // Room for the answers to the events and a batch of deliveries, made once.
        let mut packets = Vec::with_capacity(events.len() + if take_deliveries { DELIVERY_BATCH } else { 0 });
        let batch = {
            let mut state = self.shared.lock();
            if std::mem::take(&mut self.pause_over) {
                state.router.pause_expired(self.id);
            }
            for event in events {
                if let LinkEvent::Closed(reason) = &event {
                    self.log_close(reason);
                    self.reported_closed = true;
                    state.unregister(self.id);
                }
                state.router.handle_event(now, self.id, event, &mut packets);
            }
            if !self.reported_closed && state.router.is_paused(self.id) {
                // Back-pressure: stop reading until the router resumes this link, at most
                // PAUSE_LIMIT.
                let busy = self.busy.get_or_insert_with(Box::default);
                if busy.paused_until.is_none() {
                    self.signal.resume.store(false, Ordering::Release);
                    busy.paused_until = Some(now + PAUSE_LIMIT);
                }
            }
            if !self.reported_closed && self.backlog() < HIGH_WATER && self.held_packets() < HELD_LIMIT {
                let taken = state.router.poll_deliveries(self.id, DELIVERY_BATCH, &mut packets);
                self.wants_deliveries = taken == DELIVERY_BATCH;
            }
            let Traffic { bytes_received, bytes_sent } = std::mem::take(&mut self.unreported);
            let (packets_received, packets_sent) = self.conn.take_packet_counts();
            state.router.count_traffic(bytes_received.into(), bytes_sent.into(), packets_received, packets_sent);
            state.dispatch()
        };
        // With `sync: always`, what acknowledges these events goes out only once the changes
        // they made are on disk.
        let wait_for = batch.filter(|_| self.shared.writer.as_ref().is_some_and(|w| w.acknowledges_durable()));
        if wait_for.is_some() || self.held().is_some() {
            self.hold(wait_for.unwrap_or(0), packets);
        } else {
            self.send_packets(&packets);
        }
        true
    }

    /// Holds the packets of `packets` that promise something durable until store batch `batch`
    /// is (0: until the packets held before them are), and sends the others now.
    ///
    /// Held: every acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK) and QoS 2
    /// PUBLISH, whose packet id the client keeps and the store must know after a crash. Sent at
    /// once: CONNACK and QoS 0/1 PUBLISH: if the broker dies before their changes are on disk,
    /// the worst is a QoS 1 duplicate, which QoS 1 allows. PUBLISH keep their order: once a
    /// QoS 2 one is held, the others wait behind it.
    fn hold(&mut self, batch: u64, packets: Vec<Packet>) {
        let busy = self.busy.get_or_insert_with(Box::default);
        let held = busy.held.get_or_insert_with(Box::default);
        let hold_publishes =
            held.publishes > 0 || packets.iter().any(|p| matches!(p, Packet::Publish(p) if p.qos == QoS::ExactlyOnce));
        let (wait, now): (Vec<Packet>, Vec<Packet>) = packets.into_iter().partition(|p| match p {
            Packet::Publish(_) => hold_publishes,
            Packet::Connack(_) => false,
            _ => true,
        });
        if !wait.is_empty() {
            held.packets += wait.len();
            held.publishes += wait.iter().filter(|p| matches!(p, Packet::Publish(_))).count();
            held.groups.push_back((batch, wait));
        }
        if held.groups.is_empty() {
            busy.held = None;
        }
        self.send_packets(&now);
    }

    fn send_packets(&mut self, packets: &[Packet]) {
        for packet in packets {
            if let Err(error) = self.conn.send(packet) {
                log::error!("{}: cannot encode {:?}: {error}", self.id, packet.packet_type());
            }
        }
    }

    /// Sends the held packets whose store batch is durable; returns whether any went. If some
    /// still wait, the store's thread wakes the link when they may go.
    fn release_held(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(busy), Some(writer)) = (self.busy.as_mut(), self.shared.writer.as_ref()) else { return false };
        let Some(held) = busy.held.as_mut() else { return false };
        let mut ready = Vec::new();
        while let Some(&(batch, _)) = held.groups.front() {
            if batch > writer.durable() && !writer.wait(batch, cx.waker()) {
                break;
            }
            if let Some((_, packets)) = held.groups.pop_front() {
                held.packets -= packets.len();
                held.publishes -= packets.iter().filter(|p| matches!(p, Packet::Publish(_))).count();
                ready.push(packets);
            }
        }
        if held.groups.is_empty() {
            busy.held = None;
        }
        for packets in &ready {
            self.send_packets(packets);
        }
        !ready.is_empty()
    }

    fn log_close(&self, reason: &CloseReason) {
        match reason {
            CloseReason::ClientDisconnected | CloseReason::ServerShuttingDown => {
                log::info!("{}: closed: {reason}", self.id);
            }
            _ => log::warn!("{}: closed: {reason}", self.id),
        }
    }

    fn write(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if self.busy.is_none() && self.conn.pending_len() == 0 && !self.needs_flush {
            return false;
        }
        let mut moved = false;
        let busy = self.busy.get_or_insert_with(Box::default);
        if busy.written == busy.out.len() {
            busy.out.clear();
            busy.written = 0;
            if busy.out.capacity() > IDLE_WRITE_CAPACITY && self.conn.pending_len() == 0 {
                busy.out = Vec::new();
            }
            self.conn.poll_transmit(now, &mut busy.out);
        }
        if self.write_failed {
            busy.written = busy.out.len();
            return false;
        }
        while busy.written < busy.out.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &busy.out[busy.written..]) {
                Poll::Pending => break,
                Poll::Ready(Ok(n)) if n > 0 => {
                    busy.written += n;
                    Traffic::add(&mut self.unreported.bytes_sent, n);
                    self.needs_flush = true;
                    moved = true;
                }
                Poll::Ready(result) => {
                    if let Err(error) = result {
                        log::debug!("{}: write failed: {error}", self.id);
                    }
                    self.write_failed = true;
                    busy.written = busy.out.len();
                    self.conn.close(CloseReason::ConnectionLost);
                    return true;
                }
            }
        }
        if self.needs_flush
            && busy.written == busy.out.len()
            && let Poll::Ready(result) = Pin::new(&mut self.stream).poll_flush(cx)
        {
            self.needs_flush = false;
            if result.is_err() {
                self.write_failed = true;
                self.conn.close(CloseReason::ConnectionLost);
            }
            moved = true;
        }
        moved
    }

    /// Whether the link is over: closed, reported, and its output written (or given up on).
    fn done(&mut self, now: Instant) -> bool {
        if !self.conn.is_closed() || !self.reported_closed {
            return false;
        }
        let linger_until = *self.busy.get_or_insert_with(Box::default).linger_until.get_or_insert(now + CLOSE_LINGER);
        let flushed = self.write_failed || (self.backlog() == 0 && self.held().is_none() && !self.needs_flush);
        if !flushed && now >= linger_until {
            log::info!("{}: the client did not take its last {} bytes; dropped", self.id, self.backlog());
        }
        flushed || now >= linger_until
    }

    /// Frees empty buffers before waiting: most links are idle most of the time.
    fn shrink_idle(&mut self) {
        self.conn.shrink_idle();
        if self.busy.as_ref().is_some_and(|b| b.is_idle()) {
            self.busy = None;
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.shared.link_ended();
        }
    }
}

impl<S, R: Runtime> Served for Link<S, R>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_link(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.finished {
            return Poll::Ready(());
        }
        for _ in 0..ROUNDS_PER_POLL {
            let now = self.shared.runtime.now();
            let moved = self.round(cx, now);
            if self.done(now) {
                // Best effort: the socket is dropped (and closed) right after either way.
                let _ = Pin::new(&mut self.stream).poll_close(cx);
                self.finish();
                return Poll::Ready(());
            }
            if !moved {
                self.shrink_idle();
                return Poll::Pending;
            }
        }
        // Still busy: let other links run, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn deadline(&self) -> Option<Instant> {
        let busy = self.busy.as_ref();
        [self.conn.poll_timeout(), busy.and_then(|b| b.linger_until), busy.and_then(|b| b.paused_until)]
            .into_iter()
            .flatten()
            .min()
    }

    fn signal(&self) -> &Arc<LinkSignal> {
        &self.signal
    }
}

impl<S, R: Runtime> Drop for Link<S, R> {
    /// A link dropped before it ended (runtime shutting down) still tells the router,
    /// so the session is detached and its will published.
    fn drop(&mut self) {
        if !self.reported_closed {
            let now = self.shared.runtime.now();
            let mut state = self.shared.lock();
            state.unregister(self.id);
            let mut ignored = Vec::new();
            state.router.handle_event(now, self.id, LinkEvent::Closed(CloseReason::ConnectionLost), &mut ignored);
            state.dispatch();
        }
        if !self.finished {
            self.finished = true;
            self.shared.link_ended();
        }
    }
}
