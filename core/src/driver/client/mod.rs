//! The async client, written once for every runtime: a background task drives
//! [`crate::client::Connection`] over a transport from a [`Connector`]; [`Client`] handles send
//! it commands and await their completion.
//!
//! - [`Client::publish`] returns when the QoS flow completes (at once for QoS 0 once written,
//!   PUBACK for QoS 1, PUBCOMP for QoS 2), or with an error, never a silent success.
//! - [`Client::subscription`] is a [`Stream`] of the messages matching one filter; a message
//!   matching several subscriptions goes to each; [`Client::deliver_message`] yields what no
//!   subscription claimed.
//! - The task never waits for a slow reader: each subscription queues up to
//!   [`SUBSCRIPTION_QUEUE`] messages, and beyond that the newest message is dropped, logged
//!   and counted ([`Subscription::dropped`]). So an application that stops reading one stream
//!   never stalls the connection, its keep-alive or the other streams.
//! - With `auto_reconnect`, a lost connection is retried with exponential back-off up to
//!   `reconnect_max_interval`, `reconnect_retries` times (negative: forever). On reconnect,
//!   unacknowledged QoS 1/2 messages are resent (DUP) and, when the broker kept no session,
//!   the subscriptions are made again. Calls made while disconnected wait for the reconnect,
//!   at most [`WAIT_FOR_RECONNECT`]; once reconnecting is given up they fail with
//!   [`ClientError::GaveUp`]. [`Client::events`] reports connected, disconnected,
//!   reconnecting and gave-up.

mod task;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, Stream, StreamExt};
use thiserror::Error;

use super::{Connector, Runtime};
use crate::client::UsageError;
use crate::client::options::ClientOptions;
use crate::codec::{Publish, QoS, ReasonCode, SubscriptionOptions};
use crate::payload::{Codec, CodecError, Value};
use crate::topic::{TopicError, TopicFilter, TopicName};

/// Messages one subscription holds for its reader before the newest are dropped.
pub const SUBSCRIPTION_QUEUE: usize = 1000;
/// How long a call made while disconnected waits for the reconnect.
pub const WAIT_FOR_RECONNECT: Duration = Duration::from_secs(60);
/// Commands queued from handles to the task.
const COMMAND_QUEUE: usize = 256;

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The broker could not be reached at all (first connection).
    #[error("cannot reach the broker at {url}: {reason}")]
    Unreachable {
        /// The URL tried (password elided).
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The broker refused the connection (CONNACK return code / reason).
    #[error("the broker refused the connection: {0}")]
    Refused(ReasonCode),
    /// The connection was lost and reconnecting was given up (or is off).
    #[error("disconnected, and reconnecting was given up: {0}")]
    GaveUp(String),
    /// The call waited for a reconnect that did not come in time.
    #[error("not connected: waited {0:?} for a reconnect")]
    NotConnected(Duration),
    /// The client was closed with [`Client::disconnect`].
    #[error("the client is closed")]
    Closed,
    /// The broker answered a publish with a failure (MQTT 5).
    #[error("the broker rejected the publish: {0}")]
    Rejected(ReasonCode),
    /// The request cannot be made (see [`UsageError`]).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A topic name or filter is not valid.
    #[error("invalid topic: {0}")]
    Topic(#[from] TopicError),
    /// A payload could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// What happened to the connection, for whoever listens ([`Client::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// Connected (again); whether the broker kept the session.
    Connected {
        /// The broker resumed a stored session.
        session_present: bool,
    },
    /// The connection ended, and why.
    Disconnected {
        /// The reason, as text.
        reason: String,
    },
    /// Waiting before connection attempt number `attempt`.
    Reconnecting {
        /// 1 for the first retry.
        attempt: u32,
        /// How long it waits first.
        delay: Duration,
    },
    /// No more attempts: every call fails from now on.
    GaveUp {
        /// The last reason.
        reason: String,
    },
}

/// A message the broker delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published.
    pub topic: TopicName,
    /// The raw payload.
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// Set for a retained message sent because of a new subscription.
    pub retain: bool,
    /// Set when the broker resent it.
    pub dup: bool,
}

impl Message {
    fn from_publish(publish: Publish) -> Self {
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            dup: publish.dup,
        }
    }

    /// The payload decoded by `codec`.
    ///
    /// # Errors
    /// [`CodecError`] when the payload is not what the codec reads.
    pub fn decode(&self, codec: &Codec) -> Result<Value, CodecError> {
        codec.decode_bytes(self.payload.clone())
    }
}

