use super::*;

fn parse(text: &str) -> BrokerUrl {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> UrlError {
    text.parse::<BrokerUrl>().expect_err(text)
}

#[test]
fn every_scheme_with_its_default_port() {
    for (text, scheme, port) in [
        ("mqtt://broker", Transport::Tcp, 1883),
        ("mqtts://broker", Transport::Tls, 8883),
        ("ws://broker", Transport::Ws, 80),
        ("wss://broker", Transport::Wss, 443),
        ("tcp://broker", Transport::Tcp, 1883),
        ("ssl://broker", Transport::Tls, 8883),
        ("MQTT://broker", Transport::Tcp, 1883),
    ] {
        let url = parse(text);
        assert_eq!((url.scheme, url.port, url.host.as_str()), (scheme, port, "broker"), "{text}");
        assert_eq!((url.username, url.password, url.path), (None, None, String::new()));
    }
}

#[test]
fn port_path_and_credentials() {
    let url = parse("ws://user:secret@example.com:8080/mqtt?x=1#frag");
    assert_eq!(url.scheme, Transport::Ws);
    assert_eq!(url.host, "example.com");
    assert_eq!(url.port, 8080);
    assert_eq!(url.path, "/mqtt?x=1");
    assert_eq!(url.username.as_deref(), Some("user"));
    assert_eq!(url.password.as_deref(), Some("secret"));
    assert_eq!(url.authority(), "example.com:8080");
    assert_eq!(url.request_path(), "/mqtt?x=1");
    assert_eq!(parse("ws://h").request_path(), "/");
}

#[test]
fn credentials_are_percent_decoded() {
    let url = parse("mqtt://us%40er:p%3As%2Fs%25@h");
    assert_eq!(url.username.as_deref(), Some("us@er"));
    assert_eq!(url.password.as_deref(), Some("p:s/s%"));
    let url = parse("mqtt://caf%C3%A9@h");
    assert_eq!(url.username.as_deref(), Some("café"));
    // An unescaped @ in the password: the last @ ends the user part.
    let url = parse("mqtt://u:a@b@h:1");
    assert_eq!((url.password.as_deref(), url.host.as_str()), (Some("a@b"), "h"));
}

#[test]
fn user_only_password_only_and_empty() {
    let url = parse("mqtt://user@h");
    assert_eq!((url.username.as_deref(), url.password), (Some("user"), None));
    let url = parse("mqtt://:pw@h");
    assert_eq!((url.username, url.password.as_deref()), (None, Some("pw")));
    let url = parse("mqtt://u:@h");
    assert_eq!((url.username.as_deref(), url.password.as_deref()), (Some("u"), Some("")));
    let url = parse("mqtt://@h");
    assert_eq!((url.username, url.password), (None, None));
}

#[test]
fn ipv6_hosts() {
    let url = parse("mqtt://[::1]:1884/");
    assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("::1", 1884, "/"));
    assert_eq!(url.authority(), "[::1]:1884");
    let url = parse("wss://u:p@[fe80::1:2]");
    assert_eq!((url.host.as_str(), url.port), ("fe80::1:2", 443));
    assert_eq!(url.to_string(), "wss://u:***@[fe80::1:2]:443");
}

#[test]
fn display_elides_the_password() {
    assert_eq!(parse("mqtt://localhost").to_string(), "mqtt://localhost:1883");
    assert_eq!(parse("mqtts://a%20b:pw@h:1/x").to_string(), "mqtts://a%20b:***@h:1/x");
    assert_eq!(parse("tcp://u@h").to_string(), "mqtt://u@h:1883");
    assert_eq!(BrokerUrl::default().to_string(), "mqtt://localhost:1883/");
    assert_eq!(parse("mqtt://localhost:1883/"), BrokerUrl::default());
}

#[test]
fn errors_name_the_problem() {
    assert_eq!(error("http://h"), UrlError::UnknownScheme { scheme: "http".into() });
    assert_eq!(error("http://h").to_string(), "unknown scheme \"http\"; use mqtt, mqtts, ws or wss");
    assert_eq!(error("mqtt://h:x"), UrlError::PortNotNumber { text: "x".into() });
    assert_eq!(error("mqtt://h:x").to_string(), "port \"x\" is not a number");
    assert_eq!(error("mqtt://h:"), UrlError::PortNotNumber { text: String::new() });
    assert_eq!(error("mqtt://h:-1"), UrlError::PortNotNumber { text: "-1".into() });
    assert_eq!(error("mqtt://h:70000"), UrlError::PortOutOfRange { text: "70000".into() });
    assert_eq!(error("mqtt://h:0"), UrlError::PortOutOfRange { text: "0".into() });
    assert_eq!(error("localhost:1883"), UrlError::MissingScheme { url: "localhost:1883".into() });
    assert_eq!(error("mqtt://"), UrlError::MissingHost);
    assert_eq!(error("mqtt://u:p@:1883/"), UrlError::MissingHost);
    assert_eq!(error("mqtt://::1"), UrlError::UnbracketedIpv6 { text: "::1".into() });
    assert_eq!(error("mqtt://[::1"), UrlError::UnclosedBracket { text: "[::1".into() });
    assert_eq!(error("mqtt://[::1]x"), UrlError::UnclosedBracket { text: "[::1]x".into() });
    assert_eq!(error("mqtt://[nope]"), UrlError::InvalidIpv6 { text: "nope".into() });
    assert_eq!(error("mqtt://a b"), UrlError::InvalidHost { host: "a b".into() });
    assert_eq!(error("mqtt://u%zz@h"), UrlError::BadEscape { part: "username", text: "u%zz".into() });
    assert_eq!(error("mqtt://u:%4@h"), UrlError::BadEscape { part: "password", text: "%4".into() });
    assert_eq!(error("mqtt://u:%ff@h"), UrlError::NotUtf8 { part: "password" });
}
