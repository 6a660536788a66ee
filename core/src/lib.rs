//! The sans-IO core of moat-mqtt: MQTT 3.1, 3.1.1 and 5.0 as pure state machines.
//!
//! Nothing in this crate opens a socket, spawns a task, sleeps or reads the clock. Callers feed
//! it bytes, commands and the current time, and it hands back bytes to send, events, and the
//! next deadline. The async runtimes (`moat-mqtt-tokio`, `moat-mqtt-smol`), tests, fuzzers and
//! embedded users all drive the same logic.
//!
//! - [`codec`]: the packet model and its wire format, for every protocol level.
//! - [`broker`]: the broker core: per-link state machines and the router.
//! - [`topic`]: validated topic names and filters, and the subscription trie.
//! - `driver` (feature `driver`): the async loop the runtime crates share.
#![forbid(unsafe_code)]

pub mod broker;
pub mod codec;
#[cfg(feature = "driver")]
pub mod driver;
pub mod topic;
