//! Topic names, topic filters and the subscription trie.
//!
//! A [`TopicName`] is what a PUBLISH is sent to; a [`TopicFilter`] is what a SUBSCRIBE asks for
//! and may hold the wildcards `+` (one level) and `#` (this level and all below, last only).
//! Both are validated on construction, so code holding one never re-checks it.

mod error;
mod filter;
mod name;
mod trie;

pub use error::TopicError;
pub use filter::{SHARE_PREFIX, TopicFilter};
pub use name::TopicName;
pub use trie::{ClientMatches, Matches, SharedMatch, SubscriptionTree};

/// The longest topic name or filter the protocol can carry: a UTF-8 string has a 16-bit length.
pub const MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// Returns true when `s` starts with `$`, the mark of broker-reserved topics such as `$SYS/...`.
///
/// Filters that begin with a wildcard never match such topics (MQTT-4.7.2-1).
#[must_use]
pub fn is_dollar_topic(s: &str) -> bool {
    s.starts_with('$')
}
