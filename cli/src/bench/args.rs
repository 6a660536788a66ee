//! The command line of `moat mqtt bench`, in the spirit of emqtt-bench: `-h HOST -p PORT`
//! (or `--url`), `-c COUNT`, `-t TOPIC` with `%i`, `-q QOS`, `-s SIZE`, `-L LIMIT`, `-I MS`
//! or `--rate`, `--duration`, `--json`; checked and turned into a [`Plan`].
//!
//! It is parsed apart from the rest of `moat` (like `passwd`), because `-c` is the count here
//! and `-h` the host, as in emqtt-bench; `--help` is the help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use moat_mqtt_core::client::options::{BrokerUrl, ClientOptions, Transport};
use moat_mqtt_core::codec::QoS;
use moat_mqtt_core::topic::{TopicFilter, TopicName};

use super::dial::DEFAULT_MAX_UNSENT;
use super::payload::HEADER_LEN;
use super::scenario::{Kind, Plan, PubSpec, SubSpec};
use crate::broker_cmd::{DEFAULT_RUNTIME, RuntimeChoice};

/// `moat mqtt bench`: load-test an MQTT broker.
#[derive(Debug, Parser)]
#[command(
    name = "moat mqtt bench",
    disable_help_flag = true,
    disable_version_flag = true,
    arg_required_else_help = false
)]
pub(crate) struct BenchCli {
    /// The scenario to run.
    #[command(subcommand)]
    pub(crate) scenario: Scenario,
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum Scenario {
    /// Open connections at a rate and hold them (for memory per connection and connect rate).
    #[command(disable_help_flag = true)]
    Conn(ConnArgs),
    /// Publishers only: -c publishers to -t TOPIC (%i: the publisher's number).
    #[command(disable_help_flag = true)]
    Pub(PubArgs),
    /// Subscribers only: -c subscribers to -t FILTER (%i: the subscriber's number).
    #[command(disable_help_flag = true)]
    Sub(SubArgs),
    /// Many publishers to few subscribers: publishers on PREFIX/%i, subscribers on PREFIX/#.
    #[command(disable_help_flag = true)]
    Fanin(FanArgs),
    /// Few publishers to many subscribers, all on one topic.
    #[command(disable_help_flag = true)]
    Fanout(FanArgs),
    /// Pairs: publisher i to subscriber i on PREFIX/%i.
    #[command(disable_help_flag = true)]
    P2p(P2pArgs),
}

/// Options every scenario has.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// The broker's host.
    #[arg(short = 'h', long = "host", value_name = "HOST", default_value = "localhost")]
    host: String,
    /// The broker's port [default: 1883 for mqtt, 8883 for mqtts, 80 for ws, 443 for wss].
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// The broker as a URL: mqtt://, mqtts://, ws:// or wss://[user:password@]host[:port][/path]
    /// (instead of -h and -p).
    #[arg(long = "url", visible_alias = "uri", value_name = "URL", conflicts_with_all = ["host", "port"])]
    url: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username", value_name = "USER")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "password", value_name = "PASSWORD")]
    password: Option<String>,
    /// Keep-alive in seconds (0: none).
    #[arg(short = 'k', long = "keepalive", value_name = "SECS", default_value_t = 60)]
    keep_alive: u16,
    /// Trusted CA certificates (PEM) for mqtts:// and wss:// [default: the system's].
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Do not check that the broker's certificate names the host (it must still be signed by
    /// a trusted CA).
    #[arg(long = "insecure")]
    insecure: bool,
    /// Client id prefix; ids are PREFIX-pub-N, PREFIX-sub-N, PREFIX-conn-N [default:
    /// moat-bench-PID].
    #[arg(long = "prefix", value_name = "PREFIX")]
    prefix: Option<String>,
    /// The number of the first client (what %i stands for), as emqtt-bench's --startnumber.
    #[arg(short = 'n', long = "start-number", value_name = "N", default_value_t = 0)]
    start_number: u32,
    /// Milliseconds between starting two connections [default: 0, as fast as
    /// --connect-concurrency allows].
    #[arg(short = 'i', long = "interval", value_name = "MS", conflicts_with = "connect_rate")]
    interval: Option<f64>,
    /// Connections started per second (instead of -i).
    #[arg(long = "connect-rate", value_name = "N")]
    connect_rate: Option<f64>,
    /// Connection handshakes in progress at once, at most.
    #[arg(long = "connect-concurrency", value_name = "N", default_value_t = 100)]
    connect_concurrency: usize,
    /// Bytes of a connection's outgoing data the kernel may hold unsent (TCP_NOTSENT_LOWAT,
    /// Linux); 0: no limit. Without one, a publisher faster than the broker queues up to
    /// 4 MiB in its own socket, and that queue, not the broker, sets the latency measured.
    #[arg(long = "max-unsent", value_name = "BYTES", default_value_t = DEFAULT_MAX_UNSENT)]
    max_unsent: u32,
    /// Seconds to run [default: 10, unless -L bounds the run]. For `conn`: seconds to hold the
    /// connections once all are up.
    #[arg(long = "duration", value_name = "SECS")]
    duration: Option<f64>,
    /// Seconds to wait for the last messages and acknowledgements once publishing is over
    /// (the run ends earlier when everything has arrived).
    #[arg(long = "drain", value_name = "SECS", default_value_t = 2.0)]
    drain: f64,
    /// The final summary as JSON on stdout (default: text).
    #[arg(long = "json")]
    json: bool,
    /// No progress line on stderr.
    #[arg(long = "no-progress")]
    no_progress: bool,
    /// The async runtime [default: tokio when built in, else smol].
    #[arg(long, value_enum, value_name = "RUNTIME")]
    runtime: Option<RuntimeChoice>,
    /// Threads the bench runs its connections on.
    #[arg(long = "threads", value_name = "N", default_value_t = 1)]
    threads: usize,
    /// The broker's process id, on the same machine: its CPU time and memory go in the summary
    /// (Linux, from /proc).
    #[arg(long = "broker-pid", value_name = "PID")]
    broker_pid: Option<u32>,
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// How publishers publish.
#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// QoS of publications and subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", value_name = "QOS", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Payload size in bytes; at least 24, the bench header (timestamp, publisher, sequence).
    #[arg(short = 's', long = "size", value_name = "BYTES", default_value_t = 256)]
    size: usize,
    /// Messages to publish in all, shared out among the publishers (0: no limit).
    #[arg(short = 'L', long = "limit", value_name = "N", default_value_t = 0)]
    limit: u64,
    /// Milliseconds between two messages of one publisher [default: no pause, as fast as the
    /// broker takes them].
    #[arg(short = 'I', long = "interval-of-msg", value_name = "MS", conflicts_with = "rate")]
    interval_of_msg: Option<f64>,
    /// Messages per second per publisher (instead of -I).
    #[arg(long = "rate", value_name = "N")]
    rate: Option<f64>,
    /// QoS 1/2 messages a publisher has unacknowledged at once, at most (1..=65535).
    #[arg(long = "inflight", value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    inflight: u16,
    /// Publish retained.
    #[arg(short = 'r', long = "retain")]
    retain: bool,
}

