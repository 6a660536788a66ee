//! MQTT 5 reason codes, which also stand for the return codes of MQTT 3.1 and 3.1.1.

use super::PacketType;

macro_rules! reason_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $text:literal; )*) => {
        /// An MQTT 5 reason code (specification section 2.4).
        ///
        /// The value 0x00 means "Success", "Normal disconnection" or "Granted QoS 0" depending on
        /// the packet; this type calls it [`ReasonCode::Success`] everywhere.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ReasonCode {
            $( $(#[$doc])* $name = $value, )*
        }

        impl ReasonCode {
            /// The reason code for a wire value, if the specification defines one.
            #[must_use]
            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $( $value => Some(Self::$name), )*
                    _ => None,
                }
            }

            /// The specification's name for this code.
            #[must_use]
            pub const fn description(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                }
            }
        }
    };
}

reason_codes! {
    /// 0x00: success, normal disconnection, or granted QoS 0.
    Success = 0x00, "success";
    /// 0x01: granted QoS 1.
    GrantedQoS1 = 0x01, "granted QoS 1";
    /// 0x02: granted QoS 2.
    GrantedQoS2 = 0x02, "granted QoS 2";
    /// 0x04: disconnect, but publish the will message.
    DisconnectWithWillMessage = 0x04, "disconnect with will message";
    /// 0x10: accepted, but nobody is subscribed.
    NoMatchingSubscribers = 0x10, "no matching subscribers";
    /// 0x11: there was no such subscription.
    NoSubscriptionExisted = 0x11, "no subscription existed";
    /// 0x18: continue the authentication exchange.
    ContinueAuthentication = 0x18, "continue authentication";
    /// 0x19: start re-authentication.
    ReAuthenticate = 0x19, "re-authenticate";
    /// 0x80: unspecified error (also the SUBACK failure code of MQTT 3.1.1).
    UnspecifiedError = 0x80, "unspecified error";
    /// 0x81: the packet could not be parsed.
    MalformedPacket = 0x81, "malformed packet";
    /// 0x82: the packet broke the protocol.
    ProtocolError = 0x82, "protocol error";
    /// 0x83: valid, but not accepted by this implementation.
    ImplementationSpecificError = 0x83, "implementation specific error";
    /// 0x84: the broker does not speak the requested protocol level.
    UnsupportedProtocolVersion = 0x84, "unsupported protocol version";
    /// 0x85: the client identifier is not allowed.
    ClientIdentifierNotValid = 0x85, "client identifier not valid";
    /// 0x86: bad user name or password.
    BadUserNameOrPassword = 0x86, "bad user name or password";
    /// 0x87: not authorized.
    NotAuthorized = 0x87, "not authorized";
    /// 0x88: the server is unavailable.
    ServerUnavailable = 0x88, "server unavailable";
    /// 0x89: the server is busy.
    ServerBusy = 0x89, "server busy";
    /// 0x8A: the client is banned.
    Banned = 0x8A, "banned";
    /// 0x8B: the server is shutting down.
    ServerShuttingDown = 0x8B, "server shutting down";
    /// 0x8C: bad authentication method.
    BadAuthenticationMethod = 0x8C, "bad authentication method";
    /// 0x8D: keep-alive timeout.
    KeepAliveTimeout = 0x8D, "keep alive timeout";
    /// 0x8E: another connection took over the session.
    SessionTakenOver = 0x8E, "session taken over";
    /// 0x8F: the topic filter is not valid here.
    TopicFilterInvalid = 0x8F, "topic filter invalid";
    /// 0x90: the topic name is not valid here.
    TopicNameInvalid = 0x90, "topic name invalid";
    /// 0x91: the packet identifier is in use.
    PacketIdentifierInUse = 0x91, "packet identifier in use";
    /// 0x92: the packet identifier is unknown.
    PacketIdentifierNotFound = 0x92, "packet identifier not found";
    /// 0x93: more QoS 1/2 publications in flight than Receive Maximum allows.
    ReceiveMaximumExceeded = 0x93, "receive maximum exceeded";
    /// 0x94: the topic alias is invalid.
    TopicAliasInvalid = 0x94, "topic alias invalid";
    /// 0x95: the packet is larger than allowed.
    PacketTooLarge = 0x95, "packet too large";
    /// 0x96: messages arrive too fast.
    MessageRateTooHigh = 0x96, "message rate too high";
    /// 0x97: a quota is exceeded.
    QuotaExceeded = 0x97, "quota exceeded";
    /// 0x98: closed by an administrator.
    AdministrativeAction = 0x98, "administrative action";
    /// 0x99: the payload does not match its Payload Format Indicator.
    PayloadFormatInvalid = 0x99, "payload format invalid";
    /// 0x9A: retained messages are not supported.
    RetainNotSupported = 0x9A, "retain not supported";
    /// 0x9B: the QoS is not supported.
    QoSNotSupported = 0x9B, "QoS not supported";
    /// 0x9C: use another server, temporarily.
    UseAnotherServer = 0x9C, "use another server";
    /// 0x9D: the server has moved, permanently.
    ServerMoved = 0x9D, "server moved";
    /// 0x9E: shared subscriptions are not supported.
    SharedSubscriptionsNotSupported = 0x9E, "shared subscriptions not supported";
    /// 0x9F: connections arrive too fast.
    ConnectionRateExceeded = 0x9F, "connection rate exceeded";
    /// 0xA0: the maximum connect time is reached.
    MaximumConnectTime = 0xA0, "maximum connect time";
    /// 0xA1: subscription identifiers are not supported.
    SubscriptionIdentifiersNotSupported = 0xA1, "subscription identifiers not supported";
    /// 0xA2: wildcard subscriptions are not supported.
    WildcardSubscriptionsNotSupported = 0xA2, "wildcard subscriptions not supported";
}

