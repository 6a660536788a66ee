//! The `auth` and `topic-check` sections: which plugins run, with which files.
//!
//! ```yaml
//! auth:
//!   plugins: [auth_anonymous, auth_file]   # absent: auth_anonymous, and auth_file if a file is set
//!   allow-anonymous: false                 # default true, as in the original
//!   password-file: /etc/moat/passwd        # user:hash lines ($6$, $7$, argon2id)
//! topic-check:
//!   enabled: true                          # default false: every topic allowed
//!   plugins: [topic_acl]                   # the default
//!   acl:                                   # user name to filters; `anonymous`: no user name
//!     username1: ['repositories/+/master', 'calendar/#']
//!     anonymous: []
//!   acl-file: /etc/moat/acl                # mosquitto's acl_file format (with or instead of acl)
//! ```
//! Loading the YAML checks names and filters; the files are read by
//! [`SecurityConfig::build`] when the broker starts (and the password file again on SIGHUP).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use moat_mqtt_core::auth::{
    AclFile, AclFileAuthorizer, AnonymousAuthenticator, FileAuthenticator, PasswordFile, Plugins, TopicAcl,
};

use super::node::{Node, Value};
use super::walk::{Entry, Schema, Walker, join};
use super::{ConfigError, Place};

/// The keys of `auth`.
pub(super) const AUTH: Schema = &[("plugins", &[]), ("allow-anonymous", &[]), ("password-file", &[])];

/// The keys of `topic-check`.
pub(super) const TOPIC_CHECK: Schema = &[("enabled", &[]), ("plugins", &[]), ("acl", &[]), ("acl-file", &[])];

/// The built-in authenticators, by the names `auth.plugins` uses.
const AUTH_PLUGINS: &[&str] = &["auth_anonymous", "auth_file"];
/// The built-in topic authorisers, by the names `topic-check.plugins` uses.
const TOPIC_PLUGINS: &[&str] = &["topic_acl"];

/// What the `auth` and `topic-check` sections ask for. Empty (the default): no plugins, so
/// every client may connect and use every topic.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// The authenticators to run, in order; empty when there is no `auth` section.
    pub authenticators: Vec<String>,
    /// `auth.allow-anonymous` (default true).
    pub allow_anonymous: bool,
    /// `auth.password-file`, and where it is written.
    pub password_file: Option<(PathBuf, Place)>,
    /// The topic authorisers to run; empty when topic checks are off.
    pub authorizers: Vec<String>,
    /// `topic-check.acl`: user name to filters, checked to be valid.
    pub acl: Option<TopicAcl>,
    /// `topic-check.acl-file`, and where it is written.
    pub acl_file: Option<(PathBuf, Place)>,
}

/// The plugins a broker runs, built from a [`SecurityConfig`].
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// What the router consults.
    pub plugins: Plugins,
    /// The password file, to re-read on SIGHUP.
    pub password_file: Option<PasswordFileHandle>,
    /// The ACL file, to re-read on SIGHUP.
    pub acl_file: Option<AclFileHandle>,
}

impl Security {
    /// Whether there is a file to re-read on SIGHUP.
    #[must_use]
    pub fn has_files(&self) -> bool {
        self.password_file.is_some() || self.acl_file.is_some()
    }

    /// Re-reads the password file and the ACL file: per file, what it now holds, or what is
    /// wrong with it (the one read before stays in use).
    #[must_use]
    pub fn reload_files(&self) -> Vec<Result<String, String>> {
        let mut outcomes = Vec::new();
        if let Some(file) = &self.password_file {
            outcomes.push(
                file.reload().map(|users| format!("password-file {} re-read: {users} users", file.path().display())),
            );
        }
        if let Some(file) = &self.acl_file {
            outcomes
                .push(file.reload().map(|rules| format!("acl-file {} re-read: {rules} rules", file.path().display())));
        }
        outcomes
    }
}

