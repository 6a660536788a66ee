//! The built-in topic authorisers: the `acl` mapping and mosquitto's `acl_file` format.
//!
//! Semantics, the same for both:
//! - a PUBLISH to topic `t` is allowed by a grant whose filter matches `t`;
//! - a SUBSCRIBE filter `f` is allowed only by a grant that matches every topic `f` can match
//!   ([`filter_covers`]): a grant of `a/+` allows `a/+` and `a/b`, not `a/#` nor `+/b`;
//! - `$` topics follow the matching rules of MQTT: a grant that begins with a wildcard (`#`,
//!   `+/x`) does not reach `$SYS/...` or any other `$` topic; grant `$SYS/#` for that.
//!
//! In an ACL file, `deny` lines win over every grant, wherever they stand (as in mosquitto): a
//! publish or delivery to a topic a deny line matches is refused, and so is a subscription
//! whose every topic a deny line matches. A subscription that merely overlaps a deny line
//! (`#` beside `topic deny secret`) is granted, and messages on the denied topics are not
//! delivered through it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::{ClientInfo, TopicAccess, TopicAuthorizer, Verdict};
use crate::topic::TopicFilter;

/// Whether every topic that `filter` matches is matched by `grant`. Both are filters as text
/// (`filter` may be a plain topic name, which then must match `grant`).
///
/// `#` matches its parent level (`a/#` covers `a`); a grant whose first level is a wildcard
/// does not cover topics beginning with `$`.
#[must_use]
pub fn filter_covers(grant: &str, filter: &str) -> bool {
    let first_filter = filter.split('/').next().unwrap_or("");
    if first_filter.starts_with('$') && grant.starts_with(['+', '#']) {
        return false;
    }
    let mut g = grant.split('/');
    let mut f = filter.split('/');
    loop {
        match (g.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(_), Some("+")) => return false,
            (Some(gl), Some(fl)) if gl == fl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A grant or refusal that cannot be used; names where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {problem}")]
pub struct AclError {
    /// The file (or `topic-check.acl`) it comes from.
    pub file: String,
    /// The line in the file (for the `acl` mapping: the position of the entry, from 1).
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// `topic_acl` with the `topic-check.acl` mapping: user name to the filters it may publish to
/// and subscribe to; `anonymous` stands for clients without a user name. A user not in the
/// mapping may do nothing.
#[derive(Debug, Clone, Default)]
pub struct TopicAcl {
    grants: HashMap<String, Vec<String>>,
}

impl TopicAcl {
    /// The ACL of `grants` (user name to filters).
    ///
    /// # Errors
    /// [`AclError`] for a filter that is not a valid topic filter.
    pub fn new<I, U, F>(grants: I) -> Result<Self, AclError>
    where
        I: IntoIterator<Item = (U, Vec<F>)>,
        U: Into<String>,
        F: Into<String>,
    {
        let mut map = HashMap::new();
        for (user, filters) in grants {
            let user = user.into();
            let mut checked = Vec::new();
            for (i, filter) in filters.into_iter().enumerate() {
                let filter = filter.into();
                if let Err(e) = TopicFilter::new(filter.clone()) {
                    return Err(AclError {
                        file: "topic-check.acl".to_owned(),
                        line: i + 1,
                        problem: format!("user {user}: {filter:?} is not a topic filter: {e}"),
                    });
                }
                checked.push(filter);
            }
            map.insert(user, checked);
        }
        Ok(Self { grants: map })
    }
}

impl TopicAuthorizer for TopicAcl {
    fn name(&self) -> &str {
        "topic_acl"
    }

    fn authorize(&self, client: &ClientInfo<'_>, access: TopicAccess<'_>) -> Verdict {
        let target = match access {
            TopicAccess::Publish(topic) => topic.as_str(),
            TopicAccess::Subscribe(filter) => filter.pattern(),
            // Granted subscriptions only reach what the grants cover.
            TopicAccess::Receive(_) => return Verdict::NoOpinion,
        };
        let grants = self.grants.get(client.username.unwrap_or("anonymous"));
        if grants.is_some_and(|grants| grants.iter().any(|g| filter_covers(g, target))) {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }
}

/// What an ACL line allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    fn reads(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }

    fn writes(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    access: Access,
    topic: String,
}

/// `topic_acl` with mosquitto's `acl_file` format (`topic-check.acl-file`).
///
/// ```text
/// # topics before the first `user` line: clients without a user name
/// topic read public/#
/// user alice
/// topic readwrite alice/#
/// topic deny alice/secret
/// # patterns apply to every client: %u is its user name, %c its client id
/// pattern write clients/%c/status
/// pattern readwrite users/%u/#
/// ```
/// `read` allows subscribing and receiving, `write` publishing, `readwrite` (the default when
/// no access is written) both, `deny` refuses whatever the other lines grant. A pattern with
/// `%u` does not apply to clients without a user name, and neither `%u` nor `%c` is
/// substituted by a value holding `+`, `#` or `/` (the line then does not apply).
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    anonymous: Vec<Entry>,
    users: HashMap<String, Vec<Entry>>,
    patterns: Vec<Entry>,
}

impl AclFile {
    /// Reads the text of an ACL file; `source` names it in errors.
    ///
    /// # Errors
    /// [`AclError`] naming the first line that is not a comment, `user <name>`,
    /// `topic [read|write|readwrite|deny] <topic>` or `pattern [...] <topic>` with a valid
    /// topic filter.
    pub fn parse(source: &str, text: &str) -> Result<Self, AclError> {
        let mut acl = Self::default();
        let mut user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let fail = |problem: String| AclError { file: source.to_owned(), line: index + 1, problem };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(fail("`user` needs a user name".to_owned()));
                    }
                    user = Some(rest.to_owned());
                    acl.users.entry(rest.to_owned()).or_default();
                }
                "topic" | "pattern" => {
                    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let (access, topic) = match first {
                        "read" => (Access::Read, after.trim()),
                        "write" => (Access::Write, after.trim()),
                        "readwrite" => (Access::ReadWrite, after.trim()),
                        "deny" => (Access::Deny, after.trim()),
                        _ => (Access::ReadWrite, rest),
                    };
                    if topic.is_empty() {
                        return Err(fail(format!("`{keyword}` needs a topic")));
                    }
                    if let Err(e) = TopicFilter::new(topic.to_owned()) {
                        return Err(fail(format!("{topic:?} is not a topic filter: {e}")));
                    }
                    let entry = Entry { access, topic: topic.to_owned() };
                    match (keyword, &user) {
                        ("pattern", _) => acl.patterns.push(entry),
                        (_, Some(user)) => acl.users.entry(user.clone()).or_default().push(entry),
                        (_, None) => acl.anonymous.push(entry),
                    }
                }
                other => {
                    return Err(fail(format!("unknown keyword {other:?}; expected `user`, `topic` or `pattern`")));
                }
            }
        }
        Ok(acl)
    }

    /// The `topic` and `pattern` lines it holds.
    #[must_use]
    pub fn rules(&self) -> usize {
        self.anonymous.len() + self.users.values().map(Vec::len).sum::<usize>() + self.patterns.len()
    }

    /// The lines that apply to `client`, patterns substituted.
    fn entries(&self, client: &ClientInfo<'_>) -> Vec<Entry> {
        let own = match client.username {
            Some(user) => self.users.get(user).map_or(&[][..], Vec::as_slice),
            None => &self.anonymous,
        };
        let mut entries = own.to_vec();
        let safe = |s: &str| !s.contains(['+', '#', '/']);
        for pattern in &self.patterns {
            let mut topic = pattern.topic.clone();
            if topic.contains("%u") {
                match client.username {
                    Some(user) if safe(user) => topic = topic.replace("%u", user),
                    _ => continue,
                }
            }
            if topic.contains("%c") {
                if !safe(client.client_id) {
                    continue;
                }
                topic = topic.replace("%c", client.client_id);
            }
            entries.push(Entry { access: pattern.access, topic });
        }
        entries
    }
}