/// `moat mqtt bench conn`.
#[derive(Debug, Args)]
pub(crate) struct ConnArgs {
    /// Connections to open.
    #[arg(short = 'c', long = "count", value_name = "N", default_value_t = 100)]
    count: usize,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `moat mqtt bench pub`.
#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    /// Publishers.
    #[arg(short = 'c', long = "count", value_name = "N", default_value_t = 1)]
    count: usize,
    /// The topic; %i is replaced by the publisher's number.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topic: String,
    #[command(flatten)]
    publish: PublishArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `moat mqtt bench sub`.
#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    /// Subscribers.
    #[arg(short = 'c', long = "count", value_name = "N", default_value_t = 1)]
    count: usize,
    /// The topic filter; %i is replaced by the subscriber's number.
    #[arg(short = 't', long = "topic", value_name = "FILTER")]
    topic: String,
    /// QoS of the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", value_name = "QOS", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Stop once this many messages have arrived, in all (0: no limit).
    #[arg(short = 'L', long = "limit", value_name = "N", default_value_t = 0)]
    limit: u64,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `moat mqtt bench fanin` and `fanout`.
#[derive(Debug, Args)]
pub(crate) struct FanArgs {
    /// Publishers [default: fanin 4, fanout 1].
    #[arg(long = "publishers", visible_alias = "pubs", value_name = "N")]
    publishers: Option<usize>,
    /// Subscribers [default: fanin 1, fanout 16].
    #[arg(long = "subscribers", visible_alias = "subs", value_name = "N")]
    subscribers: Option<usize>,
    /// Topic (fanout) or topic prefix (fanin) [default: bench/fanin, bench/fanout].
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topic: Option<String>,
    #[command(flatten)]
    publish: PublishArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `moat mqtt bench p2p`.
#[derive(Debug, Args)]
pub(crate) struct P2pArgs {
    /// Pairs of a publisher and a subscriber.
    #[arg(short = 'c', long = "count", value_name = "N", default_value_t = 8)]
    count: usize,
    /// Topic prefix: pair i uses PREFIX/i.
    #[arg(short = 't', long = "topic", value_name = "PREFIX", default_value = "bench/p2p")]
    topic: String,
    #[command(flatten)]
    publish: PublishArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

impl Scenario {
    /// The options every scenario has.
    pub(crate) fn common(&self) -> &CommonArgs {
        match self {
            Self::Conn(a) => &a.common,
            Self::Pub(a) => &a.common,
            Self::Sub(a) => &a.common,
            Self::Fanin(a) | Self::Fanout(a) => &a.common,
            Self::P2p(a) => &a.common,
        }
    }

