//! `moat`: the moat-mqtt command line.
//!
//! `moat [-c FILE] [-v|-q] mqtt {pub|sub|broker|...}`. The `mqtt` commands arrive with the
//! broker and client issues; this skeleton parses the global options and sets up logging.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

/// moat-mqtt: an MQTT 3.1 / 3.1.1 / 5.0 broker and client.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about)]
struct Cli {
    /// Configuration file (YAML).
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and the MQTT protocol levels this build speaks.
    Version,
}

fn main() {
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
        }
    }
}
