//! Payloads as command-line text: [`Codec::parse_text`] for `pub`, [`Codec::render`] for `sub`.

use bytes::Bytes;

use super::{Codec, CodecError, Value};

impl Codec {
    /// The value command-line `text` stands for under this codec (`pub -m TEXT`):
    ///
    /// - `binary`: the text's UTF-8 bytes; `utf8`: the text;
    /// - `json`, `msgpack`, `cbor`: the text parsed as JSON (`{"a": 1}`, `"a string"`, `3`);
    /// - `bool`: one of its names, `true`/`false` or `1`/`0` (any case);
    /// - `null`: null, whatever the text.
    ///
    /// # Errors
    /// [`CodecError::Parse`] for text that is not JSON, [`CodecError::NotBool`].
    pub fn parse_text(&self, text: &str) -> Result<Value, CodecError> {
        match self {
            Self::Binary => Ok(Value::Bytes(Bytes::copy_from_slice(text.as_bytes()))),
            Self::Utf8 => Ok(Value::Str(text.to_owned())),
            Self::Json | Self::Msgpack | Self::Cbor => serde_json::from_str(text)
                .map_err(|e| CodecError::Parse { codec: self.name(), message: format!("not JSON text: {e}") }),
            Self::Bool(names) => names.parse(text).ok_or_else(|| names.not_bool(text)),
            Self::Null => Ok(Value::Null),
        }
    }

    /// The payload for command-line `text`: [`Codec::parse_text`], then [`Codec::encode`].
    ///
    /// # Errors
    /// As those two.
    pub fn encode_text(&self, text: &str) -> Result<Bytes, CodecError> {
        self.encode(&self.parse_text(text)?)
    }

    /// How `sub` prints a decoded value: raw bytes as they are (`binary`; they may hold any
    /// byte, newlines included, and the caller decides how to write them), text as it is,
    /// a boolean as the `bool` codec's name for it, null as nothing (for `null`, `binary`,
    /// `utf8`, `bool`), and everything else, and every value of `json`, `msgpack` and `cbor`,
    /// as compact JSON (the [`Value`] `Display` form: bytes inside structured data print as
    /// `b"..."`).
    #[must_use]
    pub fn render(&self, value: &Value) -> Vec<u8> {
        if self.is_structured() {
            return value.to_string().into_bytes();
        }
        match (self, value) {
            (_, Value::Bytes(b)) => b.to_vec(),
            (_, Value::Str(s)) => s.as_bytes().to_vec(),
            (Self::Bool(names), Value::Bool(b)) => (if *b { &names.on } else { &names.off }).as_bytes().to_vec(),
            (Self::Bool(names), Value::Null) => names.null.as_deref().unwrap_or_default().as_bytes().to_vec(),
            (_, Value::Null) => Vec::new(),
            (_, v) => v.to_string().into_bytes(),
        }
    }

    /// [`Codec::render`] as a `String`, with bytes that are not UTF-8 replaced by U+FFFD.
    #[must_use]
    pub fn render_lossy(&self, value: &Value) -> String {
        match String::from_utf8(self.render(value)) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}
