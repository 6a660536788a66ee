//! A browser speaks MQTT over WebSocket to our broker: headless Chromium loads a page (served
//! here on localhost) that uses the MQTT.js bundle (npm package `mqtt`, in
//! `tests/browser/node_modules`) to connect to a `type: ws` listener, subscribe, publish and
//! receive its own message back. The page reports the outcome by requesting `/result?...`
//! from the server that served it, so the test fails unless the round trip really happened.
//!
//! Needs `chromium` (apt-get install chromium) and npm (the bundle is installed with
//! `npm install` in tests/browser when missing); `.ci/run` installs both.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use moat_mqtt_core::broker::{BrokerConfig, ListenerConfig, ListenerWebSocket};
use moat_mqtt_tests::{Rt, TestBroker};

/// How long the page may take to report, Chromium's start included.
const PAGE_TIMEOUT: Duration = Duration::from_secs(90);

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The MQTT.js bundle, installed with npm if it is not there yet.
fn mqtt_bundle() -> Vec<u8> {
    let dir = browser_dir();
    let bundle = dir.join("node_modules/mqtt/dist/mqtt.min.js");
    if !bundle.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "npm cannot be run ({e}); install it (apt-get install npm), then npm install in {}",
                    dir.display()
                )
            });
        assert!(status.success(), "npm install in {} failed: {status}", dir.display());
    }
    std::fs::read(&bundle).unwrap_or_else(|e| panic!("cannot read {}: {e}", bundle.display()))
}

/// What the page reported: `outcome` (`ROUNDTRIP` or `ERROR`) and `detail`.
type Report = BTreeMap<String, String>;

/// Decodes a query string's `%XX` and `+`.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves the page and the bundle on 127.0.0.1; the page's `/result` request comes out of
/// the returned channel.
fn serve_page(bundle: Vec<u8>) -> (u16, mpsc::Receiver<Report>) {
    let page = std::fs::read(browser_dir().join("index.html")).expect("tests/browser/index.html");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (page, bundle, tx) = (page.clone(), bundle.clone(), tx.clone());
            std::thread::spawn(move || answer(stream, &page, &bundle, &tx));
        }
    });
    (port, rx)
}

fn answer(mut stream: TcpStream, page: &[u8], bundle: &[u8], results: &mpsc::Sender<Report>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, kind, body): (&str, &str, &[u8]) = match path {
        "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", page),
        "/mqtt.min.js" => ("200 OK", "application/javascript", bundle),
        "/result" => {
            let report: Report = query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (unescape(k), unescape(v)))
                .collect();
            let _ = results.send(report);
            ("200 OK", "text/plain", b"thanks")
        }
        _ => ("404 Not Found", "text/plain", b"not here"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
}

#[test]
fn mqtt_js_in_headless_chromium_round_trips_over_websocket_on_both_runtimes() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is needed for this test: apt-get install chromium chromium-driver"
    );
    let (http_port, results) = serve_page(mqtt_bundle());
    for rt in Rt::ALL {
        let listeners = vec![ListenerConfig {
            name: "web".into(),
            bind: "127.0.0.1:0".into(),
            websocket: Some(ListenerWebSocket { path: Some("/mqtt".into()) }),
            ..ListenerConfig::default()
        }];
        let broker = TestBroker::start_listeners(rt, BrokerConfig { listeners, ..BrokerConfig::default() });
        let ws = broker.addr_of("web");
        let page = format!("http://localhost:{http_port}/index.html?broker=ws://127.0.0.1:{}/mqtt", ws.port());
        let profile = std::env::temp_dir().join(format!("moat-chromium-{}-{rt:?}", std::process::id()));
        let log = std::env::temp_dir().join(format!("moat-chromium-{}-{rt:?}.log", std::process::id()));
        let mut chromium = Command::new(CHROMIUM)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--no-first-run", "--disable-extensions", "--disable-dev-shm-usage"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(&page)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("chromium log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        let report = results.recv_timeout(PAGE_TIMEOUT);
        let _ = chromium.kill();
        let _ = chromium.wait();
        let _ = std::fs::remove_dir_all(&profile);
        let chromium_log = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let report = report.unwrap_or_else(|_| {
            panic!("{rt:?}: the page reported nothing within {PAGE_TIMEOUT:?} ({page}); chromium said:\n{chromium_log}")
        });
        assert_eq!(report.get("outcome").map(String::as_str), Some("ROUNDTRIP"), "{rt:?}: {report:?}");
        assert!(report.get("detail").is_some_and(|d| d.starts_with("hello from the browser ")), "{rt:?}: {report:?}");
        let stats = broker.stats();
        assert!(
            stats.publish_received >= 1 && stats.publish_sent >= 1,
            "{rt:?}: the broker routed no message: {stats:?}"
        );
        broker.stop();
    }
}
