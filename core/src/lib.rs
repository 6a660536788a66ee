//! The sans-IO core of moat-mqtt: MQTT 3.1, 3.1.1 and 5.0 as pure state machines.
//!
//! Nothing in this crate opens a socket, spawns a task, sleeps or reads the clock. Callers feed
//! it bytes, commands and the current time, and it hands back bytes to send, events, and the
//! next deadline. The async runtimes (`moat-mqtt-tokio`, `moat-mqtt-smol`), tests, fuzzers and
//! embedded users all drive the same logic.
//!
//! - [`codec`]: the packet model and its wire format, for every protocol level.
//! - [`auth`]: plugins the router consults: authentication, topic authorisation, hooks.
//! - [`broker`]: the broker core: per-link state machines and the router.
//! - [`client`]: the client core: one session with a broker over a series of connections.
//! - [`topic`]: validated topic names and filters, and the subscription trie.
//! - `driver` (feature `driver`): the async loop the runtime crates share.
//! - `payload` (feature `payload`): the client's payload codecs (binary, utf8, json, msgpack,
//!   cbor, bool, null).
#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod client;
pub mod codec;
#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "payload")]
pub mod payload;
pub mod topic;
