//! The broker's own readiness poller for the sockets of its links (epoll or kqueue through
//! `mio`), and [`PolledTcp`], an accepted connection polled by it.
//!
//! Why not the runtime's: a socket registered with a runtime costs 216 bytes (async-io's
//! `Source`) to 256 bytes (tokio's cache-padded `ScheduledIo`) per connection, a third of what
//! mosquitto spends on a whole idle client. Here a registration is one 24-byte entry in a
//! table: the waker of the task that polls the socket, and per direction a count of the
//! readiness events seen and whether that task waits for one.
//!
//! Each link group (see [`group`](super::group)) has a poller of its own, one file descriptor
//! that the runtime watches like any socket ([`Runtime::watch`](super::Runtime::watch)). The
//! group's task, woken when it is readable, calls [`PollerSource::dispatch`], which wakes the
//! tasks parked on ready sockets: for the group's own links, that puts them on its ready list.
//! So an event reaches its link through one wake-up, on the runtime's workers, as with the
//! runtime's own registrations; no thread of its own.
//!
//! A [`PolledTcp`] keeps one waker, the last one that waited on it: it is meant to be driven by
//! one task at a time (a handshake task, then the link's group), as the broker does.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::io::{AsyncRead, AsyncWrite};
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};

/// Tables of registrations, each behind its own lock, so that the poller thread and the link
/// groups seldom meet on one.
const SHARDS: usize = 16;
/// Readiness events taken from the OS per wait.
const EVENTS_PER_WAIT: usize = 1024;

/// In a direction's word of an [`Entry`]: the task waits for this direction.
const WAITING: u32 = 1 << 31;
/// In a direction's word of an [`Entry`]: the count of readiness events (wrapping).
const COUNT: u32 = WAITING - 1;

/// A direction of readiness: an index into [`Entry::directions`].
#[derive(Debug, Clone, Copy)]
enum Direction {
    Read = 0,
    Write = 1,
}

/// One registered socket.
#[derive(Debug, Default)]
struct Entry {
    /// Per direction (read, write): the readiness events seen ([`COUNT`]) and whether the task
    /// waits for one ([`WAITING`]). A task that found the socket not ready parks only if no
    /// event came since it last looked, and is woken only by an event of a direction it waits
    /// for (a busy socket is told it may write at nearly every acknowledgement).
    directions: [u32; 2],
    /// The task to wake.
    waker: Option<Waker>,
}

impl Entry {
    /// Counts an event in `direction`; true if the task waited for it.
    fn count(&mut self, direction: Direction) -> bool {
        let word = &mut self.directions[direction as usize];
        let waited = *word & WAITING != 0;
        *word = (*word & COUNT).wrapping_add(1) & COUNT | (*word & WAITING);
        waited
    }
}

#[derive(Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

/// The half of a group's poller that its sockets share: the OS poller's registry and the
/// tables of registrations.
#[derive(Debug)]
pub(super) struct Poller {
    /// The link group that drives this poller, and serves its sockets.
    pub(super) group: usize,
    registry: mio::Registry,
    shards: [Mutex<Table>; SHARDS],
    /// The shard the next registration goes to (round robin).
    next_shard: AtomicUsize,
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A token names the shard in its low bits and the entry above them.
fn split(token: usize) -> (usize, usize) {
    (token % SHARDS, token / SHARDS)
}

/// The OS poller of a link group, for its runtime to watch: readable when sockets are ready
/// (see the module's documentation). [`PollerSource::new`] also gives the [`Poller`] its
/// sockets register with.
#[derive(Debug)]
pub struct PollerSource {
    poller: Arc<Poller>,
    poll: Mutex<(mio::Poll, Events)>,
}

impl PollerSource {
    /// A new OS poller and its tables.
    ///
    /// # Errors
    /// The OS refused to create a poller (out of file descriptors, say).
    pub(super) fn new(group: usize) -> io::Result<(Self, Arc<Poller>)> {
        let poll = mio::Poll::new()?;
        let poller = Arc::new(Poller {
            group,
            registry: poll.registry().try_clone()?,
            shards: std::array::from_fn(|_| Mutex::new(Table::default())),
            next_shard: AtomicUsize::new(0),
        });
        let source =
            Self { poller: Arc::clone(&poller), poll: Mutex::new((poll, Events::with_capacity(EVENTS_PER_WAIT))) };
        Ok((source, poller))
    }