/// A command from a handle to the task.
enum Command {
    Publish { topic: TopicName, payload: Bytes, qos: QoS, retain: bool, done: oneshot::Sender<Result<(), ClientError>> },
    Subscribe { filters: Vec<(TopicFilter, SubscriptionOptions)>, route: Option<Route>, done: Reply<Vec<ReasonCode>> },
    Unsubscribe { filters: Vec<TopicFilter>, done: Reply<()> },
    Disconnect { done: oneshot::Sender<()> },
}

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// Where the messages of one [`Subscription`] go.
struct Route {
    filter: TopicFilter,
    sender: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

/// What handles share with the task.
#[derive(Default)]
struct Shared {
    /// Set when the task ended: why later calls fail.
    ended: Mutex<Option<ClientError>>,
    listeners: Mutex<Vec<mpsc::Sender<ConnectionEvent>>>,
}

impl Shared {
    fn ended(&self) -> ClientError {
        self.ended.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or(ClientError::Closed)
    }

    fn emit(&self, event: &ConnectionEvent) {
        let mut listeners = self.listeners.lock().unwrap_or_else(PoisonError::into_inner);
        listeners.retain_mut(|l| !matches!(l.try_send(event.clone()), Err(e) if e.is_disconnected()));
    }
}

/// An MQTT client connected to one broker; clone it freely, every clone is the same client.
///
/// Dropping the last handle (and every [`Subscription`]) disconnects cleanly.
pub struct Client {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    options: Arc<ClientOptions>,
    codec: Codec,
    unclaimed: Arc<futures::lock::Mutex<mpsc::Receiver<Message>>>,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            shared: Arc::clone(&self.shared),
            options: Arc::clone(&self.options),
            codec: self.codec.clone(),
            unclaimed: Arc::clone(&self.unclaimed),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.options.url.to_string()).finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the broker of `options.url` and returns once the broker accepted (CONNACK 0).
    ///
    /// The background task runs on `runtime`; `connector` opens the transport.
    ///
    /// # Errors
    /// [`ClientError::Unreachable`] if the transport cannot be opened,
    /// [`ClientError::Refused`] with the broker's reason, [`ClientError::Codec`] if
    /// `options.codec` names no codec, [`ClientError::Usage`] for options that make no valid
    /// CONNECT. The first connection is not retried: reconnecting is for connections lost later.
    pub async fn connect<R: Runtime, C: Connector>(
        runtime: R,
        connector: C,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let codec = Codec::from_options(&options)?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let (unclaimed_tx, unclaimed_rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let (first_tx, first_rx) = oneshot::channel();
        let shared = Arc::new(Shared::default());
        let options = Arc::new(options);
        let task = task::Task::new(
            runtime.clone(),
            connector,
            Arc::clone(&options),
            receiver,
            unclaimed_tx,
            Arc::clone(&shared),
            first_tx,
        )?;
        runtime.spawn(Box::pin(task.run()));
        match first_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(shared.ended()),
        }
        Ok(Self { commands, shared, options, codec, unclaimed: Arc::new(futures::lock::Mutex::new(unclaimed_rx)) })
    }

