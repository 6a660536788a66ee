//! `moat mqtt broker`: read the configuration, pick the runtime, serve until Ctrl-C or SIGTERM.
//!
//! The runtime comes from Cargo features: `runtime-tokio` (the default) and `runtime-smol`.
//! With both built in, `--runtime` chooses (tokio unless told otherwise); naming one that was
//! not built in is an error saying which feature to build with.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
use anyhow::Context as _;
#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
use moat_mqtt_cli::config::Security;
use moat_mqtt_cli::config::{self, ConfigError};
use moat_mqtt_core::broker::BrokerConfig;

/// The async runtimes the broker can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RuntimeChoice {
    /// tokio's multi-threaded runtime (feature `runtime-tokio`).
    Tokio,
    /// smol (feature `runtime-smol`).
    Smol,
}

#[cfg(not(all(feature = "runtime-tokio", feature = "runtime-smol")))]
impl RuntimeChoice {
    /// The name `--runtime` takes, and the Cargo feature that builds this runtime in.
    pub(crate) fn names(self) -> (&'static str, &'static str) {
        match self {
            RuntimeChoice::Tokio => ("tokio", "runtime-tokio"),
            RuntimeChoice::Smol => ("smol", "runtime-smol"),
        }
    }
}

/// The runtime used when `--runtime` is not given: tokio if built in, else smol.
#[cfg(feature = "runtime-tokio")]
pub(crate) const DEFAULT_RUNTIME: RuntimeChoice = RuntimeChoice::Tokio;
/// The runtime used when `--runtime` is not given: tokio if built in, else smol.
#[cfg(not(feature = "runtime-tokio"))]
pub(crate) const DEFAULT_RUNTIME: RuntimeChoice = RuntimeChoice::Smol;

/// Options of `moat mqtt broker` (besides the global `-c FILE`, also accepted here).
#[derive(Debug, clap::Args)]
pub(crate) struct BrokerArgs {
    /// The async runtime to run on [default: tokio when built in, else smol].
    #[arg(long, value_enum, value_name = "RUNTIME")]
    runtime: Option<RuntimeChoice>,
}

/// Why the broker command failed, which decides the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The configuration or the command line is wrong: exit code 2.
    Usage(anyhow::Error),
    /// The broker could not start or failed while running: exit code 1.
    #[cfg_attr(not(any(feature = "runtime-tokio", feature = "runtime-smol")), allow(dead_code))]
    Run(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(err: ConfigError) -> Self {
        Failure::Usage(err.into())
    }
}

/// Runs the broker with the configuration file `config_file` (or the defaults: one listener
/// on `0.0.0.0:1883`) until it is told to stop.
///
/// # Errors
/// [`Failure::Usage`] for a bad configuration or a runtime not built in; [`Failure::Run`] if
/// the broker cannot listen or fails.
pub(crate) fn run(config_file: Option<&Path>, args: &BrokerArgs) -> Result<(), Failure> {
    let runtime = args.runtime.unwrap_or(DEFAULT_RUNTIME);
    let (mut config, security) = match config_file {
        Some(path) => {
            let loaded = config::load_file(path)?;
            (loaded.broker, loaded.security)
        }
        None => {
            log::debug!("no configuration file given; using the defaults");
            (BrokerConfig::default(), config::SecurityConfig::default())
        }
    };
    let security = security.build().map_err(|e| Failure::Usage(anyhow::anyhow!(e)))?;
    config.router.plugins = security.plugins.clone();
    if config.router.client_id_seed == 0 {
        config.router.client_id_seed = client_id_seed();
    }
    log::debug!("running on {runtime:?} with {config:?}");
    match runtime {
        #[cfg(feature = "runtime-tokio")]
        RuntimeChoice::Tokio => run_tokio(config, security).map_err(Failure::Run),
        #[cfg(feature = "runtime-smol")]
        RuntimeChoice::Smol => run_smol(config, security).map_err(Failure::Run),
        #[cfg(not(all(feature = "runtime-tokio", feature = "runtime-smol")))]
        missing => {
            let (name, feature) = missing.names();
            Err(Failure::Usage(anyhow::anyhow!(
                "this moat was built without the {name} runtime: build it with `--features {feature}`"
            )))
        }
    }
}

/// A seed for the identifiers given to clients that bring none, different for every start so
/// that two runs do not hand out the same ones.
fn client_id_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    // Truncating keeps the fast-changing low bits; the multiplication spreads them over all 64
    // (the router uses the low 32), and the process id separates two starts in one instant.
    #[allow(clippy::cast_possible_truncation)]
    let seed = (nanos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    seed.max(1)
}

/// Tells the user where the broker listens.
#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
fn announce(addrs: &[(String, std::net::SocketAddr)]) {
    for (name, addr) in addrs {
        eprintln!("moat broker listening on {addr} (listener {name})");
    }
}

/// Re-reads the password file and the ACL file (on SIGHUP), saying how it went.
#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
fn reload(security: &Security) {
    for outcome in security.reload_files() {
        match outcome {
            Ok(done) => log::info!("SIGHUP: {done}"),
            Err(e) => log::error!("SIGHUP: {e}; still using the file read before"),
        }
    }
}

/// Serves on tokio's multi-threaded runtime until Ctrl-C or SIGTERM.
#[cfg(feature = "runtime-tokio")]
fn run_tokio(config: BrokerConfig, security: Security) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        #[cfg(unix)]
        if security.has_files() {
            let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("cannot watch for SIGHUP")?;
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    reload(&security);
                }
            });
        }
        #[cfg(not(unix))]
        drop(security);
        let broker = moat_mqtt_tokio::Broker::bind(config).await.context("cannot start the broker")?;
        announce(&broker.local_addrs());
        broker.run().await?;
        Ok(())
    })
}

/// Serves on smol until Ctrl-C or SIGTERM.
#[cfg(feature = "runtime-smol")]
fn run_smol(config: BrokerConfig, security: Security) -> anyhow::Result<()> {
    smol::block_on(async {
        #[cfg(unix)]
        if security.has_files() {
            use futures::StreamExt as _;
            let mut hangups =
                async_signal::Signals::new([async_signal::Signal::Hup]).context("cannot watch for SIGHUP")?;
            smol::spawn(async move {
                while hangups.next().await.is_some() {
                    reload(&security);
                }
            })
            .detach();
        }
        #[cfg(not(unix))]
        drop(security);
        let broker = moat_mqtt_smol::Broker::bind(config).await.context("cannot start the broker")?;
        announce(&broker.local_addrs());
        broker.run().await?;
        Ok(())
    })
}
