//! The broker's shared half: the router behind its lock, and the registry of live links.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite};
use futures::task::AtomicWaker;

use super::Runtime;
use super::group::{GroupShared, LinkSignal};
use super::link::Link;
use super::listener::OpenConnection;
use super::persist::{RedbStore, StoreWriter};
use super::poller::{PolledListener, PolledTcp, Poller};
use crate::broker::persist::{Snapshot, Store, StoreError, StoreOp};
use crate::broker::{
    BrokerConfig, CloseReason, LinkConfig, LinkId, ListenerConfig, Router, RouterEvent, Stats, SyncMode,
};

/// The broker as the runtimes drive it: one [`Router`] shared by every link.
///
/// Cheap to clone; clones share the broker. A runtime crate accepts connections and runs
/// [`serve`](Self::serve) for each one as a task, runs [`run_timers`](Self::run_timers) as one
/// more task, and calls [`shutdown`](Self::shutdown) then waits for
/// [`live_links`](Self::live_links) to reach zero when it stops.
#[derive(Debug)]
pub struct BrokerCore<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Clone for BrokerCore<R> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

#[derive(Debug)]
pub(super) struct Shared<R> {
    pub(super) runtime: R,
    pub(super) link_config: LinkConfig,
    state: Mutex<State>,
    live_links: AtomicUsize,
    shutting_down: AtomicBool,
    /// Woken when the router's own deadline may have moved, or at shutdown.
    timer_waker: AtomicWaker,
    /// The groups links are served in, a few per thread; a link joins one by its id.
    groups: Vec<Arc<GroupShared>>,
    /// The store's thread, with persistence on.
    pub(super) writer: Option<StoreWriter>,
    /// The group whose socket poller the next [`BrokerCore::poll_socket`] uses (round robin).
    next_poller: AtomicUsize,
}

impl<R> Drop for Shared<R> {
    fn drop(&mut self) {
        // A broker dropped without `stop` still writes what it has.
        if let Some(writer) = &self.writer {
            writer.close();
        }
    }
}

/// What the lock guards: the router and the way to reach each link's task.
#[derive(Debug)]
pub(super) struct State {
    pub(super) router: Router,
    links: HashMap<LinkId, Arc<LinkSignal>>,
    /// Why links asked to close should close, until they look (their signals only say that).
    closing: HashMap<LinkId, CloseReason>,
    /// Runs the slow checks of pending authentications.
    pub(super) auth: super::auth::AuthDriver,
    /// The store's thread, with persistence on, and a buffer for the changes handed to it.
    writer: Option<StoreWriter>,
    store_ops: Vec<StoreOp>,
}

impl State {
    /// Hands what the router asked for to the links concerned and its changes to the store,
    /// and logs its events. Returns the number of the store batch the changes went into, if
    /// there were any.
    pub(super) fn dispatch(&mut self) -> Option<u64> {
        let batch = match &self.writer {
            Some(writer) if self.router.has_store_ops() => {
                self.router.take_store_ops(&mut self.store_ops);
                Some(writer.submit(&mut self.store_ops))
            }
            _ => None,
        };
        while let Some(link) = self.router.poll_wake() {
            if let Some(signal) = self.links.get(&link) {
                signal.offer_deliveries();
            }
        }
        while let Some(link) = self.router.poll_resume() {
            if let Some(signal) = self.links.get(&link) {
                signal.resume_reading();
            }
        }
        while let Some((link, reason)) = self.router.poll_close() {
            self.request_close(link, reason);
        }
        while let Some(event) = self.router.poll_event() {
            match event {
                RouterEvent::Connected { link, client_id, session_present } => {
                    log::info!("{link}: client {client_id:?} connected (session present: {session_present})");
                }
                RouterEvent::Refused { link, reason } => {
                    log::info!("{link}: CONNECT refused: {reason:?}");
                }
                RouterEvent::Disconnected { link, client_id, reason } => {
                    log::debug!("{link}: client {client_id:?} gone: {reason}");
                }
                RouterEvent::AuthPending { link, id, plugin, credentials } => {
                    self.auth.start(&self.router, link, id, plugin, credentials);
                }
                RouterEvent::AuthRefused { link, username, by } => {
                    log::warn!("{link}: login refused for user {username:?} by {by}");
                }
                RouterEvent::PublishDenied { client_id, topic } => {
                    log::info!("client {client_id:?} may not publish to {topic:?}; dropped");
                }
            }
        }
        batch
    }

