//! The broker file's keys and what they set in a [`BrokerConfig`].

use std::path::PathBuf;
use std::time::Duration;

use moat_mqtt_core::broker::{
    BrokerConfig, DEFAULT_BACKLOG, DEFAULT_HANDSHAKE_TIMEOUT, ListenerConfig, ListenerTls, ListenerWebSocket,
    OnCorrupt, PersistenceConfig, SyncMode,
};
use moat_mqtt_core::codec::MAX_REMAINING_LENGTH;

use super::ConfigError;
use super::node::{Node, Pos, Value};
use super::security::SecurityConfig;
use super::walk::{Entry, Schema, Walker, join};

/// The top-level keys (the client's loader skips them).
pub(super) const TOP: Schema = &[
    ("listeners", &[]),
    ("timeout-disconnect-delay", &[]),
    ("sys-interval", &[]),
    ("max-inflight", &["max-inflight-messages"]),
    ("max-queued-messages", &[]),
    ("max-packet-size", &[]),
    ("auth", &[]),
    ("topic-check", &[]),
    ("plugins", &[]),
    ("broker", &[]),
    ("persistence", &[]),
    // The client keys of `moat mqtt pub|sub`, which may share the file.
    ("client", &[]),
];

/// The keys of one listener (and of the `default` template).
const LISTENER: Schema = &[
    ("type", &[]),
    ("bind", &[]),
    ("max-connections", &[]),
    ("ssl", &[]),
    ("cafile", &[]),
    ("capath", &[]),
    ("cadata", &[]),
    ("certfile", &[]),
    ("keyfile", &[]),
    ("require-certificate", &[]),
    ("path", &[]),
    ("handshake-timeout", &[]),
    ("backlog", &[]),
];

/// The keys of `persistence`.
const PERSISTENCE: Schema = &[("enabled", &[]), ("path", &[]), ("sync", &[]), ("interval", &[]), ("on-corrupt", &[])];

/// The name of the listener that is a template for the others.
const TEMPLATE: &str = "default";

/// The largest `backlog` taken (the OS caps it lower anyway: 4,096 by default on Linux).
const MAX_BACKLOG: u32 = 65_535;

/// Where the broker listens when nothing says otherwise.
const DEFAULT_BIND: &str = "0.0.0.0:1883";

/// The largest MQTT packet there can be: a 5-byte fixed header and the largest remaining length.
const MAX_PACKET: usize = MAX_REMAINING_LENGTH + 5;

/// Reads the whole file's tree into a configuration.
pub(super) fn read(w: &mut Walker, root: &Node) -> Result<(BrokerConfig, SecurityConfig), ConfigError> {
    let mut config = BrokerConfig::default();
    let mut security = SecurityConfig::default();
    for Entry { name, key, node } in w.mapping("", root, TOP)? {
        let path = key.text.as_str();
        match name {
            "listeners" => config.listeners = listeners(w, path, node)?,
            "timeout-disconnect-delay" => {
                let secs = w.seconds(path, node)?;
                if secs == 0.0 {
                    return Err(w.expected(path, node, "a number of seconds greater than 0"));
                }
                config.link.connect_timeout = Duration::from_secs_f64(secs);
            }
            "sys-interval" => {
                let secs = w.seconds(path, node)?;
                config.router.sys_interval = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
            }
            // Packet identifiers limit a client's window to 65535 messages.
            "max-inflight" => config.router.max_inflight = w.whole_in(path, node, 1, usize::from(u16::MAX))?,
            "max-queued-messages" => config.router.max_queued_messages = w.whole_in(path, node, 1, usize::MAX)?,
            "max-packet-size" => config.link.max_packet_size = w.whole_in(path, node, 2, MAX_PACKET)?,
            "auth" => super::security::auth(w, path, node, &mut security)?,
            "topic-check" => super::security::topic_check(w, path, node, &mut security)?,
            "persistence" => config.persistence = persistence(w, path, node)?,
            // Read by plugins and other parts of the original; nothing to check here.
            _ => {}
        }
    }
    Ok((config, security))
}

