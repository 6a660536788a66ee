//! The client's background task: connects, drives the connection, reconnects.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::future::{Either, poll_fn, select};
use futures::io::{AsyncRead, AsyncWrite};

use super::{ClientError, Command, ConnectionEvent, Message, Reply, Route, Shared, WAIT_FOR_RECONNECT};
use crate::client::options::ClientOptions;
use crate::client::{Connection, DisconnectReason, Event, RequestId, UsageError};
use crate::codec::{ReasonCode, SubscriptionOptions};
use crate::driver::{BoxFuture, Connector, Runtime};
use crate::topic::TopicFilter;

/// How long opening the transport may take.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Size of the read buffer (on the poll's stack).
const READ_CHUNK: usize = 16 * 1024;

/// What a command waits for.
enum Waiter {
    Publish(Reply<()>),
    Subscribe {
        done: Reply<Vec<ReasonCode>>,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        route: Option<Route>,
    },
    /// Subscriptions made again after the broker lost the session; nobody waits.
    Resubscribe,
    Unsubscribe {
        done: Reply<()>,
        filters: Vec<TopicFilter>,
    },
}

/// How one run of [`Task::drive`] ended.
enum Outcome {
    /// The connection ended for this reason.
    Ended(DisconnectReason),
    /// The wait without a connection is over.
    Waited,
    /// The client was closed (disconnect asked for, or every handle dropped).
    Stopped,
}

pub(super) struct Task<R, C> {
    runtime: R,
    connector: C,
    options: Arc<ClientOptions>,
    conn: Connection,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    unclaimed: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    first: Option<oneshot::Sender<Result<(), ClientError>>>,
    waiting: HashMap<RequestId, Waiter>,
    /// Commands that need a connection, with the time they give up waiting.
    deferred: VecDeque<(Instant, Command)>,
    routes: Vec<Route>,
    /// Subscriptions the broker granted, made again when it loses the session.
    active: Vec<(TopicFilter, SubscriptionOptions)>,
    connected_once: bool,
    /// Connected during the current transport (resets the back-off).
    connected_now: bool,
    stop_replies: Vec<oneshot::Sender<()>>,
    stopping: bool,
    /// Messages for `deliver_message` dropped because it was not read.
    unclaimed_dropped: u64,
    timer: Option<(Instant, BoxFuture)>,
}

impl<R: Runtime, C: Connector> Task<R, C> {
    pub(super) fn new(
        runtime: R,
        connector: C,
        options: Arc<ClientOptions>,
        commands: mpsc::Receiver<Command>,
        unclaimed: mpsc::Sender<Message>,
        shared: Arc<Shared>,
        first: oneshot::Sender<Result<(), ClientError>>,
    ) -> Result<Self, ClientError> {
        let mut connect = options.connect_options();
        if connect.client_id.is_empty() && !connect.clean_session {
            // The original's default: a generated id, so that a persistent session works.
            let seed = runtime.unix_time() ^ (u64::from(std::process::id()) << 20);
            connect.client_id = format!("moat-{seed:x}").into();
        }
        let conn = Connection::new(connect);
        Ok(Self {
            runtime,
            connector,
            options,
            conn,
            commands,
            commands_open: true,
            unclaimed,
            shared,
            first: Some(first),
            waiting: HashMap::new(),
            deferred: VecDeque::new(),
            routes: Vec::new(),
            active: Vec::new(),
            connected_once: false,
            connected_now: false,
            stop_replies: Vec::new(),
            stopping: false,
            unclaimed_dropped: 0,
            timer: None,
        })
    }

