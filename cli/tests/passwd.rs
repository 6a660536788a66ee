//! `moat mqtt passwd` as a user runs it, and its files used by `moat mqtt broker` and by a real
//! mosquitto; the broker re-reading its password file on SIGHUP.
//!
//! Needs `mosquitto` and `mosquitto-clients` (`apt-get install mosquitto mosquitto-clients`).
#![allow(missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

fn moat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A fresh, empty scratch directory.
fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("passwd-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn passwd(args: &[&str]) -> Output {
    moat().args(["mqtt", "passwd"]).args(args).stdin(Stdio::null()).output().expect("run moat")
}

fn passwd_ok(args: &[&str]) {
    let out = passwd(args);
    assert!(out.status.success(), "moat mqtt passwd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A broker process and the lines of its stderr; killed on drop.
struct Broker {
    port: u16,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Broker {
    /// `moat mqtt broker` with `auth` over `passwd`, anonymous clients refused.
    fn moat(passwd: &Path) -> Self {
        Self::moat_with(passwd, "")
    }

    /// [`moat`](Self::moat), with `more` appended to its configuration.
    fn moat_with(passwd: &Path, more: &str) -> Self {
        let dir = passwd.parent().expect("dir");
        let config = dir.join("broker.yaml");
        std::fs::write(
            &config,
            format!(
                "listeners:\n  default:\n    bind: 127.0.0.1:0\nauth:\n  allow-anonymous: false\n  password-file: {}\n{more}",
                passwd.display()
            ),
        )
        .expect("config");
        let mut child = moat()
            .args(["mqtt", "broker", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run moat mqtt broker");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut broker = Self { port: 0, child, lines };
        let line = broker.wait_line("listening on 127.0.0.1:");
        let at = line.find("127.0.0.1:").expect("address") + "127.0.0.1:".len();
        broker.port = line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("port");
        broker
    }

    /// A real mosquitto with `password_file passwd` and anonymous clients refused.
    fn mosquitto(passwd: &Path) -> Self {
        let dir = passwd.parent().expect("dir");
        // mosquitto started as root drops to its own user: let it read the files.
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::set_permissions(passwd, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n",
                passwd.display()
            ),
        )
        .expect("config");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is needed: apt-get install mosquitto");
        let (_tx, lines) = mpsc::channel();
        let broker = Self { port, child, lines };
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?} from the broker"),
            }
        }
    }

    /// `mosquitto_pub` as `user`/`password` (none: anonymous); Ok, or Err with its stderr.
    fn publish(&self, user: Option<(&str, &str)>) -> Result<(), String> {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", "t", "-m", "m", "-V", "mqttv311"]);
        if let Some((user, password)) = user {
            cmd.args(["-u", user, "-P", password]);
        }
        let out =
            cmd.stdin(Stdio::null()).output().expect("mosquitto_pub is needed: apt-get install mosquitto-clients");
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moat mqtt sub` as `user`: the first message on `topic` (a retained one) as it prints it
/// (`topic<TAB>message`), or why not.
fn first_message(port: u16, (user, password): (&str, &str), topic: &str) -> Result<String, String> {
    let out = moat()
        .args(["mqtt", "sub", "--url", &format!("mqtt://{user}:{password}@127.0.0.1:{port}"), "-t", topic, "-n", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("run moat mqtt sub");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `mosquitto_pub -r` as `user`, QoS 1.
fn publish_retained(port: u16, (user, password): (&str, &str), topic: &str, message: &str) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-u", user, "-P", password, "-q", "1", "-r"])
        .args(["-t", topic, "-m", message])
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_pub is needed: apt-get install mosquitto-clients");
    assert!(out.status.success(), "mosquitto_pub: {}", String::from_utf8_lossy(&out.stderr));
}

fn refused_bad_password(result: Result<(), String>) {
    let err = result.expect_err("should be refused");
    assert!(err.contains("bad user name or password"), "{err}");
}

fn refused_not_authorised(result: Result<(), String>) {
    let err = result.expect_err("should be refused");
    assert!(err.contains("not authorised"), "{err}");
}

#[test]
fn every_scheme_is_accepted_by_our_broker() {
    for scheme in ["argon2id", "sha512-pbkdf2", "sha512"] {
        let dir = scratch_dir(scheme);
        let file = dir.join("passwd");
        passwd_ok(&["-c", "-H", scheme, "-b", file.to_str().unwrap(), "alice", "s3cret"]);
        passwd_ok(&["-H", scheme, "-b", file.to_str().unwrap(), "bob", "other"]);
        let broker = Broker::moat(&file);
        broker.publish(Some(("alice", "s3cret"))).unwrap_or_else(|e| panic!("{scheme}: {e}"));
        broker.publish(Some(("bob", "other"))).unwrap_or_else(|e| panic!("{scheme}: {e}"));
        refused_bad_password(broker.publish(Some(("alice", "other"))));
        refused_bad_password(broker.publish(Some(("mallory", "s3cret"))));
        refused_not_authorised(broker.publish(None));
    }
}

#[test]
fn pbkdf2_files_are_accepted_by_mosquitto() {
    let dir = scratch_dir("mosquitto");
    let file = dir.join("passwd");
    passwd_ok(&["-c", "-H", "sha512-pbkdf2", "-b", file.to_str().unwrap(), "alice", "s3cret"]);
    passwd_ok(&["-H", "sha512-pbkdf2", "-b", file.to_str().unwrap(), "bob", "b0b"]);
    passwd_ok(&["-D", file.to_str().unwrap(), "bob"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("alice:$7$101$") && text.lines().count() == 1, "{text}");
    let mosquitto = Broker::mosquitto(&file);
    mosquitto.publish(Some(("alice", "s3cret"))).expect("mosquitto accepts our $7$ hash");
    assert!(mosquitto.publish(Some(("alice", "wrong"))).is_err());
    assert!(mosquitto.publish(Some(("bob", "b0b"))).is_err(), "bob was deleted");
}

#[test]
fn the_broker_rereads_its_password_file_on_sighup() {
    let dir = scratch_dir("sighup");
    let file = dir.join("passwd");
    let f = file.to_str().unwrap();
    passwd_ok(&["-c", "-H", "sha512-pbkdf2", "-b", f, "alice", "one"]);
    let mut broker = Broker::moat(&file);
    broker.publish(Some(("alice", "one"))).expect("alice");
    passwd_ok(&["-H", "sha512-pbkdf2", "-b", f, "alice", "two"]);
    passwd_ok(&["-H", "sha512-pbkdf2", "-b", f, "carol", "three"]);
    // Not re-read yet.
    refused_bad_password(broker.publish(Some(("carol", "three"))));
    let status = Command::new("kill").args(["-HUP", &broker.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    broker.wait_line("re-read: 2 users");
    broker.publish(Some(("carol", "three"))).expect("carol after SIGHUP");
    broker.publish(Some(("alice", "two"))).expect("alice's new password");
    refused_bad_password(broker.publish(Some(("alice", "one"))));
    // A broken file is refused and the one in use stays.
    std::fs::write(&file, "alice:plaintext\n").unwrap();
    let status = Command::new("kill").args(["-HUP", &broker.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    broker.wait_line("line 1: plaintext password for user alice");
    broker.publish(Some(("carol", "three"))).expect("the previous file still applies");
}

#[test]
fn the_broker_rereads_its_acl_file_on_sighup() {
    let dir = scratch_dir("acl-sighup");
    let file = dir.join("passwd");
    let f = file.to_str().unwrap();
    passwd_ok(&["-c", "-H", "sha512-pbkdf2", "-b", f, "alice", "one"]);
    let acl = dir.join("acl");
    std::fs::write(&acl, "user alice\ntopic readwrite a/#\n").unwrap();
    let more = format!("topic-check:\n  enabled: true\n  plugins: [topic_acl]\n  acl-file: {}\n", acl.display());
    let mut broker = Broker::moat_with(&file, &more);
    let alice = ("alice", "one");
    publish_retained(broker.port, alice, "a/x", "in a");
    assert_eq!(first_message(broker.port, alice, "a/x").as_deref(), Ok("a/x\tin a"));
    let refused = first_message(broker.port, alice, "b/x").expect_err("b/# is not granted yet");
    assert!(refused.contains("refused the subscription to \"b/x\""), "{refused}");
    std::fs::write(&acl, "user alice\ntopic readwrite a/#\ntopic readwrite b/#\n").unwrap();
    let status = Command::new("kill").args(["-HUP", &broker.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    broker.wait_line("re-read: 2 rules");
    publish_retained(broker.port, alice, "b/x", "in b");
    assert_eq!(first_message(broker.port, alice, "b/x").as_deref(), Ok("b/x\tin b"));
    // A broken file is refused and the one in use stays.
    std::fs::write(&acl, "user alice\ntopic readwrite a/#/b\n").unwrap();
    let status = Command::new("kill").args(["-HUP", &broker.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    broker.wait_line("line 2: \"a/#/b\" is not a topic filter");
    assert_eq!(first_message(broker.port, alice, "b/x").as_deref(), Ok("b/x\tin b"), "the previous file still applies");
}

#[test]
fn a_plaintext_password_file_stops_the_broker_from_starting() {
    let dir = scratch_dir("plain");
    let file = dir.join("passwd");
    std::fs::write(&file, "# users\nalice:secret\n").unwrap();
    let config = dir.join("broker.yaml");
    std::fs::write(&config, format!("auth:\n  password-file: {}\n", file.display())).unwrap();
    let out = moat().args(["mqtt", "broker", "-c"]).arg(&config).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "password-file {} line 2: plaintext password for user alice; hash it with `moat mqtt passwd`",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn passwd_refuses_what_it_cannot_do() {
    let dir = scratch_dir("errors");
    let file = dir.join("passwd");
    let f = file.to_str().unwrap();
    let err = |out: Output| {
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(err(passwd(&["-b", f, "a", "b"])).contains("does not exist; create it with -c"));
    assert!(err(passwd(&["-c", "-b", f, "a:b", "c"])).contains("holds ':'"));
    assert!(err(passwd(&["-c", "-b", "-H", "md5", f, "a", "c"])).contains("unknown hash \"md5\""));
    assert!(err(passwd(&["-c", f, "a"])).contains("cannot read the password from the terminal"));
    assert!(err(passwd(&["-c", "-b", f, "a"])).contains("-b needs the password"));
    passwd_ok(&["-c", "-b", f, "a", "b"]);
    assert!(err(passwd(&["-D", f, "zed"])).contains("user zed is not in"));
    // Comments and other users survive an update.
    std::fs::write(&file, format!("# keep me\n{}", std::fs::read_to_string(&file).unwrap())).unwrap();
    passwd_ok(&["-b", "-H", "sha512", f, "a", "new"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# keep me\na:$6$rounds=5000$"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
