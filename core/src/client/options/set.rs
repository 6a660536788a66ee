//! [`ClientOptions::set`]: one configuration key from a generic tree.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::value::{invalid, normalize, to_bool, to_duration, to_int, to_map, to_opt_text, to_qos, to_text};
use super::{ClientOptions, CodecDef, ConfigValue, Retries, TopicDefaults, UrlError};
use crate::codec::{Properties, QoS, Will};
use crate::topic::{TopicError, TopicFilter, TopicName};

/// Why a configuration key was not applied. The options are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// No such key (at the top or inside a section such as `will`); the caller may take this
    /// as a warning, since nothing was changed.
    #[error("unknown key {key:?}")]
    UnknownKey {
        /// The key's full path, e.g. `will.topc`.
        key: String,
    },
    /// The value has the wrong type or is out of range.
    #[error("{key}: expected {expected}, got {got}")]
    Invalid {
        /// The key's full path.
        key: String,
        /// What the key takes.
        expected: &'static str,
        /// The value found, as written.
        got: String,
    },
    /// The URL does not parse.
    #[error("{key}: {source}")]
    Url {
        /// The key's full path.
        key: String,
        /// What is wrong with it.
        source: UrlError,
    },
    /// A topic (will topic, `topics` key) is not a valid topic name or filter.
    #[error("{key}: {source}")]
    Topic {
        /// The key's full path.
        key: String,
        /// What is wrong with it.
        source: TopicError,
    },
}

impl ClientOptions {
    /// Sets one configuration key from a generic value, as read from a configuration file.
    ///
    /// `key` may be spelled with `-` or `_` and is one of the original's keys: `uri` (`url`),
    /// `id` (`client_id`), `keep_alive`, `ping_delay`, `default_qos`, `default_retain`,
    /// `auto_reconnect`, `reconnect_max_interval`, `reconnect_retries`, `cleansession`
    /// (`clean_session`), `will`, `codec`, `codec_params`, `topics`, `certfile`, `keyfile`,
    /// `check_hostname`, `cafile`/`capath`/`cadata` (`ca_file`, ...; or `ca: {file, path,
    /// data}`), `extra_headers`. Durations are seconds (integer or float). A null value resets
    /// the key to its default (`will: {topic: null}` means no will).
    ///
    /// # Errors
    /// [`OptionError`] naming the key's full path; nothing is changed then.
    pub fn set(&mut self, key: &str, value: ConfigValue) -> Result<(), OptionError> {
        let name = normalize(key);
        let v = &value;
        match name.as_str() {
            "uri" | "url" => {
                self.url = match v {
                    ConfigValue::Null => super::BrokerUrl::default(),
                    _ => to_text(key, v)?.parse().map_err(|source| OptionError::Url { key: key.to_owned(), source })?,
                };
            }
            "id" | "client_id" => self.client_id = to_opt_text(key, v)?.filter(|s| !s.is_empty()),
            "keep_alive" => self.keep_alive = keep_alive(key, v)?,
            "ping_delay" => self.ping_delay = or_default(v, Duration::from_secs(1), to_duration, key)?,
            "default_qos" => self.default_qos = or_default(v, QoS::AtMostOnce, to_qos, key)?,
            "default_retain" => self.default_retain = or_default(v, false, to_bool, key)?,
            "auto_reconnect" => self.auto_reconnect = or_default(v, true, to_bool, key)?,
            "reconnect_max_interval" => {
                self.reconnect_max_interval = or_default(v, Duration::from_secs(10), to_duration, key)?;
            }
            "reconnect_retries" => {
                self.reconnect_retries = match v {
                    ConfigValue::Null => Retries::default(),
                    _ => Retries::from_count(to_int(key, v)?),
                };
            }
            "cleansession" | "clean_session" => {
                self.clean_session = or_default(v, true, to_bool, key)?;
            }
            "will" => self.will = will(key, v)?,
            "codec" => self.codec = to_opt_text(key, v)?.unwrap_or_else(|| "noop".to_owned()),
            "codec_params" => self.codec_params = codec_params(key, v)?,
            "topics" => self.topics = topics(key, v)?,
            "certfile" | "cert_file" => self.certfile = to_opt_text(key, v)?.map(PathBuf::from),
            "keyfile" | "key_file" => self.keyfile = to_opt_text(key, v)?.map(PathBuf::from),
            "check_hostname" => self.check_hostname = or_default(v, true, to_bool, key)?,
            "cafile" | "ca_file" => self.ca_file = to_opt_text(key, v)?.map(PathBuf::from),
            "capath" | "ca_path" => self.ca_path = to_opt_text(key, v)?.map(PathBuf::from),
            "cadata" | "ca_data" => self.ca_data = to_opt_text(key, v)?,
            "ca" => self.set_ca(key, v)?,
            "extra_headers" => self.extra_headers = text_map(key, v)?,
            _ => return Err(OptionError::UnknownKey { key: key.to_owned() }),
        }
        Ok(())
    }

    /// Sets every key of a mapping with [`ClientOptions::set`], in order.
    ///
    /// Unknown keys are skipped and returned (to be reported as warnings); the first other
    /// error stops, with the keys before it applied.
    ///
    /// # Errors
    /// The first [`OptionError`] other than [`OptionError::UnknownKey`].
    pub fn set_all(
        &mut self,
        entries: impl IntoIterator<Item = (String, ConfigValue)>,
    ) -> Result<Vec<String>, OptionError> {
        let mut unknown = Vec::new();
        for (key, value) in entries {
            match self.set(&key, value) {
                Ok(()) => {}
                Err(OptionError::UnknownKey { key }) => unknown.push(key),
                Err(e) => return Err(e),
            }
        }
        Ok(unknown)
    }

