//! `moat mqtt pub` and `moat mqtt sub` as a user runs them: the built `moat` binary against
//! our broker (`moat mqtt broker`, a child process) and against mosquitto.
//!
//! Needs `mosquitto` (`apt-get install mosquitto`). Each test starts its own brokers on
//! free loopback ports, so the tests run in parallel.
#![allow(missing_docs, clippy::print_stdout)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Finished, Proc, TIMEOUT, moat, runtimes, start_broker, write_file};

/// Runs `moat` with `args` to the end.
fn run(args: &[&str]) -> Finished {
    run_with_stdin(args, None)
}

/// Runs `moat` with `args` and `stdin` to the end.
fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Finished {
    let mut cmd = moat();
    cmd.args(args);
    Proc::spawn(cmd, stdin.map(<[u8]>::to_vec)).finish()
}

/// A broker for a test, stopped when dropped.
struct Broker {
    url: String,
    name: &'static str,
    _proc: Proc,
}

impl Broker {
    /// `moat mqtt broker` on a port it picks (and announces).
    fn ours() -> Self {
        let config = write_file("broker.yaml", "listeners:\n  default:\n    bind: 127.0.0.1:0\n");
        let (proc, port) = start_broker(&config, &[]);
        Self { url: format!("mqtt://127.0.0.1:{port}"), name: "moat", _proc: proc }
    }

    /// mosquitto on a free port, anonymous clients allowed (or not).
    fn mosquitto_with(allow_anonymous: bool) -> Self {
        let found = Command::new("mosquitto").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(found.is_ok(), "mosquitto is needed for these tests: apt-get install mosquitto");
        for _ in 0..5 {
            let port = free_port();
            let config = write_file(
                "mosquitto.conf",
                &format!("listener {port} 127.0.0.1\nallow_anonymous {allow_anonymous}\npersistence false\n"),
            );
            let mut cmd = Command::new("mosquitto");
            cmd.arg("-c").arg(&config);
            let mut proc = Proc::spawn(cmd, None);
            let deadline = Instant::now() + TIMEOUT;
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { url: format!("mqtt://127.0.0.1:{port}"), name: "mosquitto", _proc: proc };
                }
                if proc.child.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("mosquitto did not start");
    }

    fn mosquitto() -> Self {
        Self::mosquitto_with(true)
    }

    /// Both brokers, ours first.
    fn both() -> [Self; 2] {
        [Self::ours(), Self::mosquitto()]
    }
}

/// A loopback port nothing listens on (at the moment).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port()
}

/// Starts `moat mqtt sub` with `args` (and `-v`), and waits until each of its `-t` filters
/// is subscribed.
fn start_sub(url: &str, args: &[&str]) -> Proc {
    let mut cmd = moat();
    cmd.args(["mqtt", "sub", "-v", "--url", url]).args(args);
    let proc = Proc::spawn(cmd, None);
    let filters = args.iter().filter(|a| **a == "-t").count();
    proc.stderr.wait_for("SUBACK", |t| t.matches("subscribed to").count() >= filters);
    proc
}

/// Runs `moat mqtt pub --url url args...`, which must succeed.
fn publish(url: &str, args: &[&str]) {
    let mut all = vec!["mqtt", "pub", "--url", url];
    all.extend_from_slice(args);
    let finished = run(&all);
    assert!(finished.stderr.is_empty(), "pub wrote to stderr: {finished:?}");
    finished.ok();
}

#[test]
fn three_messages_at_each_qos_on_each_runtime() {
    for broker in Broker::both() {
        for runtime in runtimes() {
            for qos in ["0", "1", "2"] {
                let topic = format!("q/{qos}");
                let sub = start_sub(&broker.url, &["-t", "q/#", "-q", qos, "-n", "3", "--runtime", runtime]);
                publish(
                    &broker.url,
                    &["-t", &topic, "-q", qos, "-m", "one", "-m", "two", "-m", "three", "--runtime", runtime],
                );
                let out = sub.finish().ok();
                assert_eq!(
                    out,
                    format!("{topic}\tone\n{topic}\ttwo\n{topic}\tthree\n"),
                    "{} on {runtime} at QoS {qos}",
                    broker.name
                );
            }
        }
    }
}

