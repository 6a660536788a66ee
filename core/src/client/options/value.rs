//! [`ConfigValue`]: a configuration tree as a file format hands it over, and the conversions
//! [`ClientOptions::set`](super::ClientOptions::set) applies to it.

use std::fmt;
use std::time::Duration;

use crate::codec::QoS;

use super::OptionError;

/// One value of a configuration tree, as a YAML/JSON/TOML reader produces it. The core has no
/// file-format dependency: the CLI converts what its parser read into this and hands it to
/// [`ClientOptions::set`](super::ClientOptions::set).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// `~`, `null` or nothing at all.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    List(Vec<ConfigValue>),
    /// A mapping, in file order.
    Map(Vec<(String, ConfigValue)>),
}

impl ConfigValue {
    /// A mapping from `(key, value)` pairs.
    #[must_use]
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, ConfigValue)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Whether this is [`ConfigValue::Null`].
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
}

impl fmt::Display for ConfigValue {
    /// The value as a user would recognise it in an error message: scalars as written
    /// (strings quoted), collections by kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("nothing"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::List(_) => f.write_str("a list"),
            Self::Map(_) => f.write_str("a mapping"),
        }
    }
}

impl From<bool> for ConfigValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for ConfigValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<f64> for ConfigValue {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}

impl From<&str> for ConfigValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for ConfigValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

/// Builds the error for `key` holding `value` where `expected` was wanted.
pub(super) fn invalid(key: &str, expected: &'static str, value: &ConfigValue) -> OptionError {
    OptionError::Invalid { key: key.to_owned(), expected, got: value.to_string() }
}

/// A boolean: `true`/`false`, or the strings `true`, `false`, `yes`, `no`, `on`, `off`
/// (any case).
pub(super) fn to_bool(key: &str, value: &ConfigValue) -> Result<bool, OptionError> {
    match value {
        ConfigValue::Bool(b) => Ok(*b),
        ConfigValue::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(invalid(key, "true or false", value)),
        },
        _ => Err(invalid(key, "true or false", value)),
    }
}

/// A non-negative number of seconds (integer or float; also as a numeric string).
pub(super) fn to_duration(key: &str, value: &ConfigValue) -> Result<Duration, OptionError> {
    let err = || invalid(key, "a number of seconds, 0 or more", value);
    let secs = match value {
        ConfigValue::Int(i) => return u64::try_from(*i).map(Duration::from_secs).map_err(|_| err()),
        ConfigValue::Float(x) => *x,
        ConfigValue::Str(s) => s.trim().parse::<f64>().map_err(|_| err())?,
        _ => return Err(err()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

/// A QoS: 0, 1 or 2 (also as a string).
pub(super) fn to_qos(key: &str, value: &ConfigValue) -> Result<QoS, OptionError> {
    let level = match value {
        ConfigValue::Int(i) => u8::try_from(*i).ok(),
        ConfigValue::Str(s) => s.trim().parse::<u8>().ok(),
        _ => None,
    };
    level.and_then(QoS::from_u8).ok_or_else(|| invalid(key, "a QoS: 0, 1 or 2", value))
}

/// An integer (also as a string).
pub(super) fn to_int(key: &str, value: &ConfigValue) -> Result<i64, OptionError> {
    match value {
        ConfigValue::Int(i) => Ok(*i),
        ConfigValue::Str(s) => s.trim().parse().map_err(|_| invalid(key, "an integer", value)),
        _ => Err(invalid(key, "an integer", value)),
    }
}

/// A string; numbers and booleans are taken as their text.
pub(super) fn to_text(key: &str, value: &ConfigValue) -> Result<String, OptionError> {
    match value {
        ConfigValue::Str(s) => Ok(s.clone()),
        ConfigValue::Int(i) => Ok(i.to_string()),
        ConfigValue::Float(x) => Ok(x.to_string()),
        ConfigValue::Bool(b) => Ok(b.to_string()),
        _ => Err(invalid(key, "a string", value)),
    }
}

/// A string, or `None` for null.
pub(super) fn to_opt_text(key: &str, value: &ConfigValue) -> Result<Option<String>, OptionError> {
    match value {
        ConfigValue::Null => Ok(None),
        _ => to_text(key, value).map(Some),
    }
}

/// The entries of a mapping (null is an empty one).
pub(super) fn to_map<'a>(key: &str, value: &'a ConfigValue) -> Result<&'a [(String, ConfigValue)], OptionError> {
    match value {
        ConfigValue::Map(entries) => Ok(entries),
        ConfigValue::Null => Ok(&[]),
        _ => Err(invalid(key, "a mapping", value)),
    }
}

/// `key` with `-` written as `_`, the spelling the options are matched in.
pub(super) fn normalize(key: &str) -> String {
    key.replace('-', "_")
}
