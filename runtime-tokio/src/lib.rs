//! moat-mqtt on the tokio runtime.
//!
//! [`Broker`] serves the configured listeners with the shared driver of `moat-mqtt-core`;
//! [`TokioRuntime`] is the core's [`Runtime`](moat_mqtt_core::driver::Runtime) on tokio.
//! The sans-IO core is re-exported as [`core`].
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use moat_mqtt_tokio::Broker;
//! use moat_mqtt_tokio::core::broker::BrokerConfig;
//!
//! let broker = Broker::bind(BrokerConfig::default()).await?; // 0.0.0.0:1883
//! broker.run().await // until Ctrl-C or SIGTERM
//! # }
//! ```
#![forbid(unsafe_code)]

mod broker;
mod client;
mod runtime;
mod stream;

pub use broker::{Broker, BrokerHandle};
pub use client::{Client, TcpConnector, connect, connect_url};
pub use moat_mqtt_core as core;
pub use moat_mqtt_core::driver::{ClientError, ConnectionEvent, Message, Subscription};
pub use runtime::TokioRuntime;
pub use stream::TcpConnection;
