//! [`CodecError`]: why a codec could not be made, or a payload not encoded or decoded.

/// Why a codec could not be resolved, or a payload not encoded, decoded or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The name is neither a built-in codec nor a `codec_params` entry (or the entries
    /// refer to each other in a circle).
    #[error("unknown codec {name:?}; use noop, binary, utf8, json, msgpack, cbor, bool, null or a codec_params entry")]
    UnknownCodec {
        /// The name asked for.
        name: String,
    },
    /// A codec of the original MoaT-MQTT that this build does not have.
    #[error("codec {name:?} is not available: {hint}")]
    Unavailable {
        /// The name asked for.
        name: String,
        /// Why, and what to use instead.
        hint: &'static str,
    },
    /// A `codec_params` parameter the codec does not take, or with a value it cannot use.
    #[error("codec {codec} does not take parameter {param}={value:?}")]
    BadParam {
        /// The built-in codec.
        codec: &'static str,
        /// The parameter's name.
        param: String,
        /// Its value.
        value: String,
    },
    /// `utf8`: the payload is not UTF-8 from this byte offset on.
    #[error("payload is not UTF-8: invalid byte sequence at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of valid UTF-8.
        offset: usize,
    },
    /// `bool`: the payload is not one of the codec's names.
    #[error("{text:?} is neither {on:?} nor {off:?}")]
    NotBool {
        /// The payload as (lossy, shortened) text.
        text: String,
        /// The name for true.
        on: String,
        /// The name for false.
        off: String,
    },
    /// The codec cannot encode this kind of value (a list with `utf8`, ...).
    #[error("codec {codec} cannot encode {kind}")]
    WrongValue {
        /// The codec.
        codec: &'static str,
        /// The kind of value given ([`Value::kind`](super::Value::kind)).
        kind: &'static str,
    },
    /// The payload is not valid `json`, `msgpack` or `cbor` (or does not fit the type asked
    /// for), with the parser's message.
    #[error("payload is not valid {codec}: {message}")]
    Decode {
        /// The codec.
        codec: &'static str,
        /// What the parser said.
        message: String,
    },
    /// The value could not be serialised (e.g. a non-string map key in JSON).
    #[error("cannot encode as {codec}: {message}")]
    Encode {
        /// The codec.
        codec: &'static str,
        /// What the serialiser said.
        message: String,
    },
    /// Command-line text that does not parse for this codec (JSON text for json, msgpack and
    /// cbor).
    #[error("{codec} codec: {message}")]
    Parse {
        /// The codec.
        codec: &'static str,
        /// What is wrong.
        message: String,
    },
}
