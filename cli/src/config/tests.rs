//! Tests of the configuration loader.

use std::time::Duration;

use moat_mqtt_core::broker::{BrokerConfig, ListenerConfig, ListenerTls, ListenerWebSocket};

use super::{ConfigError, LoadedConfig, load_file, load_str};

/// The example from the design notes (MOAT-MQTT.md), as written.
const SEED: &str = r"
listeners:
  default: {type: tcp, max-connections: 50000}   # template for the others
  my-tcp-1: {bind: 127.0.0.1:1883}
  my-tcp-ssl-1: {bind: 127.0.0.1:8885, ssl: on, cafile: ..., certfile: ..., keyfile: ...}
  my-ws-1: {bind: 0.0.0.0:8080, type: ws}
timeout-disconnect-delay: 2
sys_interval: 20
auth:
  plugins: [auth_anonymous, auth_file]
  allow-anonymous: true
  password-file: /some/passwd_file
topic-check:
  enabled: true
  plugins: [topic_acl]
  acl:
    username1: ['repositories/+/master', 'calendar/#']
    anonymous: []
";

/// Loads `text`, which must succeed.
fn load(text: &str) -> LoadedConfig {
    load_str(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// Loads `text`, which must fail; returns the message.
fn fail(text: &str) -> String {
    match load_str(text, "test.yaml") {
        Ok(loaded) => panic!("loaded: {:?}", loaded.broker),
        Err(e) => e.to_string(),
    }
}

/// A listener as expected.
fn listener(name: &str, bind: &str, max_connections: Option<usize>) -> ListenerConfig {
    ListenerConfig { name: name.to_owned(), bind: bind.to_owned(), max_connections, ..ListenerConfig::default() }
}

/// Asserts that two configurations agree in every field.
fn assert_same(a: &BrokerConfig, b: &BrokerConfig) {
    assert_eq!(a.listeners, b.listeners);
    assert_eq!(a.link.max_packet_size, b.link.max_packet_size);
    assert_eq!(a.link.connect_timeout, b.link.connect_timeout);
    assert_eq!(a.link.max_level, b.link.max_level);
    assert_eq!(a.router.max_inflight, b.router.max_inflight);
    assert_eq!(a.router.max_queued_messages, b.router.max_queued_messages);
    assert_eq!(a.router.sys_interval, b.router.sys_interval);
    assert_eq!(a.router.version, b.router.version);
    assert_eq!(a.router.client_id_seed, b.router.client_id_seed);
}

#[test]
fn seed_with_tls_and_ws_listeners_loads_as_written() {
    let loaded = load(SEED);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let tls = ListenerTls {
        certfile: "...".into(),
        keyfile: "...".into(),
        cafile: Some("...".into()),
        ..ListenerTls::default()
    };
    assert_eq!(
        loaded.broker.listeners,
        [
            listener("my-tcp-1", "127.0.0.1:1883", Some(50000)),
            ListenerConfig { tls: Some(tls), ..listener("my-tcp-ssl-1", "127.0.0.1:8885", Some(50000)) },
            ListenerConfig {
                websocket: Some(ListenerWebSocket::default()),
                ..listener("my-ws-1", "0.0.0.0:8080", Some(50000))
            },
        ]
    );
}

#[test]
fn tls_listener_settings() {
    let b = load(
        "listeners:\n  default: {ssl: on, certfile: /c.pem, keyfile: /k.pem, capath: /ca, require-certificate: yes}\n  a: {bind: ':1', cadata: PEM}\n  b: {bind: ':2', type: ws, path: /mqtt, require-certificate: no}\n  c: {bind: ':3', ssl: off}\n",
    )
    .broker;
    let tls = ListenerTls {
        certfile: "/c.pem".into(),
        keyfile: "/k.pem".into(),
        capath: Some("/ca".into()),
        require_certificate: true,
        ..ListenerTls::default()
    };
    assert_eq!(b.listeners[0].tls, Some(ListenerTls { cadata: Some("PEM".into()), ..tls.clone() }));
    assert_eq!(b.listeners[0].websocket, None);
    assert_eq!(b.listeners[1].tls, Some(ListenerTls { require_certificate: false, ..tls }));
    assert_eq!(b.listeners[1].websocket, Some(ListenerWebSocket { path: Some("/mqtt".into()) }));
    assert_eq!(b.listeners[2], listener("c", "0.0.0.0:3", None));

    // ssl: on without the server's certificate and key is an error where ssl is written.
    let msg = fail("listeners:\n  a: {bind: ':1', ssl: on, certfile: /c.pem}\n");
    assert!(msg.starts_with("test.yaml:2:24: listener a: ssl: on needs certfile and keyfile"), "{msg}");
    let msg = fail("listeners:\n  a: {bind: ':1', type: ws, path: mqtt}\n");
    assert!(msg.contains("\"listeners.a.path\": expected a request path starting with /"), "{msg}");

    // handshake-timeout: per listener, from the template, else 10 s.
    let b = load(
        "listeners:\n  default: {handshake-timeout: 2.5}\n  a: {bind: ':1'}\n  b: {bind: ':2', handshake-timeout: 1}\n",
    )
    .broker;
    assert_eq!(b.listeners[0].handshake_timeout, Duration::from_millis(2500));
    assert_eq!(b.listeners[1].handshake_timeout, Duration::from_secs(1));
    assert_eq!(load("listeners:\n  a: {bind: ':1'}\n").broker.listeners[0].handshake_timeout, Duration::from_secs(10));
    let msg = fail("listeners:\n  a: {bind: ':1', handshake-timeout: 0}\n");
    assert!(msg.contains("expected a number of seconds greater than 0"), "{msg}");

    // backlog: per listener, from the template, else 1,024; 1 to 65,535.
    let b = load("listeners:\n  default: {backlog: 300}\n  a: {bind: ':1'}\n  b: {bind: ':2', backlog: 5000}\n").broker;
    assert_eq!((b.listeners[0].backlog, b.listeners[1].backlog), (300, 5000));
    assert_eq!(load("listeners:\n  a: {bind: ':1'}\n").broker.listeners[0].backlog, 1024);
    for bad in ["0", "-1", "70000"] {
        let msg = fail(&format!("listeners:\n  a: {{bind: ':1', backlog: {bad}}}\n"));
        assert!(msg.contains("\"listeners.a.backlog\": expected a whole number from 1 to 65535"), "{bad}: {msg}");
    }
}

#[test]
fn seed_without_tls_and_ws_loads_as_written() {
    let text: String = SEED
        .lines()
        .filter(|l| !l.contains("my-tcp-ssl-1") && !l.contains("my-ws-1"))
        .map(|l| format!("{l}\n"))
        .collect();
    let loaded = load(&text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let b = &loaded.broker;
    assert_eq!(b.listeners, [listener("my-tcp-1", "127.0.0.1:1883", Some(50000))]);
    assert_eq!(b.link.connect_timeout, Duration::from_secs(2));
    assert_eq!(b.router.sys_interval, Some(Duration::from_secs(20)));
}

#[test]
fn empty_file_gives_the_defaults() {
    for text in ["", "\n", "# nothing here\n", "---\n", "listeners:\n"] {
        let loaded = load(text);
        assert!(loaded.warnings.is_empty());
        assert_same(&loaded.broker, &BrokerConfig::default());
        assert_eq!(loaded.broker.listeners, [listener("default", "0.0.0.0:1883", None)]);
    }
}

#[test]
fn both_spellings_of_every_key() {
    let dashes = "
listeners:
  a: {bind: '127.0.0.1:1', max-connections: 7, require-certificate: off}
timeout-disconnect-delay: 3
sys-interval: 5
max-inflight: 9
max-queued-messages: 11
max-packet-size: 4096
auth: {allow-anonymous: true, password-file: /x}
topic-check: {enabled: on, acl-file: /y}
";
    let underscores = dashes.replace('-', "_");
    assert!(!underscores.contains('-'), "{underscores}");
    let mosquitto = dashes.replace("max-inflight", "max_inflight_messages");
    for text in [dashes, &underscores, &mosquitto] {
        let loaded = load(text);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let b = &loaded.broker;
        assert_eq!(b.listeners, [listener("a", "127.0.0.1:1", Some(7))]);
        assert_eq!(b.link.connect_timeout, Duration::from_secs(3));
        assert_eq!(b.router.sys_interval, Some(Duration::from_secs(5)));
        assert_eq!(b.router.max_inflight, 9);
        assert_eq!(b.router.max_queued_messages, 11);
        assert_eq!(b.link.max_packet_size, 4096);
    }
}

#[test]
fn both_spellings_at_once_is_an_error() {
    let msg = fail("listeners:\n  a: {bind: ':1', max-connections: 1, max_connections: 2}\n");
    assert_eq!(
        msg,
        "test.yaml:2:39: \"listeners.a.max-connections\": given twice, as \"max-connections\" and as \"max_connections\"; keep one"
    );
    let msg = fail("max_inflight: 1\nmax-inflight-messages: 2\n");
    assert!(msg.contains("\"max-inflight\": given twice"), "{msg}");
}

#[test]
fn unknown_keys_are_warned_about_and_returned() {
    let loaded = load(
        "listeners:\n  my-tcp-1:\n    bind: 127.0.0.1:1883\n    bnid: 1.2.3.4:5\nfoo: 1\nauth: {plugins: [], colour: red}\nplugins: {anything: goes}\nbroker: {anything: goes}\n",
    );
    assert_eq!(
        loaded.warnings,
        [
            "test.yaml:4:5: unknown configuration key \"listeners.my-tcp-1.bnid\", ignored",
            "test.yaml:5:1: unknown configuration key \"foo\", ignored",
            "test.yaml:6:21: unknown configuration key \"auth.colour\", ignored",
        ]
    );
    assert_eq!(loaded.broker.listeners, [listener("my-tcp-1", "127.0.0.1:1883", None)]);
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            "listeners:\n  my-tcp-1: {bind: 127.0.0.1:1883, max-connections: lots}\n",
            "test.yaml:2:53: \"listeners.my-tcp-1.max-connections\": expected a whole number, got \"lots\"",
        ),
        (
            "listeners:\n  a: {bind: localhost}\n",
            "\"listeners.a.bind\": expected host:port, such as 127.0.0.1:1883 or \"[::1]:1883\" (no port), got \"localhost\"",
        ),
        ("listeners:\n  a: {bind: 'h:65536'}\n", "\"listeners.a.bind\": expected host:port"),
        ("listeners:\n  a: {bind: 'h:x'}\n", "(the port must be a number from 0 to 65535)"),
        ("listeners:\n  a: {bind: '::1:1883'}\n", "(IPv6 addresses go in brackets)"),
        ("listeners:\n  a: {bind: [::]:1883}\n", "test.yaml:2:"),
        ("listeners:\n  a:\n    bind: [1]\n", "(IPv6 addresses must be quoted in YAML)"),
        ("listeners:\n  a: {bind: ':1', type: udp}\n", "\"listeners.a.type\": expected \"tcp\" or \"ws\", got \"udp\""),
        ("listeners:\n  a: {bind: ':1', ssl: maybe}\n", "\"listeners.a.ssl\": expected on or off"),
        ("listeners:\n  a: {max-connections: 3}\n", "test.yaml:2:6: \"listeners.a.bind\": missing; expected host:port"),
        ("listeners: 5\n", "\"listeners\": expected a mapping of keys to values, got 5"),
        ("listeners:\n  a: on\n", "\"listeners.a\": expected a mapping of keys to values, got \"on\""),
        ("- a\n", "\"(top level)\": expected a mapping of keys to values, got a list"),
        ("sys_interval: -1\n", "test.yaml:1:15: \"sys_interval\": expected a number of seconds (0 or more), got -1"),
        ("timeout-disconnect-delay: soon\n", "\"timeout-disconnect-delay\": expected a number of seconds"),
        ("timeout-disconnect-delay: 0\n", "expected a number of seconds greater than 0, got 0"),
        ("max-inflight: 0\n", "\"max-inflight\": expected a whole number from 1 to 65535, got 0"),
        ("max_inflight_messages: 70000\n", "\"max_inflight_messages\": expected a whole number from 1 to 65535"),
        ("max-queued-messages: -5\n", "\"max-queued-messages\": expected a whole number from 1 to"),
        ("max-packet-size: 1.5\n", "\"max-packet-size\": expected a whole number, got 1.5"),
        ("max-packet-size: 300000000\n", "expected a whole number from 2 to 268435460"),
        ("auth: [a]\n", "\"auth\": expected a mapping"),
        ("listeners:\n  a: {bind: ':1', certfile: [x]}\n", "\"listeners.a.certfile\": expected a string, got a list"),
        (
            "persistence:\n  sync: sometimes\n",
            "\"persistence.sync\": expected always, interval or never, got \"sometimes\"",
        ),
        ("persistence:\n  interval: 0\n", "\"persistence.interval\": expected a number of seconds greater than 0"),
        ("persistence:\n  on-corrupt: shrug\n", "\"persistence.on-corrupt\": expected fail or fresh"),
        ("persistence:\n  enabled: perhaps\n", "\"persistence.enabled\": expected on or off"),
        ("persistence: yes\n", "\"persistence\": expected a mapping"),
    ];
    for (text, expected) in cases {
        let msg = fail(text);
        assert!(msg.contains(expected), "for {text:?}:\n  got      {msg}\n  expected {expected}");
    }
}

#[test]
fn values_in_several_forms() {
    let b = load("timeout-disconnect-delay: 0.5\nsys_interval: '2.5'\nmax-inflight: '12'\nlisteners:\n  a: {bind: ':1884', ssl: off, max-connections: -1}\n  b: {bind: '[::]:1883', ssl: 'no', max-connections: 0}\n  c: {bind: 'broker.example:1', ssl: false}\n").broker;
    assert_eq!(b.link.connect_timeout, Duration::from_millis(500));
    assert_eq!(b.router.sys_interval, Some(Duration::from_millis(2500)));
    assert_eq!(b.router.max_inflight, 12);
    assert_eq!(
        b.listeners,
        [
            listener("a", "0.0.0.0:1884", None),
            listener("b", "[::]:1883", None),
            listener("c", "broker.example:1", None)
        ]
    );
    for (text, on) in
        [("on", true), ("Yes", true), ("true", true), ("1", true), ("off", false), ("NO", false), ("false", false)]
    {
        let msg =
            load_str(&format!("listeners:\n  a: {{bind: ':1', ssl: {text}}}\n"), "t").err().map(|e| e.to_string());
        assert_eq!(msg.is_some(), on, "ssl: {text} gave {msg:?}");
    }
}

#[test]
fn sys_interval_zero_turns_sys_off() {
    assert_eq!(load("sys_interval: 0\n").broker.router.sys_interval, None);
    assert_eq!(load("sys-interval: 0.0\n").broker.router.sys_interval, None);
}

#[test]
fn empty_values_count_as_not_given() {
    let b = load("sys_interval:\nmax-inflight: ~\nlisteners:\n  a:\n    bind: ':1'\n    max-connections:\n").broker;
    assert_same(&b, &BrokerConfig { listeners: vec![listener("a", "0.0.0.0:1", None)], ..BrokerConfig::default() });
}

#[test]
fn default_alone_listens() {
    let b = load("listeners:\n  default: {max-connections: 10}\n").broker;
    assert_eq!(b.listeners, [listener("default", "0.0.0.0:1883", Some(10))]);
    let b = load("listeners:\n  default: {bind: '127.0.0.1:1999'}\n").broker;
    assert_eq!(b.listeners, [listener("default", "127.0.0.1:1999", None)]);
    let b = load("listeners:\n  default:\n").broker;
    assert_eq!(b.listeners, [listener("default", "0.0.0.0:1883", None)]);
}

#[test]
fn default_is_a_template_when_others_exist() {
    let b = load(
        "listeners:\n  default: {max-connections: 10, bind: '127.0.0.1:1000'}\n  a: {bind: ':1'}\n  b: {max-connections: -1, bind: ':2'}\n  c: {}\n",
    )
    .broker;
    assert_eq!(
        b.listeners,
        [
            listener("a", "0.0.0.0:1", Some(10)),
            listener("b", "0.0.0.0:2", None),
            listener("c", "127.0.0.1:1000", Some(10))
        ]
    );
    // A template's bad value is reported at the template, even when overridden.
    let msg = fail("listeners:\n  default: {max-connections: x}\n  a: {bind: ':1', max-connections: 1}\n");
    assert!(msg.contains("\"listeners.default.max-connections\": expected a whole number"), "{msg}");
    // A template that asks for WebSocket makes every listener that inherits it one ...
    let b = load("listeners:\n  default: {type: ws}\n  a: {bind: ':1'}\n").broker;
    assert_eq!(b.listeners[0].websocket, Some(ListenerWebSocket::default()));
    // ... unless the listener says otherwise.
    let b = load("listeners:\n  default: {type: ws, ssl: on}\n  a: {bind: ':1', type: tcp, ssl: off}\n").broker;
    assert_eq!(b.listeners, [listener("a", "0.0.0.0:1", None)]);
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let msg = fail("listeners:\n  a: {bind: ':1'\nsys_interval: 3\n");
    assert!(msg.starts_with("test.yaml:3:"), "{msg}");
    assert!(msg.contains("invalid YAML"), "{msg}");
    let msg = fail("a: 1\na: 2\n");
    assert_eq!(msg, "test.yaml:2:1: invalid YAML: duplicate mapping key: a");
}

#[test]
fn files_are_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("moat-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.yaml");
    let err = load_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().starts_with(&format!("cannot read configuration file {}: ", missing.display())), "{err}");

    let file = dir.join("broker.yaml");
    std::fs::write(&file, "listeners:\n  a: {bind: ':1', max-connections: lots}\n").unwrap();
    let err = load_file(&file).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2:", file.display())), "{err}");

    std::fs::write(&file, "max-inflight: 5\n").unwrap();
    assert_eq!(load_file(&file).unwrap().broker.router.max_inflight, 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn security_sections_of_the_seed() {
    let text = SEED
        .replace("  my-tcp-ssl-1: {bind: 127.0.0.1:8885, ssl: on, cafile: ..., certfile: ..., keyfile: ...}\n", "")
        .replace("  my-ws-1: {bind: 0.0.0.0:8080, type: ws}\n", "");
    let security = load(&text).security;
    assert_eq!(security.authenticators, ["auth_anonymous", "auth_file"]);
    assert!(security.allow_anonymous);
    assert_eq!(security.password_file.as_ref().unwrap().0, std::path::Path::new("/some/passwd_file"));
    assert_eq!(security.authorizers, ["topic_acl"]);
    assert!(security.acl.is_some());
    // The password file is read when the broker starts, and named when it cannot be.
    let err = security.build().unwrap_err();
    assert!(err.starts_with("cannot read password-file /some/passwd_file: "), "{err}");
    assert!(err.ends_with("(auth.password-file, test.yaml:10:18)"), "{err}");
}

#[test]
fn security_defaults_and_mistakes() {
    let none = load("listeners: {default: {bind: 127.0.0.1:1883}}\n").security;
    assert!(none.authenticators.is_empty() && none.authorizers.is_empty());
    let anon = load("auth: {allow-anonymous: false}\n").security;
    assert_eq!(anon.authenticators, ["auth_anonymous"]);
    assert!(!anon.allow_anonymous);
    let both = load("auth: {password-file: /p}\n").security;
    assert_eq!(both.authenticators, ["auth_anonymous", "auth_file"]);
    let off = load("topic-check: {acl: {u: ['#']}}\n");
    assert!(off.security.authorizers.is_empty());
    assert!(off.warnings[0].contains("topic-check.enabled is off"), "{:?}", off.warnings);
    let unused = load("auth: {plugins: [auth_anonymous], password-file: /p}\n");
    assert!(unused.warnings[0].contains("password-file is not used"), "{:?}", unused.warnings);

    assert_eq!(
        fail("auth: {plugins: [auth_anonymous, auth_ldap]}\n"),
        "test.yaml:1:34: \"auth.plugins\": unknown plugin \"auth_ldap\"; this broker has auth_anonymous, auth_file"
    );
    assert!(fail("auth: {plugins: [auth_file]}\n").contains("lists auth_file, but auth.password-file is not set"));
    assert!(fail("topic-check: {enabled: true}\n").contains("topic_acl needs topic-check.acl or topic-check.acl-file"));
    assert_eq!(
        fail("topic-check:\n  enabled: true\n  acl:\n    bob: ['a/#/b']\n"),
        "test.yaml:4:11: \"topic-check.acl.bob\": \"a/#/b\" is not a topic filter: wildcard '#' must fill a whole level and be the last level; found level \"#\""
    );
    assert!(fail("topic-check: {enabled: true, acl: {bob: 3}}\n").contains("expected a list of topic filters"));
}

#[test]
fn security_files_are_read_and_checked() {
    let dir = std::env::temp_dir().join(format!("moat-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let passwd = dir.join("passwd");
    let acl = dir.join("acl");
    std::fs::write(&acl, "topic deny test/nosubscribe\ntopic readwrite #\n").unwrap();
    std::fs::write(&passwd, "# users\nalice:$7$101$ii1USBgtQHuWHktC$2+QDASCECko17qQC/7WMhSSvQqI28zX7+1LoSfDS2qJXzeFN7Ibcmn/e5eC84reaVunT9PJyocnsGNGUG4720g==\nbob:hunter2\n").unwrap();
    let text = format!(
        "auth: {{allow-anonymous: false, password-file: {}}}\ntopic-check: {{enabled: true, acl-file: {}}}\n",
        passwd.display(),
        acl.display()
    );
    let security = load(&text).security;
    let err = security.build().unwrap_err();
    assert!(
        err.starts_with(&format!(
            "password-file {} line 3: plaintext password for user bob; hash it with `moat mqtt passwd`",
            passwd.display()
        )),
        "{err}"
    );
    std::fs::write(&passwd, "alice:$7$101$ii1USBgtQHuWHktC$2+QDASCECko17qQC/7WMhSSvQqI28zX7+1LoSfDS2qJXzeFN7Ibcmn/e5eC84reaVunT9PJyocnsGNGUG4720g==\n").unwrap();
    let built = security.build().unwrap();
    assert_eq!(built.plugins.authenticators().len(), 2);
    assert_eq!(built.plugins.authorizers().len(), 1);
    let handle = built.password_file.unwrap();
    std::fs::write(&passwd, "carol:plain\n").unwrap();
    assert!(handle.reload().unwrap_err().contains("line 1: plaintext password for user carol"));
    std::fs::write(&passwd, "").unwrap();
    assert_eq!(handle.reload(), Ok(0));
    std::fs::write(&acl, "topic readwrite a/#/b\n").unwrap();
    assert!(security.build().unwrap_err().contains("line 1: \"a/#/b\" is not a topic filter"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn persistence_section() {
    use moat_mqtt_core::broker::{OnCorrupt, SyncMode};
    assert_eq!(load("").broker.persistence, None);
    let p = load("persistence:\n  enabled: true\n  path: /tmp/store\n").broker.persistence.unwrap();
    assert_eq!((p.path.to_str(), p.sync, p.on_corrupt), (Some("/tmp/store"), SyncMode::Always, OnCorrupt::Fail));
    let p = load("persistence:\n  path: s\n  sync: interval\n  interval: 2.5\n  on_corrupt: fresh\n")
        .broker
        .persistence
        .unwrap();
    assert_eq!((p.sync, p.on_corrupt), (SyncMode::Interval(std::time::Duration::from_millis(2500)), OnCorrupt::Fresh));
    let p = load("persistence:\n  sync: interval\n").broker.persistence.unwrap();
    assert_eq!(p.sync, SyncMode::Interval(std::time::Duration::from_secs(1)));
    assert_eq!(load("persistence:\n  sync: never\n").broker.persistence.unwrap().sync, SyncMode::Never);
    assert_eq!(load("persistence:\n  enabled: false\n  path: x\n").broker.persistence, None);
}