#[test]
fn file_stdin_lines_all_of_stdin_and_null_message() {
    for broker in Broker::both() {
        let url = broker.url.as_str();
        let file = write_file("messages.txt", "first line\n\nsecond line\r\n");
        let sub = start_sub(url, &["-t", "src/#", "-q", "1", "-n", "8"]);
        publish(url, &["-t", "src/f", "-q", "1", "-f", file.to_str().unwrap()]);
        for flag in ["-l", "-s"] {
            let piped =
                run_with_stdin(&["mqtt", "pub", "--url", url, "-t", "src/l", "-q", "1", flag], Some(b"a\n\nb\n"));
            piped.ok();
        }
        let all = run_with_stdin(&["mqtt", "pub", "--url", url, "-t", "src/r", "-q", "1", "-R"], Some(b"x\ny"));
        all.ok();
        publish(url, &["-t", "src/n", "-q", "1", "-n"]);
        let out = sub.finish().ok();
        assert_eq!(
            out,
            "src/f\tfirst line\nsrc/f\tsecond line\nsrc/l\ta\nsrc/l\tb\nsrc/l\ta\nsrc/l\tb\nsrc/r\tx\ny\nsrc/n\t\n",
            "{}",
            broker.name
        );
    }
}

#[test]
fn retained_message_reaches_a_later_subscriber() {
    for broker in Broker::both() {
        publish(&broker.url, &["-t", "ret/a", "-q", "1", "-r", "-m", "kept"]);
        let out = run(&["mqtt", "sub", "--url", &broker.url, "-t", "ret/#", "-n", "1"]).ok();
        assert_eq!(out, "ret/a\tkept\n", "{}", broker.name);
    }
}