/// The `persistence` section. Present means on, unless `enabled: false`; `sync` defaults to
/// `always`, `interval` to 1 second, `on-corrupt` to `fail`.
fn persistence(w: &mut Walker, path: &str, node: &Node) -> Result<Option<PersistenceConfig>, ConfigError> {
    let mut config = PersistenceConfig::default();
    let mut enabled = true;
    let mut sync = None;
    let mut interval = None;
    for Entry { name, key, node } in w.mapping(path, node, PERSISTENCE)? {
        let path = join(path, &key.text);
        let path = path.as_str();
        match name {
            "enabled" => enabled = w.boolean(path, node)?,
            "path" => {
                let text = w.text(path, node)?;
                if text.trim().is_empty() {
                    return Err(w.expected(path, node, "a directory for the store"));
                }
                config.path = text.into();
            }
            "sync" => {
                sync = Some(match w.text(path, node)?.trim().to_ascii_lowercase().as_str() {
                    "always" => "always",
                    "interval" => "interval",
                    "never" => "never",
                    _ => return Err(w.expected(path, node, "always, interval or never")),
                });
            }
            "interval" => {
                let secs = w.seconds(path, node)?;
                if secs <= 0.0 {
                    return Err(w.expected(path, node, "a number of seconds greater than 0"));
                }
                interval = Some(Duration::from_secs_f64(secs));
            }
            "on-corrupt" => {
                config.on_corrupt = match w.text(path, node)?.trim().to_ascii_lowercase().as_str() {
                    "fail" => OnCorrupt::Fail,
                    "fresh" => OnCorrupt::Fresh,
                    _ => return Err(w.expected(path, node, "fail or fresh")),
                };
            }
            _ => {}
        }
    }
    config.sync = match sync {
        Some("interval") => SyncMode::Interval(interval.unwrap_or(Duration::from_secs(1))),
        Some("never") => SyncMode::Never,
        _ => SyncMode::Always,
    };
    Ok(enabled.then_some(config))
}

/// A listener's transport, from `type`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `type: tcp`, the default.
    Tcp,
    /// `type: ws`.
    WebSocket,
}

/// What a listener's own keys (or the template's) say; `None` where they say nothing.
#[derive(Debug, Clone, Default)]
struct Settings {
    /// `type`.
    kind: Option<Kind>,
    /// `ssl` and where it is written.
    ssl: Option<(bool, Pos)>,
    /// `bind`, checked.
    bind: Option<String>,
    /// `max-connections`: `Some(None)` for "no limit".
    max_connections: Option<Option<usize>>,
    /// `certfile`.
    certfile: Option<PathBuf>,
    /// `keyfile`.
    keyfile: Option<PathBuf>,
    /// `cafile`.
    cafile: Option<PathBuf>,
    /// `capath`.
    capath: Option<PathBuf>,
    /// `cadata`.
    cadata: Option<String>,
    /// `require-certificate`.
    require_certificate: Option<bool>,
    /// `path` (WebSocket).
    path: Option<String>,
    /// `handshake-timeout` (TLS and WebSocket).
    handshake_timeout: Option<Duration>,
    /// `backlog`.
    backlog: Option<u32>,
}

impl Settings {
    /// These settings with the template's filling the gaps.
    fn over(self, template: &Settings) -> Settings {
        Settings {
            kind: self.kind.or(template.kind),
            ssl: self.ssl.or(template.ssl),
            bind: self.bind.or_else(|| template.bind.clone()),
            max_connections: self.max_connections.or(template.max_connections),
            certfile: self.certfile.or_else(|| template.certfile.clone()),
            keyfile: self.keyfile.or_else(|| template.keyfile.clone()),
            cafile: self.cafile.or_else(|| template.cafile.clone()),
            capath: self.capath.or_else(|| template.capath.clone()),
            cadata: self.cadata.or_else(|| template.cadata.clone()),
            require_certificate: self.require_certificate.or(template.require_certificate),
            path: self.path.or_else(|| template.path.clone()),
            handshake_timeout: self.handshake_timeout.or(template.handshake_timeout),
            backlog: self.backlog.or(template.backlog),
        }
    }
}

/// The `listeners` mapping: listener names to their settings.
fn listeners(w: &mut Walker, path: &str, node: &Node) -> Result<Vec<ListenerConfig>, ConfigError> {
    let mut template = Settings::default();
    let mut others = Vec::new();
    for (key, value) in w.pairs(path, node)? {
        let settings = listener(w, &join(path, &key.text), value)?;
        if key.text == TEMPLATE {
            template = settings;
        } else {
            others.push((key.text.clone(), value.pos, settings));
        }
    }
    if others.is_empty() {
        // The template alone listens, where it says or on the default address.
        others.push((TEMPLATE.to_owned(), node.pos, Settings::default()));
        if template.bind.is_none() {
            template.bind = Some(DEFAULT_BIND.to_owned());
        }
    }
    others
        .into_iter()
        .map(|(name, pos, own)| {
            let settings = own.over(&template);
            let bind = settings.bind.clone().ok_or_else(|| {
                w.error(
                    &join(&join(path, &name), "bind"),
                    pos,
                    format!("missing; expected host:port, such as {DEFAULT_BIND}"),
                )
            })?;
            let tls = match settings.ssl {
                Some((true, at)) => Some(tls(w, &name, at, &settings)?),
                _ => None,
            };
            let websocket = matches!(settings.kind, Some(Kind::WebSocket))
                .then(|| ListenerWebSocket { path: settings.path.clone() });
            Ok(ListenerConfig {
                name,
                bind,
                max_connections: settings.max_connections.flatten(),
                tls,
                websocket,
                handshake_timeout: settings.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
                backlog: settings.backlog.unwrap_or(DEFAULT_BACKLOG),
            })
        })
        .collect()
}

