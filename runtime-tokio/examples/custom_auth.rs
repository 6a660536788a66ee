//! Embedding the broker with plugins of your own: an asynchronous authenticator, an ACL and
//! event hooks, registered from Rust.
//!
//! ```sh
//! cargo run -p moat-mqtt-tokio --example custom_auth
//! mosquitto_pub -p 1883 -u alice -P wonderland -t rooms/alice/light -m on    # accepted
//! mosquitto_pub -p 1883 -u alice -P wrong -t rooms/alice/light -m on         # CONNACK 4
//! mosquitto_sub -p 1883 -u alice -P wonderland -t 'rooms/#'                  # SUBACK 0x80
//! ```
//! The authenticator pretends to ask a remote service: it answers `Pending`, and the broker
//! awaits its future outside the router's lock, so other clients are not held up.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use moat_mqtt_tokio::Broker;
use moat_mqtt_tokio::core::auth::{
    AclFile, AuthDecision, AuthFuture, Authenticator, BrokerHooks, ClientInfo, Credentials, Plugins, Refusal,
};
use moat_mqtt_tokio::core::broker::{BrokerConfig, CloseReason, ListenerConfig, Message};

/// Checks passwords with a (pretend) remote service.
#[derive(Debug)]
struct RemoteCheck;

impl Authenticator for RemoteCheck {
    fn name(&self) -> &str {
        "remote_check"
    }

    fn authenticate(&self, credentials: &Credentials) -> AuthDecision {
        // Quick answers under the router's lock; the slow one later.
        match credentials.username {
            None => AuthDecision::Deny(Refusal::NotAuthorized),
            Some(_) => AuthDecision::Pending,
        }
    }

    fn authenticate_later(&self, credentials: Credentials) -> AuthFuture {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await; // the round trip
            let good = credentials.username.as_deref() == Some("alice")
                && credentials.password.as_deref() == Some(&b"wonderland"[..]);
            if good { AuthDecision::Allow } else { AuthDecision::Deny(Refusal::BadCredentials) }
        })
    }
}

/// Prints what happens.
#[derive(Debug)]
struct Printer;

impl BrokerHooks for Printer {
    fn client_connected(&self, client: &ClientInfo<'_>) {
        println!("connected: {} as {:?}", client.client_id, client.username);
    }

    fn client_disconnected(&self, client: &ClientInfo<'_>, reason: &CloseReason) {
        println!("disconnected: {} ({reason})", client.client_id);
    }

    fn message_received(&self, client: &ClientInfo<'_>, message: &Message) {
        println!("{} published {} bytes to {}", client.client_id, message.payload.len(), message.topic);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Each user may use the topics under its own room (mosquitto's acl_file format).
    let acl = AclFile::parse("built-in acl", "pattern readwrite rooms/%u/#\n")?;
    let plugins = Plugins::new()
        .with_authenticator(Arc::new(RemoteCheck))
        .with_authorizer(Arc::new(acl))
        .with_hooks(Arc::new(Printer));
    let mut config = BrokerConfig {
        listeners: vec![ListenerConfig { bind: "127.0.0.1:1883".into(), ..ListenerConfig::default() }],
        ..BrokerConfig::default()
    };
    config.router.plugins = plugins;
    let broker = Broker::bind(config).await?;
    println!("listening on {:?}; Ctrl-C stops", broker.local_addrs());
    broker.run().await?;
    Ok(())
}
