//! The built-in authenticators: `auth_anonymous` and `auth_file`.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::hashing_threads::off_thread;
use super::{AuthDecision, AuthFuture, Authenticator, Credentials, Refusal, StoredHash};

/// A password file as read: `user:hash` lines, `#` comments and blank lines.
///
/// Parsing is pure; reading the file (and re-reading it on SIGHUP) is the caller's business.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, StoredHash>,
}

/// A password file line that cannot be used; the whole file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password-file {file} line {line}: {problem}")]
pub struct PasswordFileError {
    /// The file's name as given to [`PasswordFile::parse`].
    pub file: String,
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong and what to do.
    pub problem: String,
}

impl PasswordFile {
    /// Reads the text of a password file; `source` names it in errors.
    ///
    /// # Errors
    /// [`PasswordFileError`] naming the first bad line: no `:`, an empty user name, a user
    /// named twice, a plaintext password, or a hash this broker cannot read.
    pub fn parse(source: &str, text: &str) -> Result<Self, PasswordFileError> {
        let mut users = HashMap::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let fail = |problem: String| PasswordFileError { file: source.to_owned(), line, problem };
            let trimmed = raw.trim_end_matches('\r');
            if trimmed.trim().is_empty() || trimmed.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, hash)) = trimmed.split_once(':') else {
                return Err(fail("expected user:hash".to_owned()));
            };
            if user.is_empty() {
                return Err(fail("empty user name".to_owned()));
            }
            if let Some(first) = seen.insert(user.to_owned(), line) {
                return Err(fail(format!("user {user} appears again (first on line {first}); keep one line per user")));
            }
            let hash = StoredHash::parse(hash).map_err(|e| match e {
                super::HashError::Plaintext => {
                    fail(format!("plaintext password for user {user}; hash it with `moat mqtt passwd`"))
                }
                other => fail(format!("user {user}: {other}; set it again with `moat mqtt passwd`")),
            })?;
            users.insert(user.to_owned(), hash);
        }
        Ok(Self { users })
    }

    /// The stored hash of `user`.
    #[must_use]
    pub fn get(&self, user: &str) -> Option<&StoredHash> {
        self.users.get(user)
    }

    /// How many users the file holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file holds no user.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// `auth_file`: clients with a user name must give its password from a [`PasswordFile`].
///
/// A client without a user name gets no opinion (see [`AnonymousAuthenticator`]); an unknown
/// user or a missing or wrong password is refused with CONNACK 4. The password is verified in
/// [`authenticate_later`](Authenticator::authenticate_later), outside the router's lock and on
/// a few password-checking threads of its own (at most 4), because a good hash is slow on
/// purpose: a burst of logins waits its turn there instead of stalling the runtime's workers. [`replace`](Self::replace) swaps in a re-read file
/// (SIGHUP); logins under way finish against the file they started with.
#[derive(Debug)]
pub struct FileAuthenticator {
    file: RwLock<Arc<PasswordFile>>,
}

impl FileAuthenticator {
    /// An authenticator over `file`.
    #[must_use]
    pub fn new(file: PasswordFile) -> Self {
        Self { file: RwLock::new(Arc::new(file)) }
    }

    /// Replaces the password file; later logins use the new one.
    pub fn replace(&self, file: PasswordFile) {
        *self.file.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(file);
    }

