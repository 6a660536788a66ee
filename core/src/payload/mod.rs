//! Payload codecs (feature `payload`): how a client turns message payloads into values and
//! back, selectable per client, per subscription and per publish as in the original
//! MoaT-MQTT.
//!
//! - [`Codec`]: `noop`/`binary`, `utf8`, `json`, `msgpack`, `cbor`, `bool` and `null`, found
//!   by name with [`Codec::from_name`] (built-in names and the client's `codec_params`
//!   entries, such as `yesno: {name: bool, on: "yes", off: "no"}`). `yaml` is not built in:
//!   the core has no YAML crate.
//! - [`Value`]: a decoded payload: bytes, text, a boolean, null, or structured data (serde's
//!   data model with raw bytes and non-string keys, so MessagePack and CBOR decode without
//!   loss).
//! - [`Codec::encode`] / [`Codec::decode`] work on [`Value`]s; [`Codec::encode_serde`] /
//!   [`Codec::decode_serde`] on any serde type.
//! - [`Codec::parse_text`] reads command-line text (`pub -m`), [`Codec::render`] prints a
//!   value (`sub`).
//!
//! ```
//! use moat_mqtt_core::payload::{Codec, Value};
//!
//! let json = Codec::from_name("json", &Default::default())?;
//! let payload = json.encode_text(r#"{"temp": 21.5}"#)?;
//! assert_eq!(&payload[..], br#"{"temp":21.5}"#);
//! let value = json.decode(&payload)?;
//! assert_eq!(value.get("temp"), Some(&Value::Float(21.5)));
//! assert_eq!(json.render_lossy(&value), r#"{"temp":21.5}"#);
//! # Ok::<(), moat_mqtt_core::payload::CodecError>(())
//! ```

mod codec;
mod error;
mod serde_impl;
mod text;
mod value;

pub use codec::{BoolNames, Codec};
pub use error::CodecError;
pub use value::Value;

#[cfg(test)]
mod tests;