impl ReasonCode {
    /// True for codes 0x80 and above, which report failure.
    #[must_use]
    pub const fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// Whether MQTT 5 allows this code in a packet of type `packet` (specification 2.4, table 2-6).
    #[must_use]
    pub fn allowed_in(self, packet: PacketType) -> bool {
        use ReasonCode as R;
        match packet {
            PacketType::Connack => matches!(
                self,
                R::Success
                    | R::UnspecifiedError
                    | R::MalformedPacket
                    | R::ProtocolError
                    | R::ImplementationSpecificError
                    | R::UnsupportedProtocolVersion
                    | R::ClientIdentifierNotValid
                    | R::BadUserNameOrPassword
                    | R::NotAuthorized
                    | R::ServerUnavailable
                    | R::ServerBusy
                    | R::Banned
                    | R::BadAuthenticationMethod
                    | R::TopicNameInvalid
                    | R::PacketTooLarge
                    | R::QuotaExceeded
                    | R::PayloadFormatInvalid
                    | R::RetainNotSupported
                    | R::QoSNotSupported
                    | R::UseAnotherServer
                    | R::ServerMoved
                    | R::ConnectionRateExceeded
            ),
            PacketType::Puback | PacketType::Pubrec => matches!(
                self,
                R::Success
                    | R::NoMatchingSubscribers
                    | R::UnspecifiedError
                    | R::ImplementationSpecificError
                    | R::NotAuthorized
                    | R::TopicNameInvalid
                    | R::PacketIdentifierInUse
                    | R::QuotaExceeded
                    | R::PayloadFormatInvalid
            ),
            PacketType::Pubrel | PacketType::Pubcomp => {
                matches!(self, R::Success | R::PacketIdentifierNotFound)
            }
            PacketType::Suback => matches!(
                self,
                R::Success
                    | R::GrantedQoS1
                    | R::GrantedQoS2
                    | R::UnspecifiedError
                    | R::ImplementationSpecificError
                    | R::NotAuthorized
                    | R::TopicFilterInvalid
                    | R::PacketIdentifierInUse
                    | R::QuotaExceeded
                    | R::SharedSubscriptionsNotSupported
                    | R::SubscriptionIdentifiersNotSupported
                    | R::WildcardSubscriptionsNotSupported
            ),
            PacketType::Unsuback => matches!(
                self,
                R::Success
                    | R::NoSubscriptionExisted
                    | R::UnspecifiedError
                    | R::ImplementationSpecificError
                    | R::NotAuthorized
                    | R::TopicFilterInvalid
                    | R::PacketIdentifierInUse
            ),
            PacketType::Disconnect => !matches!(
                self,
                R::GrantedQoS1
                    | R::GrantedQoS2
                    | R::NoMatchingSubscribers
                    | R::NoSubscriptionExisted
                    | R::ContinueAuthentication
                    | R::ReAuthenticate
                    | R::UnsupportedProtocolVersion
                    | R::ClientIdentifierNotValid
                    | R::BadUserNameOrPassword
                    | R::ServerUnavailable
                    | R::Banned
                    | R::BadAuthenticationMethod
                    | R::PacketIdentifierInUse
                    | R::PacketIdentifierNotFound
            ),
            PacketType::Auth => matches!(self, R::Success | R::ContinueAuthentication | R::ReAuthenticate),
            _ => false,
        }
    }

    /// The CONNACK return code of MQTT 3.1/3.1.1 that stands for this reason.
    ///
    /// Failures without an exact match are sent as the nearest: refusals of the client's
    /// identity (banned, bad authentication method) as 5 "not authorized", everything else as
    /// 3 "server unavailable".
    #[must_use]
    pub const fn v3_connack_code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::UnsupportedProtocolVersion => 1,
            Self::ClientIdentifierNotValid => 2,
            Self::BadUserNameOrPassword => 4,
            Self::NotAuthorized | Self::Banned | Self::BadAuthenticationMethod => 5,
            _ => 3,
        }
    }

    /// The reason for an MQTT 3.1/3.1.1 CONNACK return code 0..=5.
    #[must_use]
    pub const fn from_v3_connack_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Success,
            1 => Self::UnsupportedProtocolVersion,
            2 => Self::ClientIdentifierNotValid,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The SUBACK return code of MQTT 3.1/3.1.1: the granted QoS, or 0x80 for any failure.
    #[must_use]
    pub const fn v3_suback_code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::GrantedQoS1 => 1,
            Self::GrantedQoS2 => 2,
            _ => 0x80,
        }
    }

    /// The reason code that grants `qos` in a SUBACK.
    #[must_use]
    pub const fn granted(qos: super::QoS) -> Self {
        match qos {
            super::QoS::AtMostOnce => Self::Success,
            super::QoS::AtLeastOnce => Self::GrantedQoS1,
            super::QoS::ExactlyOnce => Self::GrantedQoS2,
        }
    }

    /// The QoS a SUBACK reason code grants, or `None` for a failure.
    #[must_use]
    pub const fn granted_qos(self) -> Option<super::QoS> {
        match self {
            Self::Success => Some(super::QoS::AtMostOnce),
            Self::GrantedQoS1 => Some(super::QoS::AtLeastOnce),
            Self::GrantedQoS2 => Some(super::QoS::ExactlyOnce),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (0x{:02X})", self.description(), *self as u8)
    }
}
