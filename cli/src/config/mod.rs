//! The broker configuration file: YAML with the original MoaT-MQTT's keys, read into a
//! [`BrokerConfig`].
//!
//! ```yaml
//! listeners:
//!   default: {type: tcp, max-connections: 50000}   # a template for the others
//!   my-tcp-1: {bind: 127.0.0.1:1883}
//! timeout-disconnect-delay: 2
//! sys_interval: 20
//! ```
//!
//! - Every key may be spelt with `-` or `_` (`max-connections`, `max_connections`); giving both
//!   spellings of one key in the same mapping is an error. mosquitto's names
//!   `max_inflight_messages` and `max_queued_messages` are accepted too.
//! - `listeners.default` is a template: the other listeners inherit its keys. When it is the only
//!   listener it listens itself (on `0.0.0.0:1883` unless it has a `bind`); with others it only
//!   supplies defaults. No `listeners` at all means one listener on `0.0.0.0:1883`.
//! - A key whose value is empty (`key:` or `key: ~`) counts as not given.
//! - Unknown keys are not errors: each one is logged with `log::warn!` and returned in
//!   [`LoadedConfig::warnings`], naming its full path (`listeners.my-tcp-1.bnid`).
//! - A bad value is an error naming the key path, the place in the file and what was expected.
//! - `auth` and `topic-check` choose the authentication and authorisation plugins
//!   ([`SecurityConfig`]); `plugins` and `broker` are accepted silently. WebSocket (`type: ws`) and TLS (`ssl: on`) listeners are
//!   rejected with a clear error until the transports exist.
//!
//! The client's keys (for `moat mqtt pub` and `sub`) are read from the same kind of file by
//! [`load_client_file`]: at the top level or under `client:`, into a `ClientOptions`.
//!
//! The YAML crate is `serde-saphyr`: pure Rust with a panic-free parser, and errors that carry
//! line and column. `serde_yaml` is deprecated and unmaintained, and `serde_norway`, its
//! maintained fork, still builds on `unsafe-libyaml` (libyaml translated to unsafe Rust).
//! The file is first read into a tree of nodes that remember their position, then walked
//! here, which is what lets keys be normalised and named in messages.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use moat_mqtt_core::broker::BrokerConfig;

mod broker;
mod client;
mod node;
mod security;
mod walk;

pub use security::{AclFileHandle, PasswordFileHandle, Security, SecurityConfig};

pub use client::{LoadedClientConfig, load_client_file, load_client_str, load_mapping_file, load_mapping_str};

#[cfg(test)]
mod tests;

/// A configuration that was read, and what was ignored in it.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The broker's configuration: the file's settings over the defaults.
    pub broker: BrokerConfig,
    /// The `auth` and `topic-check` sections; [`SecurityConfig::build`] reads their files.
    pub security: SecurityConfig,
    /// One line per ignored (unknown) key, already logged with `log::warn!`; in file order.
    pub warnings: Vec<String>,
}

/// Where in a configuration something was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file's name as given (or the origin passed to [`load_str`]).
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
}

impl fmt::Display for Place {
    /// `file:line:column`, or just `file` when the position is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 { f.write_str(&self.file) } else { write!(f, "{}:{}:{}", self.file, self.line, self.column) }
    }
}

/// Why a configuration could not be loaded. Each message names the file, and where it can, the
/// line, column and key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read configuration file {}: {reason}", path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// What the operating system said (shown in the message, so not a `source()`).
        reason: io::Error,
    },
    /// The text is not valid YAML.
    #[error("{at}: invalid YAML: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Place,
        /// The parser's message.
        message: String,
    },
    /// A key has a value of the wrong kind, or out of range, or a needed key is missing.
    #[error("{at}: \"{key}\": {message}")]
    Value {
        /// Where the value (or the mapping missing a key) is.
        at: Place,
        /// The full key path, e.g. `listeners.my-tcp-1.max-connections`.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A listener's settings cannot be served as written (e.g. `ssl: on` without `certfile`).
    #[error("{at}: listener {listener}: {message}")]
    Unsupported {
        /// Where the setting that asks for it is written.
        at: Place,
        /// The listener's name.
        listener: String,
        /// What is not available, and why.
        message: String,
    },
}

/// Reads the broker configuration from the YAML file at `path`.
///
/// Unknown keys are logged with `log::warn!` and returned in [`LoadedConfig::warnings`].
///
/// # Errors
/// [`ConfigError::Read`] if the file cannot be read; otherwise as [`load_str`].
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read { path: path.to_owned(), reason })?;
    load_str(&text, &path.display().to_string())
}

/// Reads the broker configuration from YAML `text`; `origin` names it in messages (a file name,
/// or something like `<command line>`). An empty text, or one of only comments, gives the
/// defaults.
///
/// Unknown keys are logged with `log::warn!` and returned in [`LoadedConfig::warnings`].
///
/// # Errors
/// [`ConfigError::Syntax`] for text that is not YAML, [`ConfigError::Value`] for a bad or
/// missing value, [`ConfigError::Unsupported`] for a TLS listener without its certificate and key.
pub fn load_str(text: &str, origin: &str) -> Result<LoadedConfig, ConfigError> {
    let root = node::parse(text).map_err(|err| syntax_error(&err, origin))?;
    let mut walker = walk::Walker::new(origin);
    let (broker, security) = broker::read(&mut walker, &root)?;
    Ok(LoadedConfig { broker, security, warnings: walker.into_warnings() })
}

/// Turns the parser's error into [`ConfigError::Syntax`], moving its position to the front.
fn syntax_error(err: &serde_saphyr::Error, origin: &str) -> ConfigError {
    let (line, column) = err.location().map_or((0, 0), |loc| (loc.line(), loc.column()));
    let mut message = err.to_string();
    // The plain rendering ends in " at line L, column C"; the place is shown in front instead.
    let suffix = format!(" at line {line}, column {column}");
    if line != 0 && message.ends_with(&suffix) {
        message.truncate(message.len() - suffix.len());
    }
    // A hint meant for programmers using the library, not for the file's author.
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    ConfigError::Syntax { at: Place { file: origin.to_owned(), line, column }, message }
}