    pub(super) fn unregister(&mut self, link: LinkId) {
        self.links.remove(&link);
        self.closing.remove(&link);
    }

    /// Asks `link` to close, for `reason` (a later request's reason wins).
    fn request_close(&mut self, link: LinkId, reason: CloseReason) {
        if let Some(signal) = self.links.get(&link) {
            self.closing.insert(link, reason);
            signal.request_close();
        }
    }

    /// Why `link` was asked to close, if it was.
    pub(super) fn take_close(&mut self, link: LinkId) -> Option<CloseReason> {
        self.closing.remove(&link)
    }
}

/// Link ids are unique in the process, even with several brokers, so a log line's `#id`
/// names one connection.
static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// How long a shutdown waits for the store's last write.
const STORE_CLOSE_LIMIT: Duration = Duration::from_secs(30);

/// Link groups per thread: enough that a few busy links spread over the threads.
const GROUPS_PER_THREAD: usize = 4;

fn group_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get) * GROUPS_PER_THREAD
}

impl<R: Runtime> BrokerCore<R> {
    /// A broker with no links yet, with the limits of `config` (its listeners are the runtime
    /// crate's business). With `config.persistence`, the store in its directory is opened (or
    /// created) and everything in it restored first.
    ///
    /// # Errors
    /// A store that cannot be opened, or cannot be read back (unless `on-corrupt: fresh`).
    pub fn new(runtime: R, config: &BrokerConfig) -> Result<Self, StoreError> {
        let Some(persistence) = &config.persistence else {
            return Ok(Self::start(runtime, config, None));
        };
        let (store, snapshot) = RedbStore::open(&persistence.path, persistence.on_corrupt)?;
        Ok(Self::start(runtime, config, Some((Box::new(store), snapshot, persistence.sync))))
    }

    /// A broker keeping its durable state in `store` (another back end than the default's),
    /// written per `sync`; `config.persistence` is not looked at. Everything in the store is
    /// restored first.
    ///
    /// # Errors
    /// The store's, when it cannot be read back.
    pub fn with_store(
        runtime: R,
        config: &BrokerConfig,
        mut store: Box<dyn Store>,
        sync: SyncMode,
    ) -> Result<Self, StoreError> {
        let snapshot = store.load()?;
        Ok(Self::start(runtime, config, Some((store, snapshot, sync))))
    }

    fn start(runtime: R, config: &BrokerConfig, store: Option<(Box<dyn Store>, Snapshot, SyncMode)>) -> Self {
        let mut router_config = config.router.clone();
        if router_config.client_id_seed == 0 {
            // Assigned client ids differ between runs and between brokers on one machine.
            router_config.client_id_seed = runtime.unix_time() ^ (u64::from(std::process::id()) << 32);
        }
        router_config.persistence = store.is_some();
        let mut router = Router::new(runtime.now(), router_config);
        let writer = store.and_then(|(store, snapshot, sync)| {
            let location = store.location();
            let (sessions, retained) = (snapshot.sessions.len(), snapshot.retained.len());
            let messages: usize = snapshot.sessions.iter().map(|s| s.messages.len()).sum();
            router.restore(snapshot);
            log::info!(
                "persistence store {location}: restored {sessions} sessions, {messages} queued messages, {retained} retained messages (sync: {sync:?})"
            );
            match StoreWriter::start(store, sync) {
                Ok(writer) => Some(writer),
                Err(error) => {
                    log::error!("persistence store {location}: cannot start its thread ({error}); running without it");
                    None
                }
            }
        });
        let shared = Shared {
            link_config: config.link.clone(),
            runtime,
            state: Mutex::new(State {
                router,
                links: HashMap::new(),
                closing: HashMap::new(),
                auth: Default::default(),
                writer: writer.clone(),
                store_ops: Vec::new(),
            }),
            live_links: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            timer_waker: AtomicWaker::new(),
            groups: (0..group_count()).map(|_| Arc::default()).collect(),
            writer,
            next_poller: AtomicUsize::new(0),
        };
        let shared = Arc::new(shared);
        super::auth::attach(&shared);
        Self { shared }
    }