    /// Takes the readiness events there are, without waiting, and wakes the tasks parked on
    /// those sockets. Returns `true` when it took as many as it can at once, so that more may
    /// be waiting: call it again before waiting for readability.
    pub fn dispatch(&self) -> bool {
        let mut guard = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        let (poll, events) = &mut *guard;
        if let Err(e) = poll.poll(events, Some(std::time::Duration::ZERO)) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("socket poller: taking readiness events failed: {e}");
            }
            return false;
        }
        let mut wake = Vec::new();
        for event in &*events {
            let (shard, index) = split(event.token().0);
            let mut table = lock(&self.poller.shards[shard]);
            // A token freed since the event was queued finds nothing or a newer socket, which
            // then sees one spurious wake-up: harmless.
            if let Some(entry) = table.entries.get_mut(index) {
                let mut woken = false;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    woken |= entry.count(Direction::Read);
                }
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    woken |= entry.count(Direction::Write);
                }
                if woken {
                    entry.directions.iter_mut().for_each(|word| *word &= COUNT);
                    wake.extend(entry.waker.take());
                }
            }
        }
        let full = events.iter().count() >= EVENTS_PER_WAIT;
        drop(guard);
        for waker in wake {
            waker.wake();
        }
        full
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for PollerSource {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.poller.registry.as_raw_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for PollerSource {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.poller.registry.as_fd()
    }
}

impl Poller {
    fn insert(&self) -> usize {
        let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let mut table = lock(&self.shards[shard]);
        let index = match table.free.pop() {
            Some(index) => index as usize,
            None => {
                table.entries.push(Entry::default());
                table.entries.len() - 1
            }
        };
        index * SHARDS + shard
    }

    fn remove(&self, token: usize) {
        let (shard, index) = split(token);
        let mut table = lock(&self.shards[shard]);
        table.entries[index] = Entry::default();
        // Tables never hold 4 billion entries per shard: the process would have run out of
        // file descriptors long before.
        table.free.push(u32::try_from(index).unwrap_or(u32::MAX));
    }

    /// Registers the socket `fd` for `interest`, edge-triggered; returns its token.
    fn register(&self, fd: std::os::fd::RawFd, interest: Interest) -> io::Result<u32> {
        let token = self.insert();
        let Ok(small) = u32::try_from(token) else {
            self.remove(token);
            return Err(io::Error::other("socket poller: too many registrations"));
        };
        if let Err(e) = self.registry.register(&mut SourceFd(&fd), Token(token), interest) {
            self.remove(token);
            return Err(e);
        }
        Ok(small)
    }

