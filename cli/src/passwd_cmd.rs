//! `moat mqtt passwd`: manage a password file, with mosquitto_passwd's options.
//!
//! ```text
//! moat mqtt passwd [-H argon2id|sha512-pbkdf2|sha512] [-c | -D] FILE USER
//! moat mqtt passwd [-H ...] [-c] -b FILE USER PASSWORD
//! ```
//! Lines of other users and comments are kept as they are; the file is replaced atomically
//! (written beside it, then renamed) and created readable by its owner only.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use moat_mqtt_core::auth::{HashScheme, hash_password};

/// Manage a password file for `auth.password-file` (mosquitto_passwd's options and formats).
///
/// Adds or updates USER (asking for the password twice, without echo), or deletes it with -D.
/// Files written with `-H sha512-pbkdf2` are read by mosquitto 2.0 too; argon2id (the default)
/// by mosquitto 2.1.
#[derive(Debug, Parser)]
#[command(name = "moat mqtt passwd")]
pub(crate) struct PasswdArgs {
    /// Create a new password file, replacing any file there.
    #[arg(short = 'c', conflicts_with = "delete")]
    create: bool,
    /// Delete USER instead of adding or updating it.
    #[arg(short = 'D', conflicts_with = "batch")]
    delete: bool,
    /// Batch mode: take the password from the command line (it shows in `ps` and the shell's
    /// history: for scripts and tests).
    #[arg(short = 'b')]
    batch: bool,
    /// The hash: argon2id (strongest, the default), sha512-pbkdf2 (mosquitto 2.0's `$7$`) or
    /// sha512 (SHA-512 crypt `$6$`, as the original MoaT-MQTT).
    #[arg(short = 'H', value_name = "HASH", default_value = "argon2id", value_parser = parse_scheme)]
    hash: HashScheme,
    /// The password file.
    file: PathBuf,
    /// The user name.
    user: String,
    /// The password (with -b only).
    password: Option<String>,
}

fn parse_scheme(name: &str) -> Result<HashScheme, String> {
    HashScheme::from_name(name).ok_or_else(|| format!("unknown hash {name:?}; use argon2id, sha512-pbkdf2 or sha512"))
}

/// Parses `args` (the words after `passwd`) and runs the command.
///
/// # Errors
/// Bad arguments, a password that cannot be read, or a file that cannot be read or written.
pub(crate) fn run_from(args: &[String]) -> anyhow::Result<()> {
    let words = std::iter::once("moat mqtt passwd".to_owned()).chain(args.iter().cloned());
    let args = match PasswdArgs::try_parse_from(words) {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print, and succeed.
            e.print()?;
            return Ok(());
        }
        Err(e) => bail!("{}", e.to_string().trim_end().trim_start_matches("error: ")),
    };
    run(&args)
}

/// Runs `moat mqtt passwd`.
///
/// # Errors
/// As [`run_from`].
pub(crate) fn run(args: &PasswdArgs) -> anyhow::Result<()> {
    check_user(&args.user)?;
    if args.batch != args.password.is_some() {
        bail!(if args.batch {
            "-b needs the password after the user name: moat mqtt passwd -b FILE USER PASSWORD"
        } else {
            "a password on the command line needs -b (or leave it out to be asked for it)"
        });
    }
    let lines = if args.create { Vec::new() } else { read_lines(&args.file)? };
    let lines = if args.delete {
        let before = lines.len();
        let kept: Vec<String> = lines.into_iter().filter(|l| user_of(l) != Some(args.user.as_str())).collect();
        if kept.len() == before {
            bail!("user {} is not in {}", args.user, args.file.display());
        }
        kept
    } else {
        let password = match &args.password {
            Some(password) => password.clone(),
            None => ask_password()?,
        };
        if password.contains(['\n', '\r']) {
            bail!("the password may not hold a line break");
        }
        let hash = hash_password(args.hash, password.as_bytes())?;
        let line = format!("{}:{hash}", args.user);
        let mut lines = lines;
        match lines.iter_mut().find(|l| user_of(l) == Some(args.user.as_str())) {
            Some(existing) => *existing = line,
            None => lines.push(line),
        }
        lines
    };
    write_atomically(&args.file, &lines)
}

/// User names that fit a `user:hash` line.
fn check_user(user: &str) -> anyhow::Result<()> {
    if user.is_empty() {
        bail!("the user name is empty");
    }
    if user.contains([':', '\n', '\r']) {
        bail!("the user name {user:?} holds ':' or a line break, which a password file cannot store");
    }
    if user.starts_with('#') {
        bail!("the user name {user:?} starts with '#', which would make its line a comment");
    }
    Ok(())
}

/// The user a line is for (`None` for comments and blank lines).
fn user_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    line.split_once(':').map(|(user, _)| user)
}

fn read_lines(file: &Path) -> anyhow::Result<Vec<String>> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text.lines().map(|l| l.trim_end_matches('\r').to_owned()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{} does not exist; create it with -c", file.display())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Asks for the password twice on the terminal, without echo.
fn ask_password() -> anyhow::Result<String> {
    let first = rpassword::prompt_password("Password: ")
        .context("cannot read the password from the terminal (use -b to pass it on the command line)")?;
    let second = rpassword::prompt_password("Reenter password: ").context("cannot read the password")?;
    if first != second {
        bail!("the passwords do not match");
    }
    if first.is_empty() {
        bail!("the password is empty");
    }
    Ok(first)
}

/// Writes `lines` to a file beside `file`, then renames it over `file`.
fn write_atomically(file: &Path, lines: &[String]) -> anyhow::Result<()> {
    let name = file.file_name().map_or_else(|| "passwd".into(), |n| n.to_string_lossy().into_owned());
    let temp = file.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut out = options.open(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
        if let Ok(meta) = std::fs::metadata(file) {
            // Keep the permissions the file had.
            out.set_permissions(meta.permissions())?;
        }
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&temp, file).with_context(|| format!("cannot replace {}", file.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("cannot write {}", file.display()))
}