    /// The runtime the broker runs on.
    #[must_use]
    pub fn runtime(&self) -> &R {
        &self.shared.runtime
    }

    /// Registers an accepted TCP connection with the socket poller of one of the broker's link
    /// groups (see [`PolledTcp`]: 48 bytes an idle connection, where a runtime's registration
    /// costs 216 to 256), to be [`serve`](Self::serve)d by that group.
    ///
    /// # Errors
    /// The OS refused to create the group's poller or to register the socket, or the broker
    /// has stopped.
    pub fn poll_socket(&self, stream: std::net::TcpStream) -> io::Result<PolledTcp> {
        stream.set_nonblocking(true)?;
        self.poll_accepted(stream)
    }

    /// [`poll_socket`](Self::poll_socket) for a socket that is non-blocking already (as a
    /// [`PolledListener`] accepts them): one system call fewer per connection.
    pub(super) fn poll_accepted(&self, stream: std::net::TcpStream) -> io::Result<PolledTcp> {
        PolledTcp::new(&self.next_poller()?, stream)
    }

    /// Binds the listening socket `config` describes (its address, `backlog`, `SO_REUSEADDR`,
    /// and `TCP_NODELAY` for the connections it accepts) and registers it with the socket
    /// poller of one of the broker's link groups, for [`serve_listener`](super::serve_listener):
    /// the way every runtime binds its listeners.
    ///
    /// # Errors
    /// The address does not resolve or cannot be bound (in use, say), or as
    /// [`poll_listener`](Self::poll_listener); the message names the listener and its address.
    pub fn listen(&self, config: &ListenerConfig) -> io::Result<PolledListener> {
        let socket = super::listener::bind(config)?;
        self.poll_listener(socket).map_err(|e| {
            io::Error::new(e.kind(), format!("listener {}: cannot poll {}: {e}", config.name, config.bind))
        })
    }

    /// Registers a listening socket with the socket poller of one of the broker's link groups,
    /// for [`serve_listener`](super::serve_listener): the connections it accepts go straight
    /// to the groups' pollers, never through the runtime's reactor.
    ///
    /// # Errors
    /// As [`poll_socket`](Self::poll_socket).
    pub fn poll_listener(&self, listener: std::net::TcpListener) -> io::Result<PolledListener> {
        PolledListener::new(&self.next_poller()?, listener)
    }

    /// The socket poller of the next link group (round robin), the group started if need be.
    fn next_poller(&self) -> io::Result<Arc<Poller>> {
        let index = self.shared.next_poller.fetch_add(1, Ordering::Relaxed) % self.shared.groups.len();
        let shared = Arc::clone(&self.shared);
        let stopping = move || shared.shutting_down.load(Ordering::Acquire);
        self.shared.groups[index].poller(index, &self.shared.runtime, stopping)
    }

