//! `moat mqtt bench` against our broker (`moat mqtt broker`, a child process) and mosquitto:
//! short runs whose `--json` summaries must add up (counts, losses, duplicates, latency).
//!
//! Needs `mosquitto` (`apt-get install mosquitto`) for the mosquitto test. Each test starts
//! its own brokers on free loopback ports, so the tests run in parallel.
#![allow(missing_docs)]

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{moat, runtimes, write_file};
use serde_json::Value;

/// How long a broker may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker child process, killed when dropped; its stderr is collected.
struct Broker {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Broker {
    /// `moat mqtt broker -c` a configuration whose listeners bind port 0; returns it once every
    /// listener in `names` has announced its port.
    fn ours(config: &str, names: &[&str]) -> (Self, Vec<u16>) {
        let config = write_file("broker.yaml", config);
        let mut cmd = moat();
        cmd.args(["mqtt", "broker", "-c"]).arg(&config);
        let broker = Self::spawn(cmd);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = broker.stderr.lock().unwrap().clone();
            let ports: Vec<Option<u16>> = names
                .iter()
                .map(|name| {
                    let line = text.lines().find(|l| l.ends_with(&format!("(listener {name})")))?;
                    let at = line.find("127.0.0.1:")? + "127.0.0.1:".len();
                    line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
                })
                .collect();
            // Whole lines only: the last one may be half read.
            if ports.iter().all(Option::is_some) && text.ends_with('\n') {
                return (broker, ports.into_iter().flatten().collect());
            }
            assert!(Instant::now() < deadline, "our broker did not start:\n{text}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Our broker with one plain listener and room for the queues a blast builds up.
    fn ours_plain() -> (Self, u16) {
        let (broker, ports) = Self::ours(
            "listeners:\n  default:\n    bind: 127.0.0.1:0\nsys_interval: 0\nmax-queued-messages: 1000000\n",
            &["default"],
        );
        (broker, ports[0])
    }

    /// mosquitto on a free port.
    fn mosquitto() -> (Self, u16) {
        let found = Command::new("mosquitto").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(found.is_ok(), "mosquitto is needed for this test: apt-get install mosquitto");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
            let config = write_file(
                "mosquitto.conf",
                &format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n"
                ),
            );
            let mut cmd = Command::new("mosquitto");
            cmd.arg("-c").arg(&config);
            let mut broker = Self::spawn(cmd);
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return (broker, port);
                }
                if broker.child.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("mosquitto did not start");
    }

    fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                collected.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Self { child, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long one bench run may take (each is bounded by its own count or time; this only
/// keeps a broken run from hanging the tests).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `moat mqtt bench ARGS --json --no-progress` to the end.
fn bench_output(args: &[&str]) -> Output {
    let mut cmd = moat();
    cmd.args(["mqtt", "bench"]).args(args).args(["--json", "--no-progress"]);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run moat");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut all = Vec::new();
            let _ = pipe.read_to_end(&mut all);
            all
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench {args:?} did not end within {RUN_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
}

/// Runs a bench that must succeed and returns its JSON summary.
fn bench(args: &[&str]) -> Value {
    let output = bench_output(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench {args:?} failed ({:?}):\n{stdout}\n{stderr}", output.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bench {args:?}: not JSON ({e}):\n{stdout}\n{stderr}"))
}

fn n(summary: &Value, key: &str) -> u64 {
    summary[key].as_u64().unwrap_or_else(|| panic!("no number {key:?} in {summary:#}"))
}

/// Every message arrived once and in order, at `qos`.
fn assert_complete(summary: &Value, expected: u64, qos: &str) {
    assert_eq!(n(summary, "errors"), 0, "{summary:#}");
    assert_eq!(n(summary, "expected"), expected, "{summary:#}");
    assert_eq!(n(summary, "received"), expected, "{summary:#}");
    assert_eq!((n(summary, "lost"), n(summary, "duplicates"), n(summary, "reordered")), (0, 0, 0), "{summary:#}");
    let per_qos = &summary["per_qos"][qos];
    assert_eq!(per_qos["received"].as_u64(), Some(expected), "{summary:#}");
    assert_eq!(summary["latency_us"]["count"].as_u64(), Some(expected), "every message is timed: {summary:#}");
    let p50 = summary["latency_us"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 10_000_000.0, "a plausible latency: {summary:#}");
}

#[test]
fn p2p_at_qos_1_delivers_every_message_once_on_each_runtime() {
    let (_broker, port) = Broker::ours_plain();
    let port = port.to_string();
    for runtime in runtimes() {
        let summary = bench(&[
            "p2p",
            "-p",
            &port,
            "-h",
            "127.0.0.1",
            "-c",
            "3",
            "-q",
            "1",
            "-s",
            "64",
            "-L",
            "3000",
            "--runtime",
            runtime,
        ]);
        assert_eq!(summary["scenario"], "p2p");
        assert_eq!(summary["runtime"], runtime);
        assert_eq!((n(&summary, "publishers"), n(&summary, "subscribers")), (3, 3));
        assert_eq!(n(&summary, "sent"), 3000, "{summary:#}");
        assert_eq!(n(&summary, "acked"), 3000, "{summary:#}");
        assert_eq!(summary["connect"]["connected"].as_u64(), Some(6));
        assert_complete(&summary, 3000, "1");
    }
}

#[test]
fn fanout_delivers_every_message_to_every_subscriber() {
    let (_broker, port) = Broker::ours_plain();
    let summary = bench(&["fanout", "-p", &port.to_string(), "--subscribers", "5", "-s", "100", "-L", "2000"]);
    assert_eq!(n(&summary, "sent"), 2000);
    assert_complete(&summary, 10_000, "0");
    assert_eq!(n(&summary, "payload_size"), 100);
}

#[test]
fn fanin_at_qos_2_with_two_threads() {
    let (_broker, port) = Broker::ours_plain();
    let summary =
        bench(&["fanin", "-p", &port.to_string(), "--publishers", "4", "-q", "2", "-L", "2000", "--threads", "2"]);
    assert_eq!(n(&summary, "sent"), 2000);
    assert_eq!(n(&summary, "acked"), 2000);
    assert_complete(&summary, 2000, "2");
}

#[test]
fn losses_are_counted_when_the_broker_drops() {
    // A queue of 10 messages and four publishers blasting at one QoS 0 subscriber: the
    // broker drops, and every message is either received or counted lost.
    let (_broker, ports) = Broker::ours(
        "listeners:\n  default:\n    bind: 127.0.0.1:0\nsys_interval: 0\nmax-queued-messages: 10\n",
        &["default"],
    );
    let summary = bench(&["fanin", "-p", &ports[0].to_string(), "-s", "1000", "-L", "200000", "--drain", "1"]);
    let (sent, received, lost) = (n(&summary, "sent"), n(&summary, "received"), n(&summary, "lost"));
    assert_eq!(sent, 200_000);
    assert!(lost > 0, "the broker should have dropped some: {summary:#}");
    assert_eq!(received + lost, sent, "{summary:#}");
    assert_eq!(summary["per_qos"]["0"]["lost"].as_u64(), Some(lost));
}

#[test]
fn pub_and_sub_in_two_processes() {
    let (broker, port) = Broker::ours_plain();
    let port = port.to_string();
    let sub = {
        let port = port.clone();
        thread::spawn(move || {
            bench(&["sub", "-p", &port, "-t", "two/#", "-c", "2", "-q", "1", "-L", "4000", "--prefix", "two"])
        })
    };
    // The broker logs each connection; SUBSCRIBE follows CONNACK at once.
    let deadline = Instant::now() + START_TIMEOUT;
    while !["two-sub-0", "two-sub-1"]
        .iter()
        .all(|id| broker.stderr.lock().unwrap().contains(&format!("\"{id}\" connected")))
    {
        assert!(Instant::now() < deadline, "the subscribers did not connect: {}", broker.stderr.lock().unwrap());
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    let published = bench(&["pub", "-p", &port, "-t", "two/%i", "-c", "2", "-q", "1", "-s", "32", "-L", "2000"]);
    assert_eq!((n(&published, "sent"), n(&published, "acked")), (2000, 2000), "{published:#}");
    assert_eq!(n(&published, "received"), 0);
    let received = sub.join().expect("sub bench");
    assert_eq!(n(&received, "received"), 4000, "{received:#}");
    assert_eq!((n(&received, "lost"), n(&received, "duplicates")), (0, 0), "{received:#}");
    assert_eq!(received["latency_us"]["count"].as_u64(), Some(4000));
}

#[test]
fn rate_limited_publishing_keeps_its_rate() {
    let (_broker, port) = Broker::ours_plain();
    let summary = bench(&[
        "p2p",
        "-p",
        &port.to_string(),
        "-c",
        "2",
        "-q",
        "1",
        "--rate",
        "500",
        "--duration",
        "1.5",
        "-s",
        "64",
    ]);
    // 2 publishers x 500 msg/s x 1.5 s = 1500, the first of each due at once.
    let sent = n(&summary, "sent");
    assert!((1400..=1510).contains(&sent), "{summary:#}");
    assert_complete(&summary, sent, "1");
    let p99 = summary["latency_us"]["p99"].as_f64().unwrap();
    assert!(p99 < 200_000.0, "at 1000 msg/s the latency is not queueing: {summary:#}");
}

#[test]
fn tls_and_websocket() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("certificate");
    let cert = write_file("cert.pem", &certified.cert.pem());
    let key = write_file("key.pem", &certified.signing_key.serialize_pem());
    let (broker, ports) = Broker::ours(
        &format!(
            "listeners:\n  default: {{bind: 127.0.0.1:0, certfile: {}, keyfile: {}}}\n  secure: {{ssl: on}}\n  \
             web: {{type: ws}}\n  websecure: {{type: ws, ssl: on, path: /mqtt}}\nsys_interval: 0\n",
            cert.display(),
            key.display()
        ),
        &["secure", "web", "websecure"],
    );
    let ca = cert.to_str().unwrap();
    for runtime in runtimes() {
        for (url, tls) in [
            (format!("mqtts://localhost:{}", ports[0]), true),
            (format!("ws://localhost:{}/", ports[1]), false),
            (format!("wss://localhost:{}/mqtt", ports[2]), true),
        ] {
            let mut args = vec!["p2p", "--url", &url, "-c", "2", "-q", "1", "-L", "400", "--runtime", runtime];
            if tls {
                args.extend(["--ca-file", ca]);
            }
            let summary = bench(&args);
            let scheme = url.split("://").next().unwrap();
            assert!(summary["url"].as_str().unwrap().starts_with(&format!("{scheme}://localhost:")), "{summary:#}");
            assert_complete(&summary, 400, "1");
        }
        // Without the CA the certificate is not trusted: every connection fails, exit code 1.
        let refused = bench_output(&[
            "conn",
            "--url",
            &format!("mqtts://localhost:{}", ports[0]),
            "-c",
            "2",
            "--runtime",
            runtime,
        ]);
        assert_eq!(refused.status.code(), Some(1));
        let summary: Value = serde_json::from_slice(&refused.stdout).expect("JSON even when failing");
        assert_eq!(summary["connect"]["failed"].as_u64(), Some(2));
        assert!(summary["error_samples"][0].as_str().unwrap().contains("certificate"), "{summary:#}");
    }
    drop(broker);
}

#[test]
fn conn_holds_connections_and_measures_the_broker() {
    let (broker, port) = Broker::ours_plain();
    let pid = broker.pid().to_string();
    let summary = bench(&["conn", "-p", &port.to_string(), "-c", "200", "--duration", "0.5", "--broker-pid", &pid]);
    assert_eq!(summary["connect"]["connected"].as_u64(), Some(200), "{summary:#}");
    assert!(summary["connect"]["rate_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(n(&summary, "errors"), 0);
    let b = &summary["broker"];
    assert_eq!(b["pid"].as_u64(), Some(u64::from(broker.pid())));
    assert!(b["rss_kib_loaded"].as_u64().unwrap() > 0, "{summary:#}");
    assert!(b["bytes_per_connection"].is_number(), "{summary:#}");
    assert!(b["cpu_seconds"].as_f64().unwrap() > 0.0, "{summary:#}");
    // The broker saw all of them and they closed cleanly.
    let deadline = Instant::now() + START_TIMEOUT;
    while broker.stderr.lock().unwrap().matches("closed: client disconnected").count() < 200 {
        assert!(Instant::now() < deadline, "{}", broker.stderr.lock().unwrap());
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fanin_against_mosquitto() {
    let (_broker, port) = Broker::mosquitto();
    let summary = bench(&["fanin", "-p", &port.to_string(), "--publishers", "4", "-q", "1", "-s", "64", "-L", "4000"]);
    assert_eq!(n(&summary, "sent"), 4000);
    assert_complete(&summary, 4000, "1");
}

#[test]
fn text_summary_and_progress_line() {
    let (_broker, port) = Broker::ours_plain();
    let mut cmd = moat();
    cmd.args([
        "mqtt",
        "bench",
        "fanout",
        "-p",
        &port.to_string(),
        "--subscribers",
        "2",
        "--rate",
        "100",
        "--duration",
        "1.2",
    ]);
    let output = cmd.stdin(Stdio::null()).output().expect("run moat");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for label in ["scenario", "connections", "published", "received", "  QoS 0", "latency", "errors", "bench cpu"] {
        assert!(stdout.lines().any(|l| l.starts_with(label)), "no {label:?} line in:\n{stdout}");
    }
    assert!(stdout.contains("1 publisher -> 2 subscribers"), "{stdout}");
    // One progress line a second (not a terminal: one line each).
    assert!(stderr.lines().any(|l| l.starts_with("fanout ") && l.contains("recv ") && l.contains("p99")), "{stderr}");
}

#[test]
fn bad_command_lines_exit_2() {
    let cases: &[&[&str]] = &[
        &[],                                                                           // no scenario
        &["flood"],                                                                    // no such scenario
        &["pub"],                                                                      // no -t
        &["pub", "-t", "a/+"],                                                         // a filter is not a topic
        &["sub", "-t", "a/#/b"],                                                       // not a filter
        &["fanin", "-q", "3"],                                                         // no such QoS
        &["fanin", "-s", "23"],                                                        // below the header
        &["p2p", "-c", "0"],                                                           // no pairs
        &["fanout", "--rate", "0"],                                                    // no rate
        &["fanout", "--rate", "1", "-I", "5"],                                         // two rates
        &["conn", "--duration", "0"],                                                  // nothing to hold
        &["conn", "--url", "foo://h"],                                                 // bad URL
        &["conn", "--url", "mqtt://h", "-p", "1883"],                                  // URL and port
        &["conn", "--ca-file", "ca.pem"],                                              // CA without TLS
        &["conn", "--threads", "0"],                                                   // no threads
        &["conn", "--url", "mqtts://localhost:1", "--ca-file", "/nonexistent/ca.pem"], // unreadable CA
    ];
    for args in cases {
        let mut cmd = moat();
        cmd.args(["mqtt", "bench"]).args(*args);
        let output = cmd.stdin(Stdio::null()).output().expect("run moat");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Help is not an error.
    let help = moat().args(["mqtt", "bench", "fanin", "--help"]).output().expect("run moat");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--publishers"));
}

#[test]
fn an_unreachable_broker_is_exit_1() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
    let output = bench_output(&["p2p", "-h", "127.0.0.1", "-p", &port.to_string(), "-c", "1", "-L", "10"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: no connection to the broker came up"), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["connect"]["failed"].as_u64(), Some(2));
    assert!(
        summary["error_samples"][0].as_str().unwrap().ends_with("cannot connect: Connection refused"),
        "{summary:#}"
    );
}
