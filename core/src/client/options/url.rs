//! Broker URLs: `{mqtt,ws}[s]://[username][:password]@host[:port][/path]`.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// How a client reaches the broker: the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// `mqtt://` (also `tcp://`): plain TCP, default port 1883.
    #[default]
    Tcp,
    /// `mqtts://` (also `ssl://`): TLS over TCP, default port 8883.
    Tls,
    /// `ws://`: WebSocket, default port 80.
    Ws,
    /// `wss://`: WebSocket over TLS, default port 443.
    Wss,
}

impl Transport {
    /// The port used when the URL names none: 1883, 8883, 80 or 443.
    #[must_use]
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Tcp => 1883,
            Self::Tls => 8883,
            Self::Ws => 80,
            Self::Wss => 443,
        }
    }

    /// The canonical scheme: `mqtt`, `mqtts`, `ws` or `wss`.
    #[must_use]
    pub const fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "mqtt",
            Self::Tls => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Whether the connection runs over TLS (`mqtts`, `wss`).
    #[must_use]
    pub const fn is_tls(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }

    /// Whether MQTT runs inside a WebSocket (`ws`, `wss`).
    #[must_use]
    pub const fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    /// The transport for a scheme, case-insensitive; `tcp` and `ssl` are accepted as aliases
    /// of `mqtt` and `mqtts` (the spellings of paho and mosquitto).
    #[must_use]
    pub fn from_scheme(scheme: &str) -> Option<Self> {
        match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Some(Self::Tcp),
            "mqtts" | "ssl" => Some(Self::Tls),
            "ws" => Some(Self::Ws),
            "wss" => Some(Self::Wss),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

/// A broker URL, parsed with [`FromStr`]: `{mqtt,ws}[s]://[username][:password]@host[:port][/path]`.
///
/// User name and password are percent-decoded; an IPv6 host is written in brackets
/// (`mqtt://[::1]:1884`) and stored without them. Everything from the first `/` after the
/// host on (a query included, a `#fragment` dropped) is the path, which only WebSocket
/// transports use.
///
/// `Display` gives the URL back with the port always written and the password shown as `***`,
/// so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    /// The transport, from the scheme.
    pub scheme: Transport,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port: as written, or the scheme's default.
    pub port: u16,
    /// The path as written (`/mqtt`), or empty.
    pub path: String,
    /// The user name, percent-decoded; `None` when absent or empty.
    pub username: Option<String>,
    /// The password, percent-decoded; `None` when there is no `:` in the user part.
    pub password: Option<String>,
}

impl Default for BrokerUrl {
    /// `mqtt://localhost:1883/`, the original's default.
    fn default() -> Self {
        Self {
            scheme: Transport::Tcp,
            host: "localhost".to_owned(),
            port: 1883,
            path: "/".to_owned(),
            username: None,
            password: None,
        }
    }
}

impl BrokerUrl {
    /// `host:port` to connect to, with an IPv6 host in brackets (`[::1]:1883`).
    #[must_use]
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The path of the WebSocket request: the URL's path, or `/` when it has none.
    #[must_use]
    pub fn request_path(&self) -> &str {
        if self.path.is_empty() { "/" } else { &self.path }
    }
}

/// Why a text is not a broker URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://` in front.
    #[error("{url:?} has no scheme; write it as mqtt://{url}")]
    MissingScheme {
        /// The text as given.
        url: String,
    },
    /// A scheme other than mqtt, mqtts, ws, wss (or the aliases tcp, ssl).
    #[error("unknown scheme {scheme:?}; use mqtt, mqtts, ws or wss")]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// Nothing between `://` (or `@`) and the port or path.
    #[error("the URL names no host")]
    MissingHost,
    /// A host with characters no host name has (space, `%`, `[`, ...).
    #[error("host {host:?} is not a valid host name")]
    InvalidHost {
        /// The host as written.
        host: String,
    },
    /// `[` without a matching `]`, or something other than `:port` after it.
    #[error("IPv6 host {text:?} is not closed by \"]\" (or is followed by something other than :port)")]
    UnclosedBracket {
        /// The authority as written.
        text: String,
    },
    /// The text in brackets is not an IPv6 address.
    #[error("{text:?} is not an IPv6 address")]
    InvalidIpv6 {
        /// The text between the brackets.
        text: String,
    },
    /// More than one `:` outside brackets: most likely an IPv6 address.
    #[error("host {text:?} has several colons; write an IPv6 address in brackets: [::1]:1883")]
    UnbracketedIpv6 {
        /// The host and port as written.
        text: String,
    },
    /// The port is empty or not a decimal number.
    #[error("port {text:?} is not a number")]
    PortNotNumber {
        /// The port as written.
        text: String,
    },
    /// The port is 0 or above 65535.
    #[error("port {text} is out of range (1 to 65535)")]
    PortOutOfRange {
        /// The port as written.
        text: String,
    },
    /// A `%` not followed by two hex digits.
    #[error("{part} has a bad percent escape in {text:?} (write % as %25)")]
    BadEscape {
        /// `"username"` or `"password"`.
        part: &'static str,
        /// The text as written.
        text: String,
    },
    /// The percent-decoded bytes are not UTF-8.
    #[error("{part} is not UTF-8 once percent-decoded")]
    NotUtf8 {
        /// `"username"` or `"password"`.
        part: &'static str,
    },
}

impl FromStr for BrokerUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::MissingScheme { url: url.to_owned() });
        };
        let scheme =
            Transport::from_scheme(scheme).ok_or_else(|| UrlError::UnknownScheme { scheme: scheme.to_owned() })?;
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (info, None),
                };
                let user = percent_decode(user, "username")?;
                let pass = pass.map(|p| percent_decode(p, "password")).transpose()?;
                ((!user.is_empty()).then_some(user), pass)
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            None => scheme.default_port(),
            Some(text) => parse_port(text)?,
        };
        Ok(Self { scheme, host, port, path: path.to_owned(), username, password })
    }
}

/// Splits `host[:port]` or `[v6][:port]`, checking the host.
fn split_host_port(text: &str) -> Result<(String, Option<&str>), UrlError> {
    if let Some(inner) = text.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(UrlError::UnclosedBracket { text: text.to_owned() });
        };
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| UrlError::UnclosedBracket { text: text.to_owned() })?),
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidIpv6 { text: addr.to_owned() });
        }
        return Ok((addr.to_owned(), port));
    }
    let (host, port) = match text.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            return Err(UrlError::UnbracketedIpv6 { text: text.to_owned() });
        }
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || "[]%<>\"{}|\\^`".contains(c);
    if host.contains(bad) {
        return Err(UrlError::InvalidHost { host: host.to_owned() });
    }
    Ok((host.to_owned(), port))
}

/// A port in 1..=65535.
fn parse_port(text: &str) -> Result<u16, UrlError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::PortNotNumber { text: text.to_owned() });
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(UrlError::PortOutOfRange { text: text.to_owned() }),
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(text: &str, part: &'static str) -> Result<String, UrlError> {
    let bad = || UrlError::BadEscape { part, text: text.to_owned() };
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex_digit).ok_or_else(bad)?;
            let lo = bytes.next().and_then(hex_digit).ok_or_else(bad)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::NotUtf8 { part })
}

/// The value of one hex digit.
fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Writes `text` with everything but unreserved characters percent-encoded.
fn percent_encode(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.username.is_some() || self.password.is_some() {
            percent_encode(f, self.username.as_deref().unwrap_or(""))?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}{}", self.authority(), self.path)
    }
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
