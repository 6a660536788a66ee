//! The async loop that moves bytes between a transport and the core, written once for every
//! runtime (feature `driver`).
//!
//! It is generic over `futures::io::{AsyncRead, AsyncWrite}` and a small [`Runtime`] trait
//! (clock, timer, spawn), which `moat-mqtt-tokio` and `moat-mqtt-smol` implement. Each
//! network connection is one hand-written poll over read, write and its deadline, and links are
//! served in groups ([`BrokerCore::serve`]): one task polls the links of its group that were
//! woken, so an idle connection costs no task and no timer of its own; the shared [`Router`](crate::broker::Router) sits behind one
//! lock that a link takes only to hand over decoded events and collect packets to encode, so
//! decoding and encoding run on as many threads as the runtime has.
mod auth;
mod broker;
mod client;
mod connector;
mod group;
mod link;
mod listener;
mod persist;
mod poller;
mod runtime;
mod transport;

pub use auth::AUTH_TIMEOUT;
pub use broker::BrokerCore;
pub use client::{Client, ClientError, ConnectionEvent, Message, SUBSCRIPTION_QUEUE, Subscription, WAIT_FOR_RECONNECT};
pub use connector::{ConnectFuture, Connector, options_for_url};
pub use listener::{ListenerGate, serve_listener};
pub use persist::{RedbStore, STORE_FILE};
pub use poller::{PolledListener, PolledTcp, PollerSource};
pub use runtime::{BoxFuture, Runtime, WatchedPoller};
pub use transport::{Dialer, ListenerTransport, TransportConnector, TransportError, TransportStream, WsBytes};
