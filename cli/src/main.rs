//! `moat`: the moat-mqtt command line.
//!
//! `moat [-c FILE] [-v|-q] mqtt {pub|sub|broker|...}`. For now: `moat version` and
//! `moat mqtt broker [-c FILE] [--runtime tokio|smol]`.
//!
//! Exit codes: 0 success, 1 failure while running, 2 bad command line or configuration.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

mod broker_cmd;

/// moat-mqtt: an MQTT 3.1 / 3.1.1 / 5.0 broker and client.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about)]
struct Cli {
    /// Configuration file (YAML); may also follow the subcommand.
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (repeat for less).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and the MQTT protocol levels this build speaks.
    Version,
    /// MQTT tools: the broker (clients arrive later).
    Mqtt {
        /// What to run.
        #[command(subcommand)]
        command: MqttCommand,
    },
}

/// `moat mqtt ...`.
#[derive(Debug, Subcommand)]
enum MqttCommand {
    /// Run an MQTT broker (without a configuration: one listener on 0.0.0.0:1883).
    Broker(broker_cmd::BrokerArgs),
}

/// Parses the command line, sets up logging and runs the command.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match i16::from(cli.verbose) - i16::from(cli.quiet) {
        ..=-2 => log::LevelFilter::Error,
        -1 => log::LevelFilter::Warn,
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new().filter_level(level).parse_default_env().init();
    if let Some(config) = &cli.config {
        log::debug!("configuration file {} given", config.display());
    }
    match cli.command {
        Command::Version => {
            let levels = [
                moat_mqtt_core::codec::ProtocolLevel::V3_1,
                moat_mqtt_core::codec::ProtocolLevel::V3_1_1,
                moat_mqtt_core::codec::ProtocolLevel::V5,
            ]
            .map(|l| format!("{} (level {})", l.protocol_name(), l.level()));
            #[allow(clippy::print_stdout)]
            {
                println!("moat {} — MQTT codec for {}", env!("CARGO_PKG_VERSION"), levels.join(", "));
            }
            ExitCode::SUCCESS
        }
        Command::Mqtt { command: MqttCommand::Broker(args) } => match broker_cmd::run(cli.config.as_deref(), &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(broker_cmd::Failure::Usage(err)) => {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            }
            Err(broker_cmd::Failure::Run(err)) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}
