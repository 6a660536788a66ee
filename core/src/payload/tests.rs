use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;
use crate::client::options::{ClientOptions, CodecDef, ConfigValue};

fn codec(name: &str) -> Codec {
    Codec::from_name(name, &BTreeMap::new()).unwrap()
}

fn def(name: Option<&str>, params: &[(&str, &str)]) -> CodecDef {
    CodecDef {
        name: name.map(str::to_owned),
        params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }
}

/// A value with every kind in it, for the formats that carry them all.
fn rich() -> Value {
    Value::Map(vec![
        (Value::from("n"), Value::Null),
        (Value::from("b"), Value::Bool(true)),
        (Value::from("i"), Value::Int(-7)),
        (Value::from("u"), Value::UInt(u64::MAX)),
        (Value::from("f"), Value::Float(2.5)),
        (Value::from("s"), Value::from("häh")),
        (Value::from("l"), Value::List(vec![Value::Int(1), Value::from("x")])),
        (Value::from("bytes"), Value::from(vec![0u8, 255, 10])),
        (Value::Int(3), Value::from("integer key")),
    ])
}

#[test]
fn names_resolve() {
    for (name, expected) in [
        ("noop", Codec::Binary),
        ("binary", Codec::Binary),
        ("utf8", Codec::Utf8),
        ("UTF-8", Codec::Utf8),
        ("json", Codec::Json),
        ("msgpack", Codec::Msgpack),
        ("cbor", Codec::Cbor),
        ("bool", Codec::Bool(BoolNames::default())),
        ("null", Codec::Null),
    ] {
        assert_eq!(codec(name), expected, "{name}");
    }
    assert_eq!(Codec::default(), Codec::Binary);
    let none = BTreeMap::new();
    assert_eq!(Codec::from_name("xml", &none), Err(CodecError::UnknownCodec { name: "xml".into() }));
    let err = Codec::from_name("yaml", &none).unwrap_err();
    assert!(matches!(err, CodecError::Unavailable { .. }));
    assert_eq!(err.to_string(), "codec \"yaml\" is not available: the core has no YAML parser; use json");
}

#[test]
fn codec_params_define_named_codecs() {
    let mut defs = BTreeMap::new();
    defs.insert("yesno".to_owned(), def(Some("bool"), &[("on", "yes"), ("off", "no")]));
    defs.insert("janein".to_owned(), def(Some("yesno"), &[("on", "ja")]));
    defs.insert("bool".to_owned(), def(None, &[("on", "an"), ("off", "aus")]));
    defs.insert("j".to_owned(), def(Some("json"), &[]));
    defs.insert("loop1".to_owned(), def(Some("loop2"), &[]));
    defs.insert("loop2".to_owned(), def(Some("loop1"), &[]));
    defs.insert("badparam".to_owned(), def(Some("json"), &[("on", "x")]));
    defs.insert("same".to_owned(), def(Some("bool"), &[("on", "x"), ("off", "X")]));
    let names = |on: &str, off: &str| BoolNames { on: on.into(), off: off.into(), null: None };

    assert_eq!(Codec::from_name("yesno", &defs), Ok(Codec::Bool(names("yes", "no"))));
    // inherits off=no from yesno, its own on wins
    assert_eq!(Codec::from_name("janein", &defs), Ok(Codec::Bool(names("ja", "no"))));
    // an entry without name configures the built-in of its own name
    assert_eq!(Codec::from_name("bool", &defs), Ok(Codec::Bool(names("an", "aus"))));
    assert_eq!(Codec::from_name("j", &defs), Ok(Codec::Json));
    assert!(matches!(Codec::from_name("loop1", &defs), Err(CodecError::UnknownCodec { .. })));
    assert_eq!(
        Codec::from_name("badparam", &defs),
        Err(CodecError::BadParam { codec: "json", param: "on".into(), value: "x".into() })
    );
    assert!(matches!(Codec::from_name("same", &defs), Err(CodecError::BadParam { .. })));
}