    /// Runs `op` (an operation on the socket registered as `token`) until it is done or the
    /// socket is not ready in `direction`, in which case the task is parked until the next
    /// readiness event of that direction (`seen`: the events seen when it last was not).
    fn poll_op<T>(
        &self,
        token: u32,
        direction: Direction,
        seen: &mut u32,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.park(token as usize, direction, seen, cx.waker()) {
                        return Poll::Pending;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// Parks `waker` on `token` for `direction` unless an event of that direction came since
    /// `seen`; then it updates `seen` and says so (`false`: try the operation again).
    fn park(&self, token: usize, direction: Direction, seen: &mut u32, waker: &Waker) -> bool {
        let (shard, index) = split(token);
        let mut table = lock(&self.shards[shard]);
        let entry = &mut table.entries[index];
        let word = &mut entry.directions[direction as usize];
        if *word & COUNT != *seen {
            *seen = *word & COUNT;
            return false;
        }
        *word |= WAITING;
        match &mut entry.waker {
            Some(parked) if parked.will_wake(waker) => {}
            parked => *parked = Some(waker.clone()),
        }
        true
    }
}

/// An accepted TCP connection whose readiness comes from its broker's own poller (see the
/// module's documentation): 24 bytes, and 24 more in the poller's table. Made by
/// [`BrokerCore::poll_socket`](super::BrokerCore::poll_socket), and served by the link group
/// whose poller it is registered with.
#[derive(Debug)]
pub struct PolledTcp {
    /// The socket itself (mio's own `TcpStream` carries debug state; `SourceFd` registers the
    /// bare descriptor).
    stream: std::net::TcpStream,
    token: u32,
    /// Per direction, the readiness events seen when the socket last proved not ready.
    seen: [u32; 2],
    poller: Arc<Poller>,
}

impl PolledTcp {
    /// Registers `stream` (a connected, non-blocking socket) with `poller`.
    pub(super) fn new(poller: &Arc<Poller>, stream: std::net::TcpStream) -> io::Result<Self> {
        let token = poller.register(stream.as_raw_fd(), Interest::READABLE | Interest::WRITABLE)?;
        Ok(Self { stream, token, seen: [0; 2], poller: Arc::clone(poller) })
    }

    /// The link group whose poller this socket is registered with.
    pub(super) fn group(&self) -> usize {
        self.poller.group
    }

    /// Runs `op` on the socket until it is done or the socket is not ready, in which case the
    /// task is parked until the next readiness event.
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&mut &std::net::TcpStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let Self { stream, token, seen, poller } = self;
        poller.poll_op(*token, direction, &mut seen[direction as usize], cx, || op(&mut &*stream))
    }
}

impl Drop for PolledTcp {
    fn drop(&mut self) {
        // Closing the socket (its only descriptor) takes it out of the OS poller: no
        // deregistration call needed.
        self.poller.remove(self.token as usize);
    }
}

/// A listening socket whose readiness comes from a link group's poller, like [`PolledTcp`]:
/// the connections it accepts never touch the runtime's reactor, which saves registering each
/// with the runtime and then taking it out again. Made by
/// [`BrokerCore::poll_listener`](super::BrokerCore::poll_listener).
#[derive(Debug)]
pub struct PolledListener {
    listener: mio::net::TcpListener,
    token: u32,
    /// The readiness events seen when the socket last had nothing to accept.
    seen: u32,
    poller: Arc<Poller>,
}

impl PolledListener {
    /// Registers `listener` (made non-blocking here) with `poller`.
    pub(super) fn new(poller: &Arc<Poller>, listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        reserve_descriptor_table(&listener);
        let listener = mio::net::TcpListener::from_std(listener);
        let token = poller.register(listener.as_raw_fd(), Interest::READABLE)?;
        Ok(Self { listener, token, seen: 0, poller: Arc::clone(poller) })
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    /// As the OS's `getsockname`.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts the next connection (non-blocking already), or parks the task until the
    /// listener is readable.
    pub(super) fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(std::net::TcpStream, std::net::SocketAddr)>> {
        let Self { listener, token, seen, poller } = self;
        poller.poll_op(*token, Direction::Read, seen, cx, || {
            listener.accept().map(|(stream, peer)| (std::net::TcpStream::from(stream), peer))
        })
    }
}

/// The file descriptors the process's descriptor table is grown to hold at once (at most the
/// open-file limit): 512 KiB of kernel memory for the table.
const DESCRIPTOR_TABLE_RESERVE: u64 = 65_536;

/// Grows the process's file descriptor table now to hold as many descriptors as it may open
/// (its open-file limit, at most [`DESCRIPTOR_TABLE_RESERVE`]), by duplicating `fd` to a high
/// number and closing the copy; once per process.
///
/// Why: Linux grows the table as descriptors are opened, doubling it, and in a process with
/// more than one thread each growth waits for an RCU grace period, 10 to 30 ms during which
/// the accepting thread takes no connection. A broker filling up to 10,000 connections met
/// that 7 times (measured: single connects taking 30 ms at the 256th, 512th and 1024th).
/// Mosquitto, single-threaded, never waits there. A failure only costs those waits later.
fn reserve_descriptor_table(fd: impl std::os::fd::AsFd) {
    static RESERVED: std::sync::Once = std::sync::Once::new();
    RESERVED.call_once(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        let highest = limit.min(DESCRIPTOR_TABLE_RESERVE).saturating_sub(1);
        let Ok(highest) = i32::try_from(highest) else { return };
        // The lowest free descriptor at or above `highest`: the table grows to hold it.
        match rustix::io::fcntl_dupfd_cloexec(fd, highest) {
            Ok(copy) => drop(copy),
            Err(e) => log::debug!("growing the file descriptor table to {highest}: {e}"),
        }
    });
}

impl Drop for PolledListener {
    fn drop(&mut self) {
        self.poller.remove(self.token as usize);
    }
}

impl AsyncRead for PolledTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(cx, Direction::Read, |stream| stream.read(buf))
    }
}

