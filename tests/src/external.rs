//! Real MQTT clients as child processes: `mosquitto_pub` / `mosquitto_sub` and python3 scripts
//! using paho-mqtt 2.x (in `tests/python/`).
//!
//! A [`Proc`] captures its output line by line, can wait for a line, is signalled, waited for
//! with a timeout and killed on drop. A missing tool is a test failure that says how to install
//! it, never a silent pass.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// How long a client process may take for anything, unless a test says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The `mosquitto_sub -F` format [`parse_messages`] reads: `MSG topic qos retain payload`.
pub const SUB_FORMAT: &str = "MSG %t %q %r %p";

/// A line a child process wrote.
enum Line {
    Out(String),
    Err(String),
}

/// A running child process whose stdout and stderr are captured; killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Line>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    /// Lines of stdout already returned by [`Proc::wait_line`] (the next search starts after).
    seen: usize,
    reaped: Option<ExitStatus>,
}

/// What a finished process left: its exit status and everything it wrote.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout, line by line.
    pub stdout: Vec<String>,
    /// Its stderr, line by line.
    pub stderr: Vec<String>,
}

impl Finished {
    /// Everything it wrote, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }

    /// Panics (with the output) unless it exited with status 0.
    pub fn assert_success(&self, what: &str) {
        assert!(self.status.success(), "{what} failed: {}", self.dump());
    }
}

fn describe(cmd: &Command) -> String {
    let mut name = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        name.push(' ');
        name.push_str(&arg.to_string_lossy());
    }
    name
}

fn pump(stream: impl Read + Send + 'static, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout/stderr captured.
    pub fn spawn(mut cmd: Command) -> Self {
        let name = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{name}`: {e}"));
        let (tx, lines) = mpsc::channel();
        pump(child.stdout.take().expect("piped stdout"), tx.clone(), Line::Out);
        pump(child.stderr.take().expect("piped stderr"), tx, Line::Err);
        Self { name, child, lines, stdout: Vec::new(), stderr: Vec::new(), seen: 0, reaped: None }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes in the lines written so far, waiting up to `timeout` for the next one. Returns
    /// false once both pipes are closed.
    fn pull(&mut self, timeout: Duration) -> bool {
        let mut first = true;
        loop {
            let line = if first {
                self.lines.recv_timeout(timeout)
            } else {
                self.lines.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
                })
            };
            first = false;
            match line {
                Ok(Line::Out(line)) => self.stdout.push(line),
                Ok(Line::Err(line)) => self.stderr.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => return true,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Everything written so far, for failure messages.
    pub fn dump(&mut self) -> String {
        self.pull(Duration::ZERO);
        format!("`{}`\n--- stdout\n{}\n--- stderr\n{}", self.name, self.stdout.join("\n"), self.stderr.join("\n"))
    }

    /// Stdout so far, line by line.
    pub fn stdout(&mut self) -> &[String] {
        self.pull(Duration::ZERO);
        &self.stdout
    }

    /// Waits up to `timeout` for a stdout line (after the last one this returned) for which
    /// `matches` holds, and returns it; panics with the output so far if none comes.
    pub fn wait_line_with(&mut self, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.stdout[self.seen..].iter().position(|l| matches(l)) {
                self.seen += i + 1;
                return self.stdout[self.seen - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.pull(left) {
                // Pipes closed or time is up: one last look, then fail.
                if let Some(i) = self.stdout[self.seen..].iter().position(|l| matches(l)) {
                    self.seen += i + 1;
                    return self.stdout[self.seen - 1].clone();
                }
                let state = match self.child.try_wait() {
                    Ok(Some(status)) => format!("exited ({status})"),
                    _ => format!("still running after {timeout:?}"),
                };
                panic!("no expected line from a client process, {state}: {}", self.dump());
            }
        }
    }

    /// Waits up to `timeout` until `done` holds for all of stdout so far; panics with the output
    /// if it does not.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(&self.stdout) {
            let left = deadline.saturating_duration_since(Instant::now());
            if (left.is_zero() || !self.pull(left)) && !done(&self.stdout) {
                panic!("a client process did not get what was expected within {timeout:?}: {}", self.dump());
            }
        }
    }

    /// Waits up to [`TIMEOUT`] for a stdout line containing `needle` (see
    /// [`Proc::wait_line_with`]).
    pub fn wait_line(&mut self, needle: &str) -> String {
        self.wait_line_with(TIMEOUT, |l| l.contains(needle))
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`, ...) with `kill(1)`.
    pub fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill(1): {e}"));
        assert!(status.success(), "kill -s {signal} {} failed: {}", self.pid(), self.dump());
    }

    /// SIGKILL: the process dies at once and the kernel closes its sockets (no DISCONNECT).
    pub fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        self.wait(TIMEOUT)
    }

    /// Waits up to `timeout` for the process to exit; kills it and panics (with its output) if
    /// it does not.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    self.pull(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("client process still running after {timeout:?}, killed: {}", self.dump());
                }
                Err(e) => panic!("waiting for `{}`: {e}", self.name),
            }
        };
        self.reaped = Some(status);
        // The rest of the output; a grandchild holding the pipes must not hang us.
        let drain_until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < drain_until && self.pull(Duration::from_millis(50)) {}
        Finished { status, stdout: std::mem::take(&mut self.stdout), stderr: std::mem::take(&mut self.stderr) }
    }

    /// Waits up to `timeout` and panics unless the process exited with status 0.
    pub fn wait_success(self, timeout: Duration) -> Finished {
        let name = self.name.clone();
        let finished = self.wait(timeout);
        finished.assert_success(&format!("`{name}`"));
        finished
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Panics, saying how to install it, unless `program` can be started.
fn require(program: &str, probe: &[&str], install: &str) {
    static FOUND: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let found = FOUND.get_or_init(Mutex::default);
    if found.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|p| p == program) {
        return;
    }
    match Command::new(program).args(probe).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => found.lock().unwrap_or_else(PoisonError::into_inner).push(program.to_owned()),
        Err(e) => panic!("`{program}` is needed by this test but cannot be run ({e}); install it: {install}"),
    }
}

