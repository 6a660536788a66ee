//! The subscription trie against the naive matcher, [`TopicFilter::matches`].
//!
//! The input is read as lines (those that are not UTF-8 are skipped); each is one operation:
//! - `!K<filter>`: key `K` (one character) subscribes to `<filter>`;
//! - `~K<filter>`: key `K` unsubscribes from `<filter>`;
//! - `*K`: key `K` drops all its subscriptions, as a broker does when a session ends;
//! - `?<topic>`: match `<topic>` now;
//! - `%`: clear the trie;
//! - any other line is subscribed to as a filter (by a key chosen from the line number, so some
//!   keys hold several filters) and remembered as a topic.
//!
//! After every operation the trie must agree with a plain map of the subscriptions: the values
//! replaced and removed, the length, and for `?` lines the matches, through every matching API.
//! At the end every remembered topic is matched again. Filters and topics are validated first,
//! so any text the types accept is fair game, up to the deepest filters.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use moat_mqtt_core::topic::{Matches, SubscriptionTree, TopicFilter, TopicName};

/// Operations beyond this many are ignored, to keep each run quick.
const MAX_OPS: usize = 256;
/// Keys are reduced to this many, so that clients share filters.
const KEYS: u32 = 4;

type Tree = SubscriptionTree<u8, u32>;
type Model = BTreeMap<(TopicFilter, u8), u32>;

fn key_of(c: char) -> u8 {
    (u32::from(c) % KEYS) as u8
}

/// Splits `!K<text>` style lines into the key and the text.
fn key_and_text(rest: &str) -> Option<(u8, &str)> {
    let mut chars = rest.chars();
    let key = key_of(chars.next()?);
    Some((key, chars.as_str()))
}

fn subscribe(tree: &mut Tree, model: &mut Model, key: u8, text: &str, value: u32) {
    if let Ok(filter) = TopicFilter::new(text.to_owned()) {
        let old = tree.insert(&filter, key, value);
        assert_eq!(old, model.insert((filter.clone(), key), value), "insert {filter} for {key}");
        assert_eq!(tree.get(&filter, &key), Some(&value));
    }
}

fn check(tree: &Tree, model: &Model, topic: &TopicName, matches: &mut Matches<u8, u32>) {
    let want: Vec<(String, u8, u32)> =
        model.iter().filter(|((f, _), _)| f.matches(topic)).map(|((f, k), v)| (f.to_string(), *k, *v)).collect();

    let mut got = Vec::new();
    tree.for_each_match(topic, |k, f, v| {
        assert!(f.share_group().is_none());
        got.push((f.to_string(), *k, *v));
    });
    let mut groups = BTreeSet::new();
    tree.for_each_shared_match(topic, |m| {
        assert_eq!(m.filter().share_group(), Some(m.group()));
        assert!(!m.members().is_empty());
        assert!(groups.insert(m.filter().clone()), "group {} twice", m.filter());
        got.extend(m.members().iter().map(|(k, v)| (m.filter().to_string(), *k, *v)));
    });
    got.sort();
    assert_eq!(got, want, "topic {topic:?}");

    matches.collect(tree, topic);
    let mut got = Vec::new();
    let mut keys = BTreeSet::new();
    for client in matches.clients() {
        assert!(keys.insert(*client.key()), "client {} twice", client.key());
        assert!(!client.subscriptions().is_empty());
        got.extend(client.subscriptions().iter().map(|(f, v)| (f.to_string(), *client.key(), *v)));
    }
    for group in matches.shared() {
        got.extend(group.members().iter().map(|(k, v)| (group.filter().to_string(), *k, *v)));
    }
    got.sort();
    assert_eq!(got, want, "topic {topic:?} through Matches");
    assert_eq!(matches.shared().len(), groups.len());
}

fuzz_target!(|data: &[u8]| {
    let mut tree = Tree::new();
    let mut model = Model::new();
    let mut matches = Matches::new();
    let mut topics = Vec::new();
    let lines = data.split(|b| *b == b'\n').filter_map(|l| std::str::from_utf8(l).ok());
    for (value, line) in (0u32..).zip(lines.take(MAX_OPS)) {
        if let Some(rest) = line.strip_prefix('!') {
            if let Some((key, text)) = key_and_text(rest) {
                subscribe(&mut tree, &mut model, key, text, value);
            }
        } else if let Some(rest) = line.strip_prefix('~') {
            if let Some((key, text)) = key_and_text(rest)
                && let Ok(filter) = TopicFilter::new(text.to_owned())
            {
                let removed = tree.remove(&filter, &key);
                assert_eq!(removed, model.remove(&(filter.clone(), key)), "remove {filter} for {key}");
                assert_eq!(tree.get(&filter, &key), None);
            }
        } else if let Some(rest) = line.strip_prefix('*') {
            if let Some((key, _)) = key_and_text(rest) {
                let mine: Vec<TopicFilter> = model.keys().filter(|(_, k)| *k == key).map(|(f, _)| f.clone()).collect();
                assert_eq!(tree.remove_all(&key, &mine), mine.len());
                model.retain(|(_, k), _| *k != key);
            }
        } else if let Some(text) = line.strip_prefix('?') {
            if let Ok(topic) = TopicName::new(text.to_owned()) {
                check(&tree, &model, &topic, &mut matches);
            }
        } else if line == "%" {
            tree.clear();
            model.clear();
        } else {
            subscribe(&mut tree, &mut model, (value % 3) as u8, line, value);
            if let Ok(topic) = TopicName::new(line.to_owned()) {
                topics.push(topic);
            }
        }
        assert_eq!(tree.len(), model.len());
    }
    for topic in &topics {
        check(&tree, &model, topic, &mut matches);
    }
    // Take everything out again, one by one: the trie must end up empty.
    for (filter, key) in model.keys() {
        assert!(tree.remove(filter, key).is_some(), "{filter} of {key} lost");
    }
    assert!(tree.is_empty());
    for topic in &topics {
        tree.for_each_match(topic, |_, f, _| panic!("{f} still matches {topic:?} in an empty trie"));
    }
});