impl AsyncWrite for PolledTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(cx, Direction::Write, |stream| stream.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(cx, Direction::Write, |stream| stream.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::time::{Duration, Instant};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A poller driven by a thread of the test's own, until the returned guard is dropped.
    struct Driven {
        poller: Arc<Poller>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Drop for Driven {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    /// `stream`, non-blocking as `PolledTcp` takes it (as a `PolledListener` accepts it).
    fn nonblocking(stream: std::net::TcpStream) -> std::net::TcpStream {
        stream.set_nonblocking(true).unwrap();
        stream
    }

    fn driven() -> Driven {
        let (source, poller) = PollerSource::new(0).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                if !source.dispatch() {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        Driven { poller, stop }
    }

    fn wait_for(count: &Count, at_least: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while count.0.load(Ordering::SeqCst) < at_least {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    #[test]
    fn a_parked_reader_is_woken_by_data_and_reads_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let driven = driven();
        let mut polled = PolledTcp::new(&driven.poller, nonblocking(listener.accept().unwrap().0)).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0; 16];
        // Nothing yet: parked (perhaps after one retry for the registration's own event).
        assert!(Pin::new(&mut polled).poll_read(&mut cx, &mut buf).is_pending());
        let woken = count.0.load(Ordering::SeqCst);
        peer.write_all(b"hello").unwrap();
        assert!(wait_for(&count, woken + 1), "no wake-up for the data");
        match Pin::new(&mut polled).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(5)) => assert_eq!(&buf[..5], b"hello"),
            other => panic!("expected 5 bytes, got {other:?}"),
        }
        // Writing works, and the peer's close reads as the end.
        assert!(matches!(Pin::new(&mut polled).poll_write(&mut cx, b"back"), Poll::Ready(Ok(4))));
        let mut back = [0; 4];
        peer.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Pin::new(&mut polled).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(0)) => break,
                Poll::Pending if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                other => panic!("expected the end of the stream, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_writer_blocked_by_a_full_buffer_is_woken_when_the_peer_reads() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let driven = driven();
        let mut polled = PolledTcp::new(&driven.poller, nonblocking(listener.accept().unwrap().0)).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0;
        while let Poll::Ready(result) = Pin::new(&mut polled).poll_write(&mut cx, &chunk) {
            written += result.unwrap();
            assert!(written < 1 << 30, "the socket never filled");
        }
        let woken = count.0.load(Ordering::SeqCst);
        let mut sink = vec![0; 1 << 20];
        let mut drained = 0;
        while drained < written {
            drained += peer.read(&mut sink).unwrap();
            if count.0.load(Ordering::SeqCst) > woken {
                break;
            }
        }
        assert!(wait_for(&count, woken + 1), "no wake-up once the peer read");
        assert!(Pin::new(&mut polled).poll_write(&mut cx, &chunk).is_ready());
    }

    #[test]
    fn registrations_are_reused_after_drop() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let driven = driven();
        let poller = &driven.poller;
        let entries = || poller.shards.iter().map(|shard| lock(shard).entries.len()).sum::<usize>();
        let before = entries();
        for _ in 0..200 {
            let _peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            drop(PolledTcp::new(poller, nonblocking(listener.accept().unwrap().0)).unwrap());
        }
        // 200 registrations one after the other need one entry per shard.
        let grown = entries() - before;
        assert!(grown <= SHARDS, "200 registrations, dropped in turn, took {grown} new entries");
    }

    #[test]
    fn a_parked_listener_is_woken_by_a_connection_and_accepts_it() {
        let driven = driven();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut listener = PolledListener::new(&driven.poller, std_listener).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(listener.poll_accept(&mut cx).is_pending(), "accepted with nobody connecting");
        let woken = count.0.load(Ordering::SeqCst);
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(wait_for(&count, woken + 1), "no wake-up for the connection");
        let Poll::Ready(Ok((mut accepted, from))) = listener.poll_accept(&mut cx) else {
            panic!("nothing to accept after the wake-up");
        };
        assert_eq!(from, peer.local_addr().unwrap());
        // The accepted socket is the peer's, and non-blocking already.
        let mut nothing = [0; 1];
        assert_eq!(accepted.read(&mut nothing).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        peer.write_all(b"x").unwrap();
        accepted.set_nonblocking(false).unwrap();
        accepted.read_exact(&mut nothing).unwrap();
        assert_eq!(&nothing, b"x");
        assert!(listener.poll_accept(&mut cx).is_pending(), "a second connection out of one");
    }

    /// The descriptor table slots the process has (Linux's /proc/self/status, `FDSize`).
    #[cfg(target_os = "linux")]
    fn descriptor_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|line| line.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn polling_a_listener_grows_the_descriptor_table_to_the_open_file_limit() {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        let wanted = limit.min(DESCRIPTOR_TABLE_RESERVE);
        let driven = driven();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _polled = PolledListener::new(&driven.poller, listener).unwrap();
        let size = descriptor_table_size();
        assert!(size >= wanted, "descriptor table of {size} slots; the open-file limit is {limit}");
    }

    #[test]
    fn an_idle_registration_stays_small() {
        // What every idle connection pays here, against 216-256 bytes for a runtime's
        // registration (BENCHMARKS.md, idle memory).
        assert!(std::mem::size_of::<PolledTcp>() <= 24, "PolledTcp: {}", std::mem::size_of::<PolledTcp>());
        assert!(std::mem::size_of::<Entry>() <= 24, "Entry: {}", std::mem::size_of::<Entry>());
        // The link's signal (its waker) is an Arc: 16 bytes of counts, then this.
        let signal = std::mem::size_of::<super::super::group::LinkSignal>();
        assert!(signal <= 16, "LinkSignal: {signal}");
    }
}