    /// Serves one accepted network connection until it ends, in one of the broker's link
    /// groups (started on the runtime as needed); returns the link's id.
    ///
    /// `peer` names the other end in the log line that opens the link (usually its socket
    /// address); every later line about this connection carries only the link id.
    pub fn serve<S>(&self, stream: S, peer: &str) -> LinkId
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_counted(stream, peer, None)
    }

    /// [`serve`](Self::serve), holding `open` (a listener's count) while the link lives.
    pub(super) fn serve_counted<S>(&self, stream: S, peer: &str, open: Option<OpenConnection>) -> LinkId
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let number = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
        let id = LinkId::new(std::num::NonZeroU64::new(number).unwrap_or(std::num::NonZeroU64::MAX));
        // A polled socket is served by the group whose poller wakes it (one wake-up from
        // event to link); any other stream by its id.
        let index = match (&stream as &dyn Any).downcast_ref::<PolledTcp>() {
            Some(polled) => polled.group(),
            None => (id.get() % self.shared.groups.len() as u64) as usize,
        };
        let group = &self.shared.groups[index];
        let signal = group.new_signal();
        self.lock().links.insert(id, Arc::clone(&signal));
        self.shared.live_links.fetch_add(1, Ordering::AcqRel);
        log::info!("{id}: connection from {peer}");
        // After registering: a shutdown from now on finds the link in the map.
        if self.shared.shutting_down.load(Ordering::Acquire) {
            self.lock().request_close(id, CloseReason::ServerShuttingDown);
        }
        let link = Box::new(Link::new(Arc::clone(&self.shared), id, stream, signal, open));
        let shared = Arc::clone(&self.shared);
        let stopping = move || shared.shutting_down.load(Ordering::Acquire);
        if let Err(link) = group.adopt(link, &self.shared.runtime, stopping) {
            // The group ended with the broker: the link's drop tells the router.
            drop(link);
        }
        id
    }

    /// Publishes `$SYS` on schedule until [`shutdown`](Self::shutdown); run it as a task.
    pub async fn run_timers(&self) {
        loop {
            let due = self.lock().router.poll_timeout();
            let Some(due) = due else { return };
            if self.is_shutting_down() {
                return;
            }
            let sleep = self.shared.runtime.sleep_until(due);
            let shutdown = futures::future::poll_fn(|cx| {
                self.shared.timer_waker.register(cx.waker());
                if self.shared.shutting_down.load(Ordering::Acquire) {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            });
            futures::pin_mut!(shutdown);
            if let futures::future::Either::Right(_) = futures::future::select(sleep, shutdown).await {
                return;
            }
            let (now, unix_time) = (self.shared.runtime.now(), self.shared.runtime.unix_time());
            let mut state = self.lock();
            state.router.handle_timeout(now, unix_time);
            state.dispatch();
        }
    }

    /// Asks every link to close (their clients see the connection end) and stops the timers.
    /// Links accepted afterwards are closed at once. Wait with
    /// [`wait_closed`](Self::wait_closed).
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        self.shared.timer_waker.wake();
        let mut state = self.lock();
        state.router.stop();
        let links: Vec<LinkId> = state.links.keys().copied().collect();
        for link in links {
            state.request_close(link, CloseReason::ServerShuttingDown);
        }
        drop(state);
        for group in &self.shared.groups {
            group.wake();
        }
    }

    /// Shuts down ([`shutdown`](Self::shutdown)) and waits up to `grace` for every link to end,
    /// saying so in the log.
    pub async fn stop(&self, grace: Duration) {
        log::info!("broker shutting down: closing {} connections", self.live_links());
        self.shutdown();
        let left = self.wait_closed(grace).await;
        if left > 0 {
            log::warn!("{left} connections did not close within {grace:?}");
        }
        self.close_store().await;
    }

    /// Writes the last changes and the totals durably and stops the store's thread.
    async fn close_store(&self) {
        let Some(writer) = &self.shared.writer else { return };
        {
            let mut state = self.lock();
            state.router.save_totals();
            state.dispatch();
        }
        writer.close();
        let give_up = self.shared.runtime.now() + STORE_CLOSE_LIMIT;
        while !writer.is_finished() {
            let now = self.shared.runtime.now();
            if now >= give_up {
                log::error!(
                    "persistence store {} did not finish writing within {STORE_CLOSE_LIMIT:?}",
                    writer.location()
                );
                return;
            }
            self.shared.runtime.sleep_until(now + Duration::from_millis(10)).await;
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// Waits until every link has ended, or `limit` has passed; returns the links still open.
    pub async fn wait_closed(&self, limit: Duration) -> usize {
        let give_up = self.shared.runtime.now() + limit;
        loop {
            let live = self.live_links();
            let now = self.shared.runtime.now();
            if live == 0 || now >= give_up {
                return live;
            }
            self.shared.runtime.sleep_until((now + Duration::from_millis(10)).min(give_up)).await;
        }
    }

    /// Network connections being served now.
    #[must_use]
    pub fn live_links(&self) -> usize {
        self.shared.live_links.load(Ordering::Acquire)
    }

    /// A copy of the broker's counters (the figures behind `$SYS`).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.lock().router.stats().clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl<R> Shared<R> {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn link_ended(&self) {
        self.live_links.fetch_sub(1, Ordering::AcqRel);
    }
}