    pub(super) async fn run(mut self) {
        let mut failures = 0u32;
        let error = loop {
            let mut last = String::new();
            match self.open().await {
                Ok(mut stream) => {
                    self.connected_now = false;
                    if let Err(e) = self.conn.start(self.runtime.now()) {
                        break ClientError::Usage(e);
                    }
                    match self.drive(Some(&mut stream), None).await {
                        Outcome::Stopped => break ClientError::Closed,
                        Outcome::Waited => {}
                        Outcome::Ended(reason) => {
                            log::info!("disconnected from {}: {reason}", self.options.url);
                            self.emit(ConnectionEvent::Disconnected { reason: reason.to_string() });
                            if let DisconnectReason::Refused(code) = reason {
                                break self.fail_first(ClientError::Refused(code));
                            }
                            if self.first.is_some() {
                                break self.fail_first(ClientError::GaveUp(reason.to_string()));
                            }
                            if self.connected_now {
                                failures = 0;
                            }
                            last = reason.to_string();
                        }
                    }
                }
                Err(reason) => {
                    let error = ClientError::Unreachable { url: self.options.url.to_string(), reason };
                    if self.first.is_some() {
                        break self.fail_first(error);
                    }
                    log::info!("{error}");
                    last = error.to_string();
                }
            }
            failures += 1;
            if !self.options.auto_reconnect || !self.options.reconnect_retries.allows(failures) {
                break ClientError::GaveUp(last);
            }
            let delay = self.options.reconnect_delay(failures - 1);
            log::info!("reconnecting to {} in {delay:?} (attempt {failures})", self.options.url);
            self.emit(ConnectionEvent::Reconnecting { attempt: failures, delay });
            let until = self.runtime.now() + delay;
            if let Outcome::Stopped = self.drive::<C::Stream>(None, Some(until)).await {
                break ClientError::Closed;
            }
        };
        self.finish(error);
    }

    /// Opens the transport, or says why it could not.
    async fn open(&mut self) -> Result<C::Stream, String> {
        let connect = self.connector.connect(&self.options.url);
        let timeout = self.runtime.sleep_until(self.runtime.now() + OPEN_TIMEOUT);
        match select(connect, timeout).await {
            Either::Left((Ok(stream), _)) => Ok(stream),
            Either::Left((Err(e), _)) => Err(e.to_string()),
            Either::Right(_) => Err(format!("no connection within {OPEN_TIMEOUT:?}")),
        }
    }

