//! The client's keys of a configuration file, for `moat mqtt pub` and `sub`: read into
//! [`ClientOptions`] with [`ClientOptions::set`].
//!
//! The client keys may stand at the top level of the file (as the original's `hbmqtt_pub -c`
//! reads them) or under a `client:` section (a file shared with the broker); the section wins
//! over the top level. The broker's top-level keys (`listeners`, `sys_interval`, ...) are
//! skipped silently, so one file can serve both; any other unknown key is a warning.

use std::path::Path;

use moat_mqtt_core::client::options::{ClientOptions, ConfigValue, OptionError};

use super::node::{self, Node, Pos, Value};
use super::walk::{Walker, join, normalise};
use super::{ConfigError, broker};

/// The name of the section that holds the client's keys.
const SECTION: &str = "client";

/// A client configuration that was read, and what was ignored in it.
#[derive(Debug, Clone)]
pub struct LoadedClientConfig {
    /// The file's settings over the defaults.
    pub options: ClientOptions,
    /// One line per ignored (unknown) key, already logged with `log::warn!`; in file order.
    pub warnings: Vec<String>,
    /// The keys the file set, spelt with `_` as written (`cleansession`, `keep_alive`), so a
    /// caller can tell a value the file chose from a default.
    pub keys: Vec<String>,
}

impl LoadedClientConfig {
    /// Whether the file set `key` (compared with `-` and `_` alike), under any of `aliases` too.
    #[must_use]
    pub fn has(&self, names: &[&str]) -> bool {
        self.keys.iter().any(|k| names.iter().any(|n| n.replace('-', "_") == *k))
    }
}

/// Reads the client's options from the YAML file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] if the file cannot be read; otherwise as [`load_client_str`].
pub fn load_client_file(path: &Path) -> Result<LoadedClientConfig, ConfigError> {
    let text = read(path)?;
    load_client_str(&text, &path.display().to_string())
}

/// Reads the client's options from YAML `text`; `origin` names it in messages.
///
/// # Errors
/// [`ConfigError::Syntax`] for text that is not YAML, [`ConfigError::Value`] for a bad value
/// (naming its key path and place).
pub fn load_client_str(text: &str, origin: &str) -> Result<LoadedClientConfig, ConfigError> {
    let root = node::parse(text).map_err(|err| super::syntax_error(&err, origin))?;
    let mut w = Walker::new(origin);
    let mut options = ClientOptions::default();
    let mut keys = Vec::new();
    let mut section = None;
    for (key, value) in w.pairs("", &root)? {
        let normal = normalise(&key.text);
        if normal == SECTION {
            section = Some(value);
        } else if !broker::TOP.iter().any(|(name, aliases)| *name == normal || aliases.contains(&normal.as_str())) {
            apply(&mut w, &mut options, &mut keys, "", &key.text, key.pos, value)?;
        }
    }
    if let Some(section) = section {
        for (key, value) in w.pairs(SECTION, section)? {
            apply(&mut w, &mut options, &mut keys, SECTION, &key.text, key.pos, value)?;
        }
    }
    Ok(LoadedClientConfig { options, warnings: w.into_warnings(), keys })
}

