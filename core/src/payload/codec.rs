//! [`Codec`]: the payload codecs, found by name, and their encoding and decoding.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CodecError, Value};
use crate::client::options::{ClientOptions, CodecDef};

/// The deepest nesting `msgpack` and `cbor` payloads may have (JSON's parser has the same
/// limit), so a hostile payload cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// The names of the `bool` codec: `on` and `off` by default, set through `codec_params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoolNames {
    /// The payload for true. Default `on`.
    pub on: String,
    /// The payload for false. Default `off`.
    pub off: String,
    /// The payload for null, if null is allowed. Default none.
    pub null: Option<String>,
}

impl Default for BoolNames {
    fn default() -> Self {
        Self { on: "on".to_owned(), off: "off".to_owned(), null: None }
    }
}

impl BoolNames {
    /// The value `text` names: the `on`/`off`/`null` names (ignoring case and surrounding
    /// white space), else `true`/`1` and `false`/`0`.
    #[must_use]
    pub fn parse(&self, text: &str) -> Option<Value> {
        let text = text.trim();
        if text.eq_ignore_ascii_case(&self.on) {
            Some(Value::Bool(true))
        } else if text.eq_ignore_ascii_case(&self.off) {
            Some(Value::Bool(false))
        } else if self.null.as_deref().is_some_and(|null| text.eq_ignore_ascii_case(null)) {
            Some(Value::Null)
        } else if text.eq_ignore_ascii_case("true") || text == "1" {
            Some(Value::Bool(true))
        } else if text.eq_ignore_ascii_case("false") || text == "0" {
            Some(Value::Bool(false))
        } else {
            None
        }
    }

    /// The error for `text` that names no value.
    pub(super) fn not_bool(&self, text: &str) -> CodecError {
        let mut text = text.to_owned();
        if text.len() > 40 {
            let mut cut = 40;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        CodecError::NotBool { text, on: self.on.clone(), off: self.off.clone() }
    }
}

/// A payload codec: how message payloads are turned into [`Value`]s and back.
///
/// The original's codecs, by name: `noop` and `binary` (bytes as they are), `utf8` (text),
/// `json`, `msgpack`, `cbor`, `bool` (two names, `on`/`off` unless `codec_params` says
/// otherwise) and `null` (ignores the payload, sends an empty one). `yaml` is not built in (the
/// core has no YAML crate); nor are `msgpack+json` and `distkv`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Codec {
    /// `noop` / `binary`: the payload's bytes, untouched. The default.
    #[default]
    Binary,
    /// `utf8`: the payload as text; invalid UTF-8 is an error.
    Utf8,
    /// `json`: JSON text.
    Json,
    /// `msgpack`: MessagePack; structs are written as maps.
    Msgpack,
    /// `cbor`: CBOR.
    Cbor,
    /// `bool`: a boolean as one of two names.
    Bool(BoolNames),
    /// `null`: decodes every payload as null and encodes every value as an empty payload.
    Null,
}

impl Codec {
    /// The codec called `name`: an entry of `definitions` (the `codec_params` option), or a
    /// built-in codec.
    ///
    /// An entry `yesno: {name: bool, on: yes, off: no}` makes `yesno` the `bool` codec with
    /// those names. An entry's `name` may be another entry, whose parameters it inherits
    /// (its own winning); an entry without `name` configures the built-in codec of its own
    /// name (`bool: {on: an, off: aus}`).
    ///
    /// # Errors
    /// [`CodecError::UnknownCodec`], [`CodecError::Unavailable`] for `yaml` and the like,
    /// [`CodecError::BadParam`] for a parameter the codec does not take.
    pub fn from_name(name: &str, definitions: &BTreeMap<String, CodecDef>) -> Result<Self, CodecError> {
        let mut params: BTreeMap<&str, &str> = BTreeMap::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut current = name;
        while let Some(def) = definitions.get(current) {
            if seen.contains(&current) {
                break;
            }
            seen.push(current);
            for (key, value) in &def.params {
                params.entry(key.as_str()).or_insert(value.as_str());
            }
            match def.name.as_deref() {
                Some(next) => current = next,
                None => break,
            }
        }
        Self::builtin(current, &params)
    }

    /// The codec a client uses by default: `options.codec` resolved with
    /// `options.codec_params`.
    ///
    /// # Errors
    /// As [`Codec::from_name`].
    pub fn from_options(options: &ClientOptions) -> Result<Self, CodecError> {
        Self::from_name(&options.codec, &options.codec_params)
    }