/// An ACL file in use, which can be re-read.
#[derive(Debug, Clone)]
pub struct AclFileHandle {
    path: PathBuf,
    authorizer: Arc<AclFileAuthorizer>,
}

impl AclFileHandle {
    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file again and, if it is good, uses it from now on; returns the number of
    /// `topic` and `pattern` lines. A bad file leaves the one in use in place.
    ///
    /// # Errors
    /// What is wrong with the file, naming it and the line.
    pub fn reload(&self) -> Result<usize, String> {
        let file = read_acl_file(&self.path)?;
        let rules = file.rules();
        self.authorizer.replace(file);
        Ok(rules)
    }
}

fn read_acl_file(path: &Path) -> Result<AclFile, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read acl-file {name}: {e}"))?;
    AclFile::parse(&name, &text).map_err(|e| format!("acl-file {e}"))
}

/// A password file in use, which can be re-read.
#[derive(Debug, Clone)]
pub struct PasswordFileHandle {
    path: PathBuf,
    authenticator: Arc<FileAuthenticator>,
}

impl PasswordFileHandle {
    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file again and, if it is good, uses it from now on; returns the number of
    /// users. A bad file leaves the one in use in place.
    ///
    /// # Errors
    /// What is wrong with the file, naming it (and the line).
    pub fn reload(&self) -> Result<usize, String> {
        let file = read_password_file(&self.path)?;
        let users = file.len();
        self.authenticator.replace(file);
        Ok(users)
    }
}

fn read_password_file(path: &Path) -> Result<PasswordFile, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read password-file {name}: {e}"))?;
    PasswordFile::parse(&name, &text).map_err(|e| e.to_string())
}

impl SecurityConfig {
    /// Reads the files and builds the plugins.
    ///
    /// # Errors
    /// A file that cannot be read, or a line in it that cannot be used, named with its path
    /// and line, and where the configuration names the file.
    pub fn build(&self) -> Result<Security, String> {
        let mut security = Security::default();
        for name in &self.authenticators {
            match name.as_str() {
                "auth_anonymous" => {
                    security.plugins = std::mem::take(&mut security.plugins)
                        .with_authenticator(Arc::new(AnonymousAuthenticator::new(self.allow_anonymous)));
                }
                "auth_file" => {
                    let Some((path, at)) = &self.password_file else { continue };
                    let file = read_password_file(path).map_err(|e| format!("{e} (auth.password-file, {at})"))?;
                    log::info!("password-file {}: {} users", path.display(), file.len());
                    let authenticator = Arc::new(FileAuthenticator::new(file));
                    security.plugins = std::mem::take(&mut security.plugins).with_authenticator(authenticator.clone());
                    security.password_file = Some(PasswordFileHandle { path: path.clone(), authenticator });
                }
                _ => {}
            }
        }
        if self.authorizers.iter().any(|n| n == "topic_acl") {
            if let Some(acl) = &self.acl {
                security.plugins = std::mem::take(&mut security.plugins).with_authorizer(Arc::new(acl.clone()));
            }
            if let Some((path, at)) = &self.acl_file {
                let acl = read_acl_file(path).map_err(|e| format!("{e} (topic-check.acl-file, {at})"))?;
                let authorizer = Arc::new(AclFileAuthorizer::new(acl));
                security.plugins = std::mem::take(&mut security.plugins).with_authorizer(authorizer.clone());
                security.acl_file = Some(AclFileHandle { path: path.clone(), authorizer });
            }
        }
        Ok(security)
    }
}