/// Reads a YAML (or JSON) file that holds one mapping, such as the extra HTTP headers of
/// `--extra-headers FILE` (`Name: value` lines are such a mapping), as a [`ConfigValue`].
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Syntax`], or [`ConfigError::Value`] if it is not a
/// mapping.
pub fn load_mapping_file(path: &Path) -> Result<ConfigValue, ConfigError> {
    let text = read(path)?;
    load_mapping_str(&text, &path.display().to_string())
}

/// [`load_mapping_file`] on `text` that came from `origin`.
///
/// # Errors
/// As [`load_mapping_file`], without the read.
pub fn load_mapping_str(text: &str, origin: &str) -> Result<ConfigValue, ConfigError> {
    let root = node::parse(text).map_err(|err| super::syntax_error(&err, origin))?;
    let w = Walker::new(origin);
    w.pairs("", &root)?;
    convert(&w, "(top level)", &root)
}

/// The text of the file at `path`.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|reason| ConfigError::Read { path: path.to_owned(), reason })
}

/// Applies one key (at the top level or in the section `prefix`) to `options`.
fn apply(
    w: &mut Walker,
    options: &mut ClientOptions,
    keys: &mut Vec<String>,
    prefix: &str,
    key: &str,
    pos: Pos,
    node: &Node,
) -> Result<(), ConfigError> {
    let path = join(prefix, key);
    let value = convert(w, &path, node)?;
    match options.set(key, value) {
        Ok(()) => {
            keys.push(key.replace('-', "_"));
            Ok(())
        }
        Err(OptionError::UnknownKey { key: unknown }) => {
            let full = join(prefix, &unknown);
            let at = find(node, &unknown, pos);
            if unknown == key {
                w.warn(at, &format!("unknown configuration key \"{full}\", ignored"));
            } else {
                w.warn(at, &format!("unknown configuration key \"{full}\": \"{path}\" ignored"));
            }
            Ok(())
        }
        Err(err) => {
            let (sub, message) = match err {
                OptionError::Invalid { key, expected, got } => (key, format!("expected {expected}, got {got}")),
                OptionError::Url { key, source } => (key, source.to_string()),
                OptionError::Topic { key, source } => (key, source.to_string()),
                OptionError::UnknownKey { key } => (key, "unknown key".to_owned()),
            };
            Err(w.error(&join(prefix, &sub), find(node, &sub, pos), message))
        }
    }
}

/// Where the key `path` (relative to the top-level key whose value is `node`, e.g.
/// `will.qos`) is written, as near as the tree says; `fallback` when it cannot be found.
fn find(node: &Node, path: &str, fallback: Pos) -> Pos {
    let mut at = fallback;
    let mut current = node;
    // The first part is the top-level key itself.
    for part in path.split('.').skip(1) {
        let Value::Map(pairs) = &current.value else { break };
        let Some((key, value)) = pairs.iter().find(|(k, _)| normalise(&k.text) == normalise(part)) else {
            break;
        };
        at = key.pos;
        current = value;
    }
    at
}

/// The tree below `node` as a [`ConfigValue`].
fn convert(w: &Walker, path: &str, node: &Node) -> Result<ConfigValue, ConfigError> {
    Ok(match &node.value {
        Value::Null => ConfigValue::Null,
        Value::Bool(b) => ConfigValue::Bool(*b),
        Value::Int(i) => {
            ConfigValue::Int(i64::try_from(*i).map_err(|_| w.expected(path, node, "a smaller whole number"))?)
        }
        Value::Float(f) => ConfigValue::Float(*f),
        Value::Str(s) => ConfigValue::Str(s.clone()),
        Value::Seq(items) => ConfigValue::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(w, &format!("{path}[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(pairs) => ConfigValue::Map(
            pairs
                .iter()
                .map(|(k, v)| Ok((k.text.clone(), convert(w, &join(path, &k.text), v)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use moat_mqtt_core::client::options::ConfigValue;
    use moat_mqtt_core::codec::QoS;

    use super::{load_client_str, load_mapping_str};

    #[test]
    fn top_level_keys_and_client_section() {
        let loaded = load_client_str(
            "uri: mqtt://a:1884\nkeep-alive: 30\nlisteners: {default: {bind: ':1883'}}\nclient:\n  keep_alive: 5\n  default_qos: 1\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(loaded.options.url.host, "a");
        assert_eq!(loaded.options.url.port, 1884);
        assert_eq!(loaded.options.keep_alive, Duration::from_secs(5), "the section wins");
        assert_eq!(loaded.options.default_qos, QoS::AtLeastOnce);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert!(loaded.has(&["keep-alive"]));
        assert!(!loaded.has(&["cleansession", "clean_session"]));
    }

    #[test]
    fn unknown_keys_are_warnings_with_their_place() {
        let loaded = load_client_str("kepe_alive: 3\nwill: {topic: a, mesage: b}\n", "c.yaml").unwrap();
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].starts_with("c.yaml:1:1: unknown configuration key \"kepe_alive\""));
        assert!(loaded.warnings[1].contains("\"will.mesage\""), "{}", loaded.warnings[1]);
        assert!(loaded.warnings[1].starts_with("c.yaml:2:"), "{}", loaded.warnings[1]);
    }

    #[test]
    fn bad_values_name_key_and_place() {
        let err = load_client_str("client:\n  will:\n    topic: a\n    qos: 5\n", "c.yaml").unwrap_err().to_string();
        assert_eq!(err, "c.yaml:4:5: \"client.will.qos\": expected a QoS: 0, 1 or 2, got 5");
        let err = load_client_str("uri: 'foo://x'\n", "c.yaml").unwrap_err().to_string();
        assert!(err.starts_with("c.yaml:1:1: \"uri\": "), "{err}");
        let err = load_client_str("- a\n", "c.yaml").unwrap_err().to_string();
        assert!(err.contains("expected a mapping"), "{err}");
    }

    #[test]
    fn codec_params_keep_yes_and_no_as_words() {
        let loaded =
            load_client_str("codec: yesno\ncodec_params: {yesno: {name: bool, on: yes, off: no}}\n", "c").unwrap();
        let def = &loaded.options.codec_params["yesno"];
        assert_eq!(def.params["on"], "yes");
        assert_eq!(def.params["off"], "no");
    }

    #[test]
    fn mappings_from_header_files() {
        let value = load_mapping_str("Authorization: Bearer x\nX-Other: 1\n", "h").unwrap();
        assert_eq!(
            value,
            ConfigValue::map([("Authorization", ConfigValue::from("Bearer x")), ("X-Other", ConfigValue::Int(1))])
        );
        assert!(load_mapping_str("{\"a\": \"b\"}", "h").is_ok());
        assert!(load_mapping_str("just text", "h").is_err());
    }
}