    fn current(&self) -> Arc<PasswordFile> {
        Arc::clone(&self.file.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Authenticator for FileAuthenticator {
    fn name(&self) -> &str {
        "auth_file"
    }

    fn authenticate(&self, credentials: &Credentials) -> AuthDecision {
        let Some(user) = &credentials.username else { return AuthDecision::NoOpinion };
        if credentials.password.is_none() || self.current().get(user).is_none() {
            return AuthDecision::Deny(Refusal::BadCredentials);
        }
        AuthDecision::Pending
    }

    fn authenticate_later(&self, credentials: Credentials) -> AuthFuture {
        let file = self.current();
        // On the password-checking threads, not the runtime's: see `hashing_threads`.
        let verified = off_thread(move || {
            let (Some(user), Some(password)) = (&credentials.username, &credentials.password) else {
                return false;
            };
            file.get(user).is_some_and(|hash| hash.verify(password))
        });
        Box::pin(async move {
            match verified.await {
                Some(true) => AuthDecision::Allow,
                _ => AuthDecision::Deny(Refusal::BadCredentials),
            }
        })
    }
}

/// `auth_anonymous`: decides about clients without a user name (`allow-anonymous`).
///
/// Allowed: such clients are accepted. Not allowed: refused with CONNACK 5 (not authorised).
/// Clients with a user name get no opinion: `auth_file` (or another plugin) judges them.
#[derive(Debug, Clone, Copy)]
pub struct AnonymousAuthenticator {
    allow: bool,
}

impl AnonymousAuthenticator {
    /// `allow`: the `allow-anonymous` setting.
    #[must_use]
    pub fn new(allow: bool) -> Self {
        Self { allow }
    }
}

impl Authenticator for AnonymousAuthenticator {
    fn name(&self) -> &str {
        "auth_anonymous"
    }

    fn authenticate(&self, credentials: &Credentials) -> AuthDecision {
        match (&credentials.username, self.allow) {
            (Some(_), _) => AuthDecision::NoOpinion,
            (None, true) => AuthDecision::Allow,
            (None, false) => AuthDecision::Deny(Refusal::NotAuthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PBKDF2: &str = "$7$101$ii1USBgtQHuWHktC$2+QDASCECko17qQC/7WMhSSvQqI28zX7+1LoSfDS2qJXzeFN7Ibcmn/e5eC84reaVunT9PJyocnsGNGUG4720g==";

    #[test]
    fn parses_lines_comments_and_blanks() {
        let text = format!("# users\n\nalice:{PBKDF2}\r\n  # indented comment\nbob:{PBKDF2}\n");
        let file = PasswordFile::parse("p", &text).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.get("alice").unwrap().verify(b"secret"));
        assert!(file.get("carol").is_none());
    }

    #[test]
    fn errors_name_the_file_line_and_user() {
        let err = PasswordFile::parse("/etc/moat/passwd", &format!("alice:{PBKDF2}\n\nbob:hunter2\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "password-file /etc/moat/passwd line 3: plaintext password for user bob; hash it with `moat mqtt passwd`"
        );
        let err = PasswordFile::parse("f", "carol:$1$abc$def\n").unwrap_err();
        assert!(err.to_string().starts_with("password-file f line 1: user carol: unknown hash format `$1$`"), "{err}");
        assert_eq!(PasswordFile::parse("f", "no colon\n").unwrap_err().line, 1);
        assert_eq!(PasswordFile::parse("f", ":$7$1$a$b\n").unwrap_err().problem, "empty user name");
        let twice = format!("a:{PBKDF2}\na:{PBKDF2}\n");
        assert!(PasswordFile::parse("f", &twice).unwrap_err().problem.contains("first on line 1"));
    }

    fn creds(user: Option<&str>, password: Option<&'static str>) -> Credentials {
        Credentials {
            client_id: "c".into(),
            username: user.map(Into::into),
            password: password.map(|p| bytes::Bytes::from_static(p.as_bytes())),
        }
    }

    fn run(future: AuthFuture) -> AuthDecision {
        super::super::hashing_threads::block_on(future)
    }

    #[test]
    fn file_authenticator_decisions() {
        let auth = FileAuthenticator::new(PasswordFile::parse("p", &format!("alice:{PBKDF2}\n")).unwrap());
        assert_eq!(auth.authenticate(&creds(None, None)), AuthDecision::NoOpinion);
        assert_eq!(auth.authenticate(&creds(Some("bob"), Some("x"))), AuthDecision::Deny(Refusal::BadCredentials));
        assert_eq!(auth.authenticate(&creds(Some("alice"), None)), AuthDecision::Deny(Refusal::BadCredentials));
        assert_eq!(auth.authenticate(&creds(Some("alice"), Some("secret"))), AuthDecision::Pending);
        assert_eq!(run(auth.authenticate_later(creds(Some("alice"), Some("secret")))), AuthDecision::Allow);
        assert_eq!(
            run(auth.authenticate_later(creds(Some("alice"), Some("wrong")))),
            AuthDecision::Deny(Refusal::BadCredentials)
        );
        auth.replace(PasswordFile::default());
        assert_eq!(
            auth.authenticate(&creds(Some("alice"), Some("secret"))),
            AuthDecision::Deny(Refusal::BadCredentials)
        );
    }

    #[test]
    fn anonymous_authenticator_decisions() {
        assert_eq!(AnonymousAuthenticator::new(true).authenticate(&creds(None, None)), AuthDecision::Allow);
        assert_eq!(
            AnonymousAuthenticator::new(false).authenticate(&creds(None, None)),
            AuthDecision::Deny(Refusal::NotAuthorized)
        );
        assert_eq!(AnonymousAuthenticator::new(false).authenticate(&creds(Some("a"), None)), AuthDecision::NoOpinion);
    }
}