    /// Checks the options and lays out the run.
    ///
    /// # Errors
    /// A message naming the option that is wrong and what it takes.
    pub(crate) fn plan(&self) -> Result<Plan, String> {
        let common = self.common();
        let mut plan = common.plan()?;
        let start = common.start_number;
        let index = |i: usize| -> Result<u32, String> {
            u32::try_from(i)
                .ok()
                .and_then(|i| start.checked_add(i))
                .ok_or_else(|| "-n/--start-number plus the number of clients goes beyond 4294967295".to_owned())
        };
        match self {
            Self::Conn(a) => {
                plan.kind = Kind::Conn;
                plan.idle = (0..positive("-c/--count", a.count)?).map(index).collect::<Result<_, _>>()?;
            }
            Self::Pub(a) => {
                plan.kind = Kind::Pub;
                a.publish.apply(&mut plan)?;
                for i in 0..positive("-c/--count", a.count)? {
                    let n = index(i)?;
                    plan.publishers.push(PubSpec { index: n, topic: topic_name(&a.topic, n)? });
                }
            }
            Self::Sub(a) => {
                plan.kind = Kind::Sub;
                plan.qos = qos(a.qos);
                plan.sub_limit = (a.limit > 0).then_some(a.limit);
                for i in 0..positive("-c/--count", a.count)? {
                    let n = index(i)?;
                    plan.subscribers.push(SubSpec { index: n, filters: vec![topic_filter(&a.topic, n)?] });
                }
            }
            Self::Fanin(a) | Self::Fanout(a) => {
                let fanin = matches!(self, Self::Fanin(_));
                plan.kind = if fanin { Kind::Fanin } else { Kind::Fanout };
                a.publish.apply(&mut plan)?;
                let (p_default, s_default, t_default) =
                    if fanin { (4, 1, "bench/fanin") } else { (1, 16, "bench/fanout") };
                let topic = a.topic.as_deref().unwrap_or(t_default).trim_end_matches('/');
                let filter = if fanin { format!("{topic}/#") } else { topic.to_owned() };
                let filter = topic_filter(&filter, 0)?;
                for i in 0..positive("--publishers", a.publishers.unwrap_or(p_default))? {
                    let n = index(i)?;
                    let name = if fanin { format!("{topic}/{n}") } else { topic.to_owned() };
                    plan.publishers.push(PubSpec { index: n, topic: topic_name(&name, n)? });
                }
                for i in 0..positive("--subscribers", a.subscribers.unwrap_or(s_default))? {
                    plan.subscribers.push(SubSpec { index: index(i)?, filters: vec![filter.clone()] });
                }
            }
            Self::P2p(a) => {
                plan.kind = Kind::P2p;
                a.publish.apply(&mut plan)?;
                let prefix = a.topic.trim_end_matches('/');
                for i in 0..positive("-c/--count", a.count)? {
                    let n = index(i)?;
                    let topic = format!("{prefix}/{n}");
                    plan.publishers.push(PubSpec { index: n, topic: topic_name(&topic, n)? });
                    plan.subscribers.push(SubSpec { index: n, filters: vec![topic_filter(&topic, n)?] });
                }
            }
        }
        if plan.duration.is_none() && plan.limit.is_none() && plan.sub_limit.is_none() {
            plan.duration = Some(Duration::from_secs(10));
        }
        if plan.kind == Kind::Conn && plan.duration.is_none() {
            plan.duration = Some(Duration::from_secs(10));
        }
        Ok(plan)
    }
}

impl CommonArgs {
    /// The plan's connection settings, from these options.
    fn plan(&self) -> Result<Plan, String> {
        let mut url: BrokerUrl = match &self.url {
            Some(url) => url.parse().map_err(|e| format!("--url {url:?}: {e}"))?,
            None => {
                let mut url = BrokerUrl { host: self.host.clone(), ..BrokerUrl::default() };
                url.scheme = Transport::Tcp;
                url.port = self.port.unwrap_or(Transport::Tcp.default_port());
                url
            }
        };
        if self.username.is_some() {
            url.username.clone_from(&self.username);
        }
        if self.password.is_some() {
            url.password.clone_from(&self.password);
        }
        if url.password.is_some() && url.username.is_none() {
            return Err("a password needs a user name (-u) in MQTT 3.1.1".to_owned());
        }
        if self.ca_file.is_some() && !url.scheme.is_tls() {
            return Err(format!("--ca-file is for mqtts:// and wss://, not {}://", url.scheme));
        }
        let threads = positive("--threads", self.threads)?;
        let concurrency = positive("--connect-concurrency", self.connect_concurrency)?;
        let connect_interval = match (self.interval, self.connect_rate) {
            (Some(ms), _) => Some(seconds("-i/--interval", ms / 1000.0, true)?),
            (None, Some(rate)) => Some(seconds("--connect-rate", 1.0 / positive_f64("--connect-rate", rate)?, true)?),
            (None, None) => None,
        }
        .filter(|d| !d.is_zero());
        let duration = self.duration.map(|s| seconds("--duration", s, false)).transpose()?;
        let drain = seconds("--drain", self.drain, true)?;
        let options = ClientOptions {
            url: url.clone(),
            ca_file: self.ca_file.clone(),
            check_hostname: !self.insecure,
            ..ClientOptions::default()
        };
        Ok(Plan {
            kind: Kind::Conn,
            url,
            options,
            keep_alive: self.keep_alive,
            prefix: self.prefix.clone().unwrap_or_else(|| format!("moat-bench-{}", std::process::id())),
            publishers: Vec::new(),
            subscribers: Vec::new(),
            idle: Vec::new(),
            qos: QoS::AtMostOnce,
            size: HEADER_LEN.max(64),
            retain: false,
            limit: None,
            sub_limit: None,
            rate: None,
            inflight: 100,
            duration,
            drain,
            connect_interval,
            connect_concurrency: concurrency,
            max_unsent: (self.max_unsent > 0).then_some(self.max_unsent),
            json: self.json,
            progress: !self.no_progress,
            runtime: self.runtime.unwrap_or(DEFAULT_RUNTIME),
            threads,
            broker_pid: self.broker_pid,
        })
    }
}

impl PublishArgs {
    /// Sets the publishing options of `plan`.
    fn apply(&self, plan: &mut Plan) -> Result<(), String> {
        if self.size < HEADER_LEN {
            return Err(format!(
                "-s/--size {}: a payload holds at least the {HEADER_LEN}-byte bench header (send time, publisher, sequence number)",
                self.size
            ));
        }
        plan.qos = qos(self.qos);
        plan.size = self.size;
        plan.retain = self.retain;
        plan.limit = (self.limit > 0).then_some(self.limit);
        plan.inflight = self.inflight;
        plan.rate = match (self.interval_of_msg, self.rate) {
            (Some(0.0), _) => None,
            (Some(ms), _) => Some(1000.0 / positive_f64("-I/--interval-of-msg", ms)?),
            (None, Some(rate)) => Some(positive_f64("--rate", rate)?),
            (None, None) => None,
        };
        Ok(())
    }
}

/// The QoS of a level clap has checked to be 0..=2.
fn qos(level: u8) -> QoS {
    QoS::from_u8(level).unwrap_or(QoS::AtMostOnce)
}

/// `value`, which must not be 0.
fn positive(option: &str, value: usize) -> Result<usize, String> {
    if value == 0 { Err(format!("{option} must be at least 1")) } else { Ok(value) }
}

/// `value`, which must be a finite number above 0.
fn positive_f64(option: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(format!("{option} {value}: give a number above 0")) }
}

/// `secs` as a duration (0 allowed only if `zero_ok`).
fn seconds(option: &str, secs: f64, zero_ok: bool) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 || (secs == 0.0 && !zero_ok) || secs > 1e9 {
        return Err(format!("{option} {secs}: give a number of seconds{}", if zero_ok { "" } else { " above 0" }));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `pattern` with `%i` replaced by `n`, as a topic name.
fn topic_name(pattern: &str, n: u32) -> Result<TopicName, String> {
    let topic = pattern.replace("%i", &n.to_string());
    TopicName::new(topic.clone()).map_err(|e| format!("-t {pattern:?}: {topic:?} is not a topic name: {e}"))
}

/// `pattern` with `%i` replaced by `n`, as a topic filter.
fn topic_filter(pattern: &str, n: u32) -> Result<TopicFilter, String> {
    let filter = pattern.replace("%i", &n.to_string());
    TopicFilter::new(filter.clone()).map_err(|e| format!("-t {pattern:?}: {filter:?} is not a topic filter: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::BenchCli;
    use crate::bench::scenario::Kind;

    fn plan(args: &[&str]) -> Result<crate::bench::scenario::Plan, String> {
        let cli = BenchCli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.scenario.plan()
    }

    #[test]
    fn scenarios_lay_out_their_clients() {
        let p = plan(&["fanin", "--publishers", "3", "-q", "1", "-s", "64"]).unwrap();
        assert_eq!(p.kind, Kind::Fanin);
        let topics: Vec<_> = p.publishers.iter().map(|s| s.topic.as_str().to_owned()).collect();
        assert_eq!(topics, ["bench/fanin/0", "bench/fanin/1", "bench/fanin/2"]);
        assert_eq!(p.subscribers.len(), 1);
        assert_eq!(p.subscribers[0].filters[0].as_str(), "bench/fanin/#");
        assert_eq!(p.duration, Some(std::time::Duration::from_secs(10)));

        let p = plan(&["fanout", "-t", "x/y", "-L", "100"]).unwrap();
        assert_eq!((p.publishers.len(), p.subscribers.len(), p.limit, p.duration), (1, 16, Some(100), None));

        let p = plan(&["p2p", "-c", "2", "-n", "5", "--rate", "10"]).unwrap();
        assert_eq!(p.publishers[1].topic.as_str(), "bench/p2p/6");
        assert_eq!(p.subscribers[1].filters[0].as_str(), "bench/p2p/6");
        assert_eq!(p.rate, Some(10.0));

        let p = plan(&["pub", "-c", "2", "-t", "a/%i/b", "-I", "250", "-h", "example", "-p", "1999"]).unwrap();
        assert_eq!(p.publishers[1].topic.as_str(), "a/1/b");
        assert_eq!(p.rate, Some(4.0));
        assert_eq!((p.url.host.as_str(), p.url.port), ("example", 1999));

        let p = plan(&["conn", "-c", "3", "--url", "wss://h/mqtt", "--duration", "1.5"]).unwrap();
        assert_eq!((p.idle.len(), p.url.port), (3, 443));
        assert_eq!(p.max_unsent, Some(128 * 1024));

        assert_eq!(plan(&["fanin", "--max-unsent", "0"]).unwrap().max_unsent, None);
        assert_eq!(plan(&["fanin", "--max-unsent", "65536"]).unwrap().max_unsent, Some(65536));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (args, expected) in [
            (&["pub", "-t", "a/+"][..], "not a topic name"),
            (&["sub", "-t", "a/#/b"][..], "not a topic filter"),
            (&["fanin", "-s", "10"][..], "at least the 24-byte bench header"),
            (&["p2p", "-c", "0"][..], "-c/--count must be at least 1"),
            (&["fanout", "--rate=-3"][..], "--rate -3: give a number above 0"),
            (&["fanout", "--rate", "0"][..], "--rate 0: give a number above 0"),
            (&["conn", "--duration", "0"][..], "--duration 0: give a number of seconds above 0"),
            (&["conn", "--url", "foo://x"][..], "--url"),
            (&["conn", "--ca-file", "x.pem"][..], "--ca-file is for mqtts:// and wss://"),
            (&["conn", "--url", "mqtt://h", "-p", "3"][..], "cannot be used with"),
            (&["fanin", "-q", "3"][..], "3 is not in 0..=2"),
        ] {
            let err = plan(args).expect_err(&format!("{args:?} should fail"));
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}