    /// `ca: {file, path, data}`; a null section clears all three.
    fn set_ca(&mut self, key: &str, value: &ConfigValue) -> Result<(), OptionError> {
        let (mut file, mut path, mut data) = (None, None, None);
        for (sub, v) in to_map(key, value)? {
            let full = format!("{key}.{sub}");
            match normalize(sub).as_str() {
                "file" => file = to_opt_text(&full, v)?.map(PathBuf::from),
                "path" => path = to_opt_text(&full, v)?.map(PathBuf::from),
                "data" => data = to_opt_text(&full, v)?,
                _ => return Err(OptionError::UnknownKey { key: full }),
            }
        }
        (self.ca_file, self.ca_path, self.ca_data) = (file, path, data);
        Ok(())
    }
}

/// `convert(value)`, or `default` for null.
fn or_default<T>(
    value: &ConfigValue,
    default: T,
    convert: fn(&str, &ConfigValue) -> Result<T, OptionError>,
    key: &str,
) -> Result<T, OptionError> {
    if value.is_null() { Ok(default) } else { convert(key, value) }
}

/// Whole seconds up to 65,535 (CONNECT's 16-bit field); null is the default 10 s.
fn keep_alive(key: &str, value: &ConfigValue) -> Result<Duration, OptionError> {
    match value {
        ConfigValue::Null => Ok(Duration::from_secs(10)),
        ConfigValue::Int(i) => match u16::try_from(*i) {
            Ok(secs) => Ok(Duration::from_secs(secs.into())),
            Err(_) => Err(invalid(key, "whole seconds from 0 to 65535", value)),
        },
        _ => Err(invalid(key, "whole seconds from 0 to 65535", value)),
    }
}

/// `will: {topic, message, qos, retain}`; no topic (or a null section) means no will.
fn will(key: &str, value: &ConfigValue) -> Result<Option<Will>, OptionError> {
    let mut topic = None;
    let mut payload = Bytes::new();
    let mut qos = QoS::AtMostOnce;
    let mut retain = false;
    for (sub, v) in to_map(key, value)? {
        let full = format!("{key}.{sub}");
        match normalize(sub).as_str() {
            "topic" => topic = to_opt_text(&full, v)?,
            "message" => {
                payload = to_opt_text(&full, v)?.map(|m| Bytes::from(m.into_bytes())).unwrap_or_default();
            }
            "qos" => qos = or_default(v, QoS::AtMostOnce, to_qos, &full)?,
            "retain" => retain = or_default(v, false, to_bool, &full)?,
            _ => return Err(OptionError::UnknownKey { key: full }),
        }
    }
    let Some(topic) = topic else { return Ok(None) };
    let topic = TopicName::new(topic).map_err(|source| OptionError::Topic { key: format!("{key}.topic"), source })?;
    Ok(Some(Will { topic, payload, qos, retain, properties: Properties::new() }))
}

/// `codec_params: {NAME: {name: CODEC, PARAM: TEXT, ...}}`; an entry may also be just the
/// name of the codec it stands for (`myjson: json`).
fn codec_params(key: &str, value: &ConfigValue) -> Result<BTreeMap<String, CodecDef>, OptionError> {
    let mut defs = BTreeMap::new();
    for (entry, v) in to_map(key, value)? {
        let full = format!("{key}.{entry}");
        let def = match v {
            ConfigValue::Str(name) => CodecDef { name: Some(name.clone()), params: BTreeMap::new() },
            ConfigValue::Map(params) => {
                let mut def = CodecDef::default();
                for (param, p) in params {
                    let path = format!("{full}.{param}");
                    if param == "name" {
                        def.name = to_opt_text(&path, p)?;
                    } else if let ConfigValue::Bool(_) = p {
                        // YAML reads a bare yes/no/on/off as a boolean: the word is lost.
                        return Err(invalid(
                            &path,
                            "a string (quote words such as \"yes\" and \"off\", which YAML reads as booleans)",
                            p,
                        ));
                    } else {
                        def.params.insert(param.clone(), to_text(&path, p)?);
                    }
                }
                def
            }
            _ => return Err(invalid(&full, "a mapping with the codec's name and parameters", v)),
        };
        defs.insert(entry.clone(), def);
    }
    Ok(defs)
}

/// `topics: {TOPIC: {qos, retain}}`; a key must be a valid topic name or filter.
fn topics(key: &str, value: &ConfigValue) -> Result<BTreeMap<String, TopicDefaults>, OptionError> {
    let mut topics = BTreeMap::new();
    for (topic, v) in to_map(key, value)? {
        let full = format!("{key}.{topic}");
        TopicFilter::new(topic.as_str()).map_err(|source| OptionError::Topic { key: full.clone(), source })?;
        let mut defaults = TopicDefaults::default();
        for (sub, s) in to_map(&full, v)? {
            let path = format!("{full}.{sub}");
            match normalize(sub).as_str() {
                "qos" => defaults.qos = (!s.is_null()).then(|| to_qos(&path, s)).transpose()?,
                "retain" => defaults.retain = (!s.is_null()).then(|| to_bool(&path, s)).transpose()?,
                _ => return Err(OptionError::UnknownKey { key: path }),
            }
        }
        topics.insert(topic.clone(), defaults);
    }
    Ok(topics)
}

/// A mapping of strings (`extra_headers`); null is an empty one.
fn text_map(key: &str, value: &ConfigValue) -> Result<BTreeMap<String, String>, OptionError> {
    to_map(key, value)?.iter().map(|(k, v)| Ok((k.clone(), to_text(&format!("{key}.{k}"), v)?))).collect()
}
