//! Helpers shared by the CLI's end-to-end tests: the built `moat` binary run as a child, its
//! output collected, scratch files.
#![allow(dead_code, unreachable_pub)] // each test file uses a different part; `pub` for them

use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one step may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The `moat` binary, without the caller's logging settings.
pub fn moat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
    cmd.env_remove("RUST_LOG").env("RUST_BACKTRACE", "1");
    cmd
}

/// A fresh file name in the target's scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{n}-{name}", std::process::id()))
}

/// Writes `text` to a fresh scratch file.
pub fn write_file(name: &str, text: &str) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, text).expect("write scratch file");
    path
}

/// What a child wrote so far, and whether the stream ended.
#[derive(Default)]
pub struct Captured {
    text: Vec<u8>,
    done: bool,
}

/// A stream of a child, collected by a thread.
#[derive(Clone, Default)]
pub struct Capture(Arc<(Mutex<Captured>, Condvar)>);

impl Capture {
    pub fn start(mut stream: impl Read + Send + 'static) -> Self {
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

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.0.lock().unwrap().text).into_owned()
    }

    /// Waits until `pred` holds for the text, or panics naming `what`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) {
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

    pub fn wait_done(&self) {
        let (lock, changed) = &*self.0;
        let deadline = Instant::now() + TIMEOUT;
        let mut captured = lock.lock().unwrap();
        while !captured.done && Instant::now() < deadline {
            captured = changed.wait_timeout(captured, deadline - Instant::now()).unwrap().0;
        }
    }
}

/// A running child whose output is collected; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stdout: Capture,
    pub stderr: Capture,
    pub what: String,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts that it succeeded; returns stdout.
    pub fn ok(self) -> String {
        assert!(self.status.success(), "failed: {self:?}");
        self.stdout
    }
}

impl Proc {
    pub fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>) -> Self {
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
    pub fn finish(mut self) -> Finished {
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
    pub fn signal(&self, name: &str) {
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

/// Starts `moat mqtt broker -c config` with `args`, and waits for its first listening line;
/// returns the process and the port it listens on (the config should bind port 0).
pub fn start_broker(config: &std::path::Path, args: &[&str]) -> (Proc, u16) {
    let mut cmd = moat();
    cmd.args(["mqtt", "broker", "-c"]).arg(config).args(args);
    let proc = Proc::spawn(cmd, None);
    let marker = "listening on 127.0.0.1:";
    proc.stderr.wait_for("listening line", |t| t.find(marker).is_some_and(|at| t[at..].contains('\n')));
    let text = proc.stderr.text();
    let at = text.find(marker).unwrap_or_default() + marker.len();
    let port: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    (proc, port.parse().expect("a port in the listening line"))
}

/// The runtimes this build of `moat` offers.
pub fn runtimes() -> Vec<&'static str> {
    let mut list = Vec::new();
    if cfg!(feature = "runtime-tokio") {
        list.push("tokio");
    }
    if cfg!(feature = "runtime-smol") {
        list.push("smol");
    }
    list
}
