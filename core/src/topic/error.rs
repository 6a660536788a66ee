use thiserror::Error;

/// Why a string is not a valid topic name or topic filter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    /// Topic names and filters must hold at least one character (MQTT-4.7.3-1).
    #[error("topic is empty; topic names and filters need at least one character")]
    Empty,
    /// Longer than the 65,535 bytes a UTF-8 string field can carry.
    #[error("topic is {0} bytes long; at most 65535 fit in a packet")]
    TooLong(usize),
    /// U+0000 is not allowed in any MQTT string (MQTT-4.7.3-2).
    #[error("topic contains the null character U+0000")]
    NulCharacter,
    /// `+` or `#` in a topic name, which must name one topic (MQTT-3.3.2-2).
    #[error("topic name contains the wildcard '{0}'; wildcards are only allowed in subscriptions")]
    WildcardInName(char),
    /// `+` or `#` not standing alone in its level, or `#` not in the last level (MQTT-4.7.1-2/3).
    #[error("wildcard '{wildcard}' must fill a whole level{}; found level {level:?}", if *.wildcard == '#' { " and be the last level" } else { "" })]
    MisplacedWildcard {
        /// The wildcard that was misplaced.
        wildcard: char,
        /// The offending level.
        level: String,
    },
    /// A `$share/` filter whose share name is empty or holds `/`, `+` or `#` (MQTT-4.8.2-1/2).
    #[error("shared subscription '$share/<group>/<filter>' needs a group name without '/', '+' or '#'")]
    InvalidShareName,
    /// A `$share/<group>` filter without the filter part after the group (MQTT-4.8.2-2).
    #[error("shared subscription '$share/<group>/<filter>' has no filter after the group")]
    EmptySharedFilter,
}
