//! `moat mqtt bench`: a load tool for MQTT brokers in the spirit of emqtt-bench.
//!
//! Scenarios: `conn` (connections held open), `pub`, `sub`, and the combined `fanin`,
//! `fanout` and `p2p`, whose publishers and subscribers run in this one process so that
//! every loss is counted. Payloads carry a send time, a publisher number and a sequence
//! number ([`payload`]); subscribers time and sequence-check what they receive ([`stats`]).
//!
//! The connections speak MQTT 3.1.1 through the core's codec, each as one hand-written poll
//! over its transport ([`link`]): the tool must cost little per message, since it shares the
//! machine with the broker it measures. Transports (TCP, TLS, WebSocket) come from the
//! driver's `TransportConnector` over the chosen runtime's TCP dialer.
//!
//! Runtime: `--runtime tokio|smol` as for the other commands (Cargo features decide what is
//! built in), on `--threads N` threads (default 1: a tokio current-thread runtime, or one smol
//! executor thread).

#![cfg_attr(not(any(feature = "runtime-tokio", feature = "runtime-smol")), allow(dead_code))]

mod args;
mod dial;
mod link;
mod payload;
mod report;
mod scenario;
mod stats;
mod usage;

use std::process::ExitCode;
#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
use std::sync::Arc;

pub(crate) use args::BenchCli;
#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
use moat_mqtt_core::driver::TransportConnector;
use report::Outcome;
use scenario::Plan;

use crate::broker_cmd::{Failure, RuntimeChoice};
use crate::client_opts::usage;

/// Runs the scenario of `cli`; prints the summary to stdout.
///
/// Exit code: 0 when the run went through without errors, 1 when there were errors
/// (connections refused, lost, ...) or no connection came up, 2 for a bad command line.
pub(crate) fn run(cli: &BenchCli) -> ExitCode {
    let result = cli.scenario.plan().map_err(usage).and_then(|plan| {
        log::debug!("bench plan: {plan:?}");
        execute(&plan).map(|outcome| (plan.json, outcome))
    });
    match result {
        Ok((json, outcome)) => {
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", outcome.json);
            } else {
                print!("{}", outcome.text());
            }
            if outcome.connected == 0 {
                eprintln!("error: no connection to the broker came up (see the errors above)");
                return ExitCode::FAILURE;
            }
            if outcome.errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(Failure::Usage(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `plan` on the runtime it names.
fn execute(plan: &Plan) -> Result<Outcome, Failure> {
    match plan.runtime {
        #[cfg(feature = "runtime-tokio")]
        RuntimeChoice::Tokio => {
            let mut builder = if plan.threads == 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(plan.threads);
                b
            };
            let rt = builder
                .enable_all()
                .build()
                .map_err(|e| crate::client_opts::failed(format!("cannot start the tokio runtime: {e}")))?;
            let connector = Arc::new(
                TransportConnector::new(resolved(moat_mqtt_tokio::TcpConnector, plan)?, &plan.options)
                    .map_err(usage)?,
            );
            Ok(rt.block_on(async {
                scenario::run(moat_mqtt_tokio::TokioRuntime, connector, plan, crate::client_opts::tokio_stop()).await
            }))
        }
        #[cfg(feature = "runtime-smol")]
        RuntimeChoice::Smol => {
            let connector = Arc::new(
                TransportConnector::new(resolved(moat_mqtt_smol::TcpConnector, plan)?, &plan.options).map_err(usage)?,
            );
            let pool = smol_pool::SmolPool::default();
            Ok(pool
                .block_on(plan.threads, scenario::run(pool.clone(), connector, plan, crate::client_opts::smol_stop())))
        }
        #[cfg(not(all(feature = "runtime-tokio", feature = "runtime-smol")))]
        missing => {
            let (name, feature) = missing.names();
            Err(usage(format!("this moat was built without the {name} runtime: build it with `--features {feature}`")))
        }
    }
}

/// `dialer`, dialing the address the plan's host resolves to.
#[cfg(any(feature = "runtime-tokio", feature = "runtime-smol"))]
fn resolved<D: moat_mqtt_core::driver::Dialer>(dialer: D, plan: &Plan) -> Result<dial::Resolved<D>, Failure> {
    dial::Resolved::new(dialer, &plan.url.host, plan.url.port, plan.max_unsent).map_err(crate::client_opts::failed)
}

/// The bench's own smol executor, so that `--threads` decides how many threads serve it
/// (the smol runtime crate's executor takes one per core).
#[cfg(feature = "runtime-smol")]
mod smol_pool {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use moat_mqtt_core::driver::{BoxFuture, PollerSource, Runtime, WatchedPoller};

    /// A smol executor served by the thread that blocks on it and `threads - 1` more.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct SmolPool {
        executor: Arc<smol::Executor<'static>>,
    }

    impl SmolPool {
        /// Runs `future` to completion, with the executor served by `threads` threads.
        pub(crate) fn block_on<T>(&self, threads: usize, future: impl Future<Output = T>) -> T {
            let (done, finished) = smol::channel::bounded::<()>(1);
            let helpers: Vec<_> = (1..threads)
                .filter_map(|n| {
                    let (executor, finished) = (Arc::clone(&self.executor), finished.clone());
                    std::thread::Builder::new()
                        .name(format!("moat-bench-{n}"))
                        .spawn(move || smol::block_on(executor.run(async move { finished.recv().await.ok() })))
                        .map_err(|e| log::warn!("cannot start bench thread {n}: {e}"))
                        .ok()
                })
                .collect();
            let output = smol::block_on(self.executor.run(future));
            drop(done);
            for helper in helpers {
                let _ = helper.join();
            }
            output
        }
    }

    impl Runtime for SmolPool {
        fn now(&self) -> Instant {
            Instant::now()
        }

        fn unix_time(&self) -> u64 {
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture {
            let timer = smol::Timer::at(deadline);
            Box::pin(async move {
                timer.await;
            })
        }

        fn spawn(&self, future: BoxFuture) {
            self.executor.spawn(future).detach();
        }

        fn watch(&self, poller: PollerSource) -> std::io::Result<Box<dyn WatchedPoller>> {
            moat_mqtt_smol::SmolRuntime.watch(poller)
        }
    }
}
