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
//! built in), on `--threads N` threads (default 1), each a single-threaded runtime of its own
//! ([`shards`]).

#![cfg_attr(not(any(feature = "runtime-tokio", feature = "runtime-smol")), allow(dead_code))]

mod args;
mod dial;
mod link;
mod payload;
mod report;
mod scenario;
mod shards;
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

/// Runs `plan` on the runtime it names, on `--threads` shards (see [`shards`]).
fn execute(plan: &Plan) -> Result<Outcome, Failure> {
    match plan.runtime {
        #[cfg(feature = "runtime-tokio")]
        RuntimeChoice::Tokio => {
            let connector = Arc::new(
                TransportConnector::new(resolved(moat_mqtt_tokio::TcpConnector, plan)?, &plan.options)
                    .map_err(usage)?,
            );
            // The stop signal is made inside the runtime, which it registers with.
            shards::TokioShards::run(plan.threads, |shards| async move {
                scenario::run(shards, connector, plan, crate::client_opts::tokio_stop()).await
            })
            .map_err(|e| crate::client_opts::failed(format!("cannot start the tokio runtime: {e}")))
        }
        #[cfg(feature = "runtime-smol")]
        RuntimeChoice::Smol => {
            let connector = Arc::new(
                TransportConnector::new(resolved(moat_mqtt_smol::TcpConnector, plan)?, &plan.options).map_err(usage)?,
            );
            Ok(shards::SmolShards::run(plan.threads, |shards| async move {
                scenario::run(shards, connector, plan, crate::client_opts::smol_stop()).await
            }))
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