#[test]
fn from_client_options() {
    let mut o = ClientOptions::default();
    assert_eq!(Codec::from_options(&o), Ok(Codec::Binary));
    let yesno = ConfigValue::map([(
        "yesno",
        ConfigValue::map([("name", "bool".into()), ("on", "yes".into()), ("off", "no".into())]),
    )]);
    o.set("codec_params", yesno).unwrap();
    o.set("codec", "yesno".into()).unwrap();
    let c = Codec::from_options(&o).unwrap();
    assert_eq!(c.encode(&Value::Bool(true)).unwrap(), Bytes::from_static(b"yes"));
    assert_eq!(c.decode(b"NO"), Ok(Value::Bool(false)));
    assert_eq!(c.to_string(), "bool(on=\"yes\", off=\"no\")");
}

#[test]
fn binary_round_trips_any_bytes() {
    let c = codec("noop");
    let all: Vec<u8> = (0..=255).collect();
    let value = c.decode(&all).unwrap();
    assert_eq!(value, Value::Bytes(all.clone().into()));
    assert_eq!(&c.encode(&value).unwrap()[..], &all[..]);
    let shared = Bytes::from(all);
    let Value::Bytes(kept) = c.decode_bytes(shared.clone()).unwrap() else { panic!() };
    assert_eq!(kept.as_ptr(), shared.as_ptr(), "decode_bytes does not copy");
    assert_eq!(c.encode(&"text".into()).unwrap(), Bytes::from_static(b"text"));
    assert_eq!(c.encode(&Value::Null).unwrap(), Bytes::new());
    assert_eq!(c.encode(&Value::Int(1)), Err(CodecError::WrongValue { codec: "binary", kind: "an integer" }));
    assert_eq!(c.parse_text("a\tb"), Ok(Value::Bytes(Bytes::from_static(b"a\tb"))));
    assert_eq!(c.render(&Value::Bytes(Bytes::from_static(b"\xff\n"))), b"\xff\n");
    assert_eq!(c.render_lossy(&Value::Bytes(Bytes::from_static(b"a\xff"))), "a\u{fffd}");
}

#[test]
fn utf8_round_trips_and_names_the_bad_byte() {
    let c = codec("utf8");
    assert_eq!(c.decode("grüß".as_bytes()), Ok(Value::from("grüß")));
    assert_eq!(c.encode(&"grüß".into()).unwrap(), "grüß".as_bytes());
    assert_eq!(c.decode(b"ab\xc3(x"), Err(CodecError::InvalidUtf8 { offset: 2 }));
    assert_eq!(
        c.decode(b"ab\xc3(x").unwrap_err().to_string(),
        "payload is not UTF-8: invalid byte sequence at offset 2"
    );
    assert_eq!(c.encode(&Value::from(vec![0x61, 0xff])), Err(CodecError::InvalidUtf8 { offset: 1 }));
    assert_eq!(c.encode(&Value::from(b"ok".to_vec())).unwrap(), Bytes::from_static(b"ok"));
    assert!(matches!(c.encode(&Value::List(vec![])), Err(CodecError::WrongValue { .. })));
    assert_eq!(c.parse_text("{not json"), Ok(Value::from("{not json")));
    assert_eq!(c.render(&"plain".into()), b"plain");
    assert_eq!(c.decode(b""), Ok(Value::from("")));
}

