use std::fmt;

use bytestring::ByteString;

use super::{MAX_TOPIC_LEN, TopicError};

/// A validated topic name: the destination of a PUBLISH.
///
/// Holds no wildcards and no U+0000, fits in a UTF-8 string field, and is not empty, except for
/// the one value [`TopicName::alias_only`] that an MQTT 5 PUBLISH uses when it names its topic by
/// a Topic Alias alone. Cloning is cheap: the text is shared, not copied.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates `name` as a topic name.
    ///
    /// # Errors
    /// [`TopicError`] names the rule the text breaks.
    pub fn new(name: impl Into<ByteString>) -> Result<Self, TopicError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self(name))
    }

    /// The empty topic of an MQTT 5 PUBLISH that carries only a Topic Alias.
    #[must_use]
    pub fn alias_only() -> Self {
        Self(ByteString::new())
    }

    /// The topic as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared text, as carried in packets.
    #[must_use]
    pub fn as_byte_string(&self) -> &ByteString {
        &self.0
    }

    /// The same topic in an allocation of its own, for keeping long after the packet it came
    /// in: a decoded topic is a slice of the receive buffer and would keep all of it alive.
    #[must_use]
    pub fn detached(&self) -> Self {
        Self(ByteString::from(self.as_str().to_owned()))
    }

    /// True only for [`TopicName::alias_only`].
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the topic starts with `$` (such as `$SYS/...`), which leading wildcards skip.
    #[must_use]
    pub fn is_dollar(&self) -> bool {
        super::is_dollar_topic(&self.0)
    }

    /// The topic's levels, split at `/` (empty levels included).
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

fn validate_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(name.len()));
    }
    for b in name.bytes() {
        match b {
            0 => return Err(TopicError::NulCharacter),
            b'+' | b'#' => return Err(TopicError::WildcardInName(b as char)),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

impl TryFrom<String> for TopicName {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["a", "a/b", "/", "//", "a//b", "$SYS/broker/uptime", "sport/tennis player1", "ü/ö"] {
            assert_eq!(TopicName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_wildcards_nul_and_empty() {
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName('+')));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::WildcardInName('#')));
        assert_eq!(TopicName::new("a+b"), Err(TopicError::WildcardInName('+')));
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::NulCharacter));
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new("x".repeat(65_536)), Err(TopicError::TooLong(65_536)));
        assert!(TopicName::new("x".repeat(65_535)).is_ok());
    }

    #[test]
    fn dollar_topics_are_marked() {
        assert!(TopicName::new("$SYS/x").unwrap().is_dollar());
        assert!(!TopicName::new("SYS/$x").unwrap().is_dollar());
    }

    #[test]
    fn levels_keep_empty_levels() {
        let t = TopicName::new("/a//b/").unwrap();
        assert_eq!(t.levels().collect::<Vec<_>>(), ["", "a", "", "b", ""]);
    }
}