    /// A built-in codec by name with its parameters.
    fn builtin(name: &str, params: &BTreeMap<&str, &str>) -> Result<Self, CodecError> {
        let codec = match name.to_ascii_lowercase().as_str() {
            "noop" | "binary" => Self::Binary,
            "utf8" | "utf-8" => Self::Utf8,
            "json" => Self::Json,
            "msgpack" => Self::Msgpack,
            "cbor" => Self::Cbor,
            "null" => Self::Null,
            "bool" => Self::Bool(BoolNames::default()),
            "yaml" => {
                return Err(CodecError::Unavailable {
                    name: name.to_owned(),
                    hint: "the core has no YAML parser; use json",
                });
            }
            "msgpack+json" | "distkv" => {
                return Err(CodecError::Unavailable { name: name.to_owned(), hint: "use msgpack" });
            }
            _ => return Err(CodecError::UnknownCodec { name: name.to_owned() }),
        };
        codec.with_params(params)
    }

    /// This codec with `params` applied; a parameter it does not take is an error.
    fn with_params(mut self, params: &BTreeMap<&str, &str>) -> Result<Self, CodecError> {
        let name = self.name();
        for (&param, &value) in params {
            let bad = || CodecError::BadParam { codec: name, param: param.to_owned(), value: value.to_owned() };
            match (&mut self, param) {
                (Self::Bool(names), "on") => names.on = value.to_owned(),
                (Self::Bool(names), "off") => names.off = value.to_owned(),
                (Self::Bool(names), "null") => names.null = Some(value.to_owned()),
                // The original's msgpack options: lists are always lists here, and bytes are
                // always binary.
                (Self::Msgpack, "use_list") => {}
                (Self::Msgpack, "use_bin_type") if value.eq_ignore_ascii_case("true") => {}
                _ => return Err(bad()),
            }
        }
        if let Self::Bool(names) = &self
            && (names.on.eq_ignore_ascii_case(&names.off) || names.on.trim().is_empty())
        {
            return Err(CodecError::BadParam { codec: name, param: "on".to_owned(), value: names.on.clone() });
        }
        Ok(self)
    }