/// Which MQTT level a mosquitto client speaks: its `-V` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    /// `mqttv31`.
    V31,
    /// `mqttv311`.
    V311,
    /// `mqttv5`.
    V5,
}

impl MqttVersion {
    fn arg(self) -> &'static str {
        match self {
            MqttVersion::V31 => "mqttv31",
            MqttVersion::V311 => "mqttv311",
            MqttVersion::V5 => "mqttv5",
        }
    }
}

/// `tool` (`mosquitto_pub` or `mosquitto_sub`) aimed at `addr`, speaking `version`; add the
/// rest of the arguments.
pub fn mosquitto(tool: &str, addr: SocketAddr, version: MqttVersion) -> Command {
    require(tool, &["--help"], "apt-get install mosquitto-clients");
    require("stdbuf", &["--version"], "apt-get install coreutils");
    // Its stdout is a pipe here, which stdio would buffer until exit: make it line-buffered.
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", tool, "-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-V", version.arg()]);
    cmd
}

/// Starts `mosquitto_sub` with `args`, printing messages in [`SUB_FORMAT`] and debug lines
/// (`-d`), and waits for its SUBACK. Add `-C n` to make it exit after `n` messages.
pub fn mosquitto_sub(addr: SocketAddr, version: MqttVersion, args: &[&str]) -> Proc {
    let mut sub = mosquitto_sub_nowait(addr, version, args);
    sub.wait_line("received SUBACK");
    sub
}