    /// The options it was made with.
    #[must_use]
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The client's default codec (`codec` in the options).
    #[must_use]
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Publishes raw bytes; returns when the QoS flow completes.
    ///
    /// # Errors
    /// [`ClientError`] says why the message was not (known to be) delivered to the broker.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), ClientError> {
        let topic = TopicName::new(topic.to_owned())?;
        let (done, result) = oneshot::channel();
        self.send(Command::Publish { topic, payload: payload.into(), qos, retain, done }).await?;
        self.answer(result).await
    }

    /// Publishes `value` encoded by `codec` (default: the client's), with the QoS and RETAIN
    /// given or else the defaults for that topic (`topics`, `default_qos`, `default_retain`).
    ///
    /// # Errors
    /// As [`publish`](Self::publish), and [`ClientError::Codec`] if `value` does not encode.
    pub async fn publish_value(
        &self,
        topic: &str,
        value: &Value,
        codec: Option<&Codec>,
        qos: Option<QoS>,
        retain: Option<bool>,
    ) -> Result<(), ClientError> {
        let name = TopicName::new(topic.to_owned())?;
        let (default_qos, default_retain) = self.options.defaults_for(&name);
        let payload = codec.unwrap_or(&self.codec).encode(value)?;
        self.publish(topic, payload, qos.unwrap_or(default_qos), retain.unwrap_or(default_retain)).await
    }

    /// Subscribes to filters; returns the broker's code per filter (`GrantedQoS0..2` or a
    /// failure). Matching messages go to [`deliver_message`](Self::deliver_message) unless a
    /// [`subscription`](Self::subscription) claims them.
    ///
    /// # Errors
    /// [`ClientError`] when the SUBSCRIBE could not be made or answered.
    pub async fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<ReasonCode>, ClientError> {
        let filters = parse_filters(filters)?;
        let (done, result) = oneshot::channel();
        self.send(Command::Subscribe { filters, route: None, done }).await?;
        self.answer(result).await
    }

    /// Unsubscribes from filters (and ends their [`Subscription`] streams).
    ///
    /// # Errors
    /// [`ClientError`] when the UNSUBSCRIBE could not be made or answered.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<(), ClientError> {
        let filters =
            filters.iter().map(|f| TopicFilter::new((*f).to_owned())).collect::<Result<Vec<_>, TopicError>>()?;
        let (done, result) = oneshot::channel();
        self.send(Command::Unsubscribe { filters, done }).await?;
        self.answer(result).await
    }

    /// Subscribes to `filter` and returns the stream of the messages that match it, decoded
    /// by the client's codec when read with [`Subscription::next_value`].
    ///
    /// # Errors
    /// [`ClientError`] when the subscription could not be made; a SUBACK failure code is
    /// [`ClientError::Refused`] with that code.
    pub async fn subscription(&self, filter: &str, qos: QoS) -> Result<Subscription, ClientError> {
        self.subscription_with_codec(filter, qos, self.codec.clone()).await
    }

    /// [`subscription`](Self::subscription) with a codec of its own.
    ///
    /// # Errors
    /// As [`subscription`](Self::subscription).
    pub async fn subscription_with_codec(
        &self,
        filter: &str,
        qos: QoS,
        codec: Codec,
    ) -> Result<Subscription, ClientError> {
        let topic_filter = TopicFilter::new(filter.to_owned())?;
        let (sender, messages) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let route = Route { filter: topic_filter.clone(), sender, dropped: Arc::clone(&dropped) };
        let (done, result) = oneshot::channel();
        let filters = vec![(topic_filter.clone(), SubscriptionOptions::qos(qos))];
        self.send(Command::Subscribe { filters, route: Some(route), done }).await?;
        let granted = self.answer(result).await?;
        match granted.first() {
            Some(code) if !code.is_error() => {}
            Some(code) => return Err(ClientError::Refused(*code)),
            None => return Err(ClientError::Refused(ReasonCode::UnspecifiedError)),
        }
        Ok(Subscription { filter: topic_filter, qos, codec, messages, dropped, client: self.clone() })
    }

    /// The next message no [`Subscription`] claimed; `None` once the client has ended.
    pub async fn deliver_message(&self) -> Option<Message> {
        self.unclaimed.lock().await.next().await
    }

    /// A stream of connection events from now on (connected, disconnected, reconnecting,
    /// gave up). Events are dropped for a listener that has 64 unread.
    #[must_use]
    pub fn events(&self) -> mpsc::Receiver<ConnectionEvent> {
        let (sender, receiver) = mpsc::channel(64);
        self.shared.listeners.lock().unwrap_or_else(PoisonError::into_inner).push(sender);
        receiver
    }

    /// Disconnects cleanly (DISCONNECT, so no will) after what is in flight was sent, and
    /// ends the client for every handle.
    pub async fn disconnect(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.clone().send(Command::Disconnect { done }).await.is_ok() {
            let _ = finished.await;
        }
    }

    async fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands.clone().send(command).await.map_err(|_| self.shared.ended())
    }

    async fn answer<T>(&self, result: oneshot::Receiver<Result<T, ClientError>>) -> Result<T, ClientError> {
        match result.await {
            Ok(answer) => answer,
            Err(_) => Err(self.shared.ended()),
        }
    }
}

fn parse_filters(filters: &[(&str, QoS)]) -> Result<Vec<(TopicFilter, SubscriptionOptions)>, TopicError> {
    filters.iter().map(|(f, qos)| Ok((TopicFilter::new((*f).to_owned())?, SubscriptionOptions::qos(*qos)))).collect()
}

/// The messages matching one filter, as a [`Stream`]; created by [`Client::subscription`].
///
/// Holds up to [`SUBSCRIPTION_QUEUE`] unread messages; beyond that the newest are dropped
/// and counted in [`dropped`](Self::dropped). The stream ends when the client ends or the
/// filter is unsubscribed.
pub struct Subscription {
    filter: TopicFilter,
    qos: QoS,
    codec: Codec,
    messages: mpsc::Receiver<Message>,
    dropped: Arc<AtomicU64>,
    client: Client,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("filter", &self.filter).field("qos", &self.qos).finish_non_exhaustive()
    }
}

impl Subscription {
    /// The filter.
    #[must_use]
    pub fn filter(&self) -> &TopicFilter {
        &self.filter
    }

    /// The subscription's codec.
    #[must_use]
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Messages dropped because this stream was not read fast enough.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The next message and its payload decoded by the subscription's codec.
    pub async fn next_value(&mut self) -> Option<(Message, Result<Value, CodecError>)> {
        let message = self.messages.next().await?;
        let value = message.decode(&self.codec);
        Some((message, value))
    }

    /// Publishes `value` with the subscription's codec and QoS (RETAIN from the topic's
    /// defaults).
    ///
    /// # Errors
    /// As [`Client::publish_value`].
    pub async fn publish(&self, topic: &str, value: &Value) -> Result<(), ClientError> {
        self.client.publish_value(topic, value, Some(&self.codec), Some(self.qos), None).await
    }

    /// The client this subscription belongs to.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.poll_next_unpin(cx)
    }
}
