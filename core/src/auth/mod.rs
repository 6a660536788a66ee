//! Plugins the router consults: authentication, topic authorisation and event hooks.
//!
//! Everything here is pure: no file is read and no task is spawned. A plugin that must wait
//! (a slow hash, a database, a web service) answers [`AuthDecision::Pending`]; the router then
//! reports [`RouterEvent::AuthPending`](crate::broker::RouterEvent::AuthPending), the driver
//! awaits [`Authenticator::authenticate_later`] outside the router's lock and hands the answer
//! back with [`Router::resolve_auth`](crate::broker::Router::resolve_auth). Other links go on
//! meanwhile; the waiting link's packets are held until the answer.
//!
//! Built in, selected by the names the configuration uses:
//! - `auth_anonymous`: [`AnonymousAuthenticator`] (`allow-anonymous`);
//! - `auth_file`: [`FileAuthenticator`] over a [`PasswordFile`] (`password-file`);
//! - `topic_acl`: [`TopicAcl`] (the `acl` mapping) and [`AclFile`] (mosquitto's `acl_file`),
//!   used through [`AclFileAuthorizer`] so that it can be re-read.
//!
//! # How answers combine
//! Authenticators are asked in order. A [`Deny`](AuthDecision::Deny) refuses the client at once;
//! otherwise the client is accepted if at least one authenticator allowed it. When none had an
//! opinion the client is refused with CONNACK 5 (not authorised). With no authenticator at all,
//! every client is accepted.
//!
//! Topic authorisers are asked in order too: a [`Verdict::Deny`] refuses, anything else allows
//! (so with none, everything is allowed).
//!
//! Hooks are told what happened, in the router, under its lock: they must return quickly (hand
//! slow work to a channel or task of your own).

mod acl;
mod hashing_threads;
mod password;
mod password_file;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

pub use acl::{AclError, AclFile, AclFileAuthorizer, TopicAcl, filter_covers};
pub use password::{
    ARGON2_M_COST, ARGON2_T_COST, HashError, HashScheme, HashingError, MOSQUITTO_PBKDF2_ITERATIONS, StoredHash,
    hash_password,
};
pub use password_file::{AnonymousAuthenticator, FileAuthenticator, PasswordFile, PasswordFileError};

use crate::broker::{CloseReason, Message};
use crate::codec::{QoS, ReasonCode};
use crate::topic::{TopicFilter, TopicName};

/// What a client presented in its CONNECT. The password is left out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The client identifier as sent (may be empty: the broker assigns one after).
    pub client_id: ByteString,
    /// The user name, if any.
    pub username: Option<ByteString>,
    /// The password, if any.
    pub password: Option<Bytes>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Why an authenticator refuses a client; decides the CONNACK return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// CONNACK 4: the user name is unknown or the password is wrong.
    BadCredentials,
    /// CONNACK 5: the client is not allowed in (no credentials where they are required).
    NotAuthorized,
    /// CONNACK 3: the authenticator cannot decide now (its backend is down, or it took too
    /// long); the client may try again later.
    Unavailable,
}

impl Refusal {
    /// The CONNACK reason code for this refusal.
    #[must_use]
    pub fn reason_code(self) -> ReasonCode {
        match self {
            Self::BadCredentials => ReasonCode::BadUserNameOrPassword,
            Self::NotAuthorized => ReasonCode::NotAuthorized,
            Self::Unavailable => ReasonCode::ServerUnavailable,
        }
    }
}

/// An authenticator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    /// The client may connect (unless a later authenticator denies it).
    Allow,
    /// The client is refused, with this reason.
    Deny(Refusal),
    /// This authenticator does not judge this client; the next one is asked.
    NoOpinion,
    /// The answer takes time: the driver awaits [`Authenticator::authenticate_later`].
    /// (From `authenticate_later` itself it counts as [`NoOpinion`](Self::NoOpinion).)
    Pending,
}

/// A decision being computed; the driver awaits it outside the router's lock.
pub type AuthFuture = Pin<Box<dyn Future<Output = AuthDecision> + Send + 'static>>;

/// Decides whether a client may connect.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// The plugin's name, for log lines (`auth_file`, ...).
    fn name(&self) -> &str;

    /// The quick answer, given under the router's lock: must not block. Answer
    /// [`AuthDecision::Pending`] to be asked again through
    /// [`authenticate_later`](Self::authenticate_later).
    fn authenticate(&self, credentials: &Credentials) -> AuthDecision;

    /// The slow answer, after [`authenticate`](Self::authenticate) said `Pending`. The driver
    /// polls the future on its runtime, outside the router's lock. The default answers
    /// [`AuthDecision::NoOpinion`].
    fn authenticate_later(&self, credentials: Credentials) -> AuthFuture {
        let _ = credentials;
        Box::pin(std::future::ready(AuthDecision::NoOpinion))
    }
}

/// Who asks for a topic: what authorisers and hooks know about a connected client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo<'a> {
    /// Its client identifier (the assigned one if it sent none).
    pub client_id: &'a str,
    /// Its user name, if it gave one.
    pub username: Option<&'a str>,
}

