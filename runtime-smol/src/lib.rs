//! moat-mqtt on the smol runtime.
//!
//! [`Broker`] serves the configured listeners with the shared driver of `moat-mqtt-core`;
//! [`SmolRuntime`] is the core's [`Runtime`](moat_mqtt_core::driver::Runtime) on smol, with
//! one executor thread per core (see [`SmolRuntime`]). The sans-IO core is re-exported as
//! [`core`].
//!
//! ```no_run
//! use moat_mqtt_smol::Broker;
//! use moat_mqtt_smol::core::broker::BrokerConfig;
//!
//! smol::block_on(async {
//!     let broker = Broker::bind(BrokerConfig::default()).await?; // 0.0.0.0:1883
//!     broker.run().await // until Ctrl-C or SIGTERM
//! })
//! # .unwrap();
//! ```
#![forbid(unsafe_code)]

mod broker;
mod client;
mod runtime;

pub use broker::{Broker, BrokerHandle};
pub use client::{Client, TcpConnector, connect, connect_url};
pub use moat_mqtt_core as core;
pub use moat_mqtt_core::driver::{ClientError, ConnectionEvent, Message, Subscription};
pub use runtime::SmolRuntime;
