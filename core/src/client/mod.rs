//! The client core: one MQTT client session as a pure state machine.
//!
//! [`Connection`] speaks MQTT 3.1, 3.1.1 and 5.0 to one broker over any byte transport the
//! caller provides, one transport at a time: bytes, commands and the current time go in; bytes
//! to write, [`Event`]s and the next deadline come out. The session (messages in flight,
//! packet identifiers, the queue of publishes waiting for a slot in the inflight window, QoS 2
//! messages received and not yet released) outlives the transport, so that a reconnect resumes
//! where the last connection stopped.
//!
//! - [`ConnectOptions`]: what the client asks for when it connects, and its local limits.
//! - [`Connection`]: the state machine, with its calling contract.
//! - [`Event`]: what it reports; [`RequestId`] matches completions to commands.
//! - [`UsageError`] (the caller's mistakes), [`ProtocolError`] (the broker's),
//!   [`DisconnectReason`] (why a connection ended).
//!
//! `core/examples/blocking_client.rs` drives it over a blocking `std::net::TcpStream`.
pub mod options;

mod connect;
mod connection;
mod error;
mod event;
mod packet_ids;
mod session;

pub use connect::ConnectOptions;
pub use connection::Connection;
pub use error::{DisconnectReason, ProtocolError, UsageError};
pub use event::{ConnectionState, Event, RequestId};

#[cfg(test)]
mod scripted_tests;
#[cfg(test)]
mod sim_tests;