#[test]
fn json_codec_round_trip() {
    for broker in Broker::both() {
        let sub = start_sub(&broker.url, &["-t", "j", "-C", "json", "-n", "3"]);
        publish(&broker.url, &["-t", "j", "-C", "json", "-m", r#"{"a": [1, 2.5, null]}"#, "-m", r#""text""#]);
        // Not JSON: printed raw, with a warning.
        publish(&broker.url, &["-t", "j", "-m", "plain"]);
        let finished = sub.finish();
        assert!(finished.stderr.contains("printed raw"), "{}: {finished:?}", broker.name);
        assert_eq!(finished.ok(), "j\t{\"a\":[1,2.5,null]}\nj\t\"text\"\nj\tplain\n", "{}", broker.name);
    }
}

#[test]
fn configuration_file_gives_url_and_defaults() {
    for broker in Broker::both() {
        let config =
            write_file("client.yaml", &format!("uri: {}\nclient:\n  default_qos: 1\n  codec: utf8\n", broker.url));
        let config = config.to_str().unwrap();
        let sub = Proc::spawn(
            {
                let mut cmd = moat();
                cmd.args(["-c", config, "mqtt", "sub", "-v", "-t", "cfg", "-n", "1"]);
                cmd
            },
            None,
        );
        sub.stderr.wait_for("SUBACK", |t| t.contains("subscribed to \"cfg\", granted QoS 1"));
        run(&["mqtt", "pub", "-c", config, "-t", "cfg", "-m", "from config"]).ok();
        assert_eq!(sub.finish().ok(), "cfg\tfrom config\n", "{}", broker.name);
    }
}

#[test]
fn persistent_sessions_neither_hang_nor_lose_messages() {
    for broker in Broker::both() {
        let url = broker.url.as_str();
        // The same client id twice in a row, without --clean-session.
        for _ in 0..2 {
            publish(url, &["-i", "moat-test-pub", "-t", "ps/x", "-q", "1", "-m", "again"]);
        }
        // A persistent subscriber gets what was published while it was away.
        let sub = start_sub(url, &["-i", "moat-test-sub", "-t", "ps/t", "-q", "1", "-n", "1"]);
        publish(url, &["-t", "ps/t", "-q", "1", "-m", "first"]);
        assert_eq!(sub.finish().ok(), "ps/t\tfirst\n", "{}", broker.name);
        publish(url, &["-t", "ps/t", "-q", "1", "-m", "while away"]);
        let out = run(&["mqtt", "sub", "--url", url, "-i", "moat-test-sub", "-t", "ps/t", "-q", "1", "-n", "1"]).ok();
        assert_eq!(out, "ps/t\twhile away\n", "{}", broker.name);
        // --clean-session starts afresh: nothing is waiting any more.
        publish(url, &["-t", "ps/t", "-q", "1", "-m", "gone"]);
        let sub = start_sub(url, &["-i", "moat-test-sub", "--clean-session", "-t", "ps/t", "-q", "1", "-n", "1"]);
        publish(url, &["-t", "ps/t", "-q", "1", "-m", "fresh"]);
        assert_eq!(sub.finish().ok(), "ps/t\tfresh\n", "{}", broker.name);
    }
}

#[test]
fn will_is_published_when_the_connection_is_lost() {
    for broker in Broker::both() {
        let watcher = start_sub(&broker.url, &["-t", "will/#", "-n", "1"]);
        let victim = start_sub(
            &broker.url,
            &["-t", "nothing", "-k", "5", "--will-topic", "will/v", "--will-message", "gone", "--will-qos", "1"],
        );
        drop(victim); // killed: no DISCONNECT
        assert_eq!(watcher.finish().ok(), "will/v\tgone\n", "{}", broker.name);
    }
}

#[test]
fn signals_end_sub_cleanly() {
    let broker = Broker::ours();
    for signal in ["INT", "TERM"] {
        let sub = start_sub(&broker.url, &["-t", "sig"]);
        sub.signal(signal);
        let finished = sub.finish();
        assert_eq!(finished.code(), Some(0), "{finished:?}");
    }
}

/// Asserts a run failed with exit code 1 and exactly one line on stderr, which starts so.
fn assert_one_error_line(finished: &Finished, start: &str) {
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    let lines: Vec<&str> = finished.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{finished:?}");
    assert!(lines[0].starts_with(start), "{finished:?}");
    assert!(finished.stdout.is_empty(), "{finished:?}");
}

#[test]
fn unreachable_broker_is_one_line_and_exit_1() {
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let start = format!("error: cannot reach the broker at {url}: ");
    let published = run(&["mqtt", "pub", "--url", &url, "-t", "a", "-m", "x"]);
    assert_one_error_line(&published, &start);
    assert!(published.stderr.to_lowercase().contains("refused"), "{published:?}");
    let subscribed = run(&["mqtt", "sub", "--uri", &url, "-t", "a"]);
    assert_one_error_line(&subscribed, &start);
    let tls = run(&["mqtt", "pub", "--url", "mqtts://127.0.0.1:1", "-t", "a", "-m", "x", "--ca-file", "/none"]);
    assert_one_error_line(
        &tls,
        "error: cannot reach the broker at mqtts://127.0.0.1:1: client: cannot read cafile /none: No such file",
    );
}

#[test]
fn tls_and_websocket_listeners_and_urls_on_each_runtime() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("certificate");
    let cert = write_file("cert.pem", &certified.cert.pem());
    let key = write_file("key.pem", &certified.signing_key.serialize_pem());
    let (cert, key) = (cert.display(), key.display());
    let config = write_file(
        "broker.yaml",
        &format!(
            "listeners:\n  default: {{bind: 127.0.0.1:0, certfile: {cert}, keyfile: {key}}}\n  secure: {{ssl: on}}\n  \
             web: {{type: ws}}\n  websecure: {{type: ws, ssl: on, path: /mqtt}}\n"
        ),
    );
    let mut cmd = moat();
    cmd.args(["mqtt", "broker", "-c"]).arg(&config);
    let broker = Proc::spawn(cmd, None);
    // Whole lines: stderr may be read in the middle of the last one.
    broker.stderr.wait_for("three listening lines", |t| {
        ["secure", "web", "websecure"].iter().all(|name| t.contains(&format!("(listener {name})\n")))
    });
    let text = broker.stderr.text();
    let port = |name: &str| -> String {
        let line = text.lines().find(|l| l.ends_with(&format!("(listener {name})"))).expect("listening line");
        let at = line.find("127.0.0.1:").expect("address") + "127.0.0.1:".len();
        line[at..].chars().take_while(char::is_ascii_digit).collect()
    };
    let (secure, web, websecure) = (port("secure"), port("web"), port("websecure"));
    let ca = cert.to_string();
    for runtime in runtimes() {
        let sub_url = format!("wss://localhost:{websecure}/mqtt");
        let sub = start_sub(&sub_url, &["-t", "t/#", "-n", "2", "--ca-file", &ca, "--runtime", runtime]);
        publish(
            &format!("mqtts://127.0.0.1:{secure}"),
            &["-t", "t/tls", "-m", "one", "--ca-file", &ca, "--runtime", runtime],
        );
        let headers = r#"{X-Moat-Test: "yes"}"#;
        publish(
            &format!("ws://localhost:{web}/"),
            &["-t", "t/ws", "-m", "two", "--extra-headers", headers, "--runtime", runtime],
        );
        assert_eq!(sub.finish().ok(), "t/tls\tone\nt/ws\ttwo\n", "{runtime}");
    }
    // Without the CA the broker's certificate is not trusted.
    let untrusted = run(&["mqtt", "pub", "--url", &format!("mqtts://localhost:{secure}"), "-t", "x", "-m", "y"]);
    assert_one_error_line(&untrusted, &format!("error: cannot reach the broker at mqtts://localhost:{secure}: "));
    assert!(untrusted.stderr.contains("invalid peer certificate"), "{untrusted:?}");
}

#[test]
fn refused_connection_names_the_reason() {
    let broker = Broker::mosquitto_with(false);
    for cmd in ["pub", "sub"] {
        let mut args = vec!["mqtt", cmd, "--url", &broker.url, "-t", "a"];
        if cmd == "pub" {
            args.extend(["-m", "x"]);
        }
        let finished = run(&args);
        assert_one_error_line(&finished, "error: the broker refused the connection: not authorized");
    }
}

#[test]
fn bad_command_lines_exit_2() {
    let missing = write_file("absent", "");
    std::fs::remove_file(&missing).unwrap();
    let missing = missing.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["mqtt", "pub", "-m", "x"],                                // no -t
        &["mqtt", "pub", "-t", "a"],                                // no message source
        &["mqtt", "pub", "-t", "a", "-m", "x", "-n"],               // two sources
        &["mqtt", "pub", "-t", "a", "-l", "-R"],                    // two sources
        &["mqtt", "pub", "-t", "a", "-m", "x", "-q", "3"],          // no such QoS
        &["mqtt", "pub", "-t", "a/+", "-m", "x"],                   // wildcard in a topic name
        &["mqtt", "pub", "-t", "a", "-m", "{x", "-C", "json"],      // not JSON
        &["mqtt", "pub", "-t", "a", "-m", "x", "-C", "nope"],       // no such codec
        &["mqtt", "pub", "-t", "a", "-f", missing],                 // no such file
        &["mqtt", "pub", "-t", "a", "-m", "x", "--url", "foo://h"], // bad URL
        &["mqtt", "pub", "-t", "a", "-m", "x", "--will-qos", "1"],  // will option without a topic
        &["mqtt", "pub", "-t", "a", "-m", "x", "-c", missing],      // no such configuration
        &["mqtt", "sub"],                                           // no -t
        &["mqtt", "sub", "-t", "a", "-n", "0"],                     // count must be positive
        &["mqtt", "sub", "-t", "a/#/b"],                            // bad filter
        &["mqtt", "sub", "-t", "a", "-k", "70000"],                 // keep-alive beyond 16 bits
    ];
    for args in cases {
        let finished = run(args);
        assert_eq!(finished.code(), Some(2), "{args:?}: {finished:?}");
        assert!(finished.stderr.starts_with("error: "), "{args:?}: {finished:?}");
        assert!(!finished.stderr.contains("panicked"), "{args:?}: {finished:?}");
    }
}

#[test]
fn quiet_is_top_level_and_q_is_qos() {
    let broker = Broker::ours();
    let sub = start_sub(&broker.url, &["-t", "qq", "-q", "2", "-n", "1"]);
    let finished = run(&["-q", "mqtt", "pub", "--url", &broker.url, "--quiet", "-t", "qq", "-q", "2", "-m", "x"]);
    assert!(finished.status.success(), "{finished:?}");
    assert_eq!(sub.finish().ok(), "qq\tx\n");
    let stderr = BufReader::new(finished.stderr.as_bytes()).lines().count();
    assert_eq!(stderr, 0);
}