/// What a client wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicAccess<'a> {
    /// Publish to this topic (a refused PUBLISH is acknowledged, dropped and counted).
    Publish(&'a TopicName),
    /// Subscribe with this filter (refused: SUBACK failure 0x80). For `$share/<group>/<f>`,
    /// this is the whole filter; [`TopicFilter::pattern`] is `<f>`.
    Subscribe(&'a TopicFilter),
    /// Receive a message on this topic through a subscription it was granted (checked for
    /// every delivery when any authoriser is configured).
    Receive(&'a TopicName),
}

/// A topic authoriser's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed, as far as this authoriser is concerned.
    Allow,
    /// Refused.
    Deny,
    /// Not this authoriser's business.
    NoOpinion,
}

/// Decides which topics a client may publish to, subscribe to and receive from.
pub trait TopicAuthorizer: Send + Sync + fmt::Debug {
    /// The plugin's name, for log lines.
    fn name(&self) -> &str;

    /// Whether `client` may do `access`. Called under the router's lock: must not block.
    fn authorize(&self, client: &ClientInfo<'_>, access: TopicAccess<'_>) -> Verdict;
}

/// Told what happens in the broker. Every method has an empty default; called under the
/// router's lock, so each must return quickly.
#[allow(unused_variables)]
pub trait BrokerHooks: Send + Sync + fmt::Debug {
    /// The router was created.
    fn broker_started(&self) {}
    /// The broker is shutting down.
    fn broker_stopped(&self) {}
    /// A client connected (CONNACK 0 sent).
    fn client_connected(&self, client: &ClientInfo<'_>) {}
    /// A connected client's link ended.
    fn client_disconnected(&self, client: &ClientInfo<'_>, reason: &CloseReason) {}
    /// A client was granted a subscription.
    fn subscribed(&self, client: &ClientInfo<'_>, filter: &TopicFilter, qos: QoS) {}
    /// A client removed a subscription it had.
    fn unsubscribed(&self, client: &ClientInfo<'_>, filter: &TopicFilter) {}
    /// A client published a message that was accepted for routing.
    fn message_received(&self, client: &ClientInfo<'_>, message: &Message) {}
}

/// The plugins of one broker, in the order they are consulted.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    authenticators: Vec<Arc<dyn Authenticator>>,
    authorizers: Vec<Arc<dyn TopicAuthorizer>>,
    hooks: Vec<Arc<dyn BrokerHooks>>,
}

impl Plugins {
    /// No plugins: every client is accepted and may use every topic.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an authenticator after those already there.
    #[must_use]
    pub fn with_authenticator(mut self, plugin: Arc<dyn Authenticator>) -> Self {
        self.authenticators.push(plugin);
        self
    }

    /// Adds a topic authoriser after those already there.
    #[must_use]
    pub fn with_authorizer(mut self, plugin: Arc<dyn TopicAuthorizer>) -> Self {
        self.authorizers.push(plugin);
        self
    }

    /// Adds event hooks.
    #[must_use]
    pub fn with_hooks(mut self, plugin: Arc<dyn BrokerHooks>) -> Self {
        self.hooks.push(plugin);
        self
    }

    /// The authenticators, in order.
    #[must_use]
    pub fn authenticators(&self) -> &[Arc<dyn Authenticator>] {
        &self.authenticators
    }

    /// The topic authorisers, in order.
    #[must_use]
    pub fn authorizers(&self) -> &[Arc<dyn TopicAuthorizer>] {
        &self.authorizers
    }

    /// The hooks.
    #[must_use]
    pub fn hooks(&self) -> &[Arc<dyn BrokerHooks>] {
        &self.hooks
    }

    /// Whether `client` may do `access`: no authoriser denies it.
    #[must_use]
    pub fn authorize(&self, client: &ClientInfo<'_>, access: TopicAccess<'_>) -> bool {
        self.authorizers.iter().all(|a| a.authorize(client, access) != Verdict::Deny)
    }

    /// Asks authenticators from `start` on, `allowed` telling whether an earlier one allowed.
    pub(crate) fn authenticate_from(&self, start: usize, mut allowed: bool, credentials: &Credentials) -> AuthStep {
        for (index, plugin) in self.authenticators.iter().enumerate().skip(start) {
            match plugin.authenticate(credentials) {
                AuthDecision::Allow => allowed = true,
                AuthDecision::Deny(refusal) => {
                    return AuthStep::Refuse { refusal, plugin: Some(index) };
                }
                AuthDecision::NoOpinion => {}
                AuthDecision::Pending => return AuthStep::Pending { plugin: index, allowed },
            }
        }
        if allowed || self.authenticators.is_empty() {
            AuthStep::Accept
        } else {
            AuthStep::Refuse { refusal: Refusal::NotAuthorized, plugin: None }
        }
    }
}

/// Where the authenticator chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthStep {
    /// Accepted.
    Accept,
    /// Refused; by this plugin, or by nobody vouching for the client.
    Refuse { refusal: Refusal, plugin: Option<usize> },
    /// Plugin `plugin` needs time; `allowed` is what came before it.
    Pending { plugin: usize, allowed: bool },
}
