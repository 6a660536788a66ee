//! A YAML document as a tree of nodes that remember where they were written.
//!
//! The loader reads the whole file into this tree first and walks it afterwards, so it can
//! normalise key spellings, warn about unknown keys and name the full key path (and the line
//! and column) of a bad value, none of which a derived `Deserialize` would allow.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a node starts in the file: 1-based line and column; 0 when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    /// 1-based line, 0 if unknown.
    pub(crate) line: u64,
    /// 1-based column, 0 if unknown.
    pub(crate) column: u64,
}

impl Pos {
    /// The position a [`Spanned`] value was referenced at.
    fn of<T>(spanned: &Spanned<T>) -> Self {
        Self { line: spanned.referenced.line(), column: spanned.referenced.column() }
    }
}

/// One YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// What the node holds.
    pub(crate) value: Value,
    /// Where it starts.
    pub(crate) pos: Pos,
}

/// A mapping key as written, with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// The key's text exactly as written.
    pub(crate) text: String,
    /// Where it starts.
    pub(crate) pos: Pos,
}

/// The content of a node, with scalars typed as the YAML parser resolved them
/// (`on`/`off`/`yes`/`no` come out as booleans, `2` as an integer, `1.5` as a float).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `~`, `null` or nothing at all.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (wide enough for any `u64` and `i64`).
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// The value as a user would recognise it in an error message: scalars as written
    /// (strings quoted), collections by kind.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null => "nothing".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        let pos = Pos::of(&spanned);
        Ok(Node { value: spanned.value, pos })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<String>::deserialize(deserializer)?;
        let pos = Pos::of(&spanned);
        Ok(Key { text: spanned.value, pos })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the parser found.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        // Beyond i128 only a number nobody means can arrive; keep its text.
        Ok(i128::try_from(v).map_or_else(|_| Value::Str(v.to_string()), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Parses `text` as one YAML document. An empty document (nothing, or only comments) is
/// [`Value::Null`].
pub(crate) fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    // Only `true`/`false` become booleans here; the loader reads `on`/`off`/`yes`/`no` itself
    // where it expects a boolean, so a `y` or `no` elsewhere stays the string it was.
    options.strict_booleans = true;
    // Errors become one line each (with the file name and line/column added by the loader).
    options.with_snippet = false;
    let node: Option<Node> = serde_saphyr::from_str_with_options(text, options)?;
    Ok(node.unwrap_or(Node { value: Value::Null, pos: Pos::default() }))
}