#[test]
fn json_round_trips_and_prints_compact() {
    let c = codec("json");
    let payload = c.encode_text(r#" { "a" : [1, 2.5, "x", null, true], "b": {"c": -3} } "#).unwrap();
    assert_eq!(&payload[..], br#"{"a":[1,2.5,"x",null,true],"b":{"c":-3}}"#);
    let value = c.decode(&payload).unwrap();
    assert_eq!(c.render(&value), &payload[..]);
    assert_eq!(c.encode(&value).unwrap(), payload);
    assert_eq!(value.get("b").and_then(|b| b.get("c")), Some(&Value::Int(-3)));
    // a top-level string prints as JSON, quoted, so sub's output feeds pub -C json
    assert_eq!(c.render(&c.decode(br#""hi\n""#).unwrap()), br#""hi\n""#);
    assert_eq!(c.decode(b"18446744073709551615"), Ok(Value::UInt(u64::MAX)));
    let err = c.decode(b"{\"a\":").unwrap_err();
    assert!(matches!(err, CodecError::Decode { codec: "json", .. }), "{err}");
    assert!(matches!(c.decode(b"1 2"), Err(CodecError::Decode { .. })));
    let err = c.parse_text("{oops").unwrap_err();
    assert!(err.to_string().starts_with("json codec: not JSON text: "), "{err}");
    // JSON has no non-string keys
    let keyed = Value::Map(vec![(Value::List(vec![]), Value::Null)]);
    assert!(matches!(c.encode(&keyed), Err(CodecError::Encode { codec: "json", .. })));
}

#[test]
fn msgpack_and_cbor_round_trip_everything() {
    for name in ["msgpack", "cbor"] {
        let c = codec(name);
        let payload = c.encode(&rich()).unwrap();
        assert_eq!(c.decode(&payload), Ok(rich()), "{name}");
        // trailing garbage and truncation are refused
        let mut longer = payload.to_vec();
        longer.push(0);
        assert!(matches!(c.decode(&longer), Err(CodecError::Decode { .. })), "{name}");
        assert!(matches!(c.decode(&payload[..payload.len() - 1]), Err(CodecError::Decode { .. })), "{name}");
        // command-line JSON text
        let p = c.encode_text(r#"{"k": [1, "two"]}"#).unwrap();
        let v = c.decode(&p).unwrap();
        assert_eq!(c.render(&v), br#"{"k":[1,"two"]}"#);
        assert!(matches!(c.parse_text("nope"), Err(CodecError::Parse { .. })));
        // a long string, beyond any scratch buffer
        let long = Value::from("x".repeat(100_000));
        assert_eq!(c.decode(&c.encode(&long).unwrap()), Ok(long), "{name}");
    }
    assert_eq!(&codec("msgpack").encode(&Value::Int(1)).unwrap()[..], [0x01]);
    assert_eq!(&codec("cbor").encode(&Value::from("a")).unwrap()[..], [0x61, b'a']);
    // bytes print inside structured data as b"..."
    assert_eq!(
        codec("cbor").render_lossy(&rich()),
        r#"{"n":null,"b":true,"i":-7,"u":18446744073709551615,"f":2.5,"s":"häh","l":[1,"x"],"bytes":b"\x00\xff\n",3:"integer key"}"#
    );
}

#[test]
fn hostile_structured_payloads_are_refused() {
    // nesting deeper than the limit
    let deep_msgpack = vec![0x91; 10_000];
    assert!(matches!(codec("msgpack").decode(&deep_msgpack), Err(CodecError::Decode { .. })));
    let deep_cbor = vec![0x81; 10_000];
    assert!(matches!(codec("cbor").decode(&deep_cbor), Err(CodecError::Decode { .. })));
    let deep_json = "[".repeat(10_000);
    assert!(matches!(codec("json").decode(deep_json.as_bytes()), Err(CodecError::Decode { .. })));
    // a huge declared length with no data behind it
    assert!(matches!(codec("msgpack").decode(&[0xdb, 0xff, 0xff, 0xff, 0xff]), Err(CodecError::Decode { .. })));
    assert!(matches!(codec("msgpack").decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]), Err(CodecError::Decode { .. })));
    assert!(matches!(
        codec("cbor").decode(&[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Err(CodecError::Decode { .. })
    ));
    assert!(matches!(
        codec("cbor").decode(&[0x9b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Err(CodecError::Decode { .. })
    ));
}

#[test]
fn bool_with_default_and_configured_names() {
    let c = codec("bool");
    assert_eq!(c.encode(&Value::Bool(true)).unwrap(), Bytes::from_static(b"on"));
    assert_eq!(c.encode(&Value::Bool(false)).unwrap(), Bytes::from_static(b"off"));
    assert_eq!(c.encode(&Value::Int(1)).unwrap(), Bytes::from_static(b"on"));
    assert_eq!(c.encode(&"false".into()).unwrap(), Bytes::from_static(b"off"));
    for (text, b) in [("on", true), ("ON", true), (" off\n", false), ("true", true), ("0", false), ("1", true)] {
        assert_eq!(c.decode(text.as_bytes()), Ok(Value::Bool(b)), "{text:?}");
        assert_eq!(c.parse_text(text), Ok(Value::Bool(b)), "{text:?}");
    }
    let err = c.decode(b"maybe").unwrap_err();
    assert_eq!(err.to_string(), "\"maybe\" is neither \"on\" nor \"off\"");
    assert!(matches!(c.decode(b"\xff"), Err(CodecError::NotBool { .. })));
    assert!(matches!(c.encode(&Value::Null), Err(CodecError::WrongValue { .. })));
    assert!(matches!(c.encode(&Value::Int(2)), Err(CodecError::WrongValue { .. })));
    assert_eq!(c.render(&Value::Bool(false)), b"off");

    let mut defs = BTreeMap::new();
    defs.insert("yesno".to_owned(), def(Some("bool"), &[("on", "yes"), ("off", "no"), ("null", "dunno")]));
    let c = Codec::from_name("yesno", &defs).unwrap();
    assert_eq!(c.encode(&Value::Bool(true)).unwrap(), Bytes::from_static(b"yes"));
    assert_eq!(c.encode(&Value::Null).unwrap(), Bytes::from_static(b"dunno"));
    assert_eq!(c.decode(b"Yes"), Ok(Value::Bool(true)));
    assert_eq!(c.decode(b"no"), Ok(Value::Bool(false)));
    assert_eq!(c.decode(b"dunno"), Ok(Value::Null));
    assert_eq!(c.decode(b"false"), Ok(Value::Bool(false)));
    assert_eq!(c.decode(b"on").unwrap_err().to_string(), "\"on\" is neither \"yes\" nor \"no\"");
    assert_eq!(c.render(&Value::Bool(true)), b"yes");
    assert_eq!(c.render(&Value::Null), b"dunno");
}

#[test]
fn null_ignores_everything() {
    let c = codec("null");
    assert_eq!(c.decode(b"anything"), Ok(Value::Null));
    assert_eq!(c.encode(&rich()).unwrap(), Bytes::new());
    assert_eq!(c.parse_text("whatever"), Ok(Value::Null));
    assert_eq!(c.render(&Value::Null), b"");
}

#[test]
fn typed_helpers() {
    let point = BTreeMap::from([("x".to_owned(), 1i32), ("y".to_owned(), -2)]);
    for name in ["json", "msgpack", "cbor"] {
        let c = codec(name);
        let payload = c.encode_serde(&point).unwrap();
        assert_eq!(c.decode_serde::<BTreeMap<String, i32>>(&payload), Ok(point.clone()), "{name}");
        assert!(matches!(c.decode_serde::<Vec<String>>(&payload), Err(CodecError::Decode { .. })), "{name}");
    }
    let c = codec("utf8");
    assert_eq!(c.encode_serde("text").unwrap(), Bytes::from_static(b"text"));
    assert_eq!(c.decode_serde::<String>(b"text"), Ok("text".to_owned()));
    let c = codec("bool");
    assert_eq!(c.encode_serde(&true).unwrap(), Bytes::from_static(b"on"));
    assert_eq!(c.decode_serde::<bool>(b"off"), Ok(false));
    let c = codec("binary");
    assert_eq!(c.decode_serde::<Vec<u8>>(b"\x00\x01"), Ok(vec![0, 1]));
}

#[test]
fn value_display_and_conversions() {
    assert_eq!(Value::Float(1.0).to_string(), "1.0");
    assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
    assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Infinity");
    assert_eq!(Value::from("a\"b\\c\u{1}").to_string(), r#""a\"b\\c\u0001""#);
    assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
    assert_eq!(Value::from(5u64), Value::Int(5));
    let json: serde_json::Value = serde_json::from_str(r#"{"a":[1,-1,1.5,"s",null,false]}"#).unwrap();
    assert_eq!(Value::from(json).to_string(), r#"{"a":[1,-1,1.5,"s",null,false]}"#);
    assert_eq!(Value::Int(1).kind(), "an integer");
    assert_eq!(Value::from("s").as_str(), Some("s"));
    assert_eq!(Value::Bool(true).as_bool(), Some(true));
    assert!(Value::Null.as_bytes().is_none());
}
