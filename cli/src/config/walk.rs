//! Walking a parsed YAML tree: mappings with normalised keys, unknown-key warnings, and
//! readers for the kinds of value a configuration holds, each failing with the key's path.

use super::node::{Key, Node, Pos, Value};
use super::{ConfigError, Place};

/// The keys a mapping knows: each canonical name (spelt with `-`) with its other names.
pub(crate) type Schema = &'static [(&'static str, &'static [&'static str])];

/// One known key of a mapping, with its value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'n> {
    /// The canonical name from the schema.
    pub(crate) name: &'static str,
    /// The key as written.
    pub(crate) key: &'n Key,
    /// The value.
    pub(crate) node: &'n Node,
}

/// The state of one walk: the origin's name for messages, and the warnings so far.
#[derive(Debug)]
pub(crate) struct Walker {
    /// The file name (or other origin) used in messages.
    origin: String,
    /// Warnings with where they point, in the order they were found.
    warnings: Vec<(Pos, String)>,
}

/// `key` with `_` turned into `-`, the spelling schemas use.
pub(crate) fn normalise(key: &str) -> String {
    key.replace('_', "-")
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

impl Walker {
    /// A walk over the text that came from `origin`.
    pub(crate) fn new(origin: &str) -> Self {
        Self { origin: origin.to_owned(), warnings: Vec::new() }
    }

    /// The warnings, in file order (they are found section by section).
    pub(crate) fn into_warnings(mut self) -> Vec<String> {
        self.warnings.sort_by_key(|(pos, _)| (pos.line, pos.column));
        self.warnings.into_iter().map(|(_, line)| line).collect()
    }

    /// The place of `pos` in this walk's origin.
    pub(crate) fn place(&self, pos: Pos) -> Place {
        Place { file: self.origin.clone(), line: pos.line, column: pos.column }
    }

    /// Logs a warning and keeps it for the caller.
    pub(crate) fn warn(&mut self, pos: Pos, message: &str) {
        let line = format!("{}: {message}", self.place(pos));
        log::warn!("{line}");
        self.warnings.push((pos, line));
    }

    /// An error about the value at `path`.
    pub(crate) fn error(&self, path: &str, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::Value { at: self.place(pos), key: path.to_owned(), message: message.into() }
    }

    /// The entries of the mapping at `path`, with `_` read as `-` in keys.
    ///
    /// Keys not in `schema` are warned about and left out; so are keys whose value is empty
    /// (they count as not given). An empty node is an empty mapping.
    ///
    /// # Errors
    /// If the node is not a mapping, or one key is given twice under different spellings.
    pub(crate) fn mapping<'n>(
        &mut self,
        path: &str,
        node: &'n Node,
        schema: Schema,
    ) -> Result<Vec<Entry<'n>>, ConfigError> {
        let pairs = self.pairs(path, node)?;
        let mut entries: Vec<Entry<'n>> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let normal = normalise(&key.text);
            let Some(&(name, _)) =
                schema.iter().find(|(name, aliases)| *name == normal || aliases.contains(&normal.as_str()))
            else {
                self.warn(key.pos, &format!("unknown configuration key \"{}\", ignored", join(path, &key.text)));
                continue;
            };
            if let Some(earlier) = entries.iter().find(|e| e.name == name) {
                return Err(self.error(
                    &join(path, name),
                    key.pos,
                    format!("given twice, as \"{}\" and as \"{}\"; keep one", earlier.key.text, key.text),
                ));
            }
            entries.push(Entry { name, key, node: value });
        }
        entries.retain(|e| e.node.value != Value::Null);
        Ok(entries)
    }

    /// The key/value pairs of the mapping at `path`, keys as written; an empty node has none.
    ///
    /// # Errors
    /// If the node is neither a mapping nor empty.
    pub(crate) fn pairs<'n>(&self, path: &str, node: &'n Node) -> Result<Vec<(&'n Key, &'n Node)>, ConfigError> {
        match &node.value {
            Value::Null => Ok(Vec::new()),
            Value::Map(pairs) => Ok(pairs.iter().map(|(k, v)| (k, v)).collect()),
            other => Err(self.error(
                if path.is_empty() { "(top level)" } else { path },
                node.pos,
                format!("expected a mapping of keys to values, got {}", other.describe()),
            )),
        }
    }

    /// A whole number, written as a YAML integer or a string holding one.
    ///
    /// # Errors
    /// For anything else, naming `path`.
    pub(crate) fn whole(&self, path: &str, node: &Node) -> Result<i128, ConfigError> {
        match &node.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        }
        .map_or_else(|| Err(self.expected(path, node, "a whole number")), Ok)
    }

    /// A whole number in `min..=max`.
    ///
    /// # Errors
    /// If it is not a whole number or out of range, naming `path`.
    pub(crate) fn whole_in(&self, path: &str, node: &Node, min: usize, max: usize) -> Result<usize, ConfigError> {
        let n = self.whole(path, node)?;
        usize::try_from(n)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| self.expected(path, node, &format!("a whole number from {min} to {max}")))
    }

    /// A non-negative number of seconds (integer or decimal), as `f64`.
    ///
    /// # Errors
    /// For anything else, or a negative or non-finite number, naming `path`.
    pub(crate) fn seconds(&self, path: &str, node: &Node) -> Result<f64, ConfigError> {
        #[allow(clippy::cast_precision_loss)] // seconds beyond 2^53 are not a meaningful setting
        match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or_else(|| Err(self.expected(path, node, "a number of seconds (0 or more)")), Ok)
    }

    /// A boolean: `true`/`false`, `on`/`off`, `yes`/`no` (any case), or 1/0.
    ///
    /// # Errors
    /// For anything else, naming `path`.
    pub(crate) fn boolean(&self, path: &str, node: &Node) -> Result<bool, ConfigError> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Int(1) => Some(true),
            Value::Int(0) => Some(false),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "y" => Some(true),
                "false" | "off" | "no" | "n" => Some(false),
                _ => None,
            },
            _ => None,
        }
        .map_or_else(|| Err(self.expected(path, node, "on or off (also: true/false, yes/no)")), Ok)
    }

    /// A string; numbers are taken as their text.
    ///
    /// # Errors
    /// For a boolean, list or mapping, naming `path`.
    pub(crate) fn text(&self, path: &str, node: &Node) -> Result<String, ConfigError> {
        match &node.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            _ => Err(self.expected(path, node, "a string")),
        }
    }

    /// "expected `what`, got …" about the value at `path`.
    pub(crate) fn expected(&self, path: &str, node: &Node, what: &str) -> ConfigError {
        self.error(path, node.pos, format!("expected {what}, got {}", node.value.describe()))
    }
}