/// [`mosquitto_sub`] without waiting for SUBACK (a resumed session may get its messages, and
/// exit with `-C`, before that).
pub fn mosquitto_sub_nowait(addr: SocketAddr, version: MqttVersion, args: &[&str]) -> Proc {
    let mut cmd = mosquitto("mosquitto_sub", addr, version);
    cmd.args(["-d", "-F", SUB_FORMAT]).args(args);
    Proc::spawn(cmd)
}

/// Runs `mosquitto_pub` with `args` to completion; panics unless it succeeds.
pub fn mosquitto_pub(addr: SocketAddr, version: MqttVersion, args: &[&str]) -> Finished {
    let mut cmd = mosquitto("mosquitto_pub", addr, version);
    cmd.args(args);
    Proc::spawn(cmd).wait_success(TIMEOUT)
}

/// A message as `mosquitto_sub -F` [`SUB_FORMAT`] printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMessage {
    /// The topic name.
    pub topic: String,
    /// The QoS it was delivered at.
    pub qos: u8,
    /// Whether RETAIN was set on delivery.
    pub retain: bool,
    /// The payload, as text.
    pub payload: String,
}

/// The messages among `lines` (stdout of [`mosquitto_sub`]), in order.
pub fn parse_messages(lines: &[String]) -> Vec<SubMessage> {
    lines
        .iter()
        .filter_map(|line| {
            let mut parts = line.strip_prefix("MSG ")?.splitn(4, ' ');
            let topic = parts.next()?.to_owned();
            let qos = parts.next()?.parse().ok()?;
            let retain = parts.next()? == "1";
            let payload = parts.next().unwrap_or("").to_owned();
            Some(SubMessage { topic, qos, retain, payload })
        })
        .collect()
}