    /// The built-in name: `binary`, `utf8`, `json`, `msgpack`, `cbor`, `bool` or `null`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Utf8 => "utf8",
            Self::Json => "json",
            Self::Msgpack => "msgpack",
            Self::Cbor => "cbor",
            Self::Bool(_) => "bool",
            Self::Null => "null",
        }
    }

    /// Whether this codec carries structured data (`json`, `msgpack`, `cbor`).
    #[must_use]
    pub fn is_structured(&self) -> bool {
        matches!(self, Self::Json | Self::Msgpack | Self::Cbor)
    }

    /// The payload for `value`.
    ///
    /// `binary` takes bytes or text (as UTF-8); `utf8` takes text or bytes that are UTF-8;
    /// both take null as an empty payload. `bool` takes a boolean, 0 or 1, one of its names,
    /// or null if it has a null name. `json`, `msgpack` and `cbor` take any value (JSON
    /// writes bytes as a list of numbers and refuses non-string map keys). `null` ignores it.
    ///
    /// # Errors
    /// [`CodecError::WrongValue`] for a value the codec cannot carry,
    /// [`CodecError::Encode`] when serialising fails.
    pub fn encode(&self, value: &Value) -> Result<Bytes, CodecError> {
        let wrong = || CodecError::WrongValue { codec: self.name(), kind: value.kind() };
        match (self, value) {
            (Self::Binary | Self::Utf8, Value::Null) | (Self::Null, _) => Ok(Bytes::new()),
            (Self::Binary | Self::Utf8, Value::Str(s)) => Ok(Bytes::copy_from_slice(s.as_bytes())),
            (Self::Binary, Value::Bytes(b)) => Ok(b.clone()),
            (Self::Utf8, Value::Bytes(b)) => {
                check_utf8(b)?;
                Ok(b.clone())
            }
            (Self::Binary | Self::Utf8, _) => Err(wrong()),
            (Self::Json | Self::Msgpack | Self::Cbor, _) => self.encode_serde(value),
            (Self::Bool(names), _) => {
                let name = match value {
                    Value::Bool(b) => Some(*b),
                    Value::Int(i @ (0 | 1)) => Some(*i == 1),
                    Value::Str(s) => match names.parse(s) {
                        Some(Value::Bool(b)) => Some(b),
                        Some(_) => None,
                        None => return Err(names.not_bool(s)),
                    },
                    _ => None,
                };
                match (name, &names.null) {
                    (Some(true), _) => Ok(Bytes::copy_from_slice(names.on.as_bytes())),
                    (Some(false), _) => Ok(Bytes::copy_from_slice(names.off.as_bytes())),
                    (None, Some(null)) if matches!(value, Value::Null | Value::Str(_)) => {
                        Ok(Bytes::copy_from_slice(null.as_bytes()))
                    }
                    _ => Err(wrong()),
                }
            }
        }
    }

    /// The value a payload holds.
    ///
    /// `binary` gives [`Value::Bytes`], `utf8` [`Value::Str`], `bool` [`Value::Bool`] (or
    /// null for its null name; see [`BoolNames::parse`]), `null` [`Value::Null`]; the
    /// structured codecs give whatever the payload holds and refuse trailing bytes.
    ///
    /// # Errors
    /// [`CodecError::InvalidUtf8`] (`utf8`, `bool`), [`CodecError::NotBool`],
    /// [`CodecError::Decode`] for a payload that is not valid `json`/`msgpack`/`cbor`.
    pub fn decode(&self, payload: &[u8]) -> Result<Value, CodecError> {
        match self {
            Self::Binary => Ok(Value::Bytes(Bytes::copy_from_slice(payload))),
            Self::Null => Ok(Value::Null),
            Self::Utf8 => Ok(Value::Str(check_utf8(payload)?.to_owned())),
            Self::Bool(names) => {
                let text =
                    std::str::from_utf8(payload).map_err(|_| names.not_bool(&String::from_utf8_lossy(payload)))?;
                names.parse(text).ok_or_else(|| names.not_bool(text))
            }
            Self::Json | Self::Msgpack | Self::Cbor => self.decode_serde(payload),
        }
    }

    /// [`Codec::decode`] taking the payload as shared [`Bytes`]: `binary` keeps them without
    /// copying.
    ///
    /// # Errors
    /// As [`Codec::decode`].
    pub fn decode_bytes(&self, payload: Bytes) -> Result<Value, CodecError> {
        match self {
            Self::Binary => Ok(Value::Bytes(payload)),
            _ => self.decode(&payload),
        }
    }

    /// The payload for any serialisable `value`: written directly by `json`, `msgpack`
    /// (structs as maps) and `cbor`; the other codecs take it through [`Value`] by way of
    /// `serde_json` (so bytes become a list of numbers) and [`Codec::encode`].
    ///
    /// # Errors
    /// [`CodecError::Encode`] when serialising fails; as [`Codec::encode`] otherwise.
    pub fn encode_serde<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, CodecError> {
        let failed = |message: String| CodecError::Encode { codec: self.name(), message };
        match self {
            Self::Json => serde_json::to_vec(value).map(Bytes::from).map_err(|e| failed(e.to_string())),
            Self::Msgpack => rmp_serde::to_vec_named(value).map(Bytes::from).map_err(|e| failed(e.to_string())),
            Self::Cbor => {
                let mut out = Vec::new();
                ciborium::into_writer(value, &mut out).map_err(|e| failed(e.to_string()))?;
                Ok(out.into())
            }
            _ => {
                let json = serde_json::to_value(value).map_err(|e| failed(e.to_string()))?;
                self.encode(&Value::from(json))
            }
        }
    }

    /// The payload as any deserialisable type: read directly by `json`, `msgpack` and
    /// `cbor` (trailing bytes refused); for the other codecs the decoded [`Value`] is
    /// converted by way of `serde_json` (bytes as a list of numbers).
    ///
    /// # Errors
    /// [`CodecError::Decode`] when the payload is not valid or does not fit `T`; as
    /// [`Codec::decode`] otherwise.
    pub fn decode_serde<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError> {
        let failed = |message: String| CodecError::Decode { codec: self.name(), message };
        match self {
            Self::Json => serde_json::from_slice(payload).map_err(|e| failed(e.to_string())),
            Self::Msgpack => {
                let mut de = rmp_serde::Deserializer::new(Cursor::new(payload));
                de.set_max_depth(MAX_DEPTH);
                let value = T::deserialize(&mut de).map_err(|e| failed(e.to_string()))?;
                let used = de.position();
                if used != payload.len() as u64 {
                    return Err(failed(format!("{} bytes after the value", payload.len() as u64 - used)));
                }
                Ok(value)
            }
            Self::Cbor => {
                let mut rest = payload;
                let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
                    .map_err(|e| failed(e.to_string()))?;
                if !rest.is_empty() {
                    return Err(failed(format!("{} bytes after the value", rest.len())));
                }
                Ok(value)
            }
            _ => {
                let value = self.decode(payload)?;
                let json = serde_json::to_value(&value).map_err(|e| failed(e.to_string()))?;
                serde_json::from_value(json).map_err(|e| failed(e.to_string()))
            }
        }
    }
}

impl fmt::Display for Codec {
    /// The codec's name; `bool` with its names, e.g. `bool(on=yes, off=no)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(names) => {
                write!(f, "bool(on={:?}, off={:?}", names.on, names.off)?;
                if let Some(null) = &names.null {
                    write!(f, ", null={null:?}")?;
                }
                f.write_str(")")
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// `bytes` as text, or the offset of the first byte that is not UTF-8.
fn check_utf8(bytes: &[u8]) -> Result<&str, CodecError> {
    std::str::from_utf8(bytes).map_err(|e| CodecError::InvalidUtf8 { offset: e.valid_up_to() })
}
