//! moat-mqtt on the tokio runtime.
//!
//! This crate will hold the tokio implementation of the core's runtime trait, the TCP, TLS and
//! WebSocket transports, listeners, and the async broker and client. For now it re-exports the
//! sans-IO core, which is all that exists yet.
#![forbid(unsafe_code)]

pub use moat_mqtt_core as core;
