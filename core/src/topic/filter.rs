use std::fmt;

use bytestring::ByteString;

use super::{MAX_TOPIC_LEN, TopicError, TopicName};

/// The prefix that marks a shared subscription: `$share/<group>/<filter>`.
pub const SHARE_PREFIX: &str = "$share/";

/// A validated topic filter: what a SUBSCRIBE or UNSUBSCRIBE names.
///
/// `+` and `#` only fill whole levels, `#` only as the last level, empty levels are allowed, and
/// `$share/<group>/<filter>` is recognised as a shared subscription: [`TopicFilter::share_group`]
/// gives the group and [`TopicFilter::pattern`] the filter that topics are matched against.
/// Cloning is cheap: the text is shared, not copied.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter {
    text: ByteString,
    /// Byte offset of the pattern in `text`: 0, or just past `$share/<group>/`.
    pattern_start: usize,
}

impl TopicFilter {
    /// Validates `filter` as a topic filter.
    ///
    /// # Errors
    /// [`TopicError`] names the rule the text breaks.
    pub fn new(filter: impl Into<ByteString>) -> Result<Self, TopicError> {
        let text = filter.into();
        if text.is_empty() {
            return Err(TopicError::Empty);
        }
        if text.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong(text.len()));
        }
        if text.as_bytes().contains(&0) {
            return Err(TopicError::NulCharacter);
        }
        let pattern_start = match text.strip_prefix(SHARE_PREFIX) {
            Some(rest) => {
                let Some((group, pattern)) = rest.split_once('/') else {
                    return Err(if rest.is_empty() || rest.contains(['+', '#']) {
                        TopicError::InvalidShareName
                    } else {
                        TopicError::EmptySharedFilter
                    });
                };
                if group.is_empty() || group.contains(['+', '#']) {
                    return Err(TopicError::InvalidShareName);
                }
                if pattern.is_empty() {
                    return Err(TopicError::EmptySharedFilter);
                }
                SHARE_PREFIX.len() + group.len() + 1
            }
            None => 0,
        };
        validate_pattern(&text[pattern_start..])?;
        Ok(Self { text, pattern_start })
    }

    /// The filter exactly as sent on the wire, `$share/<group>/` included.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The same filter in an allocation of its own, for keeping long after the packet it came
    /// in: a decoded filter is a slice of the receive buffer and would keep all of it alive.
    #[must_use]
    pub fn detached(&self) -> Self {
        Self { text: ByteString::from(self.as_str().to_owned()), pattern_start: self.pattern_start }
    }

    /// The shared text, as carried in packets.
    #[must_use]
    pub fn as_byte_string(&self) -> &ByteString {
        &self.text
    }

    /// The group of a shared subscription, or `None` for an ordinary one.
    #[must_use]
    pub fn share_group(&self) -> Option<&str> {
        (self.pattern_start > 0).then(|| &self.text[SHARE_PREFIX.len()..self.pattern_start - 1])
    }

    /// The part that topics are matched against: the whole filter, or what follows
    /// `$share/<group>/`.
    #[must_use]
    pub fn pattern(&self) -> &str {
        &self.text[self.pattern_start..]
    }

    /// The levels of [`TopicFilter::pattern`], split at `/`.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.pattern().split('/')
    }

    /// True when the pattern holds `+` or `#`.
    #[must_use]
    pub fn has_wildcards(&self) -> bool {
        self.pattern().contains(['+', '#'])
    }

    /// Whether `topic` matches this filter: the reference definition of matching, level by level.
    ///
    /// `#` matches its parent level too (`p/#` matches `p`), and a pattern that begins with a
    /// wildcard never matches a topic that begins with `$` (MQTT-4.7.2-1). The subscription trie
    /// must agree with this function; it is kept simple so that it is obviously right.
    #[must_use]
    pub fn matches(&self, topic: &TopicName) -> bool {
        let pattern = self.pattern();
        if topic.is_dollar() && pattern.starts_with(['+', '#']) {
            return false;
        }
        let mut want = pattern.split('/');
        let mut have = topic.levels();
        loop {
            match (want.next(), have.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(w), Some(h)) if w == h => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

/// Checks wildcard placement in one pass over the bytes: `+` and `#` must fill a whole level,
/// and `#` must be the last level. (Both are ASCII, so byte positions are char boundaries.)
fn validate_pattern(pattern: &str) -> Result<(), TopicError> {
    let bytes = pattern.as_bytes();
    let mut level_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'/' => level_start = i + 1,
            b'+' | b'#' => {
                let level_end = bytes[i..].iter().position(|&c| c == b'/').map_or(bytes.len(), |n| i + n);
                let alone = i == level_start && level_end == i + 1;
                if !alone || (b == b'#' && level_end != bytes.len()) {
                    return Err(TopicError::MisplacedWildcard {
                        wildcard: char::from(b),
                        level: pattern[level_start..level_end].to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for TopicFilter {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

impl TryFrom<String> for TopicFilter {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }
    fn t(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    #[test]
    fn accepts_well_formed_filters() {
        for ok in ["#", "+", "a/#", "a/+/b", "+/+", "/+", "a//b", "/", "sport/+/player1", "+/#", "$SYS/#"] {
            assert_eq!(f(ok).as_str(), ok);
            assert_eq!(f(ok).share_group(), None);
        }
    }

    #[test]
    fn refuses_misplaced_wildcards() {
        for bad in ["a/+b", "a+", "#/a", "a/#/b", "a#", "a/b#", "++", "##", "a/+#"] {
            assert!(matches!(TopicFilter::new(bad), Err(TopicError::MisplacedWildcard { .. })), "{bad}");
        }
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
        assert_eq!(TopicFilter::new("a\0"), Err(TopicError::NulCharacter));
    }

    #[test]
    fn recognises_shared_subscriptions() {
        let s = f("$share/g1/a/+/c");
        assert_eq!(s.share_group(), Some("g1"));
        assert_eq!(s.pattern(), "a/+/c");
        assert_eq!(s.as_str(), "$share/g1/a/+/c");
        assert_eq!(f("$share/g/#").pattern(), "#");
        assert_eq!(TopicFilter::new("$share/g"), Err(TopicError::EmptySharedFilter));
        assert_eq!(TopicFilter::new("$share/g/"), Err(TopicError::EmptySharedFilter));
        assert_eq!(TopicFilter::new("$share//a"), Err(TopicError::InvalidShareName));
        assert_eq!(TopicFilter::new("$share/+/a"), Err(TopicError::InvalidShareName));
        assert_eq!(TopicFilter::new("$share/"), Err(TopicError::InvalidShareName));
        assert!(matches!(TopicFilter::new("$share/g/a+"), Err(TopicError::MisplacedWildcard { .. })));
        // Not a share prefix: an ordinary filter that happens to start with `$share`.
        assert_eq!(f("$shared/x").share_group(), None);
    }

    #[test]
    fn matching_follows_the_specification_examples() {
        // MQTT 3.1.1 section 4.7.1.2 and 4.7.1.3.
        assert!(f("sport/tennis/player1/#").matches(&t("sport/tennis/player1")));
        assert!(f("sport/tennis/player1/#").matches(&t("sport/tennis/player1/ranking")));
        assert!(f("sport/tennis/player1/#").matches(&t("sport/tennis/player1/score/wimbledon")));
        assert!(f("sport/#").matches(&t("sport")));
        assert!(f("sport/tennis/+").matches(&t("sport/tennis/player1")));
        assert!(!f("sport/tennis/+").matches(&t("sport/tennis/player1/ranking")));
        assert!(!f("sport/+").matches(&t("sport")));
        assert!(f("sport/+").matches(&t("sport/")));
        assert!(f("+/+").matches(&t("/finance")));
        assert!(f("/+").matches(&t("/finance")));
        assert!(!f("+").matches(&t("/finance")));
        assert!(f("#").matches(&t("a/b/c")));
        assert!(f("#").matches(&t("/")));
    }

    #[test]
    fn leading_wildcards_skip_dollar_topics() {
        assert!(!f("#").matches(&t("$SYS/broker/uptime")));
        assert!(!f("+/monitor/Clients").matches(&t("$SYS/monitor/Clients")));
        assert!(f("$SYS/#").matches(&t("$SYS/monitor/Clients")));
        assert!(f("$SYS/monitor/+").matches(&t("$SYS/monitor/Clients")));
        assert!(f("$share/g/$SYS/#").matches(&t("$SYS/x")));
        assert!(!f("$share/g/#").matches(&t("$SYS/x")));
    }
}
