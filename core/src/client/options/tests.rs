use std::time::Duration;

use super::*;
use crate::codec::QoS;

fn topic(name: &str) -> TopicName {
    TopicName::new(name.to_owned()).unwrap()
}

fn map<const N: usize>(entries: [(&str, ConfigValue); N]) -> ConfigValue {
    ConfigValue::map(entries)
}

#[test]
fn defaults_are_the_originals() {
    let o = ClientOptions::default();
    assert_eq!(o.url.to_string(), "mqtt://localhost:1883/");
    assert_eq!(o.client_id, None);
    assert_eq!(o.keep_alive, Duration::from_secs(10));
    assert_eq!(o.ping_delay, Duration::from_secs(1));
    assert_eq!((o.default_qos, o.default_retain), (QoS::AtMostOnce, false));
    assert!(o.auto_reconnect);
    assert_eq!(o.reconnect_max_interval, Duration::from_secs(10));
    assert_eq!(o.reconnect_retries, Retries::Limited(2));
    assert!(o.clean_session);
    assert_eq!(o.will, None);
    assert_eq!(o.codec, "noop");
    assert!(o.codec_params.is_empty() && o.topics.is_empty() && o.extra_headers.is_empty());
    assert!(o.check_hostname);
    assert_eq!((o.certfile, o.keyfile, o.ca_file, o.ca_path, o.ca_data), (None, None, None, None, None));
}