impl TopicAuthorizer for AclFile {
    fn name(&self) -> &str {
        "topic_acl"
    }

    fn authorize(&self, client: &ClientInfo<'_>, access: TopicAccess<'_>) -> Verdict {
        let entries = self.entries(client);
        let (target, wanted): (&str, fn(Access) -> bool) = match access {
            TopicAccess::Publish(topic) => (topic.as_str(), Access::writes),
            TopicAccess::Receive(topic) => (topic.as_str(), Access::reads),
            TopicAccess::Subscribe(filter) => (filter.pattern(), Access::reads),
        };
        let denied = entries.iter().any(|e| e.access == Access::Deny && filter_covers(&e.topic, target));
        if denied {
            return Verdict::Deny;
        }
        if entries.iter().any(|e| wanted(e.access) && filter_covers(&e.topic, target)) {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }
}

/// `topic_acl` over an [`AclFile`] that can be replaced while the broker runs (SIGHUP):
/// checks made after [`replace`](Self::replace) use the new file.
#[derive(Debug, Default)]
pub struct AclFileAuthorizer {
    file: RwLock<Arc<AclFile>>,
}

impl AclFileAuthorizer {
    /// An authorizer over `file`.
    #[must_use]
    pub fn new(file: AclFile) -> Self {
        Self { file: RwLock::new(Arc::new(file)) }
    }

