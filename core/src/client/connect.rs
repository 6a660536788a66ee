//! What a client asks for when it connects, and the limits it keeps to.

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;

use super::UsageError;
use crate::codec::{Connect, DEFAULT_MAX_PACKET_SIZE, Packet, Properties, ProtocolLevel, Will, encoded_len};

/// The settings of a [`Connection`](super::Connection): the CONNECT it sends and its local
/// limits. The defaults are those of the original MoaT-MQTT client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The client identifier. Empty asks the broker to assign one, which needs
    /// `clean_session` before MQTT 5 (MQTT-3.1.3-7).
    pub client_id: ByteString,
    /// Clean Session (Clean Start in MQTT 5): begin without the broker's stored session.
    /// Default true.
    pub clean_session: bool,
    /// The longest silence the client promises the broker; sent in whole seconds (rounded up,
    /// at most 65,535 s). Zero turns keep-alive off. Default 10 s.
    pub keep_alive: Duration,
    /// How long before the keep-alive runs out a PINGREQ is sent (the original's `ping_delay`).
    /// A value not below `keep_alive` pings at half the keep-alive instead. Default 1 s.
    pub ping_delay: Duration,
    /// How long the broker has to answer CONNECT with CONNACK; zero waits forever. Default 10 s.
    pub connect_timeout: Duration,
    /// The will message, published by the broker if the connection ends without DISCONNECT.
    pub will: Option<Will>,
    /// The user name, if any.
    pub username: Option<ByteString>,
    /// The password, if any (before MQTT 5 only together with a user name).
    pub password: Option<Bytes>,
    /// The protocol level to speak. Default 3.1.1. At 5.0 no properties are sent.
    pub level: ProtocolLevel,
    /// QoS 1/2 publishes in flight (sent and not yet acknowledged) at once; 0 is taken as 1.
    /// Default 20.
    pub max_inflight: usize,
    /// QoS 1/2 publishes waiting for a slot in the inflight window; a publish beyond this is
    /// refused with [`UsageError::TooManyPending`]. Default 1000.
    pub max_pending: usize,
    /// The largest packet accepted from the broker, fixed header included; a larger one is a
    /// protocol error. Default [`DEFAULT_MAX_PACKET_SIZE`] (1 MiB).
    pub max_packet_size: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            client_id: ByteString::new(),
            clean_session: true,
            keep_alive: Duration::from_secs(10),
            ping_delay: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            will: None,
            username: None,
            password: None,
            level: ProtocolLevel::V3_1_1,
            max_inflight: 20,
            max_pending: 1000,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
        }
    }
}

impl ConnectOptions {
    /// Options with `client_id` and every other setting at its default.
    #[must_use]
    pub fn new(client_id: impl Into<ByteString>) -> Self {
        Self { client_id: client_id.into(), ..Self::default() }
    }

    /// The keep-alive as sent in CONNECT: whole seconds, rounded up.
    ///
    /// # Errors
    /// [`UsageError::KeepAliveTooLong`] beyond 65,535 s.
    pub(super) fn keep_alive_secs(&self) -> Result<u16, UsageError> {
        let mut secs = self.keep_alive.as_secs();
        if self.keep_alive.subsec_nanos() > 0 {
            secs += 1;
        }
        u16::try_from(secs).map_err(|_| UsageError::KeepAliveTooLong(self.keep_alive))
    }

    /// The CONNECT these options ask for, checked to be sendable.
    ///
    /// # Errors
    /// [`UsageError`] when the options cannot make a valid CONNECT.
    pub(super) fn connect_packet(&self) -> Result<Packet, UsageError> {
        let keep_alive = self.keep_alive_secs()?;
        if self.client_id.is_empty() && !self.clean_session && !self.level.is_v5() {
            return Err(UsageError::EmptyClientIdNeedsCleanSession);
        }
        let packet = Packet::Connect(Connect {
            level: self.level,
            clean_start: self.clean_session,
            keep_alive,
            client_id: self.client_id.clone(),
            will: self.will.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            properties: Properties::new(),
        });
        encoded_len(&packet, self.level).map_err(UsageError::InvalidOptions)?;
        Ok(packet)
    }

    /// The inflight window: `max_inflight`, at least 1 and at most the number of packet ids.
    pub(super) fn window(&self) -> usize {
        self.max_inflight.clamp(1, usize::from(u16::MAX))
    }
}

/// When to send PINGREQ after the last packet sent, for a keep-alive of `keep_alive`.
pub(super) fn ping_interval(keep_alive: Duration, ping_delay: Duration) -> Duration {
    if ping_delay < keep_alive { keep_alive - ping_delay } else { keep_alive / 2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_rounds_up_and_is_bounded() {
        let mut o = ConnectOptions::default();
        assert_eq!(o.keep_alive_secs(), Ok(10));
        o.keep_alive = Duration::from_millis(1500);
        assert_eq!(o.keep_alive_secs(), Ok(2));
        o.keep_alive = Duration::from_secs(65_536);
        assert_eq!(o.keep_alive_secs(), Err(UsageError::KeepAliveTooLong(o.keep_alive)));
    }

    #[test]
    fn ping_interval_falls_back_to_half() {
        let s = Duration::from_secs;
        assert_eq!(ping_interval(s(10), s(1)), s(9));
        assert_eq!(ping_interval(s(1), s(1)), Duration::from_millis(500));
    }

    #[test]
    fn empty_client_id_needs_clean_session_before_v5() {
        let o = ConnectOptions { clean_session: false, ..ConnectOptions::default() };
        assert_eq!(o.connect_packet(), Err(UsageError::EmptyClientIdNeedsCleanSession));
        let o = ConnectOptions { level: ProtocolLevel::V5, ..o };
        assert!(o.connect_packet().is_ok());
    }

    #[test]
    fn password_without_user_name_is_refused_before_v5() {
        let o = ConnectOptions { password: Some(Bytes::from_static(b"pw")), ..ConnectOptions::new("c") };
        assert!(matches!(o.connect_packet(), Err(UsageError::InvalidOptions(_))));
    }
}