#[test]
fn retries_and_backoff() {
    assert_eq!(Retries::from_count(-1), Retries::Forever);
    assert_eq!(Retries::from_count(0), Retries::Limited(0));
    assert_eq!(Retries::from_count(i64::MAX), Retries::Limited(u32::MAX));
    let two = Retries::Limited(2);
    assert!(two.allows(1) && two.allows(2) && !two.allows(3));
    assert!(Retries::Forever.allows(u32::MAX));
    let o = ClientOptions::default();
    let delays: Vec<u64> = (0..6).map(|n| o.reconnect_delay(n).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
    assert_eq!(o.reconnect_delay(200), Duration::from_secs(10));
}

#[test]
fn defaults_for_exact_topics_and_filters() {
    let mut o = ClientOptions { default_qos: QoS::AtLeastOnce, ..ClientOptions::default() };
    let entry = |qos, retain| TopicDefaults { qos, retain };
    o.topics.insert("a/b".into(), entry(Some(QoS::ExactlyOnce), None));
    o.topics.insert("a/#".into(), entry(Some(QoS::AtMostOnce), Some(true)));
    o.topics.insert("a/+/c".into(), entry(Some(QoS::ExactlyOnce), Some(false)));
    o.topics.insert("x".into(), entry(None, Some(true)));
    // exact entry for qos, the filter a/# fills in retain
    assert_eq!(o.defaults_for(&topic("a/b")), (QoS::ExactlyOnce, true));
    // the longer filter wins
    assert_eq!(o.defaults_for(&topic("a/b/c")), (QoS::ExactlyOnce, false));
    assert_eq!(o.defaults_for(&topic("a/z")), (QoS::AtMostOnce, true));
    assert_eq!(o.defaults_for(&topic("a")), (QoS::AtMostOnce, true));
    // unset qos falls back to default_qos
    assert_eq!(o.defaults_for(&topic("x")), (QoS::AtLeastOnce, true));
    assert_eq!(o.defaults_for(&topic("other")), (QoS::AtLeastOnce, false));
}

#[test]
fn set_scalars_with_either_spelling() {
    let mut o = ClientOptions::default();
    o.set("keep-alive", 30.into()).unwrap();
    o.set("ping_delay", 0.5.into()).unwrap();
    o.set("default-qos", 2.into()).unwrap();
    o.set("default_retain", true.into()).unwrap();
    o.set("auto_reconnect", "off".into()).unwrap();
    o.set("reconnect-max-interval", 60.into()).unwrap();
    o.set("reconnect_retries", (-1).into()).unwrap();
    o.set("cleansession", false.into()).unwrap();
    o.set("id", "fufu_123".into()).unwrap();
    o.set("uri", "mqtts://u:p@broker:8884/".into()).unwrap();
    o.set("codec", "json".into()).unwrap();
    o.set("check-hostname", false.into()).unwrap();
    o.set("certfile", "/c.pem".into()).unwrap();
    o.set("key_file", "/k.pem".into()).unwrap();
    assert_eq!(o.keep_alive, Duration::from_secs(30));
    assert_eq!(o.ping_delay, Duration::from_millis(500));
    assert_eq!((o.default_qos, o.default_retain, o.auto_reconnect), (QoS::ExactlyOnce, true, false));
    assert_eq!(o.reconnect_max_interval, Duration::from_secs(60));
    assert_eq!(o.reconnect_retries, Retries::Forever);
    assert!(!o.clean_session && !o.check_hostname);
    assert_eq!(o.client_id.as_deref(), Some("fufu_123"));
    assert_eq!((o.url.scheme, o.url.port), (Transport::Tls, 8884));
    assert_eq!(o.codec, "json");
    assert_eq!(o.certfile, Some("/c.pem".into()));
    assert_eq!(o.keyfile, Some("/k.pem".into()));
    // null resets to the default
    o.set("keep_alive", ConfigValue::Null).unwrap();
    o.set("codec", ConfigValue::Null).unwrap();
    o.set("uri", ConfigValue::Null).unwrap();
    assert_eq!(o.keep_alive, Duration::from_secs(10));
    assert_eq!(o.codec, "noop");
    assert_eq!(o.url, BrokerUrl::default());
}

#[test]
fn set_sections() {
    let mut o = ClientOptions::default();
    let will =
        map([("topic", "dev/gone".into()), ("message", "bye".into()), ("qos", 1.into()), ("retain", true.into())]);
    o.set("will", will).unwrap();
    let w = o.will.clone().unwrap();
    assert_eq!((w.topic.as_str(), &w.payload[..], w.qos, w.retain), ("dev/gone", &b"bye"[..], QoS::AtLeastOnce, true));
    // the seed's own template: a will without topic is no will
    o.set("will", map([("topic", ConfigValue::Null), ("message", ConfigValue::Null)])).unwrap();
    assert_eq!(o.will, None);

    o.set("ca", map([("file", "/ca.pem".into()), ("path", ConfigValue::Null), ("data", "PEM".into())])).unwrap();
    assert_eq!(
        (o.ca_file.clone(), o.ca_path.clone(), o.ca_data.as_deref()),
        (Some("/ca.pem".into()), None, Some("PEM"))
    );
    o.set("capath", "/etc/ssl/certs".into()).unwrap();
    assert_eq!(o.ca_path, Some("/etc/ssl/certs".into()));

    o.set("extra_headers", map([("X-Token", "abc".into()), ("X-N", 5.into())])).unwrap();
    assert_eq!(o.extra_headers.get("X-N").map(String::as_str), Some("5"));

    let topics = map([("a/b", map([("qos", 2.into())])), ("a/#", map([("retain", true.into())]))]);
    o.set("topics", topics).unwrap();
    assert_eq!(o.defaults_for(&topic("a/b")), (QoS::ExactlyOnce, true));
}

#[test]
fn set_codec_params() {
    let mut o = ClientOptions::default();
    let params = map([
        ("yesno", map([("name", "bool".into()), ("on", "yes".into()), ("off", "no".into())])),
        ("j", "json".into()),
    ]);
    o.set("codec-params", params).unwrap();
    let yesno = &o.codec_params["yesno"];
    assert_eq!(yesno.name.as_deref(), Some("bool"));
    assert_eq!(yesno.params.get("on").map(String::as_str), Some("yes"));
    assert_eq!(yesno.params.get("off").map(String::as_str), Some("no"));
    assert_eq!(o.codec_params["j"], CodecDef { name: Some("json".into()), params: Default::default() });
    // YAML's bare `yes` arrives as a boolean: refused with a hint, not silently "true"
    let err = o.set("codec_params", map([("yn", map([("on", true.into())]))])).unwrap_err();
    assert!(err.to_string().starts_with("codec_params.yn.on: expected a string (quote"), "{err}");
}

#[test]
fn set_errors_name_the_key_and_change_nothing() {
    let mut o = ClientOptions::default();
    let before = o.clone();
    let cases: Vec<(&str, ConfigValue, &str)> = vec![
        ("keep_alive", "x".into(), "keep_alive: expected whole seconds from 0 to 65535, got \"x\""),
        ("keep_alive", 70_000.into(), "keep_alive: expected whole seconds from 0 to 65535, got 70000"),
        ("ping_delay", (-1).into(), "ping_delay: expected a number of seconds, 0 or more, got -1"),
        ("default_qos", 3.into(), "default_qos: expected a QoS: 0, 1 or 2, got 3"),
        ("default_retain", "maybe".into(), "default_retain: expected true or false, got \"maybe\""),
        ("uri", "http://x".into(), "uri: unknown scheme \"http\"; use mqtt, mqtts, ws or wss"),
        (
            "will",
            map([("topic", "a/+".into())]),
            "will.topic: topic name contains the wildcard '+'; wildcards are only allowed in subscriptions",
        ),
        ("will", map([("topc", "a".into())]), "unknown key \"will.topc\""),
        ("topics", map([("a/b", map([("qos", 5.into())]))]), "topics.a/b.qos: expected a QoS: 0, 1 or 2, got 5"),
        (
            "topics",
            map([("a/#/b", ConfigValue::Null)]),
            "topics.a/#/b: wildcard '#' must fill a whole level and be the last level; found level \"#\"",
        ),
        ("extra_headers", ConfigValue::List(vec![]), "extra_headers: expected a mapping, got a list"),
        ("nonsense", 1.into(), "unknown key \"nonsense\""),
    ];
    for (key, value, message) in cases {
        let err = o.set(key, value).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    assert_eq!(o, before);
}

#[test]
fn set_all_collects_unknown_keys() {
    let mut o = ClientOptions::default();
    let entries = vec![("keep_alive".to_owned(), 5.into()), ("bogus".to_owned(), 1.into())];
    assert_eq!(o.set_all(entries), Ok(vec!["bogus".to_owned()]));
    assert_eq!(o.keep_alive, Duration::from_secs(5));
    let entries = vec![("default_qos".to_owned(), 9.into())];
    assert!(matches!(o.set_all(entries), Err(OptionError::Invalid { .. })));
}

#[test]
fn connect_options_carry_identity_and_credentials() {
    let mut o = ClientOptions::default();
    o.set("uri", "mqtt://alice:s%3Acret@h".into()).unwrap();
    o.set("id", "c1".into()).unwrap();
    o.set("keep_alive", 20.into()).unwrap();
    o.set("clean_session", false.into()).unwrap();
    let c = o.connect_options();
    assert_eq!(&c.client_id[..], "c1");
    assert!(!c.clean_session);
    assert_eq!(c.keep_alive, Duration::from_secs(20));
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some(&b"s:cret"[..]));
}