    /// Replaces the ACL file; later checks use the new one.
    pub fn replace(&self, file: AclFile) {
        *self.file.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(file);
    }
}

impl TopicAuthorizer for AclFileAuthorizer {
    fn name(&self) -> &str {
        "topic_acl"
    }

    fn authorize(&self, client: &ClientInfo<'_>, access: TopicAccess<'_>) -> Verdict {
        let file = Arc::clone(&self.file.read().unwrap_or_else(PoisonError::into_inner));
        file.authorize(client, access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::TopicName;

    #[test]
    fn a_replaced_acl_file_applies_to_later_checks() {
        let client = ClientInfo { client_id: "c", username: Some("alice") };
        let topic = TopicName::new("b/x".to_owned()).unwrap();
        let acl = AclFileAuthorizer::new(AclFile::parse("acl", "user alice\ntopic a/#\n").unwrap());
        assert_eq!(acl.authorize(&client, TopicAccess::Publish(&topic)), Verdict::Deny);
        let wider = AclFile::parse("acl", "user alice\ntopic a/#\ntopic write b/#\n").unwrap();
        assert_eq!(wider.rules(), 2);
        acl.replace(wider);
        assert_eq!(acl.authorize(&client, TopicAccess::Publish(&topic)), Verdict::Allow);
        assert_eq!(acl.authorize(&client, TopicAccess::Receive(&topic)), Verdict::Deny);
    }

    #[test]
    fn covering() {
        let yes = [
            ("a/+", "a/+"),
            ("a/+", "a/b"),
            ("a/#", "a"),
            ("a/#", "a/#"),
            ("a/#", "a/+/c"),
            ("#", "#"),
            ("#", "a/b"),
            ("+/+", "a/+"),
            ("$SYS/#", "$SYS/broker/uptime"),
            ("$SYS/#", "$SYS/#"),
            ("a//b", "a//b"),
            ("+", ""),
        ];
        let no = [
            ("a/+", "a/#"),
            ("a/+", "a"),
            ("a/+", "+/b"),
            ("a/b", "a/+"),
            ("a", "a/b"),
            ("a/b", "a"),
            ("#", "$SYS/broker/uptime"),
            ("#", "$SYS/#"),
            ("+/broker/uptime", "$SYS/broker/uptime"),
            ("a/+/c", "a/#"),
            ("a/#", "b"),
        ];
        for (grant, filter) in yes {
            assert!(filter_covers(grant, filter), "{grant} should cover {filter}");
        }
        for (grant, filter) in no {
            assert!(!filter_covers(grant, filter), "{grant} should not cover {filter}");
        }
    }

    /// The definition: `g` covers a topic name exactly when it matches it.
    #[test]
    fn covering_a_topic_is_matching_it() {
        let grants = ["#", "+", "a/#", "a/+", "+/b", "a/b", "$SYS/#", "+/+/+", "a/+/#"];
        let topics = ["a", "a/b", "a/b/c", "b", "$SYS", "$SYS/x", "/", "a/", "$x/b"];
        for g in grants {
            let filter = TopicFilter::new(g).unwrap();
            for t in topics {
                assert_eq!(filter_covers(g, t), filter.matches(&TopicName::new(t).unwrap()), "{g} vs {t}");
            }
        }
    }

    fn client<'a>(user: Option<&'a str>, id: &'a str) -> ClientInfo<'a> {
        ClientInfo { client_id: id, username: user }
    }

    fn publish(acl: &dyn TopicAuthorizer, c: &ClientInfo<'_>, t: &str) -> Verdict {
        acl.authorize(c, TopicAccess::Publish(&TopicName::new(t).unwrap()))
    }

    fn subscribe(acl: &dyn TopicAuthorizer, c: &ClientInfo<'_>, f: &str) -> Verdict {
        acl.authorize(c, TopicAccess::Subscribe(&TopicFilter::new(f).unwrap()))
    }

    fn receive(acl: &dyn TopicAuthorizer, c: &ClientInfo<'_>, t: &str) -> Verdict {
        acl.authorize(c, TopicAccess::Receive(&TopicName::new(t).unwrap()))
    }

    #[test]
    fn mapping_acl() {
        let acl = TopicAcl::new([
            ("username1", vec!["repositories/+/master", "calendar/#"]),
            ("anonymous", vec![]),
            ("admin", vec!["#", "$SYS/#"]),
        ])
        .unwrap();
        let u1 = client(Some("username1"), "c1");
        assert_eq!(publish(&acl, &u1, "repositories/moat/master"), Verdict::Allow);
        assert_eq!(publish(&acl, &u1, "repositories/moat/dev"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &u1, "repositories/+/master"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &u1, "repositories/#"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &u1, "calendar/2026/#"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &u1, "$share/g/calendar/#"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &u1, "$share/g/other/#"), Verdict::Deny);
        let anon = client(None, "c2");
        assert_eq!(publish(&acl, &anon, "calendar/x"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &client(Some("stranger"), "c"), "calendar/x"), Verdict::Deny);
        let admin = client(Some("admin"), "c3");
        assert_eq!(subscribe(&acl, &admin, "#"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &admin, "$SYS/broker/#"), Verdict::Allow);
        assert_eq!(receive(&acl, &anon, "anything"), Verdict::NoOpinion);
        assert!(TopicAcl::new([("u", vec!["a/#/b"])]).unwrap_err().problem.contains("u: \"a/#/b\""));
    }

    #[test]
    fn acl_file_deny_then_readwrite_all() {
        let acl = AclFile::parse("acl", "topic deny test/nosubscribe\ntopic readwrite #\n").unwrap();
        let anon = client(None, "c");
        assert_eq!(subscribe(&acl, &anon, "test/nosubscribe"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &anon, "test/subscribe"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &anon, "test/#"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &anon, "#"), Verdict::Allow);
        assert_eq!(receive(&acl, &anon, "test/nosubscribe"), Verdict::Deny);
        assert_eq!(publish(&acl, &anon, "test/nosubscribe"), Verdict::Deny);
        assert_eq!(publish(&acl, &anon, "test/x"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &anon, "$SYS/#"), Verdict::Deny);
        // The general lines are for clients without a user name.
        assert_eq!(publish(&acl, &client(Some("bob"), "c"), "test/x"), Verdict::Deny);
    }

    #[test]
    fn acl_file_users_access_and_patterns() {
        let text = "\
# comment
topic read public/#
user alice
topic readwrite alice/#
topic write inbox/alice
topic read $SYS/broker/clients/#
user bob smith
topic bob/#
pattern write clients/%c/status
pattern readwrite users/%u/#
";
        let acl = AclFile::parse("acl", text).unwrap();
        let alice = client(Some("alice"), "dev-1");
        let bob = client(Some("bob smith"), "dev/2");
        let anon = client(None, "anon-1");
        assert_eq!(subscribe(&acl, &anon, "public/#"), Verdict::Allow);
        assert_eq!(publish(&acl, &anon, "public/x"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &alice, "public/#"), Verdict::Deny);
        assert_eq!(publish(&acl, &alice, "alice/x"), Verdict::Allow);
        assert_eq!(publish(&acl, &alice, "inbox/alice"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &alice, "inbox/alice"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &alice, "$SYS/broker/clients/connected"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &alice, "$SYS/broker/#"), Verdict::Deny);
        assert_eq!(publish(&acl, &bob, "bob/x"), Verdict::Allow);
        // %c and %u
        assert_eq!(publish(&acl, &alice, "clients/dev-1/status"), Verdict::Allow);
        assert_eq!(publish(&acl, &alice, "clients/dev-2/status"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &alice, "clients/dev-1/status"), Verdict::Deny);
        assert_eq!(subscribe(&acl, &alice, "users/alice/#"), Verdict::Allow);
        assert_eq!(subscribe(&acl, &alice, "users/bob/#"), Verdict::Deny);
        assert_eq!(publish(&acl, &anon, "clients/anon-1/status"), Verdict::Allow);
        assert_eq!(publish(&acl, &anon, "users//x"), Verdict::Deny);
        // A client id with '/' is not substituted.
        assert_eq!(publish(&acl, &bob, "clients/dev/2/status"), Verdict::Deny);
        let wild = client(Some("+"), "#");
        assert_eq!(subscribe(&acl, &wild, "users/+/#"), Verdict::Deny);
    }

    #[test]
    fn acl_file_errors_name_the_line() {
        let err = AclFile::parse("/etc/acl", "user a\ntopic readwrite a/#/b\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("/etc/acl line 2: \"a/#/b\" is not a topic filter"), "{err}");
        assert_eq!(AclFile::parse("f", "user\n").unwrap_err().line, 1);
        assert_eq!(AclFile::parse("f", "topic read\n").unwrap_err().line, 1);
        assert!(AclFile::parse("f", "\n\nallow all\n").unwrap_err().problem.contains("unknown keyword \"allow\""));
        // A topic without access is readwrite.
        let acl = AclFile::parse("f", "topic x/y\n").unwrap();
        assert_eq!(publish(&acl, &client(None, "c"), "x/y"), Verdict::Allow);
    }
}