/// A list of plugin names from `known`, in order.
fn plugin_names(w: &Walker, path: &str, node: &Node, known: &[&str]) -> Result<Vec<String>, ConfigError> {
    let Value::Seq(items) = &node.value else {
        return Err(w.expected(path, node, &format!("a list of plugin names ({})", known.join(", "))));
    };
    let mut names = Vec::new();
    for item in items {
        let name = w.text(path, item)?;
        if !known.contains(&name.as_str()) {
            return Err(w.error(
                path,
                item.pos,
                format!("unknown plugin {name:?}; this broker has {}", known.join(", ")),
            ));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Reads the `auth` section.
pub(super) fn auth(w: &mut Walker, path: &str, node: &Node, security: &mut SecurityConfig) -> Result<(), ConfigError> {
    let mut plugins = None;
    let mut file_pos = node.pos;
    security.allow_anonymous = true;
    for Entry { name, key, node } in w.mapping(path, node, AUTH)? {
        let path = join(path, &key.text);
        let path = path.as_str();
        match name {
            "plugins" => plugins = Some((plugin_names(w, path, node, AUTH_PLUGINS)?, node.pos)),
            "allow-anonymous" => security.allow_anonymous = w.boolean(path, node)?,
            _ => {
                file_pos = node.pos;
                security.password_file = Some((PathBuf::from(w.text(path, node)?), w.place(node.pos)));
            }
        }
    }
    security.authenticators = match plugins {
        Some((names, pos)) => {
            if names.iter().any(|n| n == "auth_file") && security.password_file.is_none() {
                return Err(w.error(
                    &join(path, "plugins"),
                    pos,
                    "lists auth_file, but auth.password-file is not set; set it or remove auth_file",
                ));
            }
            if security.password_file.is_some() && !names.iter().any(|n| n == "auth_file") {
                w.warn(file_pos, "auth.password-file is not used: auth.plugins does not list auth_file");
            }
            names
        }
        None => {
            let mut names = vec!["auth_anonymous".to_owned()];
            if security.password_file.is_some() {
                names.push("auth_file".to_owned());
            }
            names
        }
    };
    Ok(())
}

/// Reads the `topic-check` section.
pub(super) fn topic_check(
    w: &mut Walker,
    path: &str,
    node: &Node,
    security: &mut SecurityConfig,
) -> Result<(), ConfigError> {
    let mut enabled = false;
    let mut plugins = vec!["topic_acl".to_owned()];
    let at = node.pos;
    for Entry { name, key, node } in w.mapping(path, node, TOPIC_CHECK)? {
        let path = join(path, &key.text);
        let path = path.as_str();
        match name {
            "enabled" => enabled = w.boolean(path, node)?,
            "plugins" => plugins = plugin_names(w, path, node, TOPIC_PLUGINS)?,
            "acl" => security.acl = Some(acl(w, path, node)?),
            _ => security.acl_file = Some((PathBuf::from(w.text(path, node)?), w.place(node.pos))),
        }
    }
    if !enabled {
        if security.acl.is_some() || security.acl_file.is_some() {
            w.warn(at, "topic-check.enabled is off: the ACL is not applied");
        }
        return Ok(());
    }
    if plugins.iter().any(|p| p == "topic_acl") && security.acl.is_none() && security.acl_file.is_none() {
        return Err(w.error(path, at, "topic_acl needs topic-check.acl or topic-check.acl-file"));
    }
    security.authorizers = plugins;
    Ok(())
}

/// `topic-check.acl`: user names to lists of filters.
fn acl(w: &mut Walker, path: &str, node: &Node) -> Result<TopicAcl, ConfigError> {
    let mut grants = Vec::new();
    for (key, value) in w.pairs(path, node)? {
        let user_path = join(path, &key.text);
        let filters = match &value.value {
            Value::Null => Vec::new(),
            Value::Seq(items) => {
                let mut filters = Vec::new();
                for item in items {
                    let filter = w.text(&user_path, item)?;
                    if let Err(e) = moat_mqtt_core::topic::TopicFilter::new(filter.clone()) {
                        return Err(w.error(&user_path, item.pos, format!("{filter:?} is not a topic filter: {e}")));
                    }
                    filters.push(filter);
                }
                filters
            }
            _ => return Err(w.expected(&user_path, value, "a list of topic filters")),
        };
        grants.push((key.text.clone(), filters));
    }
    TopicAcl::new(grants).map_err(|e| w.error(path, node.pos, e.to_string()))
}