    fn fail_first(&mut self, error: ClientError) -> ClientError {
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error.clone()));
        }
        error
    }

    /// Serves commands, the connection (if any) and timers until the connection ends, the
    /// wait is over, or the client stops.
    async fn drive<S>(&mut self, mut stream: Option<&mut S>, until: Option<Instant>) -> Outcome
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut out = Vec::new();
        let mut written = 0;
        let mut ended: Option<DisconnectReason> = None;
        let mut read_done = false;
        let mut write_failed = false;
        poll_fn(|cx| {
            loop {
                let now = self.runtime.now();
                let mut moved = self.take_commands(cx, now, stream.is_some());
                if stream.is_none() && self.stopping {
                    return Poll::Ready(Outcome::Stopped);
                }
                if let Some(stream) = stream.as_deref_mut() {
                    if !read_done && ended.is_none() {
                        let mut buf = [0u8; READ_CHUNK];
                        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                            Poll::Pending => {}
                            Poll::Ready(Ok(n)) if n > 0 => {
                                self.conn.handle_bytes(now, &buf[..n]);
                                moved = true;
                            }
                            Poll::Ready(_) => {
                                read_done = true;
                                self.conn.handle_eof(now);
                                moved = true;
                            }
                        }
                    }
                    if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                        self.conn.handle_timeout(now);
                        moved = true;
                    }
                    while let Some(event) = self.conn.poll_event() {
                        moved = true;
                        match event {
                            Event::Disconnected(reason) => ended = Some(reason),
                            event => self.on_event(now, event),
                        }
                    }
                    if written == out.len() {
                        out.clear();
                        written = 0;
                        self.conn.poll_transmit(now, &mut out);
                    }
                    while written < out.len() && !write_failed {
                        match Pin::new(&mut *stream).poll_write(cx, &out[written..]) {
                            Poll::Pending => break,
                            Poll::Ready(Ok(n)) if n > 0 => {
                                written += n;
                                moved = true;
                            }
                            Poll::Ready(_) => {
                                write_failed = true;
                                self.conn.handle_eof(now);
                                moved = true;
                            }
                        }
                    }
                    if written == out.len() && !write_failed {
                        let _ = Pin::new(&mut *stream).poll_flush(cx);
                    }
                    if let Some(reason) = &ended
                        && (written == out.len() || write_failed)
                    {
                        if self.stopping || !self.commands_open {
                            return Poll::Ready(Outcome::Stopped);
                        }
                        return Poll::Ready(Outcome::Ended(reason.clone()));
                    }
                }
                moved |= self.expire_deferred(now);
                if let Some(until) = until
                    && now >= until
                {
                    return Poll::Ready(Outcome::Waited);
                }
                if moved {
                    continue;
                }
                let deadline =
                    [self.conn.poll_timeout().filter(|_| stream.is_some()), until, self.deferred.front().map(|d| d.0)]
                        .into_iter()
                        .flatten()
                        .min();
                if !self.poll_timer(cx, deadline) {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Arms the timer for `deadline`; true if it has passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            self.timer = None;
            return false;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != deadline) {
            self.timer = Some((deadline, self.runtime.sleep_until(deadline)));
        }
        self.timer.as_mut().is_some_and(|(_, sleep)| sleep.as_mut().poll(cx).is_ready())
    }

    /// Takes the commands waiting in the channel; true if there were any.
    fn take_commands(&mut self, cx: &mut Context<'_>, now: Instant, connected_transport: bool) -> bool {
        let mut moved = false;
        while self.commands_open {
            match self.commands.poll_next_unpin(cx) {
                Poll::Ready(Some(command)) => {
                    moved = true;
                    self.command(now, command);
                }
                Poll::Ready(None) => {
                    // Every handle is gone: say goodbye.
                    moved = true;
                    self.commands_open = false;
                    self.stop(now, connected_transport);
                }
                Poll::Pending => break,
            }
        }
        moved
    }

    fn stop(&mut self, now: Instant, connected_transport: bool) {
        self.stopping = true;
        if connected_transport {
            self.conn.disconnect(now);
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Publish { topic, payload, qos, retain, done } => {
                match self.conn.publish(now, topic.clone(), payload.clone(), qos, retain) {
                    Ok(id) => {
                        self.waiting.insert(id, Waiter::Publish(done));
                    }
                    Err(UsageError::NotConnected) => {
                        self.defer(now, Command::Publish { topic, payload, qos, retain, done });
                    }
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                    }
                }
            }
            Command::Subscribe { filters, route, done } => match self.conn.subscribe(now, filters.clone()) {
                Ok(id) => {
                    self.waiting.insert(id, Waiter::Subscribe { done, filters, route });
                }
                Err(UsageError::NotConnected) => self.defer(now, Command::Subscribe { filters, route, done }),
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            },
            Command::Unsubscribe { filters, done } => match self.conn.unsubscribe(now, filters.clone()) {
                Ok(id) => {
                    self.waiting.insert(id, Waiter::Unsubscribe { done, filters });
                }
                Err(UsageError::NotConnected) => self.defer(now, Command::Unsubscribe { filters, done }),
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            },
            Command::Disconnect { done } => {
                self.stop_replies.push(done);
                let open = self.conn.is_connected();
                self.stop(now, open);
            }
        }
    }

    fn defer(&mut self, now: Instant, command: Command) {
        self.deferred.push_back((now + WAIT_FOR_RECONNECT, command));
    }

    /// Fails deferred commands that waited too long; true if any did.
    fn expire_deferred(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while self.deferred.front().is_some_and(|(deadline, _)| *deadline <= now) {
            if let Some((_, command)) = self.deferred.pop_front() {
                fail(command, ClientError::NotConnected(WAIT_FOR_RECONNECT));
                moved = true;
            }
        }
        moved
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected { session_present } => {
                log::info!("connected to {} (session present: {session_present})", self.options.url);
                self.connected_now = true;
                self.emit(ConnectionEvent::Connected { session_present });
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
                if !session_present && self.connected_once && !self.active.is_empty() {
                    // The broker kept no session: subscribe again.
                    match self.conn.subscribe(now, self.active.clone()) {
                        Ok(id) => {
                            self.waiting.insert(id, Waiter::Resubscribe);
                        }
                        Err(e) => log::warn!("cannot subscribe again after reconnecting: {e}"),
                    }
                }
                self.connected_once = true;
                for (_, command) in std::mem::take(&mut self.deferred) {
                    self.command(now, command);
                }
            }
            Event::Message(publish) => self.route(Message::from_publish(publish)),
            Event::Published(id) => {
                if let Some(Waiter::Publish(done)) = self.waiting.remove(&id) {
                    let _ = done.send(Ok(()));
                }
            }
            Event::PublishRejected { id, reason } => {
                if let Some(Waiter::Publish(done)) = self.waiting.remove(&id) {
                    let _ = done.send(Err(ClientError::Rejected(reason)));
                }
            }
            Event::Subscribed { id, granted } => match self.waiting.remove(&id) {
                Some(Waiter::Subscribe { done, filters, route }) => {
                    for ((filter, options), code) in filters.into_iter().zip(&granted) {
                        if !code.is_error() {
                            self.active.retain(|(f, _)| *f != filter);
                            self.active.push((filter, options));
                        }
                    }
                    if let Some(route) = route
                        && granted.first().is_some_and(|code| !code.is_error())
                    {
                        self.routes.push(route);
                    }
                    let _ = done.send(Ok(granted));
                }
                Some(Waiter::Resubscribe) if granted.iter().any(|code| code.is_error()) => {
                    log::warn!("the broker refused some subscriptions made again: {granted:?}");
                }
                _ => {}
            },
            Event::Unsubscribed { id } => {
                if let Some(Waiter::Unsubscribe { done, filters }) = self.waiting.remove(&id) {
                    self.active.retain(|(f, _)| !filters.contains(f));
                    self.routes.retain(|r| !filters.contains(&r.filter));
                    let _ = done.send(Ok(()));
                }
            }
            Event::Refused(code) => log::warn!("{} refused the connection: {code}", self.options.url),
            other => log::debug!("client event: {other:?}"),
        }
    }

    /// Gives a message to every subscription it matches, or to `deliver_message`.
    fn route(&mut self, message: Message) {
        let mut claimed = false;
        self.routes.retain_mut(|route| {
            if !route.filter.matches(&message.topic) {
                return true;
            }
            claimed = true;
            match route.sender.try_send(message.clone()) {
                Ok(()) => true,
                // The Subscription was dropped.
                Err(e) if e.is_disconnected() => false,
                Err(_) => {
                    let dropped = route.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // Said at the 1st, 2nd, 4th, 8th ... drop, not at every one.
                    if dropped.is_power_of_two() {
                        log::warn!("subscription {:?} is not read: {dropped} messages dropped", route.filter);
                    }
                    true
                }
            }
        });
        if !claimed
            && let Err(e) = self.unclaimed.try_send(message)
            && !e.is_disconnected()
        {
            self.unclaimed_dropped += 1;
            if self.unclaimed_dropped.is_power_of_two() {
                log::warn!(
                    "deliver_message() is not read: {} messages no subscription claimed were dropped (last on {})",
                    self.unclaimed_dropped,
                    e.into_inner().topic
                );
            }
        }
    }

    fn emit(&self, event: ConnectionEvent) {
        self.shared.emit(&event);
    }

    /// The client is over: every waiting call learns why, and so does every later one.
    fn finish(mut self, error: ClientError) {
        if error != ClientError::Closed {
            log::warn!("client for {} ends: {error}", self.options.url);
            self.emit(ConnectionEvent::GaveUp { reason: error.to_string() });
        }
        *self.shared.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.clone());
        let _ = self.fail_first(error.clone());
        for (_, waiter) in self.waiting.drain() {
            match waiter {
                Waiter::Publish(done) => drop(done.send(Err(error.clone()))),
                Waiter::Subscribe { done, .. } => drop(done.send(Err(error.clone()))),
                Waiter::Unsubscribe { done, .. } => drop(done.send(Err(error.clone()))),
                Waiter::Resubscribe => {}
            }
        }
        for (_, command) in self.deferred.drain(..) {
            fail(command, error.clone());
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            fail(command, error.clone());
        }
        for reply in self.stop_replies.drain(..) {
            let _ = reply.send(());
        }
    }
}

fn fail(command: Command, error: ClientError) {
    match command {
        Command::Publish { done, .. } => drop(done.send(Err(error))),
        Command::Subscribe { done, .. } => drop(done.send(Err(error))),
        Command::Unsubscribe { done, .. } => drop(done.send(Err(error))),
        Command::Disconnect { done } => drop(done.send(())),
    }
}
