//! [`Value`]: a decoded payload, whatever the codec.

use std::fmt;

use bytes::Bytes;

/// A decoded payload: raw bytes (`noop`/`binary`), text (`utf8`), a boolean (`bool`), nothing
/// (`null`), or structured data (`json`, `msgpack`, `cbor`).
///
/// It is serde's data model plus raw bytes and non-string map keys, so MessagePack and CBOR
/// payloads with binary strings or integer keys decode without loss (JSON has neither).
/// Integers are [`Value::Int`] whenever they fit an `i64`; [`Value::UInt`] holds only larger
/// ones. Maps keep their entries in the order they were read.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Nothing: JSON `null`, an empty `null` payload.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits an `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(String),
    /// Raw bytes.
    Bytes(Bytes),
    /// A sequence.
    List(Vec<Value>),
    /// A map, in the order read.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// What kind of value this is, for error messages: "null", "a boolean", "a list", ...
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Int(_) | Self::UInt(_) => "an integer",
            Self::Float(_) => "a number",
            Self::Str(_) => "a string",
            Self::Bytes(_) => "bytes",
            Self::List(_) => "a list",
            Self::Map(_) => "a map",
        }
    }

    /// The value under the string key `key`, if this is a map that has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| matches!(k, Self::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text, if this is [`Value::Str`].
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is [`Value::Bytes`].
    #[must_use]
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The boolean, if this is [`Value::Bool`].
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<u64> for Value {
    /// [`Value::Int`] when it fits, else [`Value::UInt`].
    fn from(u: u64) -> Self {
        i64::try_from(u).map_or(Self::UInt(u), Self::Int)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b.into())
    }
}

impl From<Vec<Value>> for Value {
    fn from(list: Vec<Value>) -> Self {
        Self::List(list)
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match json {
            J::Null => Self::Null,
            J::Bool(b) => Self::Bool(b),
            J::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Self::Int(i),
                (None, Some(u)) => Self::UInt(u),
                _ => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Self::Str(s),
            J::Array(list) => Self::List(list.into_iter().map(Self::from).collect()),
            J::Object(map) => Self::Map(map.into_iter().map(|(k, v)| (Self::Str(k), Self::from(v))).collect()),
        }
    }
}

impl fmt::Display for Value {
    /// Compact JSON, extended where JSON has no form: bytes as `b"..."` (printable ASCII as
    /// is, other bytes as `\xNN`), non-string map keys as their own compact form
    /// (`{1:"a"}`), and `NaN`, `Infinity`, `-Infinity`. A value decoded from JSON therefore
    /// prints as valid JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::UInt(u) => write!(f, "{u}"),
            Self::Float(x) => write_float(f, *x),
            Self::Str(s) => write_json_string(f, s),
            Self::Bytes(b) => write_bytes(f, b),
            Self::List(list) => {
                f.write_str("[")?;
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Self::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A float as JSON writes it (`1.0`, `1e100`), with names for the non-finite ones.
fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("NaN")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        write!(f, "{x:?}")
    }
}

/// A JSON string literal.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Bytes as `b"..."`.
fn write_bytes(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("b\"")?;
    for &b in bytes {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", char::from(b))?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("\"")
}