/// The directory of the python client scripts.
pub fn python_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// `python3 tests/python/<script> <host> <port> <args...>`, after checking that paho-mqtt 2.x
/// is installed.
pub fn python(script: &str, addr: SocketAddr, args: &[&str]) -> Command {
    static PAHO: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = PAHO.get_or_init(|| {
        let probe = "import sys, paho.mqtt; sys.exit(0 if int(paho.mqtt.__version__.split('.')[0]) >= 2 else 3)";
        match Command::new("python3").args(["-c", probe]).output() {
            Err(e) => Err(format!("`python3` cannot be run ({e}); install it: apt-get install python3")),
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "python3 needs paho-mqtt 2.x for this test; install it: pip install 'paho-mqtt>=2' ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
    let mut cmd = Command::new("python3");
    cmd.arg("-u").arg(python_dir().join(script)).arg(addr.ip().to_string()).arg(addr.port().to_string()).args(args);
    cmd
}

/// Runs a python client script to completion and returns the fields of its `RESULT k=v ...`
/// line; panics (with its output) if it fails, hangs past `timeout` or prints no result.
pub fn run_python(script: &str, addr: SocketAddr, args: &[&str], timeout: Duration) -> BTreeMap<String, String> {
    let finished = Proc::spawn(python(script, addr, args)).wait(timeout);
    finished.assert_success(&format!("python3 {script} {}", args.join(" ")));
    let Some(line) = finished.stdout.iter().rev().find_map(|l| l.strip_prefix("RESULT ")) else {
        panic!("{script} printed no RESULT line: {}", finished.dump());
    };
    line.split_whitespace()
        .map(|field| {
            let (k, v) = field.split_once('=').unwrap_or((field, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// How a proxied connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyClose {
    /// The broker closed it first.
    ByBroker,
    /// The client closed it first.
    ByClient,
}

/// A TCP proxy to the broker for exactly one client connection: it stops listening after the
/// first accept, so a client that reconnects on its own cannot get back in, and it reports who
/// closed the connection.
pub struct OneShotProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    closed: mpsc::Receiver<ProxyClose>,
}

impl OneShotProxy {
    /// Listens on 127.0.0.1 (port 0), forwarding the first connection to `broker`.
    pub fn start(broker: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let (tx, closed) = mpsc::channel();
        std::thread::spawn(move || {
            let deadline = Instant::now() + TIMEOUT;
            let client = loop {
                match listener.accept() {
                    Ok((client, _)) => break client,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            };
            drop(listener);
            client.set_nonblocking(false).expect("blocking client socket");
            let Ok(upstream) = TcpStream::connect(broker) else { return };
            let client_gone = Arc::new(AtomicBool::new(false));
            let (mut c_read, mut u_write) = (client.try_clone().expect("clone"), upstream.try_clone().expect("clone"));
            let gone = Arc::clone(&client_gone);
            std::thread::spawn(move || {
                copy(&mut c_read, &mut u_write);
                gone.store(true, Ordering::SeqCst);
                let _ = u_write.shutdown(Shutdown::Write);
            });
            let (mut u_read, mut c_write) = (upstream, client);
            copy(&mut u_read, &mut c_write);
            let by = if client_gone.load(Ordering::SeqCst) { ProxyClose::ByClient } else { ProxyClose::ByBroker };
            let _ = tx.send(by);
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = u_read.shutdown(Shutdown::Both);
        });
        Self { addr, closed }
    }

    /// Who closed the proxied connection, if it closes within `timeout`.
    pub fn closed_within(&self, timeout: Duration) -> Option<ProxyClose> {
        self.closed.recv_timeout(timeout).ok()
    }
}

fn copy(from: &mut TcpStream, to: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A real mosquitto broker on a free loopback port, stopped on drop.
pub struct MosquittoBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    child: std::process::Child,
}

impl MosquittoBroker {
    /// Starts `mosquitto` (apt package `mosquitto`) on 127.0.0.1 and a free port.
    pub fn start() -> Self {
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
        Self::start_on(free)
    }

    /// Starts `mosquitto` on `addr`'s port (on 127.0.0.1), e.g. to restart it where it was.
    pub fn start_on(addr: SocketAddr) -> Self {
        Self::start_with(addr, false)
    }

    /// Starts `mosquitto` on `addr`'s port; with `persistent`, sessions and queued messages
    /// are saved at shutdown in a folder kept per port, and loaded at the next start there.
    pub fn start_with(addr: SocketAddr, persistent: bool) -> Self {
        Self::start_conf(addr.port(), persistent, "")
    }

    /// Starts `mosquitto` with a TLS listener on 127.0.0.1 and a free port, serving the
    /// certificate chain `certfile` with `keyfile`; `cafile` is its CA (for client
    /// certificates, which it does not require).
    pub fn start_tls(cafile: &std::path::Path, certfile: &std::path::Path, keyfile: &std::path::Path) -> Self {
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
        let tls =
            format!("cafile {}\ncertfile {}\nkeyfile {}\n", cafile.display(), certfile.display(), keyfile.display());
        Self::start_conf(free.port(), false, &tls)
    }

    /// Starts `mosquitto` with one listener on `port`, its settings followed by `listener_conf`.
    fn start_conf(port: u16, persistent: bool, listener_conf: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("moat-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // mosquitto started as root drops to its own user: let it write its files here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod temp dir");
        }
        let conf = dir.join("mosquitto.conf");
        let persistence = if persistent {
            format!("persistence true\npersistence_location {}/\n", dir.display())
        } else {
            "persistence false\n".to_owned()
        };
        let trace = if std::env::var_os("MOSQUITTO_TRACE").is_some() {
            format!("log_dest file {}/mosquitto.log\nlog_type all\n", dir.display())
        } else {
            String::new()
        };
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\n{listener_conf}allow_anonymous true\n{persistence}{trace}"),
        )
        .expect("write mosquitto.conf");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mosquitto ({e}); install it: apt-get install mosquitto"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Self { addr, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("mosquitto did not start listening on {addr}");
    }
}

impl MosquittoBroker {
    /// Stops it the way an operator would (SIGTERM), so that it saves its persistence file.
    pub fn terminate(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for MosquittoBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
