//! The broker core: per-link state machines and the shared router.
//!
//! Two kinds of state are kept apart, so that decoding and encoding run on as many threads as
//! there are connections while routing stays a pure function of its inputs:
//! - [`ServerConnection`]: one per network connection; framing, the CONNECT phase and
//!   keep-alive. It turns bytes into [`LinkEvent`]s and encodes the packets it is given.
//! - [`Router`]: sessions by client id (they outlive links), the subscription trie, retained
//!   messages, offline queues, wills and `$SYS` counters. Links meet it only to hand over
//!   events and collect packets, so it can sit behind one lock while links run in parallel.
mod config;
mod connection;
mod error;
mod message;
pub mod persist;
mod queue;
mod router;
mod session;
mod stats;

pub use config::{
    BrokerConfig, DEFAULT_BACKLOG, DEFAULT_HANDSHAKE_TIMEOUT, ListenerConfig, ListenerTls, ListenerWebSocket,
    OnCorrupt, PersistenceConfig, SyncMode,
};
pub use connection::{LinkConfig, LinkEvent, ServerConnection};
pub use error::{CloseReason, ProtocolError};
pub use message::Message;
pub use router::{LinkId, Router, RouterConfig, RouterEvent};
pub use stats::{Load, Stats};

#[cfg(test)]
mod sim_tests;
/// Every connected client holds one link and one session, most of them idle: their size is the
/// broker's memory per connection (BENCHMARKS.md). These bounds catch a field that grows them.
#[cfg(all(test, target_pointer_width = "64"))]
mod idle_size {
    #[test]
    fn link_and_session_state_stay_small() {
        let link = std::mem::size_of::<super::ServerConnection>();
        let session = std::mem::size_of::<super::session::Session>();
        assert!(link <= 96, "ServerConnection grew to {link} bytes");
        assert!(session <= 72, "Session grew to {session} bytes");
    }
}
