//! The broker on smol: TCP listeners feeding the shared driver (which adds TLS and WebSocket).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use moat_mqtt_core::broker::persist::{Store, StoreError};
use moat_mqtt_core::broker::{BrokerConfig, SyncMode};
use moat_mqtt_core::driver::{BrokerCore, ListenerGate, ListenerTransport, PolledListener, serve_listener};
use smol::stream::StreamExt;

use crate::SmolRuntime;

/// How long shutdown waits for links to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A broker bound to its listeners, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct Broker {
    core: BrokerCore<SmolRuntime>,
    listeners: Vec<(ListenerGate, ListenerTransport, PolledListener)>,
}

/// Controls a running broker from elsewhere: [`shutdown`](BrokerCore::shutdown),
/// [`stats`](BrokerCore::stats), [`live_links`](BrokerCore::live_links).
pub type BrokerHandle = BrokerCore<SmolRuntime>;

impl Broker {
    /// Opens the store of `config.persistence` (if set) and restores what it holds, then binds
    /// every listener of `config` (an empty list means one on `0.0.0.0:1883`).
    ///
    /// # Errors
    /// A store that cannot be opened or read back (kind `InvalidData` when it is corrupt), then
    /// the first listener that cannot bind, named in the error with its address, or whose TLS
    /// files cannot be used, named with the file.
    pub async fn bind(config: BrokerConfig) -> io::Result<Self> {
        let core = BrokerCore::new(SmolRuntime, &config).map_err(store_error)?;
        Self::bind_core(core, config).await
    }

    /// Like [`bind`](Self::bind), with durable state kept in `store` (a back end of your own),
    /// written per `sync`, instead of `config.persistence`.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub async fn bind_with_store(config: BrokerConfig, store: Box<dyn Store>, sync: SyncMode) -> io::Result<Self> {
        let core = BrokerCore::with_store(SmolRuntime, &config, store, sync).map_err(store_error)?;
        Self::bind_core(core, config).await
    }

    async fn bind_core(core: BrokerCore<SmolRuntime>, config: BrokerConfig) -> io::Result<Self> {
        let mut configs = config.listeners;
        if configs.is_empty() {
            configs.push(Default::default());
        }
        let mut listeners = Vec::with_capacity(configs.len());
        for listener in &configs {
            let transport = ListenerTransport::new(listener, config.link.max_packet_size)?;
            // Accepted through the driver's own socket poller, not async-io's: see
            // `PolledListener`.
            let socket = core.listen(listener)?;
            listeners.push((ListenerGate::new(listener), transport, socket));
        }
        Ok(Self { core, listeners })
    }

    /// Each listener's name and the address it is bound to (useful with port 0).
    #[must_use]
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(gate, _, socket)| Some((gate.name().to_owned(), socket.local_addr().ok()?)))
            .collect()
    }

    /// A handle to shut the broker down or read its counters while it runs.
    #[must_use]
    pub fn handle(&self) -> BrokerHandle {
        self.core.clone()
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down gracefully.
    ///
    /// # Errors
    /// If the signal handlers cannot be installed.
    pub async fn run(self) -> io::Result<()> {
        let mut signals = async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term])?;
        self.run_until(async move {
            if let Some(signal) = signals.next().await {
                log::info!("signal received: {signal:?}");
            }
        })
        .await;
        Ok(())
    }

    /// Serves until `stop` completes or [`BrokerHandle::shutdown`] is called, then closes every
    /// link (their wills are published) and waits up to 5 s for them to finish.
    pub async fn run_until(self, stop: impl Future<Output = ()>) {
        let Self { core, listeners } = self;
        let mut tasks = Vec::new();
        for (gate, transport, socket) in listeners {
            tasks.push(SmolRuntime.spawn_task(serve_listener(core.clone(), gate, transport, socket)));
        }
        let timers = core.clone();
        tasks.push(SmolRuntime.spawn_task(async move { timers.run_timers().await }));
        smol::future::or(stop, wait_for_shutdown(&core)).await;
        for task in tasks {
            task.cancel().await;
        }
        core.stop(SHUTDOWN_GRACE).await;
    }
}

async fn wait_for_shutdown(core: &BrokerCore<SmolRuntime>) {
    while !core.is_shutting_down() {
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}

fn store_error(error: StoreError) -> io::Error {
    let kind = match error {
        StoreError::Corrupt { .. } => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}
