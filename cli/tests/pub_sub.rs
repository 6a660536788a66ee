//! `moat mqtt pub` and `moat mqtt sub` as a user runs them: the built `moat` binary against
//! our broker (`moat mqtt broker`, a child process) and against mosquitto.
//!
//! Needs `mosquitto` (`apt-get install mosquitto`). Each test starts its own brokers on
//! free loopback ports, so the tests run in parallel.
#![allow(missing_docs, clippy::print_stdout)]

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one step may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The `moat` binary, without the caller's logging settings.
fn moat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
    cmd.env_remove("RUST_LOG").env("RUST_BACKTRACE", "1");
    cmd
}

/// A fresh file name in the target's scratch directory.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pub-sub-{}-{n}-{name}", std::process::id()))
}

/// Writes `text` to a fresh scratch file.
fn write_file(name: &str, text: &str) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, text).expect("write scratch file");
    path
}

/// What a child wrote so far, and whether the stream ended.
#[derive(Default)]
struct Captured {
    text: Vec<u8>,
    done: bool,
}

/// A stream of a child, collected by a thread.
#[derive(Clone, Default)]
struct Capture(Arc<(Mutex<Captured>, Condvar)>);

impl Capture {
    fn start(mut stream: impl Read + Send + 'static) -> Self {
        let capture = Self::default();
        let shared = capture.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                let (lock, changed) = &*shared.0;
                let mut captured = lock.lock().unwrap();
                if n == 0 {
                    captured.done = true;
                    changed.notify_all();
                    return;
                }
                captured.text.extend_from_slice(&chunk[..n]);
                changed.notify_all();
            }
        });
        capture
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.0.lock().unwrap().text).into_owned()
    }

    /// Waits until `pred` holds for the text, or panics naming `what`.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let (lock, changed) = &*self.0;
        let deadline = Instant::now() + TIMEOUT;
        let mut captured = lock.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&captured.text).into_owned();
            if pred(&text) {
                return;
            }
            let now = Instant::now();
            assert!(now < deadline && !captured.done, "no {what} in:\n{text}");
            captured = changed.wait_timeout(captured, deadline - now).unwrap().0;
        }
    }

    fn wait_done(&self) {
        let (lock, changed) = &*self.0;
        let deadline = Instant::now() + TIMEOUT;
        let mut captured = lock.lock().unwrap();
        while !captured.done && Instant::now() < deadline {
            captured = changed.wait_timeout(captured, deadline - Instant::now()).unwrap().0;
        }
    }
}

/// A running child whose output is collected; killed when dropped.
struct Proc {
    child: Child,
    stdout: Capture,
    stderr: Capture,
    what: String,
}

/// How a child ended.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts that it succeeded; returns stdout.
    fn ok(self) -> String {
        assert!(self.status.success(), "failed: {self:?}");
        self.stdout
    }
}

impl Proc {
    fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>) -> Self {
        let what = format!("{cmd:?}");
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        if let Some(data) = stdin {
            let mut input = child.stdin.take().expect("stdin");
            thread::spawn(move || {
                let _ = input.write_all(&data);
            });
        }
        let stdout = Capture::start(child.stdout.take().expect("stdout"));
        let stderr = Capture::start(child.stderr.take().expect("stderr"));
        Self { child, stdout, stderr, what }
    }

    /// Waits for it to exit (panics after [`TIMEOUT`]).
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                    self.what,
                    self.stdout.text(),
                    self.stderr.text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.stdout.wait_done();
        self.stderr.wait_done();
        Finished { status, stdout: self.stdout.text(), stderr: self.stderr.text() }
    }

    /// Sends a signal (by its `kill` name: INT, TERM).
    fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        let mut cmd = moat();
        cmd.args(["mqtt", "broker", "-c"]).arg(&config);
        let proc = Proc::spawn(cmd, None);
        let marker = "listening on 127.0.0.1:";
        proc.stderr.wait_for("listening line", |t| t.find(marker).is_some_and(|at| t[at..].contains('\n')));
        let text = proc.stderr.text();
        let at = text.find(marker).unwrap() + marker.len();
        let port: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
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

/// The runtimes this build of `moat` offers.
fn runtimes() -> Vec<&'static str> {
    let mut list = Vec::new();
    if cfg!(feature = "runtime-tokio") {
        list.push("tokio");
    }
    if cfg!(feature = "runtime-smol") {
        list.push("smol");
    }
    list
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