/// The TLS settings of a listener with `ssl: on` (written at `at`): certfile and keyfile are
/// required; the files are read when the broker binds.
fn tls(w: &Walker, listener: &str, at: Pos, settings: &Settings) -> Result<ListenerTls, ConfigError> {
    let (Some(certfile), Some(keyfile)) = (&settings.certfile, &settings.keyfile) else {
        return Err(ConfigError::Unsupported {
            at: w.place(at),
            listener: listener.to_owned(),
            message: "ssl: on needs certfile and keyfile (PEM files of the server's certificate chain and key)"
                .to_owned(),
        });
    };
    Ok(ListenerTls {
        certfile: certfile.clone(),
        keyfile: keyfile.clone(),
        cafile: settings.cafile.clone(),
        capath: settings.capath.clone(),
        cadata: settings.cadata.clone(),
        require_certificate: settings.require_certificate.unwrap_or(false),
    })
}

/// One listener's own keys.
fn listener(w: &mut Walker, path: &str, node: &Node) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    for Entry { name, key, node } in w.mapping(path, node, LISTENER)? {
        let path = join(path, &key.text);
        let path = path.as_str();
        match name {
            "type" => match w.text(path, node)?.trim().to_ascii_lowercase().as_str() {
                "tcp" => settings.kind = Some(Kind::Tcp),
                "ws" => settings.kind = Some(Kind::WebSocket),
                _ => return Err(w.expected(path, node, "\"tcp\" or \"ws\"")),
            },
            "ssl" => settings.ssl = Some((w.boolean(path, node)?, node.pos)),
            "bind" => settings.bind = Some(bind(w, path, node)?),
            "max-connections" => {
                // The original writes -1 for "no limit"; 0 means the same here.
                let n = w.whole(path, node)?;
                settings.max_connections = Some(if n <= 0 {
                    None
                } else {
                    Some(usize::try_from(n).map_err(|_| w.expected(path, node, "a smaller whole number"))?)
                });
            }
            "handshake-timeout" => {
                let secs = w.seconds(path, node)?;
                if secs <= 0.0 {
                    return Err(w.expected(path, node, "a number of seconds greater than 0"));
                }
                settings.handshake_timeout = Some(Duration::from_secs_f64(secs));
            }
            "backlog" => {
                let n = w.whole(path, node)?;
                settings.backlog = Some(
                    u32::try_from(n)
                        .ok()
                        .filter(|&n| (1..=MAX_BACKLOG).contains(&n))
                        .ok_or_else(|| w.expected(path, node, &format!("a whole number from 1 to {MAX_BACKLOG}")))?,
                );
            }
            "require-certificate" => settings.require_certificate = Some(w.boolean(path, node)?),
            "certfile" => settings.certfile = Some(w.text(path, node)?.into()),
            "keyfile" => settings.keyfile = Some(w.text(path, node)?.into()),
            "cafile" => settings.cafile = Some(w.text(path, node)?.into()),
            "capath" => settings.capath = Some(w.text(path, node)?.into()),
            "cadata" => settings.cadata = Some(w.text(path, node)?),
            "path" => {
                let text = w.text(path, node)?;
                if !text.starts_with('/') {
                    return Err(w.expected(path, node, "a request path starting with /, such as /mqtt"));
                }
                settings.path = Some(text);
            }
            _ => {}
        }
    }
    Ok(settings)
}

/// A `bind` address: `host:port`, with IPv6 hosts in brackets; an empty host means all IPv4
/// interfaces (`:1883` is `0.0.0.0:1883`).
fn bind(w: &Walker, path: &str, node: &Node) -> Result<String, ConfigError> {
    let bad =
        |why: &str| w.expected(path, node, &format!("host:port, such as 127.0.0.1:1883 or \"[::1]:1883\" ({why})"));
    let text = w.text(path, node).map_err(|_| {
        if matches!(node.value, Value::Seq(_)) {
            bad("IPv6 addresses must be quoted in YAML")
        } else {
            bad("not a string")
        }
    })?;
    let text = text.trim();
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("no port"));
    };
    if port.parse::<u16>().is_err() {
        return Err(bad("the port must be a number from 0 to 65535"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        if !inner.ends_with(']') || inner.len() < 2 {
            return Err(bad("unbalanced brackets"));
        }
    } else if host.contains(':') {
        return Err(bad("IPv6 addresses go in brackets"));
    } else if host.contains(char::is_whitespace) || host.contains(['[', ']']) {
        return Err(bad("not a host name or address"));
    }
    Ok(if host.is_empty() { format!("0.0.0.0:{port}") } else { text.to_owned() })
}
