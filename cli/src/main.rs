//! `moat`: the moat-mqtt command line.
//!
//! `moat [-c FILE] [-v|-q] mqtt {pub|sub|broker|passwd|bench}`, and `moat version`.
//!
//! `-c FILE` and `-v` may also follow the subcommand. `-q` (quiet) does too for `moat mqtt
//! broker`, but after `pub` and `sub` it is their QoS: there, quiet is `moat -q mqtt pub ...`
//! or `--quiet`.
//!
//! Exit codes: 0 success, 1 failure while running, 2 bad command line or configuration.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

mod bench;
mod broker_cmd;
mod client_opts;
mod passwd_cmd;
mod pub_cmd;
mod sub_cmd;

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
    /// Less log output (repeat for less). Only here and after `broker`: after `pub` and `sub`,
    /// `-q` is the QoS (use `--quiet` there).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and the MQTT protocol levels this build speaks.
    Version,
    /// MQTT tools: broker, publisher and subscriber.
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
    Broker {
        /// The broker's options.
        #[command(flatten)]
        args: broker_cmd::BrokerArgs,
        /// Less log output (repeat for less).
        #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
        quiet: u8,
    },
    /// Publish messages to a topic (one connection, then exit).
    Pub(Box<pub_cmd::PubArgs>),
    /// Manage a password file: `passwd [-H HASH] [-c | -D] FILE USER`, or `-b FILE USER
    /// PASSWORD` (mosquitto_passwd's options; `passwd --help` for more).
    #[command(disable_help_flag = true)]
    Passwd {
        /// The options and arguments of `moat mqtt passwd`.
        #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Subscribe to topic filters and print `topic<TAB>payload` per message.
    Sub(Box<sub_cmd::SubArgs>),
    /// Load-test a broker: `bench conn|pub|sub|fanin|fanout|p2p [OPTIONS]` (emqtt-bench's
    /// options, `-c` the count and `-h` the host; `bench SCENARIO --help` for more).
    #[command(disable_help_flag = true)]
    Bench {
        /// The scenario and its options.
        #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
}

/// Parses the command line, sets up logging and runs the command.
fn main() -> ExitCode {
    // `passwd` has mosquitto_passwd's options, whose `-c` (create) is not the global `-c FILE`:
    // its words are parsed on their own.
    let argv: Vec<String> = std::env::args().collect();
    if let Some(at) = argv.windows(2).position(|w| w[0] == "mqtt" && w[1] == "passwd") {
        return passwd(&argv[at + 2..]);
    }
    // `bench` has emqtt-bench's options, whose `-c` (count) and `-h` (host) are not the
    // global `-c FILE` and the help: its words are parsed on their own too.
    if let Some(at) = argv.windows(2).position(|w| w[0] == "mqtt" && w[1] == "bench") {
        return bench(&argv[..at], &argv[at + 2..]);
    }
    let cli = Cli::parse();
    // The broker and `version` log at info; pub and sub, whose stdout is their output, only
    // warn unless asked for more.
    let (base, quiet) = match &cli.command {
        Command::Version => (0, 0),
        Command::Mqtt { command: MqttCommand::Broker { quiet, .. } } => (0, *quiet),
        Command::Mqtt { command: MqttCommand::Pub(args) } => (-1, args.client.quiet),
        Command::Mqtt { command: MqttCommand::Sub(args) } => (-1, args.client.quiet),
        Command::Mqtt { command: MqttCommand::Passwd { args } } => return passwd(args),
        Command::Mqtt { command: MqttCommand::Bench { args } } => return bench(&argv[..1], args),
    };
    let level = match base + i16::from(cli.verbose) - i16::from(cli.quiet) - i16::from(quiet) {
        ..=-2 => log::LevelFilter::Error,
        -1 => log::LevelFilter::Warn,
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut logger = env_logger::Builder::new();
    logger.filter_level(level);
    if base < 0 && level <= log::LevelFilter::Warn && std::env::var_os("RUST_LOG").is_none() {
        // pub and sub tell why the client ended in their one `error:` line; the client task's
        // own warnings about it would only repeat that.
        logger.filter_module("moat_mqtt_core::driver::client", log::LevelFilter::Error.min(level));
    }
    logger.parse_default_env().init();
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
        Command::Mqtt { command } => {
            let config = cli.config.as_deref();
            let result = match &command {
                MqttCommand::Broker { args, .. } => broker_cmd::run(config, args),
                MqttCommand::Pub(args) => pub_cmd::run(config, args),
                MqttCommand::Sub(args) => sub_cmd::run(config, args),
                MqttCommand::Passwd { args } => return passwd(args),
                MqttCommand::Bench { args } => return bench(&argv[..1], args),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(broker_cmd::Failure::Usage(err)) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(2)
                }
                Err(broker_cmd::Failure::Run(err)) => {
                    eprintln!("error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs `moat mqtt passwd` with the words after `passwd`; exit code 2 for any failure.
fn passwd(args: &[String]) -> ExitCode {
    match passwd_cmd::run_from(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs `moat mqtt bench` with the words before `mqtt` (`moat` and its global options) and
/// those after `bench`.
fn bench(before: &[String], args: &[String]) -> ExitCode {
    // The global options (`-v`, `-q`) as the main parser reads them.
    let global = Cli::try_parse_from(before.iter().map(String::as_str).chain(["version"])).unwrap_or_else(|e| e.exit());
    if global.config.is_some() {
        eprintln!("warning: moat mqtt bench reads no configuration file; -c FILE is ignored");
    }
    let cli =
        bench::BenchCli::try_parse_from(std::iter::once("moat mqtt bench").chain(args.iter().map(String::as_str)))
            .unwrap_or_else(|e| e.exit());
    let verbose = cli.scenario.common().verbose;
    let level = match -1 + i16::from(global.verbose) + i16::from(verbose) - i16::from(global.quiet) {
        ..=-2 => log::LevelFilter::Error,
        -1 => log::LevelFilter::Warn,
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new().filter_level(level).parse_default_env().init();
    bench::run(&cli)
}
